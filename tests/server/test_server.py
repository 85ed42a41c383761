"""A real server process on a loopback port, real sockets."""
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import trimesh
import zmq

from model.runner import has_bfloat16_units
from server import protocol
from server.client import Client, ServerError

from ..conftest import child_env
from .conftest import KEY, ROOT, ServerProcess, free_port

PLAIN = protocol.Session(None, max_elements=1 << 24, side="client")  # crafts raw messages, reads replies


def pts(n, seed=0):
    return np.random.default_rng(seed).random((n, 3)).astype(np.float32)


def encode(header, arrays=None):
    return PLAIN.encode(header, arrays)


def raw_request(address, frames, timeout=10, session=PLAIN):
    """Send frames as they are, return the reply's header (verified by `session`)."""
    return session.decode(raw_frames(address, frames, timeout))[0]


def raw_frames(address, frames, timeout=10):
    """Send frames as they are, return the reply's frames (without the delimiter)."""
    s = zmq.Context.instance().socket(zmq.DEALER)
    s.setsockopt(zmq.LINGER, 0)
    s.connect(address)
    s.send_multipart([b"", *frames])
    try:
        assert s.poll(timeout * 1000), "no reply"
        reply = s.recv_multipart()
        return reply[1:] if reply[0] == b"" else reply
    finally:
        s.close(0)


def test_every_op(server):
    with Client(server.address, timeout=30) as c:
        assert c.ping()["ok"] is True
        info = c.info()
        assert info["device"] == "cpu" and info["limits"]["max_vertices"] == 50000 and info["model"]["n_parts"] == 8
        assert info["model"]["precision"] == ("bfloat16" if has_bfloat16_units(torch.device("cpu")) else "float32")
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
        with pytest.raises(ServerError, match="source_labels.*3 entries.*26 vertices and 48 faces"):
            c.correspond(box.vertices, pts(20, 1), source_faces=box.faces, source_labels=[0, 1, 2])
        with pytest.raises(ValueError, match="source_labels must be integers"):
            c.correspond(box.vertices, pts(20, 1), source_labels=np.zeros(len(box.vertices)))
        distances = c.last_reply["rebuild_distance"]
        assert c.last_reply["category"] == "chair" and set(distances) == {"source", "target"}
        mesh = c.reconstruct(pts(500), resolution=16)
        assert mesh["faces"].ndim == 2 and len(mesh["parts"]) == len(mesh["vertices"])
        assert 0 < c.last_reply["rebuild_distance"] <= 1
        c.segment(pts(300), category="auto")  # one model served: that one
        assert c.last_reply["category"] == "chair"


BAD = [
    ([b"{oops"], "bad_json"),
    ([json.dumps({"v": 9, "op": "ping"}).encode()], "bad_version"),
    ([json.dumps({"v": 1, "op": "fly", "id": 1}).encode()], "unknown_op"),
    ([json.dumps({"v": 1, "op": "segment", "arrays": [{"name": "vertices", "dtype": "float32", "shape": [10, 3]}]}).encode()], "frame_count"),
    ([json.dumps({"v": 1, "op": "segment", "arrays": [{"name": "vertices", "dtype": "float32", "shape": [10, 3]}]}).encode(), b"\x00" * 7], "size_mismatch"),
    ([json.dumps({"v": 1, "op": "segment", "arrays": [{"name": "vertices", "dtype": "complex", "shape": [1]}]}).encode(), b"\x00" * 8], "bad_dtype"),
    (encode({"op": "segment"}, {"vertices": np.full((10, 3), np.nan, np.float32)}), "bad_input"),
    (encode({"op": "segment"}, {"vertices": np.zeros((10, 2), np.float32)}), "bad_array"),
    (encode({"op": "segment"}, {"vertices": np.zeros((10, 3), np.uint8)}), "bad_array"),
    (encode({"op": "segment"}, {"wrong": np.zeros((10, 3), np.float32)}), "unknown_array"),
    (encode({"op": "segment"}, {"vertices": np.zeros((60000, 3), np.float32)}), "bad_input"),
    (encode({"op": "segment"}, {"vertices": np.zeros((310000, 3), np.float32)}), "too_large"),
    (encode({"op": "correspond"}, {"source_vertices": pts(10)}), "missing_array"),
    (encode({"op": "reconstruct", "resolution": 3}, {"vertices": pts(10)}), "bad_input"),
    (encode({"op": "reconstruct", "resolution": "64"}, {"vertices": pts(10)}), "bad_param"),
    (encode({"op": "segment", "secret": "old-style"}, {"vertices": pts(10)}), "bad_param"),
    ([json.dumps({"v": 1, "op": ["ping"], "id": 1}).encode()], "unknown_op"),
    ([json.dumps({"v": True, "op": "ping", "id": 1}).encode()], "bad_version"),
    ([json.dumps({"v": 1, "op": "ping", "id": {"a": [1]}}).encode()], "bad_header"),
    ([json.dumps({"v": 1, "op": "ping", "id": "9" * 5000}).encode()], "bad_header"),
]


@pytest.mark.parametrize("frames,code", BAD)
def test_bad_messages_get_error_replies(server, frames, code):
    reply = raw_request(server.address, frames)
    assert reply["ok"] is False and reply["error"]["code"] == code and reply["error"]["message"]
    with Client(server.address) as c:
        assert c.ping()["ok"]


