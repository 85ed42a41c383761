"""A server that wants a key and CurveZMQ, reached from the add-on's preferences (no
environment variables): started from the panel, checked, and asked for labels."""
import socket
import time
from types import SimpleNamespace

import numpy as np
import pytest

from blender_addon.client import Client, ServerError

from .conftest import SHIPPED_CHAIR, psb_object

KEY = "a key from a file"


def free_address() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"tcp://127.0.0.1:{s.getsockname()[1]}"


def test_a_key_file_and_curvezmq_from_the_preferences(bpy, tmp_path, monkeypatch):
    from blender_addon import api, ui

    monkeypatch.delenv("CORR_SERVER_SECRET", raising=False)
    monkeypatch.delenv("CORR_SERVER_CURVE", raising=False)
    key_file = tmp_path / "key"
    key_file.write_text(KEY + "\n")
    key_file.chmod(0o600)
    prefs = SimpleNamespace(address=free_address(), python="", checkpoint=str(SHIPPED_CHAIR), device="cpu",
                            timeout=60.0, key_file=str(key_file), curve=True)
    monkeypatch.setattr(ui, "preferences", lambda context=None: prefs)
    assert bpy.ops.corr.server_start() == {"FINISHED"}  # the local server gets the key file and --curve
    try:
        deadline = time.monotonic() + 120
        while not ui.check_server(timeout=1.0) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert ui.status["text"] == "connected: chair on cpu"
        with Client(prefs.address, secret="", curve=False) as c, pytest.raises(ServerError) as err:
            c.ping()  # the server takes no one without the key
        assert err.value.code == "handshake"

        bpy.ops.wm.read_factory_settings(use_empty=True)
        chair = psb_object(bpy, "chair", "101")
        api.segment([chair], address=prefs.address, key_file=str(key_file), curve=True)
        labels = np.zeros(len(chair.data.vertices), np.int32)
        chair.data.attributes["part_label"].data.foreach_get("value", labels)
        assert len(np.unique(labels)) >= 3

        prefs.curve = False
        assert not ui.check_server(timeout=1.0) and "--curve" in ui.status["text"]
        prefs.curve = True
        key_file.chmod(0o644)
        assert not ui.check_server(timeout=1.0) and f"run chmod 600 {key_file}" in ui.status["text"]
        with pytest.raises(ValueError, match="other users can read or change it"):
            api.segment([chair], address=prefs.address, key_file=str(key_file), curve=True)
    finally:
        bpy.ops.corr.server_stop()
        if bpy.app.timers.is_registered(ui._poll_start):
            bpy.app.timers.unregister(ui._poll_start)
