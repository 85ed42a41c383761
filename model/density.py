"""A point cloud's uneven density, undone: an even subset, and the surface area each point
stands for.

A mesh's samples are area-uniform; a point cloud's own points need not be (a scan is dense
where the scanner stood, a cloud sampled per face is dense where the mesh is finely
tessellated).  Wherever the engine reads a shape's points as a distribution (E's input, the
fitted code's loss, which parts a shape has, a part's frame), an uneven cloud's points are
taken evenly or weighted by their area (docs/model.md, *Uneven point clouds*).

Also what stands apart from a shape's surface, a cloud's stray points and a mesh's far
pieces, which the engine leaves out (docs/model.md, *Outliers*).
"""
from __future__ import annotations

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

NEIGHBOURS = 8  # a point's area: the squared distance to its 8th nearest neighbour
AREA_CLIP = 100.0  # areas kept within this factor of the median: a stray point is no part
# A cloud is uneven when weighing its points by area leaves fewer than this share of them
# effective ((sum a)^2 / sum a^2 / n; area-uniform 2,500-point clouds of the dev meshes:
# 0.66-0.97, per-face samples of Sweet Home 3D chairs: 0.08-0.58); an even cloud is read
# as it is.
UNEVEN = 0.6
POOL = 20000  # farthest points are sought among at most this many points (bounds the time)
PROBE = 20000  # evenness is judged on at most this many of a cloud's points (500,000: 3.8 s all, 0.1 s these)
# A cloud's point whose STRAY_NEIGHBOUR-th nearest neighbour lies over STRAY typical
# spacings off (the SPACING_PERCENTILE-th percentile of the points' NEIGHBOURS-th neighbour
# distances) stands apart from its surface (`outliers`): a percentile high in the spread,
# not the median, so that the sparse stretches of an uneven cloud (a long leg's few
# vertices) are kept, and a third neighbour, so that three points together (a low-poly
# foot) are.  A mesh's samples are area-uniform, so there a small piece of them, under
# STRAY_PIECE of the samples and over STRAY spacings from the rest, is apart too (`apart`).
STRAY = 5.0
STRAY_NEIGHBOUR = 3
STRAY_PIECE = 0.02
SPACING_PERCENTILE = 95.0
SPACING_PROBE = 5000  # the typical spacing is judged on at most this many of a cloud's points
SPACING_CAP = 15.0  # ... and on those whose spacing is within this factor of the median
# A point nearer its surface (its gap over LONE typical spacings) stands apart too where its
# gap is over STRAY times the median of its NEIGHBOURS' own: a scan's stray point floating
# near a densely sampled surface, which the one spacing of the whole cloud lets through.
LONE = 2.5
LONE_OFF = 0.5  # ... and lies off the plane through those neighbours by over this share of its gap
# An even cloud's point whose gap is over LOOSE typical spacings stands loose: still matched,
# but left out of what places the shape (its frame, E's input, the fitted code), where a few
# such points near a flat table's top stretch its frame enough to turn its labels
# (docs/model.md, *Outliers*).
LOOSE = 2.0
# A mesh's connected piece that is flat (its height spans at most GROUND_FLAT of the mesh's
# diagonal), lies at the bottom (no vertex of the rest lies lower, to that tolerance) and
# reaches further than the rest on every side in plan is a ground plane or shadow catcher
# merged in (`ground`): a base plate or a seat board has thickness, and stands within the
# footprint.
GROUND_FLAT = 1e-3
GROUND_MARGIN = 0.01  # ... reaches this share of the diagonal beyond the rest's footprint on every side
GROUND_RISE = 10.0  # ... and the rest rises over this many GROUND_FLATs above it


