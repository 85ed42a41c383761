"""Build the real dev set's data file and contact sheets (training/devset.py reads them).

Each PSB segment gets a part from a rule on the upright mesh (where the segment lies
against the largest horizontal segment, the body's axis, ...), checked by eye on the
contact sheets: where the rule was wrong the rule was mended, so the file is always what
this module makes of the meshes (docs/evaluation/devset.md). Keypoints follow from the
labelled parts: extreme points of a part in named directions (a chair's front
left foot is the leg point lowest and furthest to the front and left).

    python -m training.devset_build                      # -> training/data/psb_devset.json
    python -m training.devset_build --sheets docs/evaluation   # + devset_<category>.png
"""
from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from model.geometry import sample_surface

from .devset import DEFAULT_PSB, DEVSET, face_parts, upright_mesh
from .families import PART_NAMES

CATEGORIES = ("chair", "table", "airplane")
NAMES = {"chair": range(101, 121), "table": range(141, 161), "airplane": range(61, 81)}
# The labelled sources of each category (the rest are targets): one plain and varied enough
# that every part of the category is on at least one of them.
SOURCES = {"chair": ["101", "105", "110"], "table": ["141", "145", "150"], "airplane": ["64", "70", "72"]}
# Meshes left out, and why.
EXCLUDED = {"61": "which end is the nose is unclear: a canard, or turned backwards in psb_rotations.json"}
FOOT_BAND = 0.04  # points this close to a corner's lowest leg point (diagonal 1) count as its foot
# A corner's feet are sought among the leg points on its side of the legs' middle in plan.
# Its lowest leg point this far above the legs' lowest is no foot (a tripod's empty corner,
# a leg bending in toward a pedestal), and two corners' feet this close are one foot (a
# leg on the line between two corners): neither is named.
FOOT_REACH = 0.1
FOOT_DISTINCT = 0.05
TOP_BAND = 0.04
# Weight of height in the directions a foot (down), a back's top corner and a seat's front
# corner (up) are the extremes in.  On a vertical face every height is as far out, and
# without it the samples' noise put the point anywhere in the band: PSB chair feet were a
# median 0.029 of the diagonal above the floor (docs/evaluation/devset.md).
HEIGHT_TIE = 0.5
# The fuselage's rear end is sought among body and tail points this close (diagonal 1) to
# the body's middle in x and below its top: PSB cuts many fuselages where the tail begins
# and labels the tail cone tail, so the body's own rear end was that cut, up to a quarter of
# the length short of the aircraft's (docs/evaluation/devset.md). The fin's top must lie as
# close to that middle: PSB airplane 75's V-tail put its "fin top" on a tail surface's tip.
TAIL_AXIS_BAND = 0.03
BODY_TOP = 98.0  # percentile of the body's heights taken as its top
# A segment at least half as wide as a chair's seat or a table's top, lying within this
# (diagonal 1) below its underside, is its rim or underside: PSB cuts some seats into a
# cushion, a board under it and the board's rim.
UNDERSIDE = 0.06
NARROW = 0.1  # a table piece narrower than this (diagonal 1) is part of a leg, not a beam


def segment_stats(mesh, segments: np.ndarray) -> dict[int, dict]:
    """Area-weighted centroid, bounding box, area share and horizontal share of each segment."""
    area = mesh.area_faces
    centroid = mesh.triangles_center
    horizontal = np.abs(mesh.face_normals[:, 1]) > 0.8
    out = {}
    for s in np.unique(segments):
        m = segments == s
        w = area[m] / max(area[m].sum(), 1e-12)
        verts = mesh.vertices[np.unique(mesh.faces[m])]
        out[int(s)] = {"centroid": (centroid[m] * w[:, None]).sum(0), "lo": verts.min(0), "hi": verts.max(0),
                       "area": area[m].sum() / area.sum(), "flat": float((w * horizontal[m]).sum()),
                       "flat_area": float(area[m][horizontal[m]].sum())}
    return out


