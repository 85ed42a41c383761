import json
from pathlib import Path

import numpy as np
import pytest
import torch

from model import Checkpoint, Correspondence, ImplicitCorrespondenceNet, preset, save_checkpoint
from training.report import THRESHOLDS, main as report_main, pck_curve

PSB = Path(__file__).resolve().parents[3] / "shared" / "data" / "psb"


def test_pck_curve_counts_errors_below_each_threshold():
    errors = np.array([0.01, 0.04, 0.06, 0.2, 0.5])
    curve = pck_curve(errors)
    assert curve[0] == 0
    assert curve[np.searchsorted(THRESHOLDS, 0.05)] == pytest.approx(40.0)
    assert curve[-1] == pytest.approx(80.0)
    assert np.all(np.diff(curve) >= 0)
    assert np.isnan(pck_curve(np.zeros(0))).all()


def test_report_of_the_shipped_chair_model(tmp_path, capsys):
    out = tmp_path / "evaluation"
    assert report_main(["--category", "chair", "--count", "8", "--real_targets", "4", "--out", str(out),
                        "--psb", str(PSB)]) == 0
    page = (out / "chair.md").read_text()
    for name in ("chair_real_pck.png", "chair_real_confidence.png", "chair_pck.png", "chair_confidence.png",
                 "chair_psb.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
        assert f"]({name})" in page
    summary = json.loads((out / "chair.json").read_text())
    # real shapes come first, in the page and in the summary
    assert page.index("## Real shapes") < page.index("## Procedural shapes")
    rows = [line for line in page.splitlines() if line.startswith("| model |")]
    assert f"{summary['real']['model']['miou']:.1f}" in rows[0]
    assert f"{summary['procedural']['model']['miou']:.1f}" in rows[-1]
    # then the Sweet Home 3D chairs, where their packages are in the cache
    if summary["real_sh3d"] is not None:
        assert f"{summary['real_sh3d']['model']['miou']:.1f}" in rows[1] and len(rows) == 3
        assert page.index("## Real shapes") < page.index("### Sweet Home 3D chairs") < page.index("## Procedural")
        assert "4 artist-made Sweet Home 3D chairs" in page
    assert "4 PSB chair meshes" in page and "5 held-out procedural chair targets" in page
    for part in ("real", "procedural"):
        assert summary[part]["model"]["miou"] > summary[part]["nn"]["miou"]
    out_text = capsys.readouterr().out
    assert "real dev set:" in out_text and "wrote" in out_text


def test_report_without_psb_meshes_skips_the_picture(tmp_path):
    engine = Correspondence.load(category="chair", device="cpu")
    from training.report import write_report

    write_report(engine, "chair", "chair.pth", tmp_path, count=5, psb=tmp_path / "missing", progress=False,
                 real_targets=1)
    assert not (tmp_path / "chair_psb.png").exists() and not (tmp_path / "chair_real_pck.png").exists()
    page = (tmp_path / "chair.md").read_text()
    assert "was not found: no real figures" in page and "Transfers onto real meshes" not in page


def test_report_names_a_missing_checkpoint(tmp_path, capsys):
    assert report_main(["--checkpoint", str(tmp_path / "nope.pth"), "--out", str(tmp_path)]) == 2
    assert "nope.pth" in capsys.readouterr().err
    assert report_main(["--real_targets", "0", "--out", str(tmp_path)]) == 2
    assert "--real_targets must be >= 1" in capsys.readouterr().err
    assert report_main(["--count", "3", "--out", str(tmp_path)]) == 2  # refused before any work
    assert "--count 3, --sources 3" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_a_report_of_ones_own_checkpoint_goes_beside_it_and_says_how_it_was_made(tmp_path):
    torch.manual_seed(0)
    path = tmp_path / "run" / "final.pth"
    save_checkpoint(path, Checkpoint(preset("tiny"), ImplicitCorrespondenceNet(preset("tiny")).state_dict(), "chair", stage=3))
    args = ["--category", "chair", "--checkpoint", str(path), "--count", "5", "--real_targets", "1",
            "--psb", str(tmp_path / "no_psb")]
    assert report_main(args) == 0
    page = (tmp_path / "run" / "report" / "chair.md").read_text()
    assert f"Reproduce: `python -m training.report {' '.join(args)}`" in page


def test_a_checkpoint_trained_on_dev_shapes_is_warned_about(tmp_path, capsys):
    from training.report import warn_if_trained_on_devset

    path = tmp_path / "mine.pth"
    net = ImplicitCorrespondenceNet(preset("tiny"))
    save_checkpoint(path, Checkpoint(preset("tiny"), net.state_dict(), "chair", stage=3,
                                     extra={"trained_on": ["101", "sh3d-scopia-chair", "chair_0000007"]}))
    engine = Correspondence.load(path, device="cpu")
    assert warn_if_trained_on_devset(engine, "chair") == ["101", "sh3d-scopia-chair"]
    assert "trained on 2 shape(s) of the chair dev sets" in capsys.readouterr().err
    assert warn_if_trained_on_devset(engine, "table") == []
