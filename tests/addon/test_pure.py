"""The add-on's bpy-free parts: frames, interpolation, inpainting, what a transfer writes, jobs."""
import time
from pathlib import Path

import numpy as np
import pytest

from blender_addon import frames, inpaint, interpolate, labels, seams, transfer
from blender_addon.client import ServerError
from blender_addon.jobs import Job, describe
from tests.server.conftest import ServerProcess, tiny_checkpoint  # noqa: F401 (a fixture)


def test_blender_to_model_frame():
    # Blender: up +Z, front -Y.  Model: up +Y, front -Z.
    up, front, right = np.eye(3)[2], -np.eye(3)[1], np.eye(3)[0]
    assert np.allclose(frames.to_model(up), [0, 1, 0])
    assert np.allclose(frames.to_model(front), [0, 0, -1])
    assert np.allclose(frames.to_model(right), [-1, 0, 0])
    p = np.random.default_rng(0).normal(size=(10, 3))
    assert np.allclose(frames.to_blender(frames.to_model(p)), p)


def test_world_matrix():
    m = np.eye(4)
    m[:3, :3] = [[0, -2, 0], [2, 0, 0], [0, 0, 2]]  # rotate 90 about Z, scale 2
    m[:3, 3] = [1, 2, 3]
    assert np.allclose(frames.apply_matrix(m, [[1, 0, 0]]), [[1, 4, 3]])


def square():
    # two triangles over the unit square, vertex values = x + 10 y
    verts = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0]], float)
    tris = np.array([[0, 1, 2], [0, 2, 3]])
    return verts, tris


def test_point_and_corner_interpolation_is_linear_on_the_triangle():
    verts, tris = square()
    values = verts[:, 0] + 10 * verts[:, 1]
    face, bary = np.array([0, 1]), np.array([[0.2, 0.3, 0.5], [0.6, 0.2, 0.2]])
    points = (verts[tris[face]] * bary[..., None]).sum(1)
    assert np.allclose(interpolate.point_values(values, tris, face, bary), points[:, 0] + 10 * points[:, 1])
    # corners: loop i of triangle t is 3t + i, with a distinct UV per corner
    loops = np.arange(6).reshape(2, 3)
    uv = np.arange(12, dtype=float).reshape(6, 2)
    expected = (uv[loops[face]] * bary[..., None]).sum(1)
    assert np.allclose(interpolate.corner_values(uv, loops, face, bary), expected)
    labels = np.array([7, 8, 9, 6])
    assert interpolate.nearest_point_values(labels, tris, face, bary).tolist() == [9, 7]


def test_colours():
    c = interpolate.position_colors(np.array([[0, 0, 0], [2, 4, 8], [1, 2, 4]], float))
    assert np.allclose(c[:, :3], [[0, 0, 0], [1, 1, 1], [0.5, 0.5, 0.5]]) and np.all(c[:, 3] == 1)
    lc = interpolate.label_colors(np.array([0, 1, -1, 12]))
    assert not np.allclose(lc[0], lc[1]) and np.allclose(lc[2, :3], 0.5) and np.allclose(lc[0], lc[3])


def path_edges(n):
    return np.stack([np.arange(n - 1), np.arange(1, n)], 1)


def test_fill_mean_spreads_ring_by_ring():
    values = np.array([0.0, -1, -1, -1, 4.0])
    known = np.array([1, 0, 0, 0, 1], bool)
    out, reached = inpaint.fill(values, known, path_edges(5))
    assert reached.all()
    assert np.allclose(out, [0, 0, 2, 4, 4])  # 1 and 3 from their one known neighbour, then 2 from both


def test_fill_vote_and_unreachable_pieces():
    labels = np.array([3, 3, -1, 5, -1, -1])
    known = np.array([1, 1, 0, 1, 0, 0], bool)
    edges = np.array([[0, 2], [1, 2], [3, 2], [4, 5]])  # 4-5 is a piece with no known vertex
    out, reached = inpaint.fill(labels, known, edges, vote=True)
    assert out[2] == 3 and reached.tolist() == [1, 1, 1, 1, 0, 0]


