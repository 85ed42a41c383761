import json
from pathlib import Path

import numpy as np
import pytest
import torch

from model import Correspondence, ImplicitCorrespondenceNet, preset
from training.devset import DEVSET, POINTS, devset_record, face_parts, load_devset, upright_mesh
from training.devset_build import EXCLUDED, build, chair_rule, keypoints
from training.evaluate import _keypoint_errors, diagonal_per_radius, evaluate, format_keypoint_table, format_table
from training.families import PART_NAMES

PSB = Path(__file__).resolve().parents[3] / "shared" / "data" / "psb"


@pytest.mark.parametrize("category, count, parts", [("chair", 20, {"seat", "back", "leg"}),
                                                    ("table", 20, {"top", "leg"}),
                                                    ("airplane", 19, {"body", "wing", "tail", "engine"})])
def test_the_dev_set_labels_every_point_with_its_categorys_parts(category, count, parts):
    shapes = load_devset(category, PSB)
    assert len(shapes) == count
    entry = devset_record()["categories"][category]
    assert [s["name"] for s in shapes[:3]] == entry["sources"]
    names = PART_NAMES[category]
    seen = set()
    for s in shapes:
        assert s["surface_points"].shape == (POINTS, 3) and s["surface_labels"].shape == (POINTS,)
        assert set(np.unique(s["surface_labels"])) <= set(names)
        seen |= {names[i] for i in np.unique(s["surface_labels"])}
        # keypoints lie on the shape (the model frame, diagonal 1)
        for k, v in s["keypoints"].items():
            assert np.min(np.linalg.norm(s["surface_points"] - v, axis=1)) < 0.03, (s["name"], k)
    assert seen == parts


def test_chair_keypoints_sit_where_their_names_say():
    for s in load_devset("chair", PSB):
        k = s["keypoints"]
        assert k["foot_front_left"][2] < k["foot_back_left"][2] and k["foot_front_left"][0] < k["foot_front_right"][0]
        assert k["back_top_left"][1] > k["seat_front_left"][1] > k["foot_front_left"][1]
        assert k["back_top_left"][2] > k["seat_front_left"][2]  # the back is behind the seat's front (+Z)


def test_feet_stand_on_the_floor_and_corners_on_top_of_vertical_faces():
    """On a vertical face every height is as far towards a corner: the foot is its lowest
    point, a back's top corner and a seat's front corner its highest."""
    rng = np.random.default_rng(0)
    leg = np.c_[np.full(4000, -0.2), rng.uniform(-0.5, 0.0, 4000), np.full(4000, -0.2)]  # a vertical edge
    legs = np.concatenate([leg * [sx, 1, sz] for sx in (1, -1) for sz in (1, -1)])
    back = np.c_[rng.choice([-0.2, 0.2], 2000), rng.uniform(0.1, 0.5, 2000), np.full(2000, 0.2)]
    seat = np.c_[rng.choice([-0.2, 0.2], 2000), rng.uniform(0.0, 0.05, 2000), np.full(2000, -0.2)]
    points = np.concatenate([legs, back, seat])
    labels = np.repeat([2, 1, 0], [len(legs), len(back), len(seat)])
    k = keypoints("chair", points, labels)
    assert all(k[f"foot_{e}_{s}"][1] < -0.499 for e in ("front", "back") for s in ("left", "right"))
    assert k["back_top_left"][1] > 0.499 and k["seat_front_right"][1] > 0.049


