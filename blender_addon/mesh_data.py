"""Between Blender meshes (and Point Cloud objects) and arrays: gather what the server
needs, write results back.

Writing is all-or-nothing: every write is checked before the first one happens, and if
one fails anyway everything already written (on every object) is put back as it was.
"""
from __future__ import annotations

import dataclasses
import hashlib

import bpy
import mathutils
import numpy as np

from . import frames
from .transfer import Channel, MeshArrays, Write

# Blender attribute data type -> (foreach key, values per element, numpy dtype)
LAYOUT = {
    "FLOAT": ("value", 1, np.float32), "INT": ("value", 1, np.int32), "INT8": ("value", 1, np.int32),
    "BOOLEAN": ("value", 1, bool), "FLOAT2": ("vector", 2, np.float32), "INT32_2D": ("value", 2, np.int32),
    "FLOAT_VECTOR": ("vector", 3, np.float32), "FLOAT_COLOR": ("color", 4, np.float32),
    "BYTE_COLOR": ("color", 4, np.float32), "QUATERNION": ("value", 4, np.float32),
}
DOMAINS = ("POINT", "CORNER", "FACE")
LABEL_TYPES = ("INT", "INT8", "BOOLEAN", "FLOAT")  # types a part_label is read from
MAX_UV_MAPS = 8  # Blender's limit: uv_layers.new returns None beyond it
# A point cloud's fill (inpaint.py) runs on a graph of each point and this many nearest neighbours.
CLOUD_NEIGHBOURS = 8
SHAPE_TYPES = ("MESH", "POINTCLOUD")  # objects the add-on matches: meshes, and Blender's Point Cloud objects


def is_point_cloud(data) -> bool:
    """Whether `data` is a Point Cloud object's (points and attributes, no vertices or faces)."""
    return isinstance(data, bpy.types.PointCloud)


def elements(data):
    """The point-domain elements: a mesh's vertices, a point cloud's points (each has `co`)."""
    return data.points if is_point_cloud(data) else data.vertices


def mesh_of(obj: bpy.types.Object, evaluated: bool = False) -> bpy.types.Mesh | bpy.types.PointCloud:
    """The object's mesh or point cloud, checked: not in Edit Mode; with `evaluated`, its
    modifiers' result."""
    if obj is None or obj.type not in SHAPE_TYPES:
        raise ValueError(f"{getattr(obj, 'name', obj)!r} is not a mesh or point cloud object")
    # in Edit Mode its mesh lags the edit, and leaving Edit Mode would overwrite what is written
    if getattr(obj.data, "is_editmode", False):  # a point cloud's attributes survive its Edit Mode
        raise ValueError(f"{obj.name!r} is in Edit Mode: switch to Object Mode (Tab) first")
    if obj.mode == "SCULPT" and obj.use_dynamic_topology_sculpting:  # likewise, leaving Sculpt Mode
        raise ValueError(f"{obj.name!r} is sculpted with Dynamic Topology: switch to Object Mode first")
    if evaluated:
        shown = obj.evaluated_get(bpy.context.evaluated_depsgraph_get())
        if not shown.is_evaluated:  # outside the view layer, or hidden in viewports: Blender evaluates it not
            raise ValueError(f"{obj.name!r} is not in the view layer, or is disabled in viewports, so its modifiers "
                             f"are not evaluated: show it, or turn off Use modifiers")
        return shown.data
    return obj.data


def world_matrix(obj: bpy.types.Object) -> np.ndarray:
    """(4, 4) where the object stands now.  `matrix_world` is only as fresh as the last
    evaluation (a script that has just turned the object has not run one), and an object
    Blender does not evaluate (outside the view layer, disabled in viewports) keeps a stale
    one: that is built from its own transform and its parents' (constraints aside)."""
    if obj.evaluated_get(bpy.context.evaluated_depsgraph_get()).is_evaluated:  # the call evaluates the scene
        return np.array(obj.matrix_world)
    local = np.array(obj.matrix_basis)
    if obj.parent is None:
        return local
    return world_matrix(obj.parent) @ np.array(obj.matrix_parent_inverse) @ local


def writable(obj: bpy.types.Object) -> None:
    """Results are written to the object's mesh: it must be this file's own, or what is
    written is lost on save (a linked mesh) or refused by Blender (a library override)."""
    mesh = mesh_of(obj)
    if mesh.library is not None:
        raise ValueError(f"{obj.name!r} uses a mesh linked from {mesh.library.filepath!r}: what is written to it "
                         f"would be lost on save; make it local first (Object > Relations > Make Local)")
    if mesh.override_library is not None:
        raise ValueError(f"{obj.name!r} uses a library override's mesh, whose attributes are not saved with this "
                         f"file: make it local first (Object > Relations > Make Local)")


