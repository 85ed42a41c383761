"""The add-on in real bpy (headless) against a real server process with the shipped chair model."""
import socket
from pathlib import Path
import time
from types import SimpleNamespace

import numpy as np
import pytest

from blender_addon.client import ServerError

from ..conftest import child_env
from .conftest import SHIPPED_CHAIR, psb_object

pytestmark = pytest.mark.usefixtures("scene")


def attr(ob, name, key="value"):
    a = ob.data.attributes[name]
    width = {"FLOAT2": 2, "FLOAT_VECTOR": 3, "FLOAT_COLOR": 4}.get(a.data_type, 1)
    out = np.empty(len(a.data) * width, dtype=np.int32 if a.data_type == "INT" else np.float32)
    a.data.foreach_get(key, out)
    return a, out.reshape(len(a.data), width) if width > 1 else out


def user_attributes(ob):
    return sorted(a.name for a in ob.data.attributes if not a.name.startswith("."))


def world_vertices(ob):
    m = np.array(ob.matrix_world)
    co = np.array([v.co for v in ob.data.vertices])
    return co @ m[:3, :3].T + m[:3, 3]


def test_register_unregister_again(bpy):
    import blender_addon

    assert hasattr(bpy.types.Scene, "corr")
    assert {"segment", "transfer", "server_start", "server_stop", "server_check"} <= set(dir(bpy.ops.corr))
    blender_addon.unregister()
    assert not hasattr(bpy.types.Scene, "corr")
    blender_addon.register()
    assert bpy.context.scene.corr.threshold == 0.5


def test_segment_operator_writes_labels_on_real_chairs(bpy):
    obs = [psb_object(bpy, "chair", n) for n in ("101", "103")]
    for ob in obs:
        ob.select_set(True)
    assert bpy.ops.corr.segment() == {"FINISHED"}
    for ob in obs:
        a, labels = attr(ob, "part_label")
        assert (a.domain, a.data_type, len(labels)) == ("POINT", "INT", len(ob.data.vertices))
        c = ob.data.color_attributes["part_color"]
        assert (c.domain, c.data_type, len(c.data)) == ("POINT", "FLOAT_COLOR", len(ob.data.vertices))
        assert 2 <= len(np.unique(labels)) and labels.min() >= 0
        # the seat/legs/back order of a chair: the lowest tenth is not labelled like the top tenth
        z = world_vertices(ob)[:, 2]
        low, high = labels[z < np.quantile(z, 0.1)], labels[z > np.quantile(z, 0.9)]
        assert np.bincount(low).argmax() != np.bincount(high).argmax()


def copy_with(bpy, ob, name, matrix=None):
    new = ob.copy()
    new.data = ob.data.copy()
    new.name = name
    if matrix is not None:
        new.matrix_world = matrix
    bpy.context.scene.collection.objects.link(new)
    return new


