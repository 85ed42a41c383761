"""Make a shippable checkpoint: drop the optimizer state, keep weights, config and history,
and calibrate the confidence on held-out procedural shapes.

    python -m training.export runs/chair/final.pth model/checkpoints/chair.pth

Calibration: the confidence is exp(-1/2 sum_i (d_i / sigma_i)^2) over the surface,
embedding and cycle distances d_i (see model/engine.py).  Each sigma_i is set from the
distances of points whose part exists on the other shape, so that such a point at the
90th percentile of all three distances gets confidence 0.5; a point of a part the other
shape lacks lands further away and scores lower.

`--fit_steps N` makes fitting each shape's code to its surface (model/fitting.py) the
checkpoint's default at inference; the confidence is E's code's either way.
`--embedding_weight W` stores the weight of the part embedding against position in the
match (the engine's `embedding_weight`, 0.5 unless stored): a network whose embedding
varies faster across a part places matches better with a lower one.  Calibration matches
without labels, at `model.matching.UNLABELLED_EMBEDDING_SHARE` of it.
`--part_shapes N` sets per-part logit offsets (the engine's `part_bias`): those that
maximise `segment()`'s mIoU on N held-out procedural shapes of the category, found one
part at a time.  A small part f gives too little of its border to (an airplane's engines
against the wings) gets a positive one.
"""
from __future__ import annotations

import argparse
import math
import sys
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from model.checkpoint import Checkpoint, CheckpointError, load_checkpoint, save_checkpoint
from model.settings import Calibration

from .families import FAMILIES

CALIBRATION_SEEDS = 3_000_000  # apart from training (0...) and the evaluation seeds (1_000_000..., 2_000_000...)


def calibrate(ck: Checkpoint, count: int = 16, **engine_kwargs: float) -> dict[str, float]:
    """Sigmas from `count` consecutive pairs of held-out procedural shapes."""
    from model import Correspondence
    from training.evaluate import procedural_shapes

    engine = Correspondence(ck.build("cpu"), "cpu", ck.category, **engine_kwargs)
    shapes = procedural_shapes(ck.category, count + 1, first=CALIBRATION_SEEDS)
    dists: list[list[np.ndarray]] = [[], [], []]
    for src, tgt in zip(shapes[:-1], shapes[1:]):
        res = engine.correspond(src["surface_points"], tgt["surface_points"])
        exists = np.isin(tgt["surface_labels"], src["surface_labels"])
        for acc, d in zip(dists, (res.surface_distance, res.embedding_distance, res.cycle_distance)):
            acc.append(d[exists])
    scale = math.sqrt(2 * math.log(2) / 3)  # each of three terms at its q90 contributes ln(2)/3
    q90 = [float(np.quantile(np.concatenate(d), 0.9)) for d in dists]
    return {f"{k}_sigma": max(q / scale, 1e-4) for k, q in zip(("surface", "embedding", "cycle"), q90)}


# where format-1 exports kept the calibration, now one `calibration` record
FORMAT_1_KEYS = ("confidence", "fit_steps", "embedding_weight", "part_bias")
BIAS_GRID = np.arange(-1.0, 2.51, 0.25)


def calibrate_parts(ck: Checkpoint, count: int, fit_steps: int = 0, progress: bool = True) -> list[float]:
    """Per-branch logit offsets maximising `segment()`'s mean mIoU over `count` held-out
    procedural shapes: two passes over the labelled parts, each offset from BIAS_GRID
    with the others fixed (ties to the smallest offset)."""
    from tqdm import tqdm

    from model import Correspondence
    from model.parts import present
    from model.runner import branch_logits
    from training.evaluate import procedural_shapes, shape_miou
    from training.families import PART_NAMES

    if ck.category not in PART_NAMES:
        raise ValueError(f"--part_shapes needs a procedural category, not {ck.category!r}")
    parts = PART_NAMES[ck.category]
    engine = Correspondence(ck.build("cpu"), "cpu", ck.category, fit_steps=fit_steps)
    logits, labels = [], []
    for shape in tqdm(procedural_shapes(ck.category, count, first=CALIBRATION_SEEDS), desc="part offsets",
                      unit="shape", disable=not progress):
        prep = engine.prepare(shape["surface_points"])
        logits.append(branch_logits(engine.runner.f(prep.points, prep.code)))
        labels.append(shape["surface_labels"])

    def score(bias: np.ndarray) -> float:
        total = 0.0
        for lg, lab in zip(logits, labels):
            adjusted = lg + bias
            presence = np.bincount(adjusted.argmax(1), minlength=len(bias)) / len(adjusted)
            total += shape_miou(np.where(present(presence), adjusted, -np.inf).argmax(1), lab, parts)[0]
        return total / len(logits)

    bias = np.zeros(ck.config.n_parts)
    for _ in range(2):
        for part in parts:
            trials = []
            for value in sorted(BIAS_GRID, key=abs):
                bias[part] = value
                trials.append((score(bias), value))
            bias[part] = max(trials, key=lambda t: t[0])[1]  # max keeps the first (smallest) of ties
    return bias.tolist()


