"""Segment and transfer from Python: the same work the panel's buttons do.

    import bpy
    from blender_addon import api   # in the installed extension: from bl_ext.user_default.implicit_correspondence import api
    api.transfer(bpy.data.objects["armchair"], [bpy.data.objects["stool"]], uv_map="UVMap")
    api.transfer(sources=[chair_a, chair_b], targets=bpy.data.collections["Chairs"].objects)
    api.show_points(bpy.data.objects["scan"], "part_color")   # a point cloud drawn as coloured spheres

Each operation is a plan object: built on the main thread from the objects (`gather`),
its `work` runs in a thread and only talks to the server, and `apply` writes the
results on the main thread in one go.  The functions below run a plan to the end; the
operators run the same plans without blocking the UI.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

import bpy
import mathutils
import numpy as np

from . import combine, frames, mesh_data
from .points import show_points  # noqa: F401 (a point cloud drawn as spheres in its colours: part of the API)
from . import transfer as tx
from .client import LOW_CONFIDENCE, Client, connection, default_address, unlike_warning
from .jobs import Job, Progress

ALIGN_MODES = {"OFF": False, "YAW": "yaw", "ANY": True}  # the panel's choices -> the server's align modes
ROTATION_PROP = "corr_rotation"  # object custom property: the turn auto-alignment found (Blender frame, 9 floats)
TURN_PROP = "corr_turn"  # the same as degrees about Z, when it only turns about Z
# Blender's own attributes the transfer must not write (and any name starting with "."):
# each has a fixed type and domain, and material slots travel with Materials
BUILTIN = {"position", "material_index", "sharp_face", "sharp_edge", "crease_vert", "crease_edge",
           "bevel_weight_vert", "bevel_weight_edge"}


@dataclass
class Options:
    address: str = field(default_factory=default_address)
    timeout: float = 300.0
    category: str = ""  # empty: the server's default model
    align: bool | str = False  # as they face; "yaw": search turns about Z (upright meshes); True: any rotation
    evaluated: bool = False  # use the mesh with modifiers applied
    key_file: str = ""  # a file holding the server's key (its first line); empty: CORR_SERVER_SECRET, if set
    curve: bool = False  # the server takes CurveZMQ connections only (--curve); False: as CORR_SERVER_CURVE says

    def connection(self) -> dict[str, Any]:
        """The client's `secret` and `curve` (ValueError for a key file that will not do)."""
        return connection(absolute(self.key_file) if self.key_file else "", self.curve)

    def request(self) -> dict[str, Any]:
        return {"category": self.category or None, "align": self.align}


def absolute(path: str) -> str:
    """A path the user gave (`//` relative to the saved .blend) as an absolute one: a local
    server started elsewhere reads the same file.  Relative to an unsaved .blend it stays
    as given, and reading it says so."""
    if path.startswith("//") and not bpy.data.filepath:
        return path
    return os.path.abspath(bpy.path.abspath(path))


class SegmentPlan:
    """Part labels for each object from the model: `part_label` and `part_color`."""

    label = "Segment"
    counts = "meshes"  # what a report of a stopped job counts

    def __init__(self, objects: Sequence[bpy.types.Object], options: Options):
        if not objects:
            raise ValueError("select at least one mesh to segment")
        self.objects, self.options = list(objects), options
        self.stopped_after: int | None = None  # meshes done when the user stopped it
        _refuse_shared_meshes(self.objects)
        self.meshes = [_gather_writable(obj, options.evaluated) for obj in self.objects]
        self._identities = mesh_data.identities(self.objects)  # to find them again after an undo

    def work(self, client: Client, progress: Progress) -> list[tuple[np.ndarray, dict[str, Any], np.ndarray]]:
        """-> per mesh done, its parts, the model that answered (`_model_said`) and the turn
        alignment found (model frame)."""
        out = []
        for i, m in enumerate(self.meshes):
            if progress.stop_requested:
                break
            progress(i / len(self.meshes), f"segmenting {m.name} ({i + 1}/{len(self.meshes)})")
            parts = client.segment(m.vertices, m.faces, **self.options.request())  # sent welded
            out.append((parts, _model_said(client.last_reply, client.last_reply.get("rebuild_distance")),
                        client.last_arrays.get("rotation")))
        return out

    @property
    def targets(self) -> list[bpy.types.Object]:
        return self.objects

    def apply(self, result: list[tuple[np.ndarray, dict[str, Any], np.ndarray]]) -> dict[str, Any]:
        self.stopped_after = len(result) if len(result) < len(self.objects) else None
        self.objects = mesh_data.found_again(self._identities)
        done = self.objects[:len(result)]
        mesh_data.write_all([(obj, tx.label_writes(parts)) for obj, (parts, _, _) in zip(done, result)])
        for obj, (_, _, rotation) in zip(done, result):
            mesh_data.show(obj, "part_color")
            keep_rotation(obj, rotation)  # as a transfer does: *Apply rotation* can then turn it
        return {obj.name: {"parts": sorted(set(parts.tolist())), **model}
                for obj, (parts, model, _) in zip(done, result)}