def test_transfer_to_copies_of_itself(bpy):
    import mathutils

    from blender_addon import api

    src = psb_object(bpy, "chair", "101", "source")
    me = src.data
    world = world_vertices(src)
    height = (world[:, 2] - world[:, 2].min()) / np.ptp(world[:, 2])
    # a UV map, a colour, a vertex group and a generic attribute, all functions of position
    uv = me.uv_layers.new(name="UVMap")
    loop_v = np.array([lp.vertex_index for lp in me.loops])
    uv.data.foreach_set("uv", np.stack([height[loop_v], world[loop_v, 0]], 1).ravel())
    col = me.color_attributes.new("paint", "FLOAT_COLOR", "POINT")
    col.data.foreach_set("color", np.stack([height, 1 - height, height, np.ones_like(height)], 1).ravel())
    group = src.vertex_groups.new(name="top")
    for i in np.flatnonzero(height > 0.5):
        group.add([int(i)], float(height[i]), "REPLACE")
    temp = me.attributes.new("temperature", "FLOAT", "POINT")
    temp.data.foreach_set("value", height.astype(np.float32))

    plain = copy_with(bpy, src, "plain")
    # same shape in the world, other local coordinates: mesh turned one way, object the other,
    # then moved and scaled as a whole
    turn = mathutils.Matrix.Rotation(1.1, 4, "Z")
    moved = mathutils.Matrix.Translation((3, -1, 2)) @ mathutils.Matrix.Scale(2.5, 4) @ src.matrix_world @ turn
    turned = copy_with(bpy, src, "turned", moved)
    turned.data.transform(turn.inverted())
    for t in (plain, turned):  # the copies carry the source's data: clear what the transfer must write
        for name in ("UVMap", "paint", "temperature"):
            t.data.attributes.remove(t.data.attributes[name])
        t.vertex_groups.clear()

    report = api.transfer(src, [plain, turned], uv_map="UVMap", color="paint", vertex_groups=None,
                          attributes=["temperature"], threshold=0.0, fill="MARK")
    assert set(report) == {"plain", "turned"}
    n, n_loops = len(me.vertices), len(me.loops)
    for t in (plain, turned):
        for name, domain, dtype, length in [
            ("corr_confidence", "POINT", "FLOAT", n), ("corr_source_face", "POINT", "INT", n),
            ("corr_source_bary", "POINT", "FLOAT_VECTOR", n), ("corr_source_vertex", "POINT", "INT", n),
            ("corr_color", "POINT", "FLOAT_COLOR", n),
            ("part_label", "POINT", "INT", n), ("part_color", "POINT", "FLOAT_COLOR", n),
            ("UVMap", "CORNER", "FLOAT2", n_loops), ("paint", "POINT", "FLOAT_COLOR", n),
            ("temperature", "POINT", "FLOAT", n)]:
            a = t.data.attributes[name]
            assert (a.domain, a.data_type, len(a.data)) == (domain, dtype, length), name
        assert "top" in t.vertex_groups
    # object transforms are undone: the moved copy gets the same answer as the plain one
    _, f_plain = attr(plain, "corr_source_face")
    _, f_turned = attr(turned, "corr_source_face")
    assert (f_plain == f_turned).mean() > 0.9
    # every value is the source's, interpolated at the reported (triangle, barycentrics)
    me.calc_loop_triangles()
    tris = np.array([t.vertices[:] for t in me.loop_triangles])
    _, bary = attr(plain, "corr_source_bary", "vector")
    _, temp_t = attr(plain, "temperature")
    assert np.allclose(temp_t, (height[tris[f_plain]] * bary).sum(1), atol=1e-5)
    _, uv_t = attr(plain, "UVMap", "vector")
    loop_tris = np.array([t.loops[:] for t in me.loop_triangles])
    uv_src = np.stack([height[loop_v], world[loop_v, 0]], 1)
    expected_uv = (uv_src[loop_tris[f_plain]] * bary[..., None]).sum(1)[loop_v]
    # then relaxed (blender_addon/conformal.py): on a copy, nearer the source's own UVs than as matched
    relaxed, matched = np.abs(uv_t - uv_src).max(1), np.abs(expected_uv - uv_src).max(1)
    assert np.median(relaxed) < np.median(matched) and np.quantile(relaxed, 0.95) < np.quantile(matched, 0.95)
    # and the model maps each part of a chair onto itself: transferred height follows the real one
    assert np.corrcoef(temp_t, height)[0, 1] > 0.8
    w = np.zeros(n)
    for v in plain.data.vertices:
        for g in v.groups:
            w[v.index] = g.weight
    w_src = np.where(height > 0.5, height, 0.0)
    assert np.allclose(w, (w_src[tris[f_plain]] * bary).sum(1), atol=1e-4)  # weights follow the same map


def test_the_artists_face_labels_guide_and_label_the_transfer(bpy):
    from blender_addon import api

    src = psb_object(bpy, "chair", "101", "source")
    tgt = psb_object(bpy, "chair", "105", "target")
    m = np.array(src.matrix_world)
    centres = np.array([p.center for p in src.data.polygons]) @ m[:3, :3].T + m[:3, 3]
    upper = centres[:, 2] > (centres[:, 2].min() + centres[:, 2].max()) / 2  # the back; legs and seat below
    labels = src.data.attributes.new("part_label", "INT", "FACE")
    labels.data.foreach_set("value", np.where(upper, 4, 3).astype(np.int32))
    api.transfer(src, [tgt], threshold=0.0, fill="MARK")
    a, got = attr(tgt, "part_label")
    assert a.domain == "POINT" and set(np.unique(got)) <= {3, 4}
    height = world_vertices(tgt)[:, 2]
    high, low = got[height > np.quantile(height, 0.8)], got[height < np.quantile(height, 0.2)]
    assert np.mean(high == 4) > 0.8 and np.mean(low == 3) > 0.8
    assert attr(src, "part_label")[0].domain == "FACE"  # the artist's labels stay as they were


