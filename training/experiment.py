"""Experiments as files: one JSON file holds everything that makes a model.

    {"name": "chair", "category": "chair", "seed": 123,
     "model":  {"preset": "small", ...ModelConfig fields},
     "losses": {"part": 0.2, ...LossWeights fields},
     "init":   "model/checkpoints/chair.pth",                (optional: the first phase's weights)
     "data":   {"procedural": [{"family": "chair", "count": 600, "first_seed": 0}],
                "meshes": [{"folder": "my_chairs/", "rotations": "rotations.json"}],
                "artist": [{"category": "chair", "limit": 20}], "folder": "data/x"},
     "train":  {"batch_size": 16, "lr": 1e-3, ...},       (defaults of every phase)
     "phases": [{"stage": 1, "resolution": [16, 32, 64], "epochs": [3, 8, 15]},
                {"stage": 2, "resolution": 64, "epochs": 6, "lr": 1e-3, "losses": {"part": 1.0}}, ...],
     "export": {"checkpoint": "last", "fit_steps": 30, "embedding_weight": null,
                "part_shapes": 0, "calibration_shapes": 16}}

Each phase is one trainer run that starts from the previous phase's last checkpoint
(the first from a new network, or from `init`'s weights, numbering on from its epoch) and
trains `epochs` epochs, the numbering continuing; a list of resolutions (with a list of
epochs) is that many phases.  `artist` prepares training.artist's real, unlabelled meshes
of a category (the first `limit` of them) beside the other samples.  A phase takes any of
the `train` keys and its own `losses`.  Relative paths are relative to the working
directory.  This module reads and checks the file and turns it into trainer configs;
training/run.py runs them.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from model.checkpoint import Checkpoint, CheckpointError, load_checkpoint
from model.config import ModelConfig, preset
from model.losses import LossWeights

from .artist import CATEGORIES as ARTIST_CATEGORIES
from .families import FAMILIES
from .trainer import TrainConfig


class ExperimentError(ValueError):
    """An experiment file that cannot be run; the message names the problem."""


TOP = {"name": str, "description": str, "category": str, "seed": int, "model": dict, "losses": dict,
       "init": str, "data": dict, "train": dict, "phases": list, "export": dict}
REQUIRED = ("category", "data", "phases")
# TrainConfig fields an experiment may set per phase; the others it sets itself
RUN_KEYS = ("batch_size", "lr", "device", "occupancy_points", "surface_points", "augment", "val_fraction",
            "max_steps_per_epoch", "keep_best", "average_last")
PHASE_KEYS = {"stage", "resolution", "epochs", "losses", "note", *RUN_KEYS}
EXPORT_DEFAULTS = {"checkpoint": "last", "fit_steps": 0, "embedding_weight": None, "part_shapes": 0,
                   "calibration_shapes": 16}
EXPORT_FROM = {"last": None, "averaged": "averaged.pth", "best": "best.pth"}


@dataclass(frozen=True)
class Phase:
    number: int  # 1-based, in the order the phases run
    first_epoch: int
    config: TrainConfig  # epoch = the phase's end (exclusive), as --epoch
    note: str = ""

    @property
    def last_checkpoint(self) -> Path:
        return self.config.run_path / f"Corr-{self.config.epoch - 1}.pth"

    def describe(self, total: int) -> str:
        c = self.config
        last = c.epoch - 1
        epochs = f"epoch {last}" if last == self.first_epoch else f"epochs {self.first_epoch}-{last}"
        parts = [f"phase {self.number}/{total}: stage {c.stage} at {c.resolution}^3, {epochs}",
                 f"batch {c.batch_size}", f"lr {c.lr:g}", f"part weight {c.losses.part:g}"]
        parts += [f"device {c.device}"] * bool(c.device) + [f"average last {c.average_last}"] * bool(c.average_last)
        parts += ["keep best"] * c.keep_best
        return ", ".join(parts) + (f" ({self.note})" if self.note else "")


# ------------------------------------------------------------------ reading and checking
def load_experiment(path: str | Path) -> dict[str, Any]:
    """The file's content, checked; `name` defaults to the file's stem."""
    path = Path(path)
    try:
        exp = json.loads(path.read_text())
    except FileNotFoundError:
        raise ExperimentError(f"{path}: no such experiment file") from None
    except json.JSONDecodeError as exc:
        raise ExperimentError(f"{path}: not valid JSON: {exc}") from None
    if not isinstance(exp, dict):
        raise ExperimentError(f"{path}: an experiment is a JSON object, got {type(exp).__name__}")
    exp.setdefault("name", path.stem)
    try:
        check(exp)
    except ExperimentError as exc:
        raise ExperimentError(f"{path}: {exc}") from None
    return exp


def check(exp: dict[str, Any]) -> None:
    """Raise ExperimentError naming the first problem of an experiment's content."""
    _keys("experiment", exp, TOP)
    for key in REQUIRED:
        if key not in exp:
            raise ExperimentError(f"missing {key!r}")
    model_config(exp)
    init_checkpoint(exp)
    _check_data(exp["data"])
    if not exp["phases"]:
        raise ExperimentError("'phases' is empty")
    phases = plan(exp, Path("runs") / str(exp.get("name", "experiment")))
    _check_export(exp, phases[-1])


