"""Auto-alignment: the pose under which the model explains a shape best.

A pose is scored by how well f, under E's code of the shape in that pose, explains the
shape's surface: occupancy near 1 just inside the surface (against the outward normal)
and near 0 just outside, plus a weak hint on the pose itself (a compact footprint) and
the cues of the engine's category (`POSE_CUES`: where its surface lies high or low, a
chair's back, a table's width and feet, an airplane's fin and flatness). Poses are scored in batches: E runs on the
rotated point sets, f on their codes, a runner's chunk of points at a time.

Modes: `"yaw"` searches the full circle about +Y (shapes known to be upright); `True`
first finds the up direction, searching up directions over the sphere (and the
coordinate axes, the shape's flat supports and principal axes) times turns about each and
refining the best poses locally, then searches the turn about it as yaw mode does.
Measured figures: docs/model.md, benchmarks/RESULTS.md.
"""
from __future__ import annotations

from typing import Literal, Union

import numpy as np
import torch
import trimesh
from scipy.spatial import ConvexHull, QhullError, cKDTree
from scipy.spatial.transform import Rotation

from .geometry import chamfer
from .normals import estimate_normals
from .runner import Runner

AlignMode = Union[bool, Literal["yaw"]]
MODES = (False, True, "yaw")
NAMES: dict[str, AlignMode] = {"off": False, "yaw": "yaw", "any": True}  # the command line's names

PROBE_POINTS = 1024  # surface points each pose is scored on: enough to rank poses, cheap in a batch
FULL_PROBE_POINTS = 512  # full mode scores 15 times the poses; as right on the PSB shapes with half the points
INSIDE = 0.02  # f is asked for 1 this far inside the surface (thin plates are ~0.02-0.04 thick)
OUTSIDE = 0.02  # and for 0 this far outside, where that spot is free of other surface:
FREE_SHARE = 0.7  # its nearest surface point at least this share of OUTSIDE away
FOOTPRINT_WEIGHT = 0.25  # hint: a shape is turned to its tightest xz bounding box
# The category's own cues, where the model's fit tells poses apart too weakly on real
# shapes: a chair's back and an airplane's tail fin lift its upper surface toward +Z (true
# of all 20 PSB chairs and 19 of 20 airplanes); furniture stands square to its smallest
# footprint rectangle (within 1 degree on 18 of 20 PSB chairs; an airplane's swept wings
# put that rectangle 15-45 degrees off) and a table's feet stand square (or diagonal) to
# theirs, four under a round top one per quadrant as under a rectangular one; a table is
# wider along X than deep (19 of 20 PSB tables, the 20th square); an airplane's height is
# its smallest extent; the surface's mean height lies high in a chair's box and a table's
# (the top: all 20 PSB tables 0.19-0.40 of the height above the centre) and low in an
# airplane's (its fin rises above wings and body: 19 of 20, -0.09 to -0.32); a desk's
# surface at mid height (modesty panel, drawers, shelves) lies toward its back, its knee
# space toward the front (Sweet Home 3D desks 0.03-0.28 of the depth; PSB tables within
# 0.05 but for the drafting table 154).
YAW_CUES = ("wide", "feet", "knee")  # cues that tell turns about the up axis apart, and are left out while it is sought
POSE_CUES = {"chair": ("back", "box", "high"), "airplane": ("fin", "flat", "low"),
             "table": ("box", "wide", "feet", "high", "knee")}
