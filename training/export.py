"""Make a shippable checkpoint: drop the optimizer state, keep weights, config and history.

    python -m training.export runs/chair/final.pth model/checkpoints/chair.pth
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable
from pathlib import Path

from model.checkpoint import CheckpointError, load_checkpoint, save_checkpoint


def export(src: Path, dst: Path) -> None:
    ck = load_checkpoint(src)
    ck.optimizer = None
    ck.extra = {**ck.extra, "exported_from": src.name}
    save_checkpoint(dst, ck)


def main(argv: Iterable[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m training.export", description=__doc__)
    ap.add_argument("source", type=Path)
    ap.add_argument("destination", type=Path)
    args = ap.parse_args(list(argv) if argv is not None else None)
    try:
        export(args.source, args.destination)
    except CheckpointError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{args.destination}: {args.destination.stat().st_size / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