def _keys(where: str, d: dict[str, Any], allowed: dict[str, type] | Any) -> None:
    for key, value in d.items():
        if key not in allowed:
            raise ExperimentError(f"{where}: unknown key {key!r} (known: {', '.join(sorted(allowed))})")
        if isinstance(allowed, dict) and not _is(value, allowed[key]):
            raise ExperimentError(f"{where}: {key!r} must be {allowed[key].__name__}, got {value!r}")


def _is(value: Any, kind: type) -> bool:
    if kind is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind is tuple:
        return isinstance(value, list)
    return isinstance(value, kind)


def _fields(where: str, d: Any, defaults: Any, allowed: tuple[str, ...] | None = None) -> dict[str, Any]:
    """Check `d` against the fields of the dataclass instance `defaults` -> values to set."""
    if not isinstance(d, dict):
        raise ExperimentError(f"{where} must be an object, got {d!r}")
    names = allowed or tuple(f.name for f in fields(defaults))
    _keys(where, d, {name: type(getattr(defaults, name)) for name in names})
    return {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}


def model_config(exp: dict[str, Any]) -> ModelConfig:
    model = dict(exp.get("model", {}))
    try:
        base = preset(model.pop("preset", "paper"))
        return base.with_(**_fields("model", model, base))
    except ExperimentError:
        raise
    except ValueError as exc:
        raise ExperimentError(f"model: {exc}") from None


def init_checkpoint(exp: dict[str, Any]) -> Checkpoint | None:
    """The checkpoint `init` names, whose network must be the experiment's model; None without one."""
    if "init" not in exp:
        return None
    if not Path(exp["init"]).is_file():
        raise ExperimentError(f"init: checkpoint not found: {exp['init']} (train the model it names first)")
    try:
        ck = load_checkpoint(exp["init"])
    except CheckpointError as exc:
        raise ExperimentError(f"init: {exc}") from None
    model = model_config(exp)
    changed = [f"{f.name} {getattr(ck.config, f.name)!r} there, {getattr(model, f.name)!r} here"
               for f in fields(model) if getattr(ck.config, f.name) != getattr(model, f.name)]
    if changed:
        raise ExperimentError(f"init: {exp['init']} holds another network than the experiment's 'model' "
                              f"({'; '.join(changed)}): give 'model' the checkpoint's preset and changes")
    return ck


