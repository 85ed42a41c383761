"""Real, artist-made, unlabelled training meshes from Debian packages, in one command.

    python -m training.artist --category chair|table|airplane --out data/artist_chair
                              [--cache DIR] [--limit N] [--workers N]

Sources (fetched with `apt-get download` into the cache, ~/.cache/implicit-correspondence
by default, and read there with Python's own ar/tar reading; a .deb already in the cache
is reused):

* chair, table: Sweet Home 3D's furniture, the OBJ models of the `.sh3f` catalogues of
  `sweethome3d-furniture` and of the program's jar (`sweethome3d`).  A model is picked
  by its English name and tags in the catalogue's properties file (CHAIR_RULES,
  TABLE_RULES below).  Its `modelRotation` is applied, then it is scaled to the
  catalogue's width x height x depth, as Sweet Home 3D shows it (Y up, front +Z), and
  turned 180 degrees about Y into the model frame (+Y up, front -Z).
* airplane: FlightGear's AI aircraft (`flightgear-data-ai`), AC3D `.ac` models read by
  Assimp (the `assimp-py` wheel), one per aircraft folder: its largest `.ac` that is not a
  part (lights, refuelling probe, wheels, ...).  FlightGear's frame (+X aft, +Y right,
  +Z up) is stored in AC3D's Y-up axes as +X aft, +Y up, +Z left; (x, y, z) ->
  (-z, y, x) puts the nose at -Z.

Each mesh is cleaned (close vertices merged; degenerate and duplicate faces dropped;
faces of each connected piece wound consistently, outwards where the piece is closed),
checked (enough faces, not flat, an airplane's height is its smallest extent, something
inside), written to the cache as a PLY in the model frame and
prepared as a `training.prepare` sample (`<name>.npz`, surface labels -1) in --out.
`--out/manifest.json` records every shape's origin (package, version, path), creator and
licence, its vertex and face counts, and every model left out, with the reason;
`--out/licences/` holds the packages' copyright files and the catalogues' licence texts.
Reruns skip finished shapes; every file is written atomically.
"""
from __future__ import annotations

import argparse
import fnmatch
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
import zlib
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import unquote

import numpy as np
from tqdm import tqdm

DEFAULT_CACHE = Path.home() / ".cache" / "implicit-correspondence"
CATEGORIES = ("chair", "table", "airplane")
PACKAGES = {
    "chair": ("sweethome3d-furniture", "sweethome3d"),
    "table": ("sweethome3d-furniture", "sweethome3d"),
    "airplane": ("flightgear-data-ai",),
}
# What each package contributes (the rest of the package is not extracted).
KEEP = {
    "sweethome3d-furniture": r"usr/share/sweethome3d/furniture/.*\.sh3f$|usr/share/doc/[^/]+/copyright$",
    "sweethome3d": r"usr/share/sweethome3d/sweethome3d\.jar$|usr/share/doc/[^/]+/copyright$",
    "flightgear-data-ai": r"usr/share/games/flightgear/AI/Aircraft/.*\.(ac|xml|txt)$|usr/share/doc/[^/]+/copyright$",
}
FURNITURE_DIR = "usr/share/sweethome3d/furniture"
JAR = "usr/share/sweethome3d/sweethome3d.jar"
JAR_CATALOGUE = "com/eteks/sweethome3d/io/DefaultFurnitureCatalog.properties"
AIRCRAFT_DIR = "usr/share/games/flightgear/AI/Aircraft"

# Sweet Home 3D: a model is a candidate when its English name or one of its tags matches
# the category's pattern; the first matching exclusion (on the name) leaves it out.
CHAIR_RULES = (
    r"\b(chair|armchair|stool)s?\b",  # dining, office, arm-, lounge, bar, high chairs; stools
    [
        (r"ottoman|\b(puff|pouf|pouffe)s?\b", "an ottoman or pouf (a footstool): no seat/back/legs structure"),
        (r"sofa|couch|settee", "a sofa: its own category (ShapeNet sofa), not a chair"),
        (r"bench", "a bench: its own category (ShapeNet bench), not a chair"),
        (r"wheelchair", "a wheelchair: wheels instead of legs"),
    ],
)
TABLE_RULES = (
    r"\b(table|desk)s?\b",  # dining, coffee, side, round, office tables, desks, workbenches
    [
        (r"\blamps?\b", "a lamp"),
        (r"\bfans?\b", "a fan"),
        (r"\bbat\b", "a table tennis bat"),
        (r"tennis", "a table tennis table: sports equipment with a net"),
        (r"football", "table football: a game box with rods and figures"),
        (r"bedside|nightstand", "a bedside table: a small cabinet with drawers"),
        (r"changing", "a changing table: a cabinet with shelves"),
        (r"dressing", "a dressing table: a cabinet with a mirror"),
    ],
)
RULES = {"chair": CHAIR_RULES, "table": TABLE_RULES}

