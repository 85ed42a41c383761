"""A shape made ready for the engine: validated, in the model frame, encoded, its code
fitted, its surface sampled and embedded.  Prepared once, reused by any number of calls
of the engine that made it."""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import torch
from scipy.spatial import cKDTree

from .alignment import AlignMode, best_rotation
from .config import ModelConfig
from .density import area_draw, farthest_points
from .fitting import fit_code, orient_outward
from .geometry import Frame, barycentric, bounding_frame, sample_surface
from .labels import vertex_areas
from .matching import extremity, outward_reach
from .normals import estimate_normals, pca_normals
from .parts import Embedded
from .runner import Runner
from .validation import Shape

NORMAL_CLOUD = 4096  # points E's normals are estimated from: a training sample's surface points
MATCH_SAMPLES = 20000  # area-uniform samples of a mesh: match candidates and part presence
FIT_POINTS = 2048  # surface points a code is fitted on (half in the loss, all for orienting normals)
FIT_LR = 1e-2
FIT_OFFSET = 0.01  # occupancy 1 this far inside the surface, 0 as far outside


@dataclass(frozen=True)
class PreparedShape:
    """A shape in the model frame with its codes and embedded surface samples."""

    shape: Shape
    frame: Frame
    points: np.ndarray  # vertices (or points) in the model frame
    code: torch.Tensor  # (1, C) places the parts: fitted to the surface unless fit_steps is 0
    encoder_code: torch.Tensor  # E's code: judges the match (g was trained on E's codes)
    sample_points: np.ndarray  # (S, 3) area-uniform surface samples (a point cloud's own points
    # less its outliers, `shape.kept`; an uneven cloud's weighted by their areas in `placed` and
    # `judged`)
    sample_face: np.ndarray | None  # (S,) face of each sample, meshes only
    sample_bary: np.ndarray | None  # (S, 3)
    placed: Embedded  # f at the samples under `code`
    judged: Embedded  # f at the samples under `encoder_code` (`placed` when not fitted)
    made_with: tuple = field(repr=False)  # the engine settings all of the above depend on
    # f at the vertices under each code, computed on first use: a target met by several
    # sources (or segmented, then matched) is embedded once
    vertex_embeddings: dict = field(default_factory=dict, repr=False, compare=False)
    # measures of the whole shape computed on first use (`Correspondence.rebuild_distance`)
    measures: dict = field(default_factory=dict, repr=False, compare=False)
    align: AlignMode = False  # the auto-alignment it was prepared with (the rotation is in `frame`)

    @property
    def fitted(self) -> bool:
        return self.code is not self.encoder_code

    @cached_property
    def _sample_tree(self) -> cKDTree:
        return cKDTree(self.sample_points)

    @property
    def samples_are_points(self) -> bool:
        """Whether the samples are the shape's points, row for row: a cloud with no outliers."""
        return not self.shape.is_mesh and len(self.sample_points) == len(self.points)

    @cached_property
    def point_areas(self) -> np.ndarray | None:
        """The surface each of `points` stands for: a mesh's vertex areas, an uneven cloud's
        point areas, 0 for a cloud's outliers; None for an even cloud (each point alike)."""
        if self.shape.is_mesh:
            return vertex_areas(self.points, self.shape.faces)
        if self.samples_are_points:
            return self.placed.weights
        areas = np.zeros(len(self.points))
        areas[self.shape.kept] = 1.0 if self.placed.weights is None else self.placed.weights
        return areas

    @cached_property
    def sample_extremity(self) -> np.ndarray:
        """(S, 3) each sample's `extremity` (model/matching.py)."""
        return extremity(self.sample_points, self.placed.weights)

    @cached_property
    def point_extremity(self) -> np.ndarray:
        """(N, 3) each point's (vertex's) extremity: its nearest sample's."""
        if self.samples_are_points:
            return self.sample_extremity
        if not self.shape.is_mesh:  # a cloud's kept points are its samples
            out = np.empty_like(self.points)
            out[self.shape.kept] = self.sample_extremity
            out[self.shape.outliers] = self.sample_extremity[
                self._sample_tree.query(self.points[self.shape.outliers], workers=-1)[1]]
            return out
        return self.sample_extremity[self._sample_tree.query(self.points, workers=-1)[1]]

    @cached_property
    def point_reach(self) -> np.ndarray:
        """(N,) how much further out than each extreme point the surface goes (`outward_reach`,
        with the matching module's constants as they are on first use)."""
        return outward_reach(self.points, self.sample_points[self.surface_samples], self.point_extremity)

    @cached_property
    def surface_samples(self) -> np.ndarray:
        """Rows of `sample_points` that stand for the surface where each sample's surroundings
        are searched: all of a mesh's, at most MATCH_SAMPLES of a dense cloud's (by their
        areas), so that the search around a point does not grow with the cloud's density."""
        n = len(self.sample_points)
        if n <= MATCH_SAMPLES:
            return np.arange(n)
        return np.sort(area_draw(n, MATCH_SAMPLES, self.placed.weights))

    def distance_to_surface(self, points: np.ndarray) -> np.ndarray:
        """Distance to the nearest surface sample: within the samples' spacing (about 0.007
        of the diagonal for a mesh's 20,000) of the exact distance, far below the
        confidence's surface sigma, and a tenth of the time of exact point-triangle queries."""
        return self._sample_tree.query(points, workers=-1)[0]


