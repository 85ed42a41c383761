"""The whole training schedule of a preset in one command, resumable after a kill.

    python -m training.train --cate_name chair --preset small [--resume]

Runs stage 1 at 16^3, 32^3 and 64^3, then stage 2 and stage 3, each phase starting from
the previous one's last checkpoint, as the paper's per-stage commands would, and copies
the final checkpoint to <checkpoint_dir>/final.pth.  A preset is an experiment
(training/experiment.py) written here in code; the flags change it.  With --resume
finished phases are skipped and an interrupted one continues from its newest checkpoint.
"""
from __future__ import annotations

import argparse
import shutil
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from model.files import write_atomically

from .cli import Path_, add_flags, given, guarded
from .experiment import RUN_KEYS, data_folder
from .families import FAMILIES
from .run import run_experiment

# (stage, resolution, final epoch, batch size) per phase
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
SCHEDULE_FLAGS = ("epoch", "resolution", "batch_size", "pretrain_model", "pretrain_model_name")  # the preset's


def preset_experiment(name: str, values: dict[Path_, Any]) -> dict[str, Any]:
    """The experiment a preset stands for, changed by the given flags' `values`."""
    cate = values.get(("cate_name",), "chair")
    given_folder = values.get(("data_dir",))
    folder = given_folder or f"data/{cate}"
    count = values.get(("procedural_count",), DATA_COUNT[name])
    # as the per-stage commands do: data/<cate_name> is filled with procedural shapes when it
    # has none, a folder given by --data_dir is used as it is
    procedural = [{"family": cate, "count": count, "first_seed": 0, "only_if_empty": True}] \
        if cate in FAMILIES and not given_folder else []
    phases, previous = [], 0
    for stage, resolution, epoch, batch in SCHEDULES[name]:
        phases.append({"stage": stage, "resolution": resolution, "epochs": epoch - previous, "batch_size": batch})
        previous = epoch
    return {
        "name": cate, "category": cate, "seed": values.get(("seed",), 123),
        "model": {"preset": name, **{p[1]: v for p, v in values.items() if p[0] == "model" and len(p) == 2}},
        "losses": {"part": PART_WEIGHT[name], **{p[1]: v for p, v in values.items() if p[0] == "losses"}},
        "data": {"folder": folder, "procedural": procedural},
        # the device is where this run trains, not what it trains: a resume may move it
        "train": {"lr": LEARNING_RATE[name],
                  **{p[0]: v for p, v in values.items() if p[0] in RUN_KEYS and p[0] != "device"}},
        "phases": phases,
    }


def check_before_run(exp: dict[str, Any], out: Path, resume: bool, data_dir_given: bool) -> None:
    """Refuse what would otherwise fail only after the run folder is claimed, or train
    something else than asked: nothing to resume, a category with neither a procedural
    family nor data, a --data_dir without samples."""
    if resume and not (out / "experiment.json").is_file():
        raise ValueError(f"nothing to resume: {out} holds no run (no experiment.json); leave out --resume to "
                         f"start one, or give the run's --checkpoint_dir")
    folder = data_folder(exp, out)
    has_samples = folder.is_dir() and any(folder.glob("*.npz"))
    if data_dir_given and not has_samples:
        raise FileNotFoundError(f"--data_dir {folder}: no samples (.npz) there; prepare them with `python -m "
                                f"training.prepare`, or leave --data_dir out")
    if exp["category"] not in FAMILIES and not has_samples:
        raise ValueError(f"--cate_name {exp['category']}: no procedural family of that name "
                         f"({', '.join(sorted(FAMILIES))}) and no samples in {folder}; give --data_dir with "
                         f"samples prepared by `python -m training.prepare`")


def main(argv: Iterable[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m training.train", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    add_flags(ap, skip=SCHEDULE_FLAGS, defaults={"lr": "the preset's", "part_weight": "the preset's",
                                                 "procedural_count": "the preset's", "preset": "small"},
              helps={"resume": "go on with the run in --checkpoint_dir: finished phases are skipped, the "
                               "interrupted one continues from its last saved epoch"})
    args = ap.parse_args(list(argv) if argv is not None else None)
    values = given(args)

    def work() -> int:
        exp = preset_experiment(values.pop(("model",), "small"), values)
        out = Path(values.get(("checkpoint_dir",)) or f"runs/{exp['category']}")
        resume = values.get(("resume",), False)
        check_before_run(exp, out, resume, data_dir_given=("data_dir",) in values)
        overrides = {"device": values[("device",)]} if ("device",) in values else {}
        path = run_experiment(exp, out, resume=resume, progress=values.get(("progress",), True), **overrides)
        final = out / "final.pth"
        write_atomically(final, lambda tmp: shutil.copyfile(path, tmp))
        print(f"final checkpoint: {final}")
        return 0

    return guarded(work, "continue with --resume")


if __name__ == "__main__":
    sys.exit(main())
