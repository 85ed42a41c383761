"""What a transfer writes onto a target, computed from arrays alone (no bpy).

The add-on gathers each mesh into `MeshArrays` and each attribute to carry into a
`Channel`; the server answers with, per target vertex, a source triangle, barycentric
weights and a confidence; `target_writes` turns that into the list of `Write`s the
bpy side applies in one go.  Tests drive this module directly.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import conformal, inpaint, interpolate, labels, seams

FILL_MODES = ("LEAVE", "MARK", "FILL")
FLOAT_TYPES = {"FLOAT", "FLOAT2", "FLOAT_VECTOR", "FLOAT_COLOR", "BYTE_COLOR", "QUATERNION"}
GREY = np.array([0.5, 0.5, 0.5, 1.0], dtype=np.float32)


@dataclass
class MeshArrays:
    """A triangulated mesh in the model frame, with what is needed to map back to Blender."""

    name: str
    vertices: np.ndarray  # (V, 3) float, model frame
    triangles: np.ndarray  # (T, 3) vertex indices of the loop triangles
    triangle_loops: np.ndarray  # (T, 3) corner (loop) indices of the same triangles
    triangle_polygons: np.ndarray  # (T,) polygon of each triangle
    loop_vertices: np.ndarray  # (L,) vertex of each corner
    edges: np.ndarray  # (E, 2); a point cloud gets its nearest neighbours for a fill (mesh_data.with_neighbours)
    polygons: int = 0  # polygon count (0: as many as triangle_polygons names)

    @property
    def is_cloud(self) -> bool:
        """Vertices without faces, as a scan's PLY imports: matched as points."""
        return len(self.triangles) == 0

    @property
    def faces(self) -> np.ndarray | None:
        """The triangles as the server takes them: None for a point cloud."""
        return None if self.is_cloud else self.triangles

    @property
    def areas(self) -> np.ndarray | None:
        """The surface each vertex stands for; None for a point cloud, whose points count alike."""
        return None if self.is_cloud else labels.vertex_areas(self.vertices, self.triangles)


@dataclass
class Channel:
    """One source attribute to carry.  kind: "attribute", "color", "uv", "vertex_group",
    "labels" or "material" (per polygon, an index into `names`, the material slots)."""

    name: str
    kind: str
    domain: str  # "POINT", "CORNER" or "FACE" (Blender attribute domains)
    data_type: str  # Blender attribute data type, e.g. "FLOAT_COLOR", "INT", "FLOAT2"
    values: np.ndarray
    names: tuple[str, ...] = ()  # a material channel's slots: material names


@dataclass
class Write:
    """One attribute (or vertex group) to write on a target; `keep` marks values to leave as they were."""

    name: str
    kind: str
    domain: str
    data_type: str
    values: np.ndarray
    keep: np.ndarray | None = None  # (V,) bool on points; None: write every value
    names: tuple[str, ...] = ()  # a material write's slots, replacing the target's


# What a transfer writes of its own: a channel carried under one of these names would
# overwrite it, or be overwritten.
OWN_NAMES = ("part_label", "part_color", "corr_confidence", "corr_source_face", "corr_source_bary",
             "corr_source_vertex", "corr_color", "corr_source_object")


def target_writes(source: MeshArrays, target: MeshArrays, corr: dict[str, np.ndarray], channels: list[Channel],
                  threshold: float = 0.5, fill: str = "FILL") -> list[Write]:
    """The attributes to write on `target` for a correspondence `corr` from `source`.
    From a point cloud, `corr_source_face` is -1 and `corr_source_bary` 0: each target
    vertex has its source point, `corr_source_vertex`, alone."""
    if fill not in FILL_MODES:
        raise ValueError(f"fill must be one of {FILL_MODES}, got {fill!r}")
    check_clouds(source, target, channels)
    n = len(target.vertices)
    for key in ("confidence", "source_index") + (() if source.is_cloud else ("source_face", "source_bary")):
        if len(corr[key]) != n:
            raise ValueError(f"the reply covers {len(corr[key])} vertices but {target.name!r} has {n}")
    conf, index = corr["confidence"], corr["source_index"]
    face = corr["source_face"] if not source.is_cloud else np.full(n, -1)
    bary = corr["source_bary"] if not source.is_cloud else np.zeros((n, 3))
    confident = conf >= threshold
    writes = [
        Write("corr_confidence", "attribute", "POINT", "FLOAT", conf.astype(np.float32)),
        Write("corr_source_face", "attribute", "POINT", "INT", face.astype(np.int32)),
        Write("corr_source_bary", "attribute", "POINT", "FLOAT_VECTOR", bary.astype(np.float32)),
        Write("corr_source_vertex", "attribute", "POINT", "INT", index.astype(np.int32)),
    ]
    colors = at_matches(interpolate.position_colors(source.vertices), source, corr, blend=True)
    colors[~confident] = GREY
    writes.append(Write("corr_color", "color", "POINT", "FLOAT_COLOR", colors.astype(np.float32)))
    # the target's directions in the source's frame: alignment may have turned either
    turn = corr.get("source_rotation", np.eye(3)).T @ corr.get("target_rotation", np.eye(3))
    for ch in channels:
        writes.extend(_carry(ch, source, target, corr, confident, fill, turn))
    return writes


