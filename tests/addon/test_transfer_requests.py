"""Transfers in real bpy against the real chair server: requests per target, the server's
prepared-shape cache, several sources, stopping between targets, preview, alignment turns."""
import numpy as np
import pytest

from blender_addon import api
from blender_addon.client import Client
from blender_addon.jobs import Job, Progress

from .conftest import psb_object
from .test_blender import attr, user_attributes, world_vertices

pytestmark = pytest.mark.usefixtures("scene")


def server_counts(address):
    with Client(address) as c:
        pong = c.ping()
    return pong["handled"], pong["prepared"]


def delta(before, after):
    (h0, p0), (h1, p1) = before, after
    return ({op: h1.get(op, 0) - h0.get(op, 0) for op in set(h0) | set(h1)},
            {k: p1[k] - p0[k] for k in ("hits", "misses")})


def label_halves(ob, low=3, high=4):
    """Face labels: the upper half of the chair `high`, the lower `low` (the artist's own)."""
    m = np.array(ob.matrix_world)
    centres = np.array([p.center for p in ob.data.polygons]) @ m[:3, :3].T + m[:3, 3]
    upper = centres[:, 2] > (centres[:, 2].min() + centres[:, 2].max()) / 2
    ob.data.attributes.new("part_label", "INT", "FACE").data.foreach_set("value", np.where(upper, high, low).astype(np.int32))


def moved_away(bpy, *obs):
    """Objects placed where no other test put them: shapes the server has not prepared yet."""
    for ob in obs:
        ob.location.x += 17.0
    bpy.context.view_layer.update()
    return obs


def test_one_request_per_target_and_the_source_prepared_once(bpy, chair_server):
    src, *targets = moved_away(bpy, psb_object(bpy, "chair", "101", "source"),
                               *(psb_object(bpy, "chair", n) for n in ("103", "105")))
    before = server_counts(chair_server.address)
    api.transfer(src, targets, threshold=0.0)  # no labels on the source: the model's parts come with reply 1
    handled, prepared = delta(before, server_counts(chair_server.address))
    assert handled.get("correspond") == 2 and not handled.get("segment")
    assert prepared == {"misses": 3, "hits": 1}  # the source once, each target once
    assert {"part_label", "corr_color"} <= set(user_attributes(src))
    # the same source again: nothing prepared again; moved (a changed mesh): prepared again
    before = server_counts(chair_server.address)
    api.transfer(src, targets[:1], threshold=0.0)
    assert delta(before, server_counts(chair_server.address))[1] == {"misses": 0, "hits": 2}
    src.data.vertices[0].co.x += 0.05
    before = server_counts(chair_server.address)
    api.transfer(src, targets[:1], threshold=0.0)
    assert delta(before, server_counts(chair_server.address))[1] == {"misses": 1, "hits": 1}


def test_several_sources_vote_from_the_panel_and_the_script_api(bpy, chair_server):
    a, b = psb_object(bpy, "chair", "101", "a"), psb_object(bpy, "chair", "105", "b")
    for ob in (a, b):
        label_halves(ob)
    tgt = psb_object(bpy, "chair", "110", "target")
    camera = bpy.data.objects.new("camera", bpy.data.cameras.new("camera"))
    bpy.context.scene.collection.objects.link(camera)
    before = server_counts(chair_server.address)
    report = api.transfer(sources=[a, b], targets=bpy.context.scene.collection.objects, threshold=0.0, fill="MARK")
    assert set(report) == {"target"}  # the sources and the camera are skipped
    assert delta(before, server_counts(chair_server.address))[0].get("correspond") == 2  # one per source
    _, got = attr(tgt, "part_label")
    _, which = attr(tgt, "corr_source_object")
    assert set(np.unique(got)) <= {3, 4} and set(np.unique(which)) == {0, 1}  # both sources lend values
    height = world_vertices(tgt)[:, 2]
    assert np.mean(got[height > np.quantile(height, 0.8)] == 4) > 0.8
    assert np.mean(got[height < np.quantile(height, 0.2)] == 3) > 0.8
    # the panel: with Several sources, the selected meshes carrying part_label are sources
    other = psb_object(bpy, "chair", "103", "other")
    for ob in (a, b, other):
        ob.select_set(True)
    bpy.context.view_layer.objects.active = a
    bpy.context.scene.corr.several_sources = True
    from blender_addon import ui
    sources, targets = ui.split_selection(bpy.context)
    assert sources == [a, b] and targets == [other]
    assert bpy.ops.corr.transfer() == {"FINISHED"}
    assert "corr_source_object" in other.data.attributes
    unlabelled = psb_object(bpy, "chair", "112", "unlabelled")
    with pytest.raises(ValueError, match="carry part_label but unlabelled do not"):
        api.transfer(sources=[a, unlabelled], targets=[other])


