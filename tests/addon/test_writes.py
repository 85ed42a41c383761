"""What a transfer writes on a target, driven with made-up matches (no server): values an
artist keeps, names Blender gives to one thing only, and what the viewport and renders show."""
import numpy as np
import pytest


def cube(bpy, name, x=0.0):
    bpy.ops.mesh.primitive_cube_add(location=(x, 0, 0))
    ob = bpy.context.active_object
    ob.name = ob.data.name = name
    return ob


def new_attribute(ob, name, data_type, domain, values):
    from blender_addon import mesh_data

    attr = ob.data.attributes.new(name, data_type, domain)
    attr.data.foreach_set(mesh_data.LAYOUT[data_type][0], np.asarray(values).ravel())


def values(ob, name):
    from blender_addon import mesh_data

    attr = ob.data.attributes[name]
    key, width, dtype = mesh_data.LAYOUT[attr.data_type]
    out = np.empty(len(attr.data) * width, dtype)
    attr.data.foreach_get(key, out)
    return out


def run(plan, confidence=0.9):
    """The plan applied with each target vertex i matched to source triangle i at (0.6, 0.3, 0.1)."""
    replies, writes = [], []
    for tgt in plan.targets_arrays:
        n = len(tgt.vertices)
        face = np.arange(n) % len(plan.sources[0].mesh.triangles)
        corr = {"source_face": face, "source_bary": np.tile([0.6, 0.3, 0.1], (n, 1)),
                "source_index": plan.sources[0].mesh.triangles[face, 0],
                "confidence": np.broadcast_to(np.asarray(confidence(n) if callable(confidence) else confidence,
                                                         float), (n,)).copy()}
        replies.append([corr] * len(plan.sources))
        writes.append(plan._target_writes(tgt, replies[-1], [None] * len(plan.sources)))
    return plan.apply({"parts": [None] * len(plan.sources), "replies": replies,
                       "models": [{"category": "chair"}] * len(replies), "writes": writes})


