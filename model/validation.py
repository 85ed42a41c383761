"""Input checks for the engine: every problem becomes a ValueError that names it."""
from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from . import density
from .geometry import sample_surface
from .labels import face_areas

DEFAULT_MAX_POINTS = 5_000_000
# Squared distances of coordinates beyond this overflow float64 on the way.
MAX_COORDINATE = 1e100
# Area-uniform samples a mesh's outliers are judged against (`Shape.outliers`).
STRAY_SAMPLES = 20000
# A cloud whose second-largest spread is below this share of its largest lies on a line.
LINE_SHARE = 1e-6


@dataclass(frozen=True)
class Shape:
    """What the engine works on: points, and faces when the caller gave a mesh."""

    vertices: np.ndarray  # (N, 3) float64
    faces: np.ndarray | None = None  # (F, 3) int64

    @property
    def is_mesh(self) -> bool:
        return self.faces is not None

    @cached_property
    def outliers(self) -> np.ndarray:
        """(N,) bool: points or vertices apart from the shape's surface (model/density.py):
        a scanner's stray returns, a point or a small piece left over in a file, a helper
        object merged in, a ground plane under its feet.  They would otherwise move the
        frame, E's input and the fitted code, and every match with them.  A mesh's are
        judged against its area-uniform samples (`density.apart`), and its flat piece
        under the rest as wide as all of it is a ground plane (`density.ground`)."""
        if not self.is_mesh:
            return self._cloud_checks[0]
        far = density.apart(self.vertices, self.faces, sample_surface(self.vertices, self.faces, STRAY_SAMPLES)[0])
        return far | density.ground(self.vertices, self.faces[~far[self.faces].all(axis=1)])

    @cached_property
    def _cloud_checks(self) -> tuple[np.ndarray, np.ndarray]:
        """A cloud's (outliers, loose points) from one search of its neighbours."""
        return density.outliers_and_loose(self.vertices)

    @cached_property
    def kept(self) -> np.ndarray | None:
        """The rows of a cloud's points that are not `outliers`; None for a mesh."""
        return None if self.is_mesh else np.flatnonzero(~self.outliers)

    @cached_property
    def body(self) -> np.ndarray | None:
        """The faces of a mesh with a corner that is not one of its `outliers`: the surface
        it is sampled on.  None for a cloud."""
        return None if not self.is_mesh else np.flatnonzero(~self.outliers[self.faces].all(axis=1))

    @cached_property
    def body_faces(self) -> np.ndarray | None:
        """(len(body), 3) the faces of the mesh's `body`; None for a cloud."""
        return None if not self.is_mesh else self.faces[self.body]

    @cached_property
    def kept_areas(self) -> np.ndarray | None:
        """The area each `kept` point of an uneven cloud stands for (`density.uneven_areas`);
        None for an even cloud or a mesh."""
        return None if self.is_mesh else density.uneven_areas(self.vertices[self.kept])

    @cached_property
    def spanning(self) -> np.ndarray:
        """The points the shape's frame, E's input and the fitted code are taken from: a
        cloud's `kept` points (an even cloud's less those standing `density.loose`), the
        vertices a mesh's faces use less its `outliers`."""
        if not self.is_mesh:
            kept = self.vertices[self.kept]
            return kept if self.kept_areas is not None else kept[~self._cloud_checks[1][self.kept]]
        used = np.zeros(len(self.vertices), bool)
        used[self.faces] = True
        return self.vertices[used & ~self.outliers]