class StopDuringTheSecond(Progress):
    """The user presses Esc while the second target is being matched."""

    def __call__(self, fraction, text):
        super().__call__(fraction, text)
        if text.endswith("(2/3)"):
            self.request_stop()


def test_stopping_writes_the_targets_done_and_leaves_the_rest(bpy, chair_server):
    src = psb_object(bpy, "chair", "101", "source")
    targets = [psb_object(bpy, "chair", n) for n in ("103", "105", "110")]
    untouched = user_attributes(targets[2])
    plan = api.TransferPlan(src, targets, api.TransferChoice(threshold=0.0), api.Options(address=chair_server.address))
    job = Job(plan.work, chair_server.address)
    job.progress = StopDuringTheSecond()
    report = plan.apply(job.start().wait())
    assert set(report) == {"103", "105"} and plan.stopped_after == 2
    assert "corr_confidence" in user_attributes(targets[1]) and user_attributes(targets[2]) == untouched


def test_preview_writes_only_the_match_colours_and_keeps_the_turns(bpy):
    src, tgt = psb_object(bpy, "chair", "101", "source"), psb_object(bpy, "chair", "105", "target")
    import mathutils
    tgt.matrix_world = mathutils.Matrix.Rotation(np.pi / 2, 4, "Z") @ tgt.matrix_world  # turned a quarter
    before = user_attributes(tgt)
    src[api.TURN_PROP] = 12.0  # a stale turn from an earlier run
    api.transfer(src, [tgt], preview=True, uv_map="ignored in a preview", align="yaw")
    assert sorted(set(user_attributes(tgt)) - set(before)) == ["corr_color"]
    assert "part_label" not in src.data.attributes
    # the turn auto-alignment found (yaw mode: about Z) on the turned mesh; none on the one it left as it was
    assert len(tgt[api.ROTATION_PROP]) == 9 and abs(abs(tgt[api.TURN_PROP]) - 90) < 1
    assert api.ROTATION_PROP not in src and api.TURN_PROP not in src
    # a found rotation applies to the object about its origin, and is then used up
    quarter = [0.0, -1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0]  # 90 degrees about Z
    tgt[api.ROTATION_PROP] = quarter
    m0 = np.array(tgt.matrix_world)
    tgt.select_set(True)
    assert bpy.ops.corr.apply_rotation() == {"FINISHED"}
    m1 = np.array(tgt.matrix_world)
    assert np.allclose(m1[:3, :3], np.reshape(quarter, (3, 3)) @ m0[:3, :3], atol=1e-6)
    assert np.allclose(m1[:3, 3], m0[:3, 3])
    assert api.ROTATION_PROP not in tgt
    # Segment keeps the turn it found as well
    tgt.matrix_world = mathutils.Matrix.Rotation(np.pi / 2, 4, "Z") @ tgt.matrix_world
    api.segment([tgt], align="yaw")
    assert abs(abs(tgt[api.TURN_PROP]) - 90) < 1