def point_cloud(bpy, ob, count, name):
    """`count` area-uniform samples of a mesh object's surface as a mesh of vertices only, as
    a scan's PLY imports."""
    from model.geometry import sample_surface

    triangles = np.array([p.vertices[:] for p in ob.data.polygons])
    me = bpy.data.meshes.new(name)
    me.from_pydata(sample_surface(world_vertices(ob), triangles, count, seed=0)[0].tolist(), [], [])
    cloud = bpy.data.objects.new(name, me)
    bpy.context.scene.collection.objects.link(cloud)
    return cloud


def test_a_point_cloud_takes_labels_from_a_mesh_and_gives_them_to_another(bpy):
    from scipy.spatial import cKDTree

    from blender_addon import api

    src, mesh = psb_object(bpy, "chair", "101", "source"), psb_object(bpy, "chair", "103", "mesh")
    scan = point_cloud(bpy, mesh, 3000, "scan")
    src.data.uv_layers.new(name="UVMap")
    before = user_attributes(scan)
    with pytest.raises(ValueError, match="'scan' is a point cloud, and UV maps"):
        api.transfer(src, [mesh, scan], uv_map="UVMap")
    assert user_attributes(scan) == before and "part_label" not in user_attributes(mesh)

    api.transfer(src, [mesh, scan])  # the model's parts of the source, as labels
    _, on_mesh = attr(mesh, "part_label")
    a, on_scan = attr(scan, "part_label")
    assert (a.domain, len(on_scan)) == ("POINT", 3000) and len(np.unique(on_scan)) >= 3
    nearest = cKDTree(world_vertices(mesh)).query(world_vertices(scan))[1]
    assert (on_scan == on_mesh[nearest]).mean() > 0.9  # a cloud of the chair is labelled as the chair is

    other = psb_object(bpy, "chair", "105", "other")
    api.transfer(scan, [other])  # the scan's own labels guide the match and travel
    _, face = attr(other, "corr_source_face")
    _, vertex = attr(other, "corr_source_vertex")
    assert (face == -1).all() and vertex.min() >= 0 and vertex.max() < 3000
    _, from_scan = attr(other, "part_label")
    api.transfer(mesh, [other])
    _, from_mesh = attr(other, "part_label")
    assert (from_scan == from_mesh).mean() > 0.85
    api.segment([scan])  # the model's own parts of the points
    _, parts = attr(scan, "part_label")
    assert (parts == on_scan).mean() > 0.9
    with pytest.raises(ValueError, match="'mesh' has faces"):
        api.show_points(mesh)


def as_point_cloud_object(bpy, ob, name):
    """A copy of a mesh object of vertices only as a Point Cloud object, as USD and Alembic
    imports and Geometry Nodes make them."""
    copy = ob.copy()
    copy.data, copy.name = ob.data.copy(), name
    bpy.context.scene.collection.objects.link(copy)
    for other in bpy.context.selected_objects:
        other.select_set(False)
    copy.select_set(True)
    bpy.context.view_layer.objects.active = copy
    assert bpy.ops.object.convert(target="POINTCLOUD") == {"FINISHED"}
    return bpy.data.objects[name]


def test_a_point_cloud_object_is_matched_as_its_points_are(bpy):
    from blender_addon import api, mesh_data

    src, mesh = psb_object(bpy, "chair", "101", "source"), psb_object(bpy, "chair", "103", "mesh")
    scan = point_cloud(bpy, mesh, 3000, "scan")
    points = as_point_cloud_object(bpy, scan, "points")
    assert points.type == "POINTCLOUD" and len(points.data.points) == 3000
    api.transfer(src, [scan, points])
    _, on_scan = attr(scan, "part_label")
    a, on_points = attr(points, "part_label")
    assert a.domain == "POINT" and (on_points == on_scan).mean() > 0.99  # the same points, the same answer
    assert "part_color" in points.data.color_attributes and "corr_confidence" in points.data.attributes

    other = psb_object(bpy, "chair", "105", "other")
    api.transfer(points, [other])  # as a source
    _, face = attr(other, "corr_source_face")
    _, from_points = attr(other, "part_label")
    api.transfer(scan, [other])
    _, from_scan = attr(other, "part_label")
    assert (face == -1).all() and (from_points == from_scan).mean() > 0.99
    api.segment([points])
    assert len(np.unique(attr(points, "part_label")[1])) >= 3

    group = src.vertex_groups.new(name="mask")
    group.add(list(range(len(src.data.vertices))), 0.5, "REPLACE")
    with pytest.raises(ValueError, match="'points': Point Cloud objects have no vertex groups to take 'mask'"):
        api.transfer(src, [points], vertex_groups=["mask"])
    points.data.materials.append(bpy.data.materials.new("scan paint"))
    with pytest.raises(ValueError, match="'points' is a point cloud: it has no faces to carry materials from"):
        api.transfer(points, [other], materials=True)

    api.show_points(points, "part_color")  # coloured and sized by a modifier: the points stay as they are
    assert [m.type for m in points.modifiers] == ["NODES"]
    assert len(mesh_data.gather(points, evaluated=True).vertices) == 3000


