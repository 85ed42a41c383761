"""The model server: a ZeroMQ ROUTER socket in front of the correspondence engine.

    python -m server [--bind tcp://127.0.0.1:5555] [--checkpoint FILE] [--device cuda|cpu]

One thread owns the socket and answers `ping` and `info` at once; the model work runs on
a worker thread, one request at a time, taken round-robin from per-client queues so one
busy client cannot starve the others.  Every request is validated before it reaches the
model, and every failure becomes an error reply: the server never dies on a message.
"""
from __future__ import annotations

import argparse
import collections
import hmac
import ipaddress
import logging
import os
import queue
import signal
import sys
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

import numpy as np
import zmq

from . import protocol
from .protocol import ProtocolError

log = logging.getLogger("corr-server")
DEFAULT_BIND = "tcp://127.0.0.1:5555"
MODEL_OPS = ("segment", "correspond", "reconstruct")


def is_loopback(bind: str) -> bool:
    url = urlparse(bind)
    if url.scheme in ("ipc", "inproc"):
        return True
    host = (url.hostname or "").strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # "*", an interface name or a hostname: not provably loopback


@dataclass
class Job:
    envelope: list[bytes]
    header: dict[str, Any]
    arrays: dict[str, np.ndarray]
    received: float = field(default_factory=time.perf_counter)


class Engines:
    """Correspondence engines by category, loaded on first use and kept."""

    def __init__(self, checkpoint: str | None, device: str | None, max_points: int):
        from model import Correspondence, shipped_categories  # torch loads here, not at import

        self._load = Correspondence.load
        self.checkpoint, self.device, self.max_points = checkpoint, device, max_points
        self.categories = shipped_categories()
        self._engines: dict[str, Any] = {}
        self.default = self.get(None)

    def get(self, category: str | None):
        key = category or ""
        if key not in self._engines:
            if self.checkpoint and category:
                raise ValueError("this server was started with --checkpoint; it serves only that model's category")
            self._engines[key] = self._load(self.checkpoint if not category else None, device=self.device,
                                            category=category, max_points=self.max_points)
        return self._engines[key]


def _shape_from(arrays: dict[str, np.ndarray], prefix: str):
    verts = arrays.get(f"{prefix}vertices", arrays.get(f"{prefix}points"))
    if verts is None:
        raise ValueError(f"missing array '{prefix}vertices'")
    faces = arrays.get(f"{prefix}faces")
    return verts if faces is None else (verts, faces)


def run_model_op(engines: Engines, header: dict[str, Any], arrays: dict[str, np.ndarray]) -> tuple[dict, dict]:
    """-> (reply fields, reply arrays).  ValueError for bad input."""
    op = header["op"]
    engine = engines.get(header.get("category"))
    align = bool(header.get("align", False))
    if op == "segment":
        return {}, {"parts": engine.segment(_shape_from(arrays, ""), align=align)}
    if op == "reconstruct":
        res = int(header.get("resolution", 64))
        mesh = engine.reconstruct(_shape_from(arrays, ""), resolution=res, align=align)
        return {}, {"vertices": mesh.vertices.astype(np.float32), "faces": mesh.faces, "parts": mesh.parts}
    src = engine.prepare(_shape_from(arrays, "source_"), "source", align)
    tgt = engine.prepare(_shape_from(arrays, "target_"), "target", align)
    # the source's own part labels, when the caller has them, guide the match (see Correspondence.correspond)
    out = _correspond_arrays(engine.correspond(src, tgt, source_labels=arrays.get("source_labels")), "")
    if header.get("both"):
        out.update(_correspond_arrays(engine.correspond(tgt, src), "reverse_"))
    return {}, out


def _correspond_arrays(res, prefix: str) -> dict[str, np.ndarray]:
    out = {
        f"{prefix}mapped": res.mapped.astype(np.float32),
        f"{prefix}confidence": res.confidence.astype(np.float32),
        f"{prefix}source_index": res.source_index,
    }
    if res.source_face is not None:
        out[f"{prefix}source_face"] = res.source_face
        out[f"{prefix}source_bary"] = res.source_bary.astype(np.float32)
    return out


