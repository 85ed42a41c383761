"""The rebuild distance (`Correspondence.rebuild_distance`) of real shapes under each shipped
model: the real dev sets' 2,500-point clouds (PSB chairs, tables, airplanes; Sweet Home 3D
chairs, sources included), upright; PSB's four-legged animals as they come (PSB records no
upright poses for them); and a flat sheet, a cube and a sphere.  Prints, per set and
model, the median and 90th percentile and the share above the warning threshold
(`server.client.UNLIKE_DISTANCE`), then how often the model with the smallest distance is
the set's own, with fitted codes and with E's codes (what category "auto" picks, one shape
at a time: `rebuild_distance(fitted=False)`), and the seconds a shape.

    .venv/bin/python benchmarks/bench_rebuild.py [--limit N]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import trimesh

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from model import Correspondence, shipped_categories  # noqa: E402
from model.meshio import load_mesh  # noqa: E402
from server.client import UNLIKE_DISTANCE  # noqa: E402
from training.devset import load_devset  # noqa: E402
from training.devset_sh3d import load_sh3d_devset  # noqa: E402

PSB = ROOT.parent / "shared" / "data" / "psb"
POINTS = 2500  # as the dev sets' clouds


def shape_sets(limit: int | None) -> dict[str, tuple[str | None, list[np.ndarray]]]:
    """Set name -> (its own category or None, upright point clouds)."""
    rng = np.random.default_rng(0)
    sets = {f"PSB {c}": (c, [s["surface_points"] for s in load_devset(c)]) for c in ("chair", "table", "airplane")}
    sets["Sweet Home 3D chair"] = ("chair", [s["surface_points"] for s in load_sh3d_devset("chair")])
    sets["PSB four-legged animal"] = (None, [np.asarray(load_mesh(p).sample(POINTS))
                                             for p in sorted((PSB / "fourleg").glob("*.off.gz"))])
    sets["sheet, cube, sphere"] = (None, [rng.random((POINTS, 3)) * [1, 0, 1],
                                          np.asarray(trimesh.creation.box().sample(POINTS)),
                                          np.asarray(trimesh.creation.icosphere(3).sample(POINTS))])
    return {name: (own, shapes[:limit]) for name, (own, shapes) in sets.items()}


def _own_chosen(distances: dict[str, list[float]], own: str | None, n: int) -> str:
    """How many of n shapes the model with the smallest distance is `own`'s ("-": no own)."""
    if not own:
        return "-"
    chosen = [min(distances, key=lambda c: distances[c][i]) for i in range(n)]
    return f"{sum(c == own for c in chosen)} of {n}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--limit", type=int, default=None, help="the first N shapes of each set")
    args = ap.parse_args()
    engines = {c: Correspondence.load(category=c, device="cpu") for c in shipped_categories()}
    print(f"rebuild distance (median / 90th percentile / share above {UNLIKE_DISTANCE})")
    print("| set | shapes | " + " | ".join(f"{c} model" for c in engines) + " | smallest is its own | from E's codes |")
    print("| --- | --- | " + " | ".join("---" for _ in engines) + " | --- | --- |")
    seconds, count = 0.0, 0
    for name, (own, shapes) in shape_sets(args.limit).items():
        distances, encoded = {c: [] for c in engines}, {c: [] for c in engines}
        for points in shapes:
            for c, engine in engines.items():
                prep = engine.prepare(points)
                start = time.perf_counter()
                distances[c].append(engine.rebuild_distance(prep))
                seconds, count = seconds + time.perf_counter() - start, count + 1
                encoded[c].append(engine.rebuild_distance(prep, fitted=False))
        cells = [f"{np.median(d):.3f} / {np.percentile(d, 90):.3f} / {100 * np.mean(np.array(d) > UNLIKE_DISTANCE):.0f}%"
                 for d in distances.values()]
        right = [_own_chosen(d, own, len(shapes)) for d in (distances, encoded)]
        print(f"| {name} | {len(shapes)} | " + " | ".join(cells + right) + " |", flush=True)
    print(f"{seconds / count:.2f} s a rebuild distance (after preparing)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
