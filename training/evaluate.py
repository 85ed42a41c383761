"""Evaluate a checkpoint on labelled shapes, with the nearest-neighbour baseline beside it.

    python -m training.evaluate --checkpoint runs/chair/final.pth --procedural chair --count 60
    python -m training.evaluate --checkpoint Corr-52.pth --data data/chair_test
    python -m training.evaluate --devset table --turned yaw   # targets turned, auto-aligned
    python -m training.evaluate --devset chair --set sh3d     # Sweet Home 3D chairs

Metrics (targets are all shapes but the first --sources, which lend their labels):
* label-transfer mIoU: each source lends each target point the label of its match (the
  source's labels guiding the match: `correspond(..., source_labels=)`), with the
  model's confidence in it (`Correspondence.labels_from`), and the point takes the
  label with the largest summed confidence (`model.labels.vote`, as
  `Correspondence.vote_labels` and the add-on do); per-shape mean IoU over the category's parts,
  a part absent from both prediction and truth counting 1 (ShapeNet-Part convention),
  then the mean;
* PCK at 0.05 and 0.10 of the target's bounding-box diagonal. Shapes with named
  `keypoints` (the real dev set, training/devset.py): each source's keypoints are mapped
  onto the target (the source's points matched onto the target, `correspond(target,
  source)`), the sources' estimates averaged and snapped to the nearest target point, and
  compared with the target's own keypoint of that name. Shapes without: part centres, the
  target point nearest each part's centroid matched onto the source and compared with the
  source point nearest the same part's centroid;
* with keypoints, also PCK at 0.05 and 0.10 of the target's bounding radius (the largest
  distance of its points from its bounding-box centre, about half the diagonal), each
  keypoint taken as its nearest target point: KeypointNet's and PDC's keypoint
  evaluation, and most likely the held-out ShapeNet figures' (docs/models.md, *Real
  shapes first*);
* with `--lookup`, the keypoints also looked up through the match the other way round, as
  a script holding only the target-to-source map would: each source keypoint's estimate
  is the target point whose match (`correspond(source, target)`, no labels) lies nearest
  it (the row "model, looked up");
* AUROC of the confidence for "this part exists on the source" over target points of
  source-target pairs where the target has a part the source lacks;
* AUROC of the confidence for "this point's label, from this source, is right" over all
  target points of all pairs (does a low confidence flag a wrong match?).
The baseline matches each point to the nearest source point after both shapes are
normalised (centre, unit diagonal); its "confidence" is minus that distance, and its
label the majority of the sources' (ties to the nearest).

With `--turned yaw` (or `any`) each target is first turned by a seeded random yaw about +Y
(or a random 3D rotation), keypoints with it, and every shape is prepared with
auto-alignment in that mode (`align="yaw"` or `True`): the figures a user gets from
shapes that arrive in any pose, beside the baseline under the same turns. Keypoints are
then named up to each target's turn symmetry (training/symmetry.py): a rectangular
table turned back by half a turn has its front-left foot where its back-right was.
"""
from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.spatial import cKDTree
from scipy.spatial.transform import Rotation
from scipy.stats import rankdata
from tqdm import tqdm

from model import Correspondence
from model.files import write_atomically
from model.alignment import AlignMode
from model.geometry import bounding_frame
from model.labels import vote

from .debian import FetchError
from .devset import devset_record, load_devset
from .devset_sh3d import load_sh3d_devset, sh3d_record
from .families import PART_NAMES, sample_shape
from .samples import assembly_sample, load_sample
from .symmetry import keypoint_renamings, yaw


