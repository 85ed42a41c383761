"""Turn meshes (or a procedural family) into per-shape training samples.

    python -m training.prepare --meshes DIR --out DIR [--rotations FILE] [--workers N]
    python -m training.prepare --procedural chair --count 1000 --out data/chair

Meshes: OBJ, OFF (also .off.gz), PLY, STL, GLB, and the authors' .mat sample files.
Each shape becomes `<name>.npz` (see training/samples.py).  Inside/outside comes from
generalized winding numbers (libigl), which stay meaningful for meshes that are not
watertight.  Finished shapes are skipped on restart; broken meshes are reported and
skipped without stopping the run.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import trimesh
from tqdm import tqdm

from model.files import write_atomically
from model.geometry import bounding_frame, sample_surface
from model.meshio import load_mesh
from model.normals import estimate_normals
from model.validation import Shape

from .families import FAMILIES, sample_shape
from .samples import RESOLUTIONS, assembly_sample, load_sample, make_sample

PSB_ROTATIONS = Path(__file__).resolve().parent / "data" / "psb_rotations.json"
MESH_SUFFIXES = (".obj", ".off", ".off.gz", ".ply", ".stl", ".glb", ".gltf", ".mat")


def mesh_name(path: Path) -> str:
    name = path.name
    for suffix in sorted(MESH_SUFFIXES, key=len, reverse=True):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def find_meshes(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.name.lower().endswith(MESH_SUFFIXES))


def psb_rotation(name: str) -> np.ndarray:
    """The recorded 3x3 rotation that turns PSB mesh `name` upright (+Y up, front -Z)."""
    return np.asarray(json.loads(PSB_ROTATIONS.read_text())["rotations"][name])


def load_psb_upright(path: Path) -> trimesh.Trimesh:
    """A PSB mesh file, loaded and turned upright with its recorded rotation."""
    mesh = load_mesh(path)
    mesh.vertices = np.asarray(mesh.vertices) @ psb_rotation(mesh_name(path)).T
    return mesh


def read_face_labels(path: Path, n_faces: int) -> np.ndarray | None:
    """PSB-style `<name>.seg` beside the mesh: one segment id per face."""
    seg = path.with_name(mesh_name(path) + ".seg")
    if not seg.is_file():
        return None
    labels = np.loadtxt(seg, dtype=np.int64).reshape(-1)
    if len(labels) != n_faces:
        raise ValueError(f"{seg.name} has {len(labels)} labels for {n_faces} faces")
    return labels


def winding_inside(vertices: np.ndarray, faces: np.ndarray, band: float = 0.0):
    """-> inside(points): where the generalized winding number is over 1/2 or, with a
    `band`, where a point lies within `band` of the surface.  Artists model seats, shells
    and wings as single-sided sheets, which have no inside by winding numbers; a band gives
    them the voxels they pass through, as a surface voxelisation (IM-NET's binvox data) does."""
    import igl  # imported here: only mesh preparation needs it

    v = np.ascontiguousarray(vertices, dtype=np.float64)
    f = np.ascontiguousarray(faces, dtype=np.int64)

    def inside(points: np.ndarray) -> np.ndarray:
        p = np.ascontiguousarray(points, dtype=np.float64)
        # |w|: a mesh modelled inside out (or one part of it) winds -1 around its inside
        result = np.abs(igl.fast_winding_number(v, f, p)) > 0.5
        rest = np.flatnonzero(~result)
        if band > 0 and len(rest):
            d2 = igl.point_mesh_squared_distance(p[rest], v, f)[0]
            result[rest[d2 < band**2]] = True
        return result

    return inside


def mesh_sample(path: Path, rotation: np.ndarray | None = None, n_surface: int = 4096, seed: int = 0,
                band: float = 0.0, seg_labels: bool = False) -> dict[str, np.ndarray]:
    """A mesh file's sample, in the model frame; inside as `winding_inside` with `band`.
    `seg_labels`: the .seg file's segment ids are the part labels (the same part has the
    same id on every mesh); else they are kept apart as `segment_ids`."""
    mesh = load_mesh(path)
    vertices = np.asarray(mesh.vertices, dtype=np.float64)
    if rotation is not None:
        vertices = vertices @ np.asarray(rotation, dtype=np.float64).T
    faces = np.asarray(mesh.faces, dtype=np.int64)
    shape = Shape(vertices, faces)  # framed and sampled as the engine frames and samples it: a piece far off left out
    frame = bounding_frame(shape.spanning)
    model_vertices = frame.to_model(vertices)
    try:
        face_labels = read_face_labels(path, len(faces))
    except ValueError:
        if seg_labels:
            raise
        face_labels = None  # a .seg that does not fit the mesh costs its segment ids, not the mesh
    if seg_labels and face_labels is None:
        raise ValueError(f"no {mesh_name(path)}.seg beside it, which --seg_labels reads its part labels from")
    if seg_labels and face_labels.min() < 0:
        raise ValueError(f"{mesh_name(path)}.seg has a negative segment id, which --seg_labels cannot take as a part")
    points, face_index, normals = sample_surface(model_vertices, shape.body_faces, n_surface, seed=seed)
    face_index = shape.body[face_index]
    labels = face_labels[face_index] if seg_labels else None
    sample = make_sample(winding_inside(model_vertices, shape.body_faces, band), points, normals, labels, seed=seed)
    if face_labels is not None and not seg_labels:
        # per-mesh segment ids (not consistent across meshes): for evaluation, never as part labels
        sample["segment_ids"] = face_labels[face_index].astype(np.int64)
    return sample


def mat_sample(path: Path) -> dict[str, np.ndarray]:
    """The authors' .mat files: data_16/32/64 as (N, 4) xyz+occupancy, `shape` surface points.

    Coordinates in [-0.5, 0.5] are used as they are; coordinates in [0, R) are read as
    voxel indices of an R^3 grid and mapped to voxel centres in the unit box.
    """
    from scipy.io import loadmat

    try:
        data = loadmat(path)
    except (NotImplementedError, ValueError) as exc:
        raise ValueError(f"cannot read {path.name} as a MATLAB v5 file: {exc}") from None
    out: dict[str, np.ndarray] = {}
    for r in RESOLUTIONS:
        key = f"data_{r}"
        if key not in data:
            raise ValueError(f"{path.name} lacks '{key}'")
        arr = np.asarray(data[key], dtype=np.float64)
        if arr.ndim != 2 or arr.shape[1] != 4:
            raise ValueError(f"{path.name}: '{key}' has shape {arr.shape}, expected (N, 4)")
        xyz = arr[:, :3]
        if xyz.min() >= 0 and xyz.max() > 1:
            xyz = (xyz + 0.5) / r - 0.5
        out[f"occ_points_{r}"] = xyz.astype(np.float32)
        out[f"occ_values_{r}"] = (arr[:, 3] > 0.5).astype(np.float32)
    key = next((k for k in ("points", "shape") if k in data), None)  # the authors' files of now, and of before
    if key is None:
        raise ValueError(f"{path.name} lacks 'points' (or 'shape'): the surface points")
    shape = np.asarray(data[key], dtype=np.float64)
    if shape.ndim != 2 or shape.shape[1] not in (3, 6):
        raise ValueError(f"{path.name}: '{key}' has shape {shape.shape}, expected (N, 3) or (N, 6)")
    pts = shape[:, :3]
    if shape.shape[1] == 6:
        normals = shape[:, 3:]
    else:  # no normals given: estimate them from the points
        normals = estimate_normals(pts)
    out["surface_points"] = pts.astype(np.float32)
    out["surface_normals"] = normals.astype(np.float32)
    out["surface_labels"] = np.full(len(pts), -1, dtype=np.int64)
    out["labels_present"] = np.zeros(0, dtype=np.int64)
    return out


def save_sample(path: Path, sample: dict[str, np.ndarray]) -> None:
    def write(tmp: str) -> None:
        with open(tmp, "wb") as fh:  # a file, not a name: np.savez would add ".npz" to it
            np.savez_compressed(fh, **sample)

    write_atomically(path, write)  # the unfinished file ends in .tmp: never taken for a sample


def remove_unfinished(folder: Path) -> None:
    """Samples whose writing was killed before rename, as runs before `save_sample` wrote
    them: `<name>.npz.<random>.tmp.npz`, which a folder's `*.npz` would take for samples."""
    for leftover in folder.glob("*.npz.*.tmp.npz"):
        leftover.unlink(missing_ok=True)


def save_json(path: Path, data: Any) -> None:
    write_atomically(path, lambda tmp: Path(tmp).write_text(json.dumps(data, indent=1)))


def _made_from(path: Path, rotation: np.ndarray | None, seg_labels: bool) -> np.ndarray:
    """What a mesh's sample was made from: the size and time of the file and of its .seg,
    the rotation and whether the .seg ids are labels (a sample is redone when any changes)."""
    seg = path.with_name(mesh_name(path) + ".seg")
    stamps = [(f.stat().st_size, f.stat().st_mtime_ns) if f.is_file() else (-1, -1) for f in (path, seg)]
    turn = np.eye(3) if rotation is None else np.asarray(rotation, dtype=np.float64)
    return np.concatenate([np.ravel(stamps), turn.ravel(), [float(seg_labels)]]).astype(np.float64)


def _is_current(dst: Path, made_from: np.ndarray, seg_labels: bool) -> bool:
    """Whether a sample already there was made from this file, rotation and label mode.
    A sample from before the record counts as current, unless labels are now asked for."""
    try:
        with np.load(dst) as npz:
            if "made_from" not in npz.files:
                return not seg_labels
            return np.array_equal(npz["made_from"], made_from)
    except Exception:  # noqa: BLE001 - unreadable (a truncated zip raises BadZipFile, EOFError, ...): made again
        return False


def _prepare_one(job: tuple[str, str, np.ndarray | None, int, bool]) -> tuple[str, str | None]:
    src, dst, rotation, seed, seg_labels = job
    try:
        _prepare_mesh_sample(Path(src), Path(dst), rotation, seed, seg_labels)
        return src, None
    except Exception as exc:  # report, skip, carry on
        # a sample of this file there is of an older version of it (only new or changed
        # meshes get here): it must not stay to be trained on
        old = Path(dst).is_file()
        Path(dst).unlink(missing_ok=True)
        why = str(exc).removeprefix(f"{src}: ") if isinstance(exc, ValueError) else f"{type(exc).__name__}: {exc}"
        return src, why + (" (its old sample removed)" if old else "")


def _prepare_mesh_sample(path: Path, dst: Path, rotation: np.ndarray | None, seed: int, seg_labels: bool) -> None:
    sample = (mat_sample(path) if path.suffix.lower() == ".mat"
              else mesh_sample(path, rotation, seed=seed, seg_labels=seg_labels))
    if not sample["occ_values_64"].any():
        raise ValueError("encloses no volume: no 64^3 sample is inside it (a single sheet or a few "
                         "triangles), so there is no occupancy to learn")
    sample["made_from"] = _made_from(path, rotation, seg_labels)
    save_sample(dst, sample)


def _procedural_one(job: tuple[str, int, str]) -> tuple[str, str | None]:
    category, index, dst = job
    try:
        shape = sample_shape(category, np.random.default_rng([index, 7]))
        save_sample(Path(dst), assembly_sample(shape, seed=index))
        return dst, None
    except Exception as exc:
        return dst, f"{type(exc).__name__}: {exc}"


def run_jobs(fn, jobs: list, workers: int | None, desc: str, progress: bool = True) -> list[tuple[str, str]]:
    """Run fn over jobs in `workers` processes (default: all cores) -> (name, error) failures."""
    failures = []
    if not jobs:
        return failures
    n = max(1, workers or os.cpu_count() or 1)
    # Workers come from a fresh server process, not a fork of this one: the trainer calls
    # this with CUDA (and its threads) already started, and a forked child can deadlock.
    context = multiprocessing.get_context("forkserver" if os.name == "posix" else "spawn")
    finished = 0
    with ProcessPoolExecutor(max_workers=n, mp_context=context) if n > 1 else nullcontext() as pool:
        results = pool.map(fn, jobs, chunksize=4) if pool else map(fn, jobs)
        try:
            for name, error in tqdm(results, total=len(jobs), desc=desc, unit="shape", disable=not progress):
                finished += 1
                if error:
                    failures.append((name, error))
                    tqdm.write(f"skipped {name}: {error}")
        except BrokenProcessPool:  # killed from outside: out of memory, or a crash in a native library
            failures.append((f"{len(jobs) - finished} shape(s)", "not prepared: a worker process died (out of "
                             "memory, or a crash in a native library); run again to go on (finished samples are "
                             "kept), with --workers 1 to see which shape it is"))
            tqdm.write(f"stopped: {failures[-1][0]} {failures[-1][1]}")
    return failures


def _estimated_normals_one(path: str) -> tuple[str, str | None]:
    try:
        sample = load_sample(Path(path), ("surface_points",))
        sample["estimated_normals"] = estimate_normals(sample["surface_points"].astype(np.float64)).astype(np.float32)
        save_sample(Path(path), sample)
        return path, None
    except Exception as exc:  # report, skip, carry on
        return path, f"{type(exc).__name__}: {exc}"


def add_estimated_normals(files: list[Path], workers: int | None = None,
                          progress: bool = True) -> list[tuple[str, str]]:
    """Give each sample the normals the engine estimates from bare points
    (`estimated_normals`, for networks whose E sees normals), once: samples that have
    them are left alone.  Rewrites each file atomically; -> failures."""
    jobs, unreadable = [], []
    for f in files:
        try:
            with np.load(f) as npz:
                if "estimated_normals" not in npz.files:
                    jobs.append(str(f))
        except Exception as exc:  # noqa: BLE001 - a truncated zip raises BadZipFile, EOFError, ...
            unreadable.append((str(f), f"not a readable sample: {type(exc).__name__}: {exc}"))
    return unreadable + run_jobs(_estimated_normals_one, jobs, workers, "estimate normals", progress)


def prepare_meshes(
    meshes: Path, out: Path, rotations: dict[str, np.ndarray] | None = None, workers: int | None = None,
    progress: bool = True, seg_labels: bool = False
) -> tuple[int, int, list[tuple[str, str]]]:
    """-> (prepared now, already there, failures).  `seg_labels`: see `mesh_sample`."""
    paths = find_meshes(meshes)
    if not paths:
        raise ValueError(f"no meshes ({', '.join(MESH_SUFFIXES)}) under {meshes}")
    _refuse_shared_names(paths, meshes)
    rotations = rotations or {}
    unused = sorted(set(rotations) - {mesh_name(p) for p in paths})
    if unused:
        print(f"warning: --rotations names {len(unused)} mesh(es) not found under {meshes}: "
              f"{', '.join(unused[:5])}{' ...' if len(unused) > 5 else ''}", file=sys.stderr)
    remove_unfinished(out)
    jobs, done, changed = [], 0, 0
    for i, p in enumerate(paths):
        dst, rotation = out / f"{mesh_name(p)}.npz", rotations.get(mesh_name(p))
        if dst.is_file():
            if _is_current(dst, _made_from(p, rotation, seg_labels), seg_labels):
                done += 1
                continue
            changed += 1
        jobs.append((str(p), str(dst), rotation, i, seg_labels))
    if changed:
        print(f"{changed} sample(s) made again: their mesh, .seg file, rotation or --seg_labels changed since "
              "(or they could not be read)", file=sys.stderr)
    failures = run_jobs(_prepare_one, jobs, workers, "prepare", progress)
    return len(jobs) - len(failures), done, failures


def _refuse_shared_names(paths: list[Path], root: Path) -> None:
    """Samples (and --rotations keys) are named by the file name alone: two meshes of one
    name in different folders would write one sample."""
    seen: dict[str, Path] = {}
    for p in paths:
        other = seen.setdefault(mesh_name(p), p)
        if other is not p:
            raise ValueError(f"two meshes are both named {mesh_name(p)!r} ({other.relative_to(root)} and "
                             f"{p.relative_to(root)}): samples are named by the file name alone; rename one")


def load_rotations(path: Path) -> dict[str, np.ndarray]:
    """A --rotations file: JSON {"rotations": {mesh name: 3x3 matrix}}."""
    try:
        table = json.loads(path.read_text())["rotations"]
    except FileNotFoundError:
        raise ValueError(f"--rotations {path}: no such file") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"--rotations {path}: not JSON ({exc})") from None
    except (KeyError, TypeError):
        raise ValueError(f'--rotations {path}: expected {{"rotations": {{mesh name: 3x3 matrix}}}}') from None
    if not isinstance(table, dict):
        raise ValueError(f'--rotations {path}: "rotations" must map mesh names to 3x3 matrices')
    out = {}
    for name, matrix in table.items():
        try:
            m = np.asarray(matrix, dtype=np.float64)
        except (TypeError, ValueError):
            m = np.zeros(0)
        if m.shape != (3, 3) or not np.isfinite(m).all():
            raise ValueError(f"--rotations {path}: {name!r} is not a 3x3 matrix of numbers")
        out[name] = m
    return out