def still_there(objects) -> None:
    """Every object of a plan still exists (the artist may delete one while the server works)."""
    for obj in objects:
        try:
            obj.name
        except ReferenceError:
            raise _deleted() from None


def identities(objects) -> list[tuple[int, str]]:
    """What `found_again` finds objects by: (session uid, the mesh's topology) each."""
    return [(obj.session_uid, _topology(obj.data)) for obj in objects]


def _topology(mesh) -> str:
    """A digest of which vertices each polygon's corners use, in order: an edit that keeps the
    counts (Flip Normals, Rotate Edge) changes it too.  A point cloud's: its point count."""
    digest = hashlib.blake2b(np.int64(len(elements(mesh))).tobytes(), digest_size=16)
    if is_point_cloud(mesh):
        return digest.hexdigest()
    digest.update(_get(mesh.polygons, "loop_total", 1, np.int32).tobytes())
    digest.update(_get(mesh.loops, "vertex_index", 1, np.int32).tobytes())
    return digest.hexdigest()


def found_again(identities: list[tuple[int, str]]) -> list[bpy.types.Object]:
    """The objects of these `identities` as they are now.  An undo while a job ran (of
    anything at all) leaves every Python reference to an object stale, the objects still
    there; a uid stays through undo and renames.  A mesh whose vertices or faces changed
    meanwhile (edited) would be written what was worked out for the old one: refused."""
    now = {obj.session_uid: obj for obj in bpy.data.objects}
    if any(uid not in now for uid, _ in identities):
        raise _deleted()
    for uid, topology in identities:
        if _topology(now[uid].data) != topology:
            raise ValueError(f"{now[uid].name!r} was edited while the job ran (its vertices or faces changed): "
                             f"nothing was written; run it again")
    return [now[uid] for uid, _ in identities]


def _deleted() -> ValueError:
    return ValueError("an object of this job was deleted while it ran: nothing was written")


def _get(collection, key: str, width: int, dtype) -> np.ndarray:
    out = np.empty(len(collection) * width, dtype=dtype)
    collection.foreach_get(key, out)
    return out.reshape(-1, width) if width > 1 else out


def gather(obj: bpy.types.Object, evaluated: bool = False) -> MeshArrays:
    """The object's mesh, triangulated, in world space converted to the model frame (a Point
    Cloud object's points, as a mesh of vertices only)."""
    mesh = mesh_of(obj, evaluated)
    points = elements(mesh)
    if len(points) < 3:
        raise ValueError(f"{obj.name!r} has {len(points)} {'points' if is_point_cloud(mesh) else 'vertices'}: "
                         f"correspondence needs a surface or a point cloud")
    co = _get(points, "co", 3, np.float32)
    world = frames.apply_matrix(world_matrix(obj), co)
    if not np.isfinite(world).all():
        raise ValueError(f"{obj.name!r} has non-finite vertex coordinates")
    if np.ptp(world, axis=0).max() <= 0:
        raise ValueError(f"{obj.name!r} is degenerate: all its vertices are at one point")
    if is_point_cloud(mesh):
        none = np.zeros(0, np.int64)
        return MeshArrays(name=obj.name, vertices=frames.to_model(world), triangles=none.reshape(0, 3),
                          triangle_loops=none.reshape(0, 3), triangle_polygons=none, loop_vertices=none,
                          edges=none.reshape(0, 2))
    mesh.calc_loop_triangles()
    tris = mesh.loop_triangles
    return MeshArrays(
        name=obj.name,
        vertices=frames.to_model(world),
        triangles=_get(tris, "vertices", 3, np.int64),
        triangle_loops=_get(tris, "loops", 3, np.int64),
        triangle_polygons=_get(tris, "polygon_index", 1, np.int64),
        loop_vertices=_get(mesh.loops, "vertex_index", 1, np.int64),
        edges=_get(mesh.edges, "vertices", 2, np.int64),
        polygons=len(mesh.polygons),
    )


