"""The README's first command: scripts/demo.sh produces what it promises."""
import os
import subprocess
from pathlib import Path

import pytest

from tests.server.conftest import free_port

ROOT = Path(__file__).resolve().parents[1]


def test_demo_writes_blend_ply_and_renders(tmp_path):
    pytest.importorskip("bpy")
    env = {**os.environ, "CORR_DEMO_PORT": str(free_port()), "OMP_NUM_THREADS": "1"}
    out = subprocess.run(["bash", str(ROOT / "scripts/demo.sh"), str(tmp_path)], env=env, capture_output=True,
                         text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    for name in ("demo.blend", "chair_105.ply", "chair_110.ply", "parts.png", "texture.png"):
        assert (tmp_path / name).stat().st_size > 1000, name
    assert "[demo] total:" in out.stdout and "mean confidence" in out.stdout
    header = (tmp_path / "chair_105.ply").read_bytes()[:400].decode(errors="replace")
    assert "property int part_label" in header and "property float corr_confidence" in header