def arrays(n_vertices=4):
    verts, tris = square()
    return transfer.MeshArrays("m", verts, tris, np.arange(6).reshape(2, 3), np.array([0, 1]),
                               tris.ravel(), np.array([[0, 1], [1, 2], [2, 3], [3, 0], [0, 2]]))


def identity_corr(conf):
    face = np.array([0, 0, 0, 1])
    bary = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [0, 0, 1]], float)  # vertex i -> itself
    return {"source_face": face, "source_bary": bary, "source_index": np.arange(4), "confidence": np.asarray(conf, float)}


@pytest.mark.parametrize("fill", ["LEAVE", "MARK", "FILL"])
def test_target_writes_fill_modes(fill):
    src = tgt = arrays()
    weights = transfer.Channel("grp", "vertex_group", "POINT", "FLOAT", np.array([0.1, 0.2, 0.3, 0.4], np.float32))
    labels = transfer.Channel("part_label", "labels", "POINT", "INT", np.array([1, 1, 2, 2], np.int32))
    writes = {w.name: w for w in transfer.target_writes(src, tgt, identity_corr([1, 1, 0.1, 1]), [weights, labels],
                                                         threshold=0.5, fill=fill)}
    assert {"corr_confidence", "corr_source_face", "corr_source_bary", "corr_color", "grp", "part_label",
            "part_color"} <= set(writes)
    assert np.allclose(writes["corr_color"].values[2], transfer.GREY)  # no correspondence is grey
    w, lab = writes["grp"], writes["part_label"]
    if fill == "LEAVE":
        assert w.keep.tolist() == [False, False, True, False] and lab.keep is not None
    elif fill == "MARK":
        assert w.keep is None and w.values[2] == 0 and lab.values[2] == -1
    else:  # vertex 2's neighbours 1, 3 (and 0 via the diagonal)
        assert np.isclose(w.values[2], (0.2 + 0.4 + 0.1) / 3) and lab.values[2] == 1
    assert np.allclose(np.delete(w.values, 2), [0.1, 0.2, 0.4])


def cloud(vertices, edges=np.zeros((0, 2), np.int64)):
    """A mesh of vertices only, as gathered: no triangles, no corners."""
    none = np.zeros((0, 3), np.int64)
    return transfer.MeshArrays("scan", np.asarray(vertices, float), none, none, np.zeros(0, np.int64),
                               np.zeros(0, np.int64), edges)


def test_a_point_cloud_source_gives_each_target_vertex_its_matched_points_values():
    src = cloud(np.random.default_rng(0).random((6, 3)))
    tgt = arrays()
    index = np.array([5, 0, 3, 3])
    corr = {"source_index": index, "confidence": np.array([1, 1, 0.1, 1.0])}  # no faces: no source_face
    weights = transfer.Channel("grp", "vertex_group", "POINT", "FLOAT", np.arange(6, dtype=np.float32) / 10)
    paint = transfer.Channel("paint", "color", "POINT", "FLOAT_COLOR", np.eye(6, 4, dtype=np.float32))
    labels = transfer.Channel("part_label", "labels", "POINT", "INT", np.array([0, 0, 1, 1, 2, 2], np.int32))
    writes = {w.name: w for w in transfer.target_writes(src, tgt, corr, [weights, paint, labels], fill="LEAVE")}
    assert writes["corr_source_vertex"].values.tolist() == index.tolist()
    assert writes["corr_source_face"].values.tolist() == [-1] * 4 and not writes["corr_source_bary"].values.any()
    assert np.allclose(writes["grp"].values, index / 10) and np.allclose(writes["paint"].values, np.eye(6, 4)[index])
    assert writes["part_label"].values.tolist() == [2, 0, 1, 1]
    assert np.allclose(writes["corr_color"].values[[0, 1, 3]], interpolate.position_colors(src.vertices)[[5, 0, 3]])
    assert np.allclose(writes["corr_color"].values[2], transfer.GREY)
    uv = transfer.Channel("UVMap", "uv", "CORNER", "FLOAT2", np.zeros((0, 2), np.float32))
    with pytest.raises(ValueError, match="'scan' is a point cloud: it has no faces or corners to carry 'UVMap'"):
        transfer.target_writes(src, tgt, corr, [weights, uv])


