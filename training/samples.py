"""Per-shape training samples in the model frame, as the trainer stores and reads them.

A sample is a dict of arrays (saved as one .npz per shape):

* `occ_points_R` (N_R, 3) float32 and `occ_values_R` (N_R,) float32 in {0, 1}, for R in
  16, 32, 64: IM-NET style, voxel centres of an R^3 grid over the unit box, those near the
  surface first, each labelled 1 when any of 8 random points inside the voxel is inside
  the shape (the max-pooled voxel occupancy, so thin parts survive at 16^3);
* `surface_points`, `surface_normals` (S, 3) float32 and `surface_labels` (S,) int64
  (-1 where unknown);
* `labels_present` (P,) int64: the part labels the shape has.

Coordinates are in the model frame of DESIGN.md: +Y up, front -Z, centred on the
bounding-box centre, bounding-box diagonal 1.
"""
from __future__ import annotations

import zipfile
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from model.geometry import bounding_frame

from .primitives import Assembly

RESOLUTIONS = (16, 32, 64)
POINTS_PER_RESOLUTION = {16: 4096, 32: 8192, 64: 16384}
# What training reads of every sample.
TRAINING_KEYS = ("surface_points", "surface_normals",
                 *(f"occ_{kind}_{r}" for r in RESOLUTIONS for kind in ("points", "values")))


def load_sample(path: Path, keys: Iterable[str] = TRAINING_KEYS) -> dict[str, np.ndarray]:
    """A sample file's arrays; a ValueError naming the file where it cannot be read or
    lacks any of `keys`."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            sample = {k: npz[k] for k in npz.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise ValueError(f"{path}: not a readable sample ({exc})") from None
    missing = [k for k in keys if k not in sample]
    if missing:
        raise ValueError(f"{path}: not a whole sample (no {', '.join(missing)}); "
                         f"prepare it again with `python -m training.prepare`")
    return sample


def occupancy_samples(
    inside: Callable[[np.ndarray], np.ndarray],
    surface: np.ndarray,
    resolution: int,
    count: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Voxel-centred samples at one resolution: near-surface voxels first, then random ones."""
    probes = 8
    cell = 1.0 / resolution
    n_voxels = resolution**3
    idx = np.clip(np.floor((surface + 0.5) / cell).astype(np.int64), 0, resolution - 1)
    near = np.zeros((resolution,) * 3, dtype=bool)
    for offset in np.ndindex(3, 3, 3):  # the surface voxels and their 26 neighbours
        j = np.clip(idx + np.array(offset) - 1, 0, resolution - 1)
        near[j[:, 0], j[:, 1], j[:, 2]] = True
    near_ids = np.flatnonzero(near.reshape(-1))
    far_ids = np.flatnonzero(~near.reshape(-1))
    if count >= n_voxels:
        chosen = np.arange(n_voxels)
    else:
        n_near = min(len(near_ids), int(count * 0.75))
        chosen = np.concatenate([
            rng.choice(near_ids, n_near, replace=False),
            rng.choice(far_ids, min(len(far_ids), count - n_near), replace=False),
        ])
    ijk = np.stack(np.unravel_index(chosen, (resolution,) * 3), axis=1)
    sub = (ijk[:, None, :] + rng.uniform(0.0, 1.0, (len(ijk), probes, 3))) * cell - 0.5
    occupied = inside(sub.reshape(-1, 3)).reshape(len(ijk), probes).any(axis=1)
    centres = (ijk + 0.5) * cell - 0.5
    return centres.astype(np.float32), occupied.astype(np.float32)


def make_sample(
    inside: Callable[[np.ndarray], np.ndarray],
    surface_points: np.ndarray,
    surface_normals: np.ndarray,
    surface_labels: np.ndarray | None = None,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """A sample from an inside test and surface samples, all already in the model frame."""
    rng = np.random.default_rng(seed)
    labels = np.full(len(surface_points), -1) if surface_labels is None else surface_labels
    out = {
        "surface_points": surface_points.astype(np.float32),
        "surface_normals": surface_normals.astype(np.float32),
        "surface_labels": labels.astype(np.int64),
        "labels_present": np.unique(labels[labels >= 0]).astype(np.int64),
    }
    for r in RESOLUTIONS:
        pts, occ = occupancy_samples(inside, surface_points, r, POINTS_PER_RESOLUTION[r], rng)
        out[f"occ_points_{r}"], out[f"occ_values_{r}"] = pts, occ
    return out


def assembly_sample(shape: Assembly, n_surface: int = 4096, seed: int = 0) -> dict[str, np.ndarray]:
    """A sample of a procedural shape: exact occupancy, labelled surface points."""
    vertices, _, _ = shape.mesh()
    frame = bounding_frame(vertices)
    pts, normals, labels = shape.sample_surface(n_surface, seed=seed)
    return make_sample(
        lambda p: shape.occupancy(frame.from_model(p)),
        frame.to_model(pts),
        normals,  # a uniform scale and a translation leave normals as they are
        labels,
        seed=seed,
    )