DEFAULT_CUES = ("high",)  # categories without cues of their own
UPPER_SHARE = {"back": 0.2, "fin": 0.05}  # the highest fifth of a chair's surface points, twentieth of an airplane's
BACK_WEIGHT = 1.0  # "back", "fin": per model unit that part's centre lies toward +Z from the whole surface's,
BACK_CAP = 0.1  # up to an upright chair's: tilting a shape back lifts it further
BOX_WEIGHT = 0.5  # "box": per unit of footprint area over the smallest footprint rectangle's, less 1
FLAT_WEIGHT = 1.0  # "flat": per unit of height (an airplane rolled or pitched is tall)
WIDE_WEIGHT = 0.5  # "wide": per unit of (depth - width) / (depth + width)
FEET_WEIGHT = 0.25  # "feet": per unit of the feet's box over their smallest rectangle (or its 45 degree turn's), less 1
SQUARE_FEET_WEIGHT = 0.08  # and per unit of that box over the smallest rectangle's, less 1, without the turn
HIGH_WEIGHT = 0.25  # "high": per unit of the surface's mean height over the box's height (from its centre)
LOW_WEIGHT = 0.25  # "low": the same, the other way
KNEE_WEIGHT = 0.25  # "knee": per unit of depth the surface between these shares of the height lies toward +Z
KNEE_BAND = (0.15, 0.75)
BATCH = 64  # poses normalised at once (E and f see the runner's chunk of points at a time)
YAW_TURNS = 24  # yaw mode: the full circle in 15 degree steps
SPHERE_UPS = 32  # full mode: up directions spread over the sphere (about 35 degrees apart)
HULL_UPS = 4  # full mode: plus the largest flat supports of the convex hull
NORMAL_UPS = 3  # and the commonest surface normal directions,
NORMAL_SPREAD = 10.0  # counting the normals within this many degrees of each
SPHERE_TURNS = 8  # full mode: turns about each up direction (45 degrees), and for furniture the 4 square to its footprint
SCREEN_PROBE_POINTS = 64  # full mode: every coarse pose is first scored on this many points,
SCREENED = 16  # and the best this many again on FULL_PROBE_POINTS (the same PSB shares as all)
SCREEN_ENCODER_POINTS = 256  # ...with E seeing this many of its points (4 times cheaper; the same PSB shares)
# full mode: the best coarse poses refined (the score is sharp: a pose 10 degrees off the
# truth can rank below wrong ones), each more than DISTINCT degrees from those better
KEEP = 6
DISTINCT = 20.0  # (neighbours on the coarse grid are one start)
FINE_KEEP = 2  # after each refinement step only the best this many go on to the finer ones
# The pose a shape arrives in is kept unless another scores this much better: a mesh
# modelled upright and facing front is the common case, and on poses the score cannot
# tell apart (a round table's legs, a desk's two long sides) a turn is a guess.
KEEP_MARGIN = 0.1
# ...but only where the given pose could be the modelled one: furniture that arrives
# turned (its footprint's box this much larger than its smallest rectangle) is realigned
# on the score alone.
SQUARE_TOLERANCE = 1.03
# ...and where the best pose is the given one turned by a quarter, half or three-quarter
# turn (within QUARTER_SLACK degrees) that is a symmetry of the shape (it lies on itself:
# within this many times the Chamfer distance of two samplings), the given pose stays: a
# round table with four legs comes back as it was, not a quarter turn away. (PSB round
# tables lie on themselves at 0.95-1.16, a near-square one at 1.35.)
SYMMETRY_FACTOR = 1.25
QUARTER_SLACK = 10.0
FEET_LAYER = 0.1  # ...and its feet (its points this share of its height above its lowest) square to theirs
DIAGONAL = Rotation.from_euler("z", 45, degrees=True).as_matrix()[:2, :2]  # a 45 degree turn of xz points
REFINE_STEPS = (10.0, 5.0, 2.5)  # degrees of each refinement round (tilt and turn)


def check_mode(align: object) -> AlignMode:
    """The `align` argument, validated: False, True or "yaw" (also the command line's "off"
    and "any")."""
    if isinstance(align, (bool, np.bool_)):
        return bool(align)
    if isinstance(align, str) and align in NAMES:
        return NAMES[align]
    raise ValueError(f"align must be False, True or 'yaw' ('off', 'any'), got {align!r}")


def best_rotation(runner: Runner, encoder_input: np.ndarray, seed: int, mode: AlignMode = True,
                  category: str = "") -> np.ndarray:
    """The rotation R (p_model = R p) the model explains the shape best under (with the
    pose cues of `category`, where POSE_CUES has them): in full mode the up direction
    first, then in either mode the turn about it."""
    mode = check_mode(mode)
    if mode is False:
        return np.eye(3)
    points, normals = surface_with_normals(encoder_input)
    cues, outline = POSE_CUES.get(category, DEFAULT_CUES), hull_vertices(points)

    def score(rotations: np.ndarray, probes: int = PROBE_POINTS, cues: tuple[str, ...] = cues,
              sample: int | None = None) -> np.ndarray:
        """Scores of `rotations`; E sees `sample` of its points where given (a cheaper code)."""
        if sample is None or sample >= len(encoder_input):
            return pose_scores(runner, encoder_input, normals, rotations, seed, cues, probes, outline)
        pick = np.random.default_rng(seed).choice(len(encoder_input), sample, replace=False)
        return pose_scores(runner, encoder_input[pick], normals[pick], rotations, seed, cues, probes,
                           hull_vertices(points[pick]))

    upright = np.eye(3) if mode == "yaw" else best_up(score, points, normals, tuple(c for c in cues if c not in YAW_CUES))
    coarse = turned(upright, YAW_TURNS)  # the first is `upright` itself
    scores = score(coarse)
    keep = np.argsort(scores)[:1]
    best, best_score = refine(score, coarse[keep], scores[keep], tilt=False)
    given = scores[0] if mode == "yaw" else score(np.eye(3)[None])[0]
    margin = KEEP_MARGIN if arrives_square(points, outline, cues) else 0.0
    return best if given - best_score > margin and not symmetric_quarter_turn(points, best) else np.eye(3)