def _check_data(data: dict[str, Any]) -> None:
    _keys("data", data, {"folder": str, "procedural": list, "meshes": list, "artist": list})
    if not (data.get("procedural") or data.get("meshes") or data.get("artist") or data.get("folder")):
        raise ExperimentError("data: give 'procedural' shapes, 'meshes' folders, 'artist' meshes "
                              "or a prepared 'folder'")
    for i, src in enumerate(data.get("procedural", [])):
        where = f"data.procedural[{i}]"
        _keys(where, src, {"family": str, "count": int, "first_seed": int, "only_if_empty": bool})
        if src.get("family") not in FAMILIES:
            raise ExperimentError(f"{where}: 'family' must be one of {sorted(FAMILIES)}, got {src.get('family')!r}")
        if src.get("count", 0) < 1:
            raise ExperimentError(f"{where}: 'count' must be >= 1, got {src.get('count')!r}")
    for i, src in enumerate(data.get("meshes", [])):
        _keys(f"data.meshes[{i}]", src, {"folder": str, "rotations": str, "seg_labels": bool})
        if "folder" not in src:
            raise ExperimentError(f"data.meshes[{i}]: missing 'folder'")
    seen = set()
    for i, src in enumerate(data.get("artist", [])):
        where = f"data.artist[{i}]"
        _keys(where, src, {"category": str, "limit": int})
        if src.get("category") not in ARTIST_CATEGORIES:
            raise ExperimentError(f"{where}: 'category' must be one of {list(ARTIST_CATEGORIES)}, "
                                  f"got {src.get('category')!r}")
        if src["category"] in seen:
            raise ExperimentError(f"{where}: the {src['category']} meshes are already given")
        seen.add(src["category"])
        if src.get("limit", 1) < 1:
            raise ExperimentError(f"{where}: 'limit' must be >= 1, got {src['limit']!r}")


def _check_export(exp: dict[str, Any], last: Phase) -> None:
    export = exp.get("export")
    if export is None:
        return
    # embedding_weight null: the engine's default
    _keys("export", {k: v for k, v in export.items() if not (k == "embedding_weight" and v is None)},
          {"checkpoint": str, "fit_steps": int, "embedding_weight": float, "part_shapes": int,
           "calibration_shapes": int})
    settings = {**EXPORT_DEFAULTS, **export}
    if settings["checkpoint"] not in EXPORT_FROM:
        raise ExperimentError(f"export: 'checkpoint' must be one of {sorted(EXPORT_FROM)}, "
                              f"got {settings['checkpoint']!r}")
    if settings["checkpoint"] == "averaged" and last.config.average_last < 2:
        raise ExperimentError("export: 'averaged' needs 'average_last' >= 2 in the last phase")
    if settings["checkpoint"] == "best" and not last.config.keep_best:
        raise ExperimentError("export: 'best' needs 'keep_best' in the last phase")
    if (settings["calibration_shapes"] or settings["part_shapes"]) and exp["category"] not in FAMILIES:
        raise ExperimentError(f"export: calibration_shapes and part_shapes need a procedural category "
                              f"({', '.join(sorted(FAMILIES))}); set them to 0 for {exp['category']!r}")


def export_settings(exp: dict[str, Any]) -> dict[str, Any] | None:
    """The export's settings with their defaults, or None for an experiment without one."""
    return None if exp.get("export") is None else {**EXPORT_DEFAULTS, **exp["export"]}


# ------------------------------------------------------------------ the schedule
def data_folder(exp: dict[str, Any], out: Path) -> Path:
    """Where the samples are: the data's `folder`, else the run folder's `data/`."""
    return Path(exp["data"].get("folder") or out / "data")


