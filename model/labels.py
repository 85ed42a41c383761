"""Labels through a correspondence: plain numpy, shared by the engine, the command-line
client and the Blender add-on (which ships a copy of this file: it must not import torch).
"""
from __future__ import annotations

import numpy as np

# A label covering less than this fraction of its share of the source on the target comes
# from stray matches along a part boundary, not from a part both shapes have.
MIN_LABEL_SHARE = 0.2
# The vote each label from a source gets beside its confidence (`vote`): a point whose
# labels all got confidence 0 still takes one.
UNVOTED = 1e-9

# One colour per part label (RGB in [0, 1]); -1 (no label) is GREY.
PALETTE = np.array([
    [0.90, 0.30, 0.25], [0.25, 0.55, 0.90], [0.35, 0.75, 0.35], [0.95, 0.75, 0.20],
    [0.65, 0.40, 0.85], [0.20, 0.80, 0.80], [0.95, 0.50, 0.70], [0.55, 0.45, 0.30],
    [0.60, 0.85, 0.20], [0.30, 0.30, 0.65], [0.90, 0.55, 0.20], [0.45, 0.65, 0.60],
], dtype=np.float32)
GREY = 0.5


def label_colors(labels: np.ndarray) -> np.ndarray:
    """(N, 3) RGB in [0, 1] of each label: the palette, grey for -1."""
    labels = np.asarray(labels)
    out = PALETTE[np.mod(labels, len(PALETTE))]
    out[labels < 0] = GREY
    return out


def nearest_corner(triangles: np.ndarray, face: np.ndarray, bary: np.ndarray) -> np.ndarray:
    """The vertex (or corner, given corner indices) of each matched triangle nearest the
    matched point: where values that must not be blended (labels) are read."""
    return np.asarray(triangles)[face, np.asarray(bary).argmax(axis=1)]


def slivers(source_labels: np.ndarray, target_labels: np.ndarray, min_share: float = MIN_LABEL_SHARE,
            source_areas: np.ndarray | None = None, target_areas: np.ndarray | None = None) -> np.ndarray:
    """(M,) bool: target points whose label covers less than `min_share` of its share of
    the source.  A share is of the surface: each element (vertex, face, point) counts
    with its area where `*_areas` are given (`vertex_areas`, `face_areas`), else as one,
    which is right for area-uniform samples only (a low-poly leg on a finely tessellated
    chair holds few vertices but much surface).

    Such points keep their label but should be treated as unmatched: a fill from
    confident neighbours or another source decides them.
    """
    source_labels, target_labels = np.asarray(source_labels), np.asarray(target_labels)
    values, inverse = np.unique(np.concatenate([source_labels, target_labels]), return_inverse=True)
    n = len(source_labels)
    share_source = _shares(inverse[:n], len(values), source_areas)
    share_target = _shares(inverse[n:], len(values), target_areas)
    return (share_target < min_share * share_source)[inverse[n:]]


def vote(labels: np.ndarray, confidence: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Labels from several sources: (S, M) each source's label (-1: none) and its confidence
    per target point -> (voted (M,), support (M,)).  Each point takes the label with the most
    confidence summed over the sources (a point whose labels all got confidence 0 still
    takes one), -1 where no source lends one; its support is the largest confidence of a
    source that gave that label."""
    labels, confidence = np.atleast_2d(labels), np.atleast_2d(confidence)
    if labels.shape != confidence.shape:
        raise ValueError(f"labels {labels.shape} and confidence {confidence.shape} differ in shape")
    known = labels >= 0  # -1: unlabelled source points lend nothing
    # votes over the labels given, not every id up to the largest: ids may be sparse (1000, 2000)
    given, dense = np.unique(labels[known], return_inverse=True)
    votes = np.zeros((labels.shape[1], max(len(given), 1)))
    source, point = np.nonzero(known)
    np.add.at(votes, (point, dense.reshape(-1)), confidence[source, point] + UNVOTED)
    voted = np.where(known.any(axis=0), given[votes.argmax(axis=1)] if len(given) else -1, -1)
    support = np.where(known & (labels == voted), confidence, 0.0).max(axis=0, initial=0.0)
    return voted, support


def _shares(index: np.ndarray, count: int, areas: np.ndarray | None) -> np.ndarray:
    weights = None if areas is None else np.asarray(areas, dtype=np.float64)
    if weights is not None and not weights.sum() > 0:  # no faces to weigh by: count
        weights = None
    totals = np.bincount(index, weights=weights, minlength=count)
    return totals / max(float(totals.sum()), 1e-300)


def face_areas(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """(F,) area of each triangle."""
    v = np.asarray(vertices, dtype=np.float64)[np.asarray(faces, dtype=np.int64).reshape(-1, 3)]
    return 0.5 * np.linalg.norm(np.cross(v[:, 1] - v[:, 0], v[:, 2] - v[:, 0]), axis=1)


def vertex_areas(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """(V,) the surface each vertex stands for: a third of each triangle it is a corner of
    (0 for a vertex on no face)."""
    corners = np.asarray(faces, dtype=np.int64).reshape(-1)
    return np.bincount(corners, weights=np.repeat(face_areas(vertices, faces) / 3, 3), minlength=len(vertices))


def label_layout(labels: np.ndarray, n_vertices: int, n_faces: int | None, name: str = "source_labels"
                 ) -> tuple[np.ndarray, bool]:
    """Integer labels per vertex (or point) or per face, -1 for unlabelled -> (int64
    labels, per_face)."""
    if labels is None:
        raise ValueError(f"{name}: missing; give one integer label per point, vertex or face (-1: unlabelled)")
    arr = np.asarray(labels)
    if not np.issubdtype(arr.dtype, np.integer) or arr.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D array of integer labels, got {arr.dtype} {arr.shape}")
    if len(arr) and (arr.min() < -1 or arr.max() > np.iinfo(np.int64).max):
        bad = arr.min() if arr.min() < -1 else arr.max()
        raise ValueError(f"{name}: label {bad} is out of range (labels are 0 and up, -1 for unlabelled)")
    if len(arr) == n_vertices:
        return arr.astype(np.int64, copy=False), False
    if n_faces is not None and len(arr) == n_faces:
        return arr.astype(np.int64, copy=False), True
    if n_faces is None:
        raise ValueError(f"{name}: has {len(arr)} entries but the shape has {n_vertices} points")
    raise ValueError(f"{name}: has {len(arr)} entries; the shape has {n_vertices} vertices and {n_faces} faces "
                     f"(one label per vertex or per face)")


def labels_at(labels: np.ndarray, per_face: bool, faces: np.ndarray | None, face: np.ndarray | None,
              bary: np.ndarray | None, index: np.ndarray) -> np.ndarray:
    """Per-vertex or per-face labels at matched points: a face's own label, else the
    nearest corner's (a point cloud's: the matched point's, `index`)."""
    if per_face:
        return labels[face]
    if face is None:
        return labels[index]
    return labels[nearest_corner(faces, face, bary)]