def farthest_points(points: np.ndarray, count: int, seed: int = 0, areas: np.ndarray | None = None) -> np.ndarray:
    """Indices of `count` of the points, each the farthest from those before it (a seeded
    first): an even cover of the shape whatever the points' density.  All when there are
    no more than `count`.  Of more than POOL points they are sought among POOL drawn at
    random, with chances by their `areas` where given (so that the pool is even)."""
    n = len(points)
    if n <= count:
        return np.arange(n)
    rng = np.random.default_rng(seed)
    chance = None if areas is None else areas / areas.sum()
    pool = rng.choice(n, POOL, replace=False, p=chance) if n > POOL else np.arange(n)
    candidates = points[pool]
    out = np.empty(count, np.int64)
    out[0] = rng.integers(len(pool))
    nearest = np.full(len(pool), np.inf)
    for i in range(1, count):
        nearest = np.minimum(nearest, ((candidates - candidates[out[i - 1]]) ** 2).sum(1))
        out[i] = np.argmax(nearest)
    return pool[out]


def area_draw(n: int, count: int, areas: np.ndarray | None = None, seed: int = 0) -> np.ndarray:
    """`count` of `n` rows drawn without repeats, each with its chance by its `areas` (alike
    where None): a subset that stands for the surface evenly, however the rows crowd."""
    chance = None if areas is None else areas / areas.sum()
    return np.random.default_rng(seed).choice(n, count, replace=False, p=chance)


def outliers(points: np.ndarray) -> np.ndarray:
    """(n,) bool: a cloud's points that stand apart from its surface (a scanner's stray
    returns, points left over in a file): those whose STRAY_NEIGHBOUR-th nearest neighbour
    lies over STRAY typical spacings off, or over LONE of them, STRAY times as far off as
    their neighbours' do and off those neighbours' plane (LONE_OFF).  None of them when the
    points have no spacing to judge by (most repeated many times over)."""
    return outliers_and_loose(points)[0]


def loose(points: np.ndarray) -> np.ndarray:
    """(n,) bool: the points that are no `outliers` but whose STRAY_NEIGHBOUR-th nearest
    neighbour lies over LOOSE typical spacings off (left out of what places an even cloud)."""
    return outliers_and_loose(points)[1]


