"""Mesh files for the command-line client: write PLY with extra vertex properties (reading: model/meshio.py)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from model.meshio import read_mesh  # noqa: F401  (re-exported for older imports)


def write_ply(path: str | Path, vertices: np.ndarray, faces: np.ndarray, colors: np.ndarray | None = None,
              **properties: np.ndarray) -> None:
    """Binary little-endian PLY; `properties` become extra per-vertex properties (int or float)."""
    n = len(vertices)
    fields = [("x", "<f4"), ("y", "<f4"), ("z", "<f4")]
    if colors is not None:
        fields += [("red", "u1"), ("green", "u1"), ("blue", "u1")]
    for name, values in properties.items():
        fields.append((name, "<i4" if np.issubdtype(np.asarray(values).dtype, np.integer) else "<f4"))
    vert = np.empty(n, dtype=fields)
    vert["x"], vert["y"], vert["z"] = np.asarray(vertices, dtype=np.float32).T
    if colors is not None:
        vert["red"], vert["green"], vert["blue"] = np.asarray(colors, dtype=np.uint8).T
    for name, values in properties.items():
        vert[name] = values
    face = np.empty(len(faces), dtype=[("n", "u1"), ("v", "<i4", (3,))])
    face["n"], face["v"] = 3, faces
    ply_types = {"<f4": "float", "u1": "uchar", "<i4": "int"}
    header = ["ply", "format binary_little_endian 1.0", f"element vertex {n}"]
    header += [f"property {ply_types[t]} {name}" for name, t in fields]
    header += [f"element face {len(faces)}", "property list uchar int vertex_indices", "end_header"]
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("wb") as fh:
        fh.write(("\n".join(header) + "\n").encode("ascii"))
        fh.write(vert.tobytes())
        fh.write(face.tobytes())
    tmp.replace(path)
