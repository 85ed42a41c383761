"""Time `Correspondence.correspond` for 10k -> 10k points with the paper-size network.

Prints the stages, then one line:
    seconds=<s> gflops=<achieved GFLOP/s> fraction=<achieved / plain torch matmul GFLOP/s>
The matmul rate is measured in the same run, so the fraction is comparable across
machines and robust to their noise.  Weights are random: timing does not depend on them.

    .venv/bin/python benchmarks/bench_engine.py [--points 10000] [--device cpu|cuda]
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

from model import Correspondence, ImplicitCorrespondenceNet, ModelConfig, preset  # noqa: E402


def f_flops(cfg: ModelConfig) -> int:
    """Per-point FLOPs of f (the per-shape half of the first layer is computed once)."""
    widths = (3, *cfg.f_hidden, cfg.n_parts)
    return 2 * sum(a * b for a, b in zip(widths[:-1], widths[1:]))


def g_flops(cfg: ModelConfig) -> int:
    w, k = cfg.g_width, cfg.n_parts
    macs = k * w + (cfg.g_layers - 2) * w * w + (w + k) * w + w * 3
    return 2 * macs


def encoder_flops(cfg: ModelConfig) -> int:
    widths = (3, *cfg.encoder_widths)
    return 2 * cfg.encoder_points * sum(a * b for a, b in zip(widths[:-1], widths[1:]))


def correspond_flops(cfg: ModelConfig, n_target: int) -> int:
    """f on the target, g to the source, f there, g back (cycle), plus two encodings."""
    return n_target * (2 * f_flops(cfg) + 2 * g_flops(cfg)) + 2 * encoder_flops(cfg)


def timed(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def matmul_gflops(device: torch.device, n: int = 4096, repeats: int = 5) -> float:
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    a @ b
    return 2 * n**3 / timed(lambda: a @ b, repeats) / 1e9


def measure(points: int = 10_000, device: str | None = None, repeats: int = 5) -> dict[str, float | str]:
    """Median seconds of one correspond, and its FLOP rate against a plain matmul timed in the same run."""
    torch.manual_seed(0)
    cfg = preset("paper")
    engine = Correspondence(ImplicitCorrespondenceNet(cfg), device=device)
    rng = np.random.default_rng(0)
    src, tgt = rng.random((points, 3)), rng.random((points, 3))
    engine.correspond(src, tgt)  # warm-up
    rate_before = matmul_gflops(engine.device)
    seconds = timed(lambda: engine.correspond(src, tgt), repeats)
    rate_after = matmul_gflops(engine.device)
    rate = max(rate_before, rate_after)
    flops = correspond_flops(cfg, points)
    achieved = flops / seconds / 1e9
    return {"device": str(engine.device), "threads": torch.get_num_threads(), "points": points,
            "work_gflop": flops / 1e9, "matmul_gflops": rate, "seconds": seconds, "gflops": achieved,
            "fraction": achieved / rate}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--points", type=int, default=10_000)
    ap.add_argument("--device", default=None)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    r = measure(args.points, args.device, args.repeats)
    print(f"device={r['device']} threads={r['threads']} points={r['points']}")
    print(f"work={r['work_gflop']:.1f} GFLOP  matmul={r['matmul_gflops']:.1f} GFLOP/s")
    print(f"seconds={r['seconds']:.3f} gflops={r['gflops']:.1f} fraction={r['fraction']:.2f}")


if __name__ == "__main__":
    main()