def test_each_corner_has_its_own_foot_or_none():
    rng = np.random.default_rng(0)

    def leg(x, z, bottom):  # a post 0.04 thick
        turn = rng.uniform(0, 2 * np.pi, 500)
        return np.c_[x + 0.02 * np.cos(turn), rng.uniform(bottom, 0.0, 500), z + 0.02 * np.sin(turn)]

    # back legs stopping short of the floor still give the back feet
    chair = np.concatenate([leg(-0.2, -0.2, -0.5), leg(0.2, -0.2, -0.5), leg(-0.2, 0.2, -0.46), leg(0.2, 0.2, -0.46)])
    k = keypoints("table", chair, np.ones(len(chair), np.int64))
    assert np.allclose(k["foot_back_left"], [-0.214, -0.46, 0.214], atol=0.01)
    assert np.allclose(k["foot_back_right"], [0.214, -0.46, 0.214], atol=0.01)
    # a tripod: its front leg's corner is named once, its empty corner not at all
    tripod = np.concatenate([leg(-0.05, -0.2, -0.5), leg(-0.15, 0.15, -0.5), leg(0.2, 0.05, -0.5)])
    k = keypoints("table", tripod, np.ones(len(tripod), np.int64))
    assert "foot_front_right" not in k and np.allclose(k["foot_front_left"][[0, 2]], [-0.064, -0.214], atol=0.01)
    # a diamond: each side leg straddles two corners, which then share one foot: none named
    diamond = np.concatenate([leg(-0.25, 0.0, -0.5), leg(0.25, 0.0, -0.5), leg(0.0, -0.17, -0.5), leg(0.0, 0.17, -0.5)])
    assert not [n for n in keypoints("table", diamond, np.ones(len(diamond), np.int64)) if n.startswith("foot")]


def test_the_tail_end_is_the_fuselages_end_when_the_tail_cone_is_labelled_tail():
    """PSB often labels the rear fuselage with the fin: the tail end is the cone's end on the
    fuselage's axis, not where the body's labels stop, nor the fin or a stabiliser."""
    rng = np.random.default_rng(0)
    body = np.c_[rng.uniform(-0.03, 0.03, 3000), rng.uniform(-0.03, 0.03, 3000), rng.uniform(-0.4, 0.1, 3000)]
    cone = np.c_[rng.uniform(-0.02, 0.02, 1000), rng.uniform(-0.02, 0.02, 1000), rng.uniform(0.1, 0.3, 1000)]
    fin = np.c_[np.zeros(500), rng.uniform(0.03, 0.15, 500), rng.uniform(0.2, 0.38, 500)]  # reaches further back
    stabiliser = np.c_[rng.uniform(0.05, 0.15, 500), np.zeros(500), rng.uniform(0.2, 0.36, 500)]
    wing = np.c_[rng.uniform(-0.4, 0.4, 500), np.zeros(500), rng.uniform(-0.1, 0.0, 500)]
    points = np.concatenate([body, cone, fin, stabiliser, wing])
    labels = np.repeat([0, 2, 2, 2, 1], [len(body), len(cone), len(fin), len(stabiliser), len(wing)])
    k = keypoints("airplane", points, labels)
    assert k["tail_end"][2] == pytest.approx(0.3, abs=0.01)
    assert k["fin_top"][1] == pytest.approx(0.15, abs=0.005) and k["fin_top"][0] == 0.0
    # a V-tail: the highest tail points are its surfaces' tips, off the axis: no fin top
    rise = rng.uniform(0.0, 0.12, 1000)
    v_tail = np.c_[np.where(np.arange(1000) % 2, 1, -1) * rise, 0.02 + 0.8 * rise, rng.uniform(0.2, 0.3, 1000)]
    points = np.concatenate([body, cone, v_tail, wing])
    labels = np.repeat([0, 2, 2, 1], [len(body), len(cone), len(v_tail), len(wing)])
    assert "fin_top" not in keypoints("airplane", points, labels)


def test_a_seats_board_and_rim_below_it_are_seat_and_the_posts_below_are_legs():
    """PSB cuts some seats into a cushion, a board under it and the board's rim (chair 114):
    wide pieces just under the seat are the seat, as a table top's underside is the top."""
    def box(lo, hi, flat_area=0.0):
        lo, hi = np.array(lo, float), np.array(hi, float)
        return {"centroid": (lo + hi) / 2, "lo": lo, "hi": hi, "area": 0.1, "flat": 0.5, "flat_area": flat_area}
    stats = {0: box([-0.15, 0.13, -0.17], [0.15, 0.2, 0.19], flat_area=0.1),  # cushion
             1: box([-0.12, 0.10, -0.15], [0.12, 0.125, 0.16]),  # board
             2: box([-0.15, 0.10, -0.17], [0.15, 0.135, 0.19]),  # rim
             3: box([-0.18, -0.42, -0.21], [-0.12, 0.09, -0.15]),  # a leg
             4: box([-0.14, 0.15, 0.16], [0.14, 0.42, 0.21]),  # the back: as wide, above
             5: box([-0.15, -0.2, -0.17], [0.15, -0.17, 0.19])}  # a shelf far below the seat
    assert chair_rule(stats, -0.42, 0.42) == {0: "seat", 1: "seat", 2: "seat", 3: "leg", 4: "back", 5: "leg"}
    assert devset_record()["categories"]["chair"]["shapes"]["114"]["segments"]["5"] == "seat"


