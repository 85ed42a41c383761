"""Auto-alignment: the pose under which the model explains a shape best."""
from __future__ import annotations

import numpy as np

from .geometry import cube_rotations
from .runner import Runner

PROBE_POINTS = 512  # surface points each candidate pose is scored on


def best_rotation(runner: Runner, encoder_input: np.ndarray, seed: int) -> np.ndarray:
    """The axis rotation with the lowest self-reconstruction error |g(f(x)) - x|^2 plus
    distance of the surface's occupancy from the iso-level 0.5: both are small only for
    poses the model has learned."""
    rots = cube_rotations()
    pick = np.random.default_rng(seed).choice(len(encoder_input), min(PROBE_POINTS, len(encoder_input)),
                                              replace=False)
    probe = encoder_input[pick, :3]
    scores = []
    for rot in rots:
        p = probe @ rot.T
        code = runner.encode(rotated(encoder_input, rot))
        emb = runner.f(p, code)
        recon = runner.g(emb, code)
        scores.append(((recon - p) ** 2).sum(1).mean() + ((emb.max(1) - 0.5) ** 2).mean())
    return rots[int(np.argmin(scores))]


def rotated(encoder_input: np.ndarray, rotation: np.ndarray) -> np.ndarray:
    """E's input (n, 3) points or (n, 6) points and normals, rotated: p -> R p (and n -> R n)."""
    n = len(encoder_input)
    return (encoder_input.reshape(n, -1, 3) @ rotation.T).reshape(n, -1)