def plan(exp: dict[str, Any], out: Path, **overrides: Any) -> list[Phase]:
    """The trainer config of every phase, in the run folder `out` (phase i in
    `out/<i>-stage<s>-<res>`); `overrides` (TrainConfig fields: device, progress, ...)
    apply to every phase."""
    try:
        base = TrainConfig(cate_name=exp["category"], seed=exp.get("seed", 123), data_dir=str(data_folder(exp, out)),
                           model=model_config(exp), losses=_losses("losses", exp.get("losses", {}), LossWeights()),
                           resume=True, **_fields("train", exp.get("train", {}), TrainConfig(), RUN_KEYS))
    except ExperimentError:
        raise
    except ValueError as exc:
        raise ExperimentError(f"train: {str(exc).replace('--', '')}") from None
    init = init_checkpoint(exp)
    phases: list[Phase] = []
    for i, raw in enumerate(exp["phases"]):
        for stage, resolution, epochs, settings in _expand(f"phases[{i}]", raw):
            if phases:
                first, previous = phases[-1].config.epoch, phases[-1].last_checkpoint
            else:  # a new network, or init's, whose epoch numbering goes on
                first, previous = (0, None) if init is None else (init.epoch + 1, Path(exp["init"]))
            number = len(phases) + 1
            try:
                cfg = replace(base, stage=stage, resolution=resolution, epoch=first + epochs,
                              checkpoint_dir=str(out / f"{number:02d}-stage{stage}-{resolution}"),
                              pretrain_model=previous is not None, pretrain_model_name=str(previous or ""),
                              losses=_losses(f"phases[{i}].losses", raw.get("losses", {}), base.losses),
                              **settings, **overrides)
            except ValueError as exc:
                raise ExperimentError(f"phases[{i}]: {str(exc).replace('--', '')}") from None
            phases.append(Phase(number, first, cfg, raw.get("note", "")))
    return phases


def _losses(where: str, d: Any, base: LossWeights) -> LossWeights:
    return replace(base, **_fields(where, d, base))


def _expand(where: str, raw: Any) -> list[tuple[int, int, int, dict[str, Any]]]:
    """A phase entry -> (stage, resolution, epochs, TrainConfig settings) per trainer run."""
    if not isinstance(raw, dict):
        raise ExperimentError(f"{where} must be an object, got {raw!r}")
    _keys(where, raw, PHASE_KEYS)
    for key in ("stage", "resolution", "epochs"):
        if key not in raw:
            raise ExperimentError(f"{where}: missing {key!r}")
    stage = raw["stage"]
    if stage not in (1, 2, 3) or isinstance(stage, bool):
        raise ExperimentError(f"{where}: 'stage' must be 1, 2 or 3, got {stage!r}")
    resolutions, epochs = raw["resolution"], raw["epochs"]
    if isinstance(resolutions, list) != isinstance(epochs, list) or (
            isinstance(epochs, list) and len(epochs) != len(resolutions)):
        raise ExperimentError(f"{where}: a list of resolutions needs a list of as many epoch counts, "
                              f"got {resolutions!r} and {epochs!r}")
    resolutions = resolutions if isinstance(resolutions, list) else [resolutions]
    epochs = epochs if isinstance(epochs, list) else [epochs]
    for r, e in zip(resolutions, epochs):
        if r not in (16, 32, 64) or isinstance(r, bool):
            raise ExperimentError(f"{where}: 'resolution' must be 16, 32 or 64, got {r!r}")
        if not _is(e, int) or e < 1:
            raise ExperimentError(f"{where}: 'epochs' must be whole numbers >= 1, got {e!r}")
    settings = _fields(where, {k: raw[k] for k in RUN_KEYS if k in raw}, TrainConfig(), RUN_KEYS)
    return [(stage, r, e, settings) for r, e in zip(resolutions, epochs)]


def differences(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """The sections in which two experiments train differently (the export and notes may differ)."""
    ignored = {"export", "description", "name"}
    a, b = _without_device(a), _without_device(b)
    return sorted(k for k in set(a) | set(b) if k not in ignored and a.get(k) != b.get(k))


def _without_device(exp: dict[str, Any]) -> dict[str, Any]:
    """The experiment less where it trains: a run resumed on another device trains the same."""
    train = exp.get("train")
    return {**exp, "train": {k: v for k, v in train.items() if k != "device"}} if isinstance(train, dict) else exp
