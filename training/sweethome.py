"""Chairs and tables from Sweet Home 3D's furniture: the OBJ models of the `.sh3f`
catalogues of `sweethome3d-furniture` and of the program's jar (`sweethome3d`).

A model is picked by its English name and tags in the catalogue's properties file
(CHAIR_RULES, TABLE_RULES).  Its `modelRotation` is applied, then it is scaled to the
catalogue's width x height x depth, as Sweet Home 3D shows it (Y up, front +Z), and turned
180 degrees about Y into the model frame (+Y up, front -Z).
"""
from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path

import numpy as np

from .cleaning import Skip, slug
from .debian import COPYRIGHT, copyright_path, licence_for, read_copyright

SOURCE = "sweethome3d"
PACKAGES = ("sweethome3d-furniture", "sweethome3d")
# What each package contributes (the rest of the package is not extracted).
KEEP = {
    "sweethome3d-furniture": rf"usr/share/sweethome3d/furniture/.*\.sh3f$|{COPYRIGHT}",
    "sweethome3d": rf"usr/share/sweethome3d/sweethome3d\.jar$|{COPYRIGHT}",
}
FURNITURE_DIR = "usr/share/sweethome3d/furniture"
JAR = "usr/share/sweethome3d/sweethome3d.jar"
JAR_CATALOGUE = "com/eteks/sweethome3d/io/DefaultFurnitureCatalog.properties"

# A model is a candidate when its English name or one of its tags matches the category's
# pattern; the first matching exclusion (on the name) leaves it out.
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
MAX_STRETCH = 1.35  # largest / smallest axis scale to the catalogue's size


def find_jobs(category: str, roots: dict[str, Path], versions: dict[str, str]) -> tuple[list[dict], list[dict], dict]:
    """The category's models in the extracted packages -> (jobs, left out by the selection
    rules, catalogues' licence info)."""
    sources = [("sweethome3d-furniture", f"{FURNITURE_DIR}/{p.name}", "PluginFurnitureCatalog.properties")
               for p in sorted((roots["sweethome3d-furniture"] / FURNITURE_DIR).glob("*.sh3f"))]
    sources.append(("sweethome3d", JAR, JAR_CATALOGUE))
    jobs, excluded, catalogues, seen = [], [], {}, set()
    for package, archive, properties in sources:
        path = roots[package] / archive
        catalogue = "Default" if package == "sweethome3d" else Path(archive).stem
        paragraphs = read_copyright(roots[package] / copyright_path(package))
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
            name = f"sh3d-{slug(catalogue).lower()}-{slug(Path(model).stem)}"
            while name in seen:
                name += f"-{piece['index']}"
            seen.add(name)
            origin = {"name": name, "title": piece.get("name", ""), "source": SOURCE, "package": package,
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


def load(job: dict) -> tuple[np.ndarray, np.ndarray, dict]:
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


# ------------------------------------------------------------------ the catalogues' files


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
    """A catalogue's id, name, version, licence and provider, and its LICENSE.TXT if it has one."""
    with zipfile.ZipFile(archive) as z:
        props = read_properties(z.read(properties).decode("latin-1"))
        text = z.read("LICENSE.TXT").decode("latin-1") if "LICENSE.TXT" in z.namelist() else None
    return {"id": props.get("id", ""), "name": props.get("name", ""), "catalogue_version": props.get("version", ""),
            "license": props.get("license", ""), "provider": props.get("provider", ""), "license_text": text}


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
