"""Evaluation report of a checkpoint, real shapes first: the labelled real dev set (PSB
chairs, tables, airplanes: training/devset.py; for chairs also the Sweet Home 3D chairs of
training/devset_sh3d.py), then held-out procedural shapes. Each
part has the evaluation table (model vs nearest neighbour, per-part IoU), PCK over
thresholds and the confidence; then part labels transferred onto the real meshes
(needs matplotlib: pip install -e .[docs]).

    python -m training.report --category chair [--checkpoint FILE] [--out FOLDER]

Writes, in --out (default: docs/evaluation for a shipped model, a folder `report` beside
any other checkpoint, so that a report of one's own model never overwrites the shipped
models' pages), <category>.md, <category>_real_pck.png, <category>_real_confidence.png,
<category>_pck.png, <category>_confidence.png, <category>_psb.png and <category>.json
(the summary figures: {"real": {"model", "nn"}, "real_sh3d": ..., "procedural": {"model", "nn"}}).
"""
from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from model import Correspondence
from model.files import write_atomically

from .debian import FetchError
from .devset import DEFAULT_PSB, devset_record, load_devset
from .devset_sh3d import load_sh3d_devset, sh3d_record
from .evaluate import Scores, evaluate, format_table, procedural_shapes, scored_category
from .families import PART_NAMES
from .figures import pyplot, transfer_figure

THRESHOLDS = np.linspace(0.0, 0.25, 51)
LABELS = {"model": "model", "nn": "nearest neighbour"}


def pck_curve(errors: np.ndarray, thresholds: np.ndarray = THRESHOLDS) -> np.ndarray:
    """Percentage of errors below each threshold."""
    if len(errors) == 0:
        return np.full(len(thresholds), np.nan)
    return 100 * (errors[None, :] < thresholds[:, None]).mean(axis=1)


def plot_pck(scores: dict[str, Scores], title: str, ylabel: str, out: Path) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5, 3.6))
    for name, label in LABELS.items():
        ax.plot(THRESHOLDS, pck_curve(scores[name].pck_errors), label=label, lw=2)
    ax.set_xlabel("threshold (fraction of the bounding-box diagonal)")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.set_ylim(0, 100)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


def plot_confidence(groups: tuple[tuple[np.ndarray, str], tuple[np.ndarray, str]], title: str, empty: str,
                    out: Path) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5, 3.6))
    bins = np.linspace(0, 1, 26)
    for values, label in groups:
        if len(values):
            ax.hist(values, bins=bins, density=True, alpha=0.55, label=f"{label} ({len(values)} points)")
    ax.set_xlabel("confidence")
    ax.set_ylabel("density")
    ax.set_title(title)
    if any(len(values) for values, _ in groups):
        ax.legend(fontsize=8)
    else:
        ax.text(0.5, 0.5, empty, ha="center", transform=ax.transAxes)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


def _difference(scores: dict[str, Scores]) -> str:
    model, nn = scores["model"], scores["nn"]
    radius = ("" if np.isnan(model.pck05_radius) else
              f", PCK@0.05r {model.pck05_radius - nn.pck05_radius:+.1f}, PCK@0.10r {model.pck10_radius - nn.pck10_radius:+.1f}")
    return (f"Model minus nearest neighbour: mIoU {model.miou - nn.miou:+.1f}, PCK@0.05 {model.pck05 - nn.pck05:+.1f}, "
            f"PCK@0.10 {model.pck10 - nn.pck10:+.1f}{radius}.")