def first_half_unsure(n):
    return np.where(np.arange(n) < n // 2, 0.1, 0.9)


@pytest.fixture
def empty(bpy):
    bpy.ops.wm.read_factory_settings(use_empty=True)
    return bpy


def test_leave_keeps_the_values_of_an_attribute_of_another_type_and_refuses_another_domain(empty):
    from blender_addon import api

    for data_type, domain, count, kept in (("FLOAT", "POINT", 8, 9), ("INT", "FACE", 6, None)):
        empty.ops.wm.read_factory_settings(use_empty=True)
        src, tgt = cube(empty, "src"), cube(empty, "tgt", 3)
        new_attribute(src, "mask", "INT", "POINT", np.full(8, 5, np.int32))
        new_attribute(tgt, "mask", data_type, domain, np.full(count, 9))  # a .ply import's floats, or faces
        plan = api.TransferPlan(src, [tgt], api.TransferChoice(labels=False, attributes="mask", fill="LEAVE"),
                                api.Options())
        if kept is None:
            with pytest.raises(ValueError, match="'Leave' cannot keep its values"):
                run(plan, first_half_unsure)
            assert tgt.data.attributes["mask"].domain == "FACE" and (values(tgt, "mask") == 9).all()
        else:
            run(plan, first_half_unsure)
            assert tgt.data.attributes["mask"].data_type == "INT"
            assert values(tgt, "mask").tolist() == [9] * 4 + [5] * 4


def test_a_vertex_group_and_an_attribute_of_one_name_are_refused_before_anything_is_written(empty):
    from blender_addon import api

    src, tgt = cube(empty, "src"), cube(empty, "tgt", 3)
    src.vertex_groups.new(name="mask").add([0, 1], 0.5, "REPLACE")
    new_attribute(tgt, "mask", "FLOAT", "POINT", np.full(8, 0.3, np.float32))
    plan = api.TransferPlan(src, [tgt], api.TransferChoice(labels=False, vertex_groups="mask"), api.Options())
    with pytest.raises(ValueError, match="has an attribute named 'mask'"):
        run(plan)
    assert "mask" not in tgt.vertex_groups and "corr_color" not in tgt.data.attributes
    src.vertex_groups.new(name="corr_confidence")  # the transfer's own output
    with pytest.raises(ValueError, match="vertex group 'corr_confidence'"):
        api.TransferPlan(src, [tgt], api.TransferChoice(labels=False, vertex_groups=None), api.Options())


def test_a_uv_map_must_be_one_and_one_carried_as_an_attribute_stays_one(empty):
    from blender_addon import api

    src, tgt = cube(empty, "src"), cube(empty, "tgt", 3)
    src.data.color_attributes.new("Col", "FLOAT_COLOR", "CORNER")
    with pytest.raises(ValueError, match="'Col' on 'src' is FLOAT_COLOR on CORNER, not a UV map"):
        api.TransferPlan(src, [tgt], api.TransferChoice(labels=False, uv_map="Col"), api.Options())
    for i in range(7):  # Blender's most: 8
        tgt.data.uv_layers.new(name=f"own{i}")
    plan = api.TransferPlan(src, [tgt], api.TransferChoice(labels=False, attributes=["UVMap"]), api.Options())
    assert [ch.kind for ch in plan.sources[0].channels] == ["uv"]
    src.data.uv_layers.new(name="second")
    plan = api.TransferPlan(src, [tgt], api.TransferChoice(labels=False, attributes=["second"]), api.Options())
    with pytest.raises(ValueError, match="already has 8 UV maps"):
        run(plan)
    assert len(tgt.data.uv_layers) == 8


def test_uvs_that_come_with_materials_are_the_ones_renders_use_and_a_preview_leaves_renders_alone(empty):
    from blender_addon import api

    src, tgt = cube(empty, "src"), cube(empty, "tgt", 3)
    tgt.data.uv_layers["UVMap"].name = "own"  # as an imported mesh names it
    src.data.materials.append(empty.data.materials.new("Wood"))
    run(api.TransferPlan(src, [tgt], api.TransferChoice(labels=False, uv_map="UVMap", materials=True),
                         api.Options()))
    layers = tgt.data.uv_layers
    assert layers.active.name == "UVMap" and [u.name for u in layers if u.active_render] == ["UVMap"]

    colors = tgt.data.color_attributes
    colors.new("Paint", "BYTE_COLOR", "POINT")
    colors.active_color_name = colors.default_color_name = "Paint"
    run(api.TransferPlan(src, [tgt], api.TransferChoice(labels=False), api.Options(), preview=True))
    assert colors.active_color_name == "corr_color" and colors.default_color_name == "Paint"


def test_a_failed_write_puts_back_members_of_weight_zero_and_the_colour_shown(empty, monkeypatch):
    from blender_addon import api, mesh_data

    src, tgt = cube(empty, "src"), cube(empty, "tgt", 3)
    src.vertex_groups.new(name="Arm").add(list(range(8)), 0.9, "REPLACE")
    group = tgt.vertex_groups.new(name="Arm")
    group.add([0, 1], 0.5, "REPLACE")
    group.add([3], 0.0, "REPLACE")  # in the group at weight 0
    colors = tgt.data.color_attributes
    colors.new("corr_color", "BYTE_COLOR", "CORNER")  # replaced by the transfer's FLOAT_COLOR on points
    colors.active_color_name = colors.default_color_name = "corr_color"

    def members():
        return sorted((v.index, round(g.weight, 3)) for v in tgt.data.vertices for g in v.groups)
    before = members()

    def fail(*args):
        raise RuntimeError("late")
    monkeypatch.setitem(mesh_data.WRITERS, "material", fail)  # a failure after the groups and colours are written
    src.data.materials.append(empty.data.materials.new("Wood"))
    plan = api.TransferPlan(src, [tgt], api.TransferChoice(labels=False, vertex_groups="Arm", materials=True),
                            api.Options())
    with pytest.raises(RuntimeError, match="late"):
        run(plan)
    assert members() == before == [(0, 0.5), (1, 0.5), (3, 0.0)]
    assert colors["corr_color"].data_type == "BYTE_COLOR"
    assert colors.active_color_name == colors.default_color_name == "corr_color"

    plan = api.TransferPlan(src, [tgt], api.TransferChoice(labels=False, vertex_groups="Arm", fill="LEAVE"),
                            api.Options())
    run(plan, first_half_unsure)  # vertices 0-3 below the threshold: left as they were
    assert members() == [(0, 0.5), (1, 0.5), (3, 0.0)] + [(i, 0.9) for i in range(4, 8)]


def test_a_cylinders_caps_keep_the_caps_uvs_where_their_corners_land_on_the_rim(empty):
    """A cap's corners all lie on the rim, where the side's UV island meets the cap's: each
    corner's island counts by how squarely the source faces there as the cap does."""
    from blender_addon import api, mesh_data, seams

    def spans(uv, polygons):
        return np.array([np.ptp(uv[p.loop_start:p.loop_start + p.loop_total], axis=0).max() for p in polygons])

    empty.ops.mesh.primitive_cylinder_add()
    src = empty.context.active_object
    empty.ops.mesh.primitive_cylinder_add(rotation=(0, 0, np.pi / 32))  # half a segment round
    tgt = empty.context.active_object
    plan = api.TransferPlan(src, [tgt], api.TransferChoice(labels=False, uv_map="UVMap"), api.Options())
    source, target = plan.sources[0].mesh, plan.targets_arrays[0]
    face, bary = np.zeros(len(target.vertices), int), np.zeros((len(target.vertices), 3))
    for i, p in enumerate(target.vertices):  # each vertex at the nearest point of the source
        d, b = seams.closest_on_triangles(p, source.vertices[source.triangles])
        face[i], bary[i] = int(np.argmin(d)), b[int(np.argmin(d))]
    corr = {"source_face": face, "source_bary": bary, "source_index": source.triangles[face, 0],
            "confidence": np.full(len(face), 0.9)}
    plan.apply({"parts": [None], "replies": [[corr]], "models": [{}],
                "writes": [plan._target_writes(target, [corr], [None])]})
    own = spans(values(src, "UVMap").reshape(-1, 2), src.data.polygons)
    got = spans(values(tgt, "UVMap").reshape(-1, 2), tgt.data.polygons)
    assert got.max() <= own.max() + 0.01  # before: a cap across the side's strip, 0.70 of the texture


def test_a_material_linked_from_a_library_is_the_one_written_not_a_local_one_of_its_name(empty, tmp_path):
    from blender_addon import api

    wood = empty.data.materials.new("Wood")
    wood.use_fake_user = True
    empty.data.libraries.write(str(tmp_path / "lib.blend"), {wood}, fake_user=True)
    empty.ops.wm.read_factory_settings(use_empty=True)
    local = empty.data.materials.new("Wood")
    with empty.data.libraries.load(str(tmp_path / "lib.blend"), link=True) as (_, into):
        into.materials = ["Wood"]
    linked = next(m for m in empty.data.materials if m.library is not None)
    src, tgt = cube(empty, "src"), cube(empty, "tgt", 3)
    src.data.materials.append(linked)
    run(api.TransferPlan(src, [tgt], api.TransferChoice(labels=False, materials=True), api.Options()))
    assert tgt.material_slots[0].material == linked != local


def test_a_failed_write_puts_back_a_material_slot_linked_to_the_object(empty, monkeypatch):
    from blender_addon import api, mesh_data

    src, tgt = cube(empty, "src"), cube(empty, "tgt", 3)
    src.data.materials.append(empty.data.materials.new("Red"))
    own = empty.data.materials.new("TargetOwn")
    tgt.data.materials.append(None)
    tgt.material_slots[0].link = "OBJECT"
    tgt.material_slots[0].material = own

    def fail(*args):
        raise RuntimeError("late")
    monkeypatch.setattr(mesh_data, "_render_uv", fail)  # after every write
    plan = api.TransferPlan(src, [tgt], api.TransferChoice(labels=False, materials=True, uv_map="UVMap"),
                            api.Options())
    with pytest.raises(RuntimeError, match="late"):
        run(plan)
    assert [(slot.link, slot.material) for slot in tgt.material_slots] == [("OBJECT", own)]
