import os
import pickle

import numpy as np
import pytest
import torch

from model import Checkpoint, CheckpointError, ImplicitCorrespondenceNet, load_checkpoint, preset, save_checkpoint
from model.checkpoint import FORMAT, FORMAT_VERSION


def _ckpt():
    torch.manual_seed(3)
    net = ImplicitCorrespondenceNet(preset("tiny"))
    opt = torch.optim.Adam(net.parameters(), lr=1e-4, betas=(0.5, 0.999))
    loss = net.encode(torch.rand(1, 16, 3)).sum()
    loss.backward()
    opt.step()
    return net, Checkpoint(preset("tiny"), net.state_dict(), "chair", stage=2, epoch=49, resolution=64,
                           optimizer=opt.state_dict(), extra={"note": "x", "losses": [1.0, 0.5]})


def test_round_trip(tmp_path):
    net, ck = _ckpt()
    path = tmp_path / "Corr-49.pth"
    save_checkpoint(path, ck)
    back = load_checkpoint(path)
    assert (back.category, back.stage, back.epoch, back.resolution) == ("chair", 2, 49, 64)
    assert back.config == preset("tiny") and back.extra == {"note": "x", "losses": [1.0, 0.5]}
    net2 = back.build()
    pts = torch.rand(1, 32, 3)
    assert torch.equal(net.encode(pts), net2.encode(pts))
    opt = torch.optim.Adam(net2.parameters())
    opt.load_state_dict(back.optimizer)
    assert opt.state_dict()["state"][0]["step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["Corr-49.pth"]  # no temp files left


def test_other_format_version(tmp_path):
    _, ck = _ckpt()
    path = tmp_path / "c.pth"
    save_checkpoint(path, ck)
    payload = torch.load(path, weights_only=True)
    payload["format_version"] = FORMAT_VERSION + 1
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match="format version 3; this program reads versions 1, 2"):
        load_checkpoint(path)


def test_truncated_file(tmp_path):
    _, ck = _ckpt()
    path = tmp_path / "c.pth"
    save_checkpoint(path, ck)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load_checkpoint(path)


def test_not_a_checkpoint(tmp_path):
    junk = tmp_path / "junk.pth"
    rng = np.random.default_rng(0)
    for _ in range(50):  # random bytes trip the unpickler in many different ways
        junk.write_bytes(rng.bytes(1000))
        with pytest.raises(CheckpointError):
            load_checkpoint(junk)
    other = tmp_path / "other.pth"
    torch.save({"weights": torch.zeros(2)}, other)
    with pytest.raises(CheckpointError, match=f"not an {FORMAT} file"):
        load_checkpoint(other)
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "missing.pth")
    points = tmp_path / "points.xyz"  # a mesh file given as the checkpoint
    points.write_text("0 0 0\n1 0 0\n0 1 0\n")
    with pytest.raises(CheckpointError, match=r"points.xyz is not a readable checkpoint .*: not a torch.save file"):
        load_checkpoint(points)


class _Exploit:
    def __reduce__(self):
        return (os.system, ("touch pwned",))


def test_a_checkpoint_cannot_run_code(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    evil = tmp_path / "evil.pth"
    torch.save({"format": FORMAT, "format_version": FORMAT_VERSION, "x": _Exploit()}, evil)
    with pytest.raises(CheckpointError, match="not a readable checkpoint") as refused:
        load_checkpoint(evil)
    assert not (tmp_path / "pwned").exists()
    assert "weights_only" not in str(refused.value)  # not torch's advice to load it unsafely
    assert "objects other than tensors and plain values" in str(refused.value)
    raw = tmp_path / "raw.pth"
    raw.write_bytes(pickle.dumps(_Exploit()))
    with pytest.raises(CheckpointError):
        load_checkpoint(raw)
    assert not (tmp_path / "pwned").exists()


def test_weights_that_do_not_match_the_config(tmp_path):
    _, ck = _ckpt()
    ck.config = preset("small")
    path = tmp_path / "c.pth"
    save_checkpoint(path, ck)
    with pytest.raises(CheckpointError, match="do not match"):
        load_checkpoint(path).build()


def test_a_payload_of_the_wrong_kinds_inside_is_a_checkpoint_error(tmp_path):
    net, ck = _ckpt()
    path = tmp_path / "c.pth"
    save_checkpoint(path, ck)
    payload = torch.load(path, weights_only=True)
    for change in ({"state_dict": None}, {"state_dict": [1, 2]},
                   {"config": {**payload["config"], "encoder_widths": 5}}):
        torch.save({**payload, **change}, path)
        with pytest.raises(CheckpointError):
            load_checkpoint(path).build()


def test_a_checkpoint_in_torchs_older_format_still_loads(tmp_path):
    _, ck = _ckpt()
    path = tmp_path / "c.pth"
    save_checkpoint(path, ck)
    legacy = tmp_path / "legacy.pth"
    torch.save(torch.load(path, weights_only=True), legacy, _use_new_zipfile_serialization=False)
    assert load_checkpoint(legacy).category == load_checkpoint(path).category