def as_points(data: Any, name: str = "points", max_points: int = DEFAULT_MAX_POINTS) -> np.ndarray:
    """A finite float64 (N, 3) array with 2 <= N <= max_points."""
    try:
        arr = np.asarray(data)
    except (ValueError, TypeError, RuntimeError) as exc:  # ragged lists, tensors that need .detach()
        raise ValueError(f"{name}: not an (N, 3) array of numbers ({exc})") from None
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise ValueError(f"{name}: expected a numeric array, got dtype {arr.dtype}")
    if arr.ndim != 2 or arr.shape[1] != 3:
        raise ValueError(f"{name}: expected shape (N, 3), got {arr.shape}")
    n = arr.shape[0]
    if n == 0:
        raise ValueError(f"{name}: is empty")
    if n < 2:
        raise ValueError(f"{name}: a single point has no shape; give at least 2 points")
    if n > max_points:
        raise ValueError(f"{name}: {n} points exceed the limit of {max_points}")
    arr = arr.astype(np.float64, copy=False)
    bad = ~np.isfinite(arr).all(axis=1)
    if bad.any():
        raise ValueError(f"{name}: {int(bad.sum())} point(s) contain NaN or infinity (first at row {int(np.argmax(bad))})")
    if np.abs(arr).max() > MAX_COORDINATE:
        raise ValueError(f"{name}: coordinates up to {np.abs(arr).max():.3g} are too large to compute with "
                         f"(at most {MAX_COORDINATE:g}); scale the shape down")
    return arr


def as_faces(data: Any, n_vertices: int, name: str = "faces") -> np.ndarray:
    arr = np.asarray(data)
    if not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"{name}: expected an integer array, got dtype {arr.dtype}")
    if arr.ndim != 2 or arr.shape[1] != 3 or arr.shape[0] == 0:
        raise ValueError(f"{name}: expected shape (F, 3) with F >= 1 triangles, got {arr.shape}")
    if arr.min() < 0 or arr.max() >= n_vertices:
        raise ValueError(f"{name}: vertex indices must lie in [0, {n_vertices}), found [{arr.min()}, {arr.max()}]")
    return arr.astype(np.int64, copy=False)


def as_shape(data: Any, name: str = "shape", max_points: int = DEFAULT_MAX_POINTS) -> Shape:
    """Accept an (N, 3) array, a (vertices, faces) pair, or any object with .vertices/.faces."""
    if isinstance(data, Shape):
        return data
    if isinstance(data, (str, os.PathLike)):
        raise ValueError(f"{name}: got the path {str(data)!r}; pass the shape itself: an (N, 3) array, a (vertices, "
                         "faces) pair or a trimesh (model.meshio.load_mesh reads a file into one)")
    if hasattr(data, "vertices") and hasattr(data, "faces"):
        vertices, faces = data.vertices, data.faces
    elif hasattr(data, "vertices"):  # a point cloud object (trimesh.PointCloud)
        return _not_a_line(Shape(as_points(data.vertices, name, max_points)), name)
    elif hasattr(data, "geometry"):
        raise ValueError(f"{name}: a scene of several meshes; pass one mesh (trimesh: scene.to_mesh())")
    elif isinstance(data, tuple) and len(data) == 2 and np.ndim(data[1]) == 2:  # not a tuple of two points
        vertices, faces = data
    else:
        return _not_a_line(Shape(as_points(data, name, max_points)), name)
    v = as_points(vertices, f"{name} vertices", max_points)
    f = as_faces(faces, len(v), f"{name} faces")
    if not face_areas(v, f).sum() > 0:
        raise ValueError(f"{name}: degenerate mesh, its faces have zero total area")
    return Shape(v, f)


def _not_a_line(shape: Shape, name: str) -> Shape:
    """A cloud whose points all lie on one line (or on one point) has no shape to match."""
    some = shape.vertices[:: max(1, len(shape.vertices) // 100_000)]
    spread = np.linalg.svd(some - some.mean(0), compute_uv=False)
    if not spread[1] > LINE_SHARE * spread[0]:
        raise ValueError(f"{name}: degenerate, all its points lie on {'one point' if not spread[0] > 0 else 'a line'}: "
                         f"there is no shape to match")
    return shape


def as_labels(data: Any, n: int, name: str = "labels") -> np.ndarray:
    """An int64 (n,) label array."""
    arr = np.asarray(data)
    if not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"{name}: expected integer labels, got dtype {arr.dtype}")
    if arr.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D array, got shape {arr.shape}")
    if arr.shape[0] != n:
        raise ValueError(f"{name}: has {arr.shape[0]} entries but the shape has {n} points")
    return arr.astype(np.int64, copy=False)
