"""What every artist's model goes through, whichever package it comes from: cleaning, the
checks that leave a model out, and `Skip`, the verdict on one that is not used.
"""
from __future__ import annotations

import re

import numpy as np

MIN_FACES = 36  # fewer than three boxes' worth of triangles
MIN_FLATNESS = 0.03  # smallest / largest bounding-box extent


class Skip(Exception):
    """A model that is not used, with the reason."""


def slug(text: str) -> str:
    """`text` as a piece of a shape's name: letters and digits, runs of anything else as '-'."""
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-")


def clean_mesh(vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
    """Merge vertices that round to one point of a grid 1e-6 of the diagonal apart, drop
    degenerate and duplicate faces (a face listed twice, either way round, is kept once) and
    unused vertices, and wind each connected piece's faces consistently (outwards where the
    piece is closed)."""
    import trimesh

    v = np.asarray(vertices, dtype=np.float64)
    f = np.asarray(faces, dtype=np.int64)
    stats = {"vertices_in": len(v), "faces_in": len(f)}
    if len(f) == 0:
        raise Skip("empty: no faces")
    ok = np.isfinite(v).all(axis=1)
    f = f[ok[f].all(axis=1)]
    diag = float(np.linalg.norm(np.ptp(v[ok], axis=0)))
    if diag <= 0:
        raise Skip("empty: all vertices coincide")
    _, first, inverse = np.unique(np.round(v / (1e-6 * diag)).astype(np.int64), axis=0,
                                  return_index=True, return_inverse=True)
    inverse = inverse.reshape(-1)
    f = inverse[f]
    v = v[first]
    stats["vertices_merged"] = stats["vertices_in"] - len(v)
    tri = v[f]
    area2 = np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
    degenerate = (f[:, 0] == f[:, 1]) | (f[:, 1] == f[:, 2]) | (f[:, 0] == f[:, 2]) | (area2 <= 1e-14 * diag**2)
    stats["faces_degenerate"] = int(degenerate.sum())
    f = f[~degenerate]
    _, keep = np.unique(np.sort(f, axis=1), axis=0, return_index=True)
    stats["faces_duplicate"] = len(f) - len(keep)
    f = f[np.sort(keep)]
    used = np.unique(f)
    remap = np.full(len(v), -1, dtype=np.int64)
    remap[used] = np.arange(len(used))
    v, f = v[used], remap[f]
    mesh = trimesh.Trimesh(v, f, process=False)
    with np.errstate(divide="ignore", invalid="ignore"):  # pieces of zero volume
        trimesh.repair.fix_normals(mesh, multibody=True)
    stats.update(vertices=len(mesh.vertices), faces=len(mesh.faces),
                 pieces=int(mesh.body_count), watertight=bool(mesh.is_watertight))
    return np.asarray(mesh.vertices), np.asarray(mesh.faces, dtype=np.int64), stats


def check_shape(vertices: np.ndarray, faces: np.ndarray, category: str) -> None:
    """Raise Skip for models that cannot be used as a shape of the category."""
    if len(faces) < MIN_FACES:
        raise Skip(f"too coarse: only {len(faces)} faces (< {MIN_FACES})")
    extent = np.ptp(vertices, axis=0)
    if extent.min() < MIN_FLATNESS * extent.max():
        raise Skip(f"flat: extents {np.round(extent / extent.max(), 3).tolist()}, a billboard or a panel")
    if category == "airplane" and not extent[1] < min(extent[0], extent[2]):
        raise Skip(f"not airplane-shaped: its height is not its smallest extent "
                   f"(x, y, z = {np.round(extent, 2).tolist()})")
