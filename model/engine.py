"""The inference engine: correspondence, confidence, segmentation, label transfer, reconstruction.

Callers pass raw coordinates (any position and scale, +Y up, front -Z; see DESIGN.md) as an
(N, 3) array or a mesh; the engine normalises each shape into the model frame
(model/preparation.py), runs E, f and g in bounded chunks (model/runner.py), and returns
results in the caller's frame.
"""
from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import labels as labelling
from . import matching
from .alignment import AlignMode, best_rotation, check_mode
from .checkpoint import Checkpoint, CheckpointError, load_checkpoint
from .confidence import confidence, existence
from .geometry import bounding_frame
from .networks import ImplicitCorrespondenceNet
from .parts import without_absent
from .preparation import PreparedShape, cloud_areas, encoder_input, prepare, vertex_embedding
from .reconstruction import ReconstructedMesh, occupancy_surface, rebuild_distance
from .runner import Runner, default_device
from .settings import Calibration, Settings, split_settings
from .validation import as_shape

CHECKPOINT_DIR = Path(__file__).resolve().parent / "checkpoints"
DEFAULT_CATEGORY = "chair"


def shipped_categories() -> list[str]:
    """Categories with a default checkpoint in model/checkpoints/."""
    return sorted(p.stem for p in CHECKPOINT_DIR.glob("*.pth"))


@dataclass
class CorrespondenceResult:
    """Per target point: where it lands on the source, and how sure the model is."""

    mapped: np.ndarray  # (M, 3) on the source surface, source caller coordinates
    confidence: np.ndarray  # (M,) in [0, 1]
    source_index: np.ndarray  # (M,) nearest source point (points) or nearest corner (mesh)
    source_face: np.ndarray | None  # (M,) source face index, meshes only
    source_bary: np.ndarray | None  # (M, 3) barycentric coordinates on that face
    raw: np.ndarray  # (M, 3) g's inverse map under E's codes, source coordinates
    surface_distance: np.ndarray  # (M,) |raw - nearest source surface point| in model units (bbox diagonal 1)
    embedding_distance: np.ndarray  # (M,) part embedding of the target point against the match's and raw's
    cycle_distance: np.ndarray  # (M,) |g(f(raw, z_src), z_tgt) - x_tgt| in model units
    existence: np.ndarray  # (M,) in [0, 1]: does the target point's part exist on the source
    source_rotation: np.ndarray  # (3, 3) R auto-alignment chose for the source (p_model = R p_centred); identity without
    target_rotation: np.ndarray  # (3, 3) same for the target


