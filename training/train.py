"""The whole training schedule in one command, resumable after a kill.

    python -m training.train --cate_name chair --preset small [--resume]

Runs stage 1 at 16^3, 32^3 and 64^3, then stage 2 and stage 3, each run starting from
the previous run's checkpoint, exactly as the paper's per-stage commands would, and copies
the final checkpoint to <checkpoint_dir>/final.pth.  With --resume a finished run is
skipped and an interrupted one continues from its newest checkpoint.
"""
from __future__ import annotations

import argparse
import dataclasses
import shutil
import sys
from collections.abc import Iterable
from pathlib import Path

from model.checkpoint import load_checkpoint

from .trainer import TrainConfig, Trainer, of_stage

# (stage, resolution, final epoch, batch size) per run
SCHEDULES = {
    # The paper's schedule and network (GPU-sized).
    "paper": [(1, 16, 50, 45), (1, 32, 100, 25), (1, 64, 200, 10), (2, 64, 250, 10), (3, 64, 300, 10)],
    # A CPU-sized network and schedule that fits a working session (about 40 minutes on 2 cores).
    "small": [(1, 16, 3, 16), (1, 32, 11, 16), (1, 64, 26, 16), (2, 64, 38, 16), (3, 64, 44, 16)],
    # Seconds: smoke tests.
    "tiny": [(1, 16, 1, 4), (1, 32, 2, 4), (1, 64, 3, 4), (2, 64, 4, 4), (3, 64, 5, 4)],
}
DATA_COUNT = {"paper": 5000, "small": 600, "tiny": 16}
PART_WEIGHT = {"paper": 0.0, "small": 0.2, "tiny": 0.0}
LEARNING_RATE = {"paper": 1e-4, "small": 1e-3, "tiny": 1e-3}  # short CPU schedules take larger steps


def schedule_configs(base: TrainConfig, preset: str) -> list[TrainConfig]:
    runs, previous = [], None
    for stage, res, epoch, batch in SCHEDULES[preset]:
        cfg = dataclasses.replace(
            base, stage=stage, resolution=res, epoch=epoch, batch_size=batch, preset=preset,
            pretrain_model=previous is not None, pretrain_model_name=f"Corr-{previous - 1}.pth" if previous else "",
        )
        runs.append(cfg)
        previous = epoch
    return runs


def _finished(cfg: TrainConfig) -> bool:
    path = Path(cfg.checkpoint_dir) / f"Corr-{cfg.epoch - 1}.pth"
    if not path.is_file():
        return False
    ck = load_checkpoint(path)
    return of_stage(ck, cfg)


def main(argv: Iterable[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m training.train", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cate_name", default="chair")
    ap.add_argument("--preset", default="small", choices=sorted(SCHEDULES))
    ap.add_argument("--resume", action="store_true", help="skip finished runs, continue an interrupted one")
    ap.add_argument("--data_dir", default="")
    ap.add_argument("--checkpoint_dir", default="")
    ap.add_argument("--device", default="")
    ap.add_argument("--seed", type=int, default=123)
    ap.add_argument("--lr", type=float, default=0.0, help="default depends on the preset")
    ap.add_argument("--procedural_count", type=int, default=0, help="default depends on the preset")
    ap.add_argument("--part_weight", type=float, default=None, help="default depends on the preset")
    ap.add_argument("--part_balance", action="store_true",
                    help="weigh each part's supervision by 1/sqrt of its share of the points (helps small parts)")
    ap.add_argument("--max_steps_per_epoch", type=int, default=0)
    ap.add_argument("--f_frequencies", type=int, default=0,
                    help="octaves of sin/cos features of x in f (0 = the paper's f)")
    ap.add_argument("--encoder_normals", action="store_true",
                    help="E also sees normals estimated from the points (not the paper's E)")
    ap.add_argument("--keep_best", action="store_true",
                    help="also keep best.pth, the last stage's epoch of highest validation part mIoU")
    ap.add_argument("--no_progress", action="store_true")
    args = ap.parse_args(list(argv) if argv is not None else None)
    try:
        base = TrainConfig(
            cate_name=args.cate_name, lr=args.lr or LEARNING_RATE[args.preset], data_dir=args.data_dir, checkpoint_dir=args.checkpoint_dir,
            device=args.device, seed=args.seed, procedural_count=args.procedural_count or DATA_COUNT[args.preset],
            part_weight=PART_WEIGHT[args.preset] if args.part_weight is None else args.part_weight,
            part_balance=args.part_balance,
            max_steps_per_epoch=args.max_steps_per_epoch, progress=not args.no_progress, resume=args.resume,
            f_frequencies=args.f_frequencies, keep_best=args.keep_best, encoder_normals=args.encoder_normals,
        )
        path = None
        for cfg in schedule_configs(base, args.preset):
            if args.resume and _finished(cfg):
                print(f"stage {cfg.stage} at {cfg.resolution}^3 already finished (Corr-{cfg.epoch - 1}.pth)")
                path = Path(cfg.checkpoint_dir) / f"Corr-{cfg.epoch - 1}.pth"
                continue
            path = Trainer(cfg).run()
    except (ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted: continue with --resume", file=sys.stderr)
        return 130
    if path is not None:
        final = Path(base.checkpoint_dir) / "final.pth"
        shutil.copyfile(path, final)
        print(f"final checkpoint: {final}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