def source_writes(source: MeshArrays) -> list[Write]:
    """The source's own `corr_color`: its vertices coloured by normalised position."""
    return [Write("corr_color", "color", "POINT", "FLOAT_COLOR", interpolate.position_colors(source.vertices))]


def label_writes(labels: np.ndarray, keep: np.ndarray | None = None) -> list[Write]:
    """`part_label` and its colour view `part_color`."""
    labels = np.asarray(labels, dtype=np.int32)
    return [Write("part_label", "attribute", "POINT", "INT", labels, keep),
            Write("part_color", "color", "POINT", "FLOAT_COLOR", interpolate.label_colors(labels), keep)]


def blends(ch: Channel) -> bool:
    """Floats are interpolated; labels, integers and booleans take the nearest corner's value."""
    return ch.data_type in FLOAT_TYPES and ch.kind != "labels"


def values_at(ch: Channel, source: MeshArrays, corr: dict[str, np.ndarray]) -> np.ndarray:
    """The channel's values at the matched points, one per target vertex."""
    if ch.domain not in ("POINT", "CORNER", "FACE"):
        raise ValueError(f"{ch.name!r}: cannot carry attributes of domain {ch.domain}")
    if source.is_cloud and ch.domain != "POINT":
        raise ValueError(f"{ch.name!r} lies on the {ch.domain.lower()}s of {source.name!r}, a point cloud without any")
    if ch.domain == "FACE":
        return ch.values[source.triangle_polygons[corr["source_face"]]]
    if ch.data_type == "QUATERNION" and not source.is_cloud:
        elements = source.triangle_loops if ch.domain == "CORNER" else source.triangles
        return interpolate.quaternions(ch.values, elements, corr["source_face"], corr["source_bary"])
    return at_matches(ch.values, source, corr, blends(ch), corners=ch.domain == "CORNER")


def at_matches(values: np.ndarray, source: MeshArrays, corr: dict[str, np.ndarray], blend: bool,
               corners: bool = False) -> np.ndarray:
    """Per source vertex (or, with `corners`, per corner) values at each target vertex's
    match: blended over the source triangle, or its nearest corner's; a point cloud's
    matched point's."""
    if source.is_cloud:
        return values[corr["source_index"]]
    elements = source.triangle_loops if corners else source.triangles
    pick = interpolate.point_values if blend else interpolate.nearest_point_values
    return pick(values, elements, corr["source_face"], corr["source_bary"])


def element_areas(domain: str, mesh: MeshArrays, count: int) -> np.ndarray | None:
    """The surface each of a mesh's `count` points, corners or polygons stands for (None:
    a point cloud's points, which count alike)."""
    if domain == "POINT":
        return mesh.areas
    thirds = np.repeat(labels.face_areas(mesh.vertices, mesh.triangles) / 3, 3)
    if domain == "CORNER":
        return np.bincount(mesh.triangle_loops.reshape(-1), weights=thirds, minlength=count)
    return np.bincount(np.repeat(mesh.triangle_polygons, 3), weights=thirds, minlength=count)


def label_slivers(ch: Channel, source: MeshArrays, target: MeshArrays, values: np.ndarray) -> np.ndarray:
    """Target vertices whose transferred label lands on a sliver (model/labels.py), shares
    by area on both meshes: an artist's low-poly leg beside a dense cushion is no sliver."""
    return labels.slivers(ch.values, values, source_areas=element_areas(ch.domain, source, len(ch.values)),
                          target_areas=target.areas)