def outliers_and_loose(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(`outliers`, `loose`) from one search of the points' neighbours."""
    n = len(points)
    tree, typical, gap = _gaps(points)
    if not typical > 0:
        return np.zeros(n, bool), np.zeros(n, bool)
    out = gap > STRAY * typical
    # a point nearer the surface stands apart where its gap is STRAY times its neighbours' own
    near = np.flatnonzero(~out & (gap > LONE * typical))
    if len(near):
        neighbours = tree.query(points[near], k=NEIGHBOURS + 1, workers=-1)[1][:, 1:]
        out[near] = ((gap[near] > STRAY * np.median(gap[neighbours], axis=1))
                     & (_off_plane(points[near], points[neighbours], gap[neighbours] <= LONE * typical)
                        > LONE_OFF * gap[near]))
    return out, ~out & (gap > LOOSE * typical)


def _gaps(points: np.ndarray) -> tuple[cKDTree | None, float, np.ndarray]:
    """(tree, typical spacing, each point's STRAY_NEIGHBOUR-th neighbour distance); a
    spacing of 0 and no gaps for too few points to judge."""
    n = len(points)
    if n <= 2 * NEIGHBOURS:
        return None, 0.0, np.zeros(n)
    tree = cKDTree(points)
    probe = points if n <= SPACING_PROBE else points[np.random.default_rng(0).choice(n, SPACING_PROBE, replace=False)]
    spacing = tree.query(probe, k=NEIGHBOURS + 1, workers=-1)[0][:, NEIGHBOURS]
    # strays far off, 5-10% of the points, would otherwise set the percentile themselves
    typical = _spacing(spacing[spacing <= SPACING_CAP * np.median(spacing)])
    return tree, typical, tree.query(points, k=STRAY_NEIGHBOUR + 1, workers=-1)[0][:, -1]


def _off_plane(points: np.ndarray, neighbours: np.ndarray, counted: np.ndarray) -> np.ndarray:
    """(m,) each point's distance from the plane through its (m, k, 3) `neighbours` that are
    `counted` (m, k): not other strays, which would tilt the plane through two strays side
    by side; inf where fewer than 3 are counted."""
    w = counted[:, :, None].astype(float)
    total = w.sum(axis=1)
    centre = (w * neighbours).sum(axis=1) / np.maximum(total, 1.0)
    around = (neighbours - centre[:, None]) * np.sqrt(w)
    normal = np.linalg.eigh(np.einsum("mki,mkj->mij", around, around))[1][:, :, 0]  # the least spread
    off = np.abs(np.einsum("mi,mi->m", points - centre, normal))
    return np.where(total[:, 0] >= 3, off, np.inf)


def apart(vertices: np.ndarray, faces: np.ndarray, samples: np.ndarray) -> np.ndarray:
    """(n,) bool: a mesh's vertices that lie apart from its surface: the vertices whose
    every face lies apart, its corners and its centre over STRAY typical spacings of the
    area-uniform `samples` from the samples' bulk.  The bulk leaves out the small pieces of
    samples (under STRAY_PIECE of them, each sample joined to its NEIGHBOURS nearest within
    STRAY spacings) that lie over STRAY spacings from the rest: an artist's leftover or a
    helper object merged in, far off.  A face of the surface has samples about it, even a
    needle's whose sharp ends have none near.  Unused vertices are apart when they lie as far."""
    bulk, link = _bulk(samples)
    if bulk is None:
        return np.zeros(len(vertices), bool)
    far = bulk.query(vertices, workers=-1)[0] > link
    loose = far[faces].all(axis=1)
    loose[loose] = bulk.query(vertices[faces[loose]].mean(axis=1), workers=-1)[0] > link
    if loose.all():
        return np.zeros(len(vertices), bool)
    on_surface = np.zeros(len(vertices), bool)
    on_surface[faces[~loose]] = True
    return far & ~on_surface


def ground(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """(n,) bool: the vertices of a ground plane merged under an upright (+Y) mesh: a
    connected piece of its faces (vertices at one position count as one) that is flat,
    lies under all the rest, which rises above it, and reaches beyond the rest's footprint
    in x and z (GROUND_FLAT, GROUND_MARGIN, GROUND_RISE)."""
    out = np.zeros(len(vertices), bool)
    used = np.unique(faces)
    position, welded = np.unique(vertices[used], axis=0, return_inverse=True)
    corner = np.zeros(len(vertices), np.int64)
    corner[used] = welded.reshape(-1)
    tri = corner[faces]
    rows = np.r_[tri[:, 0], tri[:, 1]]
    graph = coo_matrix((np.ones(len(rows)), (rows, np.r_[tri[:, 1], tri[:, 2]])), shape=(len(position),) * 2)
    count, piece = connected_components(graph, directed=False)
    if count < 2:
        return out
    lo, hi = np.full((count, 3), np.inf), np.full((count, 3), -np.inf)
    np.minimum.at(lo, piece, position)
    np.maximum.at(hi, piece, position)
    low, high = position.min(0), position.max(0)  # a piece that spans the rest's footprint spans the whole's
    diagonal = np.linalg.norm(high - low)
    tolerance, margin = GROUND_FLAT * diagonal, GROUND_MARGIN * diagonal
    plane = np.zeros(count, bool)
    for c in np.flatnonzero((hi[:, 1] - lo[:, 1] <= tolerance) & (lo[:, 1] <= low[1] + tolerance)
                            & (lo[:, [0, 2]] <= low[[0, 2]]).all(1) & (hi[:, [0, 2]] >= high[[0, 2]]).all(1)):
        rest = np.arange(count) != c
        rest_low, rest_high = lo[rest].min(0), hi[rest].max(0)
        plane[c] = (rest_high[1] - hi[c, 1] > GROUND_RISE * tolerance  # not a rug's pattern lying on the rug
                    # beyond the footprint: not a box's own bottom, which spans it exactly
                    and (lo[c, [0, 2]] <= rest_low[[0, 2]] - margin).all()
                    and (hi[c, [0, 2]] >= rest_high[[0, 2]] + margin).all())
    if plane.any():
        out[used] = plane[piece[welded.reshape(-1)]]
    return out


def _bulk(samples: np.ndarray) -> tuple[cKDTree | None, float]:
    """A tree of the samples less their small far pieces (`apart`), and the distance that
    joins two samples of one piece; (None, 0) when the samples have no spacing to judge by."""
    n = len(samples)
    if n <= 2 * NEIGHBOURS:
        return None, 0.0
    tree = cKDTree(samples)
    distance, neighbour = tree.query(samples, k=NEIGHBOURS + 1, workers=-1)
    link = STRAY * _spacing(distance[:, NEIGHBOURS])
    if not link > 0:
        return None, 0.0
    joined = distance[:, 1:] <= link
    rows = np.repeat(np.arange(n), NEIGHBOURS)[joined.ravel()]
    graph = coo_matrix((np.ones(len(rows)), (rows, neighbour[:, 1:][joined])), shape=(n, n))
    piece = connected_components(graph, directed=False)[1]
    small = np.bincount(piece)[piece] < STRAY_PIECE * n
    if not small.any() or small.all():
        return tree, link
    # a small piece within reach of the rest is surface (a glide under a leg)
    gap = np.full(piece.max() + 1, np.inf)
    np.minimum.at(gap, piece[small], cKDTree(samples[~small]).query(samples[small], workers=-1)[0])
    return cKDTree(samples[~(small & (gap[piece] > link))]), link


def _spacing(distances: np.ndarray) -> float:
    """The typical spacing: SPACING_PERCENTILE of the points' distances to their NEIGHBOURS-th neighbour."""
    return float(np.percentile(distances, SPACING_PERCENTILE))


def point_areas(points: np.ndarray) -> np.ndarray:
    """(n,) the share of the surface each point stands for, up to a common factor: the
    square of its distance to its NEIGHBOURS-th nearest neighbour, averaged over those
    neighbours (one point's estimate scatters by a third), clipped to AREA_CLIP times
    the median either way."""
    if len(points) <= NEIGHBOURS:
        return np.ones(len(points))
    distance, neighbours = cKDTree(points).query(points, k=NEIGHBOURS + 1)
    area = (distance[:, -1] ** 2)[neighbours].mean(1)
    median = np.median(area)
    return np.clip(area, median / AREA_CLIP, median * AREA_CLIP) if median > 0 else np.ones(len(points))


def uneven_areas(points: np.ndarray) -> np.ndarray | None:
    """The points' areas where their density is uneven (UNEVEN, judged on a random PROBE
    of them: a random subset keeps the density's ups and downs), else None."""
    probe = points
    if len(points) > PROBE:
        probe = points[np.random.default_rng(0).choice(len(points), PROBE, replace=False)]
    areas = point_areas(probe)
    if areas.sum() ** 2 / (areas**2).sum() >= UNEVEN * len(areas):
        return None
    return areas if probe is points else point_areas(points)


def weighted_percentiles(values: np.ndarray, weights: np.ndarray, q: list[float]) -> np.ndarray:
    """(len(q), d) percentiles `q` (0-100) of each column of `values` (n, d), each value
    counted by its weight (the midpoint rule: equal weights give `np.percentile`'s
    "hazen" method)."""
    out = np.empty((len(q), values.shape[1]))
    for axis in range(values.shape[1]):
        order = np.argsort(values[:, axis])
        w = weights[order]
        at = (np.cumsum(w) - 0.5 * w) / w.sum()
        out[:, axis] = np.interp(np.asarray(q) / 100.0, at, values[order, axis])
    return out


def weighted_mean(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    return (values * weights[:, None]).sum(0) / weights.sum()
