"""training.artist (and its debian, sweethome, flightgear, cleaning modules): real artist-made
meshes from Debian packages.

The Sweet Home 3D tests read the real `sweethome3d-furniture` package in the cache
(scripts/fetch_data.sh downloads it) and are skipped only when it is absent.  The
FlightGear side runs on a tiny AC3D airplane written here, inside a .deb built here, so
the whole command (fetch, extract, pick, orient, clean, prepare, manifest, rerun) runs
without the 290 MB package or a network.
"""
import io
import json
import os
import tarfile

import numpy as np
import pytest

from training import artist, cleaning, debian, flightgear, sweethome
from training.samples import POINTS_PER_RESOLUTION, RESOLUTIONS

SAMPLE_KEYS = {"surface_points", "surface_normals", "surface_labels", "labels_present"} | {
    f"occ_{kind}_{r}" for r in RESOLUTIONS for kind in ("points", "values")}


# ------------------------------------------------------------------ Sweet Home 3D


@pytest.fixture(scope="module")
def furniture():
    """The real sweethome3d-furniture package, extracted once into the cache."""
    debs = sorted(artist.DEFAULT_CACHE.glob("sweethome3d-furniture_*.deb"))
    if not debs:
        pytest.skip(f"no sweethome3d-furniture .deb in {artist.DEFAULT_CACHE} (scripts/fetch_data.sh fetches it)")
    root = debian.extract_deb(debs[-1], artist.DEFAULT_CACHE, artist.KEEP["sweethome3d-furniture"])
    return root, debian.deb_version(debs[-1])


def _job(root, version, catalogue, model):
    archive = f"{sweethome.FURNITURE_DIR}/{catalogue}.sh3f"
    pieces = sweethome.furniture_catalogue(root / archive, "PluginFurnitureCatalog.properties")
    piece = next(p for p in pieces if p["model"] == model)
    size = [float(piece[k]) for k in ("width", "height", "depth")]
    job = {"name": f"test-{catalogue}-{piece['index']}", "source": "sweethome3d", "category": "chair",
           "package": "sweethome3d-furniture", "version": version, "archive": archive, "path": model.lstrip("/"),
           "file": str(root / archive), "model_rotation": piece.get("modelRotation"), "catalogue_size_cm": size}
    return piece, job


def _assert_chair_faces_minus_z(v, size):
    """Upright, scaled to the catalogue's w x h x d, the back at +Z (so the front faces -Z)."""
    extent = np.ptp(v, axis=0)
    assert np.allclose(extent, size, rtol=0.01), (extent, size)  # the turn swaps x/z if wrong
    y, z = v[:, 1], v[:, 2]
    lo, hi = y.min(), y.max()
    top = v[y > hi - 0.1 * (hi - lo)]  # the top of the backrest
    mid_z = (z.min() + z.max()) / 2
    assert top[:, 2].mean() > mid_z + 0.2 * extent[2], "the backrest is not at +Z"
    feet = v[y < lo + 0.05 * (hi - lo)]  # legs reach the floor at the front and at the back
    assert feet[:, 2].min() < mid_z - 0.25 * extent[2] and feet[:, 2].max() > mid_z + 0.25 * extent[2]


def test_catalogue_chair_with_model_rotation_comes_out_upright_facing_minus_z(furniture, tmp_path):
    root, version = furniture
    piece, job = _job(root, version, "Scopia", "/scopia/chair/chair.obj")
    assert piece["name"] == "Chair" and piece["creator"] == "Scopia"
    assert sweethome.pick_furniture("chair", piece) == ""
    rotation = sweethome.model_rotation(piece["modelRotation"])
    assert np.array_equal(rotation, [[0, 0, -1], [0, 1, 0], [1, 0, 0]])  # row by row, R @ v
    v, f, _ = sweethome.load(job)
    _assert_chair_faces_minus_z(v, job["catalogue_size_cm"])

    # ... and the same for a chair without a modelRotation
    _, plain = _job(root, version, "BlendSwap-CC-0", "/blendswap-cc-0/oakChair/oakChair.obj")
    assert plain["model_rotation"] is None
    _assert_chair_faces_minus_z(sweethome.load(plain)[0], plain["catalogue_size_cm"])

    # prepared: a training sample with the trainer's keys, unlabelled
    job.update(mesh_dir=str(tmp_path / "meshes"), out=str(tmp_path / "out"))
    assert artist.prepare_one(job) == (job["name"], None)
    with np.load(tmp_path / "out" / f"{job['name']}.npz") as npz:
        sample = {k: npz[k] for k in npz.files}
    assert set(sample) == SAMPLE_KEYS
    assert (sample["surface_labels"] == -1).all() and len(sample["labels_present"]) == 0
    for r in RESOLUTIONS:
        assert sample[f"occ_points_{r}"].shape == (POINTS_PER_RESOLUTION[r], 3)
        assert 0.02 < sample[f"occ_values_{r}"].mean() < 0.9
    record = json.loads((tmp_path / "meshes" / f"{job['name']}.json").read_text())
    assert record["faces"] > 1000 and record["path"] == "scopia/chair/chair.obj"
    # a newer package version makes the model again; the same version finds it cached
    assert artist.cached_mesh(job)[1] is False and artist._pending([job], tmp_path / "meshes", tmp_path / "out")[0] == []
    newer = {**job, "version": version + "+1"}
    assert artist._pending([newer], tmp_path / "meshes", tmp_path / "out")[0] == [newer]
    assert artist.cached_mesh(newer)[1] is True