def symmetric_quarter_turn(points: np.ndarray, rotation: np.ndarray) -> bool:
    """Whether `rotation` is about a quarter, half or three-quarter turn about +Y under which
    the (centred) points lie on themselves, half of them against the other half as the
    measure of sampling."""
    if rotation[1, 1] < np.cos(np.radians(QUARTER_SLACK)):
        return False
    degrees = np.degrees(np.arctan2(rotation[0, 2], rotation[0, 0])) % 90
    if QUARTER_SLACK < degrees < 90 - QUARTER_SLACK:
        return False
    half, other = points[0::2], points[1::2]
    return chamfer(half, half @ rotation.T) <= SYMMETRY_FACTOR * chamfer(half, other)


def best_up(score, points: np.ndarray, normals: np.ndarray, cues: tuple[str, ...]) -> np.ndarray:
    """Full mode's search over up directions and turns about each (the turn is settled
    afterwards): a rotation that stands the shape up."""
    ups = [up_to_y(u) for u in up_candidates(points, normals)]
    coarse = np.concatenate([np.eye(3)[None], *(turned(r, SPHERE_TURNS) for r in ups)]
                            + [squared(r, points) for r in ups if "box" in cues])
    # a first pass on few points picks the poses worth scoring fully (the identity always is)
    first = score(coarse, SCREEN_PROBE_POINTS, cues, sample=SCREEN_ENCODER_POINTS)
    coarse = coarse[np.unique(np.concatenate([[0], np.argsort(first)[:SCREENED]]))]
    scores = score(coarse, FULL_PROBE_POINTS, cues)
    keep = distinct(coarse, np.argsort(scores), KEEP)
    return refine(lambda r: score(r, FULL_PROBE_POINTS, cues), coarse[keep], scores[keep], tilt=True)[0]


def arrives_square(points: np.ndarray, outline: np.ndarray, cues: tuple[str, ...]) -> bool:
    """Whether the shape as given may be in its modelled pose: for furniture, standing
    square to its smallest footprint rectangle (a turned chair or table visibly is not),
    and its feet square or diagonal to theirs (a round table top is square to any turn;
    its four legs stand on the diagonals or on the axes)."""
    if "box" not in cues:
        return True
    return is_square(points[outline][:, [0, 2]]) and feet_off_square(points) <= SQUARE_TOLERANCE


def is_square(xz: np.ndarray) -> bool:
    """Whether 2D points stand square to their smallest rectangle (too few to tell: yes)."""
    return box_over_smallest(xz) <= SQUARE_TOLERANCE


