"""Real, artist-made, unlabelled training meshes from Debian packages, in one command.

    python -m training.artist --category chair|table|airplane --out data/artist_chair
                              [--cache DIR] [--limit N] [--workers N]

Sources (fetched with `apt-get download` into the cache, ~/.cache/implicit-correspondence
by default, and read there with Python's own ar/tar reading; a .deb already in the cache
is reused):

* chair, table: Sweet Home 3D's furniture, the OBJ models of the `.sh3f` catalogues of
  `sweethome3d-furniture` and of the program's jar (`sweethome3d`), picked by their
  English names and tags, turned by their `modelRotation`, scaled to the catalogue's size
  and turned to face -Z (training/sweethome.py).
* airplane: FlightGear's AI aircraft (`flightgear-data-ai`), AC3D `.ac` models read by
  Assimp (the `assimp-py` wheel), one per aircraft folder, turned nose to -Z
  (training/flightgear.py).

Each mesh is cleaned (close vertices merged; degenerate and duplicate faces dropped;
faces of each connected piece wound consistently, outwards where the piece is closed),
checked (enough faces, not flat, an airplane's height is its smallest extent:
training/cleaning.py; something inside), written to the cache as a PLY in the model frame and
prepared as a `training.prepare` sample (`<name>.npz`, surface labels -1) in --out.
`--out/manifest.json` records every shape's origin (package, version, path), creator and
licence, its vertex and face counts, and every model left out, with the reason;
`--out/licences/` holds the packages' copyright files and the catalogues' licence texts.
Reruns skip finished shapes; every file is written atomically.
"""
from __future__ import annotations

import argparse
import functools
import json
import shutil
import sys
import time
import zlib
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from tqdm import tqdm

from model.geometry import bounding_frame
from model.meshio import load_mesh, write_ply

from . import flightgear, sweethome
from .cleaning import Skip, check_shape, clean_mesh
from .debian import FetchError, copyright_path, deb_version, extract_deb, fetch_deb
from .prepare import mesh_sample, run_jobs, save_json, save_sample

DEFAULT_CACHE = Path.home() / ".cache" / "implicit-correspondence"
SOURCES = {"chair": sweethome, "table": sweethome, "airplane": flightgear}
CATEGORIES = tuple(SOURCES)
PACKAGES = {category: source.PACKAGES for category, source in SOURCES.items()}
KEEP = {**sweethome.KEEP, **flightgear.KEEP}  # what each package contributes

MIN_INSIDE = 0.01  # share of the 64^3 occupancy samples that are inside
BAND = 1 / 128  # half a 64^3 voxel of the unit box: surfaces closer than this are solid
# bump when orientation (sweethome.py, flightgear.py), cleaning or the checks (cleaning.py)
# change: cached results are redone
PIPELINE = 3


def run(category: str, out: Path, cache: Path = DEFAULT_CACHE, limit: int | None = None,
        workers: int | None = None, progress: bool = True, manifest_name: str = "manifest.json") -> dict:
    """The whole command; -> the manifest it wrote to out/<manifest_name>."""
    if category not in CATEGORIES:
        raise ValueError(f"no category {category!r}; choose one of {', '.join(CATEGORIES)}")
    if limit is not None and limit < 1:
        raise ValueError(f"--limit must be >= 1, got {limit}")
    if workers is not None and workers < 1:
        raise ValueError(f"--workers must be >= 1, got {workers}")
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} exists and is not a folder")
    t0 = time.perf_counter()
    every, excluded, sources = collect(category, cache)
    every, excluded = held_out(category, every, excluded)
    jobs = every[:limit] if limit is not None else every
    mesh_dir = _mesh_dir(cache, category)
    out.mkdir(parents=True, exist_ok=True)
    for job in jobs:
        job.update(mesh_dir=str(mesh_dir), out=str(out))
    todo, cached_skips = _pending(jobs, mesh_dir, out)
    done_before = len(jobs) - len(todo) - cached_skips
    if progress:
        for rule in excluded:
            tqdm.write(f"left out {rule['name']} ({rule['title']}): {rule['reason']}")
    failures = run_jobs(prepare_one, todo, workers, f"prepare {category}", progress)
    processed = {job["name"] for job in jobs}
    shapes, skipped = _outcomes(every, processed, mesh_dir, out)
    if progress:
        for s in skipped:
            if s["name"] in processed and s["name"] not in dict(failures):
                tqdm.write(f"skipped {s['name']}: {s['reason']} (cached)")
    _copy_licences(out, sources)
    for info in sources["catalogues"].values():
        info.pop("license_text", None)
    for info in sources["packages"].values():
        info.pop("copyright_file", None)
    reasons = Counter(s["reason"].split(":")[0] for s in skipped)
    manifest = {
        "category": category,
        "command": f"python -m training.artist --category {category} --out {out}"
                   + (f" --limit {limit}" if limit else ""),
        "frame": "+Y up, front -Z, centred on the bounding box, unit bounding-box diagonal",
        "labels": "none: surface_labels are -1",
        **sources,
        "counts": {"found": len(every), "processed": len(jobs), "prepared": len(shapes),
                   "prepared_now": len(todo) - len(failures), "already_there": done_before,
                   "skipped": len(skipped), "left_out_by_rules": len(excluded),
                   "skip_reasons": dict(reasons.most_common())},
        "seconds": round(time.perf_counter() - t0, 1),
        "shapes": shapes,
        "skipped": skipped,
        "left_out": [{k: e.get(k) for k in ("name", "title", "path", "reason")} for e in excluded],
    }
    save_json(out / manifest_name, manifest)
    return manifest