# FlightGear: folders that hold no airplane, and file names that are parts of one.
NOT_AIRPLANES = {
    "balloon": "hot-air balloons, not airplanes",
    "Ferry": "a ferry boat, not an airplane",
    "bluebird": "a science-fiction hovercraft without wings, not an airplane",
    "flash2a": "a flex-wing microlight trike (a hang-glider wing over a cart): no fuselage or tail",
}
PART_FILE = re.compile(
    r"light(?!ning)|flare|beacon|strobe|toggle|exhaust|banner|tank|wheel|probe|refuel|"
    r"cone|ssme|omspod|chock|shadow|cockpit|interior|pilot|lod\d", re.I)
PART_DIRS = {"light", "lights", "refueling", "refuelling"}
# objects inside a model that stand for motion or lighting (spinning propellers, shadows) or
# that only show on the ground (a brake parachute, boarding ladders and stairs)
NOT_SHAPE = re.compile(r"blur(?!e)|prop.?dis[ck]|(?<!no)shadow|^chute$|^ladder|^stairs", re.I)

MIN_FACES = 36  # fewer than three boxes' worth of triangles
MIN_FLATNESS = 0.03  # smallest / largest bounding-box extent
MIN_INSIDE = 0.01  # share of the 64^3 occupancy samples that are inside
BAND = 1 / 128  # half a 64^3 voxel of the unit box: surfaces closer than this are solid
MAX_STRETCH = 1.35  # Sweet Home 3D: largest / smallest axis scale to the catalogue's size
PIPELINE = 3  # bump when orientation, cleaning or the checks change: cached results are redone


class FetchError(RuntimeError):
    """A package could not be fetched or read."""


class Skip(Exception):
    """A model that is not used, with the reason."""


# --------------------------------------------------------------------------- packages


def deb_version(deb: Path) -> str:
    """`name_version_arch.deb` (the epoch's ':' is %3a in apt's file names) -> version."""
    parts = unquote(deb.name[:-4]).split("_")
    if len(parts) != 3:
        raise FetchError(f"{deb.name}: not a name_version_arch.deb file name")
    return parts[1]


def fetch_deb(package: str, cache: Path) -> Path:
    """The package's .deb in `cache`, downloaded with `apt-get download` unless already there."""
    found = sorted(cache.glob(f"{package}_*.deb"))
    if found:
        return found[-1]
    if shutil.which("apt-get") is None:
        raise FetchError(f"apt-get not found: on Debian/Ubuntu run `apt-get download {package}` "
                         f"in {cache}, or copy {package}_*.deb there by hand")
    tqdm.write(f"apt-get download {package} -> {cache}")
    run = subprocess.run(["apt-get", "download", package], cwd=cache, capture_output=True, text=True)
    found = sorted(cache.glob(f"{package}_*.deb"))
    if run.returncode != 0 or not found:
        detail = " ".join(line.strip() for line in run.stderr.splitlines() if line.startswith("E:"))
        raise FetchError(
            f"`apt-get download {package}` failed (exit {run.returncode}"
            f"{': ' + detail if detail else ''}). It needs a reachable Debian package registry "
            f"and package lists (`apt-get update`, as root). Or copy {package}_*.deb into {cache} by hand.")
    return found[-1]


class _Slice(io.RawIOBase):
    """Read-only view of `size` bytes of an open file, from its current position."""

    def __init__(self, fh, size: int):
        self.fh, self.left = fh, size

    def readable(self) -> bool:
        return True

    def readinto(self, buf) -> int:
        n = min(len(buf), self.left)
        data = self.fh.read(n)
        buf[: len(data)] = data
        self.left -= len(data)
        return len(data)


def _deb_data(fh) -> tuple[str, int]:
    """Position `fh` (a .deb, an ar archive) at its data.tar.* member -> (name, size)."""
    if fh.read(8) != b"!<arch>\n":
        raise FetchError("not a Debian package (no ar header)")
    while True:
        header = fh.read(60)
        if len(header) < 60:
            raise FetchError("no data.tar member")
        name = header[:16].decode("ascii").strip().rstrip("/")
        size = int(header[48:58].decode("ascii").strip())
        if name.startswith("data.tar"):
            return name, size
        fh.seek(size + (size & 1), os.SEEK_CUR)