def surface_with_normals(encoder_input: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """E's points and their outward normals (E's own where it sees normals, else estimated)."""
    points = encoder_input[:, :3]
    if encoder_input.shape[1] == 6:
        return points, encoder_input[:, 3:]
    return points, estimate_normals(points)


def yaw_rotations(turns: int) -> np.ndarray:
    return Rotation.from_euler("y", np.arange(turns)[:, None] * 360.0 / turns, degrees=True).as_matrix()


def turned(rotation: np.ndarray, turns: int) -> np.ndarray:
    """`rotation` followed by each of `turns` turns about +Y."""
    return yaw_rotations(turns) @ rotation


def up_to_y(up: np.ndarray) -> np.ndarray:
    """The shortest rotation taking the unit direction `up` to +Y."""
    y = np.array([0.0, 1.0, 0.0])
    axis = np.cross(up, y)
    s, c = np.linalg.norm(axis), float(up @ y)
    if s < 1e-9:
        return np.eye(3) if c > 0 else np.diag([1.0, -1.0, -1.0])
    return Rotation.from_rotvec(axis / s * np.arctan2(s, c)).as_matrix()


def up_candidates(points: np.ndarray, normals: np.ndarray) -> np.ndarray:
    """Directions that may be the shape's up: a near-uniform spread over the sphere, the
    coordinate axes both ways (a mesh modelled Z-up, or imported Y-up, is off by an axis
    rotation), the principal axes both ways, the inward normals of the largest
    convex-hull facets (a chair or table stands on its legs' flat support), and the
    commonest surface normals both ways (a table's top, a chair's seat)."""
    i = np.arange(SPHERE_UPS) + 0.5
    polar, azimuth = np.arccos(1 - 2 * i / SPHERE_UPS), np.pi * (1 + 5**0.5) * i
    sphere = np.stack([np.cos(azimuth) * np.sin(polar), np.cos(polar), np.sin(azimuth) * np.sin(polar)], 1)
    axes = np.linalg.eigh(np.cov((points - points.mean(0)).T))[1].T
    try:
        hull = trimesh.convex.convex_hull(points)
        facets = hull.facets_normal.reshape(-1, 3)  # (0,) when no two hull faces are coplanar
        supports = -facets[np.argsort(-np.asarray(hull.facets_area))[:HULL_UPS]]
    except QhullError:  # a flat shape or a handful of points: no hull to stand on
        supports = np.zeros((0, 3))
    coordinate = np.concatenate([np.eye(3), -np.eye(3)])
    common = common_normals(normals, NORMAL_UPS)
    return np.concatenate([sphere, coordinate, axes, -axes, supports, common, -common])


def common_normals(normals: np.ndarray, count: int) -> np.ndarray:
    """Up to `count` directions (either way round) that most surface normals lie within
    `NORMAL_SPREAD` degrees of (their mean), each more than `DISTINCT` degrees from those
    before it."""
    unit = normals / np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)
    near = np.abs(unit @ unit.T) > np.cos(np.radians(NORMAL_SPREAD))
    density, left, out = near.sum(1), np.ones(len(unit), bool), []
    for _ in range(count):
        if not left.any():
            break
        i = int(np.argmax(np.where(left, density, -1)))
        mean = (unit[near[i]] * np.sign(unit[near[i]] @ unit[i])[:, None]).sum(0)  # sampled normals scatter
        out.append(mean / np.linalg.norm(mean))
        left &= np.abs(unit @ unit[i]) < np.cos(np.radians(DISTINCT))
    return np.array(out).reshape(-1, 3)


def distinct(rotations: np.ndarray, order: np.ndarray, count: int) -> np.ndarray:
    """The first `count` of `order` that are each more than `DISTINCT` degrees from those
    before them (neighbours on the coarse grid are one start for a refinement)."""
    kept: list[int] = []
    for i in order:
        cos = (np.einsum("kij,ij->k", rotations[kept], rotations[i]) - 1) / 2  # trace(Ra^T Rb) = 1 + 2 cos
        if not kept or np.degrees(np.arccos(np.clip(cos, -1, 1))).min() > DISTINCT:
            kept.append(int(i))
        if len(kept) == count:
            break
    return np.array(kept)


def refine(score, start: np.ndarray, start_score: np.ndarray, tilt: bool) -> tuple[np.ndarray, float]:
    """Local search from each of `start`'s poses (scored `start_score`): small turns (and
    tilts) of shrinking size, keeping any that scores better, a second move of a size only
    after a first that helped; the best pose found and its score."""
    best, best_score = start, start_score
    for step in REFINE_STEPS:
        moves = local_moves(step, tilt)
        for _ in range(2):
            cand = np.einsum("mij,bjk->bmik", moves, best).reshape(-1, 3, 3)
            s = score(cand).reshape(len(best), len(moves))
            pick = s.argmin(1)
            better = s[np.arange(len(best)), pick] < best_score
            best = np.where(better[:, None, None], cand.reshape(len(best), len(moves), 3, 3)[np.arange(len(best)), pick], best)
            best_score = np.where(better, s[np.arange(len(best)), pick], best_score)
            if not better.any():
                break
        survivors = np.argsort(best_score)[:FINE_KEEP]  # the finer steps only polish the leaders
        best, best_score = best[survivors], best_score[survivors]
    i = int(np.argmin(best_score))
    return best[i], float(best_score[i])


def local_moves(step: float, tilt: bool) -> np.ndarray:
    """Rotations by `step` degrees about +Y both ways (and about X and Z both ways)."""
    axes = ("y", "x", "z") if tilt else ("y",)
    return np.stack([Rotation.from_euler(a, s * step, degrees=True).as_matrix() for a in axes for s in (-1, 1)])