@pytest.mark.parametrize("kind", ["MESH", "POINTCLOUD"])
def test_a_point_cloud_is_shown_as_spheres_in_its_colours(bpy, kind):
    from blender_addon import api, mesh_data

    sphere = np.random.default_rng(0).normal(size=(3000, 3))
    sphere /= np.linalg.norm(sphere, axis=1, keepdims=True)
    me = bpy.data.meshes.new("scan")
    me.from_pydata(sphere.tolist(), [], [])
    top = (sphere[:, 2] > 0)[:, None]
    colours = np.where(top, [1.0, 0.0, 0.0, 1.0], [0.0, 0.0, 1.0, 1.0]).astype(np.float32)  # red above, blue below
    me.color_attributes.new("part_color", "FLOAT_COLOR", "POINT").data.foreach_set("color", colours.ravel())
    scan = bpy.data.objects.new("scan", me)
    bpy.context.scene.collection.objects.link(scan)
    if kind == "POINTCLOUD":  # its colours carried over; its points drawn, but not in their colours
        scan = as_point_cloud_object(bpy, scan, "points")
        bpy.data.objects.remove(bpy.data.objects["scan"])
    assert scan.type == kind
    with pytest.raises(ValueError, match="no colour attribute named 'corr_color'"):
        api.show_points(scan, "corr_color")
    api.show_points(scan)
    bpy.context.view_layer.objects.active = scan
    assert bpy.ops.corr.show_points(color="part_color") == {"FINISHED"}  # the panel's button: again, nothing added
    assert [m.type for m in scan.modifiers] == ["NODES"]
    assert len(mesh_data.gather(scan, evaluated=True).vertices) == 3000  # Use modifiers reads the same points
    scene = bpy.context.scene
    camera = bpy.data.objects.new("camera", bpy.data.cameras.new("camera"))
    camera.location, camera.rotation_euler = (0, -5, 0), (np.pi / 2, 0, 0)
    sun = bpy.data.objects.new("sun", bpy.data.lights.new("sun", "SUN"))
    for ob in (camera, sun):
        scene.collection.objects.link(ob)
    scene.camera, scene.render.engine, scene.cycles.samples = camera, "CYCLES", 4
    scene.render.resolution_x = scene.render.resolution_y = 48
    scene.render.filepath = str(Path(bpy.app.tempdir) / "points.png")
    bpy.ops.render.render(write_still=True)
    pixels = np.array(bpy.data.images.load(scene.render.filepath).pixels[:]).reshape(48, 48, 4)  # bottom row first
    upper, lower = pixels[28:36, 20:28, :3].mean((0, 1)), pixels[12:20, 20:28, :3].mean((0, 1))
    assert upper[0] > 2 * upper[2] and lower[2] > 2 * lower[0]  # the spheres drawn, each in its point's colour


def test_a_point_clouds_fill_runs_over_its_nearest_points(bpy):
    from blender_addon import mesh_data
    from blender_addon import transfer as tx

    x = np.r_[np.arange(10.0), 100.0]  # ten points a unit apart, and one far off
    none = np.zeros((0, 3), np.int64)
    scan = tx.MeshArrays("scan", np.c_[x, np.zeros((11, 2))], none, none, np.zeros(0, np.int64),
                         np.zeros(0, np.int64), np.zeros((0, 2), np.int64))
    edges = mesh_data.with_neighbours(scan).edges
    assert sorted(edges[edges[:, 0] == 0, 1].tolist()) == list(range(1, 9))  # its 8 nearest
    assert sorted(edges[edges[:, 0] == 10, 1].tolist()) == list(range(2, 10))  # the far one has its 8 nearest too
    source = tx.MeshArrays("source", scan.vertices, none, none, np.zeros(0, np.int64), np.zeros(0, np.int64),
                           np.zeros((0, 2), np.int64))
    heat = tx.Channel("heat", "attribute", "POINT", "FLOAT", x.astype(np.float32))
    corr = {"source_index": np.arange(11), "confidence": np.where(x < 5, 1.0, 0.0)}
    (w,) = [w for w in tx.target_writes(source, mesh_data.with_neighbours(scan), corr, [heat]) if w.name == "heat"]
    assert (w.values[:5] == x[:5]).all() and (w.values[5:] < 5).all()  # filled from the confident points