def test_an_empty_array_with_huge_dimensions_is_a_bad_shape_answered_with_its_id(server):
    huge = [0, 2**31 - 1, 2**31 - 1, 2**31 - 1]
    header = {"v": 1, "op": "segment", "id": "z1", "arrays": [{"name": "vertices", "dtype": "float32", "shape": huge}]}
    reply = raw_request(server.address, [json.dumps(header).encode(), b""])
    assert reply["id"] == "z1" and reply["error"]["code"] == "bad_shape"


def test_empty_shapes_are_named_as_such(server):
    with Client(server.address) as c:
        with pytest.raises(ServerError, match="empty"):
            c.segment(np.zeros((0, 3), np.float32))
        with pytest.raises(ServerError, match="empty"):
            c.correspond(pts(10), np.zeros((0, 3), np.float32))
        assert c.ping()["ok"]


def test_a_request_over_the_servers_message_limit_is_refused_before_it_is_sent(server):
    with Client(server.address, timeout=30) as c:
        limit = c.info()["limits"]["max_message_bytes"]
        too_many = limit // 12 + 1000  # float32 (N, 3): ZeroMQ would drop it unread, and the client time out
        started = time.monotonic()
        with pytest.raises(ServerError, match="over the server's limit") as err:
            c.segment(pts(too_many))
        assert err.value.code == "too_large" and time.monotonic() - started < 10
        assert c.ping()["ok"]


def test_a_small_request_over_a_small_servers_limit_is_refused_too(tiny_checkpoint):
    small = ServerProcess(tiny_checkpoint, "--max-vertices", "1000").wait_ready()
    try:
        with Client(small.address, timeout=30) as c:
            started = time.monotonic()
            with pytest.raises(ServerError, match="over the server's limit") as err:
                c.segment(pts(30000))  # 360 kB: ZeroMQ would drop it unread (the limit is 211 kB), not 1 MB
            assert err.value.code == "too_large" and time.monotonic() - started < 10
            points = pts(1500)
            copies = np.concatenate([points, points[:20]])  # sent once each: the refusal says so
            with pytest.raises(ServerError, match=r"1500 points exceed the limit of 1000 \(the shape's 1520 "
                                                  r"vertices, sent as 1500 distinct positions\)"):
                c.segment(copies)
            with pytest.raises(ServerError, match=r"1500 points exceed the limit of 1000 \(the target's 1520"):
                c.correspond(points[:100], copies)
            with pytest.raises(ServerError) as err:  # a refusal of the source says nothing of the target
                c.correspond(pts(1500), np.concatenate([points[:100], points[:20]]))  # a welded target
            assert err.value.message.startswith("source: ") and "distinct positions" not in err.value.message
    finally:
        small.stop()


def test_a_dealer_without_the_empty_delimiter_gets_its_answer_for_an_empty_array(server):
    ctx = zmq.Context.instance()
    s = ctx.socket(zmq.DEALER)
    s.setsockopt(zmq.LINGER, 0)
    s.connect(server.address)
    try:
        s.send_multipart(encode({"op": "segment", "id": "e2"}, {"vertices": np.zeros((0, 3), np.float32)}))
        assert s.poll(10_000), "no reply"
        header = PLAIN.decode(s.recv_multipart())[0]
    finally:
        s.close(0)
    assert header["id"] == "e2" and header["error"]["code"] == "bad_input" and "empty" in header["error"]["message"]


def _ipv6_loopback_port() -> int | None:
    import socket
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
            return s.getsockname()[1]
    except OSError:  # a machine without IPv6
        return None


def test_ipv6_loopback_and_bad_flags(tiny_checkpoint):
    from server.app import main as server_main
    port = _ipv6_loopback_port()
    if port is not None:
        proc = ServerProcess(tiny_checkpoint, bind=f"tcp://[::1]:{port}").wait_ready(120)
        try:
            with Client(f"tcp://[::1]:{port}", timeout=30) as c:
                assert c.ping()["ok"]
        finally:
            proc.stop()
    for flags in (["--log-level", "LOUD"], ["--parent-pid", "999999999"]):
        with pytest.raises(SystemExit) as exit:
            server_main(flags)
        assert exit.value.code == 2


def test_a_category_the_server_does_not_serve_is_named(server):
    from server.app import Engines
    with Client(server.address) as c:
        with pytest.raises(ServerError, match="'table': this server was started with --checkpoint and serves only"):
            c.segment(pts(50), category="table")
    engines = Engines(None, "cpu", 10_000)  # the shipped models
    with pytest.raises(ValueError, match="category 'Chair': this server serves 'airplane', 'chair', 'table'"):
        engines.get("Chair")


def test_auto_category_answers_with_the_model_that_rebuilds_the_shapes_closest(psb_dir):
    """Served the shipped models, "auto" takes a real airplane to the airplane model and a
    chair pair to the chair model, and each reply names the model and its distances."""
    from training.prepare import load_psb_upright

    plane, chair_a, chair_b = (load_psb_upright(psb_dir / p) for p in ("airplane/61.off.gz", "chair/101.off.gz",
                                                                       "chair/102.off.gz"))
    proc = ServerProcess(None).wait_ready()
    try:
        with Client(proc.address, timeout=120) as c:
            c.segment(plane.vertices, plane.faces, category="auto")
            assert c.last_reply["category"] == "airplane"
            near = c.last_reply["rebuild_distance"]
            c.segment(plane.vertices, plane.faces, category="chair")  # the chair model rebuilds an airplane further off
            assert c.last_reply["category"] == "chair" and c.last_reply["rebuild_distance"] > near
            c.correspond(chair_a.vertices, chair_b.vertices, source_faces=chair_a.faces, target_faces=chair_b.faces,
                         category="auto")
            assert c.last_reply["category"] == "chair"
    finally:
        proc.stop()


