from pathlib import Path

import numpy as np
import pytest

from tests.server.conftest import ServerProcess
from training.prepare import psb_rotation

ROOT = Path(__file__).resolve().parents[2]
PSB = ROOT.parent / "shared" / "data" / "psb"
SHIPPED_CHAIR = ROOT / "model" / "checkpoints" / "chair.pth"


@pytest.fixture(scope="session")
def bpy():
    bpy = pytest.importorskip("bpy")  # installed by scripts/setup.sh (the project's test extra)
    import blender_addon

    blender_addon.register()
    yield bpy
    blender_addon.unregister()


@pytest.fixture(scope="session")
def chair_server():
    proc = ServerProcess(SHIPPED_CHAIR).wait_ready(120)
    yield proc
    proc.stop()


@pytest.fixture(autouse=False)
def scene(bpy, chair_server, monkeypatch):
    """An empty scene, and the add-on pointed at the test server."""
    monkeypatch.setenv("CORR_SERVER_ADDRESS", chair_server.address)
    bpy.ops.wm.read_factory_settings(use_empty=True)
    return bpy.context.scene


def psb_object(bpy, category: str, name: str, obj_name: str | None = None):
    """A PSB mesh as a Blender object, upright: its rotation (model frame) then model -> Blender."""
    import mathutils

    from blender_addon import frames
    from model.meshio import read_mesh

    v, f, _ = read_mesh(PSB / category / f"{name}.off.gz")
    rot = psb_rotation(name)
    me = bpy.data.meshes.new(obj_name or name)
    me.from_pydata(v.tolist(), [], f.tolist())
    me.update()
    ob = bpy.data.objects.new(obj_name or name, me)
    m = np.eye(4)
    m[:3, :3] = frames.BLENDER_TO_MODEL @ rot
    ob.matrix_world = mathutils.Matrix(m.tolist())  # rows (a plain nested list would be read as columns)
    bpy.context.scene.collection.objects.link(ob)
    return ob
