"""The inference engine: correspondence, confidence, segmentation, label transfer, reconstruction.

Callers pass raw coordinates (any position and scale, +Y up, front -Z; see DESIGN.md) as an
(N, 3) array or a mesh; the engine normalises each shape into the model frame, runs E, f
and g in bounded chunks, and returns results in the caller's frame.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import mcubes
import numpy as np
import torch
from scipy.spatial import cKDTree

from .checkpoint import Checkpoint, CheckpointError, load_checkpoint
from .fitting import fit_code, orient_outward
from .geometry import (Frame, SurfaceIndex, barycentric, bounding_frame, cube_rotations, nearest_in_cloud,
                       sample_surface)
from .networks import ImplicitCorrespondenceNet
from .normals import estimate_normals, pca_normals
from .validation import DEFAULT_MAX_POINTS, Shape, as_labels, as_shape

CHECKPOINT_DIR = Path(__file__).resolve().parent / "checkpoints"
NORMAL_CLOUD = 4096  # points E's normals are estimated from: a training sample's surface points
DEFAULT_CATEGORY = "chair"


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def shipped_categories() -> list[str]:
    """Categories with a default checkpoint in model/checkpoints/."""
    return sorted(p.stem for p in CHECKPOINT_DIR.glob("*.pth"))


@dataclass
class PreparedShape:
    """A shape in the model frame with its code; reusable across calls."""

    shape: Shape
    frame: Frame
    points: np.ndarray  # vertices (or points) in the model frame
    code: torch.Tensor  # (1, C): fitted to the surface unless fit_steps is 0 (see Correspondence._fit)
    encoder_code: torch.Tensor | None = None  # E's code where `code` was fitted
    _surface: SurfaceIndex | None = field(default=None, repr=False)
    _samples: "SurfaceSamples | None" = field(default=None, repr=False)  # see Correspondence._samples
    _encoded: "PreparedShape | None" = field(default=None, repr=False)

    @property
    def surface(self) -> SurfaceIndex:
        """Nearest-point index over the mesh, built on first use."""
        if self._surface is None:
            assert self.shape.faces is not None
            self._surface = SurfaceIndex(self.points, self.shape.faces)
        return self._surface

    def as_encoded(self) -> "PreparedShape":
        """The same shape under E's code (itself when the code was not fitted)."""
        if self.encoder_code is None:
            return self
        if self._encoded is None:
            self._encoded = PreparedShape(self.shape, self.frame, self.points, self.encoder_code, _surface=self._surface)
        return self._encoded


@dataclass
class SurfaceSamples:
    """Area-uniform surface samples of a prepared shape with their part embedding.

    They serve as match candidates when the shape is a source, and measure which parts
    the shape has (`presence`) whatever its role.
    """

    points: np.ndarray  # (S, 3) model frame
    face: np.ndarray | None  # (S,) face of each sample, meshes only
    bary: np.ndarray | None  # (S, 3)
    raw_embedding: np.ndarray  # (S, k) f at the samples
    embedding: np.ndarray  # (S, k) the same with the branches of absent parts zeroed
    presence: np.ndarray  # (k,) fraction of the surface whose argmax branch is each branch


@dataclass
class CorrespondenceResult:
    """Per target point: where it lands on the source, and how sure the model is."""

    mapped: np.ndarray  # (M, 3) on the source surface, source caller coordinates
    confidence: np.ndarray  # (M,) in [0, 1]
    source_index: np.ndarray  # (M,) nearest source point (points) or nearest corner (mesh)
    source_face: np.ndarray | None  # (M,) source face index, meshes only
    source_bary: np.ndarray | None  # (M, 3) barycentric coordinates on that face
    raw: np.ndarray  # (M, 3) g's output before projection onto the source, source coordinates
    surface_distance: np.ndarray  # (M,) |raw - mapped| in model units (bbox diagonal 1)
    embedding_distance: np.ndarray  # (M,) |f(raw, z_src) - f(x_tgt, z_tgt)|
    cycle_distance: np.ndarray  # (M,) |g(f(raw, z_src), z_tgt) - x_tgt| in model units
    existence: np.ndarray  # (M,) in [0, 1]: does the target point's part exist on the source
    source_rotation: np.ndarray  # (3, 3) rotation applied to the source by auto-alignment
    target_rotation: np.ndarray  # (3, 3) same for the target


