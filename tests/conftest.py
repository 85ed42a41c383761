import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


@pytest.fixture(scope="session")
def psb_dir() -> Path:
    d = SHARED / "data" / "psb"
    if not d.is_dir():
        pytest.skip(f"real meshes not found at {d}")
    return d