def test_the_data_file_is_what_the_builder_makes():
    """The stored segment map and keypoints come from the rule (a hand edit of the file
    without the builder fails here)."""
    stored = devset_record()["categories"]["table"]
    assert build(PSB, ["table"])["categories"]["table"] == json.loads(json.dumps(stored))
    assert "61" not in devset_record()["categories"]["airplane"]["shapes"] and "61" in EXCLUDED


def test_a_segment_without_a_part_is_an_error():
    mesh, segments = upright_mesh(PSB, "chair", "101")
    shape = devset_record()["categories"]["chair"]["shapes"]["101"]
    broken = {**shape, "segments": {k: v for k, v in shape["segments"].items() if k != "0"}}
    with pytest.raises(ValueError, match=r"segments \[0\] have no part"):
        face_parts(mesh, segments, broken, "chair")
    with pytest.raises(ValueError, match="no dev set for category 'lamp'"):
        load_devset("lamp", PSB)


def test_keypoint_errors_average_the_sources_then_snap():
    points = np.array([[0.0, 0, 0], [1, 0, 0], [0.5, 0, 0], [0, 1, 0]])
    target = {"surface_points": points, "keypoints": {"a": np.array([0.5, 0, 0]), "b": np.array([0.0, 1, 0])}}
    from scipy.spatial import cKDTree

    # a: the mean of (0,0,0) and (1,0,0) snaps to (0.5,0,0), exact; b: lands on (0,0,0), 1 away
    errors = _keypoint_errors(target, {"a": [points[0], points[1]], "b": [points[0]]}, cKDTree(points))
    assert errors == pytest.approx({"a": 0.0, "b": 1 / np.sqrt(2)})
    # on the cloud, the truth of b is its nearest point: (0,1,0) itself, and a moves to (0.5,0,0)
    target["keypoints"] = {"a": np.array([0.45, 0.02, 0]), "b": np.array([0.0, 0.9, 0])}
    assert _keypoint_errors(target, {"a": [points[0], points[1]], "b": [points[3]]}, cKDTree(points),
                            on_cloud=True) == {"a": 0.0, "b": 0.0}


def test_diagonal_per_radius_is_two_for_a_box_and_more_for_a_shape_short_of_its_corners():
    corners = np.array([[x, y, z] for x in (0, 2) for y in (0, 1) for z in (0, 3)], dtype=float)
    assert diagonal_per_radius(corners) == pytest.approx(2.0)
    # a diamond's farthest points are its tips, half an edge of the box from the centre
    diamond = np.array([[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]], dtype=float)
    assert diagonal_per_radius(diamond) == pytest.approx(np.sqrt(12))


def test_keypoint_pck_of_a_shape_with_itself_is_perfect_for_the_baseline():
    torch.manual_seed(0)
    engine = Correspondence(ImplicitCorrespondenceNet(preset("tiny")), device="cpu")
    shape = load_devset("chair", PSB, points=400, targets=1)[3]
    scores = evaluate(engine, [shape] * 4, PART_NAMES["chair"], n_sources=3, progress=False)
    assert scores["nn"].pck05 == 100.0 and scores["nn"].miou == 100.0
    assert len(scores["nn"].pck_errors) == len(shape["keypoints"])
    assert scores["nn"].pck05_radius == 100.0
    assert len(scores["model"].pck_errors_radius) == len(shape["keypoints"])
    assert "PCK@0.05r" in format_table(scores)
    # each named keypoint's own errors: a target with itself, each 0 for the baseline
    assert set(scores["nn"].keypoint_errors_radius) == set(shape["keypoints"])
    assert all(list(e) == [0.0] for e in scores["nn"].keypoint_errors_radius.values())
    table = format_keypoint_table(scores)
    assert all(f"| {name} | 1 | " in table for name in shape["keypoints"])
    assert 0 <= scores["model"].pck05 <= 100
