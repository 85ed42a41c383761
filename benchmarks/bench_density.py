"""Point clouds dense in places, in one run: the Sweet Home 3D dev chairs sampled evenly
(2,500 area-uniform points, as the dev sets are) and per face (each face as likely as any
other, so the points crowd where the artist's mesh is finely tessellated: weighed by
area, 0.08-0.58 of them count), scored by training/evaluate.py's protocol. Beside
the engine (an uneven cloud read by each point's area, model/density.py) it scores the
engine reading every point alike, and nearest neighbour, and prints each uneven figure as
a share of the even one.

    .venv/bin/python benchmarks/bench_density.py [--targets N]
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

import model.preparation as preparation  # noqa: E402
import training.devset_sh3d as devset_sh3d  # noqa: E402
from model import Correspondence  # noqa: E402
from training.devset import dev_shape  # noqa: E402
from training.evaluate import evaluate  # noqa: E402
from training.families import PART_NAMES  # noqa: E402

SEED = 0


def per_face_shape(name: str, mesh: trimesh.Trimesh, face_labels: np.ndarray, keypoints: dict, points: int) -> dict:
    """As training.devset.dev_shape, but each point on a face drawn with equal chances."""
    rng = np.random.default_rng(SEED)
    face = rng.integers(0, len(mesh.faces), points)
    corners = np.asarray(mesh.vertices)[np.asarray(mesh.faces)[face]]
    u, v = rng.random((2, points, 1))
    flip = (u + v) > 1
    u, v = np.where(flip, 1 - u, u), np.where(flip, 1 - v, v)
    at = corners[:, 0] + u * (corners[:, 1] - corners[:, 0]) + v * (corners[:, 2] - corners[:, 0])
    return {"name": name, "surface_points": at, "surface_labels": face_labels[face],
            "keypoints": {k: np.asarray(p, dtype=np.float64) for k, p in keypoints.items()}}


def load(sampler, targets: int | None) -> list[dict]:
    devset_sh3d.dev_shape = sampler
    try:
        return devset_sh3d.load_sh3d_devset("chair", targets=targets)
    finally:
        devset_sh3d.dev_shape = dev_shape


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--targets", type=int, default=None, help="score only the first N targets")
    args = ap.parse_args()
    engine = Correspondence.load(category="chair", device="cpu")
    clouds = {"even": load(dev_shape, args.targets), "per face": load(per_face_shape, args.targets)}
    by_area, rows = preparation.cloud_areas, {}
    for method, areas in (("engine", by_area), ("every point alike", lambda shape: None)):
        preparation.cloud_areas = areas
        for sampling, shapes in clouds.items():
            start = time.perf_counter()
            scores = evaluate(engine, shapes, PART_NAMES["chair"], 3, progress=False)
            rows.setdefault(method, {})[sampling] = scores["model"]
            rows.setdefault("nearest neighbour", {})[sampling] = scores["nn"]  # the same in every run
            print(f"{method}, {sampling}: {time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)
    preparation.cloud_areas = by_area
    print(f"Sweet Home 3D chairs, {len(clouds['even']) - 3} targets, 3 sources; mIoU, PCK@0.05, PCK@0.10")
    print("| method | even | per face | per face / even |")
    print("| --- | --- | --- | --- |")
    for method in rows:
        even, uneven = rows[method]["even"], rows[method]["per face"]
        cells = [" / ".join(f"{getattr(s, m):.1f}" for m in ("miou", "pck05", "pck10")) for s in (even, uneven)]
        ratio = " / ".join(f"{getattr(uneven, m) / getattr(even, m):.2f}" for m in ("miou", "pck05", "pck10"))
        print(f"| {method} | {cells[0]} | {cells[1]} | {ratio} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
