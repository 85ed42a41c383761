"""A real server started with --curve on a loopback port: who gets through the handshake."""
import errno
import time

import numpy as np
import pytest
import zmq
from zmq.utils.monitor import recv_monitor_message

from server import curve, protocol
from server.app import main as server_main
from server.client import Client, ServerError

from .conftest import KEY, ServerProcess


@pytest.fixture(scope="module")
def curve_server(tiny_checkpoint):
    proc = ServerProcess(tiny_checkpoint, "--secret", KEY, "--curve").wait_ready()
    yield proc
    proc.stop()


def pts(n, seed=0):
    return np.random.default_rng(seed).random((n, 3)).astype(np.float32)


def handshake_of(address, frames, setup=lambda sock: None, wait=1.5):
    """Send `frames` on a raw DEALER that `setup` configured -> (reply frames or None, the
    monitor's handshake events)."""
    ctx = zmq.Context.instance()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    setup(sock)
    monitor = sock.get_monitor_socket(zmq.EVENT_HANDSHAKE_SUCCEEDED | curve.HANDSHAKE_FAILED)
    sock.connect(address)
    sock.send_multipart([b"", *frames])
    events, reply, deadline = [], None, time.monotonic() + wait
    try:
        while time.monotonic() < deadline and reply is None:
            if monitor.poll(50):
                events.append(recv_monitor_message(monitor)["event"])
            if sock.poll(0):
                reply = sock.recv_multipart()
        return reply, events
    finally:
        sock.disable_monitor()
        monitor.close(0)
        sock.close(0)


def test_a_client_with_the_key_and_curve_gets_answers(curve_server, tiny_checkpoint, monkeypatch):
    with Client(curve_server.address, secret=KEY, curve=True, timeout=30) as c:
        assert c.ping()["ok"] and c.segment(pts(123)).shape == (123,)
    # the environment turns it on at both ends: Blender's, and a local server the add-on starts from it
    env = {"CORR_SERVER_SECRET": KEY, "CORR_SERVER_CURVE": "1"}
    from_env = ServerProcess(tiny_checkpoint, env=env).wait_ready()
    try:
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        with Client(from_env.address, timeout=30) as c:
            assert c.curve and c.correspond(pts(50), pts(40, 1))["confidence"].shape == (40,)
        with Client(from_env.address, curve=False) as c, pytest.raises(ServerError, match="handshake"):
            c.ping()
    finally:
        from_env.stop()


def test_a_peer_without_the_key_is_shut_out_before_it_sends_anything(curve_server):
    # plain ZeroMQ: many large frames, which a server without --curve reads whole before refusing them
    frames = [protocol.Session(None, max_elements=1 << 24, side="client").encode({"op": "ping", "id": 1})[0],
              *[b"x" * 100_000] * 50]
    reply, events = handshake_of(curve_server.address, frames)
    assert reply is None and events and all(event & curve.HANDSHAKE_FAILED for event in events)

    def knows_only_the_server_key(sock):  # the server's public key, a client key pair of its own
        sock.curve_serverkey = curve.key_pair(KEY, "server")[0]
        sock.curve_publickey, sock.curve_secretkey = zmq.curve_keypair()

    signed = protocol.Session(KEY, max_elements=1 << 24, side="client").encode({"op": "ping", "id": 2})
    reply, events = handshake_of(curve_server.address, signed, knows_only_the_server_key)
    assert reply is None and zmq.EVENT_HANDSHAKE_FAILED_AUTH in events  # refused by the ZAP handler
    reply, events = handshake_of(curve_server.address, signed, lambda sock: curve.connect(sock, KEY))
    assert reply is not None and zmq.EVENT_HANDSHAKE_SUCCEEDED in events  # the same socket set up from the key


def test_a_mismatch_is_said_at_once_not_after_the_timeout(curve_server, server):
    cases = ((curve_server.address, "not-the-key", True, "refused this client's CurveZMQ handshake: check that "
                                                          "this client has the server's key"),
             (curve_server.address, KEY, False, "if it was started with --curve, it takes only clients with its key "
                                                "and curve=True (or CORR_SERVER_CURVE=1)"),
             (server.address, KEY, True, "--curve"))
    for address, key, use_curve, said in cases:
        started = time.monotonic()
        with Client(address, secret=key, curve=use_curve, timeout=30) as c, pytest.raises(ServerError) as err:
            c.ping()
        assert err.value.code == "handshake" and said in err.value.message
        assert time.monotonic() - started < 5
    with Client(curve_server.address, secret=KEY, curve=True) as c:  # still serving
        assert c.ping()["ok"]