def collect(category: str, cache: Path) -> tuple[list[dict], list[dict], dict]:
    """Fetch and extract the category's packages -> (jobs, left out, sources' licence info)."""
    cache.mkdir(parents=True, exist_ok=True)
    roots, versions, packages = {}, {}, {}
    for package in PACKAGES[category]:
        deb = fetch_deb(package, cache)
        versions[package] = deb_version(deb)
        roots[package] = extract_deb(deb, cache, KEEP[package])
        packages[package] = {"version": versions[package], "deb": deb.name, "copyright": copyright_path(package),
                             "copyright_file": str(roots[package] / copyright_path(package))}
    jobs, excluded, catalogues = SOURCES[category].find_jobs(category, roots, versions)
    return jobs, excluded, {"packages": packages, "catalogues": catalogues}


def held_out(category: str, jobs: list[dict], excluded: list[dict]) -> tuple[list[dict], list[dict]]:
    """The real dev set's meshes (training/devset_sh3d.py) moved from the jobs to the
    left-out models: they are for measuring only."""
    from .devset_sh3d import dev_names

    dev = set(dev_names(category))
    reason = "in the real dev set (training/data/sh3d_devset.json): never trained on"
    return ([j for j in jobs if j["name"] not in dev],
            excluded + [{**j, "reason": reason} for j in jobs if j["name"] in dev])


def artist_mesh(category: str, name: str, cache: Path = DEFAULT_CACHE) -> tuple[np.ndarray, np.ndarray, dict]:
    """One model of the category's packages by name, oriented and cleaned (model frame),
    from the cache or built into it -> (vertices, faces, record)."""
    job = _jobs_by_name(category, cache).get(name)
    if job is None:
        raise ValueError(f"no {category} model named {name!r} in {', '.join(PACKAGES[category])}")
    job = {**job, "mesh_dir": str(_mesh_dir(cache, category))}
    record, fresh = cached_mesh(job)
    if fresh:
        save_json(Path(job["mesh_dir"]) / f"{name}.json", record)
    mesh = load_mesh(Path(job["mesh_dir"]) / record["mesh"])
    return np.asarray(mesh.vertices, np.float64), np.asarray(mesh.faces, np.int64), record


@functools.lru_cache(maxsize=4)
def _jobs_by_name(category: str, cache: Path) -> dict[str, dict]:
    """The category's models by name, read from its packages once per process."""
    return {job["name"]: job for job in collect(category, cache)[0]}


def prepare_one(job: dict) -> tuple[str, str | None]:
    """One model: cached oriented PLY + record, and its sample in job['out'] -> (name, why skipped)."""
    name, cache = job["name"], Path(job["mesh_dir"])
    ply, record_path, npz = cache / f"{name}.ply", cache / f"{name}.json", Path(job["out"]) / f"{name}.npz"
    origin = _origin(job)
    t0 = time.perf_counter()
    try:
        record, fresh = cached_mesh(job)
        if fresh or not npz.is_file():  # a rebuilt mesh needs its sample rebuilt too
            # single-sided sheets (seats, shells, wings) are solid within BAND; surface labels -1
            sample = mesh_sample(ply, seed=zlib.crc32(name.encode()) & 0x7FFFFFFF, band=BAND)
            inside = float(sample["occ_values_64"].mean())
            record["inside_share_64"] = round(inside, 4)
            if inside < MIN_INSIDE:
                raise Skip(f"no inside: only {inside:.1%} of the 64^3 samples are inside")
            save_sample(npz, sample)
        record["seconds"] = round(time.perf_counter() - t0, 2)
        save_json(record_path, record)
        return name, None
    except Skip as why:
        save_json(record_path, {**origin, "pipeline": PIPELINE, "skipped": str(why)})
        return name, str(why)
    except Exception as exc:  # a broken file: report it, skip it, carry on (and retry next time)
        reason = f"failed: {type(exc).__name__}: {exc}"
        save_json(record_path, {**origin, "pipeline": PIPELINE, "skipped": reason, "retry": True})
        return name, reason