def _model_said(reply: dict[str, Any], distance: float | None) -> dict[str, Any]:
    """The model that answered for a mesh and how far its rebuild of the mesh lies from it."""
    return {"category": reply.get("category"), "rebuild_distance": distance}


@dataclass
class TransferChoice:
    """What travels from the sources to the targets."""

    labels: bool = True
    color: str = ""  # a colour attribute name
    uv_map: str = ""
    vertex_groups: Sequence[str] | None = ()  # names; None: all of the (first) source's groups
    attributes: Sequence[str] = field(default_factory=tuple)
    threshold: float = 0.5
    fill: str = "FILL"  # LEAVE, MARK or FILL (from confident neighbours)
    materials: bool = False  # the source's material slots, each target polygon the one it lands on

    def __post_init__(self):  # one name given as a plain string is that name, not its characters
        if isinstance(self.vertex_groups, str):
            self.vertex_groups = (self.vertex_groups,)
        self.attributes = (self.attributes,) if isinstance(self.attributes, str) else tuple(self.attributes)


@dataclass
class Source:
    """A source mesh as gathered: its arrays, its own labels (if any) and the channels it gives."""

    obj: bpy.types.Object
    mesh: tx.MeshArrays
    labels: tx.Channel | None
    channels: list[tx.Channel]

    @property
    def guide(self) -> np.ndarray | None:
        """The artist's labels as the server takes them: they guide the match."""
        return None if self.labels is None else tx.labels_per_element(self.mesh, self.labels)