class Server:
    def __init__(self, bind: str = DEFAULT_BIND, checkpoint: str | None = None, device: str | None = None,
                 max_vertices: int = 2_000_000, secret: str | None = None, queue_limit: int = 8,
                 parent_pid: int | None = None):
        if not is_loopback(bind) and not secret:
            raise ValueError(f"{bind} is not a loopback address: binding it needs --secret")
        self.bind, self.secret = bind, secret
        self.max_vertices, self.queue_limit, self.parent_pid = max_vertices, queue_limit, parent_pid
        self.engines = Engines(checkpoint, device, max_vertices)
        self.ctx = zmq.Context()
        self.sock = self.ctx.socket(zmq.ROUTER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.MAXMSGSIZE, max_vertices * 3 * 8 * 2 + (1 << 20))
        self.endpoint = self._bind(bind)
        self.wake_recv = self.ctx.socket(zmq.PULL)
        self.wake_recv.bind(f"inproc://wake-{id(self)}")
        self._wake_addr = f"inproc://wake-{id(self)}"
        self.pending: dict[bytes, collections.deque[Job]] = {}
        self.turns: collections.deque[bytes] = collections.deque()
        self.work: queue.Queue[Job | None] = queue.Queue(maxsize=1)
        self.done: queue.Queue[list[bytes]] = queue.Queue()
        self.busy = False
        self.stopping = threading.Event()
        self.worker = threading.Thread(target=self._work, name="model-worker", daemon=True)

    def _bind(self, bind: str) -> str:
        try:
            self.sock.bind(bind)
        except zmq.ZMQError as exc:
            raise ValueError(f"cannot bind {bind}: {exc}") from None
        return self.sock.getsockopt(zmq.LAST_ENDPOINT).decode()

    # ------------------------------------------------------------------ main thread
    def serve(self) -> None:
        self.worker.start()
        poller = zmq.Poller()
        poller.register(self.sock, zmq.POLLIN)
        poller.register(self.wake_recv, zmq.POLLIN)
        info = self.engines.default.info()
        log.info("serving %s on %s (%s, device %s)", info["category"], self.endpoint,
                 f"stage {info['stage']} epoch {info['epoch']}", info["device"])
        print(f"ready {self.endpoint}", flush=True)
        try:
            while not self.stopping.is_set():
                events = dict(poller.poll(500))
                if self.wake_recv in events:
                    while self.wake_recv.poll(0):
                        self.wake_recv.recv()
                self._send_done()
                if self.sock in events:
                    for _ in range(64):  # drain without starving replies
                        try:
                            frames = self.sock.recv_multipart(zmq.NOBLOCK)
                        except zmq.Again:
                            break
                        self._receive(frames)
                self._dispatch()
                if self.parent_pid and not _alive(self.parent_pid):
                    log.info("parent process %d is gone: stopping", self.parent_pid)
                    break
        finally:
            self.close()

    def _receive(self, frames: list[bytes]) -> None:
        envelope, body = _split_envelope(frames)
        request_id = None
        try:
            header, arrays = protocol.decode(body, max_elements=self.max_vertices * 3 * 2 + 16)
            request_id = header.get("id")
            self._check_secret(header)
            op = header.get("op")
            if op not in protocol.OPS:
                raise ProtocolError("unknown_op", f"unknown op {op!r}; ops are {', '.join(protocol.OPS)}")
            if op in ("ping", "info"):
                self._reply(envelope, self._quick(op, request_id), op, arrays, time.perf_counter())
                return
            client = envelope[0] if envelope else b""
            q = self.pending.setdefault(client, collections.deque())
            if len(q) >= self.queue_limit:
                raise ProtocolError("busy", f"{len(q)} requests of yours are already queued; wait for replies")
            if client not in self.turns:
                self.turns.append(client)
            q.append(Job(envelope, header, arrays))
        except ProtocolError as exc:
            self._reply(envelope, protocol.error_reply(request_id, exc.code, str(exc)), "?", {}, time.perf_counter())

    def _check_secret(self, header: dict) -> None:
        if self.secret and not hmac.compare_digest(str(header.get("secret", "")).encode(), self.secret.encode()):
            raise ProtocolError("unauthorized", "missing or wrong secret")

    def _quick(self, op: str, request_id: Any) -> list[bytes]:
        if op == "ping":
            return protocol.ok_reply(request_id, busy=self.busy, queued=sum(map(len, self.pending.values())))
        info = self.engines.default.info()
        return protocol.ok_reply(request_id, model=info, categories=self.engines.categories,
                                 device=info["device"], limits={"max_vertices": self.max_vertices,
                                                                "queue_per_client": self.queue_limit})

    def _dispatch(self) -> None:
        """Hand the next job to the worker, round-robin over clients."""
        if self.busy or not self.turns:
            return
        client = self.turns.popleft()
        q = self.pending[client]
        job = q.popleft()
        if q:
            self.turns.append(client)
        else:
            del self.pending[client]
        self.busy = True
        self.work.put(job)

    def _send_done(self) -> None:
        while True:
            try:
                frames = self.done.get_nowait()
            except queue.Empty:
                return
            self.busy = False
            self.sock.send_multipart(frames)

    def _reply(self, envelope, frames, op, arrays, started) -> None:
        self.sock.send_multipart([*envelope, *frames])
        _log_request(op, arrays, started)

    # ------------------------------------------------------------------ worker thread
    def _work(self) -> None:
        wake = self.ctx.socket(zmq.PUSH)
        wake.setsockopt(zmq.LINGER, 0)
        wake.connect(self._wake_addr)
        while True:
            job = self.work.get()
            if job is None:
                break
            request_id = job.header.get("id")
            try:
                fields, arrays = run_model_op(self.engines, job.header, job.arrays)
                frames = protocol.ok_reply(request_id, arrays, **fields)
            except (ValueError, TypeError) as exc:
                frames = protocol.error_reply(request_id, "bad_input", str(exc))
            except Exception as exc:  # a bug or out of memory: report it, keep serving
                log.exception("request %r failed", request_id)
                frames = protocol.error_reply(request_id, "internal", f"{type(exc).__name__}: {exc}")
            _log_request(job.header.get("op"), job.arrays, job.received)
            self.done.put([*job.envelope, *frames])
            wake.send(b"")
        wake.close()

    def stop(self) -> None:
        self.stopping.set()

    def close(self) -> None:
        self.work.put(None)
        self.worker.join(timeout=5)
        self.sock.close(0)
        self.wake_recv.close(0)
        self.ctx.term()