def test_a_target_split_at_every_face_is_sent_welded_and_labelled_as_its_welded_self(bpy, monkeypatch):
    from blender_addon import api
    from blender_addon.client import Client

    src, whole = psb_object(bpy, "chair", "101", "source"), psb_object(bpy, "chair", "103", "whole")
    triangles = np.array([p.vertices[:] for p in whole.data.polygons])
    me = bpy.data.meshes.new("split")  # flat shaded, as a glTF import: each triangle its own three vertices
    me.from_pydata(world_vertices(whole)[triangles].reshape(-1, 3).tolist(), [],
                   np.arange(triangles.size).reshape(-1, 3).tolist())
    split = bpy.data.objects.new("split", me)
    bpy.context.scene.collection.objects.link(split)
    sent, request = [], Client.request
    monkeypatch.setattr(Client, "request", lambda self, op, arrays=None, *a, **k: (
        op == "correspond" and sent.append(len(arrays["target_vertices"]))) or request(self, op, arrays, *a, **k))
    api.transfer(src, [whole, split], threshold=0.0)  # no fill: the split mesh's graph joins no two faces
    assert len(split.data.vertices) == 3 * len(triangles) and sent[1] <= sent[0] < len(split.data.vertices) / 5
    _, labels = attr(whole, "part_label")
    _, labels_split = attr(split, "part_label")
    assert (labels_split == labels[triangles.reshape(-1)]).mean() > 0.999
    api.segment([whole, split])
    _, parts = attr(whole, "part_label")
    _, parts_split = attr(split, "part_label")
    assert (parts_split == parts[triangles.reshape(-1)]).mean() > 0.999


def test_server_down_and_bad_meshes_write_nothing(bpy, monkeypatch):
    from blender_addon import api

    src, tgt = psb_object(bpy, "chair", "101"), psb_object(bpy, "chair", "103")
    before = [user_attributes(o) for o in (src, tgt)]
    with pytest.raises(ServerError, match="timeout"):
        api.transfer(src, [tgt], address="tcp://127.0.0.1:9", timeout=1.0)
    me = bpy.data.meshes.new("points")
    me.from_pydata([(0, 0, 0), (1, 0, 0)], [], [])
    two = bpy.data.objects.new("points", me)
    bpy.context.scene.collection.objects.link(two)
    with pytest.raises(ValueError, match="'points' has 2 vertices"):
        api.transfer(src, [tgt, two])
    with pytest.raises(ValueError, match="no UV map named 'nope'"):
        api.transfer(src, [tgt], uv_map="nope")
    assert [user_attributes(o) for o in (src, tgt)] == before
    # the operator reports instead of raising, and writes nothing either
    bpy.context.view_layer.objects.active = src
    src.select_set(True)
    tgt.select_set(True)
    bpy.context.scene.corr.threshold = 0.5
    from blender_addon import ui
    monkeypatch.setattr(ui, "preferences", lambda context=None: type("P", (), dict(
        address="tcp://127.0.0.1:9", timeout=1.0, python="", checkpoint="", device="AUTO"))())
    with pytest.raises(RuntimeError, match="server did not answer"):  # headless bpy raises reported errors
        bpy.ops.corr.transfer()
    assert bpy.ops.corr.server_check() == {"CANCELLED"}  # what a batch script tests
    monkeypatch.setattr(ui, "preferences", lambda context=None: type("P", (), dict(address="nonsense"))())
    assert not ui.check_server() and "cannot connect to 'nonsense'" in ui.status["text"]
    assert [user_attributes(o) for o in (src, tgt)] == before


def test_starting_a_local_server_never_blocks_blenders_main_thread(bpy, monkeypatch):
    from blender_addon import ui

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setattr(ui, "preferences", lambda context=None: SimpleNamespace(
        address=f"tcp://127.0.0.1:{port}", python="", checkpoint=str(SHIPPED_CHAIR), device="cpu", timeout=5.0))
    assert bpy.ops.corr.server_start() == {"FINISHED"}
    try:
        slowest, polls, deadline = 0.0, 0, time.monotonic() + 120
        while time.monotonic() < deadline:  # what Blender's timer does, here by hand (no event loop)
            started = time.perf_counter()
            again = ui._poll_start()
            slowest, polls = max(slowest, time.perf_counter() - started), polls + 1
            if again is None:
                break
            time.sleep(again)
        assert ui.status["text"] == "connected: chair on cpu" and ui.status["info"]["model"]["category"] == "chair"
        assert slowest < 0.1 and polls > 2  # each ping, up to 0.5 s while the server loads, waits in a thread
    finally:
        bpy.ops.corr.server_stop()
        if bpy.app.timers.is_registered(ui._poll_start):
            bpy.app.timers.unregister(ui._poll_start)