def test_the_report_names_the_model_and_a_target_it_does_not_explain(bpy, chair_server):
    """The chair model rebuilds a real chair within 0.04 of its diagonal and an airplane
    0.1 off: the report carries both, and the summary warns of the airplane alone."""
    from blender_addon import ui
    from server.client import UNLIKE_DISTANCE

    src, chair, plane = moved_away(bpy, psb_object(bpy, "chair", "101", "source"), psb_object(bpy, "chair", "103"),
                                   psb_object(bpy, "airplane", "69"))
    report = api.transfer(src, [chair, plane], threshold=0.0)
    assert report[chair.name]["category"] == report[plane.name]["category"] == "chair"
    assert report[chair.name]["rebuild_distance"] < UNLIKE_DISTANCE < report[plane.name]["rebuild_distance"]
    said = ui._summary(report)
    assert f"{plane.name} does not look like a chair to its model" in said and f"{chair.name} does not" not in said
    # a script gets the same in each report's warnings
    assert any(w.startswith(f"{plane.name} does not look like a chair") for w in report[plane.name]["warnings"])
    assert not any("does not look like" in w for w in report[chair.name]["warnings"])
    assert api.warnings_of("c", {"mean_confidence": 0.3}, False) == [
        'low confidence on c (mean 0.30, below 0.55); if it is turned, try align="yaw" (about Z) or align=True '
        '(any rotation)']
    assert api.warnings_of("c", {"mean_confidence": 0.9}, False) == []
    assert "set Category to Auto" not in said and "set Category to Auto" in ui._summary(report, others=True)
    low = {"chair": {"mean_confidence": 0.3}}  # the hint follows the Auto-align mode the meshes were matched with
    assert "set Auto-align to Turn about Z" in ui._summary(low, align="OFF")
    assert "Turn about Z" not in ui._summary(low, align="YAW") and "to Any rotation" in ui._summary(low, align="YAW")
    assert ui._summary(low, align="ANY") == "chair (confidence 0.30); low confidence on chair"
    assert api.segment([plane])[plane.name]["rebuild_distance"] == report[plane.name]["rebuild_distance"]


def test_the_category_menu_comes_from_the_server_and_the_log_opens(bpy, chair_server, tmp_path, monkeypatch):
    from blender_addon import ui

    assert ui.check_server(bpy.context) and ui.status["text"] == "connected: chair on cpu"
    assert bpy.ops.corr.server_check() == {"FINISHED"}
    items = {i[0]: i[1] for i in ui.category_items(None, bpy.context)}
    assert items == {"DEFAULT": "Server default (chair, chair.pth)", "chair": "chair (chair.pth)"}
    served = {**ui.status["info"], "categories": ["airplane", "chair", "table"]}
    monkeypatch.setitem(ui.status, "info", served)  # a server of the shipped models: Auto among them
    assert [i[0] for i in ui.category_items(None, bpy.context)] == ["DEFAULT", "airplane", "chair", "table", "auto"]
    monkeypatch.undo()
    bpy.context.scene.corr.category = "chair"
    assert ui.options(bpy.context).category == "chair" and ui.options(bpy.context).align == "yaw"  # upright meshes, turned about Z
    log = tmp_path / "corr-server.log"
    log.write_text("ready tcp://127.0.0.1:5555\n")
    monkeypatch.setattr(ui.local_server, "log_path", log)
    assert bpy.ops.corr.server_log() == {"FINISHED"}
    assert bpy.data.texts[log.name].as_string().startswith("ready")


def polygon_heights(ob):
    m = np.array(ob.matrix_world)
    return (np.array([p.center for p in ob.data.polygons]) @ m[:3, :3].T + m[:3, 3])[:, 2]


def material_halves(bpy, ob, low, high):
    """Two material slots: `high` on the upper half of the chair's polygons, `low` below."""
    for name in (low, high):
        ob.data.materials.append(bpy.data.materials.get(name) or bpy.data.materials.new(name))
    z = polygon_heights(ob)
    ob.data.polygons.foreach_set("material_index", (z > (z.min() + z.max()) / 2).astype(np.int32))


def slots(ob):
    return [m.name for m in ob.data.materials]


def used(ob, where):
    index = np.array([p.material_index for p in ob.data.polygons])[where]
    return np.array(slots(ob))[index]


