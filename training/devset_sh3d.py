"""The second real dev set: artist-made Sweet Home 3D chairs, labelled by a rule on their
faces, with named keypoints.  For measuring only: `training.artist` leaves these meshes
out of every training set.

The PSB chairs of training/devset.py are all plain four-legged dining chairs; these are
armchairs, office and bar chairs on swivel bases, tub and shell chairs, rattan and
upholstered seats, as the held-out ShapeNet chairs are.  The meshes come from the
`sweethome3d-furniture` and `sweethome3d` packages (`training.artist`, cached outside
git); the data file, `training/data/sh3d_devset.json`, holds per mesh its face count,
its per-face parts (run-length encoded) and its keypoints.

    python -m training.devset_sh3d [--sheet docs/evaluation/devset_sh3d_chair.png]   # rebuild
    shapes = load_sh3d_devset("chair")   # as training.devset.load_devset: sources first
"""
from __future__ import annotations

import argparse
import json
import sys
import zlib
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import trimesh

from model.geometry import sample_surface

from .devset import POINTS, dev_shape
from .devset_build import keypoints
from .families import PART_NAMES

DEVSET_SH3D = Path(__file__).resolve().parent / "data" / "sh3d_devset.json"
SOURCES = {"chair": ["sh3d-blendswap-cc-0-chair", "sh3d-scopia-office-chair", "sh3d-blendswap-cc-0-osakaChair"]}
SIZE = {"chair": 30}  # dev meshes (sources included); the rest stay for training
# Models the rule cannot label as the ShapeNet-Part convention would, or that are no chairs
# in its sense; they stay for training.
EXCLUDED = {
    "chair": {
        **dict.fromkeys(["sh3d-blendswap-cc-0-deckChair", "sh3d-blendswap-cc-0-relaxChair",
                         "sh3d-blendswap-cc-by-chair-deck", "sh3d-blendswap-cc-by-poolLounge",
                         "sh3d-scopia-beach-chair", "sh3d-blendswap-cc-by-armChair2", "sh3d-scopia-ext-chair"],
                        "reclining: the seat and back are one slope"),
        **dict.fromkeys(["sh3d-blendswap-cc-0-foldingChair", "sh3d-blendswap-cc-0-stool2",
                         "sh3d-blendswap-cc-by-green-stool", "sh3d-default-stool", "sh3d-scopia-kitchen-stool"],
                        "a stool: no back"),
        **dict.fromkeys(["sh3d-blendswap-cc-0-winchesterArmchair", "sh3d-default-armchair",
                         "sh3d-default-armchair2", "sh3d-blendswap-cc-by-fotel", "sh3d-blendswap-cc-by-leaf-chair",
                         "sh3d-scopia-armchair1", "sh3d-default-chair2", "sh3d-blendswap-cc-by-chair4"],
                        "the rule's seat, arms or back are wrong on the contact sheet"),
        "sh3d-blendswap-cc-by-classSeat": "a writing desk joined to the seat",
        "sh3d-blendswap-cc-by-foldingChair": "side rails run from the seat's front up to the back: arm or back is open",
        "sh3d-scopia-baby-high-chair": "a tray in front of the seat",
        "sh3d-scopia-ryokanChair": "a floor chair: no legs",
    },
}
FLAT = 0.7  # |normal . up| above this: a face is horizontal
BIN = 0.01  # height bins (diagonal 1) of the seat search
STRONG = 0.3  # a height bin with this share of the largest bin's flat area is a surface of the seat
CUSHION = 12  # bins: the seat's top is the highest strong level this far above the largest
SEAT_BODY = 15  # bins: the seat's underside is the next strong surface at most this far below its top
SURFACE_GAP = 2  # bins: strong levels this close are one surface (a dished seat's centre and rim)
FAINT = 0.1  # of the largest bin: a level of a sloping underside whose run together is strong
THIN_SEAT = 0.03  # a seat with no underside in sight reaches this far below its top surface
ARM_REACH = 0.3  # of the seat's depth: how far in front of the back an arm reaches
ARM_AREA = 0.01  # of the surface: the least area of an arm's reach
ARM_HEIGHT = 0.04  # an armrest's reach stands this far above the seat (a cafe chair's frame does not)
ARM_OUTSIDE = 0.03  # on an arm's side, below the seat's top, this far beyond the seat's edge is arm


