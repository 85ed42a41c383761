"""Auto-alignment on real PSB meshes: turned by seeded random rotations, the shipped
models recover the upright frame (up axis and yaw within 15 degrees, up to the shape's
symmetry: benchmarks/bench_align.py judges both)."""
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from benchmarks.bench_align import is_right, pose_error, random_rotation, symmetry_test, upright_meshes
from model import Correspondence
from model.alignment import cue_scores, normalised
from training import artist, cleaning, debian, sweethome

SHAPES = 2  # per category: the first PSB meshes of each


@pytest.fixture(scope="module", params=["chair", "table", "airplane"])
def category(request, psb_dir):
    return request.param, Correspondence.load(category=request.param, device="cpu"), upright_meshes(request.param, SHAPES)


def _recovered(engine, mesh, mode, seed):
    v, f = mesh
    truth = random_rotation(mode, seed)
    rotation = engine.align((v @ truth.T, f), mode)
    up, yaw = pose_error(rotation, truth)
    return is_right(up, yaw, symmetry_test(v, f)), (round(up, 1), round(yaw, 1))


def test_yaw_mode_recovers_a_random_turn(category):
    """Yaw mode is right on 75-100% of the real shapes (docs/model.md; the 24 axis rotations
    10-20%): of these two, at least one."""
    name, engine, meshes = category
    results = [_recovered(engine, mesh, "yaw", 100 + i) for i, mesh in enumerate(meshes)]
    assert sum(ok for ok, _ in results) >= 1, (name, results)


def test_full_mode_gives_a_proper_rotation(category):
    """Full 3D mode is right on 50-100% of real shapes (docs/model.md); here: it returns
    a rotation, which correspond reports."""
    name, engine, meshes = category
    v, f = meshes[0]
    turned = (v @ random_rotation(True, 200).T, f)
    rotation = engine.align(turned, True)
    assert np.allclose(rotation @ rotation.T, np.eye(3), atol=1e-6) and np.isclose(np.linalg.det(rotation), 1.0)


@pytest.mark.parametrize("mode, shapes", [("yaw", 5), (True, 2)])
def test_real_chairs_are_stood_up_and_turned_front_forward(mode, shapes, psb_dir):
    """The chair's cues (its back lifts the upper surface toward +Z, it stands square to its
    smallest footprint rectangle) with the model's fit: right on all 20 PSB chairs in yaw
    mode (85% by the fit alone) and on the first 6 in full mode (67%)."""
    engine = Correspondence.load(category="chair", device="cpu")
    results = [_recovered(engine, mesh, mode, 300 + i) for i, mesh in enumerate(upright_meshes("chair", shapes))]
    assert all(ok for ok, _ in results), results


def test_upright_shape_in_yaw_mode_stays_put(category):
    """Identity within 5 degrees, or a turn the shape is symmetric under (a table by 180)."""
    name, engine, meshes = category
    kept = []
    for v, f in meshes:
        up, yaw = pose_error(engine.align((v, f), "yaw"), np.eye(3))
        assert up < 1e-6, (name, up)  # yaw mode never tilts the up axis
        kept.append(abs(yaw) < 5 or (abs(yaw) > 15 and is_right(up, yaw, symmetry_test(v, f))))
    assert any(kept), (name, kept)


def test_upright_tables_the_score_cannot_turn_are_kept_as_they_face(psb_dir):
    """A round or square table's turn is a guess for the score: the pose a mesh arrives in
    is kept unless another scores clearly better (alignment.KEEP_MARGIN).  Without that,
    yaw mode turned PSB tables 146 and 150 (upright as given) by 57 and 77 degrees."""
    engine = Correspondence.load(category="table", device="cpu")
    meshes = upright_meshes("table", 10)
    for i in (5, 9):
        v, f = meshes[i]
        assert np.array_equal(engine.align((v, f), "yaw"), np.eye(3)), i
    truth = random_rotation("yaw", 5)  # turned by 70 degrees, a rectangular table is turned back
    v, f = meshes[0]
    assert is_right(*pose_error(engine.align((v @ truth.T, f), "yaw"), truth), symmetry_test(v, f))