def test_a_point_cloud_target_takes_corner_and_face_values_on_its_points_and_no_uvs():
    src = arrays()
    tgt = cloud(src.vertices + 0.01, edges=path_edges(4))
    corr = identity_corr([1, 1, 0.1, 1])
    shade = transfer.Channel("shade", "color", "CORNER", "FLOAT_COLOR", np.repeat(np.eye(2, 4, dtype=np.float32), 3, 0))
    heat = transfer.Channel("heat", "attribute", "FACE", "FLOAT", np.array([1.0, 3.0], np.float32))
    writes = {w.name: w for w in transfer.target_writes(src, tgt, corr, [shade, heat], fill="FILL")}
    assert writes["shade"].domain == "POINT" and writes["heat"].domain == "POINT"
    # vertex i lands on itself: vertices 0-2 on triangle 0's corners, 3 on triangle 1's
    assert np.allclose(writes["shade"].values[[0, 1, 3]], np.eye(2, 4)[[0, 0, 1]])
    assert writes["heat"].values[[0, 1, 3]].tolist() == [1, 1, 3]
    assert writes["heat"].values[2] == 2  # below the threshold: filled from its neighbours 1 and 3 on the graph
    uv = transfer.Channel("UVMap", "uv", "CORNER", "FLOAT2", np.zeros((6, 2), np.float32))
    with pytest.raises(ValueError, match="'scan' is a point cloud, and UV maps .* need faces to land on: 'UVMap' cannot"):
        transfer.target_writes(src, tgt, corr, [uv])


def test_corner_channel_and_bad_reply():
    src = tgt = arrays()
    # each source triangle is its own UV island, laid out as its (x, y) / 2: triangle 1's beside triangle 0's
    xy = src.vertices[src.triangles.ravel(), :2] / 2
    uv = transfer.Channel("UVMap", "uv", "CORNER", "FLOAT2", (xy + np.repeat([[0, 0], [0.5, 0]], 3, 0)).astype(np.float32))
    # target triangle 1 (vertices 0, 2, 3) lands two corners on source triangle 0, so vertex 3
    # takes triangle 0's UV nearest to where it landed (the midpoint of the diagonal)
    mid = (uv.values[0] + uv.values[2]) / 2
    corr = identity_corr([1] * 4)
    placed = seams.corner_uvs(uv.values, src.vertices, src.triangles, src.triangle_loops, corr["source_face"],
                              corr["source_bary"], tgt.loop_vertices, transfer.loop_polygons(tgt))
    assert np.allclose(placed.uv, uv.values[[0, 1, 2, 0, 2]].tolist() + [mid])
    assert placed.island.tolist() == [0] * 6 and placed.moved.tolist() == [False] * 5 + [True]
    # written: that corner, collinear with the other two and lightly held, moves toward where the
    # triangle's shape puts it, (0, 0.5)
    (w,) = [w for w in transfer.target_writes(src, tgt, corr, [uv]) if w.name == "UVMap"]
    assert w.domain == "CORNER" and w.values.dtype == np.float32
    assert np.linalg.norm(w.values[5] - [0, 0.5]) < 0.9 * np.linalg.norm(mid - [0, 0.5])
    assert (w.values >= -0.05).all() and (w.values <= 0.55).all()  # on island 0's part of the atlas
    with pytest.raises(ValueError, match="covers 3 vertices"):
        bad = identity_corr([1] * 4)
        bad["source_face"] = bad["source_face"][:3]
        transfer.target_writes(src, tgt, bad, [])
    with pytest.raises(ValueError, match="fill must be"):
        transfer.target_writes(src, tgt, identity_corr([1] * 4), [], fill="SMUDGE")