def _carry(ch: Channel, source: MeshArrays, target: MeshArrays, corr, confident, fill,
           turn: np.ndarray) -> list[Write]:
    face, bary = corr.get("source_face"), corr.get("source_bary")
    if ch.kind == "material":
        return [material_write(ch, source, target, face, confident)]
    blend = blends(ch)
    values = values_at(ch, source, corr)
    if ch.kind == "labels":
        confident = confident & ~label_slivers(ch, source, target, values)
    values, keep = resolve(values, confident, fill, target.edges, vote=not blend, mark=_mark_value(ch))
    if ch.data_type == "QUATERNION":  # filled by means of neighbours: rotations again
        values = interpolate.unit_quaternions(values)
    values = values.astype(ch.values.dtype, copy=False)
    if ch.kind == "labels":
        return label_writes(values, keep)
    if target.is_cloud:  # a corner's or face's value lands on the point
        return [Write(ch.name, ch.kind, "POINT", ch.data_type, values, keep)]
    # back on the domain they came from, as on the source
    if ch.kind == "uv" and ch.domain == "CORNER":
        values = transferred_uvs(ch, source, target, face, bary, values, confident, turn)
        keep = None if keep is None else expand_to_corners(keep, target.loop_vertices)
    elif ch.domain == "CORNER":  # a corner colour or attribute: each corner its vertex's
        values = expand_to_corners(values, target.loop_vertices)
        keep = None if keep is None else expand_to_corners(keep, target.loop_vertices)
    elif ch.domain == "FACE":
        values, keep = per_polygon(values, keep, target, blend, marked=~confident if fill == "MARK" else None)
        if ch.data_type == "QUATERNION":
            values = interpolate.unit_quaternions(values).astype(ch.values.dtype)
    return [Write(ch.name, ch.kind, ch.domain, ch.data_type, values, keep)]


def check_clouds(source: MeshArrays, target: MeshArrays, channels: list[Channel]) -> None:
    """A point cloud gives only its points' values, and takes every value but UV maps and
    materials, which need faces to land on: anything else is refused, naming it."""
    if source.is_cloud:
        off = [ch.name for ch in channels if ch.domain != "POINT"]
        if off:
            raise ValueError(f"{source.name!r} is a point cloud: it has no faces or corners to carry "
                             f"{', '.join(map(repr, off))} from")
    if target.is_cloud:
        off = [ch.name for ch in channels if ch.kind in ("uv", "material")]
        if off:
            raise ValueError(f"{target.name!r} is a point cloud, and UV maps and materials need faces to land on: "
                             f"{', '.join(map(repr, off))} cannot be carried to it (point values, colours, vertex "
                             f"groups and labels can)")


