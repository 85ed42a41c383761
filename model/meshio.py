"""Mesh files (numpy and trimesh only): the one loader behind the server's command line,
the demo and training's data preparation, and PLY with extra vertex properties."""
from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import trimesh

from .files import write_atomically

# write_ply stores coordinates as doubles where float32 would move one by more than this
# share of the shape's largest extent (float32's own rounding on a shape at the origin: 6e-8).
FLOAT32_SLACK = 1e-6


def load_mesh(path: str | Path, keep_vertices: bool = False) -> trimesh.Trimesh:
    """One triangle mesh from OBJ, OFF (also .off.gz), PLY, STL or GLB, scenes merged,
    vertices as stored; raises a ValueError naming the file when it is unusable.
    `keep_vertices`: an OBJ's vertices exactly as the file lists them (trimesh otherwise
    splits them at UV seams and drops unused ones), so that per-vertex output lines up.
    An STL's vertices are welded: the format repeats each at every triangle, and the
    engine's work per vertex would be six times over."""
    path = Path(path)
    kind = _kind(path)
    options = {"force": "mesh", "process": False}
    if keep_vertices and kind == "obj":
        options["maintain_order"] = True
    mesh = _load(path, kind, options)
    if not isinstance(mesh, trimesh.Trimesh) or len(mesh.faces) == 0:
        raise ValueError(f"{path}: has no triangles (a point cloud is read from a PLY of vertices only or an XYZ "
                         f"file)")
    if kind == "stl":  # rows repeated exactly: a tolerance would weld a tiny model's own vertices
        vertices, inverse = np.unique(np.asarray(mesh.vertices), axis=0, return_inverse=True)
        mesh = trimesh.Trimesh(vertices, inverse.reshape(-1)[np.asarray(mesh.faces)], process=False)
    faces = np.asarray(mesh.faces)
    if faces.min() < 0 or faces.max() >= len(mesh.vertices):
        raise ValueError(f"{path}: a face names vertex {faces.min() if faces.min() < 0 else faces.max()}, "
                         f"but the file has vertices 0 to {len(mesh.vertices) - 1}")
    if not np.isfinite(mesh.vertices).all():
        raise ValueError(f"{path}: has non-finite vertex coordinates")
    if mesh.area <= 0:
        raise ValueError(f"{path}: has zero surface area")
    return mesh


def _kind(path: Path) -> str:
    """The file's format by its name (`.off.gz`: off), once it is known to be a readable file."""
    if path.is_dir():
        raise ValueError(f"{path}: a folder, not a mesh file")
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise ValueError(f"{path}: empty file")
    name = path.name.lower()
    return (name[:-3] if name.endswith(".gz") else name).rsplit(".", 1)[-1]


def _load(path: Path, kind: str, options: dict) -> object:
    try:
        if path.name.lower().endswith(".gz"):
            with gzip.open(path, "rb") as fh:
                return trimesh.load(fh, file_type=kind, **options)
        if _utf8(path.name):
            return trimesh.load(path, **options)
        with open(path, "rb") as fh:  # trimesh names scene nodes by the file name and hashes it as UTF-8
            return trimesh.load(fh, file_type=kind, **options)
    except Exception as exc:  # trimesh raises many types for malformed files
        raise ValueError(f"{path}: cannot read as a mesh: {exc}") from None


def read_shape(path: str | Path) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """`read_mesh`, or a point cloud (a PLY of vertices only, an XYZ file) with faces None."""
    path = Path(path)
    kind = _kind(path)
    if kind == "xyz" or (kind == "ply" and not _ply_faces(path)):
        cloud = _load(path, kind, {"process": False})
        if isinstance(cloud, trimesh.PointCloud):
            points = np.asarray(cloud.vertices, dtype=np.float64)
            if len(points) < 3 or not np.isfinite(points).all():
                raise ValueError(f"{path}: a point cloud needs at least 3 points, all finite")
            colors = np.asarray(cloud.colors)[:, :3].astype(np.uint8) if len(cloud.colors) == len(points) else None
            return points, None, colors
    return read_mesh(path)


def _ply_faces(path: Path) -> bool:
    """Whether a PLY's header declares faces (as triangles, polygons or strips)."""
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    with opener(path, "rb") as fh:
        header = fh.read(65536).split(b"end_header", 1)[0].decode("ascii", "replace").split()
    return any(word == "element" and name in ("face", "tristrips") and count.isdigit() and int(count) > 0
               for word, name, count in zip(header, header[1:], header[2:]))


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a byte of another encoding, kept by Python as a lone surrogate
        return False
    return True


def read_mesh(path: str | Path) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """-> (vertices, faces, vertex colours (V, 3) uint8 or None); an OBJ's vertices as listed."""
    mesh = load_mesh(path, keep_vertices=True)
    colors = None
    if getattr(mesh.visual, "kind", None) == "vertex":
        colors = np.asarray(mesh.visual.vertex_colors)[:, :3].astype(np.uint8)
    return np.asarray(mesh.vertices), np.asarray(mesh.faces), colors


def _needs_doubles(vertices: np.ndarray) -> bool:
    """Whether float32 would move a vertex by over FLOAT32_SLACK of the shape's size (a shape
    far from the origin: float32 keeps about 7 digits)."""
    points = np.asarray(vertices, dtype=np.float64)
    if not len(points) or not np.isfinite(points).all():
        return False
    size = float(np.ptp(points, axis=0).max())
    error = float(np.abs(points.astype(np.float32).astype(np.float64) - points).max())
    return error > FLOAT32_SLACK * size


def write_ply(path: str | Path, vertices: np.ndarray, faces: np.ndarray | None, colors: np.ndarray | None = None,
              **properties: np.ndarray) -> None:
    """Binary little-endian PLY; `properties` become extra per-vertex properties (int or
    float); faces None: a point cloud."""
    n, faces = len(vertices), np.zeros((0, 3), np.int64) if faces is None else faces
    coordinate = "<f8" if _needs_doubles(vertices) else "<f4"
    fields = [("x", coordinate), ("y", coordinate), ("z", coordinate)]
    if colors is not None:
        fields += [("red", "u1"), ("green", "u1"), ("blue", "u1")]
    for name, values in properties.items():
        fields.append((name, "<i4" if np.issubdtype(np.asarray(values).dtype, np.integer) else "<f4"))
    vert = np.empty(n, dtype=fields)
    vert["x"], vert["y"], vert["z"] = np.asarray(vertices, dtype=coordinate).T
    if colors is not None:
        vert["red"], vert["green"], vert["blue"] = np.asarray(colors, dtype=np.uint8).T
    for name, values in properties.items():
        vert[name] = values
    face = np.empty(len(faces), dtype=[("n", "u1"), ("v", "<i4", (3,))])
    face["n"], face["v"] = 3, faces
    ply_types = {"<f4": "float", "<f8": "double", "u1": "uchar", "<i4": "int"}
    header = ["ply", "format binary_little_endian 1.0", f"element vertex {n}"]
    header += [f"property {ply_types[t]} {name}" for name, t in fields]
    header += [f"element face {len(faces)}", "property list uchar int vertex_indices", "end_header"]

    def write(tmp: str) -> None:
        with open(tmp, "wb") as fh:
            fh.write(("\n".join(header) + "\n").encode("ascii"))
            fh.write(vert.tobytes())
            fh.write(face.tobytes())

    write_atomically(path, write)  # no half-written file, and no temporary one left on failure