def test_islands_join_triangles_whose_shared_edge_has_equal_uvs():
    verts, tris = square()
    loops = np.arange(6).reshape(2, 3)  # corners: (0, 1, 2), (0, 2, 3)
    stitched = verts[tris.ravel(), :2]
    assert seams.islands(tris, loops, stitched).tolist() == [0, 0]
    cut = stitched.copy()
    cut[3:] += 5  # triangle 1 moved elsewhere in the atlas
    assert seams.islands(tris, loops, cut).tolist() == [0, 1]
    assert seams.components(5, np.array([3, 1]), np.array([4, 3])).tolist() == [0, 1, 2, 1, 1]


def grid(n):
    """Vertices of an n x n grid of quads over the unit square, and its quads."""
    x, y = np.meshgrid(np.linspace(0, 1, n + 1), np.linspace(0, 1, n + 1), indexing="ij")
    verts = np.column_stack([x.ravel(), y.ravel(), np.zeros(x.size)])
    i, j = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    a = (i * (n + 1) + j).ravel()
    return verts, np.column_stack([a, a + n + 1, a + n + 2, a + 1])


def test_a_target_polygon_across_a_source_seam_stays_on_one_island():
    # source: a fine grid cut by a UV seam at x = 0.5; left island u = 0.4 x, right u = 0.6 + 0.4 x
    sv, quads = grid(10)
    st = np.concatenate([quads[:, [0, 1, 2]], quads[:, [0, 2, 3]]])
    s_loops = np.arange(st.size).reshape(-1, 3)
    left = sv[st].mean(1)[:, 0] < 0.5
    corner_xy = sv[st.ravel(), :2]
    uv = np.column_stack([0.4 * corner_xy[:, 0] + 0.6 * np.repeat(~left, 3), corner_xy[:, 1]])
    # target: a coarse grid of quads (x = 0, 1/3, 2/3, 1): the middle column straddles the seam
    tv, t_quads = grid(3)
    tri = sv[st]
    face = np.empty(len(tv), np.int64)
    bary = np.empty((len(tv), 3))
    for v, p in enumerate(tv):  # exact correspondence: the source point under each target vertex
        d, b = seams.closest_on_triangles(p, tri)
        face[v], bary[v] = np.argmin(d), b[np.argmin(d)]
    loop_vertices = t_quads.ravel()
    loop_polygons = np.repeat(np.arange(len(t_quads)), 4)
    naive = interpolate.corner_values(uv, s_loops, face, bary)[loop_vertices]
    out = seams.corner_uvs(uv, sv, st, s_loops, face, bary, loop_vertices, loop_polygons).uv

    def spans_the_atlas(u):
        per_polygon = u[:, 0].reshape(-1, 4)
        return (per_polygon.min(1) <= 0.2 + 1e-9) & (per_polygon.max(1) >= 0.6 - 1e-9)

    assert spans_the_atlas(naive).sum() >= 3  # the setup does straddle
    assert not spans_the_atlas(out).any()
    x = tv[loop_vertices, 0]
    on_left = out[:, 0] <= 0.2 + 1e-9
    expected = np.where(on_left, 0.4 * np.minimum(x, 0.5), 0.6 + 0.4 * np.maximum(x, 0.5))
    assert np.allclose(out[:, 0], expected)  # moved corners sit on the seam of their polygon's island
    assert np.allclose(out[:, 1], tv[loop_vertices, 1])
    unmoved = np.isclose(out[:, 0], naive[:, 0])
    assert unmoved.sum() >= len(out) - 8