def test_materials_follow_the_match_from_one_or_several_sources(bpy):
    a, b = psb_object(bpy, "chair", "101", "a"), psb_object(bpy, "chair", "105", "b")
    material_halves(bpy, a, "wood", "cloth")
    material_halves(bpy, b, "steel", "cloth")
    one, two = psb_object(bpy, "chair", "110", "one"), psb_object(bpy, "chair", "110", "two")
    one.data.materials.append(bpy.data.materials.new("own"))
    api.transfer(a, [one], labels=False, materials=True, threshold=0.0)
    assert slots(one) == ["wood", "cloth"]  # the target's own slot is replaced
    z = polygon_heights(one)
    top, bottom = z > np.quantile(z, 0.8), z < np.quantile(z, 0.2)
    assert np.mean(used(one, top) == "cloth") > 0.9 and np.mean(used(one, bottom) == "wood") > 0.9
    # several sources: one list of slots, each polygon's material from the source it follows
    api.transfer(sources=[a, b], targets=[two], labels=False, materials=True, threshold=0.0)
    assert slots(two) == ["wood", "cloth", "steel"]
    assert np.mean(used(two, top) == "cloth") > 0.9
    assert np.isin(used(two, bottom), ["wood", "steel"]).mean() > 0.9 and len(set(used(two, bottom))) == 2
    # the panel's Materials box
    three = psb_object(bpy, "chair", "110", "three")
    for ob in (one, two, b):
        ob.select_set(False)
    for ob in (a, three):
        ob.select_set(True)
    bpy.context.view_layer.objects.active = a
    bpy.context.scene.corr.transfer_labels, bpy.context.scene.corr.materials = False, True
    assert bpy.ops.corr.transfer() == {"FINISHED"}
    assert slots(three) == ["wood", "cloth"]
    # a source without materials: a clear error, and the target keeps what it had
    bare = psb_object(bpy, "chair", "103", "bare")
    with pytest.raises(ValueError, match="'bare' has no materials to transfer"):
        api.transfer(bare, [one], labels=False, materials=True)
    assert slots(one) == ["wood", "cloth"]


def _failing_write(monkeypatch, n_vertices):
    """A last write that fails while writing (as a full disk or a bpy error would), after the others."""
    from blender_addon import mesh_data
    from blender_addon.transfer import Write

    def boom(obj, w, undo):
        raise RuntimeError("the write failed")
    monkeypatch.setitem(mesh_data.WRITERS, "boom", boom)
    return Write("late", "boom", "POINT", "FLOAT", np.zeros(n_vertices, np.float32))


def test_a_failed_write_puts_the_materials_back(bpy, monkeypatch):
    from blender_addon import mesh_data
    from blender_addon.transfer import Write

    tgt = psb_object(bpy, "chair", "103", "tgt")
    material_halves(bpy, tgt, "oak", "linen")
    tgt.data.uv_layers.new(name="UVMap")
    before = np.array([p.material_index for p in tgt.data.polygons])
    other = bpy.data.materials.new("steel")
    n = len(tgt.data.polygons)
    writes = [Write("material_index", "material", "FACE", "INT", np.zeros(n, np.int32), names=(other.name,)),
              _failing_write(monkeypatch, len(tgt.data.vertices))]
    with pytest.raises(RuntimeError, match="the write failed"):
        mesh_data.write_all([(tgt, writes)])
    assert slots(tgt) == ["oak", "linen"]
    assert np.array_equal([p.material_index for p in tgt.data.polygons], before)
    # a point attribute named like a UV map is refused before anything is written
    with pytest.raises(ValueError, match="already has 'UVMap'"):
        mesh_data.write_all([(tgt, [Write("material_index", "material", "FACE", "INT", np.zeros(n, np.int32),
                                          names=(other.name,)),
                                    Write("UVMap", "attribute", "POINT", "FLOAT",
                                          np.zeros(len(tgt.data.vertices), np.float32))])])
    assert slots(tgt) == ["oak", "linen"]
    with pytest.raises(ValueError, match="no longer in the file"):
        mesh_data.write_all([(tgt, [Write("material_index", "material", "FACE", "INT", np.zeros(n, np.int32),
                                          names=("gone",))])])