@dataclass
class Scores:
    miou: float
    pck05: float
    pck10: float
    auroc: float
    per_part_iou: dict[str, float]
    label_auroc: float = float("nan")
    pck05_radius: float = float("nan")  # keypoints only: thresholds in units of the bounding radius
    pck10_radius: float = float("nan")
    # raw values behind the summary, for plots (training.report)
    pck_errors: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0))
    pck_errors_radius: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0))
    confidence_existing: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0))
    confidence_missing: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0))
    confidence_right: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0))
    confidence_wrong: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0))
    # named keypoints: each name's errors in units of the bounding radius
    keypoint_errors_radius: dict[str, np.ndarray] = field(repr=False, default_factory=dict)

    def summary(self) -> dict:
        return {"miou": self.miou, "pck05": self.pck05, "pck10": self.pck10, "auroc": self.auroc,
                "label_auroc": self.label_auroc, "pck05_radius": self.pck05_radius,
                "pck10_radius": self.pck10_radius, "per_part_iou": self.per_part_iou,
                "per_keypoint_pck05_radius": {k: _pck(v, 0.05) for k, v in self.keypoint_errors_radius.items()}}


def _pck(errors: np.ndarray, threshold: float) -> float:
    return 100 * float(np.mean(errors < threshold)) if len(errors) else float("nan")


def shape_miou(pred: np.ndarray, truth: np.ndarray, parts: Iterable[int]) -> tuple[float, dict[int, float]]:
    ious = {}
    for p in parts:
        inter = np.sum((pred == p) & (truth == p))
        union = np.sum((pred == p) | (truth == p))
        ious[p] = 1.0 if union == 0 else inter / union
    return float(np.mean(list(ious.values()))), ious