def test_curve_needs_a_key(capsys, monkeypatch):
    monkeypatch.delenv("CORR_SERVER_SECRET", raising=False)
    assert server_main(["--curve", "--bind", "tcp://127.0.0.1:0"]) == 2
    assert "--curve (or CORR_SERVER_CURVE) needs a key" in capsys.readouterr().err
    with pytest.raises(ValueError, match="needs the server's key: secret=, a key file, or CORR_SERVER_SECRET"):
        Client(secret="", curve=True)


def test_each_side_derives_its_own_pair_from_the_key():
    server_public, server_secret = curve.key_pair(KEY, "server")
    client_public, _ = curve.key_pair(KEY, "client")
    assert len(server_public) == len(server_secret) == 40 and server_public != client_public
    assert zmq.curve_public(server_secret) == server_public and curve.key_pair(KEY, "server") == (server_public,
                                                                                                 server_secret)
    assert curve.key_pair("another key", "server")[0] != server_public


def test_the_command_line_takes_a_key_file_and_curve(curve_server, tmp_path, capsys):
    from server.cli import main as cli_main

    key_file = tmp_path / "key"
    key_file.write_text(KEY + "\n")
    key_file.chmod(0o600)
    assert cli_main(["--address", curve_server.address, "--secret-file", str(key_file), "--curve", "ping"]) == 0
    assert '"ok": true' in capsys.readouterr().out
    assert cli_main(["--address", curve_server.address, "--secret-file", str(key_file), "ping"]) != 0
    assert "if it was started with --curve, it takes only clients with its key" in capsys.readouterr().err
    key_file.chmod(0o640)
    assert cli_main(["--address", curve_server.address, "ping", "--secret-file", str(key_file), "--curve"]) == 2
    assert "--secret-file" in capsys.readouterr().err


def test_a_handshake_that_timed_out_is_no_verdict():
    # a stalled peer: the request waits out its own timeout instead of blaming the key
    assert curve.handshake_error(zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL, zmq.EAGAIN, "tcp://x:1", True) is None
    assert curve.handshake_error(zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL, errno.EPIPE, "tcp://x:1", True) is not None
    assert curve.handshake_error(zmq.EVENT_CONNECTED, 0, "tcp://x:1", True) is None


def test_with_its_authenticator_stopped_the_server_admits_no_one():
    ctx = zmq.Context()
    router = ctx.socket(zmq.ROUTER)
    router.setsockopt(zmq.LINGER, 0)
    auth = curve.serve(router, KEY)
    port = router.bind_to_random_port("tcp://127.0.0.1")
    auth.stop()  # libzmq without a ZAP handler would admit any client key; the enforced domain admits none

    def foreign(sock):
        sock.curve_serverkey = curve.key_pair(KEY, "server")[0]
        sock.curve_publickey, sock.curve_secretkey = zmq.curve_keypair()

    try:
        reply, events = handshake_of(f"tcp://127.0.0.1:{port}", [b"hello"], foreign, wait=1.0)
        assert router.poll(200) == 0 and zmq.EVENT_HANDSHAKE_SUCCEEDED not in events
    finally:
        router.close(0)
        ctx.term()


def test_a_socket_that_could_not_be_built_is_not_kept(monkeypatch, curve_server):
    def broken(sock, key):
        raise zmq.ZMQError(errno.EMFILE)

    with Client(curve_server.address, secret=KEY, curve=True, timeout=5) as c:
        monkeypatch.setattr(curve, "connect", broken)
        for _ in range(2):  # the second try must fail the same way, not block on a socket never connected
            with pytest.raises(zmq.ZMQError):
                c.ping()
            assert c.sock is None and c.monitor is None
        monkeypatch.undo()
        assert c.ping()["ok"]