def with_neighbours(cloud: MeshArrays) -> MeshArrays:
    """A point cloud with each point joined to its `CLOUD_NEIGHBOURS` nearest, beside any
    edges of its own: the graph a fill runs over (about 1 s per 100,000 points, so it is
    built by the job's thread, and only for a fill).  No bpy: safe off the main thread."""
    return dataclasses.replace(cloud, edges=np.concatenate([cloud.edges, neighbour_edges(cloud.vertices)]))


def neighbour_edges(points: np.ndarray) -> np.ndarray:
    """(E, 2) each point joined to its `CLOUD_NEIGHBOURS` nearest."""
    tree = mathutils.kdtree.KDTree(len(points))
    for i, p in enumerate(points.tolist()):
        tree.insert(p, i)
    tree.balance()
    k = min(CLOUD_NEIGHBOURS + 1, len(points))  # the point itself comes first
    pairs = [(i, j) for i, p in enumerate(points.tolist()) for _, j, _ in tree.find_n(p, k) if j != i]
    return np.array(pairs, np.int64).reshape(-1, 2)


def read_attribute(obj: bpy.types.Object, name: str, kind: str = "attribute", evaluated: bool = False) -> Channel:
    """A point, corner or face attribute (UV maps and colour attributes are attributes too)."""
    mesh = mesh_of(obj, evaluated)
    attr = mesh.attributes.get(name)
    if attr is None:
        what = {"uv": "UV map", "color": "colour attribute"}.get(kind, "attribute")
        raise ValueError(f"{obj.name!r} has no {what} named {name!r}")
    if attr.domain not in DOMAINS or attr.data_type not in LAYOUT:
        raise ValueError(f"attribute {name!r} on {obj.name!r} is {attr.data_type} on {attr.domain}: "
                         f"only {', '.join(sorted(LAYOUT))} on {', '.join(DOMAINS)} can be transferred")
    if kind == "uv" and name not in _uv_layers(mesh):
        raise ValueError(f"{name!r} on {obj.name!r} is {attr.data_type} on {attr.domain}, not a UV map")
    if kind == "color" and name not in mesh.color_attributes:
        raise ValueError(f"{name!r} on {obj.name!r} is {attr.data_type} on {attr.domain}, not a colour attribute")
    if name in _uv_layers(mesh):  # carried as an attribute too, it stays a UV map: seams kept, Blender's limit checked
        kind = "uv"
    key, width, dtype = LAYOUT[attr.data_type]
    return Channel(name, kind, attr.domain, attr.data_type, _get(attr.data, key, width, dtype))


def _uv_layers(data):
    """A mesh's UV maps; none for a point cloud."""
    return () if is_point_cloud(data) else data.uv_layers


def read_labels(obj: bpy.types.Object, evaluated: bool = False) -> Channel | None:
    """The source's own `part_label` (painted or edited by the artist), if it has one: whole
    numbers of any one-value type (an imported .ply brings them as floats)."""
    attr = mesh_of(obj, evaluated).attributes.get("part_label")
    if attr is None:
        return None
    if attr.domain not in DOMAINS or attr.data_type not in LABEL_TYPES:
        raise ValueError(f"{obj.name!r} has part_label as {attr.data_type} on {attr.domain}: part labels are whole "
                         f"numbers ({', '.join(LABEL_TYPES)}) on {', '.join(DOMAINS)}; rename or convert it")
    key, width, dtype = LAYOUT[attr.data_type]
    values = _get(attr.data, key, width, dtype)
    if values.dtype.kind == "f" and not (np.isfinite(values).all() and (values == np.round(values)).all()
                                          and np.abs(values).max(initial=0) < 2**31):
        raise ValueError(f"{obj.name!r} has part_label values that are not whole numbers: labels name parts")
    return Channel("part_label", "labels", attr.domain, "INT", values.astype(np.int32))


def read_materials(obj: bpy.types.Object, evaluated: bool = False) -> Channel:
    """The object's material slots (by full name: a material linked from a library is told
    from a local one of its name) and each polygon's slot."""
    names = tuple(slot.material.name_full if slot.material else "" for slot in obj.material_slots)
    if not any(names):
        raise ValueError(f"{obj.name!r} has no materials to transfer")
    mesh = mesh_of(obj, evaluated)
    if is_point_cloud(mesh):
        raise ValueError(f"{obj.name!r} is a point cloud: it has no faces to carry materials from")
    index = _get(mesh.polygons, "material_index", 1, np.int32)
    return Channel("material_index", "material", "FACE", "INT", np.minimum(index, len(names) - 1), names)


