"""The source sample each target point corresponds to."""
from __future__ import annotations

import itertools

import numpy as np
from scipy.spatial import cKDTree

from .density import area_draw, weighted_mean, weighted_percentiles
from .runner import biased

# The model frame's up axis (+Y).
UP = 1
# Floor of a part's extent in its frame, so a flat part (a plate's thickness) does not
# blow positions up.
PART_SPREAD_FLOOR = 0.01
# Percentile of a part's samples taken as its end on each axis: a few stray samples (a
# neighbouring part's boundary) move no end.
PART_EXTENT = 2.0
# A part's centre in height lies this share of the way from the middle between its ends to
# its centre of mass (`_ends_and_centre`).
HEIGHT_CENTRE_OF_MASS = 0.5
# Two strongest branches of a target point this close make it a close call (`match`).
CLOSE_CALL = 0.2
# Plan directions (10-degree sectors about the part's centre) in which a part's reach is
# measured (`_plan_stretch`).
PLAN_SECTORS = 36
# Percentile of the samples' distances from the centre taken as the reach in a sector, and
# the fewest samples that give a sector a reach at all.
PLAN_REACH = 98.0
PLAN_MIN_SAMPLES = 3
# A part is stretched at most this many times in any direction.
PLAN_STRETCH_LIMIT = 2.0
# A point's extremity (`extremity`): the offset from it to the centre of the surface within
# this radius, over the radius.  It is matched beside the position with this weight, so
# that a corner meets a corner and a tip a tip (docs/model.md, *Extremity*).
EXTREMITY_RADIUS = 0.07
EXTREMITY_WEIGHT = 0.1
# The surface around a point is judged on at most this many samples (the dev set's clouds'
# count): enough for a centre, and the time stays small on a mesh's 20,000 samples.
EXTREMITY_SAMPLES = 2500
EXTREMITY_CHUNK = 20000  # samples whose neighbours are gathered at once (memory)
# Without the source's labels, a target point at least this extreme (`extremity`'s length:
# about 0.3 on an edge, more at a corner or a tip) and at its own shape's extreme has its
# match moved, within OUTWARD_RADIUS of it and along the point's own outward direction, to
# the source's extreme there (`outward`): a corner lands on the corner and not just inside
# it (docs/model.md, *Outward*).
OUTWARD_EXTREMITY = 0.3
OUTWARD_RADIUS = 0.05
# Only a point within this of its own shape's furthest out along its outward direction (its
# reach, `outward_reach`) moves: the points around a corner keep the match's places, so they
# do not pile onto the corner, nor spread across the source's UV seams that run there.
OUTWARD_AT_EXTREME = 0.005
# Each unit moved sideways costs as much as this share of a unit missed along the outward
# direction: along an edge every sample is as far out, and the noise of the samples would
# slide the match along it.
OUTWARD_SIDEWAYS = 0.35
OUTWARD_CHUNK = 2048  # points moved at once: bounds the (point, sample) pairs held (memory)
# Without the source's labels the embedding weighs this share of the checkpoint's
# `embedding_weight`: labels keep their part boundaries by it, while keypoints and
# attributes are placed by the position (docs/model.md, *Correspondence*).
UNLABELLED_EMBEDDING_SHARE = 0.4