def test_auto_ranks_each_shape_once_and_prepares_it_under_the_chosen_model_only(psb_dir):
    """Category "auto" keeps each shape's distances from E's codes: a target sent again
    (a Transfer sends it once per source) is not encoded again, and only the chosen model
    prepares the shapes."""
    from server.app import Engines, run_model_op
    from server.cache import PreparedCache
    from training.prepare import load_psb_upright

    chair = load_psb_upright(psb_dir / "chair/101.off.gz")
    engines, cache, ranked = Engines(None, "cpu", 50_000), PreparedCache(), PreparedCache()
    arrays = {"vertices": np.asarray(chair.vertices, np.float32), "faces": np.asarray(chair.faces, np.int32)}
    params = {"category": protocol.AUTO_CATEGORY, "align": False}
    for _ in range(2):
        _, fields = run_model_op(engines, cache, "segment", params, arrays, ranked)
        assert fields["category"] == "chair"
    served = len(engines.served())
    assert served > 1 and (ranked.misses, ranked.hits) == (served, served)
    assert (cache.misses, len(cache)) == (1, 1)


def test_a_long_request_shows_in_the_log_as_it_goes(tiny_checkpoint):
    proc = ServerProcess(tiny_checkpoint, "--log-level", "INFO").wait_ready(120)
    try:
        with Client(proc.address, timeout=120) as c:
            c.segment(np.random.default_rng(0).random((250_000, 3)).astype(np.float32))
    finally:
        proc.stop()
    log = proc.proc.stderr.read()
    for share in (25, 50, 75, 100):
        assert f"segment: preparing the shape: f at the surface samples, {share}% of 250000 points" in log


def test_a_bind_that_is_no_endpoint_is_named():
    from server.app import Server
    with pytest.raises(ValueError, match="not a ZeroMQ endpoint"):
        Server(bind="garbage")


def test_the_op_table_names_what_a_request_lacks(server):
    reply = raw_request(server.address, encode({"op": "correspond", "id": "r9"}, {"source_vertices": pts(10)}))
    assert reply["id"] == "r9" and reply["error"] == {
        "code": "missing_array", "message": "a correspond request needs the array 'target_vertices': float32 (M, 3)"}
    with Client(server.address) as c, pytest.raises(protocol.ProtocolError, match="needs the array 'target_vertices'") as err:
        c.request("correspond", {"source_vertices": pts(5)})  # the client checks the same table before sending
    assert err.value.code == "missing_array"


def test_fuzz_then_still_correct(server):
    rng = np.random.default_rng(1)
    good = encode({"op": "segment", "id": 1}, {"vertices": pts(20)})
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
        s.send_multipart([b"", *encode({"op": "segment", "id": 1}, {"vertices": pts(40000)})])
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


def test_a_request_lost_to_a_restart_is_said_at_the_next_probe_not_at_the_timeout(tiny_checkpoint, monkeypatch):
    from server import client as client_module

    monkeypatch.setattr(client_module, "PROBE_EVERY", 0.5)
    monkeypatch.setattr(client_module, "SILENT_PROBES", 100)  # however long the next run takes to start
    port = free_port()
    first = ServerProcess(tiny_checkpoint, port=port).wait_ready()
    servers = [first]

    def restart():  # once the long request runs
        with Client(first.address, timeout=5) as c:
            deadline = time.time() + 10
            while not c.ping()["busy"] and time.time() < deadline:
                time.sleep(0.05)
        first.proc.kill()
        first.proc.wait()
        servers.append(ServerProcess(tiny_checkpoint, port=port).wait_ready())

    with Client(first.address, timeout=120) as c:  # no ping first: the request finds out which run took it
        thread = threading.Thread(target=restart)
        thread.start()
        started = time.time()
        try:
            with pytest.raises(ServerError) as err:
                c.reconstruct(pts(500), resolution=512)  # minutes of f
            thread.join()
            assert err.value.code == "restarted" and "send it again" in err.value.message
            assert time.time() - started < 60
            assert c.segment(pts(30)).shape == (30,)  # the new run serves the next one
        finally:
            thread.join()
            for server in servers:
                server.stop()


def test_a_server_that_died_holding_the_request_is_said_gone_after_a_few_silent_probes(tiny_checkpoint,
                                                                                        monkeypatch):
    from server import client as client_module

    monkeypatch.setattr(client_module, "PROBE_EVERY", 0.5)
    server = ServerProcess(tiny_checkpoint, port=free_port()).wait_ready()

    def kill():  # once the long request runs, as the kernel does a server out of memory
        with Client(server.address, timeout=5) as c:
            deadline = time.time() + 10
            while not c.ping()["busy"] and time.time() < deadline:
                time.sleep(0.05)
        server.proc.kill()

    thread = threading.Thread(target=kill)
    with Client(server.address, timeout=120) as c:
        thread.start()
        started = time.time()
        try:
            with pytest.raises(ServerError) as err:
                c.reconstruct(pts(500), resolution=512)  # minutes of f
            assert err.value.code == "gone" and "stopped answering" in err.value.message
            assert time.time() - started < 30  # three probes, not the 120 s timeout
        finally:
            thread.join()
            server.stop()