@pytest.mark.parametrize("mode", ["yaw", True])
def test_an_upright_round_table_is_not_turned_by_its_own_symmetry(mode, psb_dir):
    """Where the best pose is the given one turned by a quarter or half turn the shape lies
    on itself under, the given pose stays: labelled sources keep the front they were
    labelled with. Before, PSB round tables 145 and 149 came back half a turn away."""
    engine = Correspondence.load(category="table", device="cpu")
    meshes = upright_meshes("table", 9)
    for i in (4, 8):
        assert np.allclose(engine.align(meshes[i], mode), np.eye(3), atol=1e-6), i


def test_rotation_is_reported(category):
    name, engine, meshes = category
    truth = random_rotation("yaw", 7)
    v, f = meshes[0]
    turned = (v @ truth.T, f)
    res = engine.correspond(meshes[1], turned, align="yaw")
    assert np.allclose(res.source_rotation @ res.source_rotation.T, np.eye(3), atol=1e-6)
    assert np.allclose(res.target_rotation, engine.align(turned, "yaw"))
    assert not np.allclose(res.target_rotation, np.eye(3))
    assert np.allclose(engine.reconstruct(turned, resolution=16, align="yaw").rotation, res.target_rotation)


def test_without_align_the_rotation_is_identity(category):
    name, engine, meshes = category
    assert np.array_equal(engine.prepare(meshes[0]).frame.rotation, np.eye(3))


def test_full_mode_on_a_shape_whose_hull_has_no_flat_facets(psb_dir):
    """The flat supports of the hull are candidate ups; a hull without two coplanar faces
    (an octahedron here; two of thirty Flightgear airliners' smooth fuselages) has none."""
    engine = Correspondence.load(category="airplane", device="cpu")
    octahedron = np.concatenate([np.eye(3), -np.eye(3)]) * [1.0, 0.5, 2.0]
    rotation = engine.align(octahedron, True)
    assert np.allclose(rotation @ rotation.T, np.eye(3), atol=1e-6) and np.isclose(np.linalg.det(rotation), 1.0)


@pytest.mark.parametrize("bad", ["full", "YAW", 1, 0.5, None, "true"])
def test_bad_align_values_raise_naming_them(bad, psb_dir):
    engine = Correspondence.load(category="chair", device="cpu")
    pts = np.random.default_rng(0).normal(size=(200, 3))
    for call in (lambda: engine.align(pts, bad), lambda: engine.segment(pts, align=bad),
                 lambda: engine.prepare(pts, align=bad)):
        with pytest.raises(ValueError, match=repr(bad).replace("(", r"\(")):
            call()


def test_the_box_cue_compares_a_footprint_with_its_smallest_rectangle_at_any_scale():
    """A cuboid square to the axes scores 0 however large it arrives, and more turned."""
    corners = np.array([[x, y, z] for x in (0, 4) for y in (0, 1) for z in (0, 2)], float) * 3.0
    poses = np.stack([np.eye(3), Rotation.from_euler("y", 30, degrees=True).as_matrix()])
    points, extent = normalised(np.einsum("bij,nj->bni", poses, corners))
    assert np.allclose(np.linalg.norm(extent, axis=1), 1.0)
    box = cue_scores(points, extent, ("box",))
    assert abs(box[0]) < 1e-9 and box[1] > 0.1, box


@pytest.mark.parametrize("category, index", [("chair", 17), ("airplane", 8)])
def test_full_mode_stands_shapes_up_without_a_tilt(category, index, psb_dir):
    """The model's fit decides the tilt: the back cue is capped (tilting a chair back lifts
    its back further toward +Z) and an airplane is scored flat (rolled, its footprint is
    compact). Before, this chair came out lying on its back and the airplane upside down."""
    engine = Correspondence.load(category=category, device="cpu")
    ok, errors = _recovered(engine, upright_meshes(category, index + 1)[index], True, index)
    assert ok, errors