def chair_rule(stats: dict[int, dict], floor: float, ceiling: float) -> dict[int, str]:
    seat = max(stats, key=lambda s: stats[s]["flat_area"] if stats[s]["centroid"][1] < floor + 0.75 * (ceiling - floor) else 0)
    seat_y, seat_z = stats[seat]["centroid"][1], stats[seat]["centroid"][2]
    seat_lo, seat_hi = stats[seat]["lo"], stats[seat]["hi"]
    out = {}
    for s, st in stats.items():
        c = st["centroid"]
        if s == seat or (_rim_or_underside(st, stats[seat]) and st["hi"][1] <= seat_hi[1]):
            out[s] = "seat"  # the seat's rim and underside, as a table top's
        elif c[1] < seat_y - 0.02:
            out[s] = "leg"
        elif st["hi"][1] > seat_y + 0.25 * (ceiling - seat_y) and c[2] > seat_z + 0.3 * (seat_hi[2] - seat_z):
            out[s] = "back"
        elif abs(c[0]) > 0.5 * max(abs(seat_lo[0]), abs(seat_hi[0])):
            out[s] = "arm"
        else:
            out[s] = "seat"
    return out


def table_rule(stats: dict[int, dict], floor: float, ceiling: float) -> dict[int, str]:
    top = max(stats, key=lambda s: stats[s]["flat_area"] * (stats[s]["centroid"][1] > floor + 0.4 * (ceiling - floor)))
    out = {}
    for s, st in stats.items():
        if s == top or _rim_or_underside(st, stats[top]):
            out[s] = "top"  # the top's rim and underside
        elif st["hi"][1] - st["lo"][1] >= _width(st) or _width(st) < NARROW:
            out[s] = "leg"  # upright pieces, also a turned leg cut into rings
        else:
            out[s] = "support"  # aprons, stretchers, shelves, feet runners
    return out


def _rim_or_underside(st: dict, part: dict) -> bool:
    """Whether a segment is at least half as wide as `part` and lies within UNDERSIDE below
    its underside."""
    return st["lo"][1] > part["lo"][1] - UNDERSIDE and _width(st) > 0.5 * _width(part)


def _width(st: dict) -> float:
    return float(max(st["hi"][0] - st["lo"][0], st["hi"][2] - st["lo"][2]))


def airplane_rule(stats: dict[int, dict], floor: float, ceiling: float) -> dict[int, str]:
    body = max(stats, key=lambda s: stats[s]["hi"][2] - stats[s]["lo"][2] - abs(stats[s]["centroid"][0]))
    b = stats[body]
    radius = (b["hi"][1] - b["lo"][1]) / 2  # the fuselage's height: its width takes in wing roots
    out = {}
    for s, st in stats.items():
        c, span = st["centroid"], st["hi"][0] - st["lo"][0]
        if s == body:
            out[s] = "body"
        elif c[2] > b["lo"][2] + 0.75 * (b["hi"][2] - b["lo"][2]):
            out[s] = "tail"
        elif span < 3 * radius and abs(c[0]) > radius and st["area"] < 0.08:
            out[s] = "engine"  # a compact pod off the body's axis
        elif abs(c[0]) > 2.5 * radius or span > 4 * radius:
            out[s] = "wing"
        else:
            out[s] = "body"  # nose cones, canopies
    return out


RULES = {"chair": chair_rule, "table": table_rule, "airplane": airplane_rule}
SPLIT_MARGIN = 0.03  # a leg segment reaching this far above the seat is a leg and a back post


def chair_splits(stats: dict[int, dict], mapping: dict[int, str]) -> list[dict]:
    """Leg segments that go on up past the seat: above the seat's top they are back."""
    seat_top = max(stats[s]["hi"][1] for s, p in mapping.items() if p == "seat")
    return [{"segment": str(s), "y": round(float(seat_top), 4), "above": "back"}
            for s, p in mapping.items() if p == "leg" and stats[s]["hi"][1] > seat_top + SPLIT_MARGIN]


def _extreme(points: np.ndarray, direction: np.ndarray) -> np.ndarray:
    return points[np.argmax(points @ direction)]


def _fuselage_axis(body: np.ndarray, tail: np.ndarray) -> np.ndarray:
    """Body and tail points along the fuselage: within TAIL_AXIS_BAND of the body's middle in
    x (not the stabilisers) and below the body's top (not the fin)."""
    both = np.concatenate([body, tail])
    near = (np.abs(both[:, 0] - np.median(body[:, 0])) < TAIL_AXIS_BAND) & (both[:, 1] < np.percentile(body[:, 1], BODY_TOP))
    return both[near] if near.any() else body