def test_a_restart_before_the_request_is_no_restart_while_it_runs(tiny_checkpoint, monkeypatch):
    """A client that pinged one run of the server and sends its next request to the run after
    it is not told that this request was lost to a restart."""
    from server import client as client_module

    monkeypatch.setattr(client_module, "PROBE_EVERY", 0.3)
    port = free_port()
    first = ServerProcess(tiny_checkpoint, port=port).wait_ready()
    c = Client(first.address, timeout=120)
    try:
        before = c.ping()["instance"]
        first.stop()
        second = ServerProcess(tiny_checkpoint, port=port).wait_ready()
        try:
            mesh = c.reconstruct(pts(500), resolution=128)  # seconds of f: several probes
            assert mesh["faces"].ndim == 2 and c.server_instance not in (None, before)
        finally:
            second.stop()
    finally:
        c.close()


def test_non_loopback_needs_a_secret_which_the_environment_can_give(tiny_checkpoint):
    port = free_port()
    refused = ServerProcess(tiny_checkpoint, bind=f"tcp://0.0.0.0:{port}", port=port)
    assert refused.proc.wait(60) == 2
    assert "needs --secret" in refused.proc.stderr.read()
    env = {"CORR_SERVER_SECRET": "s3cret"}
    ok = ServerProcess(tiny_checkpoint, bind=f"tcp://0.0.0.0:{port}", port=port, env=env).wait_ready()
    try:
        with Client(ok.address, secret="") as c:
            with pytest.raises(ServerError, match="missing signature: this server requires a key") as err:
                c.ping()
            assert err.value.code == "bad_signature"
        with Client(ok.address, secret="s3cret") as c:
            assert c.ping()["ok"]
    finally:
        ok.stop()
    assert "are not CurveZMQ: a peer without the key can still make this server read large messages" in \
        ok.proc.stderr.read()