def test_selection_rules_and_licences(furniture):
    root, _ = furniture
    assert sweethome.pick_furniture("chair", {"name": "Bar stool", "tags": ""}) == ""
    assert sweethome.pick_furniture("chair", {"name": "Class seat", "tags": "Blend Swap, Chair, School"}) == ""
    assert "ottoman" in sweethome.pick_furniture("chair", {"name": "Armchair ottoman", "tags": "Seat"})
    assert sweethome.pick_furniture("chair", {"name": "Sofa", "tags": "Couch, Seat"}) is None
    assert sweethome.pick_furniture("table", {"name": "Coffee table", "tags": ""}) == ""
    assert "cabinet" in sweethome.pick_furniture("table", {"name": "Bedside table", "tags": "Nightstand"})
    assert sweethome.pick_furniture("table", {"name": "Tablet", "tags": ""}) is None
    paragraphs = debian.read_copyright(root / "usr/share/doc/sweethome3d-furniture/copyright")
    assert debian.licence_for(paragraphs, "Scopia/model")["license"] == "CC-BY-3.0"
    assert debian.licence_for(paragraphs, "BlendSwap-CC-0/model")["license"] == "CC0"
    assert debian.licence_for(paragraphs, "KatorLegaz/model")["license"] == "CC-BY-3.0-USA"


def test_properties_reader():
    text = "# comment\nname#1=Caf\\u00e9 chair\nmodel#1 = /a/b.obj\nlong#1=one \\\n    two\nkey\\=x=1\n"
    props = sweethome.read_properties(text)
    assert props == {"name#1": "Café chair", "model#1": "/a/b.obj", "long#1": "one two", "key=x": "1"}


# ----------------------------------------------------------------------- AC3D


def _box(cx, cy, cz, sx, sy, sz):
    """AC3D vertices and quads of an axis-aligned box (outward winding)."""
    v = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)]) * [sx / 2, sy / 2, sz / 2]
    v = v + [cx, cy, cz]
    quads = [(0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4), (1, 5, 7, 3)]
    return v, quads


def _ac_object(name, boxes, loc=None, kids=0, line=False):
    verts, surfs = [], []
    for b in boxes:
        v, quads = _box(*b)
        surfs += [[i + len(verts) for i in q] for q in quads]
        verts += v.tolist()
    lines = ["OBJECT poly", f'name "{name}"'] + ([f"loc {loc[0]} {loc[1]} {loc[2]}"] if loc else [])
    lines.append(f"numvert {len(verts)}")
    lines += [f"{x:g} {y:g} {z:g}" for x, y, z in verts]
    lines.append(f"numsurf {len(surfs) + line}")
    for q in surfs:
        lines += ["SURF 0x10", "mat 0", "refs 4"] + [f"{i} 0 0" for i in q]
    if line:  # an open line (an antenna wire): no area, and assimp-py would refuse it
        lines += ["SURF 0x02", "mat 0", "refs 2", "0 0 0", "1 0 0"]
    lines.append(f"kids {kids}")
    return lines


def tiny_airplane_ac() -> str:
    """FlightGear's convention in AC3D axes: +X aft, +Y up, +Z left.  The nose is a long
    thin box ahead (-X) of the fuselage, the fin stands at the tail (+X), the wings span Z;
    the fin is a kid object placed with `loc`, a prop blur disc is a rendering trick."""
    head = ['AC3Db', 'MATERIAL "m" rgb 1 1 1  amb 1 1 1  emis 0 0 0  spec 0 0 0  shi 0  trans 0', "OBJECT world", "kids 4"]
    body = _ac_object("fuselage", [(0, 0, 0, 10, 1.2, 1.2), (-5.5, 0, 0, 1, 0.5, 0.5)], line=True)
    wings = _ac_object("wings", [(-0.5, -0.2, 0, 1.8, 0.15, 12)])
    fin = _ac_object("fin", [(0, 0, 0, 1.2, 2, 0.15), (0.2, 0.2, 0, 1.0, 0.1, 3.5)], loc=(4.3, 1.5, 0))
    blur = _ac_object("propblur", [(-6.2, 0, 0, 0.05, 3, 3)])
    return "\n".join(head + body + wings + fin + blur) + "\n"


