"""Chair keypoints where parts meet and mid-part, beside the dev sets' extreme points, in one run.

The dev sets' keypoints are extreme points (feet, the corners of a back and of a seat's
front, wing tips), which nearest neighbour already finds 64-74% of the time at 0.05.  This
derives, from each dev chair's labelled points, keypoints of another kind: where parts
meet (each leg's top, the seat's back corners, the bottom corners of the back, where each
arm meets the back) and mid-part points (the middle of the seat, of its front edge, of the
back's top).  They are made by rule from the labels, so they are only as consistent as the
labels (a swivel base's four leg tops are all at its column), and are for measuring only.
A third kind leans on the labels less: the creases where the seat's top meets the back's
front, one each side (`crease_keypoints`), found from where the surfaces stand rather than
where the label boundary runs.  Every kind is scored with training/evaluate.py's protocol
(3 sources, their estimates averaged and snapped), on the PSB chairs and the Sweet Home 3D
chairs, model against nearest neighbour.  With `--model_parts` the second and third kinds
come from the model's own segmentation (`engine.segment`) instead of the labels: what the
match scores where the part boundaries are its own.

    .venv/bin/python benchmarks/bench_joints.py [--sets psb,sh3d] [--targets N] [--per_keypoint] [--model_parts]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from scipy.spatial import cKDTree

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from model import Correspondence  # noqa: E402
from training.devset import load_devset  # noqa: E402
from training.devset_sh3d import load_sh3d_devset  # noqa: E402
from training.evaluate import evaluate  # noqa: E402
from training.families import PART_NAMES  # noqa: E402

SEAT, BACK, LEG, ARM = 0, 1, 2, 3
MID_BAND = 0.03  # points this close to a part's middle plane (x, diagonal 1) count as on it
CREASE_BAND = 0.1  # how far above the seat's top the back's front is read, and how near it the seat's side
CREASE_FEWEST = 3  # the fewest points a crease's back band or seat band must hold
SIDES = {"left": -1.0, "right": 1.0}
ENDS = {"front": -1.0, "back": 1.0}


def _extreme(points: np.ndarray, direction) -> np.ndarray:
    return points[np.argmax(points @ np.asarray(direction, float))]


def joint_keypoints(points: np.ndarray, labels: np.ndarray) -> dict[str, np.ndarray]:
    """Named keypoints where a chair's parts meet and mid-part (model frame: +Y up, front -Z,
    right +X as seen sitting on it), from its labelled points."""
    seat, back, leg, arm = (points[labels == part] for part in (SEAT, BACK, LEG, ARM))
    out = {}
    for side, sx in SIDES.items():
        if len(seat):
            out[f"seat_back_{side}"] = _extreme(seat, (sx, 0.3, 1))
        if len(back):
            out[f"back_bottom_{side}"] = _extreme(back, (sx, -1, -0.3))
        if len(leg):  # each leg's top: the highest leg point in its quadrant around the legs' centre
            centre = leg.mean(0)
            for end, sz in ENDS.items():
                quadrant = leg[((leg[:, 0] - centre[0]) * sx > 0) & ((leg[:, 2] - centre[2]) * sz > 0)]
                if len(quadrant):
                    out[f"leg_top_{end}_{side}"] = quadrant[np.argmax(quadrant[:, 1])]
        on_side = arm[arm[:, 0] * sx > 0] if len(arm) else arm
        if len(on_side):
            out[f"arm_back_{side}"] = _extreme(on_side, (0, 0.5, 1))
    if len(back):
        middle = back[np.abs(back[:, 0] - back[:, 0].mean()) < MID_BAND]
        if len(middle):
            out["back_top_middle"] = _extreme(middle, (0, 1, 0))
    if len(seat):
        out["seat_middle"] = seat[np.argmin(np.linalg.norm(seat - seat.mean(0), axis=1))]
        middle = seat[np.abs(seat[:, 0] - seat[:, 0].mean()) < MID_BAND]
        if len(middle):
            out["seat_front_middle"] = _extreme(middle, (0, 0.3, -1))
    return out


def crease_keypoints(points: np.ndarray, labels: np.ndarray) -> dict[str, np.ndarray]:
    """Where the seat's top meets the back's front, each side: the surface point nearest the
    seat's top (its 95th percentile in height), the back's front just above it (the 5th
    percentile in depth of the back within CREASE_BAND above the seat, on that side) and the
    seat's side there (its 98th percentile outwards within CREASE_BAND of that depth)."""
    seat, back = points[labels == SEAT], points[labels == BACK]
    if len(seat) < CREASE_FEWEST or len(back) < CREASE_FEWEST:
        return {}
    middle, top = np.median(seat[:, 0]), np.percentile(seat[:, 1], 95)
    tree, out = cKDTree(points), {}
    for side, sx in SIDES.items():
        band = back[(back[:, 1] > top) & (back[:, 1] < top + CREASE_BAND) & ((back[:, 0] - middle) * sx > 0)]
        if len(band) < CREASE_FEWEST:
            continue
        front = np.percentile(band[:, 2], 5)
        beside = seat[np.abs(seat[:, 2] - front) < CREASE_BAND]
        if len(beside) < CREASE_FEWEST:
            continue
        reach = np.percentile((beside[:, 0] - middle) * sx, 98)
        out[f"crease_{side}"] = points[tree.query([middle + sx * reach, top, front])[1]]
    return out


