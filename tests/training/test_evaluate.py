import json

import numpy as np
import pytest
import torch

from model import Checkpoint, ImplicitCorrespondenceNet, preset, save_checkpoint
from model import Correspondence
from training.evaluate import (auroc, evaluate, evaluate_source_sets, main as evaluate_main, procedural_shapes,
                                 shape_miou)


def test_miou_counts_parts_absent_from_both_as_one():
    truth = np.array([0, 0, 1, 1])
    pred = np.array([0, 1, 1, 1])
    miou, ious = shape_miou(pred, truth, parts=[0, 1, 2])
    assert ious == {0: 0.5, 1: 2 / 3, 2: 1.0}
    assert miou == pytest.approx((0.5 + 2 / 3 + 1) / 3)


def test_auroc_matches_pairwise_definition():
    rng = np.random.default_rng(0)
    pos, neg = rng.normal(1, 1, 40).round(1), rng.normal(0, 1, 30).round(1)  # with ties
    pairs = (pos[:, None] > neg[None]).mean() + 0.5 * (pos[:, None] == neg[None]).mean()
    assert auroc(pos, neg) == pytest.approx(pairs)
    assert auroc(np.array([2.0, 3.0]), np.array([0.0, 1.0])) == 1.0
    assert np.isnan(auroc(np.array([1.0]), np.array([])))


def test_cli_prints_model_and_baseline(tmp_path, capsys):
    torch.manual_seed(0)
    path = tmp_path / "c.pth"
    save_checkpoint(path, Checkpoint(preset("tiny"), ImplicitCorrespondenceNet(preset("tiny")).state_dict(), "chair", stage=3))
    out_json = tmp_path / "s.json"
    assert evaluate_main(["--checkpoint", str(path), "--procedural", "chair", "--count", "5", "--sources", "2",
                          "--json", str(out_json)]) == 0
    out = capsys.readouterr().out
    assert "| model |" in out and "| nearest neighbour |" in out and "IoU arm" in out
    scores = json.loads(out_json.read_text())
    assert 0 <= scores["nn"]["miou"] <= 100 and set(scores) == {"model", "nn"}
    assert evaluate_main(["--checkpoint", str(path), "--procedural", "chair", "--count", "2", "--sources", "2"]) == 2
    # a folder for the scores that is not there is named before any work
    assert evaluate_main(["--checkpoint", str(path), "--procedural", "chair", "--count", "5", "--sources", "2",
                          "--json", str(tmp_path / "no" / "s.json")]) == 2
    assert f"no folder {tmp_path / 'no'}" in capsys.readouterr().err


def test_a_model_scored_as_another_category_is_noted_and_its_own_is_the_default(tmp_path, capsys):
    path = tmp_path / "t.pth"
    save_checkpoint(path, Checkpoint(preset("tiny"), ImplicitCorrespondenceNet(preset("tiny")).state_dict(), "table", stage=3))
    assert evaluate_main(["--checkpoint", str(path), "--procedural", "chair", "--count", "4", "--sources", "2"]) == 0
    out = capsys.readouterr()
    assert "the checkpoint is a 'table' model, scored here as 'chair'" in out.err and "IoU arm" in out.out
    lamp = tmp_path / "lamp.pth"
    save_checkpoint(lamp, Checkpoint(preset("tiny"), ImplicitCorrespondenceNet(preset("tiny")).state_dict(), "lamp", stage=3))
    assert evaluate_main(["--checkpoint", str(lamp), "--procedural", "lamp"]) == 2
    assert "no part names known for category 'lamp'" in capsys.readouterr().err
    assert evaluate_main(["--checkpoint", str(path), "--procedural", "chair", "--source_sets", "0"]) == 2
    assert "--source_sets must be >= 1, got 0" in capsys.readouterr().err


def test_ones_own_numbering_is_scored_by_number_even_with_a_shipped_category():
    from training.evaluate import part_names
    shapes = [{"surface_labels": np.array([0, 1, -1])}, {"surface_labels": np.array([5, 1])}]
    assert part_names("chair", shapes) == {0: "part 0", 1: "part 1", 5: "part 5"}
    assert part_names("chair", shapes[:1]) == {0: "seat", 1: "back", 2: "leg", 3: "arm"}


