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
    # torch first and pinned, from PyTorch's CPU index: PyPI's torch for Linux is the
    # multi-GB CUDA build.  TORCH_INDEX_URL= (empty) takes the default index's build.
    index=${TORCH_INDEX_URL-https://download.pytorch.org/whl/cpu}
    if [ -z "$index" ] || ! .venv/bin/python -m pip install -q --retries 1 --timeout 30 \
            --index-url "$index" "torch==2.13.0"; then
        [ -z "$index" ] || echo "[setup] torch from $index failed (above): trying the default index"
        .venv/bin/python -m pip install -q "torch==2.13.0"
    fi
    .venv/bin/python -m pip install -q -e ".[test]"
    rm -f .venv/.installed-*
    touch "$stamp"
fi
echo "[setup] ready: $(.venv/bin/python -c 'import torch, numpy; print("torch", torch.__version__, "numpy", numpy.__version__)')"