def auroc(positive: np.ndarray, negative: np.ndarray) -> float:
    """P(random positive scores above random negative), ties counted half."""
    if len(positive) == 0 or len(negative) == 0:
        return float("nan")
    ranks = rankdata(np.concatenate([positive, negative]))
    n_pos, n_neg = len(positive), len(negative)
    return float((ranks[:n_pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _normalised(points: np.ndarray) -> np.ndarray:
    lo, hi = points.min(0), points.max(0)
    return (points - (lo + hi) / 2) / np.linalg.norm(hi - lo)


def _part_keypoints(points: np.ndarray, labels: np.ndarray) -> dict[int, int]:
    """Index of the surface point nearest each part's centroid."""
    out = {}
    for p in np.unique(labels[labels >= 0]):
        c = points[labels == p].mean(0)
        out[int(p)] = int(np.argmin(((points - c) ** 2).sum(1)))
    return out


def diagonal_per_radius(points: np.ndarray) -> float:
    """A shape's bounding-box diagonal over its bounding radius (the largest distance of
    its points from the box's centre): turns errors per unit diagonal into per unit radius."""
    box = bounding_frame(points)
    return float(box.scale / np.linalg.norm(points - box.center, axis=1).max())


def _keypoint_errors(target: dict, estimates: dict[str, list[np.ndarray]], tree: cKDTree,
                     on_cloud: bool = False) -> dict[str, float]:
    """The sources' estimates of each keypoint on the target, averaged, snapped to the
    nearest target point -> by name, distances to the target's own keypoints, per unit diagonal.
    `on_cloud`: each keypoint of the target taken as its nearest target point, as
    KeypointNet's keypoints are points of the cloud (the dev set's lie on the surface,
    0.016-0.019 of the bounding radius from the nearest of 2,500 points, median).
    A target with `keypoint_renamings` (training/symmetry.py) is scored under the one
    that fits the estimates best: a symmetric table's keypoints are named up to its turns."""
    points = target["surface_points"]
    body = _labelled_points(target)
    diagonal = np.linalg.norm(body.max(0) - body.min(0))
    snapped = {name: points[tree.query(np.mean(positions, axis=0))[1]] for name, positions in estimates.items()}
    truth = ({name: points[tree.query(at)[1]] for name, at in target["keypoints"].items()} if on_cloud
             else target["keypoints"])
    best = None
    for renaming in target.get("keypoint_renamings", [{name: name for name in snapped}]):
        errors = {name: float(np.linalg.norm(at - truth[renaming[name]]) / diagonal) for name, at in snapped.items()}
        if best is None or sum(errors.values()) < sum(best.values()):
            best = errors
    return best


def _labelled_points(shape: dict) -> np.ndarray:
    """The shape's points with a label: unlabelled ones (a benchmark's stray points) set
    no keypoint's threshold."""
    labels = shape.get("surface_labels")
    if labels is None or not (labels >= 0).any():
        return shape["surface_points"]
    return shape["surface_points"][labels >= 0]


def random_rotation(mode: AlignMode, seed: int) -> np.ndarray:
    """A seeded random turn about +Y (mode "yaw") or 3D rotation (True)."""
    rng = np.random.default_rng(seed)
    if mode == "yaw":
        return yaw(rng.uniform(0, 360))
    return Rotation.random(random_state=rng.integers(2**31)).as_matrix()


def named_up_to_symmetry(shapes: list[dict], n_sources: int) -> list[dict]:
    """The shapes with each upright target's `keypoint_renamings` under its turn symmetries."""
    return list(shapes[:n_sources]) + [
        {**shape, "keypoint_renamings": keypoint_renamings(shape["surface_points"], shape["keypoints"])}
        for shape in shapes[n_sources:]]


def turned_targets(shapes: list[dict], n_sources: int, mode: AlignMode, seed: int = 0) -> list[dict]:
    """The shapes with each target (and its keypoints) turned by `random_rotation(mode, seed + i)`."""
    out = list(shapes[:n_sources])
    for i, shape in enumerate(shapes[n_sources:]):
        r = random_rotation(mode, seed + i)
        out.append({**shape, "surface_points": shape["surface_points"] @ r.T,
                    **({"keypoints": {k: r @ v for k, v in shape["keypoints"].items()}} if "keypoints" in shape else {})})
    return out


def evaluate(engine: Correspondence, shapes: list[dict[str, np.ndarray]], parts: dict[int, str],
             n_sources: int = 3, progress: bool = True, align: AlignMode = False,
             lookup: bool = False) -> dict[str, Scores]:
    """Model and nearest-neighbour scores over targets shapes[n_sources:], every shape
    prepared with auto-alignment `align`; with `lookup` and named keypoints, also the
    keypoints looked up through the target-to-source match ("lookup": keypoint scores only)."""
    sources, targets = shapes[:n_sources], shapes[n_sources:]
    if not sources or not targets:
        raise ValueError(f"need more than {n_sources} shapes to evaluate, got {len(shapes)}")
    with_keypoints = all("keypoints" in s for s in shapes)
    src_prep = [engine.prepare(s["surface_points"], align=align) for s in sources]
    src_norm = [_normalised(s["surface_points"]) for s in sources]
    src_tree = [cKDTree(norm) for norm in src_norm]
    src_keys = [_part_keypoints(s["surface_points"], s["surface_labels"]) for s in sources]
    # each named keypoint of a source as its nearest surface point
    src_named = [{k: int(cKDTree(s["surface_points"]).query(v)[1]) for k, v in s["keypoints"].items()}
                 if with_keypoints else {} for s in sources]
    methods = ("model", "nn", "lookup") if lookup and with_keypoints else ("model", "nn")
    acc = {m: {"miou": [], "pck": [], "pck_radius": [], "pos": [], "neg": [], "right": [], "wrong": [],
               "iou": {p: [] for p in parts}, "by_name": {}} for m in methods}
    for tgt in tqdm(targets, desc="evaluate", unit="shape", disable=not progress):
        tp, tl = tgt["surface_points"], tgt["surface_labels"]
        tn = _normalised(tp)
        t_tree = cKDTree(tn)
        t_keys = _part_keypoints(tp, tl)
        lent = {m: ([], []) for m in ("model", "nn")}  # each source's labels and the weight of their votes
        estimates = {m: {} for m in methods}
        tgt_prep = engine.prepare(tp, align=align)
        for s, prep, norm, tree, s_keys, named in zip(sources, src_prep, src_norm, src_tree, src_keys, src_named):
            sl = s["surface_labels"]
            res = engine.correspond(prep, tgt_prep, source_labels=sl)
            labels, label_conf = engine.labels_from(res, prep, sl, tgt_prep)
            dist, nn_idx = tree.query(tn)
            # existence AUROC, per pair where the target has a part the source lacks
            exists = np.isin(tl, sl)
            for m, conf, idx, lab, weight in (("model", res.confidence, res.source_index, labels, label_conf),
                                              ("nn", -dist, nn_idx, sl[nn_idx], 1.0 - 1e-3 * dist)):
                lent[m][0].append(lab)
                lent[m][1].append(weight)
                known = lab >= 0  # -1: unlabelled source points lend nothing
                if not exists.all():
                    acc[m]["pos"].append(conf[exists])
                    acc[m]["neg"].append(conf[~exists])
                right = known & (lab == tl)
                acc[m]["right"].append(conf[right])
                acc[m]["wrong"].append(conf[known & ~right])
                if not with_keypoints:  # part-centre PCK in the source's normalised frame
                    for p, ti in t_keys.items():
                        if p in s_keys:
                            acc[m]["pck"].append(float(np.linalg.norm(norm[idx[ti]] - norm[s_keys[p]])))
            if with_keypoints:  # the source's keypoints mapped onto the target
                shared = [k for k in named if k in tgt["keypoints"]]
                back = engine.correspond(tgt_prep, prep).mapped
                looked = engine.correspond(prep, tgt_prep).mapped if "lookup" in methods else None
                for k in shared:
                    estimates["model"].setdefault(k, []).append(back[named[k]])
                    estimates["nn"].setdefault(k, []).append(tp[t_tree.query(norm[named[k]])[1]])
                    if looked is not None:
                        at = s["surface_points"][named[k]]
                        estimates["lookup"].setdefault(k, []).append(tp[np.argmin(np.linalg.norm(looked - at, axis=1))])
        t_raw_tree = cKDTree(tp) if with_keypoints else None
        for m in methods:
            if m in lent:
                miou, ious = shape_miou(vote(np.stack(lent[m][0]), np.stack(lent[m][1]))[0], tl, parts)
                acc[m]["miou"].append(miou)
                for p, v in ious.items():
                    acc[m]["iou"][p].append(v)
            if with_keypoints:
                acc[m]["pck"] += _keypoint_errors(tgt, estimates[m], t_raw_tree).values()
                per_radius = diagonal_per_radius(_labelled_points(tgt))
                for name, e in _keypoint_errors(tgt, estimates[m], t_raw_tree, on_cloud=True).items():
                    acc[m]["pck_radius"].append(e * per_radius)
                    acc[m]["by_name"].setdefault(name, []).append(e * per_radius)
    out = {}
    for m, a in acc.items():
        pck, pck_radius = np.asarray(a["pck"]), np.asarray(a["pck_radius"])
        pos = np.concatenate(a["pos"]) if a["pos"] else np.zeros(0)
        neg = np.concatenate(a["neg"]) if a["neg"] else np.zeros(0)
        right = np.concatenate(a["right"]) if a["right"] else np.zeros(0)
        wrong = np.concatenate(a["wrong"]) if a["wrong"] else np.zeros(0)
        out[m] = Scores(
            miou=100 * float(np.mean(a["miou"])) if a["miou"] else float("nan"),
            pck05=_pck(pck, 0.05), pck10=_pck(pck, 0.10),
            pck05_radius=_pck(pck_radius, 0.05), pck10_radius=_pck(pck_radius, 0.10),
            auroc=auroc(pos, neg),
            per_part_iou={parts[p]: 100 * float(np.mean(v)) if v else float("nan") for p, v in a["iou"].items()},
            label_auroc=auroc(right, wrong),
            pck_errors=pck, pck_errors_radius=pck_radius, confidence_existing=pos, confidence_missing=neg,
            confidence_right=right, confidence_wrong=wrong,
            keypoint_errors_radius={k: np.asarray(v) for k, v in sorted(a["by_name"].items())},
        )
    return out


def evaluate_source_sets(engine: Correspondence, shapes: list[dict[str, np.ndarray]], parts: dict[int, str],
                         n_sources: int, n_sets: int, **options) -> dict[str, Scores]:
    """`evaluate` with `n_sets` sets of sources in turn (the shapes rotated by `n_sources`
    each time, so each set's sources are the next shapes), pooled: keypoint errors and
    confidences together, mIoU and part IoUs averaged over the sets.  Scores from one set
    of sources swing with the sources chosen (docs/models.md, *Real shapes first*)."""
    if not 1 <= n_sets * n_sources < len(shapes):
        raise ValueError(f"{n_sets} source set(s) of {n_sources} need more than {n_sets * n_sources} shapes, "
                         f"got {len(shapes)}")
    runs = [evaluate(engine, shapes[k * n_sources:] + shapes[:k * n_sources], parts, n_sources, **options)
            for k in range(n_sets)]
    if n_sets == 1:
        return runs[0]
    out = {}
    for m in runs[0]:
        every = [r[m] for r in runs]
        pooled = {name: np.concatenate([getattr(r, name) for r in every])
                  for name in ("pck_errors", "pck_errors_radius", "confidence_existing", "confidence_missing",
                               "confidence_right", "confidence_wrong")}
        pck, pck_radius = pooled["pck_errors"], pooled["pck_errors_radius"]
        out[m] = Scores(
            miou=float(np.mean([r.miou for r in every])),
            pck05=_pck(pck, 0.05), pck10=_pck(pck, 0.10),
            pck05_radius=_pck(pck_radius, 0.05), pck10_radius=_pck(pck_radius, 0.10),
            auroc=auroc(pooled["confidence_existing"], pooled["confidence_missing"]),
            per_part_iou={p: float(np.mean([r.per_part_iou[p] for r in every])) for p in every[0].per_part_iou},
            label_auroc=auroc(pooled["confidence_right"], pooled["confidence_wrong"]), **pooled,
            keypoint_errors_radius={k: np.concatenate([r.keypoint_errors_radius.get(k, np.zeros(0)) for r in every])
                                    for k in sorted({k for r in every for k in r.keypoint_errors_radius})})
    return out


def procedural_shapes(category: str, count: int, first: int = 1_000_000) -> list[dict[str, np.ndarray]]:
    """Held-out procedural shapes: seeds far from the training range (which starts at 0)."""
    return [assembly_sample(sample_shape(category, np.random.default_rng([first + i, 7])), seed=first + i)
            for i in range(count)]


def labelled_samples(folder: Path) -> list[dict[str, np.ndarray]]:
    """The samples of a folder, each with part labels: unlabelled ones (meshes prepared
    without labels) would score as if every part were missing."""
    files = sorted(folder.glob("*.npz"))
    if not files:
        raise ValueError(f"no .npz samples in {folder}")
    shapes = [load_sample(f, ("surface_points", "surface_labels")) for f in files]
    unlabelled = [f.name for f, shape in zip(files, shapes) if not (shape["surface_labels"] >= 0).any()]
    if unlabelled:
        raise ValueError(f"{len(unlabelled)} of {len(files)} samples in {folder} have no part labels "
                         f"(first {unlabelled[0]}); evaluation transfers labels between shapes and needs "
                         f"them on every one (`training.prepare --seg_labels` reads them from .seg files)")
    return shapes


# The methods scored, in the order the tables show them.
METHOD_NAMES = {"model": "model", "lookup": "looked up", "nn": "nearest neighbour"}


def format_table(scores: dict[str, Scores]) -> str:
    """Markdown table, model above nearest neighbour; the PCK at the bounding radius's
    scale (r) only where keypoints gave it."""
    radius = not np.isnan(scores["model"].pck05_radius)
    parts = scores["model"].per_part_iou
    lines = ["| method | mIoU | PCK@0.05 | PCK@0.10 | " + ("PCK@0.05r | PCK@0.10r | " if radius else "") +
             "existence AUROC | right-label AUROC | " + " | ".join(f"IoU {p}" for p in parts) + " |"]
    lines.append("|" + " --- |" * (6 + 2 * radius + len(parts)))
    for name in (m for m in METHOD_NAMES if m in scores):
        s = scores[name]
        label = "model, looked up" if name == "lookup" else METHOD_NAMES[name]
        cells = [label, _cell(s.miou), f"{s.pck05:.1f}", f"{s.pck10:.1f}"]
        cells += [f"{s.pck05_radius:.1f}", f"{s.pck10_radius:.1f}"] if radius else []
        cells += [_auroc_cell(s.auroc), _auroc_cell(s.label_auroc)] + [_cell(v) for v in s.per_part_iou.values()]
        lines.append("| " + " | ".join(cells) + " |")
    if np.isnan(scores["model"].auroc):
        lines.append("\nexistence AUROC n/a: no target has a part its sources lack")
    return "\n".join(lines)


def format_keypoint_table(scores: dict[str, Scores]) -> str:
    """Each named keypoint's PCK@0.05r / 0.10r: model / (looked up /) nearest neighbour."""
    methods = [m for m in METHOD_NAMES if m in scores]
    errors = [scores[m].keypoint_errors_radius for m in methods]
    order = " / ".join(METHOD_NAMES[m] for m in methods)
    rows = [f"| keypoint ({order}) | estimates | PCK@0.05r | PCK@0.10r |", "| --- | --- | --- | --- |"]
    for name in errors[0]:
        cells = [" / ".join(f"{_pck(e[name], t):.1f}" for e in errors) for t in (0.05, 0.10)]
        rows.append(f"| {name} | {len(errors[0][name])} | {cells[0]} | {cells[1]} |")
    return "\n".join(rows)


def _auroc_cell(value: float) -> str:
    return "n/a" if np.isnan(value) else f"{value:.3f}"


def _cell(value: float) -> str:
    return "n/a" if np.isnan(value) else f"{value:.1f}"


def part_names(category: str, shapes: list[dict[str, np.ndarray]]) -> dict[int, str]:
    """The category's part names where the shapes' labels are among them; else every label
    the shapes carry, named by number (a category of one's own, or one's own numbering)."""
    labels = {int(k) for k in np.unique(np.concatenate([s["surface_labels"] for s in shapes])) if k >= 0}
    known = PART_NAMES.get(category, {})
    return known if labels <= set(known) else {k: f"part {k}" for k in sorted(labels)}


def scored_category(engine: Correspondence, asked: str | None, own_labels: bool = False) -> str:
    """The category to score a model as: the one asked for (with a note when the checkpoint
    is of another), else the checkpoint's own.  `own_labels`: the shapes' labels name the
    parts, so any category will do."""
    category = asked or engine.category
    if category not in PART_NAMES and not own_labels:
        raise ValueError(f"no part names known for category {category!r}: give one of {', '.join(sorted(PART_NAMES))}")
    if asked and engine.category and engine.category != asked:
        print(f"note: the checkpoint is a {engine.category!r} model, scored here as {asked!r}", file=sys.stderr)
    return category


def main(argv: Iterable[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m training.evaluate", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", default=None, help="checkpoint file (default: the shipped one for the category)")
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--data", type=Path, help="folder of .npz samples with consistent part labels")
    src.add_argument("--procedural", metavar="CATEGORY", help="generate held-out shapes of a family")
    src.add_argument("--devset", metavar="CATEGORY", help="a real labelled dev set (--set)")
    ap.add_argument("--set", choices=("psb", "sh3d"), default="psb",
                    help="--devset: PSB meshes (training/devset.py, default) or Sweet Home 3D chairs "
                         "(training/devset_sh3d.py)")
    ap.add_argument("--count", type=int, default=60, help="procedural shapes (sources included)")
    ap.add_argument("--sources", type=int, default=None,
                    help="labelled source shapes (default 3; the dev set's own for --devset)")
    ap.add_argument("--targets", type=int, default=None, help="--devset: score only its first N targets")
    ap.add_argument("--turned", choices=("yaw", "any"), default=None,
                    help="turn each target by a seeded random yaw or 3D rotation and auto-align every shape")
    ap.add_argument("--device", default=None)
    ap.add_argument("--fit_steps", type=int, default=None,
                    help="steps fitting each shape's code to its surface (default: the engine's; 0: E's code as is)")
    ap.add_argument("--source_sets", type=int, default=1,
                    help="score this many sets of sources in turn (the next shapes each time) and pool them")
    ap.add_argument("--per_keypoint", action="store_true",
                    help="named keypoints: also each one's PCK@0.05r / 0.10r (model / nearest neighbour)")
    ap.add_argument("--lookup", action="store_true",
                    help="named keypoints: also looked up through the target-to-source match (row \"model, looked up\")")
    ap.add_argument("--json", type=Path, help="also write the scores here")
    args = ap.parse_args(list(argv) if argv is not None else None)
    try:
        fit = {} if args.fit_steps is None else {"fit_steps": args.fit_steps}
        named = args.procedural or args.devset
        engine = Correspondence.load(args.checkpoint, device=args.device,
                                     category=named if args.checkpoint is None else None, **fit)
        category = scored_category(engine, named, own_labels=args.data is not None)
        if args.json and not args.json.parent.is_dir():
            raise ValueError(f"--json {args.json}: no folder {args.json.parent}")
        n_sources = 3 if args.sources is None else args.sources
        if n_sources < 1:
            raise ValueError(f"--sources must be >= 1, got {n_sources}")
        if args.source_sets < 1:
            raise ValueError(f"--source_sets must be >= 1, got {args.source_sets}")
        if args.procedural:
            shapes = procedural_shapes(args.procedural, args.count)
        elif args.devset:
            if args.targets is not None and args.targets < 1:
                raise ValueError(f"--targets must be >= 1, got {args.targets}")
            if args.set == "sh3d":
                shapes = load_sh3d_devset(args.devset, targets=args.targets)
            else:
                shapes = load_devset(args.devset, targets=args.targets)
            if args.sources is None:
                record = sh3d_record() if args.set == "sh3d" else devset_record()
                n_sources = len(record["categories"][args.devset]["sources"])
        else:
            shapes = labelled_samples(args.data)
        if args.lookup and not all("keypoints" in shape for shape in shapes):
            raise ValueError("--lookup looks up named keypoints: give --devset (these shapes have none)")
        align = {None: False, "yaw": "yaw", "any": True}[args.turned]
        if align and args.source_sets > 1:
            raise ValueError("--source_sets and --turned: give one or the other (the turned shapes are the targets)")
        if align and all("keypoints" in shape for shape in shapes):
            shapes = named_up_to_symmetry(shapes, n_sources)
        if align:
            shapes = turned_targets(shapes, n_sources, align)
        scores = evaluate_source_sets(engine, shapes, part_names(category, shapes), n_sources, args.source_sets,
                                      align=align, lookup=args.lookup)
    except (ValueError, FetchError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    turned = f", targets turned ({args.turned}) and auto-aligned" if align else ""
    sets = f" (in turn {args.source_sets} sets of them, pooled)" if args.source_sets > 1 else ""
    print(f"{category}: {len(shapes) - n_sources} targets, {n_sources} labelled sources{sets}{turned}")
    print(format_table(scores))
    if args.per_keypoint:
        print(format_keypoint_table(scores))
    if args.json:
        summary = json.dumps({k: v.summary() for k, v in scores.items()}, indent=2)
        write_atomically(args.json, lambda tmp: Path(tmp).write_text(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