def prepare(runner: Runner, cfg: ModelConfig, shape: Shape, align: AlignMode, fit_steps: int, seed: int,
            made_with: tuple, category: str = "") -> PreparedShape:
    """Frame, (alignment), code, (fitted code), samples and their embeddings."""
    runner.step("E's code")
    frame = bounding_frame(shape.spanning)
    areas = cloud_areas(shape)
    enc = encoder_input(shape, frame, cfg, seed, areas)
    if align:
        runner.step("auto-alignment")
        frame, enc = aligned(shape, frame, enc, best_rotation(runner, enc, seed, align, category))
    encoder_code = code = runner.encode(enc)
    if fit_steps:
        runner.step("fitting the code")
        code = fitted_code(runner, shape, frame, encoder_code, fit_steps, seed, areas)
    points = frame.to_model(shape.vertices)
    if shape.is_mesh:
        samples, face, _ = sample_surface(points, shape.body_faces, MATCH_SAMPLES, seed=seed)
        face = shape.body[face]
        bary = barycentric(points[shape.faces[face]], samples)
    else:
        samples, face, bary = points[shape.kept], None, None
    runner.step("f at the surface samples")
    judged = Embedded.of(runner.embed(samples, encoder_code), areas)
    placed = judged
    if fit_steps:
        runner.step("f at the surface samples, fitted code")
        placed = Embedded.of(runner.embed(samples, code), areas)
    return PreparedShape(shape, frame, points, code, encoder_code, samples, face, bary, placed, judged, made_with,
                         align=align)


def cloud_areas(shape: Shape) -> np.ndarray | None:
    """The area each `kept` point of an uneven point cloud stands for (model/density.py),
    row for row with `shape.spanning`; None for a mesh or an even cloud."""
    return shape.kept_areas