class TransferPlan:
    """Correspondence from the sources to each target and the chosen attributes carried over.

    One request per source and target (one per target for one source): the server keeps
    each source prepared, and the model's parts of a source without labels come back with
    its first reply.  With several sources, labels are voted and other values come from
    the most confident source (blender_addon/combine.py).  `preview`: only `corr_color`.
    """

    label = "Transfer"
    counts = "targets"

    def __init__(self, sources: Sequence[bpy.types.Object] | bpy.types.Object,
                 targets: Iterable[bpy.types.Object], choice: TransferChoice, options: Options,
                 preview: bool = False):
        sources = [sources] if isinstance(sources, bpy.types.Object) else list(sources)
        if not sources:
            raise ValueError("choose at least one source mesh")
        # a collection's objects may hold the sources themselves, cameras and lights: skipped
        targets = [t for t in targets if t not in sources and t.type in mesh_data.SHAPE_TYPES]
        if not targets:
            raise ValueError("select at least one target mesh besides the source (the active object)")
        if not 0.0 <= choice.threshold <= 1.0:
            raise ValueError(f"the confidence threshold must be in [0, 1], got {choice.threshold}")
        if choice.fill not in tx.FILL_MODES:
            raise ValueError(f"fill must be one of {tx.FILL_MODES}, got {choice.fill!r}")
        carried = {choice.color, choice.uv_map, *choice.attributes}
        builtin = sorted(n for n in carried if n in BUILTIN or n.startswith("."))
        if builtin:
            raise ValueError(f"{', '.join(map(repr, builtin))}: one of Blender's own attributes, which the transfer "
                             "does not overwrite; copy it under another name to carry it over")
        clash = sorted(carried & set(tx.OWN_NAMES))
        if clash and not preview:
            raise ValueError(f"{', '.join(map(repr, clash))}: the transfer writes its own results under that name; "
                             f"copy the attribute under another name to carry it over")
        self.choice, self.options, self.preview = choice, options, preview
        self.label = "Preview" if preview else "Transfer"
        self.targets = targets
        _refuse_shared_meshes(sources + targets)
        self.sources = self._gather_sources(sources)
        groups = {ch.name for s in self.sources for ch in s.channels if ch.kind == "vertex_group"}
        written = set(tx.OWN_NAMES) - (set() if choice.labels else {"part_label", "part_color"})
        clash = sorted(groups & (written | carried))
        if clash:
            raise ValueError(f"vertex group {', '.join(map(repr, clash))}: the transfer also writes an attribute of "
                             f"that name, and Blender gives a name to one attribute or vertex group: rename the group")
        self._identities = mesh_data.identities(sources + targets)  # to find them again after an undo
        clouds = [t.name for t in targets if t.type == "POINTCLOUD"]
        if groups and clouds and not preview:
            raise ValueError(f"{', '.join(map(repr, clouds))}: Point Cloud objects have no vertex groups to take "
                             f"{', '.join(map(repr, sorted(groups)))}: carry them as attributes, or convert the "
                             "objects to meshes")
        self.targets_arrays = [_gather_writable(t, options.evaluated) for t in targets]
        for src in self.sources:  # a point cloud's values are its points'
            for tgt in self.targets_arrays:
                tx.check_clouds(src.mesh, tgt, ([src.labels] if src.labels is not None else []) + src.channels)
        if options.evaluated and not preview:
            _refuse_changed_faces(targets, sorted({ch.name for s in self.sources for ch in s.channels
                                                   if ch.domain != "POINT"}))
        self.stopped_after: int | None = None  # targets done when the user stopped the transfer

    def _gather_sources(self, objects: list[bpy.types.Object]) -> list[Source]:
        ev, c = self.options.evaluated, self.choice
        group_names = c.vertex_groups
        if group_names is None and len(objects) > 1:  # "all groups" of several sources: the first one's, on each
            group_names = [g.name for g in objects[0].vertex_groups]
        out = []
        for obj in objects:
            mesh_data.writable(obj)  # a source takes its own corr_color (and its parts)
            labels = mesh_data.read_labels(obj, ev) if c.labels and not self.preview else None
            channels = [] if self.preview else self._channels(obj, group_names)
            out.append(Source(obj, mesh_data.gather(obj, ev), labels, channels))
        if len(out) > 1 and c.materials and not self.preview:
            _shared_material_slots(out)
        if len(out) > 1 and c.labels and not self.preview:
            have = {s.obj.name for s in out if s.labels is not None}
            if have and len(have) != len(out):
                lack = ", ".join(s.obj.name for s in out if s.labels is None)
                raise ValueError(f"sources {', '.join(sorted(have))} carry part_label but {lack} do not: "
                                 "label every source, or none (the model's parts are then voted)")
        return out

    def _channels(self, src: bpy.types.Object, group_names) -> list[tx.Channel]:
        c, ev = self.choice, self.options.evaluated
        channels = []
        if c.color:
            channels.append(mesh_data.read_attribute(src, c.color, "color", ev))
        if c.uv_map:
            channels.append(mesh_data.read_attribute(src, c.uv_map, "uv", ev))
        if group_names is None or group_names:
            channels += mesh_data.read_vertex_groups(src, None if group_names is None else list(group_names), ev)
        channels += [mesh_data.read_attribute(src, name, "attribute", ev) for name in c.attributes]
        if c.materials:
            channels.append(mesh_data.read_materials(src, ev))
        return channels

    def _wants_parts(self, src: Source) -> bool:
        return self.choice.labels and not self.preview and src.labels is None

    def work(self, client: Client, progress: Progress) -> dict[str, Any]:
        """-> {"parts": the model's parts per source (None where not asked), "replies": per
        target done, one reply per source, "models", "writes": per target done, what it is
        written}.  Stops between targets when asked."""
        parts: list[np.ndarray | None] = [None] * len(self.sources)
        replies, models, writes = [], [], []
        n = len(self.targets_arrays)
        for i, tgt in enumerate(self.targets_arrays):
            if progress.stop_requested:
                break
            progress(i / n, f"{tgt.name} ({i + 1}/{n})")
            per_source, request = [], self.options.request()
            for k, src in enumerate(self.sources):
                ask = self._wants_parts(src) and parts[k] is None
                reply = client.correspond(src.mesh.vertices, tgt.vertices, source_faces=src.mesh.faces,  # sent welded
                                          target_faces=tgt.faces, source_labels=src.guide, source_parts=ask, **request)
                request["category"] = client.last_reply.get("category")  # one model for all of a target's sources
                if ask:
                    parts[k] = reply["source_parts"]
                per_source.append(reply)
            distances = client.last_reply.get("rebuild_distance") or {}
            models.append(_model_said(client.last_reply, distances.get("target")))
            replies.append(per_source)
            progress((i + 0.9) / n, f"{tgt.name}: carrying the values over")
            writes.append(self._target_writes(tgt, per_source, parts))  # here, off Blender's main thread
        progress(1.0, "writing")
        return {"parts": parts, "replies": replies, "models": models, "writes": writes}

    def _target_writes(self, tgt: tx.MeshArrays, per_source: list[dict[str, Any]],
                       parts: list[np.ndarray | None]) -> list[tx.Write]:
        """What a target is written: numpy only (the seams, the UV relax), so the job's thread does it."""
        if tgt.is_cloud and self.choice.fill == "FILL" and not self.preview:
            tgt = mesh_data.with_neighbours(tgt)
        label_channels = [s.labels if s.labels is not None or p is None else
                          tx.Channel("part_label", "labels", "POINT", "INT", p.astype(np.int32))
                          for s, p in zip(self.sources, parts)]
        matches = [combine.Match(s.mesh, corr, ([lab] if lab is not None else []) + s.channels)
                   for s, lab, corr in zip(self.sources, label_channels, per_source)]
        writes = combine.target_writes(matches, tgt, self.choice.threshold, self.choice.fill)
        return [w for w in writes if w.name == "corr_color"] if self.preview else writes

    def apply(self, result: dict[str, Any]) -> dict[str, Any]:
        replies = result["replies"]
        self.stopped_after = len(replies) if len(replies) < len(self.targets) else None
        if not replies:  # stopped before the first target: the sources get nothing either
            return {}
        found = mesh_data.found_again(self._identities)
        for src, obj in zip(self.sources, found):
            src.obj = obj
        self.targets = found[len(self.sources):]
        plan = [(s.obj, self._source_writes(s, p)) for s, p in zip(self.sources, result["parts"])]
        report = {}
        for obj, writes, per_source, model in zip(self.targets, result["writes"], replies, result["models"]):
            plan.append((obj, writes))
            conf = np.max([corr["confidence"] for corr in per_source], axis=0)
            report[obj.name] = {"mean_confidence": float(conf.mean()),
                                "below_threshold": int((conf < self.choice.threshold).sum()),
                                "written": [w.name for w in writes], **model}
        mesh_data.write_all(plan)
        self._keep_rotations(replies)
        shown = "part_color" if self.choice.labels and not self.preview else "corr_color"
        for obj, _ in plan:  # a preview leaves what renders use as it was
            mesh_data.show(obj, shown, render=not self.preview)
        return report

    def _source_writes(self, src: Source, parts: np.ndarray | None) -> list[tx.Write]:
        if len(src.mesh.vertices) != len(mesh_data.elements(src.obj.data)):  # its modifiers add vertices: left as it is
            return []
        writes = tx.source_writes(src.mesh)
        return writes + tx.label_writes(parts) if parts is not None else writes

    def _keep_rotations(self, replies: list[list[dict[str, np.ndarray]]]) -> None:
        """Each mesh's alignment turn, as custom properties the panel shows and can apply."""
        if replies:
            for src, reply in zip(self.sources, replies[0]):
                keep_rotation(src.obj, reply.get("source_rotation"))
        for obj, per_source in zip(self.targets, replies):
            keep_rotation(obj, per_source[0].get("target_rotation"))