@dataclass
class ReconstructedMesh:
    vertices: np.ndarray  # (V, 3) caller coordinates
    faces: np.ndarray  # (F, 3)
    parts: np.ndarray  # (V,) part index of each vertex
    rotation: np.ndarray  # (3, 3) auto-alignment rotation used


def check_settings(fit_steps: int = 0, fit_points: int = 16, embedding_weight: float = 0.5,
                   part_bias: Any = None, n_parts: int | None = None) -> None:
    """Raise ValueError naming an engine setting out of range (also for settings stored at export)."""
    if part_bias is not None:
        bias = np.asarray(part_bias, dtype=np.float64)
        if bias.ndim != 1 or not np.all(np.isfinite(bias)) or (n_parts is not None and len(bias) > n_parts):
            raise ValueError(f"part_bias must be finite logit offsets, one per branch (at most {n_parts}), "
                             f"got {part_bias!r}")
    if fit_steps < 0:
        raise ValueError(f"fit_steps must be >= 0, got {fit_steps}")
    if fit_points < 16:
        raise ValueError(f"fit_points must be >= 16, got {fit_points}")
    if not embedding_weight >= 0:
        raise ValueError(f"embedding_weight must be >= 0, got {embedding_weight}")


class Correspondence:
    """Dense correspondence between shapes of one category, through a learned part embedding."""

    def __init__(
        self,
        net: ImplicitCorrespondenceNet,
        device: str | torch.device | None = None,
        category: str = "unknown",
        surface_sigma: float = 0.03,
        embedding_sigma: float = 0.25,
        cycle_sigma: float = 0.05,
        embedding_weight: float = 0.5,
        part_bias: Any = None,
        position_prior: float = 1.0,
        part_frames: bool = True,
        min_part_fraction: float = 0.02,
        existence_sharpness: float = 4.0,
        min_label_share: float = 0.2,
        min_label_agreement: float = 0.6,
        match_samples: int = 20000,
        fit_steps: int = 0,
        fit_lr: float = 1e-2,
        fit_offset: float = 0.01,
        fit_points: int = 2048,
        chunk: int = 16384,
        max_points: int = DEFAULT_MAX_POINTS,
        seed: int = 0,
        checkpoint: Checkpoint | None = None,
    ):
        self.device = torch.device(device or default_device())
        self.net = net.to(self.device).eval()
        self.cfg = net.cfg
        self.category = category
        self.surface_sigma = surface_sigma
        self.embedding_sigma = embedding_sigma
        self.cycle_sigma = cycle_sigma
        self.embedding_weight = embedding_weight
        self.position_prior = position_prior
        self.part_frames = part_frames
        self.min_part_fraction = min_part_fraction
        self.existence_sharpness = existence_sharpness
        self.min_label_share = min_label_share
        self.min_label_agreement = min_label_agreement
        self.match_samples = match_samples
        check_settings(fit_steps=fit_steps, fit_points=fit_points, embedding_weight=embedding_weight,
                       part_bias=part_bias, n_parts=self.cfg.n_parts)
        # logit offsets of f's branches in every part decision (set at export: training.export)
        self.part_bias = np.zeros(self.cfg.n_parts)
        if part_bias is not None:
            self.part_bias[: len(part_bias)] = part_bias
        self.fit_steps = fit_steps
        self.fit_lr = fit_lr
        self.fit_offset = fit_offset
        self.fit_points = fit_points
        self.chunk = chunk
        self.max_points = max_points
        self.seed = seed
        self.checkpoint = checkpoint

    # ------------------------------------------------------------------ loading
    @classmethod
    def load(
        cls,
        path: str | Path | None = None,
        device: str | torch.device | None = None,
        category: str | None = None,
        **kwargs: Any,
    ) -> "Correspondence":
        """Load a checkpoint file, or the shipped default for `category` (chair if None)."""
        if path is None:
            category = category or DEFAULT_CATEGORY
            path = CHECKPOINT_DIR / f"{category}.pth"
            if not path.is_file():
                have = ", ".join(shipped_categories()) or "none"
                raise CheckpointError(
                    f"no default checkpoint for category {category!r} (shipped: {have}); "
                    f"train one with `python -m training.train --cate_name {category}` or pass a path"
                )
        dev = torch.device(device or default_device())
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise ValueError("device 'cuda' requested but CUDA is not available on this machine")
        ckpt = load_checkpoint(path, map_location="cpu")
        calib = ckpt.extra.get("confidence", {})
        for key in ("surface_sigma", "embedding_sigma", "cycle_sigma"):
            if key in calib:
                kwargs.setdefault(key, float(calib[key]))
        for key, kind in (("fit_steps", int), ("embedding_weight", float), ("part_bias", list)):
            if key in ckpt.extra:  # stored by training.export
                kwargs.setdefault(key, kind(ckpt.extra[key]))
        return cls(ckpt.build(dev), dev, ckpt.category, checkpoint=ckpt, **kwargs)

    def info(self) -> dict[str, Any]:
        ck = self.checkpoint
        return {
            "category": self.category,
            "device": str(self.device),
            "n_parts": self.cfg.n_parts,
            "config": self.cfg.to_dict(),
            "stage": ck.stage if ck else None,
            "epoch": ck.epoch if ck else None,
            "max_points": self.max_points,
            "fit_steps": self.fit_steps,
            "embedding_weight": self.embedding_weight,
            "part_bias": self.part_bias.tolist(),
        }

    # ------------------------------------------------------------------ network in chunks
    def _tensor(self, a: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(np.ascontiguousarray(a), dtype=torch.float32, device=self.device)

    @torch.no_grad()
    def _f(self, points: np.ndarray, code: torch.Tensor) -> np.ndarray:
        """f's own output (occupancy: its max over the branches)."""
        out = [self.net.embed(self._tensor(points[i : i + self.chunk])[None], code)[0].cpu()
               for i in range(0, len(points), self.chunk)]
        return torch.cat(out).numpy()

    @torch.no_grad()
    def _g(self, emb: np.ndarray, code: torch.Tensor) -> np.ndarray:
        out = [self.net.invert(self._tensor(emb[i : i + self.chunk])[None], code)[0].cpu()
               for i in range(0, len(emb), self.chunk)]
        return torch.cat(out).numpy().astype(np.float64)

    def _embed(self, points: np.ndarray, code: torch.Tensor) -> np.ndarray:
        """The part embedding the engine decides parts by: f with `part_bias` added to the
        logits of its branches (f itself where no offset is set)."""
        return _biased(self._f(points, code), self.part_bias)

    def _invert(self, emb: np.ndarray, code: torch.Tensor) -> np.ndarray:
        """g of an embedding from `_embed`: the offsets taken off again, as g was trained on f's."""
        return self._g(_biased(emb, -self.part_bias), code)

    @torch.no_grad()
    def _encode(self, encoder_points: np.ndarray) -> torch.Tensor:
        return self.net.encode(self._tensor(encoder_points)[None])

    # ------------------------------------------------------------------ shapes
    def _encoder_input(self, shape: Shape, frame: Frame) -> np.ndarray:
        """The fixed-size surface sample E sees, in the unrotated model frame: (n, 3) points,
        or (n, 6) points and normals estimated from `NORMAL_CLOUD` of them, as in training."""
        n = self.cfg.encoder_points
        cloud = NORMAL_CLOUD if self.cfg.encoder_normals else n
        if shape.is_mesh:
            pts = sample_surface(shape.vertices, shape.faces, cloud, seed=self.seed)[0]
        elif len(shape.vertices) > cloud:
            pick = np.random.default_rng(self.seed).choice(len(shape.vertices), cloud, replace=False)
            pts = shape.vertices[pick]
        else:
            pts = shape.vertices
        pts = frame.to_model(pts)
        if not self.cfg.encoder_normals:
            return pts
        normals = estimate_normals(pts)
        pick = np.random.default_rng(self.seed).permutation(len(pts))[:n]
        return np.concatenate([pts[pick], normals[pick]], axis=1)

    def prepare(self, data: Any, name: str = "shape", align: bool = False) -> PreparedShape:
        """Validate, normalise (and optionally auto-align) and encode a shape."""
        shape = as_shape(data, name, self.max_points)
        frame = bounding_frame(shape.vertices)
        enc = self._encoder_input(shape, frame)
        rotation = self._best_rotation(enc) if align else np.eye(3)
        frame = frame.rotated(rotation)
        code = self._encode(_rotated(enc, rotation))
        if not self.fit_steps:
            return PreparedShape(shape, frame, frame.to_model(shape.vertices), code)
        return PreparedShape(shape, frame, frame.to_model(shape.vertices), self._fit(shape, frame, code), code)

    def _fit(self, shape: Shape, frame: Frame, code: torch.Tensor) -> torch.Tensor:
        """E's code fitted to the shape's surface (see model/fitting.py): `fit_steps` steps
        on `fit_points` surface points (half of them in the loss, all of them for orienting
        the normals)."""
        if shape.is_mesh:
            pts, _, normals = sample_surface(shape.vertices, shape.faces, self.fit_points, seed=self.seed)
            pts, normals = frame.to_model(pts), normals @ frame.rotation.T
        else:
            pick = np.random.default_rng(self.seed).permutation(len(shape.vertices))[: self.fit_points]
            pts = frame.to_model(shape.vertices[pick])
            normals = pca_normals(pts)
        used = np.random.default_rng(self.seed).permutation(len(pts))[: max(self.fit_points // 2, 8)]
        normals = orient_outward(pts[used], normals[used], pts, lambda x: self._f(x, code).max(axis=1),
                                 self.fit_offset)
        return fit_code(self.net.embed, code, pts[used], normals, self.fit_steps, self.fit_lr, self.fit_offset)

    def _best_rotation(self, enc: np.ndarray) -> np.ndarray:
        """The axis rotation under which the model explains the shape best.

        Score: self-reconstruction error |g(f(x)) - x|^2 plus how far the occupancy of the
        surface points is from the iso-level 0.5; both are small only for poses the
        model has learned.
        """
        rots = cube_rotations()
        probe = enc[np.random.default_rng(self.seed).choice(len(enc), min(512, len(enc)), replace=False), :3]
        scores = []
        for rot in rots:
            p = probe @ rot.T
            code = self._encode(_rotated(enc, rot))
            emb = self._f(p, code)
            recon = self._g(emb, code)
            scores.append(((recon - p) ** 2).sum(1).mean() + ((emb.max(1) - 0.5) ** 2).mean())
        return rots[int(np.argmin(scores))]

    def align(self, data: Any) -> np.ndarray:
        """The rotation (3, 3) auto-alignment picks for a shape: p_model = R @ p_normalised."""
        shape = as_shape(data, "shape", self.max_points)
        return self._best_rotation(self._encoder_input(shape, bounding_frame(shape.vertices)))

    # ------------------------------------------------------------------ operations
    def correspond(self, source: Any, target: Any, align: bool = False,
                   source_labels: Any = None) -> CorrespondenceResult:
        """For every target point (or vertex), the matching point on the source and a confidence.

        `source_labels` (optional; per source point, vertex or face, -1 for unlabelled) are
        the source's own part labels, where the caller has them: a label that mostly
        coincides with one model part is matched as that part, all of it
        (`_source_parts`), which mends the model's segmentation of the source before
        anything lands on it.
        """
        src = source if isinstance(source, PreparedShape) else self.prepare(source, "source", align)
        tgt = target if isinstance(target, PreparedShape) else self.prepare(target, "target", align)
        judged = self._correspond(src.as_encoded(), tgt.as_encoded(), source_labels)
        if src.encoder_code is None and tgt.encoder_code is None:
            return judged
        # Fitted codes place the match (they draw the part boundaries where the shapes have
        # them); the confidence stays E's, whose maps g was trained on: under fitted codes
        # g's round trips stray and the confidence tells missing parts less well (existence
        # AUROC of the procedural tables 0.836 against 0.870).
        emb_t, raw = self._toward_source(src, tgt)
        match = self._match(src, tgt, raw, emb_t, self._source_parts(src, source_labels))
        return replace(judged, **_placement(src, *match[:4]))

    def _toward_source(self, src: PreparedShape, tgt: PreparedShape) -> tuple[np.ndarray, np.ndarray]:
        """f at the target's points (without the branches of parts it lacks) and g's map of
        them onto the source through the shared embedding."""
        emb_raw = self._point_embedding(tgt)
        return self._without_absent(emb_raw, self._samples(tgt).presence), self._invert(emb_raw, src.code)

    def _correspond(self, src: PreparedShape, tgt: PreparedShape, source_labels: Any) -> CorrespondenceResult:
        part_s = self._source_parts(src, source_labels)
        # Which parts the source has: with its labels, the parts they were matched as (an
        # engine branch that wins on 2% of an engineless airplane's wing roots is no engine
        # its labels know of); without, where f's branches win.
        src_parts = (self._samples(src).presence if source_labels is None
                     else np.bincount(part_s, minlength=self.cfg.n_parts) / len(part_s))
        emb_t, raw = self._toward_source(src, tgt)
        emb_back = self._embed(raw, src.code)
        # Back to the target: a part the source lacks maps onto some other part there
        # and returns far from where it started.
        cycle_dist = np.linalg.norm(self._invert(emb_back, tgt.code) - tgt.points, axis=1)
        if src.shape.is_mesh:
            surf_dist = np.linalg.norm(raw - src.surface.query(raw)[0], axis=1)
        else:
            surf_dist = nearest_in_cloud(src.points, raw)[0]
        on_surface, face, bary, corner, emb_match = self._match(src, tgt, raw, emb_t, part_s)
        # A part the source lacks has no source point with its embedding: the best match
        # (and g's round trip) land on another part's.
        emb_back = self._without_absent(emb_back, src_parts)
        emb_dist = np.maximum(np.linalg.norm(emb_match - emb_t, axis=1), np.linalg.norm(emb_back - emb_t, axis=1))
        existence = self._existence(emb_t, src_parts)
        confidence = existence * np.exp(
            -0.5 * ((surf_dist / self.surface_sigma) ** 2 + (emb_dist / self.embedding_sigma) ** 2
                    + (cycle_dist / self.cycle_sigma) ** 2)
        )
        return CorrespondenceResult(
            **_placement(src, on_surface, face, bary, corner),
            confidence=confidence.astype(np.float64),
            raw=src.frame.from_model(raw),
            surface_distance=surf_dist,
            embedding_distance=emb_dist,
            cycle_distance=cycle_dist,
            existence=existence,
            source_rotation=src.frame.rotation,
            target_rotation=tgt.frame.rotation,
        )

    def _samples(self, prep: PreparedShape) -> SurfaceSamples:
        """Surface samples of a prepared shape, embedded once however many calls use it."""
        if prep._samples is None:
            if prep.shape.is_mesh:
                pts, face, _ = sample_surface(prep.points, prep.shape.faces, self.match_samples, seed=self.seed)
                bary = barycentric(prep.points[prep.shape.faces[face]], pts)
            else:
                pts, face, bary = prep.points, None, None
            emb = self._embed(pts, prep.code)
            presence = np.bincount(emb.argmax(axis=1), minlength=emb.shape[1]) / len(emb)
            prep._samples = SurfaceSamples(pts, face, bary, emb, self._without_absent(emb, presence), presence)
        return prep._samples

    def _point_embedding(self, prep: PreparedShape) -> np.ndarray:
        """f at the shape's vertices or points (a point cloud's are its samples: reused)."""
        if prep.shape.is_mesh:
            return self._embed(prep.points, prep.code)
        return self._samples(prep).raw_embedding

    def _without_absent(self, emb: np.ndarray, presence: np.ndarray) -> np.ndarray:
        """The embedding with the branches of parts the shape lacks set to 0.

        A part exists when its branch wins on at least `min_part_fraction` of the surface:
        a few stray points where an absent part's branch barely wins (an armrest branch
        along the edge of an armless seat) are not a part, and must neither take that
        part's label nor match onto that part of another shape.
        """
        return emb * self._present(presence)

    def _present(self, presence: np.ndarray) -> np.ndarray:
        """Which branches are parts of the shape: those winning on at least
        `min_part_fraction` of its surface (the largest one at least)."""
        return presence >= min(self.min_part_fraction, presence.max())

    def _existence(self, emb: np.ndarray, source_presence: np.ndarray) -> np.ndarray:
        """Per point, how surely its part is one the source has: the point's soft part
        membership (a softmax over `existence_sharpness` x the branch logits) summed over
        the source's parts."""
        logits = self.existence_sharpness * branch_logits(emb)
        weights = np.exp(logits - logits.max(axis=1, keepdims=True))
        return (weights @ self._present(source_presence)) / weights.sum(axis=1)

    def _source_parts(self, src: PreparedShape, source_labels: Any) -> np.ndarray:
        """The model part (branch) of each source surface sample, as matching uses it.

        Without labels: the argmax of f.  With the source's own labels, each label's
        samples all take the branch most of them have: f blurs thin parts into the part
        they touch (a table's apron into its top), and a label tells which of the two
        the whole apron is.  A label that spreads over several parts (less than
        `min_label_agreement` of it in one: "left half", "painted red") is no part of the
        model's, and unlabelled (-1) samples are none either: they keep f's branches.
        """
        samples = self._samples(src)
        parts = samples.embedding.argmax(1)
        if source_labels is None:
            return parts
        on_samples = self._on_samples(src, *self._source_labels(src, source_labels))
        guided = parts.copy()
        for label in np.unique(on_samples[on_samples >= 0]):
            mine = on_samples == label
            counts = np.bincount(parts[mine])
            part = counts.argmax()
            # the label is mostly that branch and the branch mostly that label
            if counts[part] >= self.min_label_agreement * max(mine.sum(), np.sum(parts == part)):
                guided[mine] = part
        return guided

    def _match(self, src: PreparedShape, tgt: PreparedShape, raw: np.ndarray, emb_t: np.ndarray,
               part_s: np.ndarray):
        """The source surface point each target point corresponds to -> (points, face, bary, corner, embedding).

        The nearest source point in the joint space of canonical position and part
        embedding, among the source points of the target point's part (its argmax
        branch; `part_s` gives the source samples') when the source has that part, and
        else among those where f's argmax is that part: the part embedding decides the part, the
        position (the target point's own, blended with g's inverse map by
        `position_prior`) places the match within it.  g alone cannot tell mirror-
        symmetric parts apart (left and right legs share an embedding), which the
        canonical position resolves.  With `part_frames` that position is first moved
        into the source part's frame (`_into_part_frame`), so a narrow table top's corner
        meets a wide one's corner.
        """
        samples = self._samples(src)
        w = self.embedding_weight
        prior = self.position_prior * tgt.points + (1.0 - self.position_prior) * raw
        # parts are decided with `part_bias`, positions within them by f's own embedding
        feat_s = np.concatenate([samples.points, w * _biased(samples.embedding, -self.part_bias)], 1)
        emb_f = _biased(emb_t, -self.part_bias)
        part_f, part_t = samples.embedding.argmax(1), emb_t.argmax(1)
        tgt_samples = self._samples(tgt)
        part_t_samples = tgt_samples.embedding.argmax(1)
        idx = np.full(len(prior), -1)
        for part in np.unique(part_t):
            on_source = np.flatnonzero(part_s == part)
            if not len(on_source):  # the labels put no whole label there: f's points of the part
                on_source = np.flatnonzero(part_f == part)
            if len(on_source):
                mine = part_t == part
                where = prior[mine]
                if self.part_frames:
                    where = _into_part_frame(where, tgt_samples.points[part_t_samples == part],
                                             samples.points[on_source])
                feat_t = np.concatenate([where, w * emb_f[mine]], 1)
                idx[mine] = on_source[cKDTree(feat_s[on_source]).query(feat_t)[1]]
        elsewhere = idx < 0  # parts the source lacks: their nearest point anywhere (low confidence)
        if elsewhere.any():
            idx[elsewhere] = cKDTree(feat_s).query(np.concatenate([prior[elsewhere], w * emb_f[elsewhere]], 1))[1]
        cand, face, bary = samples.points, samples.face, samples.bary
        if face is None:
            return cand[idx], None, None, idx, samples.embedding[idx]
        face, bary = face[idx], bary[idx]
        return cand[idx], face, bary, src.shape.faces[face, bary.argmax(axis=1)], samples.embedding[idx]

    def transfer_labels(
        self, source: Any, source_labels: Any, target: Any, align: bool = False
    ) -> tuple[np.ndarray, np.ndarray]:
        """Labels per target point from per-point (or, for meshes, per-vertex or per-face)
        source labels -> (labels (M,), confidence (M,)); see `labels_from`."""
        src = source if isinstance(source, PreparedShape) else self.prepare(source, "source", align)
        labels, per_face = self._source_labels(src, source_labels)
        return self._labels_from(self.correspond(src, target, align, source_labels), src, labels, per_face)

    def labels_from(self, result: CorrespondenceResult, source: PreparedShape,
                    source_labels: Any) -> tuple[np.ndarray, np.ndarray]:
        """Per target point of `result` (from `correspond(source, ...)`), the label of its
        match and the confidence in that label.

        A label that lands on a sliver of the target, less than `min_label_share` of the
        share of the source surface it covers, comes from stray matches along a part
        boundary, not from a part the two shapes share: those points keep the label but
        get confidence 0, for a fill from confident neighbours (the add-on's) or the other
        sources (the evaluation's confidence-weighted vote) to decide.
        """
        labels, per_face = self._source_labels(source, source_labels)
        return self._labels_from(result, source, labels, per_face)

    @staticmethod
    def _source_labels(src: PreparedShape, source_labels: Any) -> tuple[np.ndarray, bool]:
        n_points = len(src.shape.vertices)
        n_faces = len(src.shape.faces) if src.shape.is_mesh else -1
        given = np.asarray(source_labels)
        per_face = given.ndim == 1 and len(given) == n_faces != n_points
        if src.shape.is_mesh and given.ndim == 1 and len(given) not in (n_points, n_faces):
            raise ValueError(f"source_labels has {len(given)} entries; the source mesh has "
                             f"{n_points} vertices and {n_faces} faces (one label per vertex or per face)")
        return as_labels(source_labels, n_faces if per_face else n_points, "source_labels"), per_face

    def _on_samples(self, src: PreparedShape, labels: np.ndarray, per_face: bool) -> np.ndarray:
        """Per-vertex (or per-face, or per-point) source labels at the source's surface samples."""
        samples = self._samples(src)
        if per_face:
            return labels[samples.face]
        if samples.face is not None:
            return labels[src.shape.faces[samples.face, samples.bary.argmax(1)]]
        return labels

    def _labels_from(self, res: CorrespondenceResult, src: PreparedShape, labels: np.ndarray,
                     per_face: bool) -> tuple[np.ndarray, np.ndarray]:
        out = labels[res.source_face] if per_face else labels[res.source_index]
        on_source = self._on_samples(src, labels, per_face)
        values, inverse = np.unique(np.concatenate([on_source, out]), return_inverse=True)
        share_source = np.bincount(inverse[: len(on_source)], minlength=len(values)) / len(on_source)
        share_target = np.bincount(inverse[len(on_source):], minlength=len(values)) / len(out)
        sliver = share_target < self.min_label_share * share_source
        return out, np.where(sliver[inverse[len(on_source):]], 0.0, res.confidence)

    def segment(self, points: Any, align: bool = False) -> np.ndarray:
        """Part index (argmax of f's branches, over the parts the shape has) of each point or vertex."""
        shape = points if isinstance(points, PreparedShape) else self.prepare(points, "points", align)
        emb = self._without_absent(self._point_embedding(shape), self._samples(shape).presence)
        return emb.argmax(axis=1).astype(np.int64)

    def reconstruct(self, points: Any, resolution: int = 64, align: bool = False) -> ReconstructedMesh:
        """Marching cubes of the occupancy max_k f at iso 0.5, with per-vertex parts."""
        if not isinstance(resolution, (int, np.integer)) or not 8 <= resolution <= 512:
            raise ValueError(f"resolution must be an integer in [8, 512], got {resolution!r}")
        shape = points if isinstance(points, PreparedShape) else self.prepare(points, "points", align)
        lo, hi = -0.55, 0.55
        axis = np.linspace(lo, hi, resolution)
        occ = np.empty(resolution**3, dtype=np.float32)
        step = self.chunk * 4
        for start in range(0, len(occ), step):  # grid coordinates made per chunk: bounded memory
            ijk = np.unravel_index(np.arange(start, min(start + step, len(occ))), (resolution,) * 3)
            occ[start : start + step] = self._f(np.stack([axis[i] for i in ijk], axis=1), shape.code).max(axis=1)
        verts, faces = mcubes.marching_cubes(occ.reshape((resolution,) * 3), 0.5)
        verts = lo + verts * (hi - lo) / (resolution - 1)
        present = self._samples(shape).presence
        parts = (self._without_absent(self._embed(verts, shape.code), present).argmax(axis=1) if len(verts)
                 else np.zeros(0, np.int64))
        return ReconstructedMesh(
            vertices=shape.frame.from_model(verts),
            faces=np.asarray(faces, dtype=np.int64),
            parts=parts.astype(np.int64),
            rotation=shape.frame.rotation,
        )


def branch_logits(emb: np.ndarray) -> np.ndarray:
    """The logits behind f's branch outputs (sigmoids), clipped away from 0 and 1."""
    p = np.clip(emb.astype(np.float64), 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def _biased(emb: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """sigmoid(logit(emb) + bias), on the branches with an offset only (the rest unchanged)."""
    if not bias.any():
        return emb
    out = emb.copy()
    cols = np.flatnonzero(bias)
    out[:, cols] = 1.0 / (1.0 + np.exp(-(branch_logits(emb[:, cols]) + bias[cols])))
    return out


def _placement(src: PreparedShape, on_surface: np.ndarray, face: np.ndarray | None, bary: np.ndarray | None,
               corner: np.ndarray) -> dict[str, Any]:
    """Where matches land on the source, as `CorrespondenceResult` fields."""
    return {"mapped": src.frame.from_model(on_surface), "source_index": corner.astype(np.int64),
            "source_face": None if face is None else face.astype(np.int64), "source_bary": bary}


def _into_part_frame(points: np.ndarray, part_here: np.ndarray, part_there: np.ndarray,
                     floor: float = 0.01) -> np.ndarray:
    """Points of a part moved into the frame of the same part on another shape: per axis,
    the part's mean and spread here become its mean and spread there, so that a wider
    table top or a longer wing is matched by relative position within the part.
    `floor` keeps the spread of a flat part (a plate's thickness) from blowing up."""
    if len(part_here) < 2 or len(part_there) < 2:
        return points
    scale = np.maximum(part_there.std(0), floor) / np.maximum(part_here.std(0), floor)
    return (points - part_here.mean(0)) * scale + part_there.mean(0)


def _rotated(encoder_input: np.ndarray, rotation: np.ndarray) -> np.ndarray:
    """E's input (n, 3) points or (n, 6) points and normals, rotated: p -> R p (and n -> R n)."""
    n = len(encoder_input)
    return (encoder_input.reshape(n, -1, 3) @ rotation.T).reshape(n, -1)
