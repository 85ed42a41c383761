"""Build the installable zips: `python -m blender_addon.build [--out dist]`.

Blender 4.2-5.0 embed Python 3.11, Blender 5.1+ Python 3.13, so there is one extension
zip per range, each with its own pyzmq wheels (cp311 / cp312-abi3), plus a legacy add-on
zip (a top-level folder, bl_info; it unpacks its wheel on first use).  Each extension zip
is built and validated by Blender's own extension tool (bl_pkg, shipped in the pip `bpy`
module), the same code as `blender --command extension build|validate`.
"""
from __future__ import annotations

import argparse
import importlib.util
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
ID, VERSION, PYZMQ = "implicit_correspondence", "0.1.0", "27.3.0"
PLATFORMS = ("manylinux_2_28_x86_64", "win_amd64", "macosx_10_15_universal2")  # universal2: arm64 and x64
RANGES = {  # name -> (python for the wheels, blender_version_min, blender_version_max or None)
    "blender-4.2-5.0": ("3.11", "4.2.0", "5.1.0"),
    "blender-5.1": ("3.13", "5.1.0", None),
}
# numpy- and pyzmq-only modules the add-on shares
VENDORED = ("server/client.py", "server/protocol.py", "server/curve.py", "model/labels.py")
SOURCES = tuple(sorted(p.name for p in HERE.glob("*.py") if p.name != "build.py"))  # every module of the add-on

MANIFEST = """schema_version = "1.0.0"
id = "{id}"
version = "{version}"
name = "Implicit Correspondence"
tagline = "Transfer parts, colours, UVs and weights between shapes"
maintainer = "Implicit Correspondence contributors"
type = "add-on"
license = ["SPDX:GPL-3.0-or-later"]
tags = ["Mesh", "Modeling"]
blender_version_min = "{vmin}"
{vmax}platforms = ["windows-x64", "macos-arm64", "macos-x64", "linux-x64"]
wheels = [
{wheels}
]

[permissions]
network = "Talk to the correspondence model server (localhost by default)"
files = "Start a local model server and read its log"
"""


def download_wheels(python: str, cache: Path) -> list[Path]:
    """pyzmq wheels for each platform, fetched once into `cache`."""
    cache.mkdir(parents=True, exist_ok=True)
    for platform in PLATFORMS:
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", f"pyzmq=={PYZMQ}", "--only-binary=:all:",
                        "--no-deps", "--python-version", python, "--platform", platform, "-d", str(cache)],
                       check=True)
    wheels = sorted(cache.glob(f"pyzmq-{PYZMQ}-*.whl"))
    if len(wheels) != len(PLATFORMS):
        raise RuntimeError(f"expected {len(PLATFORMS)} pyzmq wheels in {cache}, found {[w.name for w in wheels]}")
    return wheels


def stage(folder: Path, wheels: list[Path]) -> None:
    """The add-on's files, the client it talks through, and the wheels."""
    if folder.exists():
        shutil.rmtree(folder)
    (folder / "vendor").mkdir(parents=True)
    (folder / "wheels").mkdir()
    for name in SOURCES:
        shutil.copy2(HERE / name, folder / name)
    for source in VENDORED:
        shutil.copy2(ROOT / source, folder / "vendor" / Path(source).name)
    (folder / "vendor" / "__init__.py").write_text('"""Copies of the server\'s client and wire protocol and of the '
                                                   'engine\'s label rules."""\n')
    for w in wheels:
        shutil.copy2(w, folder / "wheels" / w.name)


def manifest(wheels: list[Path], vmin: str, vmax: str | None) -> str:
    return MANIFEST.format(id=ID, version=VERSION, vmin=vmin,
                           vmax=f'blender_version_max = "{vmax}"\n' if vmax else "",
                           wheels=",\n".join(f'  "./wheels/{w.name}"' for w in wheels))


def blender_ext() -> Path:
    """Blender's extension command line, from the installed `bpy` module."""
    spec = importlib.util.find_spec("bpy")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the `bpy` module is needed to build and validate (pip install bpy==5.0.1)")
    found = sorted(Path(spec.submodule_search_locations[0]).glob("*/scripts/addons_core/bl_pkg/cli/blender_ext.py"))
    if not found:
        raise RuntimeError("bpy is installed but carries no bl_pkg extension tool")
    return found[-1]


def build(out: Path, cache: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    tool, built = blender_ext(), []
    for name, (python, vmin, vmax) in RANGES.items():
        wheels = download_wheels(python, cache / python)
        folder = out / "staging" / name
        stage(folder, wheels)
        (folder / "blender_manifest.toml").write_text(manifest(wheels, vmin, vmax))
        zip_path = out / f"{ID}-{VERSION}-{name}.zip"
        for cmd in (["build", "--source-dir", str(folder), "--output-filepath", str(zip_path)],
                    ["validate", str(zip_path)]):
            subprocess.run([sys.executable, str(tool), *cmd], check=True, stdout=subprocess.DEVNULL)
        built.append(zip_path)
    built.append(legacy_zip(out, out / "staging" / "blender-4.2-5.0"))
    shutil.rmtree(out / "staging")
    return built


def legacy_zip(out: Path, folder: Path) -> Path:
    """The same files under one top-level folder, as Install Add-on from zip expects."""
    path = out / f"{ID}-{VERSION}-legacy.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for f in sorted(folder.rglob("*")):
            if f.is_file() and f.name != "blender_manifest.toml":
                zf.write(f, f"{ID}/{f.relative_to(folder)}")
    return path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m blender_addon.build", description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "dist", help="output folder (default dist/)")
    ap.add_argument("--wheel-cache", type=Path, default=ROOT / "build" / "wheels")
    args = ap.parse_args(argv)
    try:
        for path in build(args.out, args.wheel_cache):
            print(f"{path}  ({path.stat().st_size / 1e6:.1f} MB)")
    except (RuntimeError, subprocess.CalledProcessError) as exc:
        print(f"build failed: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
