"""A real server process on a loopback port, real sockets."""
import json
import signal
import threading
import time

import numpy as np
import pytest
import trimesh
import zmq

from server import protocol
from server.client import Client, ServerError

from .conftest import ServerProcess, free_port


def pts(n, seed=0):
    return np.random.default_rng(seed).random((n, 3)).astype(np.float32)


def raw_request(address, frames, timeout=10):
    ctx = zmq.Context.instance()
    s = ctx.socket(zmq.DEALER)
    s.setsockopt(zmq.LINGER, 0)
    s.connect(address)
    s.send_multipart([b"", *frames])
    try:
        assert s.poll(timeout * 1000), "no reply"
        reply = s.recv_multipart()
        return protocol.decode(reply[1:] if reply[0] == b"" else reply)[0]
    finally:
        s.close(0)


def test_every_op(server):
    with Client(server.address, timeout=30) as c:
        assert c.ping()["ok"] is True
        info = c.info()
        assert info["device"] == "cpu" and info["limits"]["max_vertices"] == 50000 and info["model"]["n_parts"] == 8
        assert c.segment(pts(300)).shape == (300,)
        box = trimesh.creation.box().subdivide()
        res = c.correspond(box.vertices, pts(200, 1), source_faces=box.faces, both=True)
        assert res["source_face"].shape == (200,) and res["source_bary"].shape == (200, 3)
        assert res["mapped"].shape == (200, 3) and res["confidence"].shape == (200,)
        assert np.allclose(res["source_bary"].sum(1), 1, atol=1e-5)
        assert res["reverse_mapped"].shape == (len(box.vertices), 3)
        face_labels = np.arange(len(box.faces)) % 2
        guided = c.correspond(box.vertices, pts(200, 1), source_faces=box.faces, source_labels=face_labels)
        assert guided["source_face"].shape == (200,)
        with pytest.raises(ServerError, match="source_labels has 3 entries; the source mesh has 26 vertices and 48 faces"):
            c.correspond(box.vertices, pts(20, 1), source_faces=box.faces, source_labels=[0, 1, 2])
        with pytest.raises(ValueError, match="source_labels must be integers"):
            c.correspond(box.vertices, pts(20, 1), source_labels=np.zeros(len(box.vertices)))
        mesh = c.reconstruct(pts(500), resolution=16)
        assert mesh["faces"].ndim == 2 and len(mesh["parts"]) == len(mesh["vertices"])


BAD = [
    ([b"{oops"], "bad_json"),
    ([json.dumps({"v": 9, "op": "ping"}).encode()], "bad_version"),
    ([json.dumps({"v": 1, "op": "fly", "id": 1}).encode()], "unknown_op"),
    ([json.dumps({"v": 1, "op": "segment", "arrays": [{"name": "vertices", "dtype": "float32", "shape": [10, 3]}]}).encode()], "frame_count"),
    ([json.dumps({"v": 1, "op": "segment", "arrays": [{"name": "vertices", "dtype": "float32", "shape": [10, 3]}]}).encode(), b"\x00" * 7], "size_mismatch"),
    ([json.dumps({"v": 1, "op": "segment", "arrays": [{"name": "vertices", "dtype": "complex", "shape": [1]}]}).encode(), b"\x00" * 8], "bad_dtype"),
    (protocol.encode({"op": "segment"}, {"vertices": np.full((10, 3), np.nan, np.float32)}), "bad_input"),
    (protocol.encode({"op": "segment"}, {"vertices": np.zeros((10, 2), np.float32)}), "bad_input"),
    (protocol.encode({"op": "segment"}, {"wrong": np.zeros((10, 3), np.float32)}), "bad_input"),
    (protocol.encode({"op": "segment"}, {"vertices": np.zeros((60000, 3), np.float32)}), "bad_input"),
    (protocol.encode({"op": "correspond"}, {"source_vertices": pts(10)}), "bad_input"),
    (protocol.encode({"op": "reconstruct", "resolution": 3}, {"vertices": pts(10)}), "bad_input"),
]