def _fin_top(body: np.ndarray, tail: np.ndarray) -> np.ndarray | None:
    """The tail's highest point where it lies on the fuselage's axis (within TAIL_AXIS_BAND
    of the body's middle in x); None where it does not: a V-tail's or twin fins' top is no
    fin's top."""
    if not len(tail) or not len(body):
        return None
    top = _extreme(tail, np.array([0.0, 1.0, 0.0]))
    return top if abs(top[0] - np.median(body[:, 0])) < TAIL_AXIS_BAND else None


def keypoints(category: str, points: np.ndarray, labels: np.ndarray) -> dict[str, np.ndarray]:
    """Named keypoints from labelled surface points in the model frame (+Y up, front -Z,
    right +X as seen by someone sitting on the chair or flying the airplane)."""
    part = {name: points[labels == i] for i, name in PART_NAMES[category].items()}
    out: dict[str, np.ndarray] = {}
    sides = {"left": -1.0, "right": 1.0}
    ends = {"front": -1.0, "back": 1.0}

    def feet(legs: np.ndarray) -> None:
        if not len(legs):
            return
        middle = (legs.min(0) + legs.max(0)) / 2
        found = {}
        for e, sz in ends.items():
            for s, sx in sides.items():
                corner = legs[(sx * (legs[:, 0] - middle[0]) > 0) & (sz * (legs[:, 2] - middle[2]) > 0)]
                if len(corner) and corner[:, 1].min() < legs[:, 1].min() + FOOT_REACH:
                    low = corner[corner[:, 1] < corner[:, 1].min() + FOOT_BAND]
                    found[f"foot_{e}_{s}"] = _extreme(low, np.array([sx, -HEIGHT_TIE, sz]))
        for name, at in found.items():
            if all(np.linalg.norm(at - other) >= FOOT_DISTINCT for n, other in found.items() if n != name):
                out[name] = at

    if category == "chair":
        feet(part["leg"])
        back = part["back"]
        if len(back):
            high = back[back[:, 1] > back[:, 1].max() - TOP_BAND]
            for s, sx in sides.items():
                out[f"back_top_{s}"] = _extreme(high, np.array([sx, HEIGHT_TIE, 0.0]))
        for s, sx in sides.items():
            if len(part["seat"]):
                out[f"seat_front_{s}"] = _extreme(part["seat"], np.array([sx, HEIGHT_TIE, -1.0]))
            arm = part["arm"][part["arm"][:, 0] * sx > 0]
            if len(arm):
                out[f"arm_front_{s}"] = _extreme(arm, np.array([0.0, 0.5, -1.0]))
    elif category == "table":
        feet(part["leg"])
        for e, sz in ends.items():
            for s, sx in sides.items():
                if len(part["top"]):
                    out[f"top_{e}_{s}"] = _extreme(part["top"], np.array([sx, 0.2, sz]))
    else:
        body, wing, tail = part["body"], part["wing"], part["tail"]
        if len(body):
            out["nose"] = _extreme(body, np.array([0.0, 0.0, -1.0]))
            out["tail_end"] = _extreme(_fuselage_axis(body, tail), np.array([0.0, 0.0, 1.0]))
        for s, sx in sides.items():
            if len(wing):
                out[f"wing_tip_{s}"] = _extreme(wing, np.array([sx, 0.0, 0.0]))
            if len(tail):
                out[f"stabiliser_tip_{s}"] = _extreme(tail, np.array([sx, 0.0, 0.0]))
        fin_top = _fin_top(body, tail)
        if fin_top is not None:
            out["fin_top"] = fin_top
    return out


def build(psb: Path = DEFAULT_PSB, categories: Iterable[str] = CATEGORIES) -> dict:
    record = {"note": "Real dev set: PSB meshes, each segment mapped onto its category's parts, with keypoints "
                      "in the upright model frame (+Y up, front -Z, diagonal 1). Built by "
                      "`python -m training.devset_build`; for measuring only, never trained on.",
              "categories": {}}
    for category in categories:
        shapes = {}
        for name in (str(n) for n in NAMES[category] if str(n) not in EXCLUDED):
            mesh, segments = upright_mesh(psb, category, name)
            stats = segment_stats(mesh, segments)
            floor, ceiling = mesh.vertices[:, 1].min(), mesh.vertices[:, 1].max()
            rule = RULES[category](stats, floor, ceiling)
            shape = {"segments": {str(s): p for s, p in rule.items()},
                     "splits": chair_splits(stats, rule) if category == "chair" else []}
            labels = face_parts(mesh, segments, shape, category)
            pts, face, _ = sample_surface(np.asarray(mesh.vertices), np.asarray(mesh.faces), 20000, seed=1)
            keys = keypoints(category, pts, labels[face])
            shape["keypoints"] = {k: np.round(v, 4).tolist() for k, v in keys.items()}
            shapes[name] = shape
        record["categories"][category] = {
            "parts": list(PART_NAMES[category].values()), "sources": SOURCES[category],
            "targets": [n for n in shapes if n not in SOURCES[category]], "shapes": shapes,
            "excluded": {n: why for n, why in EXCLUDED.items() if int(n) in NAMES[category]}}
    return record


