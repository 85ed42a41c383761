"""Find the rotation that brings a mesh into the model convention (+Y up, front -Z).

Template matching against a procedural family: for every candidate rotation (each of the
six axis directions as up, times 16 turns of 22.5 degrees about it) the rotated,
normalised shape is compared with procedural shapes of the category by Chamfer distance,
and the rotation with the smallest distance to its best template wins.

    python -m training.orient --meshes ../shared/data/psb/chair --category chair --out rotations.json
"""
from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from scipy.spatial import cKDTree
from scipy.spatial.transform import Rotation
from tqdm import tqdm

from model.geometry import bounding_frame, sample_surface

from .families import FAMILIES, sample_shape
from .prepare import find_meshes, load_mesh, mesh_name, save_json

UP_TO_Y = {  # rotations taking each axis direction to +Y
    "+x": Rotation.from_euler("z", 90, degrees=True), "-x": Rotation.from_euler("z", -90, degrees=True),
    "+y": Rotation.identity(), "-y": Rotation.from_euler("x", 180, degrees=True),
    "+z": Rotation.from_euler("x", -90, degrees=True), "-z": Rotation.from_euler("x", 90, degrees=True),
}


def candidate_rotations(turns: int = 16) -> np.ndarray:
    mats = []
    for up in UP_TO_Y.values():
        for k in range(turns):
            yaw = Rotation.from_euler("y", 360.0 * k / turns, degrees=True)
            mats.append((yaw * up).as_matrix())
    return np.stack(mats)


def _normalised(points: np.ndarray) -> np.ndarray:
    return bounding_frame(points).to_model(points)


def _chamfer(tree_a: cKDTree, a: np.ndarray, b: np.ndarray) -> float:
    d_ab = cKDTree(b).query(a)[0]
    d_ba = tree_a.query(b)[0]
    return float(np.mean(d_ab**2) + np.mean(d_ba**2))


def orient(points: np.ndarray, templates: list[np.ndarray], candidates: np.ndarray) -> tuple[np.ndarray, float]:
    """-> (rotation 3x3 to apply to `points`, Chamfer distance to the best template)."""
    trees = [cKDTree(t) for t in templates]
    best, best_score = candidates[0], np.inf
    for rot in candidates:
        p = _normalised(points @ rot.T)
        score = min(_chamfer(tree, t, p) for tree, t in zip(trees, templates))
        if score < best_score:
            best, best_score = rot, score
    return best, best_score


def templates_for(category: str, count: int = 24, points: int = 768) -> list[np.ndarray]:
    out = []
    for i in range(count):
        shape = sample_shape(category, np.random.default_rng([i, 11]))
        out.append(_normalised(shape.sample_surface(points, seed=i)[0]))
    return out


def main(argv: Iterable[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m training.orient", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--meshes", type=Path, required=True)
    ap.add_argument("--category", required=True, help="procedural family to match: chair, table, airplane")
    ap.add_argument("--out", type=Path, required=True, help="JSON file; existing entries are kept and extended")
    ap.add_argument("--templates", type=int, default=24)
    args = ap.parse_args(list(argv) if argv is not None else None)
    if args.category not in FAMILIES:
        ap.error(f"--category {args.category!r}: choose one of {', '.join(sorted(FAMILIES))}")
    if not args.meshes.is_dir():
        ap.error(f"--meshes {args.meshes} is not a folder")
    data = json.loads(args.out.read_text()) if args.out.is_file() else {"rotations": {}, "scores": {}}
    # meshes already in the file are kept: a stopped run goes on where it stopped
    todo = [p for p in find_meshes(args.meshes) if mesh_name(p) not in data["rotations"]]
    templates = templates_for(args.category, args.templates)
    candidates = candidate_rotations()
    skipped = []
    try:
        for path in tqdm(todo, desc=f"orient {args.category}", unit="mesh"):
            try:
                mesh = load_mesh(path)
                pts = sample_surface(np.asarray(mesh.vertices), np.asarray(mesh.faces), 768, seed=0)[0]
            except ValueError as exc:  # what is wrong with the file: the message names it
                skipped.append(path)
                tqdm.write(f"skipped {exc}")
                continue
            rot, score = orient(pts, templates, candidates)
            data["rotations"][mesh_name(path)] = np.round(rot, 6).tolist()
            data["scores"][mesh_name(path)] = round(score, 6)
            save_json(args.out, data)  # after each mesh: a second of work at most is lost
    except KeyboardInterrupt:
        print(f"\ninterrupted: the rotations found are in {args.out}; run again to go on", file=sys.stderr)
        return 130
    print(f"{len(data['rotations'])} rotations in {args.out}"
          + (f"; {len(skipped)} mesh(es) skipped" if skipped else ""))
    return 1 if skipped else 0


if __name__ == "__main__":
    sys.exit(main())