def _shared_material_slots(sources: list[Source]) -> None:
    """Several sources' materials as one list of slots (each material once, in source order),
    so that every target polygon can take its material from whichever source it follows."""
    channels = [next(ch for ch in s.channels if ch.kind == "material") for s in sources]
    names = tuple(dict.fromkeys(n for ch in channels for n in ch.names))
    for ch in channels:
        ch.values = np.array([names.index(n) for n in ch.names], np.int32)[ch.values]
        ch.names = names


def keep_rotation(obj: bpy.types.Object, model_rotation: np.ndarray | None) -> None:
    """Store the turn alignment found; none (and no stale one) where it left the mesh as it was."""
    if model_rotation is None:
        return
    rot = frames.rotation_to_blender(model_rotation)
    if np.allclose(rot, np.eye(3), atol=1e-9):
        for prop in (ROTATION_PROP, TURN_PROP):
            if prop in obj:
                del obj[prop]
        return
    obj[ROTATION_PROP] = [float(x) for x in rot.ravel()]
    if frames.is_about_up(rot):
        obj[TURN_PROP] = round(frames.degrees_about_up(rot), 3)
    elif TURN_PROP in obj:
        del obj[TURN_PROP]


def apply_rotation(obj: bpy.types.Object) -> bool:
    """Turn the object by the rotation auto-alignment found for it (about its origin), so
    it faces the way the model expects; the found rotation is then used up.  False if none."""
    found = obj.get(ROTATION_PROP)
    if found is None:
        return False
    rot = np.array(list(found), dtype=np.float64).reshape(3, 3)
    obj.matrix_world = mathutils.Matrix(frames.rotated_world(mesh_data.world_matrix(obj), rot).tolist())  # rows
    for prop in (ROTATION_PROP, TURN_PROP):
        if prop in obj:
            del obj[prop]
    return True