def test_the_key_can_come_from_a_file_only_its_owner_can_read(tiny_checkpoint, tmp_path, capsys):
    from server.app import main as server_main

    key_file = tmp_path / "key"
    key_file.write_text("from-a-file\n")
    key_file.chmod(0o600)
    proc = ServerProcess(tiny_checkpoint, "--secret-file", str(key_file)).wait_ready()
    try:
        with Client(proc.address, secret="from-a-file") as c:
            assert c.ping()["ok"]
        assert b"from-a-file" not in Path(f"/proc/{proc.proc.pid}/cmdline").read_bytes()  # what other users see
    finally:
        proc.stop()
    key_file.chmod(0o644)
    for flags, said in ((["--secret-file", str(key_file)], f"other users can read or change it (mode -rw-r--r--): "
                                                           f"run chmod 600 {key_file}"),
                        (["--secret-file", str(key_file), "--secret", "k"], "--secret or --secret-file, not both"),
                        (["--secret-file", str(tmp_path / "none")], "No such file")):
        with pytest.raises(SystemExit) as exit:
            server_main(flags)
        assert exit.value.code == 2 and said in capsys.readouterr().err
    with pytest.raises(SystemExit):
        server_main(["--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "other local users can read it in the process list, so prefer --secret-file" in help_text


# ---------------------------------------------------------------------- signed messages
def signed(key=KEY):
    return protocol.Session(key, max_elements=1 << 24, side="client")


def test_signed_round_trip(keyed_server):
    with Client(keyed_server.address, secret=KEY, timeout=30) as c:
        assert c.ping()["ok"] and c.info()["device"] == "cpu"
        assert c.segment(pts(123)).shape == (123,)
        res = c.correspond(pts(50), pts(40, 1), both=True)
        assert res["confidence"].shape == (40,) and res["reverse_mapped"].shape == (50, 3)


def test_wrong_key(keyed_server):
    with Client(keyed_server.address, secret="not-the-key") as c, pytest.raises(ServerError) as err:
        c.ping()
    # the server answers a request it cannot verify unsigned; the client says what that means and quotes it
    assert err.value.code == "bad_signature"
    assert "refused the request as unauthenticated: check that this client has the server's key" in err.value.message
    assert "the unverified reply says: bad_signature: signature does not match: wrong key?" in err.value.message


def test_missing_signature(keyed_server):
    reply = raw_request(keyed_server.address, encode({"op": "ping", "id": 1}))  # unsigned: PLAIN reads it
    assert reply["error"] == {"code": "bad_signature", "message": "missing signature: this server requires a key"}


def test_a_message_that_did_not_verify_gets_no_signed_reply(keyed_server):
    """Signed, such a reply would be a genuine error for any id a peer without the key chose:
    a keyed client's next request id, or a `v` of its wording."""
    victim = "deadbeef-7"
    for header in ({"v": 1, "op": "segment", "id": victim}, {"v": "2: run this", "id": victim},
                   {"v": 1, "op": "ping", "id": victim, "sig": protocol.SIGNATURE}):
        frames = [json.dumps(header).encode(), *([b"0" * 64] if "sig" in header else [])]
        reply = raw_request(keyed_server.address, frames)
        assert reply["id"] == victim and reply["ok"] is False and "sig" not in reply
        with pytest.raises(protocol.ProtocolError, match="missing signature"):
            raw_request(keyed_server.address, frames, session=signed())  # a keyed client cannot take it as genuine
    with Client(keyed_server.address, secret=KEY) as c:  # what verified is still answered signed, errors too
        with pytest.raises(ServerError) as err:
            c.correspond(pts(10), np.zeros((0, 3), np.float32))
        assert err.value.code == "bad_input" and "empty" in err.value.message
        assert "unauthenticated" not in err.value.message


def test_a_keyed_client_and_a_server_without_a_key(server):
    with Client(server.address, secret=KEY) as c, pytest.raises(ServerError) as err:
        c.ping()
    assert err.value.code == "bad_signature" and "refused the request as unauthenticated" in err.value.message
    assert "signed but this server has no key" in err.value.message


def test_replayed_message_refused(keyed_server):
    frames = signed().request("segment", "once", {"vertices": pts(20)})
    assert raw_request(keyed_server.address, frames, session=signed())["ok"] is True
    reply = raw_request(keyed_server.address, frames)  # a replay did not verify: its refusal comes unsigned
    assert reply["id"] == "once" and reply["error"]["code"] == "replayed_message" and "sig" not in reply


def test_stale_timestamp_refused(keyed_server):
    frames = signed().encode({"op": "ping", "id": "old", "ts": time.time() - 3600})
    reply = raw_request(keyed_server.address, frames)
    assert reply["error"]["code"] == "stale_message" and "3600 s behind" in reply["error"]["message"]


def test_tampered_array_frame_refused(keyed_server):
    frames = signed().request("segment", "t", {"vertices": pts(20)})
    data = bytearray(frames[1])
    data[5] ^= 1
    reply = raw_request(keyed_server.address, [frames[0], bytes(data), frames[2]])
    assert reply["error"] == {"code": "bad_signature", "message": "signature does not match: wrong key?"}
    with Client(keyed_server.address, secret=KEY) as c:
        assert c.ping()["ok"]


@pytest.fixture()
def fake_server():
    """A ROUTER that answers one request with frames made by `reply(request_header)` (and an
    `info` before it, which a client asks before its first model request, as a server would)."""
    ctx = zmq.Context.instance()
    sock = ctx.socket(zmq.ROUTER)
    sock.setsockopt(zmq.LINGER, 0)
    port = sock.bind_to_random_port("tcp://127.0.0.1")
    box = {}

    def answer():
        while sock.poll(10_000):
            route, *body = sock.recv_multipart()
            request = signed().decode(body[1:])[0]
            if request["op"] == "info":
                limits = {"max_message_bytes": 1 << 30}
                sock.send_multipart([route, *signed().reply(request["id"], "info", limits=limits)])
                continue
            sock.send_multipart([route, *box["reply"](request)])
            return

    thread = threading.Thread(target=answer, daemon=True)
    box["start"] = lambda reply: (box.update(reply=reply), thread.start())
    yield f"tcp://127.0.0.1:{port}", box["start"]
    thread.join(5)
    sock.close(0)


def test_client_refuses_a_reply_with_a_bad_signature(fake_server):
    address, start = fake_server
    start(lambda req: [*signed().reply(req["id"], "ping")[:-1], b"f" * 64])
    with Client(address, secret=KEY, timeout=10) as c, pytest.raises(ServerError) as err:
        c.ping()
    assert err.value.code == "bad_signature" and "signature does not match: wrong key?" in err.value.message


def test_client_checks_replies_against_the_op_table(fake_server):
    address, start = fake_server
    start(lambda req: signed().encode({"id": req["id"], "ok": True}, {"parts": np.zeros(3, np.float32)}))
    with Client(address, secret=KEY, timeout=10) as c, pytest.raises(ServerError) as err:
        c.segment(pts(3))
    assert err.value.code == "bad_array" and "parts is float32 (3,); a segment reply needs int64 (N)" in err.value.message


def test_client_refuses_an_empty_reply_array_with_huge_dimensions(fake_server):
    address, start = fake_server

    def reply(req):
        huge = {"name": "parts", "dtype": "int64", "shape": [0, 2**31 - 1, 2**31 - 1]}
        head = {"v": 1, "id": req["id"], "ok": True, "msg_id": os.urandom(8).hex(), "ts": time.time(),
                "sig": protocol.SIGNATURE, "arrays": [huge]}
        frames = [json.dumps(head).encode(), b""]
        return [*frames, signed()._sign(frames)]

    start(reply)
    with Client(address, secret=KEY, timeout=10) as c, pytest.raises(ServerError) as err:
        c.segment(pts(3))
    assert err.value.code == "bad_shape"


def test_sigterm_stops_cleanly(tiny_checkpoint):
    proc = ServerProcess(tiny_checkpoint).wait_ready()
    proc.proc.send_signal(signal.SIGTERM)
    assert proc.proc.wait(20) == 0


def test_sigterm_during_a_long_request_stops_without_waiting_for_it(tiny_checkpoint):
    from server.app import WORKER_GRACE_S

    proc = ServerProcess(tiny_checkpoint).wait_ready()
    s = zmq.Context.instance().socket(zmq.DEALER)
    s.setsockopt(zmq.LINGER, 0)
    s.connect(proc.address)
    try:  # marching cubes at 512: minutes of f on this machine
        s.send_multipart([b"", *encode({"op": "reconstruct", "id": 1, "resolution": 512}, {"vertices": pts(500)})])
        with Client(proc.address, timeout=10) as c:
            deadline = time.time() + 10
            while not c.ping()["busy"] and time.time() < deadline:
                time.sleep(0.05)
            assert c.ping()["busy"]
        proc.proc.send_signal(signal.SIGTERM)
        start = time.time()
        assert proc.proc.wait(WORKER_GRACE_S + 15) == 0
        assert time.time() - start < WORKER_GRACE_S + 5
        assert "Traceback" not in proc.proc.stderr.read()
        assert _reply_header(s, 5)["error"]["code"] == "shutting_down"  # told, not left to its timeout
    finally:
        s.close(0)
        proc.stop()


def test_stopping_answers_the_running_request_and_the_queued_ones(tiny_checkpoint):
    from server.app import SHUTTING_DOWN

    proc = ServerProcess(tiny_checkpoint).wait_ready()
    running, queued = _dealer(proc.address), _dealer(proc.address)
    try:
        running.send_multipart([b"", *encode({"op": "reconstruct", "id": "r-run", "resolution": 112},
                                                  {"vertices": pts(500)})])  # 1-2 s: within the grace
        queued.send_multipart([b"", *encode({"op": "segment", "id": "r-q"}, {"vertices": pts(50)})])
        with Client(proc.address, timeout=10) as c:
            deadline = time.time() + 10
            while not ((pong := c.ping())["busy"] and pong["queued"] == 1) and time.time() < deadline:
                time.sleep(0.01)  # both received, the first one running
            assert pong["busy"] and pong["queued"] == 1
            proc.proc.send_signal(signal.SIGTERM)  # at once: the running request must not end first
        started = time.time()
        reply = _reply_header(queued, 5)
        assert reply["id"] == "r-q" and reply["error"] == {"code": "shutting_down", "message": SHUTTING_DOWN}
        assert time.time() - started < 3  # at once, not after the running one
        assert _reply_header(running, 10)["ok"] is True  # finished within the grace: its reply still goes out
        assert proc.proc.wait(10) == 0
    finally:
        running.close(0)
        queued.close(0)
        proc.stop()



def _state(pid: int) -> str | None:
    """A process's state letter (Z: a zombie), None when there is none (Linux /proc)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return None


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads process states from /proc")
def test_a_parent_that_died_unreaped_stops_the_server(tiny_checkpoint):
    """A dead parent not yet waited for (a zombie) still answers os.kill(pid, 0); the server
    was handed to another parent, and that tells."""
    starter = textwrap.dedent(f"""
        import os, subprocess, sys
        server = subprocess.Popen([sys.executable, "-m", "server", "--bind", "tcp://127.0.0.1:{free_port()}",
                                   "--checkpoint", {str(tiny_checkpoint)!r}, "--device", "cpu",
                                   "--log-level", "WARNING", "--parent-pid", str(os.getpid())],
                                  stdout=subprocess.PIPE, text=True)
        while not server.stdout.readline().startswith("ready"):
            pass
        print(server.pid, flush=True)
        os._exit(0)  # a crash: no stop, no unregister
    """)
    parent = subprocess.Popen([sys.executable, "-c", starter], cwd=ROOT, env=child_env(OMP_NUM_THREADS="1"),
                              stdout=subprocess.PIPE, text=True)
    server_pid = int(parent.stdout.readline())
    try:
        deadline = time.time() + 20
        while _state(server_pid) not in (None, "Z") and time.time() < deadline:
            time.sleep(0.1)
        assert _state(parent.pid) == "Z"  # not reaped all along
        assert _state(server_pid) in (None, "Z"), "the server outlived its parent"
    finally:
        if _state(server_pid) not in (None, "Z"):
            os.kill(server_pid, signal.SIGKILL)
        parent.wait()


def test_the_parent_check_sends_no_signal_on_windows(monkeypatch):
    """There os.kill(pid, 0) is no probe (it sends CTRL_C_EVENT, or fails): the check asks Windows instead."""
    from server import app

    def no_kill(*_):
        raise AssertionError("os.kill called")

    monkeypatch.setattr(sys, "platform", "win32")
    monkeypatch.setattr(os, "kill", no_kill)
    monkeypatch.setattr(app, "_alive_windows", lambda pid: pid == 4242)
    assert app._alive(4242, is_parent=True) and not app._alive(4243)


def test_requests_queued_from_all_clients_are_bounded_in_number_and_bytes(tiny_checkpoint, monkeypatch):
    from server import app

    server = app.Server(bind=f"tcp://127.0.0.1:{free_port()}", checkpoint=str(tiny_checkpoint), device="cpu")
    try:
        server.busy = True  # the worker is taken: every request waits
        request = encode({"op": "segment", "id": 1}, {"vertices": pts(100)})
        for k in range(app.MAX_QUEUED + 5):  # one request per client: no client's own limit is reached
            server._receive([f"client-{k}".encode(), b"", *request])
        assert sum(map(len, server.pending.values())) == app.MAX_QUEUED
        assert server.queued_bytes == app.MAX_QUEUED * pts(100).nbytes
        server._dispatch()  # no: busy
        server.busy = False
        server._dispatch()
        assert server.work.get_nowait().header["op"] == "segment"  # handed over (no worker runs here)
        assert server.queued_bytes == (app.MAX_QUEUED - 1) * pts(100).nbytes
        monkeypatch.setattr(app, "MAX_QUEUED_BYTES", server.queued_bytes + pts(100).nbytes - 1)
        server._receive([b"one-more", b"", *request])
        assert b"one-more" not in server.pending
    finally:
        server.close()


def test_a_stop_that_lands_as_the_running_request_ends_starts_no_queued_one(tiny_checkpoint):
    """The stop signal arrives while the main loop polls; the running request's reply comes
    in the same turn of the loop, and its queued successor must not be handed over then."""
    from server import app

    server = app.Server(bind=f"tcp://127.0.0.1:{free_port()}", checkpoint=str(tiny_checkpoint), device="cpu")
    try:
        server._receive([b"client", b"", *encode({"op": "segment", "id": "q"}, {"vertices": pts(100)})])
        server.stop()
        server._dispatch()
        assert server.work.empty() and not server.busy and len(server.pending[b"client"]) == 1
    finally:
        server.close()


# ---------------------------------------------------------------------- prepared shapes kept
def box_mesh(scale=1.0):
    box = trimesh.creation.box().subdivide()
    return box.vertices * scale, box.faces


def test_a_source_sent_with_each_target_is_prepared_once_and_again_when_it_changes(tiny_checkpoint):
    proc = ServerProcess(tiny_checkpoint).wait_ready()  # its own server: counts start at zero
    try:
        with Client(proc.address, timeout=60) as c:
            (sv, sf), (tv, tf) = box_mesh(), box_mesh(2.0)
            first = c.correspond(sv, pts(100, 1), source_faces=sf, source_parts=True)
            assert c.ping()["prepared"]["misses"] == 2 and c.ping()["prepared"]["hits"] == 0
            assert first["source_parts"].tolist() == c.segment(sv, sf).tolist()  # the same preparation, reused
            again = c.correspond(sv, tv, source_faces=sf, target_faces=tf)
            stats = c.ping()["prepared"]
            assert (stats["misses"], stats["hits"], stats["entries"]) == (3, 2, 3) and "source_parts" not in again
            moved = sv.copy()
            moved[0] += 0.01  # one vertex moved: another shape
            c.correspond(moved, tv, source_faces=sf, target_faces=tf)
            assert c.ping()["prepared"]["misses"] == 4
            c.correspond(sv, tv, source_faces=sf, target_faces=tf, align=True)  # another align mode: prepared again
            stats = c.ping()["prepared"]
            assert stats["misses"] == 6 and 0 < stats["bytes"] <= stats["max_bytes"]
    finally:
        proc.stop()


def test_align_modes_pass_through_and_the_rotations_come_back(server):
    with Client(server.address, timeout=60) as c:
        (sv, sf), (tv, tf) = box_mesh(), box_mesh(2.0)
        for mode in (False, "yaw", True):
            res = c.correspond(sv, tv, source_faces=sf, target_faces=tf, align=mode)
            for rot in (res["source_rotation"], res["target_rotation"]):
                assert rot.shape == (3, 3) and np.allclose(rot @ rot.T, np.eye(3), atol=1e-6)
                assert np.isclose(np.linalg.det(rot), 1.0)
                if mode == "yaw":  # a turn about the up axis (+Y in the model frame)
                    assert np.allclose(rot @ [0.0, 1.0, 0.0], [0.0, 1.0, 0.0], atol=1e-6)
        assert np.allclose(c.correspond(sv, tv, source_faces=sf, align=False)["target_rotation"], np.eye(3))
        for name, mode in (("any", True), ("off", False)):  # the command line's names too
            by_name = c.correspond(sv, tv, source_faces=sf, target_faces=tf, align=name)
            by_mode = c.correspond(sv, tv, source_faces=sf, target_faces=tf, align=mode)
            assert np.array_equal(by_name["target_rotation"], by_mode["target_rotation"])
            assert np.array_equal(by_name["source_face"], by_mode["source_face"])
        with pytest.raises(protocol.ProtocolError, match="'align' must be one of false, true, \"yaw\""):
            c.correspond(sv, tv, align="sideways")
        reply = raw_request(server.address, encode({"op": "segment", "id": 4, "align": "roll"}, {"vertices": pts(10)}))
        assert reply["error"]["code"] == "bad_param" and "yaw" in reply["error"]["message"]


def _dealer(address):
    s = zmq.Context.instance().socket(zmq.DEALER)
    s.setsockopt(zmq.LINGER, 0)
    s.connect(address)
    return s


def _reply_header(s, timeout_s):
    assert s.poll(int(timeout_s * 1000)), "no reply"
    frames = s.recv_multipart()
    return PLAIN.decode(frames[1:] if frames[0] == b"" else frames)[0]


def test_a_request_given_up_is_dropped_from_the_queue_or_stopped_while_it_runs(tiny_checkpoint):
    proc = ServerProcess(tiny_checkpoint).wait_ready()
    long, queued = _dealer(proc.address), _dealer(proc.address)
    try:  # marching cubes at 512: minutes of f on this machine
        long.send_multipart([b"", *encode({"op": "reconstruct", "id": "r-long", "resolution": 512},
                                               {"vertices": pts(500)})])
        with Client(proc.address, timeout=10) as c:
            deadline = time.time() + 10
            while not c.ping()["busy"] and time.time() < deadline:
                time.sleep(0.05)
            assert c.ping()["busy"]
            queued.send_multipart([b"", *encode({"op": "segment", "id": "r-q"}, {"vertices": pts(50)})])
            deadline = time.time() + 10
            while c.ping()["queued"] < 1 and time.time() < deadline:
                time.sleep(0.05)
            assert c.request("cancel", request="r-q")[0]["cancelled"] == "queued"
            assert _reply_header(queued, 5)["error"]["code"] == "cancelled"
            assert c.request("cancel", request="r-q")[0]["cancelled"] == "unknown"
            started = time.time()
            assert c.request("cancel", request="r-long")[0]["cancelled"] == "running"
            assert _reply_header(long, 30)["error"] == {"code": "cancelled", "message": "cancelled by the client"}
            assert time.time() - started < 20
            assert c.segment(pts(60)).shape == (60,)  # the next request runs at once
    finally:
        long.close(0)
        queued.close(0)
        proc.stop()


def test_a_client_that_times_out_takes_its_request_back(tiny_checkpoint):
    proc = ServerProcess(tiny_checkpoint).wait_ready()
    try:
        with Client(proc.address, timeout=2) as c:
            with pytest.raises(ServerError, match="within 2 s"):
                c.reconstruct(pts(500), resolution=512)
            deadline = time.time() + 20
            while c.ping()["busy"] and time.time() < deadline:
                time.sleep(0.1)
            assert not c.ping()["busy"]
            assert c.segment(pts(40)).shape == (40,)
    finally:
        proc.stop()


def test_a_target_split_at_its_seams_is_sent_welded_and_answered_per_vertex(server, monkeypatch):
    box = trimesh.creation.box().subdivide()
    triangles = np.asarray(box.faces)
    split = np.asarray(box.vertices)[triangles].reshape(-1, 3)  # flat shaded: each face its own corners
    sent, request = [], Client.request
    monkeypatch.setattr(Client, "request", lambda self, op, arrays=None, *a, **k: (
        op != "info" and sent.append(len((arrays or {}).get("target_vertices", (arrays or {}).get("vertices", []))))
        or request(self, op, arrays, *a, **k)))
    with Client(server.address, timeout=30) as c:
        res = c.correspond(box.vertices, split, source_faces=box.faces, target_faces=np.arange(len(split)).reshape(-1, 3),
                           both=True)
        parts = c.segment(split, np.arange(len(split)).reshape(-1, 3))
        assert len(c.last_arrays["parts"]) == len(split)
    assert sent == [len(box.vertices)] * 2  # each position once
    assert res["confidence"].shape == (len(split),) and parts.shape == (len(split),)
    # a source vertex's match names a corner of its target face: the copy on that face (a seam's copies differ in UVs)
    corners = np.arange(len(split)).reshape(-1, 3)[res["reverse_source_face"]]
    assert (corners == res["reverse_source_index"][:, None]).any(axis=1).all()


def test_a_client_with_a_progress_callback_hears_how_far_its_request_is(server, monkeypatch):
    from server import client as client_module

    monkeypatch.setattr(client_module, "PROGRESS_EVERY", 0.2)
    heard = []
    with Client(server.address, timeout=120, progress=lambda *said: heard.append(said)) as c:
        mesh = c.reconstruct(pts(500), resolution=128)  # seconds of f
    assert mesh["faces"].ndim == 2 and heard
    assert all(stage.startswith(("preparing the shape", "reconstructing", "rebuilding")) for stage, _, _ in heard)
    assert any(stage == "reconstructing" and 0 < done <= total for stage, done, total in heard)
    with Client(server.address, timeout=5) as idle:  # and nothing of a request no one runs
        assert idle.ping()["progress"] is None

    class Broken(Exception):
        pass

    def broken(*said):
        raise Broken

    with Client(server.address, timeout=120, progress=broken) as c, pytest.raises(Broken):
        c.reconstruct(pts(500), resolution=256)  # minutes of f, unless taken back
    with Client(server.address, timeout=5) as idle:  # the failed callback took the request back
        deadline = time.time() + 10
        while idle.ping()["busy"] and time.time() < deadline:
            time.sleep(0.1)
        assert not idle.ping()["busy"]


def test_the_command_line_says_each_step_and_each_quarter_of_a_long_pass(capsys):
    from server.cli import LONG_PASS, ProgressLines

    say = ProgressLines()
    for done in (0, LONG_PASS // 8, LONG_PASS // 4, LONG_PASS // 2, LONG_PASS // 2 + 1, LONG_PASS):
        say("matching: g onto the source", done, LONG_PASS)
    say("matching: confidence", 0, 1)
    assert capsys.readouterr().err.splitlines() == [
        "server: matching: g onto the source", f"server: matching: g onto the source, 25% of {LONG_PASS} points",
        f"server: matching: g onto the source, 50% of {LONG_PASS} points",
        f"server: matching: g onto the source, 100% of {LONG_PASS} points", "server: matching: confidence"]
