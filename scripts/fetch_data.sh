#!/usr/bin/env bash
# Fetch the real artist-made meshes the tests and benchmarks use, once, into the cache
# outside git (~/.cache/implicit-correspondence): Sweet Home 3D's furniture, a Debian
# package (its models' licences are listed in the package). Without the package
# registry this does nothing and the tests that need it are skipped.
set -uo pipefail
cache="$HOME/.cache/implicit-correspondence"
mkdir -p "$cache"
cd "$cache" || exit 0
if ! ls sweethome3d-furniture_*.deb >/dev/null 2>&1; then
    echo "[data] fetching sweethome3d-furniture into $cache"
    apt-get download sweethome3d-furniture >/dev/null 2>&1 || echo "[data] apt-get download failed: texture tests will be skipped"
fi
exit 0
