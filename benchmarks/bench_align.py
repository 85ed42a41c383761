"""Auto-alignment on real meshes: accuracy per category and mode, and its time against
one `correspond` call on the same shapes, measured side by side in one run.

The PSB meshes (../shared/data/psb/{chair,table,airplane}) are made upright with
training/data/psb_rotations.json, then each is turned by a seeded random rotation: a yaw
about +Y for mode `yaw`, a uniformly random 3D rotation for mode `True`. A recovered
rotation is right when the shape's up axis is within 15 degrees of +Y and its yaw within
15 degrees, up to the shape's symmetry: a yaw error counts as a symmetry when the
upright shape turned by it (or by the nearest of 90/180/270 degrees, within 15) lies on
itself (training/symmetry.py), Chamfer distance at most 1.5 times that between two independent
samplings of its surface (a square table turned by 90 degrees, a rectangular one by 180).
Mirror symmetry is no proper rotation, so the upright frame (up and yaw) is what is compared.

    .venv/bin/python benchmarks/bench_align.py [--shapes 20] [--modes yaw,True] [--legacy] [--timing 3]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from model import Correspondence  # noqa: E402
from model.geometry import bounding_frame, cube_rotations, sample_surface  # noqa: E402
from model.preparation import encoder_input  # noqa: E402
from model.validation import as_shape  # noqa: E402
from training.evaluate import random_rotation  # noqa: E402
from training.prepare import load_psb_upright  # noqa: E402
from training.symmetry import turn_symmetry  # noqa: E402
from benchmarks.timing import side_by_side  # noqa: E402

PSB = ROOT.parent / "shared" / "data" / "psb"
CATEGORIES = ("chair", "table", "airplane")
TOLERANCE = 15.0  # degrees, for the up axis and for the yaw
SYMMETRY_SAMPLES = 4096


def upright_meshes(category: str, count: int) -> list[tuple[np.ndarray, np.ndarray]]:
    files = sorted((PSB / category).glob("*.off.gz"), key=lambda p: int(p.name.split(".")[0]))[:count]
    return [(np.asarray(m.vertices), np.asarray(m.faces)) for m in map(load_psb_upright, files)]


def symmetry_test(vertices: np.ndarray, faces: np.ndarray):
    """-> is_symmetric(yaw degrees): does the upright shape turned by that yaw lie on itself."""
    return turn_symmetry(*(sample_surface(vertices, faces, SYMMETRY_SAMPLES, seed=s)[0] for s in (0, 1)))


def pose_error(rotation: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """(up error, signed yaw error) in degrees of `rotation` (p_model = R p) for a shape
    that was upright before it was turned by `truth`."""
    m = rotation @ truth
    up = np.degrees(np.arccos(np.clip((m @ [0.0, 1.0, 0.0])[1], -1, 1)))
    front = m @ [0.0, 0.0, -1.0]
    return float(up), float(np.degrees(np.arctan2(-front[0], -front[2])))


def is_right(up: float, yaw: float, is_symmetric) -> bool:
    if up > TOLERANCE:
        return False
    near = [s for s in (0.0, 90.0, 180.0, 270.0, 360.0) if abs(yaw % 360 - s) <= TOLERANCE]
    return any(s % 360 == 0 or is_symmetric(s) for s in near) or is_symmetric(yaw)


def legacy_rotation(engine: Correspondence, shape) -> np.ndarray:
    """The method before issue #24: the 24 axis rotations, lowest self-reconstruction error
    plus distance of the surface occupancy from 0.5 (E's code of each rotated shape)."""
    shape = as_shape(shape)
    run, seed = engine.runner, engine.settings.seed
    enc = encoder_input(shape, bounding_frame(shape.vertices), engine.cfg, seed)
    probe = enc[np.random.default_rng(seed).choice(len(enc), min(512, len(enc)), replace=False), :3]
    scores = []
    for rot in cube_rotations():
        code = run.encode((enc.reshape(len(enc), -1, 3) @ rot.T).reshape(len(enc), -1))
        emb = run.f(probe @ rot.T, code)
        scores.append(((run.g(emb, code) - probe @ rot.T) ** 2).sum(1).mean() + ((emb.max(1) - 0.5) ** 2).mean())
    return cube_rotations()[int(np.argmin(scores))]


def accuracy(engine: Correspondence, meshes: list, mode: bool | str, seed: int, legacy: bool = False) -> tuple[float, float]:
    """-> (share of shapes right, mean seconds per alignment)."""
    right, seconds = 0, 0.0
    for i, (v, f) in enumerate(meshes):
        truth = random_rotation(mode, seed * 1000 + i)
        t = time.perf_counter()
        rot = legacy_rotation(engine, (v @ truth.T, f)) if legacy else engine.align((v @ truth.T, f), mode)
        seconds += time.perf_counter() - t
        right += is_right(*pose_error(rot, truth), symmetry_test(v, f))
    return right / len(meshes), seconds / len(meshes)


def timing(engine: Correspondence, meshes: list, mode: bool | str, pairs: int) -> tuple[float, float]:
    """-> (seconds of one shape's alignment, of one correspond call), interleaved on the same shapes."""
    pair = lambda i: (meshes[i % len(meshes)], meshes[(i + 1) % len(meshes)])  # noqa: E731
    return side_by_side(lambda i: engine.align(pair(i)[0], mode), lambda i: engine.correspond(*pair(i)), pairs)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--categories", default=",".join(CATEGORIES))
    ap.add_argument("--shapes", type=int, default=20)
    ap.add_argument("--modes", default="yaw,True")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--legacy", action="store_true", help="also measure the 24-rotation method it replaced")
    ap.add_argument("--timing", type=int, default=3, help="align/correspond pairs timed per category and mode")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args(argv)
    modes = [m if m == "yaw" else m == "True" for m in args.modes.split(",")]
    print(f"torch threads {torch.get_num_threads()}; tolerance {TOLERANCE} degrees (up and yaw)")
    for category in args.categories.split(","):
        engine = Correspondence.load(category=category, device=args.device)
        meshes = upright_meshes(category, args.shapes)
        for mode in modes:
            share, per_shape = accuracy(engine, meshes, mode, args.seed)
            line = f"{category} mode={mode}: within {TOLERANCE:g} deg {share:.0%} of {len(meshes)} ({per_shape:.2f} s each)"
            if args.legacy:
                line += f"; 24 axis rotations: {accuracy(engine, meshes, mode, args.seed, legacy=True)[0]:.0%}"
            if args.timing:
                a, c = timing(engine, meshes, mode, args.timing)
                line += f"; align {a:.2f} s / correspond {c:.2f} s = ratio {a / c:.2f}"
            print(line, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