class Correspondence:
    """Dense correspondence between shapes of one category, through a learned part embedding.

    `options` override the checkpoint's calibration (`fit_steps`, `embedding_weight`,
    `part_bias`, the sigmas: model/settings.py `Calibration`) or set the engine's own
    `Settings` (`chunk`, `max_points`, `seed`, `position_prior`).  `embedding_weight` is
    the match's with source labels; without them it uses
    `matching.UNLABELLED_EMBEDDING_SHARE` of it.
    """

    def __init__(self, net: ImplicitCorrespondenceNet, device: str | torch.device | None = None,
                 category: str = "unknown", calibration: Calibration | None = None,
                 checkpoint: Checkpoint | None = None, **options: Any):
        overrides, settings = split_settings(options)
        self.calibration = replace(calibration or Calibration(), **overrides)
        self.settings = Settings(**settings)
        self.cfg = net.cfg
        self.device = torch.device(device or default_device())
        self.runner = Runner(net, self.device, self.settings.chunk, self.calibration.bias(self.cfg.n_parts))
        self.net = self.runner.net
        self.category = category
        self.checkpoint = checkpoint
        # what a PreparedShape depends on: one made by an engine that differs here is refused
        self._made_with = (id(net), self.settings.seed, self.calibration.fit_steps, self.calibration.part_bias)
        self._stage = ""  # what the passes of f and g are for, for `reporting`

    @classmethod
    def load(cls, path: str | Path | None = None, device: str | torch.device | None = None,
             category: str | None = None, **options: Any) -> "Correspondence":
        """Load a checkpoint file, or the shipped default for `category` (chair if None)."""
        if path is None:
            category = category or DEFAULT_CATEGORY
            path = CHECKPOINT_DIR / f"{category}.pth"
            if category not in shipped_categories():
                have = ", ".join(shipped_categories()) or "none"
                raise CheckpointError(
                    f"no default checkpoint for category {category!r} (shipped: {have}); "
                    f"train one on your meshes (`python -m training.prepare --meshes DIR --out data/{category}`, then "
                    f"`python -m training.train --cate_name {category} --data_dir data/{category}`) or pass a path")
        try:
            dev = torch.device(default_device() if device is None or device == "" else device)
        except (RuntimeError, TypeError):
            raise ValueError(f"device {device!r}: expected 'cpu' or 'cuda' (or 'cuda:N')") from None
        if dev.type not in ("cpu", "cuda"):
            raise ValueError(f"device {device!r}: expected 'cpu' or 'cuda' (or 'cuda:N')")
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise ValueError("device 'cuda' requested but CUDA is not available on this machine")
        if dev.type == "cuda" and (dev.index or 0) >= torch.cuda.device_count():
            raise ValueError(f"device {device!r}: this machine has {torch.cuda.device_count()} CUDA device(s), "
                             f"cuda:0 to cuda:{torch.cuda.device_count() - 1}")
        ckpt = load_checkpoint(path, map_location="cpu")
        if ckpt.stage == 1:
            warnings.warn(f"{path} is a stage-1 checkpoint: its inverse map g is untrained, so the confidences "
                          "mean nothing; use one of stage 2 or 3", stacklevel=2)
        try:
            calibration = Calibration.from_checkpoint(ckpt.extra)
        except (TypeError, ValueError) as exc:
            raise CheckpointError(f"{path}: {exc}") from None
        return cls(ckpt.build(dev), dev, ckpt.category, calibration, ckpt, **options)

    def info(self) -> dict[str, Any]:
        ck = self.checkpoint
        return {"category": self.category, "device": str(self.device),
                "precision": "bfloat16" if self.runner.bfloat16 else "float32", "n_parts": self.cfg.n_parts,
                "config": self.cfg.to_dict(), "stage": ck.stage if ck else None, "epoch": ck.epoch if ck else None,
                "max_points": self.settings.max_points,
                **self.calibration.to_dict(), "part_bias": self.runner.part_bias.tolist()}

    # ------------------------------------------------------------------ shapes
    def prepare(self, data: Any, name: str = "shape", align: AlignMode = False) -> PreparedShape:
        """Validate, normalise (and optionally auto-align: False, True for any rotation, "yaw"
        for upright shapes turned about +Y; model/alignment.py), encode and sample a shape."""
        return self._prepare(data, name, align, self.calibration.fit_steps, self._made_with)

    def _prepare(self, data: Any, name: str, align: AlignMode, fit_steps: int, made_with: tuple) -> PreparedShape:
        align = check_mode(align)
        self._begin(f"preparing the {name}")
        self.runner.step("checking the points")  # outliers and spacing: seconds on a large scan
        shape = as_shape(data, name, self.settings.max_points)
        return prepare(self.runner, self.cfg, shape, align, fit_steps, self.settings.seed, made_with, self.category)

    @contextlib.contextmanager
    def reporting(self, progress: Callable[[str, int, int], None] | None) -> Iterator[None]:
        """Within it, each pass of f or g over a shape's points reports `progress(stage,
        done, total)` after every chunk, and each step between passes its start as (stage,
        0, 1) (stage: "preparing the target: fitting the code", "matching: g onto the
        source", ...), so that a long call on a large shape can show how far it is.  None
        reports nothing."""
        self.runner.on_chunk = None if progress is None else (lambda done, total: progress(self._named(), done, total))
        try:
            yield
        finally:
            self.runner.on_chunk = None

    def _begin(self, stage: str) -> None:
        self._stage, self.runner.step_name = stage, ""

    def _named(self) -> str:
        """The stage and step a progress report is of ("matching: g onto the source")."""
        step = self.runner.step_name
        return f"{self._stage}: {step}" if step else self._stage

    def _prepared(self, data: Any, name: str, align: AlignMode) -> PreparedShape:
        align = check_mode(align)
        if not isinstance(data, PreparedShape):
            return self.prepare(data, name, align)
        if data.made_with != self._made_with:
            raise ValueError(f"{name} was prepared by an engine with another network or settings (seed, "
                             f"fit_steps, part_bias); prepare it with this engine")
        if align and align != data.align:  # its frame is fixed: it cannot be aligned now
            raise ValueError(f"{name} was prepared with align={data.align!r}, and this call asks align={align!r}: "
                             f"prepare it with align={align!r}, or pass the shape itself")
        return data

    def align(self, data: Any, mode: AlignMode = True) -> np.ndarray:
        """The rotation (3, 3) auto-alignment (`mode` True or "yaw") picks for a shape:
        p_model = R @ p_centred, the rotation `prepare` puts in the shape's frame."""
        mode = check_mode(mode)
        shape = data.shape if isinstance(data, PreparedShape) else as_shape(data, "shape", self.settings.max_points)
        enc = encoder_input(shape, bounding_frame(shape.spanning), self.cfg, self.settings.seed, cloud_areas(shape))
        return best_rotation(self.runner, enc, self.settings.seed, mode, self.category)

    # ------------------------------------------------------------------ operations
    def correspond(self, source: Any, target: Any, align: AlignMode = False,
                   source_labels: Any = None) -> CorrespondenceResult:
        """For every target point (or vertex), the matching point on the source and a confidence.

        `source_labels` (optional; per source point, vertex or face, -1 for unlabelled) are
        the source's own part labels: a label that mostly coincides with one model part is
        matched as that part, all of it (model/parts.py), which mends the model's
        segmentation of the source before anything lands on it.  With labels, a target point
        close to a part boundary takes whichever part's match is nearer (model/matching.py,
        `close_calls`): the labels decide close calls.  Without labels the part embedding
        weighs less against the position (`matching.UNLABELLED_EMBEDDING_SHARE`), and the
        match of a point at a corner, edge or tip moves out to the source's
        (`matching.outward`), which places keypoints and attributes more precisely.

        Fitted codes place the match (they draw the part boundaries where the shapes have
        them); E's codes, on which g was trained, judge it: under fitted codes g's round
        trips stray and the confidence tells missing parts less well.
        """
        source = self._labelled(source, source_labels)
        src, tgt = self._prepared(source, "source", align), self._prepared(target, "target", align)
        run, cal = self.runner, self.calibration
        self._begin("matching")
        on_samples = None if source_labels is None else self._labels_on_samples(src, source_labels)
        # the paper's maps under E's codes: target -> source (raw) -> target (cycle)
        run.step("f at the target")
        emb_judged = vertex_embedding(run, tgt, fitted=False)
        run.step("g onto the source")
        raw = run.invert(emb_judged, src.encoder_code)
        run.step("f there")
        emb_back = run.embed(raw, src.encoder_code)
        run.step("g back onto the target")
        cycle_dist = np.linalg.norm(run.invert(emb_back, tgt.encoder_code) - tgt.points, axis=1)
        emb_judged = without_absent(emb_judged, tgt.judged.presence)
        emb_placed = emb_judged
        if tgt.fitted:
            run.step("f at the target, fitted code")
            emb_placed = without_absent(vertex_embedding(run, tgt, fitted=True), tgt.placed.presence)
        run.step("the nearest source samples")
        where = self.settings.position_prior * tgt.points + (1.0 - self.settings.position_prior) * raw
        labelled = on_samples is not None
        weight = cal.embedding_weight * (1.0 if labelled else matching.UNLABELLED_EMBEDDING_SHARE)
        source_parts = src.placed.parts(on_samples)
        idx = matching.match(src.sample_points, src.placed.embedding, source_parts, where,
                             emb_placed, tgt.sample_points, tgt.placed.embedding.argmax(1), weight, run.part_bias,
                             src.placed.weights, tgt.placed.weights, close_calls=labelled,
                             source_extremity=src.sample_extremity, target_extremity=tgt.point_extremity)
        if not labelled:  # labels keep their boundaries where the match put them
            run.step("corners and tips outward")
            idx = matching.outward(idx, src.sample_points, tgt.point_extremity, tgt.point_reach, source_parts,
                                   src.surface_samples)
        # A part the source lacks has no source point with its embedding: the match (and
        # g's round trip) land on another part's.
        run.step("confidence")
        src_presence = src.judged.source_presence(on_samples)
        emb_back = without_absent(emb_back, src_presence)
        emb_dist = np.maximum(np.linalg.norm(src.judged.embedding[idx] - emb_judged, axis=1),
                              np.linalg.norm(emb_back - emb_judged, axis=1))
        exists = existence(emb_judged, src_presence)
        surf_dist = src.distance_to_surface(raw)
        face = None if src.sample_face is None else src.sample_face[idx]
        bary = None if src.sample_bary is None else src.sample_bary[idx]
        sure = confidence(exists, surf_dist, emb_dist, cycle_dist, cal).astype(np.float64)
        sure[tgt.shape.outliers] = 0.0  # stray points and pieces correspond to nothing
        return CorrespondenceResult(
            mapped=src.frame.from_model(src.sample_points[idx]),
            confidence=sure,
            source_index=(src.shape.kept[idx] if face is None else labelling.nearest_corner(src.shape.faces, face, bary)
                          ).astype(np.int64),
            source_face=None if face is None else face.astype(np.int64), source_bary=bary,
            raw=src.frame.from_model(raw), surface_distance=surf_dist, embedding_distance=emb_dist,
            cycle_distance=cycle_dist, existence=exists,
            source_rotation=src.frame.rotation.copy(), target_rotation=tgt.frame.rotation.copy())

    def transfer_labels(self, source: Any, source_labels: Any, target: Any,
                        align: AlignMode = False) -> tuple[np.ndarray, np.ndarray]:
        """Labels per target point from per-point (or, for meshes, per-vertex or per-face)
        source labels -> (labels (M,), confidence (M,)); see `labels_from`."""
        source = self._labelled(source, source_labels, required=True)
        src, tgt = self._prepared(source, "source", align), self._prepared(target, "target", align)
        return self.labels_from(self.correspond(src, tgt, align, source_labels), src, source_labels, tgt)

    def vote_labels(self, sources: list[Any], source_labels: Sequence[Any], target: Any,
                    align: AlignMode = False) -> tuple[np.ndarray, np.ndarray]:
        """Labels per target point from several labelled sources: each lends its labels
        (`transfer_labels`) and every point takes the label with the most confidence summed
        over the sources (`labels.vote`) -> (labels (M,), support (M,): the largest
        confidence of a source that gave the label).  A wrong match tends to come with a low
        confidence, so the sources that match a point well outvote one that does not."""
        if not isinstance(sources, list) or not sources:  # a tuple is one mesh: (vertices, faces)
            raise ValueError("sources must be a non-empty list of shapes (one source: transfer_labels)")
        if not isinstance(source_labels, Sequence | np.ndarray):
            raise ValueError(f"source_labels must be a list of label arrays, one per source; "
                             f"got {type(source_labels).__name__}")
        if len(source_labels) != len(sources):
            raise ValueError(f"give one label array per source: {len(sources)} sources, {len(source_labels)} label arrays")
        tgt = self._prepared(target, "target", align)
        lent = [self.transfer_labels(s, labels, tgt, align) for s, labels in zip(sources, source_labels)]
        return labelling.vote(np.stack([got for got, _ in lent]), np.stack([conf for _, conf in lent]))

    def labels_from(self, result: CorrespondenceResult, source: PreparedShape, source_labels: Any,
                    target: PreparedShape | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Per target point of `result` (from `correspond(source, target)`), the label of its
        match and the confidence in that label: 0 where the label lands on a sliver of the
        target (model/labels.py `slivers`), for a fill or another source to decide.  Pass
        the prepared `target` when it is a mesh or an uneven cloud: slivers are judged by
        the area its points stand for, not their count."""
        labels, per_face = self._label_layout(source, source_labels)
        out = labelling.labels_at(labels, per_face, source.shape.faces, result.source_face, result.source_bary,
                                  result.source_index)
        sliver = labelling.slivers(self._labels_on_samples(source, source_labels), out,
                                   source_areas=source.placed.weights,
                                   target_areas=None if target is None else target.point_areas)
        return out, np.where(sliver, 0.0, result.confidence)

    def _labelled(self, source: Any, source_labels: Any, required: bool = False) -> Any:
        """The source as a checked shape, its labels (optional unless `required`) checked
        against it before the work of preparing it."""
        if source_labels is None and not required:
            return source
        if isinstance(source, PreparedShape):
            self._label_layout(source, source_labels)
            return source
        shape = as_shape(source, "source", self.settings.max_points)
        labelling.label_layout(source_labels, len(shape.vertices), len(shape.faces) if shape.is_mesh else None)
        return shape

    @staticmethod
    def _label_layout(src: PreparedShape, source_labels: Any) -> tuple[np.ndarray, bool]:
        n_faces = len(src.shape.faces) if src.shape.is_mesh else None
        return labelling.label_layout(source_labels, len(src.shape.vertices), n_faces)

    def _labels_on_samples(self, src: PreparedShape, source_labels: Any) -> np.ndarray:
        """Per-vertex (or per-face, or per-point) source labels at the source's surface samples."""
        labels, per_face = self._label_layout(src, source_labels)
        rows = np.arange(len(src.sample_points)) if src.shape.is_mesh else src.shape.kept
        return labelling.labels_at(labels, per_face, src.shape.faces, src.sample_face, src.sample_bary, rows)

    def segment(self, points: Any, align: AlignMode = False) -> np.ndarray:
        """Part index (argmax of f's branches, over the parts the shape has) of each point or vertex."""
        prep = self._prepared(points, "points", align)
        self._begin("segmenting")
        emb = vertex_embedding(self.runner, prep, fitted=True)
        return without_absent(emb, prep.placed.presence).argmax(axis=1).astype(np.int64)

    def rebuild_distance(self, shape: Any, align: AlignMode = False, fitted: bool = True) -> float:
        """How far this model's own rebuild of the shape lies from it, over its diagonal
        (`reconstruction.rebuild_distance`).  A large figure says the shape does not look
        like this model's category, and the model that rebuilds a shape closest is the
        likeliest category for it (docs/model.md, *Rebuild distance*, has the figures).
        Kept on the prepared shape.  `fitted=False`: the rebuild from E's code, for which a
        shape not yet prepared is prepared without fitting a code (a quarter to a ninth of
        the time; what category "auto" ranks models by), and which is not kept."""
        if not fitted:
            if isinstance(shape, PreparedShape):
                prep = self._prepared(shape, "shape", align)
            else:
                prep = self._prepare(shape, "shape", align, 0, (*self._made_with, "unfitted"))
            self._begin("rebuilding")
            return rebuild_distance(self.runner, prep, prep.encoder_code)
        prep = self._prepared(shape, "shape", align)
        if "rebuild_distance" not in prep.measures:
            self._begin("rebuilding")
            prep.measures["rebuild_distance"] = rebuild_distance(self.runner, prep)
        return prep.measures["rebuild_distance"]

    def reconstruct(self, points: Any, resolution: int = 64, align: AlignMode = False) -> ReconstructedMesh:
        """Marching cubes of the occupancy max_k f at iso 0.5, with per-vertex parts."""
        if isinstance(resolution, bool) or not isinstance(resolution, (int, np.integer)) or not 8 <= resolution <= 512:
            raise ValueError(f"resolution must be an integer in [8, 512], got {resolution!r}")
        prep = self._prepared(points, "points", align)
        self._begin("reconstructing")
        verts, faces = occupancy_surface(self.runner, prep.code, int(resolution))
        parts = (without_absent(self.runner.embed(verts, prep.code), prep.placed.presence).argmax(axis=1)
                 if len(verts) else np.zeros(0, np.int64))
        return ReconstructedMesh(vertices=prep.frame.from_model(verts), faces=faces, parts=parts.astype(np.int64),
                                 rotation=prep.frame.rotation.copy())
