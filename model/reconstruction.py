"""Marching cubes of f's occupancy."""
from __future__ import annotations

from dataclasses import dataclass

import mcubes
import numpy as np
import torch
import trimesh

from .preparation import PreparedShape
from .runner import Runner

GRID_EXTENT = 0.55  # the grid spans [-0.55, 0.55]^3: a shape of unit diagonal, with a margin
# `rebuild_distance`: the grid the shape is rebuilt on and the samples taken on the rebuilt
# surface (0.06 s a prepared shape on 2 CPU cores).
REBUILD_RESOLUTION = 32
REBUILD_SAMPLES = 3000


@dataclass
class ReconstructedMesh:
    vertices: np.ndarray  # (V, 3) caller coordinates
    faces: np.ndarray  # (F, 3)
    parts: np.ndarray  # (V,) part index of each vertex
    rotation: np.ndarray  # (3, 3) auto-alignment rotation used


def occupancy_surface(runner: Runner, code: torch.Tensor, resolution: int) -> tuple[np.ndarray, np.ndarray]:
    """The iso-0.5 surface of max_k f over a resolution^3 grid -> (vertices in the model frame, faces)."""
    axis = np.linspace(-GRID_EXTENT, GRID_EXTENT, resolution)
    occ = np.empty(resolution**3, dtype=np.float32)
    step = runner.chunk * 4
    for start in range(0, len(occ), step):  # grid coordinates made per chunk: bounded memory
        ijk = np.unravel_index(np.arange(start, min(start + step, len(occ))), (resolution,) * 3)
        occ[start : start + step] = runner.f(np.stack([axis[i] for i in ijk], axis=1), code).max(axis=1)
    verts, faces = mcubes.marching_cubes(occ.reshape((resolution,) * 3), 0.5)
    verts = -GRID_EXTENT + verts * (2 * GRID_EXTENT) / (resolution - 1)
    return verts, np.asarray(faces, dtype=np.int64)


def rebuild_distance(runner: Runner, prep: PreparedShape, code: torch.Tensor | None = None) -> float:
    """Mean distance from the surface the model rebuilds from the shape's code to the shape
    itself, over its bounding-box diagonal (the model frame's unit).  The fitted code puts
    the rebuilt surface through the shape's points, so the other way round (shape to
    rebuild) stays small even for a flat sheet; but a model that cannot explain a shape
    rebuilds parts of its own category where the shape has none.  1.0 when nothing is
    rebuilt (no surface with area).  `code`: another code of the shape's (default: its own)."""
    verts, faces = occupancy_surface(runner, prep.code if code is None else code, REBUILD_RESOLUTION)
    rebuilt = trimesh.Trimesh(verts, faces, process=False)
    if not rebuilt.area > 0:
        return 1.0
    samples, _ = trimesh.sample.sample_surface(rebuilt, REBUILD_SAMPLES, seed=0)
    return float(prep.distance_to_surface(samples).mean())

