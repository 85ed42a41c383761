"""The source sample each target point corresponds to."""
from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

from .runner import biased

# Floor of a part's extent in its frame, so a flat part (a plate's thickness) does not
# blow positions up.
PART_SPREAD_FLOOR = 0.01
# Percentile of a part's samples taken as its end on each axis: a few stray samples (a
# neighbouring part's boundary) move no end.
PART_EXTENT = 2.0


def match(source_points: np.ndarray, source_emb: np.ndarray, source_parts: np.ndarray,
          target_where: np.ndarray, target_emb: np.ndarray, target_samples: np.ndarray,
          target_sample_parts: np.ndarray, weight: float, part_bias: np.ndarray) -> np.ndarray:
    """(M,) index of each target point's match among the source samples.

    The nearest source sample in the joint space of canonical position and `weight` x part
    embedding, among the samples matched as the target point's part (its argmax branch)
    when the source has that part, and anywhere else: the embedding decides the part, the
    position places the match within it (g alone cannot tell mirror-symmetric parts
    apart: left and right legs share an embedding).  The position is first moved into the
    source part's frame (`into_part_frame`), so a narrow table top's corner meets a wide
    one's corner.  Embeddings come with the part offsets, which decide the parts; positions
    within a part are placed by f's own embedding.
    """
    part_t, part_f = target_emb.argmax(1), source_emb.argmax(1)
    source_emb, target_emb = biased(source_emb, -part_bias), biased(target_emb, -part_bias)
    feat_s = np.concatenate([source_points, weight * source_emb], 1)
    idx = np.full(len(target_where), -1)
    for part in np.unique(part_t):
        on_source = np.flatnonzero(source_parts == part)
        if not len(on_source):  # labels put no whole label there: f's samples of the part
            on_source = np.flatnonzero(part_f == part)
        if len(on_source):
            mine = part_t == part
            where = into_part_frame(target_where[mine], target_samples[target_sample_parts == part],
                                    source_points[on_source])
            feat_t = np.concatenate([where, weight * target_emb[mine]], 1)
            idx[mine] = on_source[cKDTree(feat_s[on_source]).query(feat_t, workers=-1)[1]]
    elsewhere = idx < 0  # parts the source lacks: their nearest sample anywhere (low confidence)
    if elsewhere.any():
        idx[elsewhere] = cKDTree(feat_s).query(np.concatenate([target_where[elsewhere],
                                                              weight * target_emb[elsewhere]], 1), workers=-1)[1]
    return idx


def into_part_frame(points: np.ndarray, part_here: np.ndarray, part_there: np.ndarray) -> np.ndarray:
    """Points of a part moved into the frame of the same part on another shape: per axis,
    the part's centre of mass here goes to its centre there, and its extent here (between
    its PART_EXTENT and 100 - PART_EXTENT percentiles) is scaled to its extent there, so
    that a wider table top or a longer wing is matched by relative position within the
    part.  Scaled by the spread instead, a slatted back's corners would fall short of a
    solid back's; centred between its ends instead, an airplane's part centres would move
    (docs/model.md, *Correspondence*)."""
    if len(part_here) < 2 or len(part_there) < 2:
        return points
    lo_here, hi_here = np.percentile(part_here, [PART_EXTENT, 100 - PART_EXTENT], axis=0)
    lo_there, hi_there = np.percentile(part_there, [PART_EXTENT, 100 - PART_EXTENT], axis=0)
    scale = np.maximum(hi_there - lo_there, PART_SPREAD_FLOOR) / np.maximum(hi_here - lo_here, PART_SPREAD_FLOOR)
    return (points - part_here.mean(0)) * scale + part_there.mean(0)
