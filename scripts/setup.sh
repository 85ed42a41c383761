#!/usr/bin/env bash
# Create .venv in the repository and install everything; safe to run again (it skips
# the install when pyproject.toml has not changed since the last successful run).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
if [ ! -x .venv/bin/python ]; then
    echo "[setup] creating .venv with $($PY --version)"
    "$PY" -m venv .venv
fi
stamp=.venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)
if [ ! -f "$stamp" ]; then
    echo "[setup] installing dependencies (first run takes a few minutes)"
    .venv/bin/python -m pip install -q --upgrade pip
    # torch first and pinned, so pip takes the CPU wheel instead of a multi-GB CUDA build.
    .venv/bin/python -m pip install -q "torch==2.13.0"
    .venv/bin/python -m pip install -q -e ".[test]"
    rm -f .venv/.installed-*
    touch "$stamp"
fi
echo "[setup] ready: $(.venv/bin/python -c 'import torch, numpy; print("torch", torch.__version__, "numpy", numpy.__version__)')"