def test_undo_restores_the_meshes_and_the_turns_found(bpy):
    import mathutils

    from blender_addon import api
    src, tgt = psb_object(bpy, "chair", "101"), psb_object(bpy, "chair", "105")
    tgt.matrix_world = mathutils.Matrix.Rotation(np.radians(100), 4, "Z") @ tgt.matrix_world
    bpy.context.view_layer.objects.active = src
    src.select_set(True)
    tgt.select_set(True)
    bpy.context.scene.corr.align = "YAW"
    before = user_attributes(tgt)
    bpy.ops.ed.undo_push(message="before transfer")
    assert bpy.ops.corr.transfer("EXEC_DEFAULT", True) == {"FINISHED"}  # True: push an undo step, as the UI does
    assert "corr_confidence" in user_attributes(bpy.data.objects["105"])
    assert api.TURN_PROP in bpy.data.objects["105"]
    bpy.ops.ed.undo()
    assert user_attributes(bpy.data.objects["105"]) == before
    assert api.TURN_PROP not in bpy.data.objects["105"]  # no Apply offered for a transfer undone


def test_the_documented_batch_script(bpy, chair_server, tmp_path):
    import subprocess
    import sys

    from .conftest import ROOT

    psb_object(bpy, "chair", "101", "Source")
    psb_object(bpy, "chair", "105", "Target.001")
    psb_object(bpy, "chair", "110", "Other")
    scene_file = tmp_path / "scene.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(scene_file))
    env = child_env(CORR_SERVER_ADDRESS=chair_server.address, OMP_NUM_THREADS="1")
    out = subprocess.run([sys.executable, str(ROOT / "docs/examples/batch_transfer.py"), "--", str(scene_file),
                          "Source", "Target.*"], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "Target.001: mean confidence" in out.stdout and "Other" not in out.stdout
    bpy.ops.wm.open_mainfile(filepath=str(tmp_path / "scene_transferred.blend"))
    assert "part_label" in bpy.data.objects["Target.001"].data.attributes
    assert "corr_confidence" not in bpy.data.objects["Other"].data.attributes


def test_a_transform_a_script_just_set_is_the_one_gathered(bpy):
    import math

    from blender_addon import mesh_data

    bpy.ops.wm.read_factory_settings(use_empty=True)

    def triangle(name, link=True):
        me = bpy.data.meshes.new(name)
        me.from_pydata([(0, 0, 0), (1, 0, 0), (0, 1, 0)], [], [(0, 1, 2)])
        ob = bpy.data.objects.new(name, me)
        if link:
            bpy.context.scene.collection.objects.link(ob)
        return ob

    shown, unlinked, disabled = triangle("shown"), triangle("unlinked", link=False), triangle("disabled")
    disabled.hide_viewport = True
    parent = triangle("parent", link=False)
    unlinked.parent = parent
    before = mesh_data.gather(shown).vertices
    for ob in (shown, unlinked, disabled, parent):
        ob.rotation_euler.z, ob.scale = math.radians(90), (2, 2, 2)  # no scene update after: as a script does
    parent.location.x = 5
    turned = mesh_data.gather(shown).vertices
    assert not np.allclose(turned, before)
    assert np.allclose(mesh_data.gather(disabled).vertices, turned)
    # the parent (outside the view layer too) scales the child once more
    expected = mesh_data.gather(shown).vertices
    child = mesh_data.gather(unlinked).vertices
    assert np.allclose(np.linalg.norm(child[1] - child[0]), 2 * np.linalg.norm(expected[1] - expected[0]))
    with pytest.raises(ValueError, match="modifiers are not evaluated"):
        mesh_data.gather(unlinked, evaluated=True)


def _matched(target, source):
    """A made-up match: target vertex i onto source face i % F at its first corner, confident
    on all but the first vertex."""
    n = len(target.vertices)
    face = np.arange(n) % len(source.triangles)
    bary = np.tile([1.0, 0.0, 0.0], (n, 1))
    return {"source_face": face, "source_bary": bary, "source_index": source.triangles[face, 0],
            "confidence": np.where(np.arange(n) == 0, 0.0, 0.9)}


def test_corner_face_and_grouped_values_travel_to_their_own_domains(bpy):
    from blender_addon import combine, mesh_data
    from blender_addon import transfer as tx

    bpy.ops.wm.read_factory_settings(use_empty=True)
    sources = []
    for name, order in (("a", ("Arm", "Leg")), ("b", ("Leg", "Arm"))):
        bpy.ops.mesh.primitive_cube_add()
        ob = bpy.context.active_object
        ob.name = name
        for group in order:  # the same groups, listed in another order
            ob.vertex_groups.new(name=group).add([0, 1], 0.5 if group == "Arm" else 1.0, "REPLACE")
        ob.data.color_attributes.new("Col", "BYTE_COLOR", "CORNER").data.foreach_set(
            "color", np.tile([1.0, 0.0, 0.0, 1.0], len(ob.data.loops)))
        ob.data.attributes.new("region", "INT", "FACE").data.foreach_set("value", np.arange(6, dtype=np.int32))
        ob.data.attributes.new("pair", "INT32_2D", "POINT").data.foreach_set("value", np.tile([3, 4], 8))
        sources.append(ob)
    bpy.ops.mesh.primitive_cube_add()
    target = bpy.context.active_object
    target.data.vertices.add(16)  # loose vertices: as many vertices as corners (24)
    assert len(target.data.vertices) == len(target.data.loops) == 24
    tgt = mesh_data.gather(target)
    matches = []
    for src in sources:
        arrays = mesh_data.gather(src)
        channels = [*mesh_data.read_vertex_groups(src, ["Arm", "Leg"]), mesh_data.read_attribute(src, "Col"),
                    mesh_data.read_attribute(src, "region"), mesh_data.read_attribute(src, "pair")]
        matches.append(combine.Match(arrays, _matched(tgt, arrays), channels))
    for given in (matches[:1], matches):  # one source, and two voting
        writes = {w.name: w for w in combine.target_writes(given, tgt, fill="FILL")}
        assert writes["Col"].domain == "CORNER" and len(writes["Col"].values) == 24
        assert writes["region"].domain == "FACE" and len(writes["region"].values) == 6
        assert writes["pair"].values.shape == (24, 2) and (writes["pair"].values == [3, 4]).all()
        assert writes["Arm"].values.max() == 0.5 and writes["Leg"].values.max() == 1.0
        mesh_data.write_all([(target, list(writes.values()))])
    got = target.data.attributes
    assert (got["region"].domain, got["Col"].domain) == ("FACE", "CORNER")
    corner_colour = np.empty(len(target.data.loops) * 4, np.float32)
    got["Col"].data.foreach_get("color", corner_colour)
    assert np.allclose(corner_colour.reshape(-1, 4), [1, 0, 0, 1], atol=0.01)


def test_a_vertex_group_of_an_output_name_is_refused_before_anything_is_written(bpy):
    from blender_addon import mesh_data
    from blender_addon import transfer as tx

    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.ops.mesh.primitive_cube_add()
    ob = bpy.context.active_object
    ob.vertex_groups.new(name="part_color")
    before = sorted(a.name for a in ob.data.attributes)
    with pytest.raises(ValueError, match="has a vertex group named 'part_color'"):
        mesh_data.write_all([(ob, tx.label_writes(np.arange(8)))])
    assert sorted(a.name for a in ob.data.attributes) == before



def test_the_panel_runs_one_job_at_a_time_and_apply_turns_the_object_it_shows(bpy, monkeypatch):
    from blender_addon import api, mesh_data, ui

    bpy.ops.wm.read_factory_settings(use_empty=True)
    monkeypatch.setitem(ui.running, "job", SimpleNamespace(done=False))  # a transfer under way
    assert not bpy.ops.corr.transfer.poll() and not bpy.ops.corr.segment.poll() and not bpy.ops.corr.preview.poll()
    monkeypatch.setitem(ui.running, "job", SimpleNamespace(done=True))
    assert bpy.ops.corr.transfer.poll()
    bpy.ops.mesh.primitive_cube_add()
    shown = bpy.context.active_object
    bpy.ops.mesh.primitive_cube_add(location=(3, 0, 0))
    other = bpy.context.active_object
    quarter = [0.0, -1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0]
    for ob in (shown, other):
        ob[api.ROTATION_PROP] = quarter
    other.select_set(True)
    shown.select_set(False)
    bpy.context.view_layer.objects.active = shown  # the panel shows the active one, not selected
    assert bpy.ops.corr.apply_rotation(object=shown.name) == {"FINISHED"}
    assert api.ROTATION_PROP not in shown and api.ROTATION_PROP in other
    # sculpting with Dynamic Topology holds the mesh elsewhere: refused as Edit Mode is
    bpy.ops.object.select_all(action="DESELECT")
    bpy.context.view_layer.objects.active = shown
    bpy.ops.object.mode_set(mode="SCULPT")
    bpy.ops.sculpt.dynamic_topology_toggle()
    with pytest.raises(ValueError, match="Dynamic Topology"):
        mesh_data.writable(shown)
    bpy.ops.object.mode_set(mode="OBJECT")


def test_stopping_before_anything_is_done_writes_nothing_and_segment_says_it_stopped(bpy):
    from blender_addon import api

    bpy.ops.wm.read_factory_settings(use_empty=True)
    meshes = []
    for x in (0, 3, 6):
        bpy.ops.mesh.primitive_cube_add(location=(x, 0, 0))
        meshes.append(bpy.context.active_object)
    plan = api.TransferPlan(meshes[0], meshes[1:], api.TransferChoice(labels=False), api.Options())
    before = user_attributes(meshes[0])
    assert plan.apply({"parts": [None], "replies": [], "models": [], "writes": []}) == {}
    assert plan.stopped_after == 0 and user_attributes(meshes[0]) == before  # no corr_color on the source
    segment = api.SegmentPlan(meshes, api.Options())
    report = segment.apply([(np.zeros(8, np.int64), {"category": "chair", "rebuild_distance": None}, np.eye(3))])
    assert list(report) == [meshes[0].name] and segment.stopped_after == 1 and len(segment.targets) == 3


def test_an_undo_while_a_job_runs_does_not_lose_its_result(bpy):
    from blender_addon import api

    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.ops.mesh.primitive_cube_add()
    cube = bpy.context.active_object
    name = cube.name
    plan = api.SegmentPlan([cube], api.Options())
    bpy.ops.ed.undo_push(message="before")
    cube.location.x = 5  # the artist moves it, and takes that back while the server works
    bpy.ops.ed.undo_push(message="moved")
    bpy.ops.ed.undo()
    with pytest.raises(ReferenceError):
        cube.name  # every reference is stale after an undo
    report = plan.apply([(np.arange(8) % 2, {"category": "chair", "rebuild_distance": None}, np.eye(3))])
    assert list(report) == [name] and "part_label" in bpy.data.objects[name].data.attributes
    bpy.ops.mesh.primitive_cube_add(location=(4, 0, 0))
    edited = bpy.context.active_object
    plan = api.SegmentPlan([edited], api.Options())
    edited.data.vertices.add(1)  # edited while the server works on the old mesh
    with pytest.raises(ValueError, match="was edited while the job ran"):
        plan.apply([(np.arange(8) % 2, {"category": "chair", "rebuild_distance": None}, np.eye(3))])
    assert "part_label" not in edited.data.attributes
    import bmesh

    plan = api.SegmentPlan([cube := bpy.data.objects[name]], api.Options())
    mesh = bmesh.new()
    mesh.from_mesh(cube.data)
    bmesh.ops.reverse_faces(mesh, faces=mesh.faces[:1])  # Flip Normals: the same counts, other corners
    mesh.to_mesh(cube.data)
    mesh.free()
    with pytest.raises(ValueError, match="its vertices or faces changed"):
        plan.apply([(np.arange(8) % 2, {"category": "chair", "rebuild_distance": None}, np.eye(3))])


def test_the_chosen_category_is_kept_by_name_in_the_file(bpy, tmp_path, monkeypatch):
    from blender_addon import ui

    bpy.ops.wm.read_factory_settings(use_empty=True)
    served = lambda *categories: {"categories": list(categories), "model": {"category": "chair"}, "checkpoints": {}}
    monkeypatch.setitem(ui.status, "info", served("chair", "table"))
    bpy.context.scene.corr.category = "table"
    bpy.ops.wm.save_as_mainfile(filepath=str(tmp_path / "chosen.blend"))
    bpy.ops.wm.read_factory_settings(use_empty=True)
    monkeypatch.setitem(ui.status, "info", None)  # opened before Check server
    bpy.ops.wm.open_mainfile(filepath=str(tmp_path / "chosen.blend"))
    assert bpy.context.scene.corr.category == "table" and ui.options(bpy.context).category == "table"
    monkeypatch.setitem(ui.status, "info", served("airplane", "bench", "chair", "table"))  # a server of more models
    assert bpy.context.scene.corr.category == "table"
