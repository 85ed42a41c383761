"""The match: a part's ends meet the other part's ends; labels decide close calls."""
import numpy as np
import pytest
from scipy.spatial import cKDTree

from model import matching
from model.matching import CLOSE_CALL, extremity, into_part_frame, match, outward, outward_reach


def test_a_slatted_back_meets_a_solid_backs_corners():
    rng = np.random.default_rng(0)
    # the same 0.4 x 0.5 back: solid here, five thin slats there (their mass at the slats,
    # a mean and spread of x other than the solid back's)
    solid = np.c_[rng.uniform(-0.2, 0.2, 4000), rng.uniform(0.3, 0.8, 4000), np.zeros(4000)]
    slats = np.c_[rng.choice([-0.2, -0.19, 0.0, 0.19, 0.2], 4000) + rng.normal(0, 0.003, 4000),
                  rng.uniform(0.3, 0.8, 4000), np.zeros(4000)]
    corners = np.array([[-0.2, 0.8, 0.0], [0.2, 0.8, 0.0], [0.0, 0.3, 0.0]])
    moved = into_part_frame(corners, solid, slats)
    assert np.abs(moved - corners).max() < 0.02, moved


def test_a_narrow_part_is_stretched_onto_a_wide_one_and_flat_parts_stay_finite():
    rng = np.random.default_rng(1)
    narrow = np.c_[rng.uniform(-0.1, 0.1, 2000), np.zeros(2000), rng.uniform(-0.3, 0.3, 2000)]
    wide = np.c_[rng.uniform(-0.4, 0.4, 2000), np.full(2000, 0.5), rng.uniform(-0.3, 0.3, 2000)]
    moved = into_part_frame(np.array([[0.1, 0.0, 0.3]]), narrow, wide)
    assert np.allclose(moved, [[0.4, 0.5, 0.3]], atol=0.02)  # the flat y axis: only shifted
    assert np.array_equal(into_part_frame(moved, narrow[:1], wide), moved)  # one sample: no frame


def test_a_base_heavy_at_its_foot_meets_four_legs_at_both_ends():
    rng = np.random.default_rng(2)
    # a swivel base (a wide star at the floor, a thin column up to 0.4) against four legs
    # of even mass from the floor to 0.4: their centres of mass sit at other heights
    star = np.c_[rng.uniform(-0.3, 0.3, 3000), rng.uniform(0.0, 0.04, 3000), rng.uniform(-0.3, 0.3, 3000)]
    column = np.c_[rng.normal(0, 0.01, 600), rng.uniform(0.04, 0.4, 600), rng.normal(0, 0.01, 600)]
    base = np.r_[star, column]
    legs = np.c_[rng.choice([-0.25, 0.25], 4000), rng.uniform(0.0, 0.4, 4000), rng.choice([-0.25, 0.25], 4000)]
    foot, top = np.array([[0.3, 0.0, 0.3]]), np.array([[0.0, 0.4, 0.0]])
    assert into_part_frame(foot, base, legs)[0, 1] < 0.02  # the foot on the floor, not up the leg
    # the top near the top (0.42: the centre in height halfway to the base's low centre of
    # mass leaves the column's scale a little off)
    assert abs(into_part_frame(top, base, legs)[0, 1] - 0.4) < 0.03
    # in plan the centre of mass still goes to the centre of mass
    assert np.allclose(into_part_frame(base.mean(0)[None], base, legs)[0, [0, 2]], legs.mean(0)[[0, 2]], atol=1e-9)


def test_a_sled_frames_foot_on_its_runner_meets_four_legs_at_their_feet():
    rng = np.random.default_rng(7)
    # two runner tubes at the floor (most of the frame's mass) and four thin posts up to 0.4
    runners = np.c_[rng.choice([-0.25, 0.25], 4000), rng.uniform(0.0, 0.05, 4000), rng.uniform(-0.3, 0.3, 4000)]
    posts = np.c_[rng.choice([-0.25, 0.25], 800), rng.uniform(0.05, 0.4, 800), rng.choice([-0.25, 0.25], 800)]
    legs = np.c_[rng.choice([-0.25, 0.25], 4000), rng.uniform(0.0, 0.4, 4000), rng.choice([-0.25, 0.25], 4000)]
    on_the_runner = np.array([[0.25, 0.025, 0.25]])  # where a sled chair's foot keypoint sits
    # near the feet (centre of mass to centre of mass, 0.09 up the legs)
    assert into_part_frame(on_the_runner, np.r_[runners, posts], legs)[0, 1] < 0.06


