"""The real labelled dev set: 59 PSB chairs, tables and airplanes, each mesh's own
segments mapped onto its category's parts, with named keypoints. For measuring only:
nothing here is ever trained on.

The data file, `training/data/psb_devset.json`, holds per mesh the part of each PSB
segment and the keypoints (model frame: the mesh turned upright with
`psb_rotations.json`, centred, bounding-box diagonal 1). How it was made:
docs/evaluation/devset.md; `python -m training.devset_build` rebuilds it and its
contact sheets.

    shapes = load_devset("chair")            # sources first, then targets
    shapes[0]["surface_points"], shapes[0]["surface_labels"], shapes[0]["keypoints"]
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import trimesh

from model.geometry import bounding_frame, sample_surface

from .families import PART_NAMES
from .prepare import load_psb_upright, read_face_labels

DEVSET = Path(__file__).resolve().parent / "data" / "psb_devset.json"
DEFAULT_PSB = Path(__file__).resolve().parents[2] / "shared" / "data" / "psb"
POINTS = 2500  # the held-out set's point clouds have 2,500 points
SAMPLE_SEED = 0


def devset_record(path: Path = DEVSET) -> dict:
    return json.loads(path.read_text())


def upright_mesh(psb: Path, category: str, name: str) -> tuple[trimesh.Trimesh, np.ndarray]:
    """A PSB mesh upright in the model frame (centred, diagonal 1) and its per-face segment ids."""
    path = psb / category / f"{name}.off.gz"
    if not path.is_file():
        raise ValueError(f"PSB mesh {path} is missing (the dev set reads ../shared/data/psb)")
    mesh = load_psb_upright(path)
    mesh.vertices = bounding_frame(np.asarray(mesh.vertices)).to_model(np.asarray(mesh.vertices))
    return mesh, read_face_labels(path, len(mesh.faces))


def face_parts(mesh: trimesh.Trimesh, segments: np.ndarray, shape: dict, category: str) -> np.ndarray:
    """Per-face part index of a dev mesh: its record's {segment id: part name} map, then
    its splits (a segment's faces above height y take another part: a chair's rear leg
    and back post are often one PSB segment)."""
    index = {name: i for i, name in PART_NAMES[category].items()}
    lookup = {int(s): index[p] for s, p in shape["segments"].items()}
    missing = sorted(set(np.unique(segments).tolist()) - set(lookup))
    if missing:
        raise ValueError(f"segments {missing} have no part in the dev set")
    parts = np.array([lookup[int(s)] for s in segments], dtype=np.int64)
    height = mesh.triangles_center[:, 1]
    for split in shape.get("splits", []):
        parts[(segments == int(split["segment"])) & (height > split["y"])] = index[split["above"]]
    return parts


def load_devset(category: str, psb: Path = DEFAULT_PSB, points: int = POINTS,
                record: dict | None = None, targets: int | None = None) -> list[dict]:
    """The category's dev shapes, its sources first (then all its targets, or the first
    `targets`): each a dict with `name`, `surface_points` (points, 3), `surface_labels`
    (points,), `keypoints` {name: (3,)}."""
    record = record or devset_record()
    if category not in record["categories"]:
        raise ValueError(f"no dev set for category {category!r}; there is {sorted(record['categories'])}")
    entry = record["categories"][category]
    shapes = []
    for name in entry["sources"] + entry["targets"][:targets]:
        shape = entry["shapes"][name]
        mesh, segments = upright_mesh(psb, category, name)
        shapes.append(dev_shape(name, mesh, face_parts(mesh, segments, shape, category), shape["keypoints"], points))
    return shapes


def dev_shape(name: str, mesh: trimesh.Trimesh, face_labels: np.ndarray, keypoints: dict, points: int) -> dict:
    """A labelled dev mesh as the evaluation takes it: `points` surface samples (seed
    SAMPLE_SEED) with their faces' labels, and the named keypoints as arrays."""
    pts, face, _ = sample_surface(np.asarray(mesh.vertices), np.asarray(mesh.faces), points, seed=SAMPLE_SEED)
    return {"name": name, "surface_points": pts, "surface_labels": face_labels[face],
            "keypoints": {k: np.asarray(v, dtype=np.float64) for k, v in keypoints.items()}}
