"""Command-line flags made from TrainConfig's fields, declared once, and the paper's
per-stage command line (train_stage1/2/3) built on them.

A field with `help` in its metadata is a flag of its own name; a composed config (the
network's ModelConfig, the LossWeights) lists the fields it exposes under `flags`.
Booleans that default to False are switches (`--keep_best`), those that default to True
are turned off with `--no_<name>` (`--no_augment`); `takes_value` makes a boolean take
TRUE or FALSE, as the paper's `--pretrain_model TRUE`.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, fields, replace
from typing import Any

from model.config import PRESETS, preset

from .trainer import TrainConfig, Trainer

Path_ = tuple[str, ...]  # where a flag's value goes in TrainConfig: ("lr",) or ("losses", "part")


@dataclass(frozen=True)
class Flag:
    name: str  # without the dashes
    path: Path_
    options: dict[str, Any]  # for ArgumentParser.add_argument


def parse_bool(text: str) -> bool:
    low = str(text).strip().lower()
    if low in ("true", "1", "yes", "y", "on"):
        return True
    if low in ("false", "0", "no", "n", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected TRUE or FALSE, got {text!r}")


def _flag(name: str, path: Path_, default: Any, help: str, meta: dict[str, Any]) -> Flag:
    if isinstance(default, bool) and not meta.get("takes_value"):
        if default:
            return Flag(f"no_{name}", path, {"action": "store_false", "help": help})
        return Flag(name, path, {"action": "store_true", "help": help})
    kind = parse_bool if isinstance(default, bool) else type(default)
    options = {"type": kind, "help": f"{help} (default: {default!r})" if default != "" else help}
    for key in ("choices", "metavar"):
        if key in meta:
            options[key] = meta[key]
    return Flag(name, path, options)


def all_flags() -> list[Flag]:
    """Every flag of TrainConfig, in field order."""
    out = []
    for f in fields(TrainConfig):
        meta = dict(f.metadata)
        if "preset" in meta:
            out.append(Flag("preset", (f.name,), {"choices": sorted(PRESETS), "help": meta["preset"]}))
        if "flags" in meta:
            inner = f.default_factory()
            for sub, spec in meta["flags"].items():
                name, help = spec if isinstance(spec, tuple) else (sub, spec)
                out.append(_flag(name, (f.name, sub), getattr(inner, sub), help, {}))
        elif "help" in meta:
            out.append(_flag(f.name, (f.name,), f.default, meta["help"], meta))
    return out


def add_flags(ap: argparse.ArgumentParser, skip: Collection[str] = (), only: Collection[str] = (),
              defaults: dict[str, str] | None = None, helps: dict[str, str] | None = None) -> None:
    """Add TrainConfig's flags (by name, `only` these or all but `skip`).  Flags not given
    stay out of the parsed namespace (read them with `given`); `defaults` rewrites the
    default a help text shows, where a caller supplies its own, and `helps` the text."""
    for flag in all_flags():
        if flag.name in skip or (only and flag.name not in only):
            continue
        options = dict(flag.options)
        if helps and flag.name in helps:
            options["help"] = helps[flag.name]
        if defaults and flag.name in defaults:
            options["help"] = f"{options['help'].split(' (default:')[0]} (default: {defaults[flag.name]})"
        ap.add_argument(f"--{flag.name}", default=argparse.SUPPRESS, **options)


def given(args: argparse.Namespace) -> dict[Path_, Any]:
    """The flags given on the command line, by their place in TrainConfig."""
    return {flag.path: getattr(args, flag.name) for flag in all_flags() if hasattr(args, flag.name)}


def with_values(cfg: TrainConfig, values: dict[Path_, Any]) -> TrainConfig:
    """`cfg` with `values` set; a preset name given for the network stands for its ModelConfig."""
    top: dict[str, Any] = {}
    for path, value in values.items():
        if len(path) == 1:
            top[path[0]] = preset(value) if path == ("model",) and isinstance(value, str) else value
    for head in {path[0] for path in values if len(path) == 2}:
        inner = {path[1]: value for path, value in values.items() if len(path) == 2 and path[0] == head}
        top[head] = replace(top.get(head, getattr(cfg, head)), **inner)
    return replace(cfg, **top)


STAGES = {1: "occupancy", 2: "+ self-reconstruction", 3: "+ cross-reconstruction"}


def stage_parser(stage: int) -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog=f"python -m training.train_stage{stage}",
        description=f"Train the implicit correspondence model (Liu & Liu 2020). Stage {stage}: {STAGES[stage]}.")
    add_flags(ap)
    return ap


def guarded(work: Callable[[], int], interrupted: str = "the last finished epoch is saved; continue with --resume"
            ) -> int:
    """A command's exit status: bad input is 2 with its message, Ctrl-C 130 with how to go on."""
    try:
        return work()
    except (ValueError, FileNotFoundError) as exc:  # CheckpointError is a ValueError
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"\ninterrupted: {interrupted}", file=sys.stderr)
        return 130


def stage_main(stage: int, argv: Iterable[str] | None = None) -> int:
    args = stage_parser(stage).parse_args(list(argv) if argv is not None else None)

    def work() -> int:
        cfg = with_values(TrainConfig(stage=stage), given(args))
        if cfg.pretrain_model_name and not cfg.pretrain_model:
            print(f"note: --pretrain_model_name {cfg.pretrain_model_name} is ignored without --pretrain_model TRUE: "
                  f"new weights", file=sys.stderr)
        if stage > 1 and not (cfg.pretrain_model or cfg.resume):
            print(f"note: stage {stage} usually starts from the previous stage "
                  f"(--pretrain_model TRUE --pretrain_model_name Corr-<epoch>.pth)", file=sys.stderr)
        trainer = Trainer(cfg)
        if cfg.resume and not cfg.pretrain_model and trainer.latest_own_checkpoint() is None:
            raise ValueError(f"nothing to resume: {cfg.run_path} holds no stage {stage} run at {cfg.resolution}^3; "
                             "leave out --resume to start one")
        path = trainer.run()
        if path is not None:
            print(f"saved {path}")
        return 0

    return guarded(work)
