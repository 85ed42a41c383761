"""The installable zips: manifests valid for Blender's own validator, wheels listed and present."""
import sys
import tomllib
import zipfile

import pytest

from blender_addon import build


@pytest.fixture(scope="module")
def zips(tmp_path_factory):
    pytest.importorskip("bpy")
    out = tmp_path_factory.mktemp("dist")
    assert build.main(["--out", str(out)]) == 0  # the README's command
    return sorted(out.glob("*.zip"), key=lambda z: ("legacy" in z.name, z.name))


def test_one_extension_zip_per_python_range(zips):
    ext = [z for z in zips if "legacy" not in z.name]
    assert len(ext) == 2
    for z, python_tag in zip(ext, ("cp311-cp311", "cp312-abi3")):
        with zipfile.ZipFile(z) as zf:
            names = set(zf.namelist())
            manifest = tomllib.loads(zf.read("blender_manifest.toml").decode())
        assert manifest["id"] == build.ID and manifest["type"] == "add-on"
        assert len(manifest["wheels"]) == 3 and all(python_tag in w for w in manifest["wheels"])
        assert {w.removeprefix("./") for w in manifest["wheels"]} <= names  # every listed wheel is inside
        modules = {f.name for f in build.HERE.glob("*.py")} - {"build.py"}
        assert modules | {"vendor/client.py", "vendor/protocol.py", "vendor/curve.py", "vendor/labels.py"} <= names and "seams.py" in names
        assert not any(n.endswith(("build.py", ".pyc")) for n in names)
    assert tomllib.loads(zipfile.ZipFile(ext[0]).read("blender_manifest.toml").decode())["blender_version_max"] == "5.1.0"


def test_the_extension_uses_its_bundled_client_and_the_legacy_zip_finds_a_wheel(zips, tmp_path):
    legacy = next(z for z in zips if "legacy" in z.name)
    with zipfile.ZipFile(legacy) as zf:
        zf.extractall(tmp_path)
    assert "bl_info" in (tmp_path / build.ID / "__init__.py").read_text()
    sys.path.insert(0, str(tmp_path))
    try:
        import implicit_correspondence.client as client
        from implicit_correspondence import deps

        assert client.Client.__module__ == "implicit_correspondence.vendor.client"
        from implicit_correspondence import labels

        assert labels.slivers.__module__ == "implicit_correspondence.vendor.labels"
        fits = [w for w in (tmp_path / build.ID / "wheels").glob("*.whl") if deps._matches(w)]
        assert len(fits) == 1 and "manylinux" in fits[0].name  # this machine: Linux x86-64, CPython 3.11
    finally:
        sys.path.remove(str(tmp_path))
        for name in [m for m in sys.modules if m.startswith("implicit_correspondence")]:
            del sys.modules[name]