def per_polygon(values: np.ndarray, keep: np.ndarray | None, target: MeshArrays, blend: bool,
                marked: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Per-vertex values -> per polygon: the mean of its corners' (floats) or the most common
    (whole numbers, booleans); a polygon keeps its old value where all its corners do.
    `marked` vertices (given the mark) count only in a polygon whose corners all are: a face
    is marked or transferred, not a blend of the two."""
    poly = loop_polygons(target)
    ok = poly >= 0
    n, corner_vertex = polygon_count(target), target.loop_vertices[ok]
    counted = np.ones(len(corner_vertex), bool) if marked is None else ~marked[corner_vertex]
    unmarked = np.bincount(poly[ok][counted], minlength=n) > 0
    counted |= ~unmarked[poly[ok]]  # a polygon of marked corners only: the mark
    if blend:
        flat = values.reshape(len(values), -1).astype(np.float64)
        sums = np.zeros((n, flat.shape[1]))
        np.add.at(sums, poly[ok][counted], flat[corner_vertex[counted]])
        counts = np.maximum(np.bincount(poly[ok][counted], minlength=n), 1)[:, None]
        out = (sums / counts).reshape((n,) + values.shape[1:]).astype(values.dtype)
    else:
        out = np.zeros((n,) + values.shape[1:], values.dtype)
        polys, common = inpaint.most_common(poly[ok][counted], values[corner_vertex[counted]])
        out[polys] = common
    if keep is None:
        return out, None
    kept = np.ones(n, bool)
    np.logical_and.at(kept, poly[ok], keep[corner_vertex])
    return out, kept


def transferred_uvs(ch: Channel, source: MeshArrays, target: MeshArrays, face: np.ndarray, bary: np.ndarray,
                    vertex_uv: np.ndarray, confident: np.ndarray, turn: np.ndarray = np.eye(3)) -> np.ndarray:
    """(L, 2) target corner UVs: each polygon on one source UV island (seams.py), then each
    chart relaxed so the texture keeps the shape it has on the source (conformal.py).
    `turn`: target directions into the source's frame."""
    polygons = loop_polygons(target)
    placed = seams.corner_uvs(ch.values, source.vertices, source.triangles, source.triangle_loops, face, bary,
                              target.loop_vertices, polygons, vertex_uv=vertex_uv, trusted=confident,
                              facing=facing(source, target, face, polygons, turn))
    pull = np.where(placed.moved, conformal.MOVED_WEIGHT, 1.0) * confident[target.loop_vertices]
    landed = ~placed.moved[target.triangle_loops] & confident[target.triangles]
    metric = conformal.source_metric(source.vertices, source.triangles, source.triangle_loops, ch.values,
                                     face[target.triangles], landed)
    return conformal.relax(target.vertices, target.triangles, target.triangle_loops, placed.uv, placed.island,
                           pull, metric).astype(ch.values.dtype)


# Each corner's vote for its polygon's UV island counts |cos| of the angle between the polygon
# and the source triangle it landed on, and at least this much.
FACING_FLOOR = 0.05


def facing(source: MeshArrays, target: MeshArrays, face: np.ndarray, polygons: np.ndarray,
           turn: np.ndarray) -> np.ndarray:
    """(L,) how squarely the source triangle each target corner landed on faces as the
    corner's polygon does, either way round (artists' meshes are not always wound alike)."""
    polygon_normals = np.zeros((polygon_count(target), 3))  # area-weighted, in the source's frame
    np.add.at(polygon_normals, target.triangle_polygons, _area_normals(target.vertices, target.triangles) @ turn.T)
    src = _area_normals(source.vertices, source.triangles)
    ok = polygons >= 0
    cos = np.abs((_unit(polygon_normals)[polygons[ok]] * _unit(src)[face[target.loop_vertices[ok]]]).sum(1))
    out = np.full(len(polygons), FACING_FLOOR)
    out[ok] = np.maximum(cos, FACING_FLOOR)
    return out


def _area_normals(vertices: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """Each triangle's normal, twice its area long."""
    a, b, c = (vertices[triangles[:, i]] for i in range(3))
    return np.cross(b - a, c - a)


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-30)


def material_write(ch: Channel, source: MeshArrays, target: MeshArrays, face: np.ndarray,
                   confident: np.ndarray) -> Write:
    """The source's material slots for the target, and for each target polygon the material
    of the source polygons most of its corners land on (its confident corners, where it has any)."""
    landed = ch.values[source.triangle_polygons[face]]  # per target vertex
    poly = loop_polygons(target)
    corner = np.flatnonzero(poly >= 0)
    vertex = target.loop_vertices[corner]
    votes = np.zeros((polygon_count(target), max(len(ch.names), int(ch.values.max(initial=0)) + 1)))
    np.add.at(votes, (poly[corner], landed[vertex]), np.where(confident[vertex], 1.0, 1e-3))
    return Write("material_index", "material", "FACE", "INT", votes.argmax(axis=1).astype(np.int32), names=ch.names)


def labels_per_element(source: MeshArrays, ch: Channel) -> np.ndarray:
    """A label channel as the server takes it: one label per vertex, or per triangle
    (a face's or its triangle's first corner's label).  The server reads as many labels as
    vertices as one per vertex: a mesh with as many triangles (an open tube) sends each
    vertex the label most of its triangles have."""
    if ch.domain == "POINT":
        return ch.values
    if ch.domain == "FACE":
        per_triangle = ch.values[source.triangle_polygons]
    elif ch.domain == "CORNER":
        per_triangle = ch.values[source.triangle_loops[:, 0]]
    else:
        raise ValueError(f"{ch.name!r}: labels of domain {ch.domain} cannot guide a match")
    if len(per_triangle) != len(source.vertices):
        return per_triangle
    per_vertex = np.full(len(source.vertices), -1, per_triangle.dtype)  # -1: a vertex of no triangle
    vertices, common = inpaint.most_common(source.triangles.ravel(), np.repeat(per_triangle, 3))
    per_vertex[vertices] = common
    return per_vertex


def _mark_value(ch: Channel):
    if ch.kind == "labels":
        return -1
    if ch.data_type in ("FLOAT_COLOR", "BYTE_COLOR"):
        return GREY
    if ch.data_type == "QUATERNION":
        return interpolate.IDENTITY_QUATERNION
    return 0


def resolve(values: np.ndarray, confident: np.ndarray, fill: str, edges: np.ndarray, vote: bool, mark
            ) -> tuple[np.ndarray, np.ndarray | None]:
    """Apply the fill mode to vertices below the confidence threshold -> (values, keep mask or None)."""
    if confident.all():
        return values, None
    if fill == "LEAVE":
        return values, ~confident
    if fill == "FILL":  # a loose piece with no confident vertex keeps what it matched: no mark on a fill
        return inpaint.fill(values, confident, edges, vote=vote)[0], None
    values = values.copy()
    values[~confident] = mark
    return values, None


def loop_polygons(mesh: MeshArrays) -> np.ndarray:
    """(L,) polygon of each corner; -1 for corners of no triangle (degenerate polygons)."""
    out = np.full(len(mesh.loop_vertices), -1, dtype=np.int64)
    out[mesh.triangle_loops.ravel()] = np.repeat(mesh.triangle_polygons, 3)
    return out


def polygon_count(mesh: MeshArrays) -> int:
    return max(mesh.polygons, int(mesh.triangle_polygons.max(initial=-1)) + 1)


def expand_to_corners(values: np.ndarray, loop_vertices: np.ndarray) -> np.ndarray:
    """Per-vertex values -> per-corner values (every corner of a vertex gets the vertex's)."""
    return values[loop_vertices]
