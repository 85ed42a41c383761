"""Turns about +Y under which an upright shape lies on itself (a rectangular table's half
turn, a square one's quarter turns), and what they do to its named keypoints: a match
that lands on a symmetric table's back-right foot for its front-left one is as right.

A turn is a symmetry when the turned surface lies on the shape: its Chamfer distance
to it at most `SYMMETRY_FACTOR` times that between two independent samplings of it."""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.spatial.transform import Rotation

from model.geometry import bounding_frame, chamfer

SYMMETRY_FACTOR = 1.5
QUARTER_TURNS = (90.0, 180.0, 270.0)


def yaw(degrees: float) -> np.ndarray:
    return Rotation.from_euler("y", degrees, degrees=True).as_matrix()


def turn_symmetry(a: np.ndarray, b: np.ndarray) -> Callable[[float], bool]:
    """`a`, `b`: two independent samplings of an upright surface -> is_symmetric(yaw in degrees)."""
    def normalised(points: np.ndarray) -> np.ndarray:
        return bounding_frame(points).to_model(points)

    upright = normalised(a)
    floor = chamfer(upright, normalised(b))

    def is_symmetric(degrees: float) -> bool:
        return chamfer(upright, normalised(a @ yaw(degrees).T)) <= SYMMETRY_FACTOR * floor

    return is_symmetric


def keypoint_renamings(points: np.ndarray, keypoints: dict[str, np.ndarray]) -> list[dict[str, str]]:
    """The identity, then for each quarter turn the upright shape (its surface `points`)
    is symmetric under, each keypoint's name -> the name of the keypoint its turned
    position lands on (the nearest, one to one: two feet of a trestle nearly coincide)."""
    names = list(keypoints)
    at = np.array([keypoints[n] for n in names]).reshape(-1, 3)
    is_symmetric = turn_symmetry(points[0::2], points[1::2])
    renamings = [{n: n for n in names}]
    for degrees in QUARTER_TURNS:
        if not names or not is_symmetric(degrees):
            continue
        turned = at @ yaw(degrees).T
        _, landing = linear_sum_assignment(np.linalg.norm(turned[:, None] - at[None], axis=2))
        renamings.append({n: names[j] for n, j in zip(names, landing)})
    return renamings