VIEWS = {"chair": ((18, -60), (18, 120)), "table": ((18, -60), (18, 120)), "airplane": ((80, -90), (15, -60))}


def contact_sheet(record: dict, category: str, out: Path, psb: Path = DEFAULT_PSB,
                  meshes: Callable[[str], tuple] | None = None) -> None:
    """Every dev mesh of a category coloured by part, its keypoints as black dots, in two
    views (furniture: front-left and back-right; airplanes: from above and front-left).
    `meshes(name)` -> (mesh, per-face parts); default: the PSB meshes and their record."""
    from .figures import PART_COLORS, pyplot
    from mpl_toolkits.mplot3d.art3d import Poly3DCollection

    plt = pyplot()
    entry = record["categories"][category]
    names = entry["sources"] + entry["targets"]
    cols = 8
    rows = (2 * len(names) + cols - 1) // cols
    fig = plt.figure(figsize=(3 * cols, 3.2 * rows))
    for i, name in enumerate(names):
        if meshes is None:
            mesh, segments = upright_mesh(psb, category, name)
            labels = face_parts(mesh, segments, entry["shapes"][name], category)
        else:
            mesh, labels = meshes(name)
        keys = np.array(list(entry["shapes"][name]["keypoints"].values())).reshape(-1, 3)
        tri = np.asarray(mesh.vertices)[mesh.faces]
        normal = mesh.face_normals
        for j, (elev, azim) in enumerate(VIEWS[category]):
            ax = fig.add_subplot(rows, cols, 2 * i + j + 1, projection="3d")
            # model frame shown with Y vertical: plot axes (x, -z, y)
            light = np.abs(normal @ np.array([0.4, 0.7, -0.6]))
            shade = PART_COLORS[labels] * (0.45 + 0.55 * light[:, None])
            ax.add_collection3d(Poly3DCollection(tri[:, :, [0, 2, 1]] * [1, -1, 1], facecolors=np.clip(shade, 0, 1),
                                                 linewidths=0))
            if len(keys):
                ax.scatter(keys[:, 0], -keys[:, 2], keys[:, 1], c="k", s=10, depthshade=False)
            for setter in (ax.set_xlim, ax.set_ylim, ax.set_zlim):
                setter(-0.38, 0.38)
            ax.view_init(elev=elev, azim=azim)
            ax.set_axis_off()
            role = "source" if name in entry["sources"] else "target"
            ax.set_title(f"{name} ({role})" if j == 0 else "", fontsize=8)
    handles = [plt.Rectangle((0, 0), 1, 1, color=PART_COLORS[i]) for i in PART_NAMES[category]]
    fig.legend(handles, list(PART_NAMES[category].values()), loc="lower center", ncol=len(handles))
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=60)
    plt.close(fig)


def main(argv: Iterable[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m training.devset_build", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--psb", type=Path, default=DEFAULT_PSB)
    ap.add_argument("--out", type=Path, default=DEVSET)
    ap.add_argument("--sheets", type=Path, help="also draw devset_<category>.png contact sheets here")
    ap.add_argument("--category", choices=CATEGORIES, action="append", help="default: all three")
    args = ap.parse_args(list(argv) if argv is not None else None)
    categories = args.category or list(CATEGORIES)
    try:
        record = build(args.psb, categories)
        if args.out.is_file():  # keep the categories not rebuilt
            old = json.loads(args.out.read_text())["categories"]
            merged = {**old, **record["categories"]}
            record["categories"] = {c: merged[c] for c in CATEGORIES if c in merged}  # in the file's order
        args.out.write_text(json.dumps(record, indent=1) + "\n")
        print(f"wrote {args.out}")
        if args.sheets:
            for category in categories:
                contact_sheet(record, category, args.sheets / f"devset_{category}.png", args.psb)
                print(f"wrote {args.sheets / f'devset_{category}.png'}")
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