def prepare_procedural(
    category: str, count: int, out: Path, workers: int | None = None, first: int = 0, progress: bool = True
) -> tuple[int, int, list[tuple[str, str]]]:
    """Shapes `first`..`first+count-1` of a family, seeded by index (stable across runs)."""
    if category not in FAMILIES:
        raise ValueError(f"no procedural family {category!r}; choose one of {sorted(FAMILIES)}")
    if count < 1:
        raise ValueError(f"--count must be >= 1, got {count}")
    remove_unfinished(out)
    jobs, done = [], 0
    for i in range(first, first + count):
        dst = out / f"{category}_{i:05d}.npz"
        if dst.is_file():
            done += 1
            continue
        jobs.append((category, i, str(dst)))
    failures = run_jobs(_procedural_one, jobs, workers, f"generate {category}", progress)
    return len(jobs) - len(failures), done, failures


def main(argv: Iterable[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m training.prepare", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--meshes", type=Path, help="folder of meshes (searched recursively)")
    src.add_argument("--procedural", metavar="CATEGORY", help="chair, table or airplane")
    ap.add_argument("--out", type=Path, required=True, help="folder for the .npz samples")
    ap.add_argument("--count", type=int, default=1000, help="procedural shapes to generate")
    ap.add_argument("--rotations", type=Path, help='JSON {"rotations": {mesh name: 3x3 matrix}}, applied before normalising')
    ap.add_argument("--seg_labels", action="store_true",
                    help="each mesh's <name>.seg (an id per face) holds part labels, the same id for the same part "
                         "on every mesh (0 = the first part); without it meshes are prepared unlabelled")
    ap.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    args = ap.parse_args(list(argv) if argv is not None else None)
    try:
        if args.meshes:
            if not args.meshes.is_dir():
                raise ValueError(f"--meshes {args.meshes} is not a folder")
            rotations = load_rotations(args.rotations) if args.rotations else None
            if rotations is None and args.meshes.resolve().parent.name == "psb":
                here = {mesh_name(p) for p in find_meshes(args.meshes)}  # the table holds three categories
                rotations = {k: v for k, v in load_rotations(PSB_ROTATIONS).items() if k in here}
                print(f"using the PSB orientations in {PSB_ROTATIONS}" if rotations else
                      f"no PSB orientations for these meshes in {PSB_ROTATIONS}: they are prepared as they stand")
            new, old, failures = prepare_meshes(args.meshes, args.out, rotations, args.workers,
                                                seg_labels=args.seg_labels)
        else:
            new, old, failures = prepare_procedural(args.procedural, args.count, args.out, args.workers)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted: the finished samples are kept; the same command goes on from them", file=sys.stderr)
        return 130
    print(f"{new} prepared, {old} already there, {len(failures)} skipped -> {args.out}")
    if failures and not new and not old:
        print("error: no sample could be made (the reasons are above)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
