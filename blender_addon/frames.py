"""Blender world space (Z-up, front -Y) <-> the model frame (+Y up, front -Z).

(x, y, z) -> (-x, z, y).  The matrix is its own inverse, so the same map takes model
coordinates back to Blender.  Plain numpy: tests call it without bpy.
"""
from __future__ import annotations

import numpy as np

BLENDER_TO_MODEL = np.array([[-1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 1.0, 0.0]])


def apply_matrix(matrix: np.ndarray, vertices: np.ndarray) -> np.ndarray:
    """A 4x4 affine matrix (an object's matrix_world) applied to (N, 3) vertices."""
    m = np.asarray(matrix, dtype=np.float64).reshape(4, 4)
    return np.asarray(vertices, dtype=np.float64) @ m[:3, :3].T + m[:3, 3]


def to_model(world_vertices: np.ndarray) -> np.ndarray:
    return np.asarray(world_vertices, dtype=np.float64) @ BLENDER_TO_MODEL.T


def to_blender(model_points: np.ndarray) -> np.ndarray:
    return np.asarray(model_points, dtype=np.float64) @ BLENDER_TO_MODEL.T
