"""Imperfect artist meshes, in one run: PSB dev chairs as meshes with per-face part labels,
clean and with what artists' files bring (a small piece left far off, faces collapsed onto
a far point, a ground plane, every triangle unwelded, faces listed twice and half flipped),
in the target or the source.  Labels go from 3 labelled sources to the first targets; each
target face takes the label most of its corners got, scored as mIoU weighed by face area
over the target's own faces.  Each figure is printed as a share of the clean one measured
in the same run, with the mean confidence on the target's own vertices and on what was
added.

    .venv/bin/python benchmarks/bench_meshes.py [--targets N]
"""
from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from model import Correspondence  # noqa: E402
from model.labels import face_areas  # noqa: E402
from training.devset import DEFAULT_PSB, devset_record, face_parts, upright_mesh  # noqa: E402

Mesh = tuple[np.ndarray, np.ndarray, np.ndarray]  # vertices, faces, each face's own face (-1: added)
PARTS = (0, 1, 2, 3)


def chair(name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    mesh, segments = upright_mesh(DEFAULT_PSB, "chair", name)
    shape = devset_record()["categories"]["chair"]["shapes"][name]
    return np.asarray(mesh.vertices, float), np.asarray(mesh.faces, np.int64), face_parts(mesh, segments, shape, "chair")


def _added(v: np.ndarray, f: np.ndarray, new_v: np.ndarray, new_f: np.ndarray) -> Mesh:
    return np.r_[v, new_v], np.r_[f, new_f + len(v)], np.r_[np.arange(len(f)), np.full(len(new_f), -1)]


def _far_point(v: np.ndarray, rng: np.random.Generator, distance: float = 0.75) -> np.ndarray:
    direction = rng.normal(size=3) * [1, 0.3, 1]
    lo, hi = v.min(0), v.max(0)
    return (lo + hi) / 2 + direction / np.linalg.norm(direction) * distance * np.linalg.norm(hi - lo)


def stray_piece(v: np.ndarray, f: np.ndarray, rng: np.random.Generator) -> Mesh:
    """A closed octahedron of 1e-4 of the mesh's area, 0.75 diagonals from its centre."""
    corners = np.array([[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]], float)
    faces = np.array([[0, 2, 4], [2, 1, 4], [1, 3, 4], [3, 0, 4], [2, 0, 5], [1, 2, 5], [3, 1, 5], [0, 3, 5]])
    size = np.sqrt(1e-4 * face_areas(v, f).sum() / face_areas(corners, faces).sum())
    return _added(v, f, _far_point(v, rng) + size * corners, faces)


def collapsed_faces(v: np.ndarray, f: np.ndarray, rng: np.random.Generator) -> Mesh:
    """10 faces of no area, all at one point 0.75 diagonals from the centre (an exporter's)."""
    return _added(v, f, np.repeat(_far_point(v, rng)[None], 30, axis=0), np.arange(30).reshape(10, 3))


def ground_plane(v: np.ndarray, f: np.ndarray, rng: np.random.Generator) -> Mesh:
    """A square under the feet, 1.5 times the chair's footprint (a shadow catcher)."""
    lo, hi = v.min(0), v.max(0)
    centre, half = (lo + hi) / 2, (hi - lo) * 0.75
    corners = np.array([[centre[0] + sx * half[0], lo[1], centre[2] + sz * half[2]] for sx, sz in
                        ((-1, -1), (1, -1), (1, 1), (-1, 1))])
    return _added(v, f, corners, np.array([[0, 2, 1], [0, 3, 2]]))


def unwelded(v: np.ndarray, f: np.ndarray, rng: np.random.Generator) -> Mesh:
    return v[f].reshape(-1, 3), np.arange(3 * len(f)).reshape(-1, 3), np.arange(len(f))


def doubled_and_flipped(v: np.ndarray, f: np.ndarray, rng: np.random.Generator) -> Mesh:
    twice = np.r_[f, f]
    flip = rng.random(len(twice)) < 0.5
    twice[flip] = twice[flip][:, ::-1]
    return v, twice, np.r_[np.arange(len(f)), np.arange(len(f))]


DEFECTS: dict[str, Callable] = {"a small piece 0.75 diagonals off": stray_piece,
                                "10 faces collapsed onto a point 0.75 diagonals off": collapsed_faces,
                                "a ground plane 1.5 times the footprint": ground_plane,
                                "every triangle unwelded": unwelded,
                                "every face twice, half flipped": doubled_and_flipped}


def area_miou(vertex_labels: np.ndarray, faces: np.ndarray, truth: np.ndarray, areas: np.ndarray) -> float:
    a, b, c = (vertex_labels[faces[:, k]] for k in range(3))
    face = np.where((b == c) & (a != b), b, a)  # the label most corners got
    ious = [areas[(face == p) & (truth == p)].sum() / areas[(face == p) | (truth == p)].sum()
            for p in PARTS if (truth == p).any()]
    return float(np.mean(ious))


def score(engine: Correspondence, sources: list, targets: list, defect: Callable | None, side: str) -> tuple:
    rng = np.random.default_rng(0)
    prepared = []
    for v, f, labels in sources:
        if defect is not None and side == "source":
            v, f, origin = defect(v, f, rng)
            labels = np.where(origin >= 0, labels[np.maximum(origin, 0)], -1)
        prepared.append((engine.prepare(engine._labelled((v, f), labels, True), "source"), labels))
    mious, own, added = [], [], []
    for v, f, truth in targets:
        v2, f2, origin = defect(v, f, rng) if defect is not None and side == "target" else (v, f, np.arange(len(f)))
        target = engine.prepare((v2, f2), "target")
        own_faces, own_truth = f2[origin >= 0], truth[origin[origin >= 0]]
        mine = np.zeros(len(v2), bool)
        mine[own_faces] = True
        for source, labels in prepared:
            got, conf = engine.transfer_labels(source, labels, target)
            mious.append(area_miou(got, own_faces, own_truth, face_areas(v2, own_faces)))
            own.append(conf[mine].mean())
            if (~mine).any():
                added.append(conf[~mine].mean())
    return 100 * np.mean(mious), np.mean(own), (np.mean(added) if added else float("nan"))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--targets", type=int, default=4, help="the first N targets (default 4)")
    args = ap.parse_args(argv)
    engine = Correspondence.load(category="chair", device="cpu")
    entry = devset_record()["categories"]["chair"]
    sources = [chair(name) for name in entry["sources"]]
    targets = [chair(name) for name in entry["targets"][:args.targets]]
    rows, clean = [], None
    for name, defect, side in [("clean", None, "target")] + [(n, d, s) for n, d in DEFECTS.items()
                                                           for s in ("target", "source")]:
        start = time.perf_counter()
        miou, own, added = score(engine, sources, targets, defect, side)
        clean = clean or miou
        label = name if defect is None else f"{name}, in the {side}"
        rows.append(f"| {label} | {miou:.1f} ({miou / clean:.2f}) | {own:.2f} | "
                    f"{'' if np.isnan(added) else f'{added:.2f}'} |")
        print(f"{label}: {time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)
    print(f"PSB chairs as meshes, {len(sources)} sources -> {len(targets)} targets; "
          f"in brackets the share of the clean figure")
    print("| meshes | mIoU by area | confidence, own vertices | confidence, added vertices |")
    print("| --- | --- | --- | --- |")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
