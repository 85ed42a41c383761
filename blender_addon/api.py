"""Segment and transfer from Python: the same work the panel's buttons do.

    import bpy
    from blender_addon import api   # in the installed extension: from bl_ext.user_default.implicit_correspondence import api
    api.transfer(bpy.data.objects["armchair"], [bpy.data.objects["stool"]], uv_map="UVMap")

Each operation is a plan object: built on the main thread from the objects (`gather`),
its `work` runs in a thread and only talks to the server, and `apply` writes the
results on the main thread in one go.  The functions below run a plan to the end; the
operators run the same plans without blocking the UI.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import bpy
import numpy as np

from . import mesh_data
from . import transfer as tx
from .client import Client, default_address
from .jobs import Job


@dataclass
class Options:
    address: str = field(default_factory=default_address)
    timeout: float = 300.0
    category: str = ""  # empty: the server's default model
    align: bool = False
    evaluated: bool = False  # use the mesh with modifiers applied


class SegmentPlan:
    """Part labels for each object from the model: `part_label` and `part_color`."""

    label = "Segment"

    def __init__(self, objects: Sequence[bpy.types.Object], options: Options):
        if not objects:
            raise ValueError("select at least one mesh to segment")
        self.objects, self.options = list(objects), options
        self.meshes = [_gather_writable(obj, options.evaluated) for obj in self.objects]

    def work(self, client: Client, progress: Callable[[float, str], None]) -> list[np.ndarray]:
        out = []
        for i, m in enumerate(self.meshes):
            progress(i / len(self.meshes), f"segmenting {m.name}")
            out.append(client.segment(m.vertices, m.triangles, category=self.options.category or None,
                                      align=self.options.align))
        return out

    def apply(self, result: list[np.ndarray]) -> dict[str, Any]:
        mesh_data.write_all([(obj, tx.label_writes(parts)) for obj, parts in zip(self.objects, result)])
        for obj in self.objects:
            mesh_data.show(obj, "part_color")
        return {obj.name: {"parts": sorted(set(parts.tolist()))} for obj, parts in zip(self.objects, result)}


@dataclass
class TransferChoice:
    """What travels from the source to the targets."""

    labels: bool = True
    color: str = ""  # a colour attribute name
    uv_map: str = ""
    vertex_groups: Sequence[str] | None = ()  # names; None: all of the source's groups
    attributes: Sequence[str] = field(default_factory=tuple)
    threshold: float = 0.5
    fill: str = "FILL"  # LEAVE, MARK or FILL (from confident neighbours)


class TransferPlan:
    """Correspondence from the source to each target and the chosen attributes carried over."""

    label = "Transfer"

    def __init__(self, source: bpy.types.Object, targets: Sequence[bpy.types.Object], choice: TransferChoice,
                 options: Options):
        targets = [t for t in targets if t is not source]
        if not targets:
            raise ValueError("select at least one target mesh besides the source (the active object)")
        if not 0.0 <= choice.threshold <= 1.0:
            raise ValueError(f"the confidence threshold must be in [0, 1], got {choice.threshold}")
        if choice.fill not in tx.FILL_MODES:
            raise ValueError(f"fill must be one of {tx.FILL_MODES}, got {choice.fill!r}")
        self.source_obj, self.targets, self.choice, self.options = source, targets, choice, options
        ev = options.evaluated
        self.source = mesh_data.gather(source, ev)
        self.targets_arrays = [_gather_writable(t, ev) for t in targets]
        self.channels = self._channels()
        self.source_labels = mesh_data.read_labels(source, ev) if choice.labels else None

    def _channels(self) -> list[tx.Channel]:
        c, src, ev = self.choice, self.source_obj, self.options.evaluated
        channels = []
        if c.color:
            channels.append(mesh_data.read_attribute(src, c.color, "color", ev))
        if c.uv_map:
            channels.append(mesh_data.read_attribute(src, c.uv_map, "uv", ev))
        if c.vertex_groups is None or c.vertex_groups:
            channels += mesh_data.read_vertex_groups(src, None if c.vertex_groups is None else list(c.vertex_groups), ev)
        channels += [mesh_data.read_attribute(src, name, "attribute", ev) for name in c.attributes]
        return channels

    def work(self, client: Client, progress: Callable[[float, str], None]) -> dict[str, Any]:
        opts, src = self.options, self.source
        kw = dict(category=opts.category or None, align=opts.align)
        steps = len(self.targets_arrays) + (self.choice.labels and self.source_labels is None)
        labels = self.source_labels
        if self.choice.labels and labels is None:
            progress(0.0, f"segmenting {src.name}")
            labels = tx.Channel("part_label", "labels", "POINT", "INT",
                                      client.segment(src.vertices, src.triangles, **kw).astype(np.int32))
        # the artist's own labels guide the match; the model's own segmentation would add nothing
        guide = tx.labels_per_element(src, self.source_labels) if self.source_labels is not None else None
        corrs = []
        for i, tgt in enumerate(self.targets_arrays):
            progress((i + steps - len(self.targets_arrays)) / steps, f"{src.name} -> {tgt.name}")
            corrs.append(client.correspond(src.vertices, tgt.vertices, source_faces=src.triangles,
                                           target_faces=tgt.triangles, source_labels=guide, **kw))
        return {"labels": labels, "correspondences": corrs}

    def apply(self, result: dict[str, Any]) -> dict[str, Any]:
        channels = ([result["labels"]] if result["labels"] is not None else []) + self.channels
        plan, report = [(self.source_obj, tx.source_writes(self.source))], {}
        for obj, tgt, corr in zip(self.targets, self.targets_arrays, result["correspondences"]):
            writes = tx.target_writes(self.source, tgt, corr, channels, self.choice.threshold, self.choice.fill)
            plan.append((obj, writes))
            conf = corr["confidence"]
            report[obj.name] = {"mean_confidence": float(conf.mean()),
                                "below_threshold": int((conf < self.choice.threshold).sum()),
                                "written": [w.name for w in writes]}
        if result["labels"] is not None and self.source_labels is None:
            plan[0] = (self.source_obj, plan[0][1] + tx.label_writes(result["labels"].values))
        mesh_data.write_all(plan)
        for obj, _ in plan:
            mesh_data.show(obj, "part_color" if result["labels"] is not None else "corr_color")
        return report


def _gather_writable(obj: bpy.types.Object, evaluated: bool) -> tx.MeshArrays:
    """Gather a mesh that results will be written to: its vertices must be the object's own."""
    arrays = mesh_data.gather(obj, evaluated)
    if evaluated and len(arrays.vertices) != len(obj.data.vertices):
        raise ValueError(f"the modifiers of {obj.name!r} change its vertex count "
                         f"({len(obj.data.vertices)} -> {len(arrays.vertices)}): results could not be written "
                         "back; apply them or turn off 'Use modifiers'")
    return arrays


def run(plan, options: Options) -> dict[str, Any]:
    """Run a plan to the end on this thread's behalf; raise on any error (nothing is written then)."""
    job = Job(plan.work, options.address, options.timeout).start()
    return plan.apply(job.wait())


def segment(objects: Sequence[bpy.types.Object], **options: Any) -> dict[str, Any]:
    """Write `part_label` / `part_color` on each mesh.  Options: see `Options`."""
    opts = Options(**options)
    return run(SegmentPlan(objects, opts), opts)


def transfer_attributes(source: bpy.types.Object, targets: Sequence[bpy.types.Object], *, labels: bool = True,
                        color: str = "", uv_map: str = "", vertex_groups: Sequence[str] | None = (),
                        attributes: Sequence[str] = (), threshold: float = 0.5, fill: str = "FILL",
                        **options: Any) -> dict[str, Any]:
    """Correspond `source` to each target and carry the chosen attributes; returns a per-target report."""
    opts = Options(**options)
    choice = TransferChoice(labels, color, uv_map, vertex_groups, tuple(attributes), threshold, fill)
    return run(TransferPlan(source, targets, choice, opts), opts)


transfer = transfer_attributes  # the public name
