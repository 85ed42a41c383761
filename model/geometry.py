"""Frames and surface sampling: small functions on numpy arrays."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import trimesh
from scipy.spatial import cKDTree


@dataclass(frozen=True)
class Frame:
    """Maps caller coordinates to the model frame: centred on the bounding-box centre,
    bounding-box diagonal 1, then rotated by `rotation` (identity unless auto-aligned)."""

    center: np.ndarray  # (3,)
    scale: float  # bounding-box diagonal in caller units
    rotation: np.ndarray = field(default_factory=lambda: np.eye(3))  # applied after centring/scaling: p_model = R @ p

    def to_model(self, points: np.ndarray) -> np.ndarray:
        return ((points - self.center) / self.scale) @ self.rotation.T

    def from_model(self, points: np.ndarray) -> np.ndarray:
        return (points @ self.rotation) * self.scale + self.center

    def rotated(self, rotation: np.ndarray) -> "Frame":
        return Frame(self.center, self.scale, np.asarray(rotation, dtype=np.float64))


def bounding_frame(points: np.ndarray) -> Frame:
    lo, hi = points.min(axis=0), points.max(axis=0)
    diag = float(np.linalg.norm(hi - lo))
    if not diag > 0:
        raise ValueError("degenerate shape: all points coincide (bounding-box diagonal is 0)")
    return Frame(center=(lo + hi) / 2.0, scale=diag)


def sample_surface(
    vertices: np.ndarray, faces: np.ndarray, count: int, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Area-weighted surface samples: (points (n,3), face index (n,), face normals (n,3))."""
    mesh = trimesh.Trimesh(vertices, faces, process=False)
    points, face_index = trimesh.sample.sample_surface(mesh, count, seed=seed)
    return np.asarray(points), np.asarray(face_index), np.asarray(mesh.face_normals[face_index])


def barycentric(triangles: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Barycentric coordinates (n,3) of points on their triangles (n,3,3), clipped to the face."""
    bary = trimesh.triangles.points_to_barycentric(triangles, points)
    bary = np.clip(np.nan_to_num(bary, nan=1.0 / 3.0), 0.0, 1.0)
    return bary / bary.sum(axis=1, keepdims=True).clip(1e-12)


def chamfer(a: np.ndarray, b: np.ndarray) -> float:
    """Mean nearest-point distance between two point sets, both ways, averaged."""
    return float(cKDTree(a).query(b)[0].mean() + cKDTree(b).query(a)[0].mean()) / 2


def cube_rotations() -> np.ndarray:
    """The 24 proper rotations that map coordinate axes onto coordinate axes, identity first."""
    mats = []
    for perm in ([0, 1, 2], [1, 2, 0], [2, 0, 1], [0, 2, 1], [2, 1, 0], [1, 0, 2]):
        for signs in np.ndindex(2, 2, 2):
            m = np.zeros((3, 3))
            m[np.arange(3), perm] = np.where(np.array(signs) == 0, 1.0, -1.0)
            if np.linalg.det(m) > 0:
                mats.append(m)
    mats.sort(key=lambda m: -np.trace(m))  # identity first
    return np.stack(mats)
