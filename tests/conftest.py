import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# Under pytest-xdist the workers share the cores: one torch pool each that fills them all
# would oversubscribe them, and torch's spinning threads then run slower than one.
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if _WORKERS > 1:
    import torch

    torch.set_num_threads(max(1, (os.cpu_count() or 1) // _WORKERS))


def child_env(**extra: str) -> dict[str, str]:
    """The environment of a Python the suite starts: this checkout first on its path, then
    whatever PYTHONPATH the suite runs with (packages installed beside the interpreter)."""
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": path, **extra}


@pytest.fixture(scope="session")
def psb_dir() -> Path:
    d = SHARED / "data" / "psb"
    if not d.is_dir():
        pytest.skip(f"real meshes not found at {d}")
    return d
