"""Imperfect point clouds, in one run: the PSB dev chairs as 2,500-point clouds, clean and
with what scans and exported files bring (stray points far off or floating near the
surface, noise, the part of a shape a scanner sees from one side or from above all
round), in the target, the source or both, scored by training/evaluate.py's protocol.
Each imperfect figure is printed as a share of the clean one measured in the same run,
and nearest neighbour's on the clean and scanned clouds as a share of the model's.

Stray points get the label -1 (a source's lend nothing; a target's count against whichever
part they are given, as any wrong point would).

    .venv/bin/python benchmarks/bench_scans.py [--targets N] [--category chair] [--only scanned]
"""
from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from model import Correspondence  # noqa: E402
from training.devset import load_devset  # noqa: E402
from training.evaluate import evaluate  # noqa: E402
from training.families import PART_NAMES  # noqa: E402

SOURCES = 3
SHARE = 0.01  # stray points added, as a share of the cloud's points


def _directions(rng: np.random.Generator, n: int) -> np.ndarray:
    d = rng.normal(size=(n, 3))
    return d / np.linalg.norm(d, axis=1, keepdims=True)


def far(points: np.ndarray, rng: np.random.Generator, share: float = SHARE) -> np.ndarray:
    """Stray points 0.75-1.5 diagonals from the bounding box's centre, in any direction."""
    n = max(1, round(share * len(points)))
    centre, diagonal = (points.max(0) + points.min(0)) / 2, np.linalg.norm(points.max(0) - points.min(0))
    return centre + _directions(rng, n) * diagonal * rng.uniform(0.75, 1.5, (n, 1))


def floating(points: np.ndarray, rng: np.random.Generator, share: float = SHARE) -> np.ndarray:
    """Stray points 0.2-0.4 diagonals off random surface points."""
    n = max(1, round(share * len(points)))
    diagonal = np.linalg.norm(points.max(0) - points.min(0))
    return points[rng.choice(len(points), n)] + _directions(rng, n) * diagonal * rng.uniform(0.2, 0.4, (n, 1))


def with_strays(shape: dict, make: Callable, seed: int) -> dict:
    points = shape["surface_points"]
    strays = make(points, np.random.default_rng(seed))
    return {**shape, "surface_points": np.r_[points, strays],
            "surface_labels": np.r_[shape["surface_labels"], np.full(len(strays), -1)]}


def noisy(shape: dict, seed: int, sigma: float = 0.005) -> dict:
    points = shape["surface_points"]
    diagonal = np.linalg.norm(points.max(0) - points.min(0))
    return {**shape, "surface_points": points + np.random.default_rng(seed).normal(size=points.shape) * sigma * diagonal}


# A scan sees a surface from where the scanner stands: a target point is kept where it lies
# within SEEN of the nearest surface along its line of sight (a z-buffer of the cloud's
# points, each drawn as a disc SPLAT across), in diagonals.
SPLAT, SEEN, PIXELS = 0.03, 0.02, 160
ONE_SIDE = [(-1.0, 0.6, -1.0)]  # front left, from above (+Y up, front -Z)
AROUND = [(-1.0, 0.6, -1.0), (1.0, 0.6, -1.0), (1.0, 0.6, 1.0), (-1.0, 0.6, 1.0)]  # walked around: no underside


def seen_from(points: np.ndarray, directions: list[tuple]) -> np.ndarray:
    """(n,) bool: the points a scanner sees from 2 diagonals off in any of the directions."""
    centre, diagonal = (points.max(0) + points.min(0)) / 2, np.linalg.norm(points.max(0) - points.min(0))
    seen = np.zeros(len(points), bool)
    for d in np.asarray(directions, float) / np.linalg.norm(directions, axis=1, keepdims=True):
        right = np.cross([0.0, 1.0, 0.0], d)
        right /= np.linalg.norm(right)
        up = np.cross(d, right)
        rel = (points - centre) / diagonal
        depth = 2.0 - rel @ d  # distance from the scanner along its view
        pixel = np.floor((np.c_[rel @ right, rel @ up] + 0.6) / 1.2 * PIXELS).astype(int)
        reach = int(np.ceil(SPLAT / 2 / 1.2 * PIXELS))
        zbuffer = np.full((PIXELS + 2 * reach,) * 2, np.inf)
        for dx in range(-reach, reach + 1):
            for dy in range(-reach, reach + 1):
                if dx * dx + dy * dy <= reach * reach:
                    np.minimum.at(zbuffer, (pixel[:, 0] + dx + reach, pixel[:, 1] + dy + reach), depth)
        seen |= depth <= zbuffer[pixel[:, 0] + reach, pixel[:, 1] + reach] + SEEN
    return seen