def _split_envelope(frames: list[bytes]) -> tuple[list[bytes], list[bytes]]:
    """ROUTER frames -> (routing envelope incl. the empty delimiter REQ sends, message)."""
    for i, f in enumerate(frames[1:], start=1):
        if len(f) == 0:
            return frames[: i + 1], frames[i + 1 :]
    return frames[:1], frames[1:]


def _log_request(op: Any, arrays: dict[str, np.ndarray], started: float) -> None:
    sizes = " ".join(f"{k}={'x'.join(map(str, v.shape))}" for k, v in arrays.items())
    log.info("%s %s %.1f ms", op, sizes or "-", (time.perf_counter() - started) * 1000)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def main(argv: Iterable[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m server", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bind", default=DEFAULT_BIND, help=f"ZeroMQ endpoint (default {DEFAULT_BIND})")
    ap.add_argument("--checkpoint", default=None, help="checkpoint file (default: shipped per-category models)")
    ap.add_argument("--device", default=None, help="cuda or cpu (default: cuda when available)")
    ap.add_argument("--max-vertices", type=int, default=2_000_000, help="largest shape accepted")
    ap.add_argument("--secret", default=os.environ.get("CORR_SERVER_SECRET"),
                    help="shared secret clients must send; required for non-loopback --bind")
    ap.add_argument("--parent-pid", type=int, default=None, help="exit when this process is gone")
    ap.add_argument("--log-level", default="INFO")
    args = ap.parse_args(list(argv) if argv is not None else None)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(message)s")
    try:
        server = Server(args.bind, args.checkpoint, args.device, args.max_vertices, args.secret,
                        parent_pid=args.parent_pid)
    except (ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: server.stop())
    server.serve()
    return 0