def encoder_input(shape: Shape, frame: Frame, cfg: ModelConfig, seed: int,
                  areas: np.ndarray | None = None) -> np.ndarray:
    """The fixed-size surface sample E sees, in the unrotated model frame: (n, 3) points,
    or (n, 6) points and normals estimated from `NORMAL_CLOUD` of them, as in training.
    An uneven point cloud's points (with `areas`) are taken evenly (`farthest_points`): E
    was trained on area-uniform samples, and a cloud dense in places reads as another shape.
    A shape's outliers are left out (`Shape.kept`, `Shape.body`)."""
    n = cfg.encoder_points
    cloud = NORMAL_CLOUD if cfg.encoder_normals else n
    if shape.is_mesh:
        pts = sample_surface(shape.vertices, shape.body_faces, cloud, seed=seed)[0]
        pick = np.random.default_rng(seed).permutation(len(pts))[:n]
    elif areas is not None:
        pts = shape.spanning[farthest_points(shape.spanning, cloud, seed, areas)]
        pick = farthest_points(pts, n, seed)
    else:
        pts = shape.spanning
        if len(pts) > cloud:
            pts = pts[np.random.default_rng(seed).choice(len(pts), cloud, replace=False)]
        pick = np.random.default_rng(seed).permutation(len(pts))[:n]
    pts = frame.to_model(pts)
    if not cfg.encoder_normals:
        return pts
    normals = estimate_normals(pts)
    return np.concatenate([pts[pick], normals[pick]], axis=1)


def aligned(shape: Shape, frame: Frame, enc: np.ndarray, rotation: np.ndarray) -> tuple[Frame, np.ndarray]:
    """The frame of the shape turned by `rotation` (centre and diagonal of its bounding box
    in that pose, as the model saw each pose it scored) and E's input in that frame."""
    turned = bounding_frame(shape.spanning @ rotation.T)
    new = Frame(turned.center @ rotation, turned.scale, rotation)
    points = new.to_model(frame.from_model(enc[:, :3]))
    normals = enc[:, 3:] @ rotation.T if enc.shape[1] == 6 else enc[:, :0]
    return new, np.concatenate([points, normals], axis=1)


def fitted_code(runner: Runner, shape: Shape, frame: Frame, code: torch.Tensor, steps: int, seed: int,
                areas: np.ndarray | None = None) -> torch.Tensor:
    """E's code fitted to the shape's surface (model/fitting.py); an uneven point cloud's points
    enter the loss with chances by their `areas`, as area-uniform samples would; a shape's
    outliers do not enter it."""
    count = max(FIT_POINTS // 2, 8)
    if shape.is_mesh:
        pts, _, normals = sample_surface(shape.vertices, shape.body_faces, FIT_POINTS, seed=seed)
        pts, normals = frame.to_model(pts), normals @ frame.rotation.T
    else:
        pick = np.random.default_rng(seed).permutation(len(shape.spanning))[:FIT_POINTS]
        pts = frame.to_model(shape.spanning[pick])
        normals = pca_normals(pts)
    if areas is None:
        used = np.random.default_rng(seed).permutation(len(pts))[:count]
    else:
        used = area_draw(len(pts), min(count, len(pts)), areas[pick], seed)
    normals = orient_outward(pts[used], normals[used], pts, lambda x: runner.f(x, code).max(axis=1), FIT_OFFSET)
    with runner.precision():
        return fit_code(runner.net.embed, code, pts[used], normals, steps, FIT_LR, FIT_OFFSET, runner.on_chunk)


def vertex_embedding(runner: Runner, prep: PreparedShape, fitted: bool) -> np.ndarray:
    """f at the shape's vertices or points under its fitted code (or E's), kept on `prep`
    (a point cloud's points reused from their embeddings as samples, its outliers embedded)."""
    key, code, at_samples = (("fitted", prep.code, prep.placed) if fitted and prep.fitted
                             else ("encoder", prep.encoder_code, prep.judged))
    if prep.samples_are_points:
        return at_samples.raw
    if key not in prep.vertex_embeddings:
        if prep.shape.is_mesh:
            prep.vertex_embeddings[key] = runner.embed(prep.points, code)
        else:
            out = np.empty((len(prep.points), at_samples.raw.shape[1]), at_samples.raw.dtype)
            out[prep.shape.kept] = at_samples.raw
            out[prep.shape.outliers] = runner.embed(prep.points[prep.shape.outliers], code)
            prep.vertex_embeddings[key] = out
    return prep.vertex_embeddings[key]