@pytest.mark.parametrize("index", [8, 16])
def test_a_round_table_turned_is_set_by_its_legs_not_kept(index, psb_dir):
    """A round top looks square to the axes at any turn, its legs do not: a turned round
    table is aligned by the score, not kept as it came. Before, PSB tables 149 and 157 kept
    their random turn (118 and 156 degrees)."""
    engine = Correspondence.load(category="table", device="cpu")
    ok, errors = _recovered(engine, upright_meshes("table", index + 1)[index], "yaw", index)
    assert ok, errors


@pytest.mark.parametrize("index", [6, 14])
def test_a_tables_four_legs_stand_one_per_quadrant_unless_its_top_has_axes(index, psb_dir):
    """A round table's four legs stand one per quadrant, as a rectangular table's do (the
    dev set's feet keypoints are front-left, front-right, ...): PSB table 147, turned, comes
    back with its legs on the diagonals (before: on the axes, 44 degrees off). The oval
    table 155 keeps its legs on its top's axes (a cue for the diagonals alone turned it by 34
    degrees)."""
    engine = Correspondence.load(category="table", device="cpu")
    ok, errors = _recovered(engine, upright_meshes("table", index + 1)[index], "yaw", index)
    assert ok, errors


def test_the_feet_cue_prefers_four_legs_on_the_diagonals():
    """Four feet on the axes of a round table score worse than the same feet turned onto
    the diagonals."""
    top = np.stack(np.meshgrid(np.linspace(-1, 1, 21), [1.0], np.linspace(-1, 1, 21)), -1).reshape(-1, 3)
    top = top[np.linalg.norm(top[:, [0, 2]], axis=1) <= 1]  # round
    legs = np.array([[0.8 * np.cos(a), y, 0.8 * np.sin(a)] for a in np.arange(4) * np.pi / 2
                     for y in np.linspace(0, 0.9, 5)])
    poses = np.stack([np.eye(3), Rotation.from_euler("y", 45, degrees=True).as_matrix()])
    points, extent = normalised(np.einsum("bij,nj->bni", poses, np.concatenate([top, legs])))
    on_axes, on_diagonals = cue_scores(points, extent, ("feet",))
    assert on_diagonals < on_axes - 0.05, (on_axes, on_diagonals)


@pytest.mark.parametrize("category, index, mode", [("table", 1, True), ("table", 4, True), ("table", 12, "yaw"),
                                                   ("airplane", 7, True), ("airplane", 9, True)])
def test_full_mode_settles_the_up_axis_then_the_turn(category, index, mode, psb_dir):
    """PSB tables 142 and 145 in full mode, 153 in yaw mode, airplanes 68 and 70 in full
    mode. Before the up-then-turn search and the high/low, feet and stronger wide cues,
    142 and 68 came out upside down, 145 16 degrees off its legs' square, 153 turned by
    a quarter (deeper than wide) and 70 facing backwards."""
    engine = Correspondence.load(category=category, device="cpu")
    ok, errors = _recovered(engine, upright_meshes(category, index + 1)[index], mode, index)
    assert ok, errors


@pytest.fixture(scope="module")
def sweethome_furniture():
    """The real sweethome3d-furniture package (scripts/fetch_data.sh fetches it), extracted."""
    debs = sorted(artist.DEFAULT_CACHE.glob("sweethome3d-furniture_*.deb"))
    if not debs:
        pytest.skip(f"no sweethome3d-furniture .deb in {artist.DEFAULT_CACHE} (scripts/fetch_data.sh fetches it)")
    return debian.extract_deb(debs[-1], artist.DEFAULT_CACHE, artist.KEEP["sweethome3d-furniture"])


