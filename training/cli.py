"""The paper's command line, shared by train_stage1/2/3."""
from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable

from .trainer import TrainConfig, Trainer


def _bool(text: str) -> bool:
    low = str(text).strip().lower()
    if low in ("true", "1", "yes", "y", "on"):
        return True
    if low in ("false", "0", "no", "n", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected TRUE or FALSE, got {text!r}")


def parser(stage: int | None) -> argparse.ArgumentParser:
    d = TrainConfig()
    ap = argparse.ArgumentParser(
        prog=f"python -m training.train_stage{stage}" if stage else "python -m training.train",
        description="Train the implicit correspondence model (Liu & Liu 2020)." + (
            f" Stage {stage}: " + {1: "occupancy", 2: "+ self-reconstruction", 3: "+ cross-reconstruction"}[stage]
            if stage else ""),
    )
    ap.add_argument("--cate_name", default=d.cate_name, help="category: chair, table, airplane or your own data")
    ap.add_argument("--epoch", type=int, default=d.epoch, help="final epoch number (checkpoint Corr-<epoch-1>.pth)")
    ap.add_argument("--resolution", type=int, default=d.resolution, choices=(16, 32, 64))
    ap.add_argument("--batch_size", type=int, default=d.batch_size)
    ap.add_argument("--pretrain_model", type=_bool, default=False, help="TRUE to start from --pretrain_model_name")
    ap.add_argument("--pretrain_model_name", default="", help="checkpoint file, in --checkpoint_dir or a path")
    ap.add_argument("--lr", type=float, default=d.lr)
    ap.add_argument("--seed", type=int, default=d.seed)
    ap.add_argument("--preset", default=d.preset, help="network size for a new model: paper, small or tiny")
    ap.add_argument("--data_dir", default="", help="folder of .npz samples (default data/<cate_name>)")
    ap.add_argument("--checkpoint_dir", default="", help="run folder (default runs/<cate_name>)")
    ap.add_argument("--device", default="", help="cpu or cuda (default: cuda when available)")
    ap.add_argument("--resume", action="store_true", help="continue this stage from its newest checkpoint")
    ap.add_argument("--occupancy_points", type=int, default=d.occupancy_points)
    ap.add_argument("--surface_points", type=int, default=d.surface_points)
    ap.add_argument("--no_augment", action="store_true", help="no random per-axis scaling")
    ap.add_argument("--procedural_count", type=int, default=d.procedural_count)
    ap.add_argument("--max_steps_per_epoch", type=int, default=0)
    ap.add_argument("--part_weight", type=float, default=0.0,
                    help="supervise part branches with the samples' part labels (0 = unsupervised, as the paper)")
    ap.add_argument("--part_balance", action="store_true",
                    help="weigh each part's supervision by 1/sqrt of its share of the points (helps small parts)")
    ap.add_argument("--f_frequencies", type=int, default=0,
                    help="octaves of sin/cos features of x in a new network's f (0 = the paper's f)")
    ap.add_argument("--encoder_normals", action="store_true",
                    help="E also sees normals estimated from the points (widens a pretrained network's E)")
    ap.add_argument("--keep_best", action="store_true",
                    help="also keep best.pth, this stage's epoch of highest validation part mIoU (needs part labels)")
    ap.add_argument("--average_last", type=int, default=0, metavar="N",
                    help="also write averaged.pth, the mean weights of this stage's last N epochs (keeps their checkpoints)")
    ap.add_argument("--no_progress", action="store_true")
    return ap


def config_from_args(args: argparse.Namespace, stage: int) -> TrainConfig:
    return TrainConfig(
        cate_name=args.cate_name, stage=stage, resolution=args.resolution, epoch=args.epoch,
        batch_size=args.batch_size, lr=args.lr, seed=args.seed, preset=args.preset, data_dir=args.data_dir,
        checkpoint_dir=args.checkpoint_dir, pretrain_model=args.pretrain_model,
        pretrain_model_name=args.pretrain_model_name, resume=args.resume, device=args.device,
        occupancy_points=args.occupancy_points, surface_points=args.surface_points, augment=not args.no_augment,
        procedural_count=args.procedural_count, max_steps_per_epoch=args.max_steps_per_epoch,
        part_weight=args.part_weight, part_balance=args.part_balance, average_last=args.average_last,
        f_frequencies=args.f_frequencies, keep_best=args.keep_best,
        encoder_normals=args.encoder_normals, progress=not args.no_progress,
    )


def stage_main(stage: int, argv: Iterable[str] | None = None) -> int:
    args = parser(stage).parse_args(list(argv) if argv is not None else None)
    try:
        cfg = config_from_args(args, stage)
        if stage > 1 and not (cfg.pretrain_model or cfg.resume):
            print(f"note: stage {stage} usually starts from the previous stage "
                  f"(--pretrain_model TRUE --pretrain_model_name Corr-<epoch>.pth)", file=sys.stderr)
        path = Trainer(cfg).run()
    except (ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted: the last finished epoch is saved; continue with --resume", file=sys.stderr)
        return 130
    if path is not None:
        print(f"saved {path}")
    return 0