def chair_faces(mesh: trimesh.Trimesh) -> np.ndarray:
    """Per-face part (seat 0, back 1, leg 2, arm 3; training.families) of an upright chair
    (+Y up, front -Z).

    The seat is the height where the middle of the chair's width has the most horizontal
    area: its top the highest such level within a cushion's thickness, its underside the
    next surface below.  Below the underside is leg (a swivel base, a sofa's plinth); above the
    top, at a side and in front of the back's front, arm, where something on that side
    reaches well forward, and on that side between underside and top whatever stands out
    beside the seat (an armchair's side block, an arm's post); the rest above is back.
    """
    c, area = mesh.triangles_center, mesh.area_faces
    lo, hi = mesh.bounds
    flat = np.abs(mesh.face_normals[:, 1]) > FLAT
    top, bottom = seat_levels(mesh, flat)
    seat = flat & (np.abs(c[:, 1] - (top - BIN / 2)) < 0.03)
    x0, x1 = np.percentile(c[seat, 0], [2, 98]) if seat.any() else (lo[0], hi[0])
    z0, z1 = np.percentile(c[seat, 2], [2, 98]) if seat.any() else (lo[2], hi[2])
    mid_seat, half = (x0 + x1) / 2, (x1 - x0) / 2
    above, below = c[:, 1] > top + 0.01, c[:, 1] < bottom - 0.01
    central = above & (np.abs(c[:, 0] - mid_seat) < 0.5 * half)
    back_front = np.percentile(c[central, 2], 10) if central.sum() > 10 else (lo[2] + hi[2]) / 2
    parts = np.zeros(len(c), np.int64)  # seat
    parts[below] = 2
    parts[above] = 1
    for sign in (-1.0, 1.0):
        # a side with an arm: something there, well above the seat, reaches well in front
        # of the back (back posts stand a little in front of the slats, an armrest runs
        # toward the seat's front)
        side = above & (sign * (c[:, 0] - mid_seat) > 0.6 * half) & (c[:, 2] < back_front - 0.02)
        reach = side & (c[:, 2] < back_front - ARM_REACH * (z1 - z0)) & (c[:, 1] > top + ARM_HEIGHT)
        if area[reach].sum() > ARM_AREA * mesh.area:
            parts[side] = 3
            # below the seat's top, what stands out beside the seat on that side is the
            # arm's block or post
            edge = x1 if sign > 0 else x0
            parts[~above & ~below & (sign * (c[:, 0] - edge) > ARM_OUTSIDE)] = 3
    return parts


def seat_levels(mesh: trimesh.Trimesh, flat: np.ndarray) -> tuple[float, float]:
    """(top, underside) heights of an upright chair's seat; `flat`: its horizontal faces."""
    c, area = mesh.triangles_center, mesh.area_faces
    lo, hi = mesh.bounds
    height, width, mid_x = hi[1] - lo[1], hi[0] - lo[0], (lo[0] + hi[0]) / 2
    middle = flat & (np.abs(c[:, 0] - mid_x) < 0.25 * width)
    search = middle & (c[:, 1] > lo[1] + 0.15 * height) & (c[:, 1] < lo[1] + 0.8 * height)
    bins = np.arange(lo[1], hi[1] + BIN, BIN)
    hist = np.convolve(np.histogram(c[search, 1], bins, weights=area[search])[0], [0.25, 0.5, 0.25], "same")
    peak = int(np.argmax(hist))
    strong = np.flatnonzero(hist >= STRONG * hist[peak])
    top_bin = strong[(strong >= peak) & (strong <= peak + CUSHION)].max()
    top = bins[top_bin] + BIN
    # levels in a row are one surface (a dished seat spans several bins, a weak one between);
    # the underside is the next surface down, all of it
    runs = _runs(strong, SURFACE_GAP)
    top_run = next(r for r in runs if top_bin in r)
    under = [r for r in runs if r.max() < top_run.min() and r.max() >= top_bin - SEAT_BODY]
    if not under:
        # a shell's sloping underside spreads its area over several weak bins in a row
        faint = _runs(np.flatnonzero(hist >= FAINT * hist[peak]), 1)
        under = [r for r in faint if top_run.min() > r.max() >= top_bin - SEAT_BODY
                 and hist[r].sum() >= STRONG * hist[peak]]
    bottom = bins[under[-1].min()] if under else bins[top_run.min()] - THIN_SEAT
    return float(top), float(bottom)


def _runs(bins: np.ndarray, gap: int) -> list[np.ndarray]:
    """Sorted bin indices split where the step to the next exceeds `gap`."""
    return np.split(bins, np.flatnonzero(np.diff(bins) > gap) + 1)


RULES = {"chair": chair_faces}


def encode_runs(values: np.ndarray) -> str:
    """Run-length code of small non-negative integers: "value*count value*count ..."."""
    if not len(values):
        return ""
    starts = np.flatnonzero(np.r_[True, values[1:] != values[:-1]])
    counts = np.diff(np.r_[starts, len(values)])
    return " ".join(f"{values[s]}*{k}" for s, k in zip(starts, counts))


def decode_runs(text: str) -> np.ndarray:
    runs = [tuple(int(x) for x in run.split("*")) for run in text.split()]
    return np.concatenate([np.full(k, v, np.int64) for v, k in runs]) if runs else np.zeros(0, np.int64)