def report_markdown(category: str, checkpoint: str, real: dict[str, Scores] | None, real_counts: tuple[int, int],
                    procedural: dict[str, Scores], n_targets: int, n_sources: int, seconds: float,
                    psb_figure: bool, sh3d: tuple[dict[str, Scores] | None, str] = (None, ""),
                    command: str = "") -> str:
    """The report page; `sh3d`: the Sweet Home 3D dev set's scores and a line on them
    (or None and why there are none, or "" where the category has no such set);
    `command`: the command line that made it (default: the shipped model's)."""
    command = command or f"python -m training.report --category {category}"
    lines = [f"# Evaluation: {category}", "", f"Checkpoint `{checkpoint}`; {seconds:.0f} s on this machine. "
             f"Reproduce: `{command}`.", "", "## Real shapes", ""]
    if real is None:
        lines += ["The real dev set (../shared/data/psb) was not found: no real figures.", ""]
    else:
        lines += [
            f"The real dev set ([devset.md](devset.md)): {real_counts[1]} PSB {category} meshes as 2,500-point "
            f"clouds, labels and keypoints from {real_counts[0]} labelled sources. mIoU per shape over the "
            "category's parts (a part absent from both counts 1); PCK: each source's keypoints mapped onto the "
            "target, the sources' mean snapped to the nearest target point, within 0.05 / 0.10 of the diagonal; "
            "PCK@0.05r / 0.10r: the same within 0.05 / 0.10 of the bounding radius (the largest distance from "
            "the bounding-box centre, about half the diagonal), each keypoint taken as its nearest target point, "
            "as KeypointNet and PDC measure it (the scale of the held-out ShapeNet figures in "
            "[models.md](../models.md)); right-label AUROC: does the confidence rank right labels above wrong ones.", "",
            format_table(real), "", _difference(real), "",
            f"![PCK over thresholds, real]({category}_real_pck.png) "
            f"![Confidence on right and wrong labels, real]({category}_real_confidence.png)", ""]
    sh3d_scores, sh3d_line = sh3d
    if sh3d_line:
        lines += [f"### Sweet Home 3D {category}s", "", sh3d_line, ""]
        if sh3d_scores is not None:
            lines += [format_table(sh3d_scores), "", _difference(sh3d_scores), ""]
    lines += [
        "## Procedural shapes", "",
        f"{n_targets} held-out procedural {category} targets (seeds from 1,000,000, never seen in training), "
        f"labels transferred from {n_sources} labelled sources. PCK here is of part centres: each target part "
        "centre matched onto a source and compared with the same part's centre there; existence AUROC: "
        "confidence on points of parts the source has against points of parts it lacks.", "",
        format_table(procedural), "", _difference(procedural), "",
        f"![PCK over thresholds]({category}_pck.png) ![Confidence histogram]({category}_confidence.png)",
    ]
    if psb_figure:
        lines += ["", "## Transfers onto real meshes", "",
                  "Part labels of a procedural source transferred onto the real PSB meshes "
                  "(grey: confidence below 0.05).", "", f"![Transfer onto PSB meshes]({category}_psb.png)"]
    return "\n".join(lines) + "\n"


def write_report(engine: Correspondence, category: str, checkpoint: str, out: Path, count: int = 40,
                 n_sources: int = 3, psb: Path | None = DEFAULT_PSB, progress: bool = True,
                 real_targets: int | None = None, command: str = "") -> dict[str, dict]:
    """-> {"real": scores or None, "procedural": scores}; `real_targets`: score only the
    first that many real targets (default: all); `command`: the command line, for the page."""
    try:  # before minutes of evaluation, not after
        pyplot()
    except ImportError:
        raise ValueError("the report draws its plots with matplotlib: pip install matplotlib (the project's "
                         "`docs` or `test` extra)") from None
    if n_sources < 1 or count <= n_sources:
        raise ValueError(f"need at least one labelled source and more procedural shapes than sources "
                         f"(--count {count}, --sources {n_sources})")
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    have_psb = psb is not None and (psb / category).is_dir()
    real, real_counts = None, (0, 0)
    record = devset_record()
    if have_psb and category in record["categories"]:
        shapes = load_devset(category, psb, record=record, targets=real_targets)
        n_real = len(record["categories"][category]["sources"])
        real, real_counts = evaluate(engine, shapes, PART_NAMES[category], n_real, progress), (n_real, len(shapes) - n_real)
        plot_pck(real, f"{category}, real: PCK over thresholds", "keypoints matched (%)", out / f"{category}_real_pck.png")
        plot_confidence(((real["model"].confidence_right, "right label"), (real["model"].confidence_wrong, "wrong label")),
                        f"{category}, real: confidence, AUROC {real['model'].label_auroc:.3f}", "no labels",
                        out / f"{category}_real_confidence.png")
    sh3d = sh3d_section(engine, category, progress, real_targets)
    procedural = evaluate(engine, procedural_shapes(category, count), PART_NAMES[category], n_sources, progress)
    seconds = time.perf_counter() - start
    plot_pck(procedural, f"{category}, procedural: PCK over thresholds", "part centres matched (%)",
             out / f"{category}_pck.png")
    model = procedural["model"]
    plot_confidence(((model.confidence_existing, "part exists on the source"),
                     (model.confidence_missing, "part missing on the source")),
                    f"{category}, procedural: confidence, AUROC {model.auroc:.3f}", "no pair with a missing part",
                    out / f"{category}_confidence.png")
    if have_psb:
        transfer_figure(engine, category, psb, out / f"{category}_psb.png")
    summary = {"real": real and {k: v.summary() for k, v in real.items()},
               "real_sh3d": sh3d[0] and {k: v.summary() for k, v in sh3d[0].items()},
               "procedural": {k: v.summary() for k, v in procedural.items()}}
    page = report_markdown(category, checkpoint, real, real_counts, procedural, count - n_sources, n_sources,
                           seconds, have_psb, sh3d, command)
    for name, text in ((f"{category}.json", json.dumps(summary, indent=2)), (f"{category}.md", page)):
        write_atomically(out / name, lambda tmp, text=text: Path(tmp).write_text(text))
    return {"real": real, "real_sh3d": sh3d[0], "procedural": procedural}


