"""Airplanes from FlightGear's AI aircraft (`flightgear-data-ai`): AC3D `.ac` models read by
Assimp (the `assimp-py` wheel), one per aircraft folder, its largest `.ac` that is not a
part (lights, refuelling probe, wheels, ...).

FlightGear's frame (+X aft, +Y right, +Z up) is stored in AC3D's Y-up axes as +X aft,
+Y up, +Z left; (x, y, z) -> (-z, y, x) puts the nose at -Z.
"""
from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

import numpy as np

from .cleaning import Skip, slug
from .debian import COPYRIGHT, copyright_path, licence_for, read_copyright

SOURCE = "flightgear"
PACKAGE = "flightgear-data-ai"
PACKAGES = (PACKAGE,)
KEEP = {PACKAGE: rf"usr/share/games/flightgear/AI/Aircraft/.*\.(ac|xml|txt)$|{COPYRIGHT}"}
AIRCRAFT_DIR = "usr/share/games/flightgear/AI/Aircraft"

# folders that hold no airplane, and file names that are parts of one
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
AC3D_TO_MODEL = np.array([[0.0, 0.0, -1.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])  # (x,y,z) -> (-z,y,x)


def find_jobs(category: str, roots: dict[str, Path], versions: dict[str, str]) -> tuple[list[dict], list[dict], dict]:
    """One airplane per aircraft folder of the extracted package -> (jobs, left out, {}: no
    catalogues)."""
    root, version = roots[PACKAGE], versions[PACKAGE]
    paragraphs = read_copyright(root / copyright_path(PACKAGE))
    deb_licence = licence_for(paragraphs, "AI/Aircraft/x.ac")
    jobs, excluded = [], []
    for folder in sorted(p for p in (root / AIRCRAFT_DIR).iterdir() if p.is_dir()):
        origin = {"name": f"fg-{slug(folder.name)}", "title": folder.name, "source": SOURCE,
                  "package": PACKAGE, "version": version, "license": deb_licence["license"],
                  "copyright": deb_licence["copyright"]}
        if folder.name in NOT_AIRPLANES:
            excluded.append({**origin, "path": str(folder.relative_to(root)), "reason": NOT_AIRPLANES[folder.name]})
            continue
        model, others = pick_aircraft_model(folder)
        if model is None:
            excluded.append({**origin, "path": str(folder.relative_to(root)), "reason": "no .ac model in the folder"})
            continue
        jobs.append({**origin, "path": str(model.relative_to(root)), "file": str(model), "other_models": others,
                     "category": category, **aircraft_notes(folder)})
    return jobs, excluded, {}


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


def load(job: dict) -> tuple[np.ndarray, np.ndarray, dict]:
    """The aircraft's model in the model frame, nose at -Z."""
    v, f, dropped = read_ac(job["file"])
    return v @ AC3D_TO_MODEL.T, f, {"objects_dropped": dropped}


# ------------------------------------------------------------------ AC3D through Assimp


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