def cached_mesh(job: dict) -> tuple[dict, bool]:
    """The job's oriented, cleaned mesh as a PLY in job['mesh_dir'] (model frame), built
    unless a current one is there -> (its record, whether it was built now).  Raises Skip
    for a model the checks refuse."""
    cache = Path(job["mesh_dir"])
    ply, record_path = cache / f"{job['name']}.ply", cache / f"{job['name']}.json"
    record = _read_record(record_path, job)
    if record is not None and "skipped" not in record and ply.is_file():
        return record, False
    v, f, stats = oriented_mesh(job)
    v = bounding_frame(v).to_model(v)
    cache.mkdir(parents=True, exist_ok=True)
    write_ply(ply, v, f)
    return {**_origin(job), "pipeline": PIPELINE, "mesh": ply.name, **stats}, True


def _origin(job: dict) -> dict:
    return {k: v for k, v in job.items() if k not in ("file", "mesh_dir", "out")}


def oriented_mesh(job: dict) -> tuple[np.ndarray, np.ndarray, dict]:
    """Load, orient into the model frame, clean and check one model -> (vertices, faces, stats)."""
    source = {sweethome.SOURCE: sweethome, flightgear.SOURCE: flightgear}[job["source"]]
    v, f, info = source.load(job)
    v, f, stats = clean_mesh(v, f)
    check_shape(v, f, job["category"])
    return v, f, {**info, **stats}


def _pending(jobs: list[dict], mesh_dir: Path, out: Path) -> tuple[list[dict], int]:
    """The jobs without a finished sample -> (them, how many are skipped by an earlier run)."""
    todo, cached_skips = [], 0
    for job in jobs:
        record = _read_record(mesh_dir / f"{job['name']}.json", job)
        if record and "skipped" in record and not record.get("retry"):
            cached_skips += 1
            continue
        if record and (out / f"{job['name']}.npz").is_file() and (mesh_dir / record["mesh"]).is_file():
            continue
        todo.append(job)
    return todo, cached_skips


def _outcomes(every: list[dict], processed: set[str], mesh_dir: Path, out: Path) -> tuple[list[dict], list[dict]]:
    """(shapes, skipped) of the manifest: earlier runs' shapes too (a run with --limit)."""
    shapes, skipped = [], []
    for job in every:
        record = _read_record(mesh_dir / f"{job['name']}.json")
        if record is None:
            if job["name"] not in processed:
                continue
            record = {"name": job["name"], "skipped": "failed: no record written"}
        if "skipped" in record:
            skipped.append({k: record.get(k) for k in ("name", "title", "path", "creator", "license")}
                           | {"reason": record["skipped"]})
        elif (out / f"{record['name']}.npz").is_file():
            shapes.append({**record, "sample": f"{record['name']}.npz"})
    return shapes, skipped


def _mesh_dir(cache: Path, category: str) -> Path:
    return cache / "meshes" / category


def _read_record(path: Path, job: dict | None = None) -> dict | None:
    """A model's record of an earlier run, None where it is of another pipeline or (given
    the `job`) of another version of the package: that model is made again."""
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if record.get("pipeline") != PIPELINE or (job is not None and record.get("version") != job.get("version")):
        return None
    return record


def _copy_licences(out: Path, sources: dict) -> None:
    folder = out / "licences"
    folder.mkdir(parents=True, exist_ok=True)
    for package, info in sources["packages"].items():
        shutil.copyfile(info["copyright_file"], folder / f"{package}.copyright")
    for catalogue, info in sources["catalogues"].items():
        if info.get("license_text"):
            (folder / f"sweethome3d-{catalogue}.LICENSE.txt").write_text(info["license_text"])


def main(argv: Iterable[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m training.artist", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--category", required=True, choices=CATEGORIES)
    ap.add_argument("--out", type=Path, required=True, help="folder for the .npz samples and manifest.json")
    ap.add_argument("--cache", type=Path, default=DEFAULT_CACHE,
                    help=f"packages, extracted files and oriented meshes (default {DEFAULT_CACHE})")
    ap.add_argument("--limit", type=int, default=None, help="prepare only the first N models")
    ap.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    args = ap.parse_args(list(argv) if argv is not None else None)
    try:
        m = run(args.category, args.out, args.cache, args.limit, args.workers)
    except (ValueError, FetchError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, ValueError) else 1
    c = m["counts"]
    print(f"{args.category}: {c['found']} models found ({c['left_out_by_rules']} more left out by name), "
          f"{c['prepared']} prepared ({c['prepared_now']} now, {c['already_there']} already there), "
          f"{c['skipped']} skipped -> {args.out} in {m['seconds']:.0f} s")
    for reason, n in c["skip_reasons"].items():
        print(f"  skipped {n}: {reason}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
