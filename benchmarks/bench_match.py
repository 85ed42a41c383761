"""The match's settings at the bounding radius's scale, side by side in one run.

Keypoints that must land within 0.05 of a shape's bounding radius (about 0.025 of its
diagonal; KeypointNet's and PDC's scale) are where the shipped match was tuned on
2026-12-04 and 2026-12-05 (docs/models.md, *Real shapes first*).  This scores the real dev
sets (training/evaluate.py's protocol: 3 sources, their estimates averaged and snapped;
`--source_sets 3`: three sets of sources in turn, pooled) with the shipped match, without
the outward move of extreme points' matches (`model.matching.outward`), with that move
free to slide sideways (`OUTWARD_SIDEWAYS` 0), without the extremity feature
(`EXTREMITY_WEIGHT` 0), and with the checkpoint's whole embedding weight when no labels
are given (`UNLABELLED_EMBEDDING_SHARE` 1).  The keypoints are matched without labels,
label transfer with them (and without the outward move):

    .venv/bin/python benchmarks/bench_match.py [--sets chair,sh3d,table,airplane] [--source_sets 3]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from model import Correspondence, matching  # noqa: E402
from training.devset import load_devset  # noqa: E402
from training.devset_sh3d import load_sh3d_devset  # noqa: E402
from training.evaluate import evaluate_source_sets  # noqa: E402
from training.families import PART_NAMES  # noqa: E402

# Each variant: the module constants of model/matching.py it sets.
VARIANTS = {"shipped": {}, "no outward move": {"OUTWARD_EXTREMITY": float("inf")},
            "outward move without the sideways cost": {"OUTWARD_SIDEWAYS": 0.0},
            "no extremity": {"EXTREMITY_WEIGHT": 0.0},
            "whole embedding weight without labels": {"UNLABELLED_EMBEDDING_SHARE": 1.0}}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sets", default="chair,sh3d,table,airplane")
    ap.add_argument("--source_sets", type=int, default=1)
    args = ap.parse_args()
    print(f"model: {' / '.join(VARIANTS)}; PCK@0.05r and 0.10r: within 0.05 and 0.10 of the bounding radius")
    print("| set | targets | seconds | weight shipped | mIoU | PCK@0.05r | PCK@0.10r |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name in args.sets.split(","):
        category = "chair" if name == "sh3d" else name
        engine = Correspondence.load(category=category, device="cpu")
        shapes = load_sh3d_devset("chair") if name == "sh3d" else load_devset(category)
        start = time.perf_counter()
        scores = []
        for overrides in VARIANTS.values():
            shipped = {key: getattr(matching, key) for key in overrides}
            for key, value in overrides.items():
                setattr(matching, key, value)
            try:
                scores.append(evaluate_source_sets(engine, shapes, PART_NAMES[category], 3, args.source_sets,
                                                   progress=False)["model"])
            finally:
                for key, value in shipped.items():
                    setattr(matching, key, value)
        cells = [" / ".join(f"{getattr(s, m):.1f}" for s in scores) for m in ("miou", "pck05_radius", "pck10_radius")]
        print(f"| {name} | {len(shapes) - 3} | {time.perf_counter() - start:.0f} | "
              f"{engine.calibration.embedding_weight} | " + " | ".join(cells) + " |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