def pose_scores(runner: Runner, encoder_input: np.ndarray, normals: np.ndarray, rotations: np.ndarray,
                seed: int, cues: tuple[str, ...] = (), probes: int = PROBE_POINTS,
                outline: np.ndarray | None = None) -> np.ndarray:
    """Per pose: how badly f explains the surface under E's code of the shape in that
    pose (inside 1, outside 0), plus the footprint hint and the category's
    cue; lower is better (`outline`: as for `cue_scores`)."""
    points = encoder_input[:, :3]
    probe = np.random.default_rng(seed).choice(len(points), min(probes, len(points)), replace=False)
    free = outside_is_free(points, normals, probe)
    out = [batch_scores(runner, encoder_input, normals, rotations[i : i + BATCH], probe, free, cues, outline)
           for i in range(0, len(rotations), BATCH)]
    return np.concatenate(out)


def hull_vertices(points: np.ndarray) -> np.ndarray:
    """Indices of the points on the convex hull: a footprint's outline in any pose is
    among them."""
    try:
        return ConvexHull(points).vertices
    except QhullError:  # flat or degenerate: every point may be on the outline
        return np.arange(len(points))


def outside_is_free(points: np.ndarray, normals: np.ndarray, probe: np.ndarray) -> np.ndarray:
    """Whether the spot `OUTSIDE` along each probe point's normal (model frame: unit
    bounding-box diagonal) is away from other surface."""
    spot = points[probe] + OUTSIDE * normals[probe]
    return cKDTree(points).query(spot)[0] > FREE_SHARE * OUTSIDE