def match(source_points: np.ndarray, source_emb: np.ndarray, source_parts: np.ndarray,
          target_where: np.ndarray, target_emb: np.ndarray, target_samples: np.ndarray,
          target_sample_parts: np.ndarray, weight: float, part_bias: np.ndarray,
          source_areas: np.ndarray | None = None, target_areas: np.ndarray | None = None,
          close_calls: bool = False, source_extremity: np.ndarray | None = None,
          target_extremity: np.ndarray | None = None) -> np.ndarray:
    """(M,) index of each target point's match among the source samples.

    The nearest source sample in the joint space of canonical position and `weight` x part
    embedding, among the samples matched as the target point's part (its argmax branch)
    when the source has that part, and anywhere else: the embedding decides the part, the
    position places the match within it (g alone cannot tell mirror-symmetric parts
    apart: left and right legs share an embedding).  The position is first moved into the
    source part's frame (`into_part_frame`), so a narrow table top's corner meets a wide
    one's corner.  Embeddings come with the part offsets, which decide the parts; positions
    within a part are placed by f's own embedding, and beside the position by the
    `extremity` of the source samples and the target points (None: not used), weighed
    EXTREMITY_WEIGHT: where a part frame leaves a back's top corner short of the other's
    corner, the corner's outward offset pulls it there.  `source_areas` and `target_areas`
    (a point cloud's, per sample; None: equal) weigh the samples in the part frames.

    With `close_calls`, a target point whose two strongest branches lie within CLOSE_CALL
    of each other is matched in both parts and keeps the nearer match: the source decides
    which side of a part boundary the point is on.  That serves label transfer and costs
    keypoints where parts meet (docs/evaluation/devset.md), so the engine does it only when
    the source's labels are given.
    """
    if (source_extremity is None) != (target_extremity is None):
        raise ValueError("give both the source's and the target's extremity, or neither")
    order = np.argsort(-target_emb, axis=1)[:, :2]
    part_t, part_f = order[:, 0], source_emb.argmax(1)
    strongest = np.take_along_axis(target_emb, order, axis=1)
    runner_up = np.where(close_calls & (strongest[:, 0] - strongest[:, 1] < CLOSE_CALL), order[:, 1], -1)
    source_emb, target_emb = biased(source_emb, -part_bias), biased(target_emb, -part_bias)
    ext_s = _extremity_features(source_extremity, len(source_points))
    ext_t = _extremity_features(target_extremity, len(target_where))
    feat_s = np.concatenate([source_points, weight * source_emb, ext_s], 1)
    idx = np.full(len(target_where), -1)
    best = np.full(len(target_where), np.inf)
    for part in np.unique(np.r_[part_t, runner_up[runner_up >= 0]]):
        on_source = np.flatnonzero(source_parts == part)
        if not len(on_source):  # labels put no whole label there: f's samples of the part
            on_source = np.flatnonzero(part_f == part)
        if len(on_source):
            mine = np.flatnonzero((part_t == part) | (runner_up == part))
            here = target_sample_parts == part
            where = into_part_frame(target_where[mine], target_samples[here], source_points[on_source],
                                    None if target_areas is None else target_areas[here],
                                    None if source_areas is None else source_areas[on_source])
            feat_t = np.concatenate([where, weight * target_emb[mine], ext_t[mine]], 1)
            dist, nearest = cKDTree(feat_s[on_source]).query(feat_t, workers=-1)
            nearer = dist < best[mine]
            best[mine[nearer]] = dist[nearer]
            idx[mine[nearer]] = on_source[nearest[nearer]]
    elsewhere = idx < 0  # parts the source lacks: their nearest sample anywhere (low confidence)
    if elsewhere.any():
        idx[elsewhere] = cKDTree(feat_s).query(np.concatenate([target_where[elsewhere], weight * target_emb[elsewhere],
                                                               ext_t[elsewhere]], 1), workers=-1)[1]
    return idx