def test_a_failed_write_brings_back_an_attribute_of_the_same_name_and_another_type(bpy, monkeypatch):
    from blender_addon import mesh_data, transfer

    tgt = psb_object(bpy, "chair", "103", "tgt")
    n = len(tgt.data.vertices)
    mine = np.linspace(0, 1, n).astype(np.float32)
    tgt.data.attributes.new("part_label", "FLOAT", "POINT").data.foreach_set("value", mine)  # the user's own
    writes = transfer.label_writes(np.zeros(n, np.int32)) + [_failing_write(monkeypatch, n)]
    with pytest.raises(RuntimeError, match="the write failed"):
        mesh_data.write_all([(tgt, writes)])
    attr = tgt.data.attributes["part_label"]
    assert (attr.data_type, attr.domain) == ("FLOAT", "POINT")
    back = np.empty(n, np.float32)
    attr.data.foreach_get("value", back)
    assert np.array_equal(back, mine) and "part_color" not in tgt.data.attributes


def test_a_channel_named_like_the_transfers_own_results_is_refused(bpy):
    src, tgt = psb_object(bpy, "chair", "101", "src"), psb_object(bpy, "chair", "103", "tgt")
    src.data.color_attributes.new("part_color", "FLOAT_COLOR", "POINT")
    before = user_attributes(tgt)
    with pytest.raises(ValueError, match="'part_color': the transfer writes its own results under that name"):
        api.transfer(src, [tgt], color="part_color")
    assert user_attributes(tgt) == before


def test_a_server_that_is_not_there_is_reported_in_seconds(bpy):
    import time

    from blender_addon.client import ServerError
    src, tgt = psb_object(bpy, "chair", "101", "src"), psb_object(bpy, "chair", "103", "tgt")
    started = time.monotonic()
    with pytest.raises(ServerError, match="no server answers at tcp://127.0.0.1:9"):
        api.transfer(src, [tgt], address="tcp://127.0.0.1:9", timeout=300.0)
    assert time.monotonic() - started < 30


def test_a_write_that_fails_halfway_leaves_nothing_behind(bpy, monkeypatch):
    """An attribute the writer created before its values failed to go in is removed with
    the rest (values the checks let through by mistake stand for any bpy failure there)."""
    from blender_addon import mesh_data
    from blender_addon.transfer import Write

    tgt = psb_object(bpy, "chair", "103", "tgt")
    before = user_attributes(tgt)
    monkeypatch.setattr(mesh_data, "_checked", lambda obj, w: w)
    short = Write("late", "attribute", "POINT", "FLOAT", np.zeros(3, np.float32))  # 3 values for every vertex
    with pytest.raises(Exception):
        mesh_data.write_all([(tgt, [short])])
    assert user_attributes(tgt) == before


def test_edit_mode_and_shared_meshes_are_refused_before_anything_is_written(bpy):
    src, tgt = psb_object(bpy, "chair", "101", "src"), psb_object(bpy, "chair", "103", "tgt")
    before = [user_attributes(o) for o in (src, tgt)]
    bpy.context.view_layer.objects.active = tgt
    bpy.ops.object.mode_set(mode="EDIT")
    try:
        with pytest.raises(ValueError, match="'tgt' is in Edit Mode: switch to Object Mode"):
            api.transfer(src, [tgt])
        from blender_addon import mesh_data, transfer  # entered while the server worked: refused at writing too
        with pytest.raises(ValueError, match="'tgt' is in Edit Mode"):
            mesh_data.write_all([(tgt, transfer.label_writes(np.zeros(len(tgt.data.vertices), np.int32)))])
    finally:
        bpy.ops.object.mode_set(mode="OBJECT")
    twin = tgt.copy()  # a linked duplicate (Alt+D): one mesh, two objects
    bpy.context.scene.collection.objects.link(twin)
    with pytest.raises(ValueError, match="'tgt' and 'tgt.001' share one mesh"):
        api.transfer(src, [tgt, twin])
    with pytest.raises(ValueError, match="share one mesh"):
        api.segment([tgt, twin])
    src_twin = src.copy()
    bpy.context.scene.collection.objects.link(src_twin)
    with pytest.raises(ValueError, match="'src' and 'src.001' share one mesh"):
        api.transfer(src, [src_twin])
    with pytest.raises(ValueError, match="'position': one of Blender's own attributes"):
        api.transfer(src, [tgt], attributes=["position"])
    assert [user_attributes(o) for o in (src, tgt)] == before