def sh3d_section(engine: Correspondence, category: str, progress: bool,
                 targets: int | None) -> tuple[dict[str, Scores] | None, str]:
    """The Sweet Home 3D dev set's scores and the line that introduces them; (None, why)
    where its packages cannot be had; (None, "") for a category without one."""
    entry = sh3d_record()["categories"].get(category)
    if entry is None:
        return None, ""
    try:
        shapes = load_sh3d_devset(category, targets=targets)
    except (ValueError, FetchError) as exc:
        return None, f"Not measured: {exc}"
    n_sources = len(entry["sources"])
    return (evaluate(engine, shapes, PART_NAMES[category], n_sources, progress),
            f"The harder real set ([devset.md](devset.md)): {len(shapes) - n_sources} artist-made Sweet Home 3D "
            f"{category}s (armchairs, swivel, tub and shell chairs), labels and keypoints from {n_sources} "
            "labelled sources, scored as above.")


def warn_if_trained_on_devset(engine: Correspondence, category: str) -> list[str]:
    """The dev shapes a checkpoint was trained on (by sample name), said on stderr: its real
    figures are then not those of shapes it never saw."""
    trained = set((engine.checkpoint.extra if engine.checkpoint else {}).get("trained_on", ()))
    dev = set()
    for record in (devset_record(), sh3d_record()):
        entry = record["categories"].get(category, {})
        dev |= set(entry.get("sources", ())) | set(entry.get("targets", ()))
    seen = sorted(trained & dev)
    if seen:
        print(f"warning: the checkpoint was trained on {len(seen)} shape(s) of the {category} dev sets "
              f"({', '.join(seen[:5])}{' ...' if len(seen) > 5 else ''}): their figures are not held out",
              file=sys.stderr)
    return seen


def main(argv: Iterable[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m training.report", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--category", default=None, choices=sorted(PART_NAMES),
                    help="default: the checkpoint's own category (chair without --checkpoint)")
    ap.add_argument("--checkpoint", default=None, help="checkpoint file (default: the shipped one)")
    ap.add_argument("--out", type=Path, default=None,
                    help="folder for the page (default: docs/evaluation for a shipped model, else "
                         "'report' beside the checkpoint)")
    ap.add_argument("--count", type=int, default=40, help="procedural shapes, sources included")
    ap.add_argument("--sources", type=int, default=3)
    ap.add_argument("--psb", type=Path, default=DEFAULT_PSB, help="the PSB meshes: real dev set and transfer picture")
    ap.add_argument("--real_targets", type=int, default=None, help="score only the first N real targets")
    ap.add_argument("--device", default=None)
    argv = list(sys.argv[1:] if argv is None else argv)
    args = ap.parse_args(argv)
    out = args.out or (Path("docs/evaluation") if args.checkpoint is None else Path(args.checkpoint).parent / "report")
    try:
        engine = Correspondence.load(args.checkpoint, device=args.device,
                                     category=(args.category or "chair") if args.checkpoint is None else None)
        args.category = scored_category(engine, args.category)
        name = args.checkpoint or f"model/checkpoints/{args.category}.pth"
        if args.real_targets is not None and args.real_targets < 1:
            raise ValueError(f"--real_targets must be >= 1, got {args.real_targets}")
        warn_if_trained_on_devset(engine, args.category)
        scores = write_report(engine, args.category, name, out, args.count, args.sources, args.psb,
                              real_targets=args.real_targets,
                              command=" ".join(["python -m training.report", *map(shlex.quote, argv)]))
    except (ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if scores["real"] is not None:
        print(f"real dev set:\n{format_table(scores['real'])}")
    if scores["real_sh3d"] is not None:
        print(f"Sweet Home 3D dev set:\n{format_table(scores['real_sh3d'])}")
    print(f"procedural:\n{format_table(scores['procedural'])}")
    print(f"wrote {out / (args.category + '.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
