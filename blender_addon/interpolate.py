"""Carry source attributes to target vertices through (source triangle, barycentrics).

Every function takes the correspondence as `face` (M,) indices into the source's
triangles and `bary` (M, 3) weights on that triangle's corners, and returns one value per
target vertex.  Plain numpy: tests call it without bpy.
"""
from __future__ import annotations

import numpy as np

from . import labels


def point_values(values: np.ndarray, triangles: np.ndarray, face: np.ndarray, bary: np.ndarray) -> np.ndarray:
    """Per-source-vertex values (V, ...) -> per-target-vertex values, linear over the triangle."""
    corners = values[triangles[face]]  # (M, 3, ...)
    w = bary.reshape(bary.shape + (1,) * (corners.ndim - 2))
    return (corners * w).sum(axis=1)


def corner_values(values: np.ndarray, triangle_loops: np.ndarray, face: np.ndarray, bary: np.ndarray) -> np.ndarray:
    """Per-source-corner values (L, ...) (UVs, corner colours) -> per-target-vertex values.

    Interpolating within one source triangle keeps UV islands intact: the three corners
    of a triangle always lie on one island.
    """
    return point_values(values, triangle_loops, face, bary)


IDENTITY_QUATERNION = np.array([1.0, 0.0, 0.0, 0.0])


def quaternions(values: np.ndarray, triangles: np.ndarray, face: np.ndarray, bary: np.ndarray) -> np.ndarray:
    """Per-source-element rotations (wxyz) -> per-target-vertex unit rotations: q and -q are one
    rotation, so each corner is first turned into its triangle's first corner's hemisphere."""
    corners = values[triangles[face]].astype(np.float64)  # (M, 3, 4)
    corners *= np.where((corners * corners[:, :1]).sum(axis=2, keepdims=True) < 0, -1.0, 1.0)
    return unit_quaternions((corners * bary[:, :, None]).sum(axis=1)).astype(values.dtype)


def unit_quaternions(q: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length; the identity where a row has none."""
    norm = np.linalg.norm(q, axis=-1, keepdims=True)
    return np.where(norm > 1e-12, q / np.maximum(norm, 1e-12), IDENTITY_QUATERNION)


def nearest_point_values(values: np.ndarray, triangles: np.ndarray, face: np.ndarray, bary: np.ndarray) -> np.ndarray:
    """Values that must not be blended (labels, integers, booleans): the nearest corner's."""
    return values[labels.nearest_corner(triangles, face, bary)]


def position_colors(points: np.ndarray) -> np.ndarray:
    """RGBA colour of each point from its position normalised to the bounding box.

    The colouring of the paper's figures: the source is painted by position, each target
    vertex takes the colour of its corresponding source point.
    """
    p = np.asarray(points, dtype=np.float64)
    lo, hi = p.min(axis=0), p.max(axis=0)
    rgb = (p - lo) / np.maximum(hi - lo, 1e-12)
    return np.concatenate([rgb, np.ones((len(p), 1))], axis=1).astype(np.float32)


def label_colors(part_labels: np.ndarray) -> np.ndarray:
    """RGBA colour of each part label (the engine's palette); -1 (no label) is grey."""
    rgb = labels.label_colors(part_labels)
    return np.concatenate([rgb, np.ones((len(rgb), 1), np.float32)], axis=1)