def export(src: Path, dst: Path, calibration_shapes: int = 16, fit_steps: int = 0,
           embedding_weight: float | None = None, part_shapes: int = 0) -> dict[str, Any]:
    """Write the shippable checkpoint; `fit_steps` (and `embedding_weight`, where given)
    become the engine's defaults for it, as do offsets from `part_shapes` shapes.
    -> the calibration record stored (model/settings.py `Calibration`)."""
    weight = {} if embedding_weight is None else {"embedding_weight": float(embedding_weight)}
    Calibration(fit_steps=fit_steps, **weight)  # a bad setting fails before loading and calibrating
    if part_shapes < 0:
        raise ValueError(f"--part_shapes must be >= 0, got {part_shapes}")
    ck = load_checkpoint(src)
    if ck.stage == 1:  # said here too: the engine says it again each time the export is loaded
        warnings.warn(f"{src} is a stage-1 checkpoint: its inverse map g is untrained, so the exported model's "
                      "confidences mean nothing; export a checkpoint of stage 2 or 3", stacklevel=2)
    if (calibration_shapes or part_shapes) and ck.category not in FAMILIES:
        raise ValueError(f"{src} is a {ck.category!r} model, and calibration draws held-out shapes from a "
                         f"procedural family ({', '.join(sorted(FAMILIES))}): pass --calibration_shapes 0 "
                         f"(and no --part_shapes) to export it with the engine's default confidence")
    trained = ((ck.extra.get("trainer") or {}).get("losses") or {}).get("part")
    if part_shapes and trained == 0:  # unsupervised: f's branch i need not be part i
        raise ValueError(f"{src} was trained without part supervision, so its branches are not the parts' labels "
                         f"that --part_shapes scores them by: leave it out")
    ck.optimizer = None
    bias = {"part_bias": calibrate_parts(ck, part_shapes, fit_steps)} if part_shapes else {}
    confidence = calibrate(ck, calibration_shapes, **weight, **bias) if calibration_shapes else {}
    calibration = Calibration(fit_steps=fit_steps, **weight, **bias, **confidence)
    # re-exporting a shipped checkpoint keeps the name of the training checkpoint behind it
    extra = {k: v for k, v in ck.extra.items() if k not in FORMAT_1_KEYS}
    ck.extra = {**extra, "exported_from": ck.extra.get("exported_from", src.name),
                "calibration": calibration.to_dict()}
    save_checkpoint(dst, ck)
    return ck.extra["calibration"]


def main(argv: Iterable[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m training.export", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("source", type=Path)
    ap.add_argument("destination", type=Path)
    ap.add_argument("--calibration_shapes", type=int, default=16, help="0: keep the engine's default sigmas")
    ap.add_argument("--fit_steps", type=int, default=0,
                    help="default steps fitting each shape's code to its surface at inference (0: E's code as is)")
    ap.add_argument("--embedding_weight", type=float, default=None,
                    help="default weight of the part embedding against position in the match (engine default: 0.5)")
    ap.add_argument("--part_shapes", type=int, default=0,
                    help="held-out procedural shapes to set per-part logit offsets on (0: none)")
    ap.add_argument("--force", action="store_true", help="replace the destination if it exists (a shipped model)")
    args = ap.parse_args(list(argv) if argv is not None else None)
    if args.destination.exists() and not args.force:
        print(f"error: {args.destination} exists; give --force to replace it", file=sys.stderr)
        return 2
    try:
        stored = export(args.source, args.destination, args.calibration_shapes, args.fit_steps,
                        args.embedding_weight, args.part_shapes)
    except (CheckpointError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{args.destination}: {args.destination.stat().st_size / 1e6:.1f} MB; "
          f"calibration {stored}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