def outward(idx: np.ndarray, source_points: np.ndarray, target_extremity: np.ndarray, target_reach: np.ndarray,
            source_parts: np.ndarray, candidates: np.ndarray | None = None) -> np.ndarray:
    """`idx` (each target point's source sample, from `match`) with the match of each target
    point at its own shape's extreme moved out to the source's.  A point moves when its
    extremity is at least OUTWARD_EXTREMITY and its reach (`target_reach`, from
    `outward_reach`) at most OUTWARD_AT_EXTREME: along its outward direction (minus its
    extremity, which points back into the shape), to the source sample within
    OUTWARD_RADIUS of its match and in the match's part that lies as far short of the
    part's furthest out there as the point lies short of its own shape's, less
    OUTWARD_SIDEWAYS times how far it lies to the side.  A corner has surface on one side
    only, so a match that misses it lies inside it: the target's corner meets the source's,
    and the points around it stay where the match put them.  `candidates`: the rows of
    `source_points` a match may move to besides its own (default: all)."""
    length = np.linalg.norm(target_extremity, axis=1)
    extreme = np.flatnonzero((length >= OUTWARD_EXTREMITY) & (target_reach <= OUTWARD_AT_EXTREME))
    # each match stays a candidate: every extreme point keeps a pair in its own part
    candidates = np.arange(len(source_points)) if candidates is None else np.union1d(candidates, idx[extreme])
    pool = source_points[candidates]
    out, tree = idx.copy(), cKDTree(pool)
    for start in range(0, len(extreme), OUTWARD_CHUNK):
        points = extreme[start:start + OUTWARD_CHUNK]
        at = idx[points]
        owner, sample, step, out_along = _outward_pairs(tree, pool, source_points[at], target_extremity[points])
        sample = candidates[sample]
        sideways = np.sqrt(np.maximum(np.einsum("ij,ij->i", step, step) - out_along**2, 0.0))
        same_part = source_parts[sample] == source_parts[at][owner]  # the match keeps its part
        furthest = np.full(len(points), -np.inf)
        np.maximum.at(furthest, owner[same_part], out_along[same_part])
        missed = np.abs(furthest[owner] - target_reach[points][owner] - out_along)
        score = np.where(same_part, -missed - OUTWARD_SIDEWAYS * sideways, -np.inf)
        out[points] = sample[_first_best(owner, score)]
    return out


def _first_best(owner: np.ndarray, score: np.ndarray) -> np.ndarray:
    """Per run of equal `owner` (contiguous, in order; every owner has one), the index of its
    first highest `score`: a lexsort's pick in linear time."""
    first = np.r_[0, np.flatnonzero(np.diff(owner)) + 1]
    top = np.repeat(np.maximum.reduceat(score, first), np.diff(np.r_[first, len(owner)]))
    hit = np.flatnonzero(score == top)
    return hit[np.unique(owner[hit], return_index=True)[1]]


def outward_reach(points: np.ndarray, samples: np.ndarray, extremity: np.ndarray) -> np.ndarray:
    """(N,) for each point at least OUTWARD_EXTREMITY extreme, how much further out along its
    outward direction (minus its `extremity`) its shape's `samples` within OUTWARD_RADIUS of
    it go: 0 at its own corner or tip.  0 for the other points."""
    length = np.linalg.norm(extremity, axis=1)
    extreme = np.flatnonzero(length >= OUTWARD_EXTREMITY)
    reach, tree = np.zeros(len(points)), cKDTree(samples)
    for start in range(0, len(extreme), OUTWARD_CHUNK):
        here = extreme[start:start + OUTWARD_CHUNK]
        owner, _, _, along = _outward_pairs(tree, samples, points[here], extremity[here])
        furthest = np.zeros(len(here))
        np.maximum.at(furthest, owner, along)
        reach[here] = furthest
    return reach


