#!/usr/bin/env bash
# Fetch the real artist-made meshes the tests and benchmarks use, once, into the cache
# outside git (~/.cache/implicit-correspondence): Sweet Home 3D's furniture and the
# program's own catalogue, Debian packages (their models' licences are listed in the
# packages). Without the package registry this does nothing and the tests that need
# them are skipped.
set -uo pipefail
cache="$HOME/.cache/implicit-correspondence"
mkdir -p "$cache"
cd "$cache" || exit 0
updated=no
for package in sweethome3d-furniture sweethome3d; do
    if ! ls "${package}"_*.deb >/dev/null 2>&1; then
        echo "[data] fetching $package into $cache"
        if ! apt-get download "$package" >/dev/null 2>&1 && [ "$updated" = no ]; then
            # a fresh machine knows no package lists yet
            apt-get update -qq >/dev/null 2>&1 && updated=yes
            apt-get download "$package" >/dev/null 2>&1
        fi
        ls "${package}"_*.deb >/dev/null 2>&1 || echo "[data] apt-get download $package failed: the tests that need it will be skipped"
    fi
done
exit 0
