"""Turned real shapes in the evaluation: keypoints turn with the surface, a symmetric
table's keypoints are named up to its turns, and the shipped chair model auto-aligns
turned dev-set chairs to the figures it reaches on them upright."""
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial import cKDTree

from model import Correspondence
from training.devset import load_devset
from training.evaluate import _keypoint_errors, evaluate, named_up_to_symmetry, turned_targets
from training.families import PART_NAMES
from training.symmetry import keypoint_renamings

PSB = Path(__file__).resolve().parents[3] / "shared" / "data" / "psb"


def test_a_rectangular_tables_half_turn_swaps_its_feet_across_and_a_chair_has_no_turn():
    table = load_devset("table", PSB, targets=1)[3]  # PSB 142, a rectangular table
    renamings = keypoint_renamings(table["surface_points"], table["keypoints"])
    assert len(renamings) == 2, renamings
    assert renamings[1]["foot_front_left"] == "foot_back_right" and renamings[1]["top_back_right"] == "top_front_left"
    chair = load_devset("chair", PSB, targets=1)[3]
    assert keypoint_renamings(chair["surface_points"], chair["keypoints"]) == [{k: k for k in chair["keypoints"]}]


def test_keypoints_are_scored_under_the_renaming_that_fits_best():
    points = np.array([[-1.0, 0, 0], [1, 0, 0], [0, 1, 0]])
    target = {"surface_points": points, "keypoints": {"left": points[0], "right": points[1]}}
    swapped = {"left": [points[1]], "right": [points[0]]}
    assert _keypoint_errors(target, swapped, cKDTree(points)) == pytest.approx({"left": 2 / 5**0.5, "right": 2 / 5**0.5})
    target["keypoint_renamings"] = [{"left": "left", "right": "right"}, {"left": "right", "right": "left"}]
    assert _keypoint_errors(target, swapped, cKDTree(points)) == {"left": 0.0, "right": 0.0}


def test_a_turned_target_keeps_its_keypoints_on_the_same_surface_spots():
    shapes = load_devset("chair", PSB, points=300, targets=2)
    turned = turned_targets(shapes, 3, True, seed=4)
    assert turned[:3] == shapes[:3]
    for before, after in zip(shapes[3:], turned[3:]):
        assert not np.allclose(before["surface_points"], after["surface_points"])
        for name, at in before["keypoints"].items():
            nearest = cKDTree(before["surface_points"]).query(at)[1]
            assert cKDTree(after["surface_points"]).query(after["keypoints"][name])[1] == nearest


def test_chairs_turned_by_a_yaw_score_as_upright_once_auto_aligned():
    """The first two dev-set chairs as targets: each turned by a random yaw and aligned
    ("yaw"), label transfer and keypoints as good as upright."""
    engine = Correspondence.load(category="chair", device="cpu")
    shapes = named_up_to_symmetry(load_devset("chair", PSB, targets=2), 3)
    turned = turned_targets(shapes, 3, "yaw", seed=1)
    upright = evaluate(engine, shapes, PART_NAMES["chair"], progress=False)["model"]
    aligned = evaluate(engine, turned, PART_NAMES["chair"], progress=False, align="yaw")["model"]
    assert aligned.miou > upright.miou - 2 and aligned.pck10 >= upright.pck10 - 10, (aligned, upright)


def test_the_cli_scores_the_dev_set_turned_and_refuses_a_category_without_one(capsys):
    from training.evaluate import main

    assert main(["--devset", "chair", "--turned", "yaw", "--targets", "2"]) == 0
    out = capsys.readouterr().out
    assert "chair: 2 targets, 3 labelled sources, targets turned (yaw) and auto-aligned" in out
    assert "| model |" in out and "| nearest neighbour |" in out
    assert main(["--devset", "lamp"]) == 2
    assert "lamp" in capsys.readouterr().err
    assert main(["--devset", "chair", "--targets", "0"]) == 2
    assert "--targets must be >= 1" in capsys.readouterr().err