def _outward_pairs(tree: cKDTree, samples: np.ndarray, centres: np.ndarray, extremity: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The (centre, sample) pairs within OUTWARD_RADIUS, each as its centre (in contiguous
    runs), its sample, the step from the centre to the sample, and how far that step goes
    along the centre's outward direction (minus its `extremity`, which points back into
    the shape)."""
    near = tree.query_ball_point(centres, OUTWARD_RADIUS, workers=-1)
    counts = np.fromiter(map(len, near), dtype=np.int64, count=len(near))
    sample = np.fromiter(itertools.chain.from_iterable(near), dtype=np.int64, count=int(counts.sum()))
    owner = np.repeat(np.arange(len(centres)), counts)
    step = samples[sample] - centres[owner]
    direction = -extremity / np.linalg.norm(extremity, axis=1, keepdims=True)
    return owner, sample, step, np.einsum("ij,ij->i", step, direction[owner])


def _extremity_features(extremity: np.ndarray | None, n: int) -> np.ndarray:
    return np.zeros((n, 3)) if extremity is None else EXTREMITY_WEIGHT * extremity


def extremity(samples: np.ndarray, areas: np.ndarray | None = None) -> np.ndarray:
    """(S, 3) each surface sample's offset to the centre of the surface within
    EXTREMITY_RADIUS of it (itself left out), over the radius: on a flat middle near zero,
    at a corner or a tip pointing back into the shape, up to 1 long; a sample with nothing
    within the radius points at its nearest neighbour, 1 long.  The surface is judged on
    at most EXTREMITY_SAMPLES of the samples, drawn by their `areas` where given (an
    uneven cloud's), so that a dense spot does not pull the centre."""
    n = len(samples)
    if n > EXTREMITY_SAMPLES:
        around = samples[area_draw(n, EXTREMITY_SAMPLES, areas)]
        weights = np.ones(EXTREMITY_SAMPLES)
    else:
        around, weights = samples, np.ones(n) if areas is None else areas
    tree = cKDTree(around)
    out = np.zeros_like(samples)
    for start in range(0, n, EXTREMITY_CHUNK):  # bounds the neighbour pairs held at once
        here = samples[start:start + EXTREMITY_CHUNK]
        pairs = cKDTree(here).sparse_distance_matrix(tree, EXTREMITY_RADIUS, output_type="ndarray")
        pairs = pairs[pairs["v"] > 0]  # not the sample itself
        row, col = pairs["i"], pairs["j"]
        mass = np.bincount(row, weights[col], minlength=len(here))
        centre = np.stack([np.bincount(row, weights[col] * around[col, k], minlength=len(here))
                           for k in range(3)], 1)
        found = mass > 0
        offset = np.empty_like(here)
        offset[found] = centre[found] / mass[found, None] - here[found]
        if not found.all():
            nearest = around[tree.query(here[~found], k=2)[1][:, -1]]
            offset[~found] = nearest - here[~found]
            offset[~found] *= EXTREMITY_RADIUS / np.linalg.norm(offset[~found], axis=1, keepdims=True).clip(1e-12)
        out[start:start + EXTREMITY_CHUNK] = offset / EXTREMITY_RADIUS
    return out


def into_part_frame(points: np.ndarray, part_here: np.ndarray, part_there: np.ndarray,
                    areas_here: np.ndarray | None = None, areas_there: np.ndarray | None = None) -> np.ndarray:
    """Points of a part moved into the frame of the same part on another shape: per axis,
    its centre here (`_ends_and_centre`) goes to its centre there and its extent (between
    its PART_EXTENT and 100 - PART_EXTENT percentiles) is scaled to the extent there; in
    height each side of the centre to its end (`_half_spans`).  So a wider table top or a
    longer wing is matched by relative position within the part.  Scaled by the spread
    instead, a slatted back's corners would fall short of a solid back's (docs/model.md,
    *Correspondence*).  Samples with `areas` count by them (a point cloud's, so that its
    dense spots do not pull the frame).  The part is then stretched in plan, direction by
    direction, out to the other's reach (`_plan_stretch`)."""
    if len(part_here) < 2 or len(part_there) < 2:
        return points
    ends_here, centre_here = _ends_and_centre(part_here, areas_here)
    ends_there, centre_there = _ends_and_centre(part_there, areas_there)
    spans_here, spans_there = _half_spans(ends_here, centre_here), _half_spans(ends_there, centre_there)
    where = _to_unit(points - centre_here, spans_here)
    where = where * _plan_stretch(where, _plan_reach(_to_unit(part_here - centre_here, spans_here)),
                                  _plan_reach(_to_unit(part_there - centre_there, spans_there)))
    return centre_there + _from_unit(where, spans_there)


def _half_spans(ends: np.ndarray, centre: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A part's reach below and above its centre on each axis.  In plan, half its extent
    either way.  In height, from the centre to each end, so that both ends meet the other's
    ends wherever the centre lies between them: a swivel base's mass is at its foot, four
    legs' at mid-height, and scaled about the centre by the whole extent the base's foot
    would land partway up the legs (docs/model.md, *Heights*)."""
    (lo, hi), half = ends, np.maximum(ends[1] - ends[0], PART_SPREAD_FLOOR) / 2
    below, above = half.copy(), half.copy()
    below[UP] = max(centre[UP] - lo[UP], PART_SPREAD_FLOOR / 2)
    above[UP] = max(hi[UP] - centre[UP], PART_SPREAD_FLOOR / 2)
    return below, above


def _to_unit(offsets: np.ndarray, spans: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    below, above = spans
    return np.where(offsets < 0, offsets / below, offsets / above)


def _from_unit(where: np.ndarray, spans: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    below, above = spans
    return np.where(where < 0, where * below, where * above)


def _plan_stretch(where: np.ndarray, reach_here: np.ndarray, reach_there: np.ndarray) -> np.ndarray:
    """(n, 3) factors on x and z that move points of a part (`where`, in its unit frame)
    out to the other part's reach, in each point's plan direction, where it reaches
    further than this one: per axis alone, a round top's rim at 45 degrees would land
    inside a square top, short of its corner, and match a point of its middle.  Where the
    other reaches less (a square top's corner against a round top), the point is left
    beyond its outline and matched at its rim all the same; pulled in, it would be placed
    by the direction in the unit frame, which on an oval is not the direction of its
    corner."""
    ratio = reach_there / reach_here
    ratio = np.where(np.isfinite(ratio), np.clip(ratio, 1.0, PLAN_STRETCH_LIMIT), 1.0)
    factor = ratio[_sector(where)]
    return np.stack([factor, np.ones_like(factor), factor], axis=1)


def _plan_reach(samples: np.ndarray) -> np.ndarray:
    """(PLAN_SECTORS,) how far a part's samples (in its unit frame) reach from its centre in
    each plan direction; NaN where too few lie."""
    sector, distance = _sector(samples), np.hypot(samples[:, 0], samples[:, 2])
    reach = np.full(PLAN_SECTORS, np.nan)
    for s in range(PLAN_SECTORS):
        inside = sector == s
        if inside.sum() >= PLAN_MIN_SAMPLES:
            reach[s] = np.percentile(distance[inside], PLAN_REACH)
    return reach


def _sector(where: np.ndarray) -> np.ndarray:
    angle = np.arctan2(where[:, 2], where[:, 0])
    return ((angle + np.pi) / (2 * np.pi) * PLAN_SECTORS).astype(int) % PLAN_SECTORS


def _ends_and_centre(samples: np.ndarray, areas: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """A part's ends per axis (its PART_EXTENT and 100 - PART_EXTENT percentiles) and its
    centre, each sample counted by its area where given.  In plan the centre is the centre
    of mass: an airplane's wing has its mass at its root, and centred between its ends its
    middle would move (docs/model.md, *Correspondence*).  In height it lies
    HEIGHT_CENTRE_OF_MASS of the way from the middle between the ends to the centre of
    mass: a sled frame's runners carry most of its mass at the floor, four legs theirs at
    mid-height, and centre to centre a point on a runner landed up the legs; middle to
    middle, a fuselage with a canopy put its axis off another's (docs/model.md, *Heights*)."""
    q = [PART_EXTENT, 100 - PART_EXTENT]
    if areas is None:
        ends, centre = np.percentile(samples, q, axis=0), samples.mean(0)
    else:
        ends, centre = weighted_percentiles(samples, areas, q), weighted_mean(samples, areas)
    middle = (ends[0][UP] + ends[1][UP]) / 2
    centre[UP] = middle + HEIGHT_CENTRE_OF_MASS * (centre[UP] - middle)
    return ends, centre