def extract_deb(deb: Path, cache: Path, keep: str) -> Path:
    """The files of `deb` whose paths match `keep`, extracted once to cache/extracted/<deb>/."""
    dest = cache / "extracted" / deb.name[:-4]
    stamp = dest / ".complete"
    if stamp.is_file() and stamp.read_text() == keep:
        return dest
    partial = dest.with_name(dest.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    pattern = re.compile(keep)
    try:
        with deb.open("rb") as fh:
            member, size = _deb_data(fh)
            if member.endswith(".zst"):
                raise FetchError(f"{deb.name}: {member} (zstd) cannot be read here: "
                                 f"run `dpkg-deb -x {deb} {dest}` and `touch` nothing else")
            stream = io.BufferedReader(_Slice(fh, size), 1 << 20)
            with tarfile.open(fileobj=stream, mode="r|*") as tar, \
                    tqdm(desc=f"extract {deb.name}", unit="B", unit_scale=True, total=None, leave=False) as bar:
                for info in tar:
                    name = info.name.lstrip("./")
                    if info.isfile() and pattern.match(name):
                        info.name = name
                        tar.extract(info, partial, filter="data")
                        bar.update(info.size)
    except (OSError, tarfile.TarError, ValueError) as exc:
        shutil.rmtree(partial, ignore_errors=True)
        raise FetchError(f"cannot read {deb}: {exc} (delete it to download it again)") from None
    shutil.rmtree(dest, ignore_errors=True)
    partial.rename(dest)
    stamp.write_text(keep)
    return dest


def read_copyright(path: Path) -> list[dict[str, str]]:
    """A machine-readable debian/copyright file -> its paragraphs' Files/Copyright/License."""
    paragraphs, current, key = [], {}, None
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines() + [""]:
        if not line.strip():
            if current:
                paragraphs.append(current)
            current, key = {}, None
        elif line[0] in " \t":
            if key:
                current[key] += "\n" + line.strip()
        elif ":" in line:
            key, value = line.split(":", 1)
            current[key] = value.strip()
    return [p for p in paragraphs if "Files" in p]


def licence_for(paragraphs: list[dict[str, str]], path: str) -> dict[str, str]:
    """The copyright paragraph whose Files patterns match `path` (the last match wins)."""
    best = {}
    for p in paragraphs:
        if any(fnmatch.fnmatch(path, pat) for pat in p["Files"].split()):
            best = p
    return {"license": best.get("License", "unknown").split("\n")[0],
            "copyright": best.get("Copyright", "")}


# --------------------------------------------------------------------- Sweet Home 3D


def read_properties(text: str) -> dict[str, str]:
    """A Java .properties file (continuation lines, \\uXXXX escapes) -> dict."""
    out, lines, i = {}, text.splitlines(), 0
    while i < len(lines):
        line = lines[i].lstrip()
        i += 1
        if not line or line[0] in "#!":
            continue
        while re.search(r"(?<!\\)(\\\\)*\\$", line) and i < len(lines):
            line = line[:-1] + lines[i].lstrip()
            i += 1
        m = re.match(r"((?:[^=:\s\\]|\\.)+)\s*[=:\s]?\s*(.*)$", line)
        if not m:
            continue
        value = re.sub(r"\\u([0-9a-fA-F]{4})", lambda u: chr(int(u.group(1), 16)), m.group(2))
        value = re.sub(r"\\(.)", lambda e: {"n": "\n", "t": "\t"}.get(e.group(1), e.group(1)), value)
        out[m.group(1).replace("\\", "")] = value
    return out


def model_rotation(text: str | None) -> np.ndarray | None:
    """`modelRotation` (9 numbers, row by row, applied as R @ v as Java3D does) -> 3x3."""
    if not text:
        return None
    values = [float(v) for v in text.split()]
    if len(values) != 9:
        raise ValueError(f"modelRotation has {len(values)} numbers, expected 9")
    return np.asarray(values).reshape(3, 3)


def furniture_catalogue(archive: Path, properties: str) -> list[dict]:
    """The pieces of a furniture catalogue (a .sh3f or the jar) as dicts of their keys."""
    with zipfile.ZipFile(archive) as z:
        props = read_properties(z.read(properties).decode("latin-1"))
    pieces = []
    for n in sorted({int(k.split("#")[1]) for k in props if re.match(r"model#\d+$", k)}):
        piece = {key.split("#")[0]: value for key, value in props.items() if key.endswith(f"#{n}")}
        piece["index"] = n
        pieces.append(piece)
    return pieces


def catalogue_info(archive: Path, properties: str) -> dict[str, str]:
    with zipfile.ZipFile(archive) as z:
        props = read_properties(z.read(properties).decode("latin-1"))
        text = z.read("LICENSE.TXT").decode("latin-1") if "LICENSE.TXT" in z.namelist() else None
    return {"id": props.get("id", ""), "name": props.get("name", ""), "catalogue_version": props.get("version", ""),
            "license": props.get("license", ""), "provider": props.get("provider", ""), "license_text": text}


def pick_furniture(category: str, piece: dict) -> str | None:
    """None when `piece` is not of the category; '' when it is picked; else why it is left out."""
    pattern, exclusions = RULES[category]
    name, tags = piece.get("name", ""), piece.get("tags", "")
    if not (re.search(pattern, name, re.I) or any(re.fullmatch(pattern, t.strip(), re.I) for t in tags.split(","))):
        return None
    for rule, reason in exclusions:
        if re.search(rule, name, re.I):
            return reason
    return ""


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-")


def sweethome_jobs(category: str, roots: dict[str, Path], versions: dict[str, str]) -> tuple[list[dict], list[dict], dict]:
    """-> (jobs, left out by the selection rules, catalogues' licence info)."""
    sources = [("sweethome3d-furniture", f"{FURNITURE_DIR}/{p.name}", "PluginFurnitureCatalog.properties")
               for p in sorted((roots["sweethome3d-furniture"] / FURNITURE_DIR).glob("*.sh3f"))]
    sources.append(("sweethome3d", JAR, JAR_CATALOGUE))
    jobs, excluded, catalogues, seen = [], [], {}, set()
    for package, archive, properties in sources:
        path = roots[package] / archive
        catalogue = "Default" if package == "sweethome3d" else Path(archive).stem
        copyright_file = roots[package] / f"usr/share/doc/{package}/copyright"
        paragraphs = read_copyright(copyright_file)
        deb_licence = licence_for(paragraphs, f"{catalogue}/model" if package == "sweethome3d-furniture" else archive)
        info = catalogue_info(path, properties)
        catalogues[catalogue] = {"package": package, "version": versions[package], "archive": archive,
                                 "debian_copyright": deb_licence, **info}
        with zipfile.ZipFile(path) as z:
            members = set(z.namelist())
        for piece in furniture_catalogue(path, properties):
            verdict = pick_furniture(category, piece)
            if verdict is None:
                continue
            model = piece.get("model", "").lstrip("/")
            name = f"sh3d-{_slug(catalogue).lower()}-{_slug(Path(model).stem)}"
            while name in seen:
                name += f"-{piece['index']}"
            seen.add(name)
            origin = {"name": name, "title": piece.get("name", ""), "source": "sweethome3d", "package": package,
                      "version": versions[package], "archive": archive, "path": model, "catalogue": catalogue,
                      "catalogue_index": piece["index"], "catalogue_id": piece.get("id", ""),
                      "creator": piece.get("creator", ""), "tags": piece.get("tags", ""),
                      "license": deb_licence["license"], "copyright": deb_licence["copyright"]}
            if verdict:
                excluded.append({**origin, "reason": verdict})
                continue
            if model not in members:
                excluded.append({**origin, "reason": f"model file {model} is not in the package"})
                continue
            size = [piece.get(k) for k in ("width", "height", "depth")]
            origin.update(
                model_rotation=piece.get("modelRotation"),
                catalogue_size_cm=[float(s) for s in size] if all(size) else None,
                file=str(path), category=category)
            jobs.append(origin)
    return jobs, excluded, catalogues


def load_sweethome(job: dict) -> tuple[np.ndarray, np.ndarray, dict]:
    """The OBJ model, turned by its modelRotation, scaled to the catalogue's size, front -Z."""
    import trimesh

    with zipfile.ZipFile(job["file"]) as z:
        data = z.read(job["path"])
    mesh = trimesh.load(io.BytesIO(data), file_type="obj", force="mesh", process=False, skip_materials=True)
    if not isinstance(mesh, trimesh.Trimesh) or len(mesh.faces) == 0:
        raise Skip("empty: the OBJ has no triangles")
    v = np.asarray(mesh.vertices, dtype=np.float64)
    rotation = model_rotation(job.get("model_rotation"))
    if rotation is not None:
        v = v @ rotation.T
    size = job.get("catalogue_size_cm")
    extent = np.ptp(v, axis=0)
    if size and np.all(extent > 1e-9 * extent.max()):
        ratio = np.asarray(size) / extent
        if ratio.max() > MAX_STRETCH * ratio.min():
            raise Skip(f"catalogue size disagrees: the turned model would be stretched "
                       f"{np.round(ratio / np.median(ratio), 2).tolist()} to w x h x d {size} cm, "
                       f"so its modelRotation is in doubt")
        v = (v - v.min(axis=0)) * ratio  # Sweet Home 3D's width, height, depth
    v = v * np.array([-1.0, 1.0, -1.0])  # front +Z -> -Z: half a turn about Y
    return v, np.asarray(mesh.faces, dtype=np.int64), {}


# ------------------------------------------------------------------------- FlightGear


def pick_aircraft_model(folder: Path) -> tuple[Path | None, list[str]]:
    """The folder's main exterior model: its largest .ac that is not a part -> (path, others)."""
    models = []
    for p in sorted(folder.rglob("*.ac")):
        rel = p.relative_to(folder)
        if any(part.lower() in PART_DIRS for part in rel.parts[:-1]) or PART_FILE.search(p.stem):
            continue
        models.append(p)
    if not models:
        return None, []
    best = max(models, key=lambda p: (p.stat().st_size, str(p)))
    return best, [str(p.relative_to(folder)) for p in models if p != best]


def aircraft_notes(folder: Path) -> dict[str, list[str]]:
    """Authors, descriptions and any licence lines in the aircraft folder's XML files."""
    authors, descriptions, notes = set(), set(), set()
    for xml in sorted(folder.rglob("*.xml")):
        text = xml.read_text(encoding="utf-8", errors="replace")
        authors.update(a.strip() for a in re.findall(r"<author>(.*?)</author>", text, re.S) if a.strip())
        descriptions.update(d.strip() for d in re.findall(r"<description>(.*?)</description>", text, re.S) if d.strip())
        notes.update(line.strip() for line in text.splitlines()
                     if re.search(r"licen[cs]|\bGPL|copyright|creative commons", line, re.I))
    return {"authors": sorted(authors), "descriptions": sorted(descriptions)[:5], "license_notes": sorted(notes)[:5]}


def flightgear_jobs(root: Path, version: str) -> tuple[list[dict], list[dict]]:
    aircraft = root / AIRCRAFT_DIR
    paragraphs = read_copyright(root / "usr/share/doc/flightgear-data-ai/copyright")
    deb_licence = licence_for(paragraphs, f"AI/Aircraft/x.ac")
    jobs, excluded = [], []
    for folder in sorted(p for p in aircraft.iterdir() if p.is_dir()):
        origin = {"name": f"fg-{_slug(folder.name)}", "title": folder.name, "source": "flightgear",
                  "package": "flightgear-data-ai", "version": version, "license": deb_licence["license"],
                  "copyright": deb_licence["copyright"]}
        if folder.name in NOT_AIRPLANES:
            excluded.append({**origin, "path": str(folder.relative_to(root)), "reason": NOT_AIRPLANES[folder.name]})
            continue
        model, others = pick_aircraft_model(folder)
        if model is None:
            excluded.append({**origin, "path": str(folder.relative_to(root)), "reason": "no .ac model in the folder"})
            continue
        jobs.append({**origin, "path": str(model.relative_to(root)), "file": str(model), "other_models": others,
                     "category": "airplane", **aircraft_notes(folder)})
    return jobs, excluded


def polygons_only(text: str) -> tuple[str, int]:
    """AC3D text without what Assimp would turn into non-triangles, which assimp-py refuses
    and which have no area: line surfaces (SURF type 1 closed line, 2 line), polygons of
    fewer than 3 vertices, and the vertices of objects left without surfaces (a point
    cloud); counts adjusted -> (text, surfaces dropped)."""
    lines, out, dropped, i = text.splitlines(), [], 0, 0
    vert_at = count_at = None
    kept = 0
    while i < len(lines):
        line = lines[i]
        key = line.split(None, 1)[0] if line.strip() else ""
        if key == "OBJECT":
            vert_at = count_at = None
            kept = 0
        elif key == "numvert":
            vert_at = len(out)
        elif key == "numsurf":
            count_at, kept = len(out), 0
        elif key == "kids" and vert_at is not None and kept == 0:
            n = int(out[vert_at].split()[1])  # no surface left: drop the object's vertices
            del out[vert_at + 1: vert_at + 1 + n]
            out[vert_at] = "numvert 0"
            vert_at = None
        if key == "SURF" and count_at is not None:
            flags = int(line.split()[1], 0)
            block = [line]
            i += 1
            while i < len(lines) and not lines[i].startswith("refs"):
                block.append(lines[i])
                i += 1
            if i == len(lines):
                raise ValueError("a SURF without refs")
            n = int(lines[i].split()[1])
            block += lines[i: i + 1 + n]
            i += 1 + n
            if flags & 0x0F == 0 and n >= 3:
                out += block
                kept += 1
            else:
                dropped += 1
            out[count_at] = f"numsurf {kept}"
            continue
        out.append(line)
        i += 1
    return "\n".join(out) + "\n", dropped


def read_ac(path: str | Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """An AC3D file through Assimp, in the file's own axes, objects' transforms applied and
    polygons triangulated, without the objects that are rendering tricks rather than shape
    (NOT_SHAPE: spinning-propeller discs, blurs, shadows) -> (vertices, faces, dropped)."""
    import assimp_py

    text, _ = polygons_only(Path(path).read_text(encoding="latin-1"))
    fd, tmp = tempfile.mkstemp(suffix=".ac")
    try:
        with os.fdopen(fd, "w", encoding="latin-1") as fh:
            fh.write(text)
        try:
            scene = assimp_py.import_file(tmp, assimp_py.Process_Triangulate)
        except Exception as exc:
            raise Skip(f"unreadable: Assimp: {exc}") from None
    finally:
        os.unlink(tmp)
    verts, faces, dropped, offset = [], [], [], 0
    stack = [(scene.root_node, np.eye(4))]
    while stack:
        node, parent = stack.pop()
        if NOT_SHAPE.search(node.name):
            dropped.append(node.name)
            continue
        world = parent @ np.asarray(node.transformation, dtype=np.float64)
        for i in node.mesh_indices:
            mesh = scene.meshes[i]
            if not mesh.num_faces:
                continue
            v = np.frombuffer(mesh.vertices, dtype=np.float32).reshape(-1, 3).astype(np.float64)
            verts.append(v @ world[:3, :3].T + world[:3, 3])
            faces.append(np.frombuffer(mesh.indices, dtype=np.uint32).reshape(-1, 3).astype(np.int64) + offset)
            offset += len(v)
        stack.extend((child, world) for child in node.children)
    if not faces:
        raise Skip("empty: no polygons")
    return np.concatenate(verts), np.concatenate(faces), sorted(dropped)


AC3D_TO_MODEL = np.array([[0.0, 0.0, -1.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])  # (x,y,z) -> (-z,y,x)


def load_flightgear(job: dict) -> tuple[np.ndarray, np.ndarray, dict]:
    v, f, dropped = read_ac(job["file"])
    return v @ AC3D_TO_MODEL.T, f, {"objects_dropped": dropped}


# ------------------------------------------------------------------- cleaning, checks


def clean_mesh(vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
    """Merge vertices that round to one point of a grid 1e-6 of the diagonal apart, drop
    degenerate and duplicate faces (a face listed twice, either way round, is kept once) and
    unused vertices, and wind each connected piece's faces consistently (outwards where the
    piece is closed)."""
    import trimesh

    v = np.asarray(vertices, dtype=np.float64)
    f = np.asarray(faces, dtype=np.int64)
    stats = {"vertices_in": len(v), "faces_in": len(f)}
    if len(f) == 0:
        raise Skip("empty: no faces")
    ok = np.isfinite(v).all(axis=1)
    f = f[ok[f].all(axis=1)]
    diag = float(np.linalg.norm(np.ptp(v[ok], axis=0)))
    if diag <= 0:
        raise Skip("empty: all vertices coincide")
    _, first, inverse = np.unique(np.round(v / (1e-6 * diag)).astype(np.int64), axis=0,
                                  return_index=True, return_inverse=True)
    inverse = inverse.reshape(-1)
    f = inverse[f]
    v = v[first]
    stats["vertices_merged"] = stats["vertices_in"] - len(v)
    tri = v[f]
    area2 = np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
    degenerate = (f[:, 0] == f[:, 1]) | (f[:, 1] == f[:, 2]) | (f[:, 0] == f[:, 2]) | (area2 <= 1e-14 * diag**2)
    stats["faces_degenerate"] = int(degenerate.sum())
    f = f[~degenerate]
    _, keep = np.unique(np.sort(f, axis=1), axis=0, return_index=True)
    stats["faces_duplicate"] = len(f) - len(keep)
    f = f[np.sort(keep)]
    used = np.unique(f)
    remap = np.full(len(v), -1, dtype=np.int64)
    remap[used] = np.arange(len(used))
    v, f = v[used], remap[f]
    mesh = trimesh.Trimesh(v, f, process=False)
    with np.errstate(divide="ignore", invalid="ignore"):  # pieces of zero volume
        trimesh.repair.fix_normals(mesh, multibody=True)
    stats.update(vertices=len(mesh.vertices), faces=len(mesh.faces),
                 pieces=int(mesh.body_count), watertight=bool(mesh.is_watertight))
    return np.asarray(mesh.vertices), np.asarray(mesh.faces, dtype=np.int64), stats


def check_shape(vertices: np.ndarray, faces: np.ndarray, category: str) -> None:
    """Raise Skip for models that cannot be used as a shape of the category."""
    if len(faces) < MIN_FACES:
        raise Skip(f"too coarse: only {len(faces)} faces (< {MIN_FACES})")
    extent = np.ptp(vertices, axis=0)
    if extent.min() < MIN_FLATNESS * extent.max():
        raise Skip(f"flat: extents {np.round(extent / extent.max(), 3).tolist()}, a billboard or a panel")
    if category == "airplane" and not extent[1] < min(extent[0], extent[2]):
        raise Skip(f"not airplane-shaped: its height is not its smallest extent "
                   f"(x, y, z = {np.round(extent, 2).tolist()})")


# --------------------------------------------------------------------------- the jobs


def _mesh_dir(cache: Path, category: str) -> Path:
    return cache / "meshes" / category


def _write_json(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.stem + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh, indent=1)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _read_record(path: Path) -> dict | None:
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return record if record.get("pipeline") == PIPELINE else None


def artist_sample(path: Path, n_surface: int = 4096, seed: int = 0) -> dict[str, np.ndarray]:
    """`training.prepare.mesh_sample` with a thicker notion of inside: a point is inside
    where the generalized winding number is over 1/2 *or* it lies within BAND of the
    surface.  Artists model seats, shells and wings as single-sided sheets, which have no
    inside by winding numbers; the band gives them the voxels they pass through, as a
    surface voxelisation (IM-NET's binvox data) does.  Surface labels are -1."""
    import igl

    from model.geometry import bounding_frame, sample_surface
    from model.meshio import load_mesh

    from .prepare import winding_inside
    from .samples import make_sample

    mesh = load_mesh(path)
    v = np.asarray(mesh.vertices, dtype=np.float64)
    v = bounding_frame(v).to_model(v)
    f = np.asarray(mesh.faces, dtype=np.int64)
    winding = winding_inside(v, f)

    def inside(p: np.ndarray) -> np.ndarray:
        result = winding(p)
        rest = np.flatnonzero(~result)
        if len(rest):
            d2 = igl.point_mesh_squared_distance(np.ascontiguousarray(p[rest], dtype=np.float64), v, f)[0]
            result[rest[d2 < BAND**2]] = True
        return result

    points, _, normals = sample_surface(v, f, n_surface, seed=seed)
    return make_sample(inside, points, normals, None, seed=seed)


def oriented_mesh(job: dict) -> tuple[np.ndarray, np.ndarray, dict]:
    """Load, orient into the model frame, clean and check one model -> (vertices, faces, stats)."""
    v, f, info = (load_flightgear if job["source"] == "flightgear" else load_sweethome)(job)
    v, f, stats = clean_mesh(v, f)
    check_shape(v, f, job["category"])
    return v, f, {**info, **stats}


def prepare_one(job: dict) -> tuple[str, str | None]:
    """One model: cached oriented PLY + record, and its sample in job['out'] -> (name, why skipped)."""
    from model.geometry import bounding_frame
    from model.meshio import write_ply

    from .prepare import save_sample

    name, cache = job["name"], Path(job["mesh_dir"])
    ply, record_path, npz = cache / f"{name}.ply", cache / f"{name}.json", Path(job["out"]) / f"{name}.npz"
    origin = {k: v for k, v in job.items() if k not in ("file", "mesh_dir", "out")}
    t0 = time.perf_counter()
    try:
        record = _read_record(record_path)
        fresh = record is None or "skipped" in record or not ply.is_file()
        if fresh:  # (re)build the oriented mesh, and so the sample too
            v, f, stats = oriented_mesh(job)
            v = bounding_frame(v).to_model(v)
            cache.mkdir(parents=True, exist_ok=True)
            write_ply(ply, v, f)
            record = {**origin, "pipeline": PIPELINE, "mesh": ply.name, **stats}
        if fresh or not npz.is_file():
            sample = artist_sample(ply, seed=zlib.crc32(name.encode()) & 0x7FFFFFFF)
            inside = float(sample["occ_values_64"].mean())
            record["inside_share_64"] = round(inside, 4)
            if inside < MIN_INSIDE:
                raise Skip(f"no inside: only {inside:.1%} of the 64^3 samples are inside")
            save_sample(npz, sample)
        record["seconds"] = round(time.perf_counter() - t0, 2)
        _write_json(record_path, record)
        return name, None
    except Skip as why:
        _write_json(record_path, {**origin, "pipeline": PIPELINE, "skipped": str(why)})
        return name, str(why)
    except Exception as exc:  # a broken file: report it, skip it, carry on (and retry next time)
        reason = f"failed: {type(exc).__name__}: {exc}"
        _write_json(record_path, {**origin, "pipeline": PIPELINE, "skipped": reason, "retry": True})
        return name, reason


def collect(category: str, cache: Path) -> tuple[list[dict], list[dict], dict]:
    """Fetch and extract the category's packages -> (jobs, left out, sources' licence info)."""
    cache.mkdir(parents=True, exist_ok=True)
    roots, versions, packages = {}, {}, {}
    for package in PACKAGES[category]:
        deb = fetch_deb(package, cache)
        versions[package] = deb_version(deb)
        roots[package] = extract_deb(deb, cache, KEEP[package])
        packages[package] = {"version": versions[package], "deb": deb.name,
                             "copyright": f"usr/share/doc/{package}/copyright",
                             "copyright_file": str(roots[package] / f"usr/share/doc/{package}/copyright")}
    if category == "airplane":
        jobs, excluded = flightgear_jobs(roots["flightgear-data-ai"], versions["flightgear-data-ai"])
        catalogues = {}
    else:
        jobs, excluded, catalogues = sweethome_jobs(category, roots, versions)
    return jobs, excluded, {"packages": packages, "catalogues": catalogues}


def _copy_licences(out: Path, sources: dict) -> None:
    folder = out / "licences"
    folder.mkdir(parents=True, exist_ok=True)
    for package, info in sources["packages"].items():
        shutil.copyfile(info["copyright_file"], folder / f"{package}.copyright")
    for catalogue, info in sources["catalogues"].items():
        if info.get("license_text"):
            (folder / f"sweethome3d-{catalogue}.LICENSE.txt").write_text(info["license_text"])


def run(category: str, out: Path, cache: Path = DEFAULT_CACHE, limit: int | None = None,
        workers: int | None = None, progress: bool = True) -> dict:
    """The whole command; -> the manifest it wrote to out/manifest.json."""
    from .prepare import _run

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
    jobs = every[:limit] if limit is not None else every
    mesh_dir = _mesh_dir(cache, category)
    out.mkdir(parents=True, exist_ok=True)
    todo, cached_skips = [], 0
    for job in jobs:
        job.update(mesh_dir=str(mesh_dir), out=str(out))
        record = _read_record(mesh_dir / f"{job['name']}.json")
        if record and "skipped" in record and not record.get("retry"):
            cached_skips += 1
            continue
        if record and (out / f"{job['name']}.npz").is_file() and (mesh_dir / record["mesh"]).is_file():
            continue
        todo.append(job)
    done_before = len(jobs) - len(todo) - cached_skips
    if progress:
        for rule in excluded:
            tqdm.write(f"left out {rule['name']} ({rule['title']}): {rule['reason']}")
    failures = _run(prepare_one, todo, workers, f"prepare {category}", progress)
    shapes, skipped, processed = [], [], {job["name"] for job in jobs}
    for job in every:  # the manifest lists earlier runs' shapes too (a run with --limit)
        record = _read_record(mesh_dir / f"{job['name']}.json")
        if record is None:
            if job["name"] not in processed:
                continue
            record = {"name": job["name"], "skipped": "failed: no record written"}
        if "skipped" in record:
            skipped.append({k: record.get(k) for k in ("name", "title", "path", "creator", "license")}
                           | {"reason": record["skipped"]})
            if progress and record["name"] in processed and record["name"] not in dict(failures):
                tqdm.write(f"skipped {record['name']}: {record['skipped']} (cached)")
        elif (out / f"{record['name']}.npz").is_file():
            shapes.append({**record, "sample": f"{record['name']}.npz"})
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
    _write_json(out / "manifest.json", manifest)
    return manifest


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
