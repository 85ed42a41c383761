import numpy as np
import torch

from model import Calibration, Checkpoint, Correspondence, ImplicitCorrespondenceNet, load_checkpoint, preset, save_checkpoint
from training.export import main as export_main


def test_export_drops_the_optimizer_and_calibrates_the_confidence(tmp_path, capsys):
    torch.manual_seed(0)
    net = ImplicitCorrespondenceNet(preset("tiny"))
    src = tmp_path / "Corr-9.pth"
    save_checkpoint(src, Checkpoint(preset("tiny"), net.state_dict(), "chair", stage=3, epoch=9,
                                    optimizer=torch.optim.Adam(net.parameters()).state_dict()))
    dst = tmp_path / "chair.pth"
    assert export_main([str(src), str(dst), "--calibration_shapes", "3"]) == 0
    ck = load_checkpoint(dst)
    assert ck.optimizer is None and ck.extra["exported_from"] == "Corr-9.pth"
    stored = ck.extra["calibration"]
    assert "confidence" not in ck.extra  # one record, not format 1's separate keys
    engine = Correspondence.load(dst, device="cpu")
    defaults = Calibration()
    for name in ("surface_sigma", "embedding_sigma", "cycle_sigma"):
        assert stored[name] > 0 and stored[name] != getattr(defaults, name)  # measured, not the defaults
        assert np.isclose(getattr(engine.calibration, name), stored[name])
    assert "calibration" in capsys.readouterr().out
    assert export_main([str(tmp_path / "missing.pth"), str(tmp_path / "other.pth")]) == 2
    # an existing destination (a shipped model, say) is replaced only when asked
    before = dst.read_bytes()
    assert export_main([str(src), str(dst), "--calibration_shapes", "0"]) == 2
    assert "exists; give --force" in capsys.readouterr().err and dst.read_bytes() == before
    assert export_main([str(src), str(dst), "--calibration_shapes", "0", "--force"]) == 0
    assert load_checkpoint(dst).extra["calibration"] != stored


def test_export_sets_part_offsets_on_held_out_shapes(tmp_path, capsys):
    torch.manual_seed(0)
    net = ImplicitCorrespondenceNet(preset("tiny"))
    src = tmp_path / "Corr-3.pth"
    save_checkpoint(src, Checkpoint(preset("tiny"), net.state_dict(), "chair", stage=3, epoch=3))
    dst = tmp_path / "chair.pth"
    assert export_main([str(src), str(dst), "--calibration_shapes", "0", "--part_shapes", "3"]) == 0
    bias = load_checkpoint(dst).extra["calibration"]["part_bias"]
    assert len(bias) == preset("tiny").n_parts
    assert bias[4:] == [0.0] * (len(bias) - 4)  # only the chair's four parts are set
    assert Correspondence.load(dst, device="cpu").info()["part_bias"] == bias
    assert export_main([str(src), str(dst), "--part_shapes", "-1", "--force"]) == 2
    unsupervised = tmp_path / "Corr-4.pth"
    save_checkpoint(unsupervised, Checkpoint(preset("tiny"), net.state_dict(), "chair", stage=3, epoch=4,
                                             extra={"trainer": {"losses": {"part": 0.0}}}))
    assert export_main([str(unsupervised), str(dst), "--calibration_shapes", "0", "--part_shapes", "3",
                        "--force"]) == 2
    assert "trained without part supervision" in capsys.readouterr().err


def test_a_model_of_ones_own_category_is_told_how_to_export(tmp_path, capsys):
    src, dst = tmp_path / "final.pth", tmp_path / "mine.pth"
    save_checkpoint(src, Checkpoint(preset("tiny"), ImplicitCorrespondenceNet(preset("tiny")).state_dict(), "lamp"))
    assert export_main([str(src), str(dst)]) == 2
    assert "--calibration_shapes 0" in capsys.readouterr().err and not dst.exists()
    assert export_main([str(src), str(dst), "--calibration_shapes", "0"]) == 0
    assert load_checkpoint(dst).category == "lamp"


def test_exporting_a_stage_1_checkpoint_warns_that_g_is_untrained(tmp_path):
    import pytest

    net = ImplicitCorrespondenceNet(preset("tiny"))
    src = tmp_path / "Corr-1.pth"
    save_checkpoint(src, Checkpoint(preset("tiny"), net.state_dict(), "chair", stage=1, epoch=1))
    with pytest.warns(UserWarning, match="Corr-1.pth is a stage-1 checkpoint: its inverse map g is untrained"):
        assert export_main([str(src), str(tmp_path / "chair.pth"), "--calibration_shapes", "0"]) == 0