def test_ac3d_through_assimp_nose_to_minus_z(tmp_path):
    path = tmp_path / "tiny.ac"
    path.write_text(tiny_airplane_ac())
    raw, faces, dropped = flightgear.read_ac(path)
    assert dropped == ["propblur"] and len(faces) == 5 * 12
    assert np.isclose(raw[:, 1].max(), 1.5 + 1.0)  # the kid's loc is applied
    v, f, info = flightgear.load({"file": str(path)})
    assert np.isclose(np.linalg.det(flightgear.AC3D_TO_MODEL), 1.0)  # a rotation, not a mirror
    extent = np.ptp(v, axis=0)
    assert 11.9 < extent[0] < 12.1 and extent[1] < 4 and 10.9 < extent[2] < 11.1  # span X, length Z
    nose = v[np.argmin(v[:, 2])]
    fin_top = v[np.argmax(v[:, 1])]
    assert nose[2] < -5.9 and abs(nose[1]) < 0.3  # the nose points to -Z
    assert fin_top[2] > 3.5  # the fin stands at the tail, +Z
    cleaning.check_shape(*cleaning.clean_mesh(v, f)[:2], "airplane")


def test_polygons_only_drops_lines_and_fixes_counts():
    text = "\n".join(["numsurf 3", "SURF 0x10", "mat 0", "refs 3", "0 0 0", "1 0 0", "2 0 0",
                      "SURF 0x01", "mat 0", "refs 2", "0 0 0", "1 0 0",
                      "SURF 0x00", "refs 2", "0 0 0", "1 0 0", "kids 0"])
    out, dropped = flightgear.polygons_only(text)
    assert dropped == 2 and out.splitlines()[0] == "numsurf 1" and out.count("SURF") == 1


def _ar(members: dict[str, bytes]) -> bytes:
    out = b"!<arch>\n"
    for name, data in members.items():
        out += f"{name:<16}{0:<12}{0:<6}{0:<6}{100644:<8}{len(data):<10}`\n".encode() + data
        out += b"\n" if len(data) % 2 else b""
    return out


def fake_flightgear_deb(cache):
    """A flightgear-data-ai .deb with the tiny airplane, a balloon, a too coarse model."""
    files = {
        "usr/share/doc/flightgear-data-ai/copyright":
            "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\n"
            "Files: *\nCopyright: 1999-2017 Curtis L. Olson\nLicense: GPL-2+\n",
        f"{flightgear.AIRCRAFT_DIR}/Tiny/Models/tiny.ac": tiny_airplane_ac(),
        f"{flightgear.AIRCRAFT_DIR}/Tiny/Models/lights/light-cone.ac": tiny_airplane_ac(),
        f"{flightgear.AIRCRAFT_DIR}/Tiny/tiny.xml": "<PropertyList><author>A. Modeller</author></PropertyList>",
        f"{flightgear.AIRCRAFT_DIR}/Coarse/Models/coarse.ac": "\n".join(
            ['AC3Db', 'MATERIAL "m" rgb 1 1 1  amb 1 1 1  emis 0 0 0  spec 0 0 0  shi 0  trans 0', "OBJECT world",
             "kids 1"] + _ac_object("box", [(0, 0, 0, 4, 1, 3)])) + "\n",
        f"{flightgear.AIRCRAFT_DIR}/balloon/Models/balloon.ac": tiny_airplane_ac(),
    }
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w:xz") as tar:
        for name, text in files.items():
            blob = text.encode()
            info = tarfile.TarInfo("./" + name)
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
    deb = cache / "flightgear-data-ai_1%3a2020.3.16+dfsg-1_all.deb"
    deb.write_bytes(_ar({"debian-binary": b"2.0\n", "control.tar.xz": b"", "data.tar.xz": data.getvalue()}))
    return deb