def read_vertex_groups(obj: bpy.types.Object, names=None, evaluated: bool = False) -> list[Channel]:
    """Weights of the named vertex groups in the order named (all, in the object's order,
    when `names` is None), 0 where a vertex is not in one.  Several sources list their
    groups in their own orders: named, their channels line up."""
    if names is None:
        groups = list(obj.vertex_groups)
    else:
        missing = sorted(set(names) - set(obj.vertex_groups.keys()))
        if missing:
            raise ValueError(f"{obj.name!r} has no vertex group named {', '.join(missing)}")
        groups = [obj.vertex_groups[name] for name in dict.fromkeys(names)]
    weights, _ = _weights_of(mesh_of(obj, evaluated), groups)
    return [Channel(g.name, "vertex_group", "POINT", "FLOAT", weights[i]) for i, g in enumerate(groups)]


# ---------------------------------------------------------------------- writing
def _size(mesh, domain: str) -> int:
    if is_point_cloud(mesh):
        return len(mesh.points) if domain == "POINT" else 0
    return {"POINT": len(mesh.vertices), "CORNER": len(mesh.loops), "FACE": len(mesh.polygons)}[domain]


def _checked(obj: bpy.types.Object, w: Write) -> Write:
    """The write checked against the mesh: one value per element of its domain."""
    mesh = obj.data
    values, keep = np.asarray(w.values), w.keep
    if w.kind == "vertex_group":
        key, width = "value", 1
        if is_point_cloud(mesh):
            raise ValueError(f"{obj.name!r} is a Point Cloud object, which has no vertex groups: carry "
                             f"{w.name!r} as an attribute, or convert the object to a mesh")
        if w.name in mesh.attributes:  # Blender gives a name to one attribute or vertex group
            raise ValueError(f"{obj.name!r} has an attribute named {w.name!r}, and the transfer would write a vertex "
                             f"group of that name: rename one of them")
    elif w.kind == "material":
        key, width = "material_index", 1
        missing = sorted({n for n in w.names if n and n not in materials_by_full_name()})
        if missing:
            raise ValueError(f"materials {', '.join(missing)} for {obj.name!r} are no longer in the file")
        if len(values) and (values.min() < 0 or values.max() >= max(len(w.names), 1)):
            raise ValueError(f"material slots for {obj.name!r} out of range")
    else:
        key, width, _ = LAYOUT[w.data_type]
        _check_replaceable(obj, w)
        if w.kind == "uv" and w.name not in _uv_layers(mesh) and len(_uv_layers(mesh)) >= MAX_UV_MAPS:
            raise ValueError(f"{obj.name!r} already has {MAX_UV_MAPS} UV maps, Blender's most: remove one, or carry "
                             f"the UV map into one of its names")
    n = _size(mesh, w.domain)
    if values.shape[0] != n or values.size != n * width:  # the mesh was edited while the job ran
        raise ValueError(f"{w.name!r} for {obj.name!r}: {values.shape} values for {n} {w.domain.lower()} elements "
                         f"(was the mesh edited while the job ran? run it again)")
    if values.dtype.kind == "f" and not np.isfinite(values).all():
        raise ValueError(f"{w.name!r} for {obj.name!r} has non-finite values")
    return Write(w.name, w.kind, w.domain, w.data_type, values, keep, w.names)


def write_all(plan: list[tuple[bpy.types.Object, list[Write]]]) -> None:
    """Apply every write on every object, or none of them."""
    still_there(obj for obj, _ in plan)
    for obj, _ in plan:  # again: the panel's transfer runs while the artist may have entered Edit Mode
        writable(obj)
    checked = [(obj, [_checked(obj, w) for w in writes]) for obj, writes in plan]
    undo: list = []  # each writer adds its restore before it changes anything
    try:
        for obj, writes in checked:
            groups = [w for w in writes if w.kind == "vertex_group"]
            if groups:  # every group's old weights and members read in one pass over the vertices
                old = _memberships(obj, [w.name for w in groups if w.name in obj.vertex_groups])
                for w in groups:
                    _write_vertex_group(obj, w, old.get(w.name), undo)
            for w in writes:
                if w.kind != "vertex_group":
                    WRITERS.get(w.kind, _write_attribute)(obj, w, undo)
            uvs = [w.name for w in writes if w.kind == "uv"]
            if uvs and any(w.kind == "material" for w in writes):  # the materials' textures read the UVs that came
                _render_uv(obj, uvs[0], undo)
            if is_point_cloud(obj.data):
                obj.data.update_tag()
            else:
                obj.data.update()
    except Exception:
        for restore in reversed(undo):
            restore()
        raise