def test_job_reports_an_absent_server_and_cancels_quickly():
    address = "tcp://127.0.0.1:9"  # nothing listens here
    job = Job(lambda c, progress: c.ping(timeout=0.3), address).start()
    with pytest.raises(ServerError) as err:
        job.wait(15)
    assert err.value.code == "timeout" and "no server answers" in describe(err.value)
    assert "Start local server" in describe(err.value)
    job = Job(lambda c, progress: c.info(), address, timeout=60).start()
    t0 = time.monotonic()
    job.cancel()
    with pytest.raises(ServerError, match="cancelled"):
        job.wait(5)
    assert time.monotonic() - t0 < 2


def test_a_server_that_answers_but_not_in_time_is_called_slow_not_absent(tiny_checkpoint):
    proc = ServerProcess(tiny_checkpoint).wait_ready()
    try:  # marching cubes at 512: minutes of f on this machine
        points = np.random.default_rng(0).random((500, 3)).astype(np.float32)
        job = Job(lambda c, progress: c.reconstruct(points, resolution=512), proc.address, timeout=2).start()
        with pytest.raises(ServerError) as err:
            job.wait(30)
        text = describe(err.value)
        assert err.value.code == "slow" and "no reply within 2 s" in text and "raise Timeout" in text
        assert "Start local server" not in text
    finally:
        proc.stop()


def test_labels_landing_on_a_sliver_are_left_to_the_fill():
    source = np.repeat([0, 1], [70, 30])  # label 1 covers 30% of the source
    few = np.repeat([0, 1], [98, 2])  # 2%: stray matches
    many = np.repeat([0, 1], [80, 20])  # 20%: a part both have
    assert labels.slivers(source, few).tolist() == [False] * 98 + [True] * 2
    assert not labels.slivers(source, many).any()
    assert not labels.slivers(source, np.full(10, 7)).any()  # a label the source lacks is not judged here


def test_slivers_are_shares_of_the_surface_not_of_the_vertex_count():
    import trimesh

    dense = trimesh.creation.box().subdivide().subdivide().subdivide()  # 386 vertices
    coarse = trimesh.creation.box().apply_translation((3, 0, 0))  # 8 vertices, as much surface
    both = trimesh.util.concatenate([dense, coarse])
    v, f = np.asarray(both.vertices), np.asarray(both.faces)
    source = np.repeat([0, 1], [50, 50])  # two parts of one size
    target = (np.arange(len(v)) >= len(dense.vertices)).astype(np.int64)  # the coarse box takes label 1
    assert labels.slivers(source, target)[target == 1].all()  # 8 of 394 vertices: 2%
    areas = labels.vertex_areas(v, f)
    assert np.isclose(areas.sum(), both.area) and np.isclose(areas[target == 1].sum(), 6.0)
    assert not labels.slivers(source, target, target_areas=areas).any()
    assert np.allclose(labels.face_areas(v, f).sum(), both.area)
    # a source whose label 1 is 2% of the vertices but half the surface judges 2% of a target as a sliver
    assert labels.slivers(target, np.repeat([0, 1], [98, 2]), source_areas=areas)[-2:].all()
    # the add-on's per-corner and per-polygon areas add up to the mesh's
    mesh = arrays()
    for domain, count in (("POINT", 4), ("CORNER", 6), ("FACE", 2)):
        assert np.isclose(transfer.element_areas(domain, mesh, count).sum(), 1.0)