def test_a_source_whose_modifiers_add_vertices_is_used_as_evaluated_and_left_as_it_is(bpy):
    """A half-modelled source with a Mirror modifier: the target is matched to the whole
    chair, and the source itself keeps its mesh (the results would not fit its vertices)."""
    src, tgt = psb_object(bpy, "chair", "101", "src"), psb_object(bpy, "chair", "103", "tgt")
    src.modifiers.new("mirror", "MIRROR")
    before = user_attributes(src)
    report = api.transfer(src, [tgt], evaluated=True)
    assert "part_label" in report["tgt"]["written"]
    assert user_attributes(src) == before
    assert tgt.data.color_attributes.default_color_name == "part_color"  # what renders show


def test_linked_meshes_are_refused_before_the_server_is_asked(bpy, tmp_path):
    src, tgt = psb_object(bpy, "chair", "101", "src"), psb_object(bpy, "chair", "103", "tgt")
    library = tmp_path / "props.blend"
    bpy.data.libraries.write(str(library), {tgt.data})
    with bpy.data.libraries.load(str(library), link=True) as (_, data_to):
        data_to.meshes = [tgt.data.name]
    linked = bpy.data.objects.new("linked", data_to.meshes[0])
    bpy.context.scene.collection.objects.link(linked)
    before = user_attributes(src)
    for plan in (lambda: api.transfer(src, [linked]), lambda: api.transfer(linked, [tgt]),
                 lambda: api.segment([linked])):
        with pytest.raises(ValueError, match="'linked' uses a mesh linked from .*props.blend.*Make Local"):
            plan()
    assert user_attributes(src) == before and not any(a.name == "part_label" for a in linked.data.attributes)


def test_the_artists_whole_number_labels_of_any_type_guide_and_others_are_refused(bpy):
    src, tgt = psb_object(bpy, "chair", "101", "src"), psb_object(bpy, "chair", "105", "tgt")
    label_halves(src)
    ints = attr(src, "part_label")[1].astype(np.float32)
    src.data.attributes.remove(src.data.attributes["part_label"])
    as_float = src.data.attributes.new("part_label", "FLOAT", "FACE")  # as an imported .ply brings them
    as_float.data.foreach_set("value", ints)
    api.transfer(src, [tgt], threshold=0.0, fill="MARK")
    assert set(np.unique(attr(tgt, "part_label")[1])) <= {3, 4}
    a, kept = attr(src, "part_label")
    assert a.data_type == "FLOAT" and np.array_equal(kept, ints)  # the artist's labels stay as they were
    target_labels = attr(tgt, "part_label")[1].copy()
    as_float.data.foreach_set("value", ints + 0.5)
    with pytest.raises(ValueError, match="'src' has part_label values that are not whole numbers"):
        api.transfer(src, [tgt])
    src.data.attributes.remove(src.data.attributes["part_label"])
    src.data.attributes.new("part_label", "FLOAT_VECTOR", "POINT")
    with pytest.raises(ValueError, match="'src' has part_label as FLOAT_VECTOR on POINT"):
        api.transfer(src, [tgt])
    assert np.array_equal(attr(tgt, "part_label")[1], target_labels)


def test_a_target_deleted_or_out_of_uv_maps_gets_nothing_written(bpy, chair_server):
    from blender_addon import mesh_data

    src, tgt = psb_object(bpy, "chair", "101", "src"), psb_object(bpy, "chair", "103", "tgt")
    src.data.uv_layers.new(name="UVMap")
    for i in range(mesh_data.MAX_UV_MAPS):
        tgt.data.uv_layers.new(name=f"uv{i}")
    before = [user_attributes(o) for o in (src, tgt)]
    with pytest.raises(ValueError, match="'tgt' already has 8 UV maps"):
        api.transfer(src, [tgt], uv_map="UVMap")
    assert [user_attributes(o) for o in (src, tgt)] == before
    gone = psb_object(bpy, "chair", "105", "gone")
    plan = api.TransferPlan(src, [gone], api.TransferChoice(), api.Options(address=chair_server.address))
    result = Job(plan.work, chair_server.address, 120.0).start().wait()
    bpy.data.objects.remove(gone)  # deleted while the server worked
    with pytest.raises(ValueError, match="deleted while it ran: nothing was written"):
        plan.apply(result)
    assert user_attributes(src) == before[0]


