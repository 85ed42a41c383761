"""Correspondence on real shapes that arrive turned: the real dev set (PSB, training/devset.py)
scored upright, then with each target turned by a seeded random yaw (auto-alignment
"yaw") and by a random 3D rotation (auto-alignment True), all in one run. Prints the
model's and nearest neighbour's mIoU and PCK for each, and the turned figures as a share
of the upright ones (the aim: at least 95% under a yaw, 90% under any rotation).
Keypoints are named up to each target's turn symmetry in all three (training/symmetry.py:
a rectangular table turned back by half a turn has its front-left foot where its
back-right was), so the upright figures can lie above training.report's.

    .venv/bin/python benchmarks/bench_turned.py [--categories chair,table,airplane] [--targets N]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from model import Correspondence  # noqa: E402
from training.devset import devset_record, load_devset  # noqa: E402
from training.evaluate import evaluate, named_up_to_symmetry, turned_targets  # noqa: E402
from training.families import PART_NAMES  # noqa: E402

MODES = (("upright", False), ("yaw", "yaw"), ("any", True))
METRICS = ("miou", "pck05", "pck10")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--categories", default="chair,table,airplane")
    ap.add_argument("--targets", type=int, default=None, help="score only the first N targets of each")
    args = ap.parse_args()
    print(f"torch threads {torch.get_num_threads()}; model / nearest neighbour; share = turned / upright")
    print("| category | pose | seconds | mIoU | PCK@0.05 | PCK@0.10 | share mIoU / PCK@0.10 |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for category in args.categories.split(","):
        engine = Correspondence.load(category=category, device="cpu")
        n_sources = len(devset_record()["categories"][category]["sources"])
        shapes = named_up_to_symmetry(load_devset(category, targets=args.targets), n_sources)
        upright = None
        for name, mode in MODES:
            start = time.perf_counter()
            posed = turned_targets(shapes, n_sources, mode) if mode else shapes
            scores = evaluate(engine, posed, PART_NAMES[category], n_sources, progress=False, align=mode)
            seconds = time.perf_counter() - start
            model, nn = scores["model"], scores["nn"]
            upright = upright or model
            share = " / ".join(f"{100 * getattr(model, m) / getattr(upright, m):.0f}%" for m in ("miou", "pck10"))
            cells = " | ".join(f"{getattr(model, m):.1f} / {getattr(nn, m):.1f}" for m in METRICS)
            print(f"| {category} | {name} | {seconds:.0f} | {cells} | {share} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