def test_the_add_on_shares_the_engines_label_rule_without_torch():
    import subprocess
    import sys

    code = ("import sys; from blender_addon import labels, transfer; import model.labels as m; "
            "assert labels.slivers is m.slivers; assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=str(Path(__file__).resolve().parents[2]))


def test_the_sources_labels_go_to_the_server_per_vertex_or_per_triangle():
    m = arrays()  # two triangles, polygons 0 and 1, corners 0-5
    per = lambda domain, values: transfer.labels_per_element(
        m, transfer.Channel("part_label", "labels", domain, "INT", np.asarray(values, np.int32)))
    assert per("POINT", [4, 5, 6, 7]).tolist() == [4, 5, 6, 7]
    assert per("FACE", [8, 9]).tolist() == [8, 9]
    assert per("CORNER", [1, 1, 1, 2, 2, 2]).tolist() == [1, 2]
    with pytest.raises(ValueError, match="EDGE"):
        per("EDGE", [0])
    # as many triangles as vertices: per triangle would be read as per vertex, so per vertex
    verts, tris = square()
    fan = transfer.MeshArrays("fan", np.vstack([verts, [[0.5, 0.5, 1.0]] * 2]), np.array(
        [[0, 1, 2], [0, 2, 3], [0, 1, 4], [1, 2, 4], [2, 3, 5], [3, 0, 5]]), np.arange(18).reshape(6, 3),
        np.arange(6), np.arange(18), np.zeros((0, 2), int))
    labels = transfer.Channel("part_label", "labels", "FACE", "INT", np.array([7, 7, 8, 8, 9, 9], np.int32))
    assert transfer.labels_per_element(fan, labels).tolist() == [7, 8, 7, 9, 8, 9]  # most of its triangles


# ---------------------------------------------------------------------- several sources
def test_several_sources_vote_labels_by_confidence_and_take_values_from_the_surest():
    from blender_addon import combine

    src = tgt = arrays()
    lab = lambda values: transfer.Channel("part_label", "labels", "POINT", "INT", np.asarray(values, np.int32))
    paint = lambda value: transfer.Channel("temperature", "attribute", "POINT", "FLOAT", np.full(4, value, np.float32))
    # three sources; per target vertex, their confidences
    conf = np.array([[0.9, 0.2, 0.7, 0.0], [0.3, 0.8, 0.4, 0.0], [0.3, 0.1, 0.4, 0.0]])
    labels_of = [[1, 1, 1, 1], [2, 2, 2, 2], [2, 2, 2, 2]]
    matches = [combine.Match(src, identity_corr(c), [lab(l), paint(k)]) for k, (c, l) in enumerate(zip(conf, labels_of))]
    writes = {w.name: w for w in combine.target_writes(matches, tgt, threshold=0.5, fill="MARK")}
    # vertex 0: 0.9 for label 1 against 0.3 + 0.3 for 2; vertex 1: 0.8 + 0.1 for 2; vertex 2: 0.4 + 0.4
    # for 2 outvote 0.7 for 1, but neither source of 2 is sure (0.4 < 0.5): marked, as is vertex 3
    # (no source is sure)
    assert writes["part_label"].values.tolist() == [1, 2, -1, -1]
    assert writes["corr_source_object"].values.tolist() == [0, 1, 0, 0]
    assert writes["temperature"].values.tolist() == [0, 1, 0, 0]  # the most confident source's value
    assert np.allclose(writes["corr_confidence"].values, conf.max(0))
    one = combine.target_writes(matches[:1], tgt, threshold=0.5, fill="MARK")  # one source: the single-source writes
    assert [w.name for w in one] == [w.name for w in transfer.target_writes(src, tgt, matches[0].corr, matches[0].channels,
                                                                            0.5, "MARK")]


def test_a_polygon_takes_its_corner_values_from_one_source():
    from blender_addon import combine

    m = arrays()  # polygons 0 (corners 0-2: vertices 0, 1, 2) and 1 (corners 3-5: vertices 0, 2, 3)
    winners = combine.polygon_winners(np.array([1, 0, 1, 0]), m)
    assert winners.tolist() == [1, 1, 1, 0, 0, 0] or winners.tolist() == [1, 1, 1, 1, 1, 1]
    assert len(set(winners[:3])) == 1 and len(set(winners[3:])) == 1


def test_alignment_rotations_in_blenders_frame():
    quarter = np.array([[0, 0, 1], [0, 1, 0], [-1, 0, 0]], float)  # model frame: 90 degrees about +Y (up)
    rot = frames.rotation_to_blender(quarter)
    assert frames.is_about_up(rot) and np.isclose(abs(frames.degrees_about_up(rot)), 90)
    p = np.random.default_rng(1).normal(size=(5, 3))
    # turning Blender points by rot is the model turning their model-frame images by quarter
    assert np.allclose(frames.to_model(p @ rot.T), frames.to_model(p) @ quarter.T)
    m = np.eye(4)
    m[:3, 3] = [1, 2, 3]
    turned = frames.rotated_world(m, rot)
    assert np.allclose(turned[:3, 3], [1, 2, 3]) and np.allclose(turned[:3, :3], rot)
    assert not frames.is_about_up(frames.rotation_to_blender(np.diag([1.0, -1.0, -1.0])))


def test_rotations_blend_as_rotations_and_mark_as_the_identity():
    src = tgt = arrays()
    half_turn = np.array([0.0, 0.0, 0.0, 1.0], np.float32)  # q and -q: the same rotation
    rot = transfer.Channel("rot", "attribute", "POINT", "QUATERNION", np.array([half_turn, -half_turn] * 2))
    corr = identity_corr([1, 1, 0.1, 1])
    corr["source_bary"] = np.full((4, 3), 1 / 3)  # every vertex lands mid-triangle
    for fill in ("FILL", "MARK"):
        (w,) = [w for w in transfer.target_writes(src, tgt, corr, [rot], fill=fill) if w.name == "rot"]
        assert np.allclose(np.linalg.norm(w.values, axis=1), 1)
        assert np.allclose(np.abs(w.values[[0, 1, 3]]), half_turn)  # not cancelled out to a short quaternion
        assert np.allclose(np.abs(w.values[2]), half_turn if fill == "FILL" else [1, 0, 0, 0])


def test_fill_leaves_a_loose_piece_with_no_confident_vertex_what_it_matched():
    src = arrays()
    tgt = transfer.MeshArrays("t", src.vertices, src.triangles, src.triangle_loops, src.triangle_polygons,
                              src.loop_vertices, np.array([[0, 1], [2, 3]]))  # two pieces: 0-1 and 2-3
    weights = transfer.Channel("grp", "vertex_group", "POINT", "FLOAT", np.array([0.1, 0.2, 0.3, 0.4], np.float32))
    (w,) = [w for w in transfer.target_writes(src, tgt, identity_corr([1, 1, 0.1, 0.1]), [weights], fill="FILL")
            if w.name == "grp"]
    assert np.allclose(w.values, [0.1, 0.2, 0.3, 0.4])  # piece 2-3 keeps its matches, not weight 0


def test_a_face_is_marked_or_transferred_not_a_blend_of_the_two():
    src = tgt = arrays()  # two triangles: 0-1-2 and 0-2-3
    area = transfer.Channel("wear", "attribute", "FACE", "FLOAT", np.array([0.4, 0.4], np.float32))
    (w,) = [w for w in transfer.target_writes(src, tgt, identity_corr([1, 1, 1, 0.1]), [area], fill="MARK")
            if w.name == "wear"]
    assert np.allclose(w.values, [0.4, 0.4])  # triangle 0-2-3 from its two confident corners
    (w,) = [w for w in transfer.target_writes(src, tgt, identity_corr([0.1, 1, 0.1, 0.1]), [area], fill="MARK")
            if w.name == "wear"]
    assert np.allclose(w.values, [0.4, 0.0])  # 0-2-3 has no confident corner: the mark


def test_a_job_whose_client_cannot_be_made_fails_with_the_reason():
    job = Job(lambda client, progress: "done", "tcp://127.0.0.1:1", 1.0, {"secret": "", "curve": True}).start()
    with pytest.raises(ValueError, match="CurveZMQ .* needs the server's key"):
        job.wait(10)