def batch_scores(runner: Runner, encoder_input: np.ndarray, normals: np.ndarray, rotations: np.ndarray,
                 probe: np.ndarray, free: np.ndarray, cues: tuple[str, ...] = (),
                 outline: np.ndarray | None = None) -> np.ndarray:
    points, extent = normalised(np.einsum("bij,nj->bni", rotations, encoder_input[:, :3]))
    turned_normals = np.einsum("bij,nj->bni", rotations, normals)
    enc = np.concatenate([points, turned_normals], 2) if encoder_input.shape[1] == 6 else points
    p, n = points[:, probe], turned_normals[:, probe]

    def occupancy(x: np.ndarray, codes: torch.Tensor) -> np.ndarray:
        return runner.net.embed(runner.tensor(x), codes).max(-1).values.cpu().numpy()

    inside, outside = np.empty(p.shape[:2]), np.empty(p.shape[:2])
    step = max(1, runner.chunk // max(enc.shape[1], len(probe)))  # poses per pass: the runner's chunk of points
    with torch.no_grad(), runner.precision():
        for i in range(0, len(rotations), step):
            codes = runner.net.encode(runner.tensor(enc[i : i + step]))
            inside[i : i + step] = occupancy(p[i : i + step] - INSIDE * n[i : i + step], codes)
            outside[i : i + step] = occupancy(p[i : i + step] + OUTSIDE * n[i : i + step], codes)
    fit = (1 - inside).mean(1) + (outside * free).sum(1) / max(int(free.sum()), 1)
    footprint = extent[:, 0] * extent[:, 2] / (extent**2).sum(1)
    return fit + FOOTPRINT_WEIGHT * footprint + cue_scores(points, extent, cues, outline)


def cue_scores(points: np.ndarray, extent: np.ndarray, cues: tuple[str, ...],
               outline: np.ndarray | None = None) -> np.ndarray:
    """Per pose of a batch of normalised point sets (B, n, 3): the category's cues, lower
    where the pose shows what its canonical pose has (`outline`: indices of the points
    the footprint's outline is among, all by default)."""
    out = np.zeros(len(points))
    for cue in {"back", "fin"}.intersection(cues):
        top = points[:, :, 1] >= np.quantile(points[:, :, 1], 1 - UPPER_SHARE[cue], axis=1, keepdims=True)
        upper_z = (points[:, :, 2] * top).sum(1) / top.sum(1)
        out -= BACK_WEIGHT * np.clip(upper_z - points[:, :, 2].mean(1), -BACK_CAP, BACK_CAP)
    if "box" in cues:
        rim = points if outline is None else points[:, outline]
        out += BOX_WEIGHT * (extent[:, 0] * extent[:, 2] / np.array([smallest_rectangle(p[:, [0, 2]]) for p in rim]) - 1)
    if "flat" in cues:
        out += FLAT_WEIGHT * extent[:, 1]
    if "wide" in cues:
        out += WIDE_WEIGHT * (extent[:, 2] - extent[:, 0]) / (extent[:, 2] + extent[:, 0])
    if "feet" in cues:
        square, diagonal = np.array([[box_over_smallest(xz), box_over_smallest(xz @ DIAGONAL)]
                                     for xz in map(feet, points)]).T
        out += FEET_WEIGHT * (np.minimum(square, diagonal) - 1) + SQUARE_FEET_WEIGHT * (square - 1)
    if "knee" in cues:
        y, z = points[:, :, 1], points[:, :, 2]
        share = (y - y.min(1, keepdims=True)) / np.maximum(extent[:, 1:2], 1e-9)
        band = (share > KNEE_BAND[0]) & (share < KNEE_BAND[1])
        band_z = (z * band).sum(1) / np.maximum(band.sum(1), 1)
        out -= KNEE_WEIGHT * (band_z - (z.max(1) + z.min(1)) / 2) / np.maximum(extent[:, 2], 1e-9)
    level = points[:, :, 1].mean(1) / np.maximum(extent[:, 1], 1e-9)  # the surface's mean height over the box's
    if "high" in cues:
        out -= HIGH_WEIGHT * level
    if "low" in cues:
        out += LOW_WEIGHT * level
    return out


def feet_off_square(points: np.ndarray) -> float:
    """How far the feet stand off square to their smallest rectangle, or off diagonal to
    it: the smaller of `box_over_smallest` for their xz as given and turned by 45 degrees."""
    xz = feet(points)
    return min(box_over_smallest(xz), box_over_smallest(xz @ DIAGONAL))


def feet(points: np.ndarray) -> np.ndarray:
    """The xz of the points within `FEET_LAYER` of the height above the lowest."""
    y = points[:, 1]
    return points[y <= y.min() + FEET_LAYER * np.ptp(y)][:, [0, 2]]


def box_over_smallest(xz: np.ndarray) -> float:
    """The area of 2D points' axis-aligned box over their smallest rectangle's (1 when too
    few to tell)."""
    return float(np.ptp(xz, axis=0).prod()) / smallest_rectangle(xz) if len(xz) >= 3 else 1.0


def smallest_rectangle(xy: np.ndarray) -> float:
    """Area of the smallest rectangle around 2D points (one side on a convex-hull edge)."""
    return smallest_rectangle_and_angle(xy)[0]


def smallest_rectangle_and_angle(xy: np.ndarray) -> tuple[float, float]:
    """The smallest rectangle around 2D points: its area and the angle of one of its sides
    (radians from the first axis toward the second)."""
    try:
        hull = xy[ConvexHull(xy).vertices]
    except QhullError:  # collinear: no area
        return max(float(np.ptp(xy, axis=0).prod()), 1e-12), 0.0
    edge = np.roll(hull, -1, axis=0) - hull
    angle = np.arctan2(edge[:, 1], edge[:, 0])
    c, s = np.cos(angle)[:, None], np.sin(angle)[:, None]
    u, v = hull[:, 0] * c + hull[:, 1] * s, hull[:, 1] * c - hull[:, 0] * s  # (edges, hull points)
    area = np.ptp(u, axis=1) * np.ptp(v, axis=1)
    return max(float(area.min()), 1e-12), float(angle[np.argmin(area)])


def squared(rotation: np.ndarray, points: np.ndarray) -> np.ndarray:
    """`rotation` followed by the four turns about +Y that stand the turned points square
    to their smallest footprint rectangle."""
    angle = np.degrees(smallest_rectangle_and_angle((points @ rotation.T)[:, [0, 2]])[1])
    return Rotation.from_euler("y", angle + 90.0 * np.arange(4)[:, None], degrees=True).as_matrix() @ rotation


def normalised(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each of a batch of point sets (B, n, 3) centred on its bounding box and scaled to a
    unit diagonal, as the engine frames a shape; with each box's extent."""
    lo, hi = points.min(1, keepdims=True), points.max(1, keepdims=True)
    diagonal = np.linalg.norm(hi - lo, axis=2, keepdims=True)
    out = (points - (lo + hi) / 2) / diagonal
    extent = ((hi - lo) / diagonal)[:, 0]  # of the normalised points
    return out, extent