def scanned(shape: dict, directions: list[tuple]) -> dict:
    """The target as a scan from the directions sees it; a keypoint the scan does not
    reach (none of its points within SEEN of it) is not scored."""
    points = shape["surface_points"]
    keep = seen_from(points, directions)
    diagonal = np.linalg.norm(points.max(0) - points.min(0))
    reached = {name: at for name, at in shape["keypoints"].items()
               if np.linalg.norm(points[keep] - at, axis=1).min() <= SEEN * diagonal}
    return {**shape, "surface_points": points[keep], "surface_labels": shape["surface_labels"][keep],
            "keypoints": reached}


def variants(shapes: list[dict]) -> dict[str, list[dict]]:
    sources, targets = shapes[:SOURCES], shapes[SOURCES:]

    def each(group: list[dict], change: Callable[[dict, int], dict], first: int) -> list[dict]:
        return [change(s, first + i) for i, s in enumerate(group)]

    strays_far = lambda s, seed: with_strays(s, far, seed)  # noqa: E731
    return {
        "clean": shapes,
        "5 far points in the target": sources + each(targets, lambda s, seed: with_strays(
            s, lambda p, rng: far(p, rng, 5 / len(p)), seed), 100),
        "1% far points in the target": sources + each(targets, strays_far, 100),
        "1% far points in the source": each(sources, strays_far, 0) + targets,
        "1% far points in both": each(sources, strays_far, 0) + each(targets, strays_far, 100),
        "1% floating 0.2-0.4 off the target": sources + each(targets, lambda s, seed: with_strays(s, floating, seed), 100),
        "noise 0.5% of the diagonal, both": each(sources, noisy, 0) + each(targets, noisy, 100),
        "the target scanned from one side (front left, above)": sources + [scanned(s, ONE_SIDE) for s in targets],
        "the target scanned from four sides, above (no underside)": sources + [scanned(s, AROUND) for s in targets],
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--category", default="chair", choices=("chair", "table", "airplane"))
    ap.add_argument("--targets", type=int, default=None, help="the first N targets only (default: all)")
    ap.add_argument("--only", default="", help="only the kinds of cloud whose name holds this (and clean)")
    args = ap.parse_args(argv)
    engine = Correspondence.load(category=args.category, device="cpu")
    shapes = load_devset(args.category, targets=args.targets)
    parts = PART_NAMES[args.category]
    rows, clean = [], None
    for name, group in variants(shapes).items():
        if args.only not in name and name != "clean":
            continue
        start = time.perf_counter()
        scores = evaluate(engine, group, parts, SOURCES, progress=False)
        model = scores["model"]
        clean = clean or model
        rows.append(f"| {name} | {model.miou:.1f} ({model.miou / clean.miou:.2f}) | "
                    f"{model.pck05_radius:.1f} / {model.pck10_radius:.1f} "
                    f"({model.pck10_radius / max(clean.pck10_radius, 1e-9):.2f}) | {model.label_auroc:.3f} |")
        if name == "clean" or "scanned" in name:  # nearest neighbour holds up differently on a part of a shape
            nn = scores["nn"]
            rows.append(f"| {name}, nearest neighbour | {nn.miou:.1f} ({nn.miou / model.miou:.2f}) | "
                        f"{nn.pck05_radius:.1f} / {nn.pck10_radius:.1f} "
                        f"({nn.pck10_radius / max(model.pck10_radius, 1e-9):.2f}) | {nn.label_auroc:.3f} |")
        print(f"{name}: {time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)
    print(f"PSB {args.category}s, {len(shapes) - SOURCES} targets, {SOURCES} sources; "
          f"in brackets the share of the clean figure")
    print("| clouds | mIoU | PCK@0.05r / 0.10r | right-label AUROC |")
    print("| --- | --- | --- | --- |")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