def with_keypoints(shapes: list[dict], rule=None, labels: list[np.ndarray] | None = None) -> list[dict]:
    """The shapes with the keypoints of `rule` (default `joint_keypoints`) in place of theirs,
    from `labels` (default each shape's own)."""
    rule = rule or joint_keypoints
    labels = labels if labels is not None else [s["surface_labels"] for s in shapes]
    return [{**s, "keypoints": rule(s["surface_points"], lab)} for s, lab in zip(shapes, labels)]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sets", default="psb,sh3d")
    ap.add_argument("--targets", type=int, default=None, help="score only the first N targets of each")
    ap.add_argument("--per_keypoint", action="store_true", help="also each keypoint's PCK at the radius")
    ap.add_argument("--model_parts", action="store_true",
                    help="derive the joints and creases from the model's segmentation, not the labels")
    args = ap.parse_args()
    engine = Correspondence.load(category="chair", device="cpu")
    loaders = {"psb": lambda: load_devset("chair", targets=args.targets),
               "sh3d": lambda: load_sh3d_devset("chair", targets=args.targets)}
    print("chair model / nearest neighbour; PCK over every keypoint of every target")
    print("| set | keypoints | targets | seconds | PCK@0.05 | PCK@0.10 | PCK@0.05r | PCK@0.10r | keypoints scored |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for name in args.sets.split(","):
        shapes = loaders[name]()
        labels = ([engine.segment(s["surface_points"]) for s in shapes] if args.model_parts
                  else [s["surface_labels"] for s in shapes])
        for kind, posed in (("extreme (the dev set's)", shapes),
                            ("joints and mid-part", with_keypoints(shapes, joint_keypoints, labels)),
                            ("seat-back creases", with_keypoints(shapes, crease_keypoints, labels))):
            start = time.perf_counter()
            scores = evaluate(engine, posed, PART_NAMES["chair"], 3, progress=False)
            model, nn = scores["model"], scores["nn"]
            print(f"| {name} | {kind} | {len(shapes) - 3} | {time.perf_counter() - start:.0f} | "
                  f"{model.pck05:.1f} / {nn.pck05:.1f} | {model.pck10:.1f} / {nn.pck10:.1f} | "
                  f"{model.pck05_radius:.1f} / {nn.pck05_radius:.1f} | "
                  f"{model.pck10_radius:.1f} / {nn.pck10_radius:.1f} | {len(model.pck_errors)} |", flush=True)
            if args.per_keypoint:
                for key, errors in model.keypoint_errors_radius.items():
                    near = nn.keypoint_errors_radius.get(key, np.zeros(0))
                    print(f"|  | {key} | | | | | {100 * np.mean(errors < 0.05):.1f} / "
                          f"{100 * np.mean(near < 0.05):.1f} | {100 * np.mean(errors < 0.10):.1f} / "
                          f"{100 * np.mean(near < 0.10):.1f} | {len(errors)} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