def test_vertex_groups_are_written_kept_where_asked_and_put_back_on_a_failed_write(bpy, monkeypatch):
    from blender_addon import mesh_data
    from blender_addon.transfer import Write

    tgt = psb_object(bpy, "chair", "103", "tgt")
    n = len(tgt.data.vertices)
    rng = np.random.default_rng(0)
    old = np.where(rng.random(n) < 0.5, 1.0, rng.random(n)).astype(np.float32)  # a rig's full weights and others
    group = tgt.vertex_groups.new(name="spine")
    mesh_data._set_weights(group, old)
    assert np.allclose(mesh_data.read_vertex_groups(tgt, ["spine"])[0].values, old)
    new = np.where(rng.random(n) < 0.3, 0.0, np.round(rng.random(n), 2)).astype(np.float32)
    keep = rng.random(n) < 0.2
    writes = [Write("spine", "vertex_group", "POINT", "FLOAT", new, keep),
              Write("hips", "vertex_group", "POINT", "FLOAT", new[::-1].copy())]
    with pytest.raises(RuntimeError, match="the write failed"):
        mesh_data.write_all([(tgt, writes + [_failing_write(monkeypatch, n)])])
    assert [g.name for g in tgt.vertex_groups] == ["spine"]
    assert np.allclose(mesh_data.read_vertex_groups(tgt, ["spine"])[0].values, old)
    mesh_data.write_all([(tgt, writes)])
    spine, hips = mesh_data.read_vertex_groups(tgt, ["spine", "hips"])
    assert np.allclose(spine.values, np.where(keep, old, new)) and np.allclose(hips.values, new[::-1])
    assert sum(1 for v in tgt.data.vertices for g in v.groups if g.group == tgt.vertex_groups["hips"].index) \
        == int((new > 0).sum())  # a weight of 0 leaves the vertex out of the group


def test_a_target_whose_modifiers_change_its_faces_is_refused_for_uvs_only(bpy):
    src = psb_object(bpy, "chair", "101", "src")
    src.data.uv_layers.new(name="UVMap")
    bpy.ops.mesh.primitive_cube_add(size=0.5)
    tgt = bpy.context.active_object
    tgt.name = "cube"
    tgt.modifiers.new("tri", "TRIANGULATE")  # the same 8 vertices, 12 triangles for 6 quads
    before = user_attributes(tgt)
    with pytest.raises(ValueError, match=r"the modifiers of 'cube' change its faces \(6 -> 12\): UVMap could not"):
        api.transfer(src, [tgt], uv_map="UVMap", evaluated=True)
    assert user_attributes(tgt) == before
    report = api.transfer(src, [tgt], evaluated=True)  # labels are per vertex: those can be written
    assert "part_label" in report["cube"]["written"]


def test_what_a_target_is_written_is_worked_out_off_blenders_main_thread(bpy, chair_server, monkeypatch):
    from blender_addon import combine

    src, tgt = psb_object(bpy, "chair", "101", "src"), psb_object(bpy, "chair", "103", "tgt")
    src.data.uv_layers.new(name="UVMap")
    plan = api.TransferPlan(src, [tgt], api.TransferChoice(uv_map="UVMap"), api.Options(address=chair_server.address))
    job = Job(plan.work, chair_server.address, 120.0).start()
    result = job.wait()
    assert {"part_label", "UVMap"} <= {w.name for w in result["writes"][0]}

    def not_here(*args, **kwargs):
        raise AssertionError("worked out on the main thread")
    monkeypatch.setattr(combine, "target_writes", not_here)
    report = plan.apply(result)  # only writes
    assert "UVMap" in report["tgt"]["written"] and "UVMap" in tgt.data.uv_layers
