"""Rebuild a model from its experiment file: prepare the data, train every phase, export.

    python -m training.run experiments/chair.json [--out runs/chair] [--device cuda] [--dry-run]

Resumable: after a kill the same command skips the finished phases and continues the
interrupted one from its last saved epoch.  The run folder (default runs/<name>) holds
the experiment (experiment.json), the names of the samples it trains on (data.json: a run
whose samples changed since is not continued), one folder per phase with its checkpoints
and log.csv, the samples (data/, unless the experiment names a folder) and the exported
model <name>.pth.  Every checkpoint carries the experiment in extra["experiment"].
"""
from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from model.checkpoint import load_checkpoint, save_checkpoint
from model.files import write_atomically
from model.losses import LossWeights
from model.networks import ImplicitCorrespondenceNet

from . import artist
from .cli import add_flags, given, guarded
from .debian import FetchError
from .experiment import (EXPORT_FROM, ExperimentError, Phase, data_folder, differences, export_settings,
                         init_checkpoint, load_experiment, model_config, plan)
from .prepare import load_rotations, prepare_meshes, prepare_procedural
from .trainer import Trainer, of_stage


def run_experiment(exp: dict[str, Any], out: Path, resume: bool = True, workers: int | None = None,
                   **overrides: Any) -> Path:
    """Train every phase of `exp` in the run folder `out` and export -> the exported
    checkpoint (the last phase's checkpoint when there is no export).  `overrides`
    (device, progress) apply to every phase."""
    progress = overrides.get("progress", True)
    _check_run_folder(exp, out, resume)
    prepare_data(exp["data"], data_folder(exp, out), workers, progress)
    _record_run(exp, out)  # only once its data is there: a mistake in the data claims no folder
    _check_same_data(data_folder(exp, out), out)
    phases = plan(exp, out, **overrides)
    checked = set()  # a phase that cannot keep its best epoch is refused before any phase trains
    for phase in phases:
        cfg = phase.config
        split = (cfg.data_path, cfg.val_fraction, cfg.seed, cfg.stage == 3)
        if cfg.keep_best and split not in checked and not finished(phase):
            Trainer(cfg).check_validation()
            checked.add(split)
    for phase in phases:
        if finished(phase):
            print(f"{phase.describe(len(phases))}: already finished")
            continue
        print(f"{phase.describe(len(phases))} -> {phase.config.run_path}", flush=True)
        Trainer(phase.config, extra={"experiment": exp}).run()
    settings = export_settings(exp)
    return phases[-1].last_checkpoint if settings is None else export_model(exp, phases[-1], out, settings)


def _check_run_folder(exp: dict[str, Any], out: Path, resume: bool) -> None:
    """Refuse a folder that holds another experiment's run."""
    record = out / "experiment.json"
    if record.is_file():
        if not resume:
            raise ExperimentError(f"{out} already holds a run: continue it with --resume, or choose another folder")
        changed = differences(json.loads(record.read_text()), exp)
        if changed:
            raise ExperimentError(f"{out} holds a run of another experiment (it differs in {', '.join(changed)}): "
                                  f"choose another run folder, or delete this one to start over")