def sh3d_record(path: Path = DEVSET_SH3D) -> dict:
    """The data file: {"note", "categories": {category: {"sources", "targets", "shapes", ...}}}."""
    return json.loads(path.read_text())


def dev_names(category: str, path: Path = DEVSET_SH3D) -> list[str]:
    """The category's dev meshes (names as training.artist gives them); none if the file
    has no such category."""
    if not path.is_file():
        return []
    entry = sh3d_record(path)["categories"].get(category)
    return [] if entry is None else entry["sources"] + entry["targets"]


def pick(category: str, names: Iterable[str]) -> list[str]:
    """The sources, then the other usable models in a fixed pseudo-random order (by name
    hash, so adding a model to a package moves few), up to SIZE meshes."""
    usable = sorted((n for n in names if n not in EXCLUDED[category] and n not in SOURCES[category]),
                    key=lambda n: zlib.crc32(n.encode()))
    return SOURCES[category] + usable[: SIZE[category] - len(SOURCES[category])]


def _mesh(category: str, name: str, cache: Path) -> trimesh.Trimesh:
    from .artist import artist_mesh

    v, f, _ = artist_mesh(category, name, cache)
    return trimesh.Trimesh(v, f, process=False)


def build(category: str = "chair", cache: Path | None = None) -> dict:
    from .artist import DEFAULT_CACHE, collect

    cache = cache or DEFAULT_CACHE
    every, _, _ = collect(category, cache)
    shapes = {}
    for name in pick(category, [j["name"] for j in every]):
        mesh = _mesh(category, name, cache)
        parts = RULES[category](mesh)
        pts, face, _ = sample_surface(np.asarray(mesh.vertices), np.asarray(mesh.faces), 20000, seed=1)
        keys = keypoints(category, pts, parts[face])
        shapes[name] = {"faces": len(mesh.faces), "parts": encode_runs(parts),
                        "keypoints": {k: np.round(v, 4).tolist() for k, v in keys.items()}}
    return {"note": "Real dev set: Sweet Home 3D models (training.artist), parts by a rule on each face "
                    "(training/devset_sh3d.py), keypoints in the upright model frame (+Y up, front -Z, "
                    "diagonal 1). Built by `python -m training.devset_sh3d`; for measuring only, never trained on.",
            "categories": {category: {"parts": list(PART_NAMES[category].values()), "sources": SOURCES[category],
                                      "targets": [n for n in shapes if n not in SOURCES[category]],
                                      "shapes": shapes, "excluded": EXCLUDED[category]}}}


def load_sh3d_devset(category: str, cache: Path | None = None, points: int = POINTS,
                     targets: int | None = None, path: Path = DEVSET_SH3D) -> list[dict]:
    """As training.devset.load_devset, on the Sweet Home 3D dev meshes (fetched and built
    into the cache by training.artist where missing)."""
    from .artist import DEFAULT_CACHE

    record = sh3d_record(path)
    if category not in record["categories"]:
        raise ValueError(f"no Sweet Home 3D dev set for category {category!r}; there is {sorted(record['categories'])}")
    entry = record["categories"][category]
    shapes = []
    for name in entry["sources"] + entry["targets"][:targets]:
        shape = entry["shapes"][name]
        mesh = _mesh(category, name, cache or DEFAULT_CACHE)
        if len(mesh.faces) != shape["faces"]:
            raise ValueError(f"{name}: the mesh has {len(mesh.faces)} faces, the dev set {shape['faces']}: "
                             f"rebuild it with `python -m training.devset_sh3d`")
        shapes.append(dev_shape(name, mesh, decode_runs(shape["parts"]), shape["keypoints"], points))
    return shapes


def main(argv: Iterable[str] | None = None) -> int:
    from .prepare import save_json

    ap = argparse.ArgumentParser(prog="python -m training.devset_sh3d", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=DEVSET_SH3D)
    ap.add_argument("--cache", type=Path, default=None, help="training.artist's cache (default ~/.cache/...)")
    ap.add_argument("--sheet", type=Path, help="also draw the contact sheet here")
    args = ap.parse_args(list(argv) if argv is not None else None)
    try:
        record = build("chair", args.cache)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    save_json(args.out, record)
    entry = record["categories"]["chair"]
    print(f"chair: {len(entry['sources'])} sources, {len(entry['targets'])} targets -> {args.out}")
    if args.sheet:
        from .devset_build import contact_sheet

        contact_sheet(record, "chair", args.sheet, meshes=lambda name: _labelled(record, name, args.cache))
    return 0


def _labelled(record: dict, name: str, cache: Path | None) -> tuple[trimesh.Trimesh, np.ndarray]:
    from .artist import DEFAULT_CACHE

    return _mesh("chair", name, cache or DEFAULT_CACHE), decode_runs(record["categories"]["chair"]["shapes"][name]["parts"])


if __name__ == "__main__":
    sys.exit(main())
