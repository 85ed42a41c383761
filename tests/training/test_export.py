import numpy as np
import torch

from model import Checkpoint, Correspondence, ImplicitCorrespondenceNet, load_checkpoint, preset, save_checkpoint
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
    sigmas = ck.extra["confidence"]
    assert set(sigmas) == {"surface_sigma", "embedding_sigma", "cycle_sigma"} and min(sigmas.values()) > 0
    engine = Correspondence.load(dst, device="cpu")
    assert np.isclose(engine.surface_sigma, sigmas["surface_sigma"])
    assert "confidence sigmas" in capsys.readouterr().out
    assert export_main([str(tmp_path / "missing.pth"), str(dst)]) == 2


def test_export_sets_part_offsets_on_held_out_shapes(tmp_path, capsys):
    torch.manual_seed(0)
    net = ImplicitCorrespondenceNet(preset("tiny"))
    src = tmp_path / "Corr-3.pth"
    save_checkpoint(src, Checkpoint(preset("tiny"), net.state_dict(), "chair", stage=3, epoch=3))
    dst = tmp_path / "chair.pth"
    assert export_main([str(src), str(dst), "--calibration_shapes", "0", "--part_shapes", "3"]) == 0
    bias = load_checkpoint(dst).extra["part_bias"]
    assert len(bias) == preset("tiny").n_parts and all(-1.0 <= b <= 2.5 for b in bias)
    assert bias[4:] == [0.0] * (len(bias) - 4)  # only the chair's four parts are set
    assert Correspondence.load(dst, device="cpu").info()["part_bias"] == bias
    assert "part logit offsets" in capsys.readouterr().out
    assert export_main([str(src), str(dst), "--part_shapes", "-1"]) == 2
