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


def rotation_to_blender(model_rotation: np.ndarray) -> np.ndarray:
    """A rotation the engine applied in the model frame (p' = R p), as the same turn of
    Blender world coordinates: B R B (B is its own inverse)."""
    return BLENDER_TO_MODEL @ np.asarray(model_rotation, dtype=np.float64).reshape(3, 3) @ BLENDER_TO_MODEL


def degrees_about_up(blender_rotation: np.ndarray) -> float:
    """The turn about Blender's Z (up) axis of a rotation, in degrees in (-180, 180]."""
    r = np.asarray(blender_rotation, dtype=np.float64).reshape(3, 3)
    return float(np.degrees(np.arctan2(r[1, 0], r[0, 0])))


def is_about_up(blender_rotation: np.ndarray, tol: float = 1e-4) -> bool:
    """Whether a rotation only turns about Blender's Z axis (keeps up up)."""
    return bool(np.allclose(np.asarray(blender_rotation).reshape(3, 3)[:, 2], [0.0, 0.0, 1.0], atol=tol))


def rotated_world(matrix_world: np.ndarray, blender_rotation: np.ndarray) -> np.ndarray:
    """An object's 4x4 world matrix turned by a rotation about its own origin (location kept)."""
    m = np.array(matrix_world, dtype=np.float64).reshape(4, 4)
    m[:3, :3] = np.asarray(blender_rotation, dtype=np.float64).reshape(3, 3) @ m[:3, :3]
    return m
