"""The CUDA path, where a GPU is present: the engine, the trainer and the server on the GPU
give what they give on the CPU. Skipped on machines without CUDA."""
import numpy as np
import pytest
import torch

from model import Correspondence, load_checkpoint
from model.engine import CHECKPOINT_DIR
from server.client import Client
from training.evaluate import procedural_shapes
from training.prepare import prepare_procedural
from training.trainer import TrainConfig, Trainer

from .server.conftest import ServerProcess

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")


@pytest.fixture(scope="module")
def chairs():
    return procedural_shapes("chair", 3, first=2_000_000)


@pytest.fixture(scope="module")
def engines():
    return {dev: Correspondence.load(category="chair", device=dev) for dev in ("cpu", "cuda")}


def test_cuda_is_chosen_by_itself():
    assert Correspondence.load(category="chair").device.type == "cuda"


def test_shipped_model_agrees_on_cuda_and_cpu(engines, chairs):
    src, tgt = chairs[0]["surface_points"], chairs[1]["surface_points"]
    labels = chairs[0]["surface_labels"]
    out = {}
    for dev, e in engines.items():
        res = e.correspond(src, tgt)
        out[dev] = (e.segment(tgt), e.labels_from(res, e.prepare(src), labels)[0], res)
    (seg_c, lab_c, res_c), (seg_g, lab_g, res_g) = out["cpu"], out["cuda"]
    # fitting the code is an optimisation: float rounding may move a few boundary points
    assert np.mean(seg_c == seg_g) > 0.99
    assert np.mean(lab_c == lab_g) > 0.98
    assert np.median(np.linalg.norm(res_c.mapped - res_g.mapped, axis=1)) < 0.01
    assert np.mean(np.abs(res_c.confidence - res_g.confidence)) < 0.02


def test_reconstruction_agrees_on_cuda_and_cpu(engines, chairs):
    pts = chairs[2]["surface_points"]
    cpu, gpu = (engines[d].reconstruct(pts, resolution=48) for d in ("cpu", "cuda"))
    assert len(gpu.faces) > 100 and abs(len(gpu.vertices) - len(cpu.vertices)) < 0.02 * len(cpu.vertices)


def test_trainer_runs_on_cuda_and_its_checkpoint_loads_on_cpu(tmp_path):
    prepare_procedural("chair", 4, tmp_path / "data", workers=1)
    cfg = TrainConfig(cate_name="chair", data_dir=str(tmp_path / "data"), checkpoint_dir=str(tmp_path / "run"),
                      preset="tiny", batch_size=4, lr=1e-3, augment=False, progress=False, occupancy_points=512,
                      surface_points=256, val_fraction=0.25, stage=3, resolution=32, epoch=3, device="cuda")
    path = Trainer(cfg).run()
    ck = load_checkpoint(path)
    assert ck.stage == 3 and ck.epoch == 2
    assert np.isfinite(ck.extra["history"][-1]["train_total"])
    e = Correspondence.load(path, device="cpu")
    assert e.segment(np.random.default_rng(0).random((300, 3))).shape == (300,)


def test_server_serves_from_cuda(engines, chairs):
    proc = ServerProcess(CHECKPOINT_DIR / "chair.pth", "--device", "cuda").wait_ready(timeout=120)
    try:
        with Client(proc.address, timeout=60) as c:
            assert c.info()["device"].startswith("cuda")
            parts = c.segment(chairs[0]["surface_points"])
            want = engines["cpu"].segment(chairs[0]["surface_points"])
            assert np.mean(parts == want) > 0.99
    finally:
        proc.stop()