def test_the_sources_vote_on_each_label():
    """Two of three identical sources say part 1, the first says part 0: part 1 wins
    (for the nearest-neighbour baseline, whose answers do not depend on training)."""
    torch.manual_seed(0)
    engine = Correspondence(ImplicitCorrespondenceNet(preset("tiny")), device="cpu")
    points = np.random.default_rng(0).random((300, 3))
    shape = lambda label: {"surface_points": points, "surface_labels": np.full(300, label)}
    scores = evaluate(engine, [shape(0), shape(1), shape(1), shape(1)], {0: "a", 1: "b"}, n_sources=3,
                      progress=False)
    assert scores["nn"].miou == 100.0
    unlabelled = evaluate(engine, [shape(-1), shape(-1), shape(1), shape(1)], {0: "a", 1: "b"}, n_sources=3,
                          progress=False)
    assert unlabelled["nn"].miou == 100.0


def test_cli_refuses_samples_without_part_labels(tmp_path, capsys):
    from training.prepare import prepare_procedural
    prepare_procedural("chair", 4, tmp_path, workers=1, progress=False)
    first = sorted(tmp_path.glob("*.npz"))[0]
    sample = dict(np.load(first))
    sample["surface_labels"][:] = -1  # as meshes prepared without labels are
    np.savez(first, **sample)
    assert evaluate_main(["--data", str(tmp_path), "--sources", "1"]) == 2
    assert f"1 of 4 samples in {tmp_path} have no part labels (first {first.name})" in capsys.readouterr().err
    assert evaluate_main(["--procedural", "chair", "--count", "4", "--sources", "0"]) == 2
    assert "--sources must be >= 1" in capsys.readouterr().err


def test_source_sets_pool_the_scores_of_each_set_of_sources(capsys):
    torch.manual_seed(0)
    engine = Correspondence(ImplicitCorrespondenceNet(preset("tiny")), device="cpu")
    shapes = procedural_shapes("chair", 6)
    parts = {0: "seat", 1: "back", 2: "leg", 3: "arm"}
    one = evaluate(engine, shapes, parts, 2, progress=False)["nn"]
    other = evaluate(engine, shapes[2:] + shapes[:2], parts, 2, progress=False)["nn"]
    both = evaluate_source_sets(engine, shapes, parts, 2, 2, progress=False)["nn"]
    assert np.array_equal(both.pck_errors, np.concatenate([one.pck_errors, other.pck_errors]))
    assert both.miou == pytest.approx((one.miou + other.miou) / 2)
    with pytest.raises(ValueError, match="3 source set\\(s\\) of 2 need more than 6 shapes"):
        evaluate_source_sets(engine, shapes, parts, 2, 3, progress=False)


def test_an_auroc_with_no_missing_part_reads_n_a():
    from training.evaluate import Scores, format_table
    scores = {m: Scores(miou=90.0, pck05=50.0, pck10=80.0, auroc=float("nan"), per_part_iou={"seat": 90.0},
                        label_auroc=0.8) for m in ("model", "nn")}
    table = format_table(scores)
    assert "| n/a | 0.800 |" in table and "nan" not in table
    assert "no target has a part its sources lack" in table


def test_keypoints_looked_up_through_the_match_find_a_copys_own():
    """--lookup: each source keypoint is found as the target point whose match lies nearest
    it; on a copy of the source that is the keypoint itself, and the row has no label scores."""
    from training.devset import DEFAULT_PSB, load_devset
    from training.evaluate import format_table
    chair = load_devset("chair", DEFAULT_PSB, points=600, targets=1)[0]
    engine = Correspondence.load(category="chair")
    scores = evaluate(engine, [chair, dict(chair)], {0: "seat", 1: "back", 2: "leg", 3: "arm"}, 1,
                      progress=False, lookup=True)
    assert set(scores) == {"model", "nn", "lookup"}
    assert scores["lookup"].pck05_radius == 100.0 and np.isnan(scores["lookup"].miou)
    assert len(scores["lookup"].keypoint_errors_radius) == len(chair["keypoints"])
    row = next(line for line in format_table(scores).splitlines() if line.startswith("| model, looked up"))
    assert row.startswith("| model, looked up | n/a | ") and "nan" not in row
    from training.evaluate import format_keypoint_table
    table = format_keypoint_table(scores)
    assert "(model / looked up / nearest neighbour)" in table and "| 100.0 / 100.0 / 100.0 |" in table


def test_lookup_needs_named_keypoints(capsys):
    assert evaluate_main(["--procedural", "chair", "--count", "4", "--lookup"]) == 2
    assert "--lookup looks up named keypoints" in capsys.readouterr().err
