"""Per-shape training samples in the model frame: what the trainer and tests feed the losses."""
from __future__ import annotations

import numpy as np

from model.geometry import bounding_frame

from .primitives import Assembly


def assembly_sample(
    shape: Assembly,
    n_surface: int = 2048,
    n_occupancy: int = 4096,
    near_sigma: float = 0.02,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """Surface points/normals/labels and occupancy samples (half near the surface, half
    uniform in the padded unit box), all in the model frame (bbox diagonal 1, centred)."""
    rng = np.random.default_rng(seed)
    vertices, _, _ = shape.mesh()
    frame = bounding_frame(vertices)
    pts, normals, labels = shape.sample_surface(n_surface, seed=seed)
    surface = frame.to_model(pts)
    near = surface[rng.integers(0, len(surface), n_occupancy // 2)]
    near = near + rng.normal(0, near_sigma, near.shape)
    uniform = rng.uniform(-0.55, 0.55, (n_occupancy - len(near), 3))
    occ_points = np.concatenate([near, uniform])
    occ = shape.occupancy(frame.from_model(occ_points))
    return {
        "surface_points": surface.astype(np.float32),
        "surface_normals": normals.astype(np.float32),
        "surface_labels": labels.astype(np.int64),
        "occ_points": occ_points.astype(np.float32),
        "occ_values": occ.astype(np.float32),
    }