def _disc(rng, n, radius, y=0.0):
    r, a = radius * np.sqrt(rng.uniform(0, 1, n)), rng.uniform(0, 2 * np.pi, n)
    return np.c_[r * np.cos(a), np.full(n, y), r * np.sin(a)]


def test_a_round_tops_rim_reaches_a_square_tops_corners(monkeypatch):
    rng = np.random.default_rng(4)
    round_top = _disc(rng, 4000, 0.4)
    square_top = np.c_[rng.uniform(-0.4, 0.4, 4000), np.zeros(4000), rng.uniform(-0.4, 0.4, 4000)]
    rim = 0.4 * np.array([[np.cos(a), 0.0, np.sin(a)] for a in np.radians([45, 135, -60, 0])])
    moved = into_part_frame(rim, round_top, square_top)
    # the 45 degree rim points on the corners, each on the square's outline, none inside it
    assert np.allclose(moved[:2], [[0.4, 0.0, 0.4], [-0.4, 0.0, 0.4]], atol=0.04), moved
    assert np.allclose(np.abs(moved[:, [0, 2]]).max(axis=1), 0.4, atol=0.03), moved
    # the other way, a corner is not pulled in: it stays beyond the rim, where the rim's
    # nearest sample is the one at 45 degrees
    corner = np.array([[0.4, 0.0, 0.4]])
    moved = into_part_frame(corner, square_top, round_top)
    monkeypatch.setattr(matching, "PLAN_STRETCH_LIMIT", 1.0)  # no stretch: per axis alone
    assert np.allclose(moved, into_part_frame(corner, square_top, round_top))
    assert np.hypot(moved[0, 0], moved[0, 2]) > 0.5


def test_the_plan_stretch_leaves_heights_alone_and_pulls_nothing_in(monkeypatch):
    rng = np.random.default_rng(5)
    # a round post against a square one, 0.3 tall: the rim at 45 degrees goes out to the
    # corner edge, at its own height; the square's corner is not pulled in to the rim
    round_post = _disc(rng, 4000, 0.4) + np.c_[np.zeros(4000), rng.uniform(0, 0.3, 4000), np.zeros(4000)]
    square_post = np.c_[rng.uniform(-0.4, 0.4, 4000), rng.uniform(0, 0.3, 4000), rng.uniform(-0.4, 0.4, 4000)]
    rim = np.array([[0.4 * np.cos(np.pi / 4), 0.25, 0.4 * np.sin(np.pi / 4)]])
    corner = np.array([[0.4, 0.05, 0.4]])
    out, back = into_part_frame(rim, round_post, square_post), into_part_frame(corner, square_post, round_post)
    monkeypatch.setattr(matching, "PLAN_STRETCH_LIMIT", 1.0)
    assert np.allclose(out[:, 1], into_part_frame(rim, round_post, square_post)[:, 1])
    assert np.allclose(out[0, [0, 2]], 0.4, atol=0.04), out
    assert np.allclose(back, into_part_frame(corner, square_post, round_post))


def test_a_parts_centre_of_mass_lands_on_the_others():
    rng = np.random.default_rng(2)
    # a part whose mass lies near one end (a wing's root), against one spread evenly
    here = np.c_[np.minimum(rng.exponential(0.2, 3000), 1.0), rng.uniform(0, 0.1, 3000), np.zeros(3000)]
    there = np.c_[rng.uniform(0, 1, 3000), rng.uniform(0, 0.1, 3000), np.zeros(3000)]
    moved = into_part_frame(here.mean(0)[None], here, there)
    assert np.allclose(moved[0, [0, 2]], there.mean(0)[[0, 2]], atol=1e-9)  # in plan


def test_labels_decide_close_calls_and_leave_clear_ones_alone():
    # two parts stacked along y on both shapes: a seat (part 0, y < 0) under a back (part 1)
    rng = np.random.default_rng(3)
    samples = np.c_[rng.uniform(-0.2, 0.2, 2000), rng.uniform(-0.5, 0.5, 2000), rng.uniform(-0.2, 0.2, 2000)]
    parts = (samples[:, 1] > 0).astype(int)
    emb = np.eye(2)[parts]
    # three target points a little above the boundary, in the back: f calls them seat, by
    # half CLOSE_CALL (two close calls) and by five times it (a clear one)
    where = np.array([[0.0, 0.08, 0.0], [0.1, 0.1, 0.1], [0.0, 0.08, 0.0]])
    margin = np.array([0.5 * CLOSE_CALL, 0.5 * CLOSE_CALL, 5 * CLOSE_CALL])
    target_emb = np.c_[0.5 + margin / 2, 0.5 - margin / 2]

    def matched_parts(close_calls):
        idx = match(samples, emb, parts, where, target_emb, samples, parts, 0.1, np.zeros(2),
                    close_calls=close_calls)
        return parts[idx]

    assert matched_parts(False).tolist() == [0, 0, 0]  # the argmax decides alone
    assert matched_parts(True).tolist() == [1, 1, 0]  # the nearer match, where the call is close