def _check_replaceable(obj, w: Write) -> None:
    """An attribute of the name but another type or domain is replaced, and put back should
    a later write fail: refused, before anything is written, where it could not be."""
    if w.name in obj.vertex_groups:  # Blender gives a name to one attribute or vertex group
        raise ValueError(f"{obj.name!r} has a vertex group named {w.name!r}, which the transfer would write as an "
                         f"attribute: rename the group")
    attr = obj.data.attributes.get(w.name)
    if attr is None or (attr.domain == w.domain and attr.data_type == w.data_type):
        return
    if w.kind == "uv" or w.name in _uv_layers(obj.data):
        raise ValueError(f"{obj.name!r} already has {w.name!r} as {attr.data_type} on {attr.domain}")
    if attr.data_type not in LAYOUT or attr.domain not in DOMAINS:
        raise ValueError(f"{obj.name!r} already has {w.name!r} as {attr.data_type} on {attr.domain}, "
                         f"which this cannot replace: rename it")
    if w.keep is not None and w.keep.any() and not _convertible(attr, w):
        raise ValueError(f"{obj.name!r} has {w.name!r} as {attr.data_type} on {attr.domain}, and the transfer writes "
                         f"{w.data_type} on {w.domain}: 'Leave' cannot keep its values there; rename or convert it, "
                         f"or choose Fill or Mark")


def _convertible(attr, w: Write) -> bool:
    """Values of `attr` can stand in for the write's where it keeps them: one per element, as wide."""
    return attr.domain == w.domain and LAYOUT[attr.data_type][1] == LAYOUT[w.data_type][1]


def _write_attribute(obj, w: Write, undo: list) -> None:
    mesh = obj.data
    key, width, dtype = LAYOUT[w.data_type]
    attr = mesh.attributes.get(w.name)
    replaced = None  # (type, domain, a colour attribute, values) of one of another type, for the undo
    colors = mesh.color_attributes
    shown = tuple(getattr(colors, which, None) == w.name  # a point cloud has neither
                  for which in ("active_color_name", "default_color_name"))
    if attr is not None and (attr.domain != w.domain or attr.data_type != w.data_type):
        old_key, old_width, old_dtype = LAYOUT[attr.data_type]
        replaced = (attr.data_type, attr.domain, w.name in colors,
                    _get(attr.data, old_key, old_width, old_dtype))
        attr = None
    old = None if attr is None else _get(attr.data, key, width, dtype)
    kept = old  # the values 'Leave' keeps: those of an attribute of another type, converted
    if replaced is not None and w.keep is not None and w.keep.any():
        was = replaced[3]
        kept = (np.round(was) if np.dtype(dtype).kind in "iub" and was.dtype.kind == "f" else was).astype(dtype)

    def restore():
        now = mesh.attributes.get(w.name)
        if old is not None:
            now.data.foreach_set(key, old.ravel())
            return
        if now is not None:
            mesh.attributes.remove(now)
        if replaced is not None:
            data_type, domain, is_color, values = replaced
            back = (colors if is_color else mesh.attributes).new(w.name, data_type, domain)
            back.data.foreach_set(LAYOUT[data_type][0], values.ravel())
            if shown[0]:  # a colour attribute comes back as the one shown and rendered, if it was
                colors.active_color_name = w.name
            if shown[1]:
                colors.default_color_name = w.name
    undo.append(restore)

    if replaced is not None:
        mesh.attributes.remove(mesh.attributes[w.name])
    if old is None:
        if w.kind == "uv":
            mesh.uv_layers.new(name=w.name)
        elif w.kind == "color":
            mesh.color_attributes.new(w.name, w.data_type, w.domain)
        else:
            mesh.attributes.new(w.name, w.data_type, w.domain)
    values = np.asarray(w.values, dtype=dtype).reshape(-1, width) if width > 1 else np.asarray(w.values, dtype=dtype)
    if w.keep is not None and kept is not None:
        values = np.where(w.keep.reshape((-1,) + (1,) * (values.ndim - 1)), kept.reshape(values.shape), values)
    mesh.attributes[w.name].data.foreach_set(key, values.ravel())


