"""Evaluation report of a checkpoint: a markdown page with the evaluation table (model vs
nearest neighbour), per-part IoU, and plots of PCK over thresholds, of the confidence on
existing vs missing parts, and of part labels transferred onto the real PSB meshes
(needs matplotlib: pip install -e .[docs]).

    python -m training.report --category chair [--checkpoint FILE] [--out docs/evaluation]

Writes <out>/<category>.md, <category>_pck.png, <category>_confidence.png,
<category>_psb.png and <category>.json (the summary figures).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from model import Correspondence

from .evaluate import Scores, evaluate, format_table, procedural_shapes
from .families import PART_NAMES
from .figures import pyplot, transfer_figure

DEFAULT_PSB = Path(__file__).resolve().parents[2] / "shared" / "data" / "psb"
THRESHOLDS = np.linspace(0.0, 0.25, 51)
LABELS = {"model": "model", "nn": "nearest neighbour"}


def pck_curve(errors: np.ndarray, thresholds: np.ndarray = THRESHOLDS) -> np.ndarray:
    """Percentage of errors below each threshold."""
    if len(errors) == 0:
        return np.full(len(thresholds), np.nan)
    return 100 * (errors[None, :] < thresholds[:, None]).mean(axis=1)


def plot_pck(scores: dict[str, Scores], category: str, out: Path) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5, 3.6))
    for name, label in LABELS.items():
        ax.plot(THRESHOLDS, pck_curve(scores[name].pck_errors), label=label, lw=2)
    ax.set_xlabel("threshold (fraction of the bounding-box diagonal)")
    ax.set_ylabel("part centres matched (%)")
    ax.set_title(f"{category}: PCK over thresholds")
    ax.set_ylim(0, 100)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


def plot_confidence(scores: Scores, category: str, out: Path) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5, 3.6))
    bins = np.linspace(0, 1, 26)
    for values, label in ((scores.confidence_existing, "part exists on the source"),
                          (scores.confidence_missing, "part missing on the source")):
        if len(values):
            ax.hist(values, bins=bins, density=True, alpha=0.55, label=f"{label} ({len(values)} points)")
    ax.set_xlabel("confidence")
    ax.set_ylabel("density")
    ax.set_title(f"{category}: confidence, AUROC {scores.auroc:.3f}")
    if len(scores.confidence_existing) or len(scores.confidence_missing):
        ax.legend(fontsize=8)
    else:
        ax.text(0.5, 0.5, "no pair with a missing part", ha="center", transform=ax.transAxes)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


def report_markdown(category: str, checkpoint: str, scores: dict[str, Scores], n_targets: int, n_sources: int,
                    seconds: float, psb_figure: bool) -> str:
    model, nn = scores["model"], scores["nn"]
    lines = [
        f"# Evaluation: {category}",
        "",
        f"Checkpoint `{checkpoint}`, {n_targets} held-out procedural {category} targets (seeds from 1,000,000, "
        f"never seen in training), labels transferred from {n_sources} labelled sources; "
        f"{seconds:.0f} s on this machine. Reproduce: "
        f"`python -m training.report --category {category}`.",
        "",
        format_table(scores),
        "",
        f"Model minus nearest neighbour: mIoU {model.miou - nn.miou:+.1f}, PCK@0.05 {model.pck05 - nn.pck05:+.1f}, "
        f"PCK@0.10 {model.pck10 - nn.pck10:+.1f}, AUROC {model.auroc - nn.auroc:+.3f}.",
        "",
        "## PCK over thresholds",
        "",
        "Each target part centre is matched onto a source and compared with the same part's centre there.",
        "",
        f"![PCK over thresholds]({category}_pck.png)",
        "",
        "## Confidence on existing vs missing parts",
        "",
        "Target points of pairs where the target has a part the source lacks: a point on a part the source "
        "also has should score high, a point on the missing part low.",
        "",
        f"![Confidence histogram]({category}_confidence.png)",
    ]
    if psb_figure:
        lines += ["", "## Real meshes", "",
                  "Part labels of a procedural source transferred onto the real PSB meshes "
                  "(grey: confidence below 0.05).", "", f"![Transfer onto PSB meshes]({category}_psb.png)"]
    return "\n".join(lines) + "\n"


def write_report(engine: Correspondence, category: str, checkpoint: str, out: Path, count: int = 40,
                 n_sources: int = 3, psb: Path | None = DEFAULT_PSB, progress: bool = True) -> dict[str, Scores]:
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    scores = evaluate(engine, procedural_shapes(category, count), PART_NAMES[category], n_sources, progress)
    seconds = time.perf_counter() - start
    plot_pck(scores, category, out / f"{category}_pck.png")
    plot_confidence(scores["model"], category, out / f"{category}_confidence.png")
    psb_figure = psb is not None and (psb / category).is_dir()
    if psb_figure:
        transfer_figure(engine, category, psb, out / f"{category}_psb.png")
    (out / f"{category}.json").write_text(json.dumps({k: v.summary() for k, v in scores.items()}, indent=2))
    (out / f"{category}.md").write_text(
        report_markdown(category, checkpoint, scores, count - n_sources, n_sources, seconds, psb_figure))
    return scores


def main(argv: Iterable[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m training.report", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--category", default="chair", choices=sorted(PART_NAMES))
    ap.add_argument("--checkpoint", default=None, help="checkpoint file (default: the shipped one)")
    ap.add_argument("--out", type=Path, default=Path("docs/evaluation"))
    ap.add_argument("--count", type=int, default=40, help="procedural shapes, sources included")
    ap.add_argument("--sources", type=int, default=3)
    ap.add_argument("--psb", type=Path, default=DEFAULT_PSB, help="real meshes for the transfer picture")
    ap.add_argument("--device", default=None)
    args = ap.parse_args(list(argv) if argv is not None else None)
    try:
        engine = Correspondence.load(args.checkpoint, device=args.device,
                                     category=args.category if args.checkpoint is None else None)
        name = args.checkpoint or f"model/checkpoints/{args.category}.pth"
        scores = write_report(engine, args.category, name, args.out, args.count, args.sources, args.psb)
    except (ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(format_table(scores))
    print(f"wrote {args.out / (args.category + '.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