@pytest.mark.parametrize("frames,code", BAD)
def test_bad_messages_get_error_replies(server, frames, code):
    reply = raw_request(server.address, frames)
    assert reply["ok"] is False and reply["error"]["code"] == code and reply["error"]["message"]
    with Client(server.address) as c:
        assert c.ping()["ok"]


def test_fuzz_then_still_correct(server):
    rng = np.random.default_rng(1)
    good = protocol.encode({"op": "segment", "id": 1}, {"vertices": pts(20)})
    ctx = zmq.Context.instance()
    s = ctx.socket(zmq.DEALER)
    s.setsockopt(zmq.LINGER, 0)
    s.connect(server.address)
    sent = 0
    for i in range(2000):
        kind = i % 4
        if kind == 0:
            frames = [rng.bytes(int(rng.integers(0, 64))) for _ in range(int(rng.integers(1, 4)))]
        elif kind == 1:  # flip bytes in the header
            head = bytearray(good[0])
            for _ in range(3):
                head[int(rng.integers(len(head)))] = int(rng.integers(256))
            frames = [bytes(head), good[1]]
        elif kind == 2:  # truncate or extend the data frame
            frames = [good[0], good[1][: int(rng.integers(len(good[1])))] + rng.bytes(int(rng.integers(0, 3)))]
        else:  # drop or duplicate frames
            frames = [good[0]] + [good[1]] * int(rng.integers(0, 3))
        s.send_multipart([b"", *frames])
        sent += 1
    got = 0
    while s.poll(5000):
        s.recv_multipart()
        got += 1
        if got == sent:
            break
    s.close(0)
    assert got >= sent * 0.99  # every message is answered (busy replies included)
    with Client(server.address, timeout=30) as c:
        assert c.segment(pts(77)).shape == (77,)


def test_concurrent_clients_get_their_own_replies(server):
    errors = []

    def worker(k):
        try:
            with Client(server.address, timeout=60) as c:
                for j in range(50):
                    n = 10 + 7 * k + j  # a length unique to this client and request
                    parts = c.segment(pts(n, seed=k * 100 + j))
                    assert parts.shape == (n,)
        except Exception as exc:  # collected for the main thread
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors


def test_a_client_vanishing_mid_request_blocks_no_one(server):
    ctx = zmq.Context.instance()
    for _ in range(3):
        s = ctx.socket(zmq.DEALER)
        s.setsockopt(zmq.LINGER, 0)
        s.connect(server.address)
        s.send_multipart([b"", *protocol.encode({"op": "segment", "id": 1}, {"vertices": pts(40000)})])
        s.close(0)
    with Client(server.address, timeout=60) as c:
        assert c.segment(pts(50)).shape == (50,)


def test_server_restart_while_a_client_waits(tiny_checkpoint):
    port = free_port()
    first = ServerProcess(tiny_checkpoint, port=port).wait_ready()
    c = Client(first.address, timeout=2)
    assert c.ping()["ok"]
    first.proc.kill()
    first.proc.wait()
    with pytest.raises(ServerError) as err:
        c.segment(pts(30))
    assert err.value.code == "timeout"
    second = ServerProcess(tiny_checkpoint, port=port).wait_ready()
    try:
        c.timeout = 30
        assert c.segment(pts(30)).shape == (30,)
    finally:
        c.close()
        second.stop()


def test_non_loopback_needs_a_secret(tiny_checkpoint):
    port = free_port()
    refused = ServerProcess(tiny_checkpoint, bind=f"tcp://0.0.0.0:{port}", port=port)
    assert refused.proc.wait(60) == 2
    assert "needs --secret" in refused.proc.stderr.read()
    ok = ServerProcess(tiny_checkpoint, "--secret", "s3cret", bind=f"tcp://0.0.0.0:{port}", port=port).wait_ready()
    try:
        with Client(ok.address, secret="") as c:
            with pytest.raises(ServerError) as err:
                c.ping()
            assert err.value.code == "unauthorized"
        with Client(ok.address, secret="s3cret") as c:
            assert c.ping()["ok"]
    finally:
        ok.stop()


def test_sigterm_stops_cleanly(tiny_checkpoint):
    proc = ServerProcess(tiny_checkpoint).wait_ready()
    proc.proc.send_signal(signal.SIGTERM)
    assert proc.proc.wait(20) == 0