def _plate(rng: np.random.Generator, n: int) -> np.ndarray:
    """n samples of a flat 0.6 x 0.4 plate (a seat) in the xz plane."""
    return np.c_[rng.uniform(-0.3, 0.3, n), np.zeros(n), rng.uniform(-0.2, 0.2, n)]


def test_extremity_points_back_into_the_shape_at_a_corner_and_vanishes_in_the_middle():
    rng = np.random.default_rng(4)
    for n in (2000, 20000):  # all samples judged, and a subset of EXTREMITY_SAMPLES
        plate = _plate(rng, n)
        ext = extremity(plate)
        corner = np.argmin(np.linalg.norm(plate - [0.3, 0, 0.2], axis=1))
        middle = np.argmin(np.linalg.norm(plate, axis=1))
        assert np.linalg.norm(ext[corner]) > 0.35 and ext[corner][0] < 0 and ext[corner][2] < 0
        assert np.linalg.norm(ext[middle]) < 0.1


def test_an_uneven_clouds_areas_keep_its_dense_side_from_pulling_the_centre():
    rng = np.random.default_rng(5)
    # the left half ten times as dense as the right, each point weighed by its area
    left = np.c_[rng.uniform(-0.3, 0.0, 2000), np.zeros(2000), rng.uniform(-0.2, 0.2, 2000)]
    right = np.c_[rng.uniform(0.0, 0.3, 200), np.zeros(200), rng.uniform(-0.2, 0.2, 200)]
    cloud, areas = np.r_[left, right, [[0.0, 0.0, 0.0]]], np.r_[np.ones(2000), np.full(201, 10.0)]
    assert extremity(cloud)[-1][0] < -0.3  # by count the dense side pulls the centre left
    assert abs(extremity(cloud, areas)[-1][0]) < 0.15
    # beyond EXTREMITY_SAMPLES, the samples the surface is judged on are drawn by area
    many = np.r_[np.c_[rng.uniform(-0.3, 0.0, 10000), np.zeros(10000), rng.uniform(-0.2, 0.2, 10000)],
                 np.c_[rng.uniform(0.0, 0.3, 1000), np.zeros(1000), rng.uniform(-0.2, 0.2, 1000)], [[0.0, 0.0, 0.0]]]
    many_areas = np.r_[np.ones(10000), np.full(1001, 10.0)]
    assert len(many) > matching.EXTREMITY_SAMPLES
    assert extremity(many)[-1][0] < -0.3 and abs(extremity(many, many_areas)[-1][0]) < 0.15


def test_corners_are_matched_nearer_the_corners_where_their_place_alone_falls_short():
    rng = np.random.default_rng(6)
    source, target = _plate(rng, 3000), _plate(rng, 3000)  # two plates sampled apart
    corners = np.array([[sx * 0.3, 0.0, sz * 0.2] for sx in (-1, 1) for sz in (-1, 1)])
    at_source = [np.argmin(np.linalg.norm(source - c, axis=1)) for c in corners]
    at_target = [np.argmin(np.linalg.norm(target - c, axis=1)) for c in corners]
    # the target's corners placed 0.03 inside the source's (as a part frame can leave them)
    short = source[at_source] - 0.03 * corners / np.linalg.norm(corners, axis=1, keepdims=True)
    parts, emb = np.zeros(3000, int), np.tile([1.0, 0.0], (3000, 1))

    def missed_by(with_extremity):
        ext = (extremity(source), extremity(target)[at_target]) if with_extremity else (None, None)
        idx = match(source, emb, parts, short, emb[:4], source, parts, 0.1, np.zeros(2),
                    source_extremity=ext[0], target_extremity=ext[1])
        return np.linalg.norm(source[idx] - source[at_source], axis=1).mean()

    # pulled out towards the corners (0.68 here; 0.59-0.83 over ten seeds)
    assert missed_by(True) < 0.85 * missed_by(False)


def test_only_one_sides_extremity_is_refused():
    plate = _plate(np.random.default_rng(8), 100)
    parts, emb = np.zeros(100, int), np.tile([1.0, 0.0], (100, 1))
    with pytest.raises(ValueError, match="both"):
        match(plate, emb, parts, plate, emb, plate, parts, 0.1, np.zeros(2), source_extremity=extremity(plate))