@pytest.mark.parametrize("catalogue, model, size, seed", [
    ("BlendSwap-CC-0", "technicalTable1", [214.7, 95.0, 118.8], 506),
    ("BlendSwap-CC-BY", "coffeeTable", [120.0, 45.0, 70.1], 511)])
def test_full_mode_stands_an_artists_long_table_on_its_legs(catalogue, model, size, seed, sweethome_furniture):
    """Each up direction is also tried with the footprint squared to its smallest rectangle:
    a long table scored at a turn off its footprint's square loses to itself lying on its
    side. Before, these two Sweet Home 3D tables came out on their sides (up 88 and 90
    degrees off). (The coffee table's front, a panel and a shelf, then reads as a desk's
    back: it stands, half a turn off.)"""
    job = {"file": str(sweethome_furniture / sweethome.FURNITURE_DIR / f"{catalogue}.sh3f"),
           "path": f"{catalogue.lower()}/{model}/{model}.obj", "catalogue_size_cm": size}
    v, f, _ = sweethome.load(job)
    engine = Correspondence.load(category="table", device="cpu")
    truth = random_rotation(True, seed)
    up, _ = pose_error(engine.align((v @ truth.T, f), True), truth)
    assert up < 15, up


def _lb_desk(sweethome_furniture) -> tuple[np.ndarray, np.ndarray]:
    job = {"file": str(sweethome_furniture / sweethome.FURNITURE_DIR / "BlendSwap-CC-0.sh3f"),
           "path": "blendswap-cc-0/lbDesk/lbDesk.obj", "catalogue_size_cm": [160.0, 72.3, 80.0]}
    return cleaning.clean_mesh(*sweethome.load(job)[:2])[:2]


def test_a_desk_faces_away_from_its_modesty_panel(sweethome_furniture):
    """The "knee" cue: the surface at mid height of a desk (its modesty panel, drawers,
    shelves) lies toward the back, its knee space toward the front. Before, this Sweet
    Home 3D desk came back half a turn off (178-180 degrees) at all of 6 random turns."""
    v, f = _lb_desk(sweethome_furniture)
    engine = Correspondence.load(category="table", device="cpu")
    for seed in (500, 503):
        truth = random_rotation("yaw", seed)
        up, yaw = pose_error(engine.align((v @ truth.T, f), "yaw"), truth)
        assert abs(yaw) < 15, (seed, yaw)


def test_full_mode_tries_a_desks_commonest_normal_as_its_up(sweethome_furniture):
    """The up directions tried include the commonest surface normals: a desk's principal
    axes mix up with depth (72 by 80 cm) and the sphere of directions passes 17 degrees
    from its up. Before, this Sweet Home 3D desk came out on its side (90 degrees); now
    it stands."""
    v, f = _lb_desk(sweethome_furniture)
    truth = random_rotation(True, 500)
    up, _ = pose_error(Correspondence.load(category="table", device="cpu").align((v @ truth.T, f), True), truth)
    assert up < 15, up


def test_a_table_top_lies_high_and_an_airplanes_surface_low():
    """The "high" cue scores a table standing on its legs better than upside down; the
    "low" cue the other way round (an airplane's fin rises above most of its surface)."""
    top = np.stack(np.meshgrid(np.linspace(-1, 1, 20), [0.9], np.linspace(-0.5, 0.5, 10)), -1).reshape(-1, 3)
    legs = np.array([[x, y, z] for x in (-0.9, 0.9) for z in (-0.4, 0.4) for y in np.linspace(0, 0.9, 5)])
    table = np.concatenate([top, legs])
    poses = np.stack([np.eye(3), Rotation.from_euler("x", 180, degrees=True).as_matrix()])
    points, extent = normalised(np.einsum("bij,nj->bni", poses, table))
    high, low = cue_scores(points, extent, ("high",)), cue_scores(points, extent, ("low",))
    assert high[0] < high[1] - 0.1 and low[0] > low[1] + 0.1, (high, low)