def _refuse_shared_meshes(objects: Sequence[bpy.types.Object]) -> None:
    """Linked duplicates share one mesh: what is written for one would overwrite the other's."""
    owner: dict[Any, bpy.types.Object] = {}
    for obj in objects:
        first = owner.setdefault(obj.data, obj)
        if first is not obj:
            raise ValueError(f"{first.name!r} and {obj.name!r} share one mesh, so the results of one would overwrite "
                             "the other's: make them single user first (Object > Relations > Make Single User)")


def _gather_writable(obj: bpy.types.Object, evaluated: bool) -> tx.MeshArrays:
    """Gather a mesh that results will be written to: its vertices must be the object's own."""
    mesh_data.writable(obj)
    arrays = mesh_data.gather(obj, evaluated)
    own = len(mesh_data.elements(obj.data))
    if evaluated and len(arrays.vertices) != own:
        raise ValueError(f"the modifiers of {obj.name!r} change its vertex count "
                         f"({own} -> {len(arrays.vertices)}): results could not be written "
                         "back; apply them or turn off 'Use modifiers'")
    return arrays


def _refuse_changed_faces(targets: Sequence[bpy.types.Object], layered: list[str]) -> None:
    """Corner and face values (UVs, corner colours, materials) are written to a target's own
    faces: its modifiers must leave them as they are (a Triangulate keeps the vertices)."""
    for obj in targets if layered else ():
        if mesh_data.is_point_cloud(obj.data):  # such values land on its points
            continue
        mesh, evaluated = obj.data, mesh_data.mesh_of(obj, evaluated=True)
        if (len(evaluated.loops), len(evaluated.polygons)) != (len(mesh.loops), len(mesh.polygons)):
            raise ValueError(f"the modifiers of {obj.name!r} change its faces ({len(mesh.polygons)} -> "
                             f"{len(evaluated.polygons)}): {', '.join(layered)} could not be written back to them; "
                             "apply the modifiers or turn off 'Use modifiers'")


def run(plan, options: Options) -> dict[str, Any]:
    """Run a plan to the end on this thread's behalf; raise on any error (nothing is written
    then).  Each object's report gets `warnings`: what the panel's status line would say of
    it (a low mean confidence, a mesh its model does not explain), empty when all is well."""
    job = Job(plan.work, options.address, options.timeout, options.connection()).start()
    report = plan.apply(job.wait())
    for name, entry in report.items():
        entry["warnings"] = warnings_of(name, entry, options.align)
    return report


def warnings_of(name: str, entry: dict[str, Any], align: Any) -> list[str]:
    """The warnings for one object's report entry, matched with auto-alignment `align`."""
    out = []
    mean = entry.get("mean_confidence")
    if mean is not None and mean < LOW_CONFIDENCE:
        upright = "; if it is turned, try align=\"yaw\" (about Z) or align=True (any rotation)"
        turned = {False: upright, "off": upright, "yaw": "; if it lies on its side or upside down, try align=True"}
        turned = turned.get(align, "") if isinstance(align, (bool, str)) else ""
        out.append(f"low confidence on {name} (mean {mean:.2f}, below {LOW_CONFIDENCE}){turned}")
    unlike = unlike_warning(name, entry.get("category"), entry.get("rebuild_distance"))
    if unlike:
        out.append(unlike)
    return out


def segment(objects: Sequence[bpy.types.Object], **options: Any) -> dict[str, Any]:
    """Write `part_label` / `part_color` on each mesh.  Options: see `Options`."""
    opts = Options(**options)
    return run(SegmentPlan(objects, opts), opts)


def transfer_attributes(source: bpy.types.Object | None = None, targets: Iterable[bpy.types.Object] = (), *,
                        sources: Sequence[bpy.types.Object] | None = None, labels: bool = True,
                        color: str = "", uv_map: str = "", vertex_groups: Sequence[str] | None = (),
                        attributes: Sequence[str] = (), threshold: float = 0.5, fill: str = "FILL",
                        materials: bool = False, preview: bool = False, **options: Any) -> dict[str, Any]:
    """Correspond the source (or each of `sources`) to each target and carry the chosen
    attributes; returns a per-target report.  `targets` may be a collection's objects: the
    sources and objects that are not meshes are skipped.  `materials`: the targets take the
    source's material slots, each polygon the material it lands on.  `preview`: write only
    `corr_color`."""
    if (source is None) == (sources is None):
        raise ValueError("give either a source or sources=[...]")
    opts = Options(**options)
    choice = TransferChoice(labels, color, uv_map, vertex_groups, attributes, threshold, fill, materials)
    return run(TransferPlan([source] if source is not None else sources, targets, choice, opts, preview), opts)


transfer = transfer_attributes  # the public name