def test_whole_command_on_a_package_built_here_and_rerun(tmp_path, capsys):
    cache, out = tmp_path / "cache", tmp_path / "out"
    cache.mkdir()
    fake_flightgear_deb(cache)
    args = ["--category", "airplane", "--out", str(out), "--cache", str(cache), "--workers", "1"]
    assert artist.main(args + ["--limit", "1"]) == 0  # the first model only: Coarse, skipped
    first = json.loads((out / "manifest.json").read_text())["counts"]
    assert (first["found"], first["processed"], first["prepared"], first["skipped"]) == (2, 1, 0, 1)
    assert not (out / "fg-Tiny.npz").exists()
    assert artist.main(args) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["counts"]["found"] == 2 and manifest["counts"]["prepared"] == 1
    assert manifest["counts"]["prepared_now"] == 1
    (shape,) = manifest["shapes"]
    assert shape["name"] == "fg-Tiny" and shape["path"].endswith("Tiny/Models/tiny.ac")
    assert shape["license"] == "GPL-2+" and shape["version"] == "1:2020.3.16+dfsg-1"
    assert shape["authors"] == ["A. Modeller"] and shape["objects_dropped"] == ["propblur"]
    assert shape["faces"] == shape["faces_in"] == 60
    (skipped,) = manifest["skipped"]
    assert skipped["name"] == "fg-Coarse" and skipped["reason"].startswith("too coarse")
    assert [e["name"] for e in manifest["left_out"]] == ["fg-balloon"]
    assert (out / "licences" / "flightgear-data-ai.copyright").is_file()
    with np.load(out / "fg-Tiny.npz") as npz:
        assert set(npz.files) == SAMPLE_KEYS and (npz["surface_labels"] == -1).all()
        pts = npz["surface_points"]
    assert np.isclose(np.linalg.norm(np.ptp(pts, axis=0)), 1.0, atol=0.02)  # the model frame
    assert pts[np.argmax(pts[:, 1]), 2] > 0.15  # the fin's top is aft: the nose faces -Z
    printed = capsys.readouterr()
    assert "skipped fg-Coarse: too coarse" in printed.err + printed.out
    assert "airplane: 2 models found" in printed.out

    mtime = os.stat(out / "fg-Tiny.npz").st_mtime_ns
    assert artist.main(args + ["--limit", "1"]) == 0  # the manifest still lists Tiny
    again = json.loads((out / "manifest.json").read_text())
    assert [s["name"] for s in again["shapes"]] == ["fg-Tiny"] and again["counts"]["processed"] == 1
    assert artist.main(args) == 0
    again = json.loads((out / "manifest.json").read_text())
    assert again["counts"]["already_there"] == 1 and again["counts"]["prepared_now"] == 0
    assert os.stat(out / "fg-Tiny.npz").st_mtime_ns == mtime
    assert not list(out.glob("*.tmp*")) and not list(cache.rglob("*.partial"))


# ------------------------------------------------------------------ bad input


def test_bad_arguments_exit_non_zero_with_a_message(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        artist.main(["--category", "boat", "--out", str(tmp_path)])
    assert exc.value.code == 2 and "invalid choice: 'boat'" in capsys.readouterr().err
    a_file = tmp_path / "file"
    a_file.write_text("x")
    assert artist.main(["--category", "chair", "--out", str(a_file), "--cache", str(tmp_path)]) == 2
    assert "is not a folder" in capsys.readouterr().err
    assert artist.main(["--category", "chair", "--out", str(tmp_path / "o"), "--limit", "0"]) == 2
    assert "--limit must be >= 1" in capsys.readouterr().err


def test_a_failed_download_says_what_to_do(tmp_path, monkeypatch, capsys):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "apt-get"
    fake.write_text("#!/bin/sh\necho 'E: Unable to locate package sweethome3d-furniture' >&2\nexit 100\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    cache = tmp_path / "cache"
    assert artist.main(["--category", "table", "--out", str(tmp_path / "o"), "--cache", str(cache)]) == 1
    err = capsys.readouterr().err
    assert "apt-get download sweethome3d-furniture` failed (exit 100: E: Unable to locate package" in err
    assert "apt-get update" in err and str(cache) in err

    monkeypatch.setattr(debian.shutil, "which", lambda name: None)
    with pytest.raises(debian.FetchError, match="apt-get not found"):
        debian.fetch_deb("sweethome3d", cache)


def test_a_broken_package_is_reported(tmp_path):
    deb = tmp_path / "flightgear-data-ai_1.0_all.deb"
    deb.write_bytes(b"not an ar archive")
    with pytest.raises(debian.FetchError, match="not a Debian package"):
        debian.extract_deb(deb, tmp_path, artist.KEEP["flightgear-data-ai"])
    assert not (tmp_path / "extracted" / "flightgear-data-ai_1.0_all").exists()
