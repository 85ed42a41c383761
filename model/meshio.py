"""Reading mesh files (numpy and trimesh only): the one loader behind the server's
command line, the demo and training's data preparation."""
from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import trimesh


def load_mesh(path: str | Path) -> trimesh.Trimesh:
    """One triangle mesh from OBJ, OFF (also .off.gz), PLY, STL or GLB, scenes merged,
    vertices as stored; raises a ValueError naming the file when it is unusable."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    name = path.name.lower()
    try:
        if name.endswith(".gz"):
            with gzip.open(path, "rb") as fh:
                mesh = trimesh.load(fh, file_type=name[:-3].rsplit(".", 1)[-1], force="mesh", process=False)
        else:
            mesh = trimesh.load(path, force="mesh", process=False)
    except Exception as exc:  # trimesh raises many types for malformed files
        raise ValueError(f"{path}: cannot read as a mesh: {exc}") from None
    if not isinstance(mesh, trimesh.Trimesh) or len(mesh.faces) == 0:
        raise ValueError(f"{path}: has no triangles")
    if not np.isfinite(mesh.vertices).all():
        raise ValueError(f"{path}: has non-finite vertex coordinates")
    if mesh.area <= 0:
        raise ValueError(f"{path}: has zero surface area")
    return mesh


def read_mesh(path: str | Path) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """-> (vertices, faces, vertex colours (V, 3) uint8 or None)."""
    mesh = load_mesh(path)
    colors = None
    if getattr(mesh.visual, "kind", None) == "vertex":
        colors = np.asarray(mesh.visual.vertex_colors)[:, :3].astype(np.uint8)
    return np.asarray(mesh.vertices), np.asarray(mesh.faces), colors