def test_a_corners_match_moves_out_to_the_corner_and_a_middles_stays():
    """A target corner matched just inside the source's corner moves out to it, along the
    target's own outward direction; a point of a flat middle keeps its match."""
    rng = np.random.default_rng(5)
    source, target = _plate(rng, 5000), _plate(rng, 5000)
    ext = extremity(target)
    corner = np.argmin(np.linalg.norm(target - [0.3, 0, 0.2], axis=1))
    middle = np.argmin(np.linalg.norm(target, axis=1))
    inside = np.argmin(np.linalg.norm(source - [0.27, 0, 0.17], axis=1))  # 0.04 in from the corner
    idx = np.array([inside, inside])
    pick = [corner, middle]
    reach = outward_reach(target[pick], target, ext[pick])
    moved = outward(idx, source, ext[pick], reach, np.zeros(len(source), int))
    assert np.linalg.norm(source[moved[0]] - [0.3, 0, 0.2]) < 0.015
    assert moved[1] == inside
    # where the corner is another part, the match stays in its own: labels carried by the
    # match keep their boundaries
    parts = (source[:, 0] > 0.285).astype(int)
    kept = outward(idx, source, ext[pick], reach, parts)
    assert parts[kept[0]] == 0 and np.linalg.norm(source[kept[0]] - [0.3, 0, 0.2]) < np.linalg.norm(
        source[inside] - [0.3, 0, 0.2])
    # a dense source searched on every other sample: the corner is still found, among those
    every_other = np.arange(0, len(source), 2)
    thinned = outward(idx, source, ext[pick], reach, np.zeros(len(source), int), every_other)
    assert thinned[0] in set(every_other) and np.linalg.norm(source[thinned[0]] - [0.3, 0, 0.2]) < 0.02
    # searched on none of the samples near the match: each match stays a candidate, so none moves
    far = np.flatnonzero(np.linalg.norm(source - source[inside], axis=1) > 0.2)
    assert outward(idx, source, ext[pick], reach, np.zeros(len(source), int), far).tolist() == [inside, inside]


def test_only_points_at_their_own_extreme_move_so_a_corner_is_found_at_the_corner():
    """Every match lies a tenth inward, as a match that misses a corner does.  The target's
    points at their own extreme move out to the source's, the others keep their match: the
    target's corner meets the source's, and the source's corner, looked up through the
    match (the target point matched nearest it), is found at the target's corner, not at
    one of the points around it piled onto it."""
    rng = np.random.default_rng(6)
    source, target = _plate(rng, 5000), _plate(rng, 5000)
    ext = extremity(target)
    reach = outward_reach(target, target, ext)
    idx = cKDTree(source).query(target * 0.9)[1]
    moved = outward(idx, source, ext, reach, np.zeros(len(source), int))
    corner = np.array([0.3, 0, 0.2])
    source_corner = source[np.argmin(np.linalg.norm(source - corner, axis=1))]
    target_corner = np.argmin(np.linalg.norm(target - corner, axis=1))
    assert np.linalg.norm(source[idx[target_corner]] - corner) > 0.03
    assert np.linalg.norm(source[moved[target_corner]] - corner) < 0.015
    found = np.linalg.norm(source[moved] - source_corner, axis=1)
    assert np.linalg.norm(target[np.argmin(found)] - corner) < 0.015 and np.sum(found < 0.005) <= 3
    off = reach > matching.OUTWARD_AT_EXTREME
    assert off.sum() > 100 and np.array_equal(moved[off], idx[off])
    # a shape matched onto itself stays where it is
    ext_all = extremity(source)
    same = outward(np.arange(len(source)), source, ext_all, outward_reach(source, source, ext_all),
                   np.zeros(len(source), int))
    assert np.mean(same == np.arange(len(source))) > 0.99


def test_each_runs_first_best_is_a_lexsorts_pick():
    """outward's pick of each point's best pair, in linear time, is the lexsort's: ties and
    runs of -inf scores go to the run's first pair."""
    from model.matching import _first_best

    rng = np.random.default_rng(0)
    owner = np.sort(rng.choice(300, 5000))  # runs of every length, some owners absent
    score = rng.integers(-3, 3, len(owner)).astype(float)
    score[rng.random(len(owner)) < 0.2] = -np.inf
    score[owner == owner[0]] = -np.inf  # a run with no finite score
    first = np.r_[0, np.flatnonzero(np.diff(owner)) + 1]
    assert np.array_equal(_first_best(owner, score), np.lexsort((-score, owner))[first])
