"""Debian packages as a source of files: fetched with `apt-get download` into a cache,
read with Python's own ar/tar reading (no dpkg needed), their debian/copyright parsed.
"""
from __future__ import annotations

import fnmatch
import io
import os
import re
import shutil
import subprocess
import tarfile
from pathlib import Path
from urllib.parse import unquote

from tqdm import tqdm

COPYRIGHT = r"usr/share/doc/[^/]+/copyright$"  # every package's copyright file, for `keep` patterns


class FetchError(RuntimeError):
    """A package could not be fetched or read."""


def copyright_path(package: str) -> str:
    """Where a package keeps its debian/copyright, inside the package."""
    return f"usr/share/doc/{package}/copyright"


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
