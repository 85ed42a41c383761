"""Time one training step (forward, backward, Adam) of each stage, side by side in one run.

Rounds alternate stage 1, 2, 3 so machine drift hits all alike; prints the median step
time per stage and ends with one line:
    stage1_s=<s> stage2_ratio=<stage 2 / stage 1> stage3_ratio=<stage 3 / stage 1>
Samples are random points of the trainer's shapes and sizes: timing does not depend on them.

    .venv/bin/python benchmarks/bench_training.py [--preset small|paper] [--batch 16] [--device cpu|cuda]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from model import ImplicitCorrespondenceNet, default_device, preset  # noqa: E402
from model.losses import LossWeights  # noqa: E402
from training.loop import make_batch, make_optimizer, train_step  # noqa: E402

STAGES = (1, 2, 3)


def random_samples(count: int, rng: np.random.Generator, n_surface: int = 4096, n_occ: int = 8192) -> list[dict]:
    out = []
    for _ in range(count):
        normals = rng.normal(size=(n_surface, 3))
        out.append({
            "surface_points": rng.uniform(-0.3, 0.3, (n_surface, 3)),
            "surface_normals": normals / np.linalg.norm(normals, axis=1, keepdims=True),
            "surface_labels": rng.integers(0, 4, n_surface),
            "occ_points_64": rng.uniform(-0.5, 0.5, (n_occ, 3)),
            "occ_values_64": (rng.random(n_occ) < 0.2).astype(np.float32),
        })
    return out


def measure(network: str = "small", batch_size: int = 16, device: str | None = None,
            repeats: int = 5) -> dict[str, float | str]:
    """Median seconds of one training step per stage, and each stage's ratio to stage 1."""
    torch.manual_seed(0)
    dev = torch.device(device or default_device())
    net = ImplicitCorrespondenceNet(preset(network)).to(dev)
    opt = make_optimizer(net, 1e-4)
    rng = np.random.default_rng(0)
    samples = random_samples(batch_size, rng)
    weights = LossWeights(part=0.2)

    def step(stage: int) -> float:
        batch = make_batch(samples, rng, 64, net.cfg.encoder_points, device=dev)
        t = time.perf_counter()
        train_step(net, opt, batch, stage, weights)
        if dev.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - t

    for stage in STAGES:  # warm-up
        step(stage)
    times: dict[int, list[float]] = {s: [] for s in STAGES}
    for _ in range(repeats):
        for stage in STAGES:
            times[stage].append(step(stage))
    med = {s: statistics.median(v) for s, v in times.items()}
    return {"device": str(dev), "network": network, "batch_size": batch_size, "stage1_s": med[1],
            "stage2_s": med[2], "stage3_s": med[3], "stage2_ratio": med[2] / med[1],
            "stage3_ratio": med[3] / med[1]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="small", choices=("tiny", "small", "paper"))
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--device", default=None)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    r = measure(args.preset, args.batch, args.device, args.repeats)
    print(f"device={r['device']} network={r['network']} batch={r['batch_size']}")
    for s in STAGES:
        print(f"stage {s}: {r[f'stage{s}_s']:.3f} s/step")
    print(f"stage1_s={r['stage1_s']:.3f} stage2_ratio={r['stage2_ratio']:.2f} stage3_ratio={r['stage3_ratio']:.2f}")


if __name__ == "__main__":
    main()
