"""pyzmq for the legacy add-on install.

As an extension, Blender installs the bundled wheels itself.  As a legacy add-on it does
not: then the wheel for this Python and platform is unpacked once into `_deps/` beside
the add-on and put on sys.path.
"""
from __future__ import annotations

import importlib
import platform
import sys
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _platform_tags() -> tuple[str, ...]:
    machine = platform.machine().lower()
    if sys.platform.startswith("linux"):
        return ("manylinux", "musllinux") if machine in ("x86_64", "amd64", "aarch64") else ()
    if sys.platform == "win32":
        return ("win_amd64",) if machine in ("amd64", "x86_64") else ("win_arm64",)
    if sys.platform == "darwin":
        return ("macosx",)
    return ()


def _matches(wheel: Path) -> bool:
    name = wheel.name
    py = f"cp{sys.version_info.major}{sys.version_info.minor}"
    arch = platform.machine().lower().replace("amd64", "x86_64")
    python_ok = f"-{py}-{py}-" in name or ("-abi3-" in name and int(name.split("-")[2][2:]) <= int(py[2:]))
    arch_ok = sys.platform == "darwin" or arch in name or (sys.platform == "win32" and "win_amd64" in name)
    return python_ok and arch_ok and any(tag in name for tag in _platform_tags())


def ensure_zmq() -> None:
    """Import zmq, unpacking a bundled wheel first if needed; a clear error if none fits."""
    try:
        importlib.import_module("zmq")
        return
    except ImportError:
        pass
    target = HERE / "_deps"
    if not target.is_dir():
        wheels = [w for w in sorted((HERE / "wheels").glob("pyzmq-*.whl")) if _matches(w)]
        if not wheels:
            raise ImportError("pyzmq is missing and no bundled wheel fits this Blender "
                              f"(Python {platform.python_version()}, {sys.platform} {platform.machine()})")
        tmp = HERE / "_deps.partial"
        with zipfile.ZipFile(wheels[0]) as zf:
            zf.extractall(tmp)
        tmp.rename(target)
    sys.path.insert(0, str(target))
    importlib.import_module("zmq")
