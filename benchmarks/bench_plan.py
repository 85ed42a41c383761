"""Labels and keypoints with and without the plan stretch of the match, side by side in one run.

`model.matching.into_part_frame` stretches each part in plan, direction by direction, out
to where the same part of the other shape reaches further, so that a round top's rim
reaches a square top's corners.  This scores the real dev sets (training/evaluate.py's
protocol: 3 sources, their estimates averaged and snapped) with the stretch and without it
(PLAN_STRETCH_LIMIT set to 1); on the chair sets also the keypoints where parts meet
(benchmarks/bench_joints.py):

    .venv/bin/python benchmarks/bench_plan.py [--sets table,airplane,chair,sh3d]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_joints import with_keypoints  # noqa: E402

from model import Correspondence, matching  # noqa: E402
from training.devset import load_devset  # noqa: E402
from training.devset_sh3d import load_sh3d_devset  # noqa: E402
from training.evaluate import evaluate  # noqa: E402
from training.families import PART_NAMES  # noqa: E402

LIMIT = matching.PLAN_STRETCH_LIMIT


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sets", default="table,airplane,chair,sh3d")
    args = ap.parse_args()
    print("model with the plan stretch / without it; mIoU, PCK over every keypoint of every target")
    print("| set | targets | seconds | mIoU | PCK@0.05 | PCK@0.10 |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name in args.sets.split(","):
        category = "chair" if name == "sh3d" else name
        engine = Correspondence.load(category=category, device="cpu")
        shapes = load_sh3d_devset("chair") if name == "sh3d" else load_devset(category)
        kinds = {name: shapes, f"{name}, where parts meet": with_keypoints(shapes)} if category == "chair" else {name: shapes}
        for kind, posed in kinds.items():
            start = time.perf_counter()
            scores = []
            for limit in (LIMIT, 1.0):
                matching.PLAN_STRETCH_LIMIT = limit
                scores.append(evaluate(engine, posed, PART_NAMES[category], 3, progress=False)["model"])
            matching.PLAN_STRETCH_LIMIT = LIMIT
            on, off = scores
            print(f"| {kind} | {len(posed) - 3} | {time.perf_counter() - start:.0f} | {on.miou:.1f} / {off.miou:.1f} | "
                  f"{on.pck05:.1f} / {off.pck05:.1f} | {on.pck10:.1f} / {off.pck10:.1f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