def _weights_of(mesh, groups) -> tuple[np.ndarray, np.ndarray]:
    """(weights, members), a row per group, in one pass over the vertices: a vertex may be in
    a group at weight 0."""
    row = {g.index: i for i, g in enumerate(groups)}
    weights = np.zeros((len(groups), len(elements(mesh))), dtype=np.float32)
    members = np.zeros(weights.shape, dtype=bool)
    if not groups:  # a point cloud has none, nor vertices to look at
        return weights, members
    for v in mesh.vertices:
        for ge in v.groups:
            if ge.group in row:
                weights[row[ge.group], v.index] = ge.weight
                members[row[ge.group], v.index] = True
    return weights, members


def _memberships(obj, names: list[str]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Each named group's (weights, members) on the object's own mesh."""
    weights, members = _weights_of(obj.data, [obj.vertex_groups[name] for name in names])
    return {name: (weights[i], members[i]) for i, name in enumerate(names)}


def _write_vertex_group(obj, w: Write, old: tuple[np.ndarray, np.ndarray] | None, undo: list) -> None:
    """`old`: the group's weights and members before (None: no such group yet)."""
    group = obj.vertex_groups.get(w.name)

    def restore():
        now = obj.vertex_groups.get(w.name)
        if old is not None:
            _set_weights(now, *old)
        elif now is not None:
            obj.vertex_groups.remove(now)
    undo.append(restore)

    if group is None:
        group = obj.vertex_groups.new(name=w.name)
    weights = np.asarray(w.values, dtype=np.float32)
    members = weights > 0
    if w.keep is not None and old is not None:
        weights = np.where(w.keep, old[0], weights)
        members = np.where(w.keep, old[1], members)
    _set_weights(group, weights, members)


def _write_materials(obj, w: Write, undo: list) -> None:
    """The target's material slots become the source's; each polygon takes its slot."""
    mesh = obj.data
    old_materials = list(mesh.materials)
    old_index = _get(mesh.polygons, "material_index", 1, np.int32)
    old_slots = [(slot.link, slot.material) for slot in obj.material_slots]  # a slot may hold the object's own

    def restore():
        mesh.materials.clear()
        for m in old_materials:
            mesh.materials.append(m)
        for slot, (link, material) in zip(obj.material_slots, old_slots):
            slot.link = link
            if link == "OBJECT":
                slot.material = material
        mesh.polygons.foreach_set("material_index", old_index)
    undo.append(restore)

    mesh.materials.clear()
    by_name = materials_by_full_name()
    for name in w.names:
        mesh.materials.append(by_name[name] if name else None)
    mesh.polygons.foreach_set("material_index", np.asarray(w.values, np.int32))


def _render_uv(obj, name: str, undo: list) -> None:
    """Make a UV map the active one and the one renders use (an Image Texture without a UV Map node)."""
    layers = obj.data.uv_layers
    active = layers.active.name if layers.active else None
    render = next((layer.name for layer in layers if layer.active_render), None)

    def restore():  # by name: the layers written are removed again before this runs
        if active is not None and active in layers:
            layers.active = layers[active]
        if render is not None and render in layers:
            layers[render].active_render = True
    undo.append(restore)
    layers.active = layers[name]
    layers[name].active_render = True


def materials_by_full_name() -> dict:
    return {m.name_full: m for m in bpy.data.materials}


WRITERS = {"material": _write_materials}  # vertex groups: all of an object's at once; the rest: _write_attribute


def _set_weights(group, weights: np.ndarray, members: np.ndarray | None = None) -> None:
    """The `members` (default: vertices of weight > 0) in the group at their weights; the others out of it."""
    everyone = list(range(len(weights)))
    group.remove(everyone)
    inside = np.flatnonzero(weights > 0 if members is None else members)
    values, which = np.unique(weights[inside], return_inverse=True)
    order = np.argsort(which, kind="stable")  # one add per distinct weight (a rig's 1.0s at once)
    starts = np.r_[0, np.flatnonzero(np.diff(which[order])) + 1, len(order)]
    for k, value in enumerate(values.tolist()):
        group.add(inside[order[starts[k]:starts[k + 1]]].tolist(), value, "REPLACE")


def show(obj: bpy.types.Object, color_name: str, render: bool = True) -> None:
    """Make a colour attribute the one the viewport (Solid, Attribute colour) displays and,
    with `render`, the one renders use (a Color Attribute node without a name).  A point
    cloud has no such choice: `points.show_points` colours it."""
    colors = obj.data.color_attributes
    if color_name in colors and not is_point_cloud(obj.data):
        colors.active_color_name = color_name
        if render:
            colors.default_color_name = color_name