def _record_run(exp: dict[str, Any], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    write_atomically(out / "experiment.json", lambda tmp: Path(tmp).write_text(json.dumps(exp, indent=1) + "\n"))


def _check_same_data(folder: Path, out: Path) -> None:
    """Refuse to go on with a run whose samples changed since it started (`DATA_RECORD`):
    a shape added to a mesh folder would be trained on from the middle of a phase, and the
    validation split, by position in the sorted list, would move."""
    names = sorted(p.name for p in folder.glob("*.npz"))
    record = out / DATA_RECORD
    if record.is_file():
        before = json.loads(record.read_text())["samples"]
        if names != before:
            added, gone = sorted(set(names) - set(before)), sorted(set(before) - set(names))
            said = "; ".join(f"{len(which)} {how} ({', '.join(which[:3])}{', ...' if len(which) > 3 else ''})"
                             for how, which in (("added", added), ("gone", gone)) if which)
            raise ExperimentError(f"the samples in {folder} changed since this run started: {said}. Going on would "
                                  "train on other shapes with another validation split: restore them, or start a "
                                  "new run folder")
        return
    write_atomically(record, lambda tmp: Path(tmp).write_text(json.dumps({"samples": names}) + "\n"))


# The run folder's record of the samples it trains on (`_check_same_data`)
DATA_RECORD = "data.json"


def prepare_data(data: dict[str, Any], folder: Path, workers: int | None = None, progress: bool = True) -> None:
    """Make the samples the experiment names that `folder` lacks (finished ones are kept)."""
    had_samples = folder.is_dir() and any(folder.glob("*.npz"))
    for src in data.get("procedural", []):
        if src.get("only_if_empty") and had_samples:
            continue
        new, old, failures = prepare_procedural(src["family"], src["count"], folder, workers,
                                                src.get("first_seed", 0), progress)
        _report(f"{src['count']} procedural {src['family']}", new, old, failures, folder)
    for src in data.get("meshes", []):
        rotations = load_rotations(Path(src["rotations"])) if "rotations" in src else None
        new, old, failures = prepare_meshes(Path(src["folder"]), folder, rotations, workers, progress,
                                            seg_labels=src.get("seg_labels", False))
        _report(src["folder"], new, old, failures, folder)
    for i, src in enumerate(data.get("artist", [])):
        category = src["category"]
        try:
            manifest = artist.run(category, folder, limit=src.get("limit"), workers=workers, progress=progress,
                                  manifest_name=artist_manifest(category))
        except FetchError as exc:
            raise ExperimentError(f"data.artist[{i}]: {exc}") from None
        counts = manifest["counts"]
        _report(f"artist {category}", counts["prepared_now"], counts["already_there"], manifest["skipped"], folder)


def artist_manifest(category: str) -> str:
    """The data folder's record of the artist meshes of a category (origins, licences)."""
    return f"artist-{category}.json"


def _report(what: str, new: int, old: int, failures: list, folder: Path) -> None:
    if new or failures:
        print(f"data, {what}: {new} prepared, {old} already there, {len(failures)} skipped -> {folder}")


def finished(phase: Phase) -> bool:
    path = phase.last_checkpoint
    return path.is_file() and of_stage(load_checkpoint(path), phase.config)


def export_model(exp: dict[str, Any], last: Phase, out: Path, settings: dict[str, Any]) -> Path:
    """Export the last phase's checkpoint to out/<name>.pth, unless done with these settings."""
    from .export import export  # its calibration pulls in the engine: only when exporting

    dst = out / f"{exp['name']}.pth"
    if dst.is_file() and load_checkpoint(dst).extra.get("experiment") == exp:
        print(f"export: {dst} already written")
        return dst
    name = EXPORT_FROM[settings["checkpoint"]]
    src = last.last_checkpoint if name is None else last.config.run_path / name
    print(f"export: {src} -> {dst} ({_export_text(settings)})", flush=True)
    export(src, dst, calibration_shapes=settings["calibration_shapes"], fit_steps=settings["fit_steps"],
           embedding_weight=settings["embedding_weight"], part_shapes=settings["part_shapes"])
    ck = load_checkpoint(dst)  # the file's export section too, which training did not see
    ck.extra["experiment"] = exp
    save_checkpoint(dst, ck)
    return dst


def _export_text(settings: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v}" for k, v in settings.items() if k != "checkpoint")


def describe(exp: dict[str, Any], out: Path, phases: list[Phase]) -> str:
    """The whole schedule, as --dry-run prints it."""
    model = model_config(exp)
    n_params = sum(p.numel() for p in ImplicitCorrespondenceNet(model).parameters())
    changed = {k: v for k, v in exp.get("model", {}).items() if k != "preset"}
    losses = {k: v for k, v in vars(phases[0].config.losses).items() if v != getattr(LossWeights(), k)}
    lines = [f"experiment {exp['name']}: category {exp['category']}, seed {exp.get('seed', 123)}, run folder {out}",
             f"model: preset {exp.get('model', {}).get('preset', 'paper')}"
             + (f" with {changed}" if changed else "") + f", {n_params / 1e6:.2f}M parameters"]
    init = init_checkpoint(exp)
    if init is not None:
        lines.append(f"init: phase 1 starts from {exp['init']} ({init.category}, stage {init.stage} at "
                     f"{init.resolution}^3, epoch {init.epoch})")
    lines += [f"losses: {losses or 'the defaults'} (phases may change them)",
              f"data -> {data_folder(exp, out)}:"]
    for src in exp["data"].get("procedural", []):
        first = src.get("first_seed", 0)
        lines.append(f"  {src['count']} procedural {src['family']} shapes, seeds {first}-{first + src['count'] - 1}"
                     + (" (only into an empty folder)" if src.get("only_if_empty") else ""))
    lines += [f"  meshes of {src['folder']}" + (f", rotations {src['rotations']}" if "rotations" in src else "")
              for src in exp["data"].get("meshes", [])]
    lines += [f"  artist {src['category']} meshes (training.artist, cache {artist.DEFAULT_CACHE}), "
              + (f"the first {src['limit']}" if "limit" in src else "all")
              + f", manifest {artist_manifest(src['category'])}" for src in exp["data"].get("artist", [])]
    lines.append(f"phases ({phases[-1].config.epoch - phases[0].first_epoch} epochs):")
    lines += [f"  {p.describe(len(phases))}" + (" [done]" if finished(p) else "") for p in phases]
    settings = export_settings(exp)
    lines.append("export: none" if settings is None else
                 f"export: the {settings['checkpoint']} checkpoint -> {out / (exp['name'] + '.pth')}, "
                 f"{_export_text(settings)}")
    return "\n".join(lines)


def main(argv: Iterable[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m training.run", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("experiment", type=Path, help="experiment file (experiments/*.json)")
    ap.add_argument("--out", type=Path, help="run folder (default runs/<name>)")
    ap.add_argument("--dry-run", "--dry_run", action="store_true", dest="dry_run",
                    help="print the whole schedule, train nothing")
    ap.add_argument("--workers", type=int, default=None, help="data preparation processes (default: all cores)")
    add_flags(ap, only=("device", "no_progress"))
    args = ap.parse_args(list(argv) if argv is not None else None)
    overrides = {path[0]: value for path, value in given(args).items()}

    def work() -> int:
        exp = load_experiment(args.experiment)
        out = args.out or Path("runs") / exp["name"]
        if args.dry_run:
            print(describe(exp, out, plan(exp, out, **overrides)))
            return 0
        print(f"done: {run_experiment(exp, out, workers=args.workers, **overrides)}")
        return 0

    return guarded(work, "run the same command to continue from the last saved epoch")


if __name__ == "__main__":
    sys.exit(main())
