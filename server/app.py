"""The model server: a ZeroMQ ROUTER socket in front of the correspondence engine.

    python -m server [--bind tcp://127.0.0.1:5555] [--checkpoint FILE] [--device cuda|cpu]

One thread owns the socket and answers `ping` and `info` at once; the model work runs on
a worker thread, one request at a time, taken round-robin from per-client queues so one
busy client cannot starve the others.  Every request is validated before it reaches the
model, and every failure becomes an error reply: the server never dies on a message.
The wire format, the table of ops and the signing with --secret live in server/protocol.py.
"""
from __future__ import annotations

import argparse
import collections
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

from . import curve as curvezmq
from . import protocol
from .cache import PreparedCache, shape_key
from .client import key_from_file
from .protocol import AUTO_CATEGORY, ProtocolError

log = logging.getLogger("corr-server")
DEFAULT_BIND = "tcp://127.0.0.1:5555"
# Requests waiting, from all clients together: each holds its arrays until its turn, and a
# client's own limit (queue_limit) counts per socket, so many sockets could queue without end.
MAX_QUEUED = 64
MAX_QUEUED_BYTES = 2 * 1024**3
WORKER_GRACE_S = 5.0  # on stopping, how long a running request may take to finish
STOP_LINGER_S = 1.0  # on stopping, how long the last replies (finished or shutting_down) may take to go out
SHUTTING_DOWN = "the server is stopping and will not answer this request: send it again once a server is back"
ELEMENTS_PER_VERTEX = 18  # a request holds two meshes, each ~2 faces a vertex: 2 * (3 + 2 * 3) values


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
    params: dict[str, Any]
    arrays: dict[str, np.ndarray]
    received: float = field(default_factory=time.perf_counter)
    cancel: threading.Event = field(default_factory=threading.Event)  # set by op "cancel" while it runs
    progress: tuple[str, int, int] | None = None  # while it runs: (stage, points done, points in the pass)

    @property
    def nbytes(self) -> int:
        """What its arrays hold while it waits (`Server.queued_bytes`)."""
        return sum(a.nbytes for a in self.arrays.values())


class Engines:
    """Correspondence engines by category, loaded on first use and kept."""

    def __init__(self, checkpoint: str | None, device: str | None, max_points: int):
        from model import Correspondence, shipped_categories  # torch loads here, not at import

        self._load = Correspondence.load
        self.checkpoint, self.device, self.max_points = checkpoint, device, max_points
        self.categories = shipped_categories()
        self._engines: dict[str, Any] = {}
        self.default = self.get(None)

    def served(self) -> list[str]:
        """The categories a request may name: the one --checkpoint model's, or every shipped one."""
        return [self.default.category] if self.checkpoint else list(self.categories)

    def checkpoint_names(self) -> dict[str, str]:
        """Category -> the checkpoint file serving it (for the add-on's category menu)."""
        if self.checkpoint:
            return {self.default.category: os.path.basename(self.checkpoint)}
        return {c: f"{c}.pth" for c in self.categories}

    def get(self, category: str | None):
        default = self._engines.get("")
        key = "" if default is not None and category == default.category else category or ""  # one engine each
        if key not in self._engines:
            if self.checkpoint and category:
                raise ValueError(f"category {category!r}: this server was started with --checkpoint and serves only "
                                 f"{self.default.category!r}")
            if category and category not in self.categories:
                case = " (names are lower case)" if category.lower() in self.categories else ""
                raise ValueError(f"category {category!r}: this server serves "
                                 f"{', '.join(map(repr, self.categories))}{case}")
            self._engines[key] = self._load(self.checkpoint if not category else None, device=self.device,
                                            category=category, max_points=self.max_points)
        return self._engines[key]


# ---------------------------------------------------------------------------------------------

# Points from which a pass of f or g is logged as it goes (a 200k-point pass takes about a second on CPU).
LONG_PASS = 200_000
# Shapes whose rebuild distances from E's codes (category "auto") are kept: a float per
# shape and served model, so that a Transfer's target sent once per source is ranked once.
RANKED_ENTRIES = 256


def _shape_from(arrays: dict[str, np.ndarray], prefix: str):
    verts, faces = arrays[f"{prefix}vertices"], arrays.get(f"{prefix}faces")  # the table made vertices required
    return verts if faces is None else (verts, faces)


def _prepared(engine, cache: PreparedCache, params: dict[str, Any], arrays: dict[str, np.ndarray], prefix: str):
    """The shape `prefix` of a request, prepared (or found prepared) for this engine and align mode."""
    key = shape_key(arrays, prefix, engine.category, params["align"])
    name = prefix.rstrip("_") or "shape"
    return cache.get(key, lambda: engine.prepare(_shape_from(arrays, prefix), name, params["align"]))


class Cancelled(Exception):
    """The client gave up the request (op "cancel") while it ran."""


def run_model_op(engines: Engines, cache: PreparedCache, op: str, params: dict[str, Any],
                 arrays: dict[str, np.ndarray], ranked: PreparedCache | None = None,
                 cancel: threading.Event | None = None, job: Job | None = None) -> tuple[dict, dict]:
    """-> (reply arrays, reply fields).  The arrays: protocol.OPS names them and casts them on
    sending.  The fields: `category`, the model that answered (category "auto": the one
    that rebuilds the request's shapes closest from E's codes, each shape's distances kept
    in `ranked`), and `rebuild_distance`, how far its rebuild from the fitted code of each
    shape lies from it (`Correspondence.rebuild_distance`).  ValueError for bad input.
    Passes over many points are logged as they go, so a long request shows in the log, and
    each step is kept on `job` (its `progress`), which pings report."""
    prefixes = ("source_", "target_") if op == "correspond" else ("",)
    if params["category"] == AUTO_CATEGORY:
        ranked = PreparedCache(max_entries=0) if ranked is None else ranked
        params = {**params, "category": _likeliest_category(engines, ranked, params, arrays, prefixes, cancel, job)}
    engine = engines.get(params["category"])
    with engine.reporting(_long_pass_logger(op, cancel, job)):
        shapes = {p: _prepared(engine, cache, params, arrays, p) for p in prefixes}
        out = _model_op(engine, op, params, arrays, shapes)
        try:
            distances = _rebuild_distances(engine, shapes)
        except Cancelled:
            raise
        except Exception:  # a diagnostic of a finished answer: if it fails (a bug), the answer stands
            log.exception("the rebuild distance failed; the reply goes without it")
            distances = dict.fromkeys(prefixes)
    fields = {"category": engine.category,
              "rebuild_distance": distances[""] if op != "correspond" else
              {"source": distances["source_"], "target": distances["target_"]}}
    return out, fields


def _rebuild_distances(engine, shapes: dict[str, Any]) -> dict[str, float]:
    return {p: round(engine.rebuild_distance(prep), 4) for p, prep in shapes.items()}


def _likeliest_category(engines: Engines, ranked: PreparedCache, params: dict[str, Any],
                        arrays: dict[str, np.ndarray], prefixes: tuple[str, ...],
                        cancel: threading.Event | None = None, job: Job | None = None) -> str:
    """The served category whose model rebuilds the request's shapes closest from E's codes,
    summed (`rebuild_distance(fitted=False)`: each shape encoded by every model, prepared
    only by the one chosen).  A model that cannot take the shapes is passed over; when none
    can, its error stands."""
    served = engines.served()
    if len(served) == 1:
        return served[0]
    summed, refused = {}, None
    for category in served:
        engine = engines.get(category)
        try:
            with engine.reporting(_long_pass_logger(f"auto category ({category})", cancel, job)):
                summed[category] = sum(
                    ranked.get(shape_key(arrays, p, f"{category} from E's code", params["align"]),
                               lambda p=p: engine.rebuild_distance(_shape_from(arrays, p), params["align"], fitted=False))
                    for p in prefixes)
        except ValueError as exc:
            log.info("auto category: the %s model cannot take the shapes: %s", category, exc)
            refused = exc
    if not summed:
        raise refused
    chosen = min(summed, key=summed.get)
    log.info("auto category: %s (rebuild distances from E's codes %s)", chosen,
             ", ".join(f"{c} {d:.3f}" for c, d in summed.items()))
    return chosen


def _progress(job: Job | None) -> dict[str, Any] | None:
    """What a ping says of the running request: its id, stage and how far the pass is."""
    if job is None or job.progress is None:
        return None
    stage, done, total = job.progress
    return {"request": job.header.get("id"), "stage": stage, "done": done, "total": total}


def _long_pass_logger(op: str, cancel: threading.Event | None = None, job: Job | None = None):
    """A progress callback that logs each quarter of a pass over LONG_PASS points or more,
    keeps each report on `job` for pings to tell, and raises Cancelled once `cancel` is set:
    the request stops after the chunk in hand."""
    logged = {"done": 0, "quarter": 0}

    def report(stage: str, done: int, total: int) -> None:
        if cancel is not None and cancel.is_set():
            raise Cancelled
        if job is not None:
            job.progress = (stage, done, total)  # one assignment: the serving thread reads it whole
        if done <= logged["done"]:  # a new pass
            logged["quarter"] = 0
        logged["done"] = done
        quarter = 4 * done // total
        if total >= LONG_PASS and quarter > logged["quarter"]:
            logged["quarter"] = quarter
            log.info("%s: %s, %d%% of %d points", op, stage, 25 * quarter, total)
    return report


def _model_op(engine, op: str, params: dict[str, Any], arrays: dict[str, np.ndarray], shapes: dict[str, Any]) -> dict:
    """The op on its shapes, prepared (`shapes`: by array prefix)."""
    if op == "segment":
        prep = shapes[""]
        return {"parts": engine.segment(prep), "rotation": prep.frame.rotation}
    if op == "reconstruct":
        mesh = engine.reconstruct(shapes[""], resolution=params["resolution"])
        return {"vertices": mesh.vertices, "faces": mesh.faces, "parts": mesh.parts, "rotation": mesh.rotation}
    src, tgt = shapes["source_"], shapes["target_"]
    # the source's own part labels, when the caller has them, guide the match (see Correspondence.correspond)
    res = engine.correspond(src, tgt, source_labels=arrays.get("source_labels"))
    out = {**_correspond_arrays(res, ""), "source_rotation": res.source_rotation, "target_rotation": res.target_rotation}
    if params["source_parts"]:
        out["source_parts"] = engine.segment(src)
    if params["both"]:
        out.update(_correspond_arrays(engine.correspond(tgt, src), "reverse_"))
    return out


def _correspond_arrays(res, prefix: str) -> dict[str, np.ndarray]:
    out = {f"{prefix}mapped": res.mapped, f"{prefix}confidence": res.confidence, f"{prefix}source_index": res.source_index}
    if res.source_face is not None:
        out.update({f"{prefix}source_face": res.source_face, f"{prefix}source_bary": res.source_bary})
    return out


class Server:
    def __init__(self, bind: str = DEFAULT_BIND, checkpoint: str | None = None, device: str | None = None,
                 max_vertices: int = 2_000_000, key: str | None = None, queue_limit: int = 8,
                 parent_pid: int | None = None, cache: PreparedCache | None = None, curve: bool = False):
        """`key`: the shared secret (--secret); with it every message both ways is signed.
        `curve`: also take connections over CurveZMQ only, keyed by `key` (server/curve.py).
        `cache`: prepared shapes kept between requests (server/cache.py)."""
        if urlparse(bind).scheme not in ("tcp", "ipc", "inproc"):
            raise ValueError(f"--bind {bind!r} is not a ZeroMQ endpoint such as tcp://127.0.0.1:5555")
        if not is_loopback(bind) and not key:
            raise ValueError(f"{bind} is not a loopback address: binding it needs --secret-file, "
                             "CORR_SERVER_SECRET or --secret")
        if curve and not key:
            raise ValueError("--curve (or CORR_SERVER_CURVE) needs a key: --secret-file, CORR_SERVER_SECRET or --secret")
        self.bind = bind
        self.max_vertices, self.queue_limit, self.parent_pid = max_vertices, queue_limit, parent_pid
        # our actual parent (not just some process to outlive): its death also shows as a new ppid
        self._parent_is_ppid = parent_pid is not None and parent_pid == os.getppid()
        max_elements = ELEMENTS_PER_VERTEX * max_vertices
        self.session = protocol.Session(key, max_elements=max_elements, side="server")
        self.engines = Engines(checkpoint, device, max_vertices)
        self.cache = cache or PreparedCache()
        self.ranked = PreparedCache(max_entries=RANKED_ENTRIES)  # category "auto"'s distances
        self.handled: collections.Counter[str] = collections.Counter()  # model requests answered, by op
        # which run of a server this is, in every ping: a client waiting on a request can tell
        # that the server holding it was restarted (and the request lost)
        self.instance = os.urandom(8).hex()
        # the client socket has a context of its own: closing it waits for the last replies to go
        # out (STOP_LINGER_S), which a context still holding the worker's socket could not do
        self.ctx, self.wake_ctx = zmq.Context(), zmq.Context()
        self.sock = self.ctx.socket(zmq.ROUTER)
        self.sock.setsockopt(zmq.LINGER, 0)
        # bytes: every value a float64, plus header and signature; zmq drops bigger frames unread
        # (the client checks against `info`'s max_message_bytes before sending one)
        self.max_message_bytes = max_elements * 8 + protocol.MAX_HEADER_BYTES + 1024
        self.sock.setsockopt(zmq.MAXMSGSIZE, self.max_message_bytes)
        self.auth = curvezmq.serve(self.sock, key) if curve else None  # ZAP: admits only our key's client
        try:
            self.endpoint = self._bind(bind)
        except ValueError:
            self._stop_auth()
            raise
        self.wake_recv = self.wake_ctx.socket(zmq.PULL)
        self.wake_recv.bind(f"inproc://wake-{id(self)}")
        self._wake_addr = f"inproc://wake-{id(self)}"
        self.pending: dict[bytes, collections.deque[Job]] = {}
        self.queued_bytes = 0  # the arrays of the jobs in `pending`
        self.running: Job | None = None  # the request the worker runs
        self.turns: collections.deque[bytes] = collections.deque()
        self.work: queue.Queue[Job | None] = queue.Queue(maxsize=1)
        self.done: queue.Queue[list[bytes]] = queue.Queue()
        self.busy = False
        self.stopping = threading.Event()
        self.worker = threading.Thread(target=self._work, name="model-worker", daemon=True)

    def _bind(self, bind: str) -> str:
        if "[" in bind:  # an IPv6 address such as tcp://[::1]:5555
            self.sock.setsockopt(zmq.IPV6, 1)
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
        log.info("serving %s on %s (%s, device %s, %s)", info["category"], self.endpoint,
                 f"stage {info['stage']} epoch {info['epoch']}", info["device"], info["precision"])
        if self.auth is None and not is_loopback(self.bind):
            log.warning("%s is reachable from other machines and connections are not CurveZMQ: a peer without the "
                        "key can still make this server read large messages before refusing them; add --curve",
                        self.endpoint)
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
                if self.parent_pid and not _alive(self.parent_pid, self._parent_is_ppid):
                    log.info("parent process %d is gone: stopping", self.parent_pid)
                    break
        finally:
            self.close()

    def _receive(self, frames: list[bytes]) -> None:
        envelope, body = _split_envelope(frames)
        header: dict[str, Any] = {}  # the request's, once it verified
        try:
            header, params, arrays = self.session.read_request(body)  # verified and checked against OPS
            op = header["op"]
            if not protocol.OPS[op].model:
                self._reply(envelope, self._quick(op, header.get("id"), params), op, arrays, time.perf_counter())
                return
            client = envelope[0] if envelope else b""
            q = self.pending.get(client, ())  # a refused client leaves no entry behind
            if len(q) >= self.queue_limit:
                raise ProtocolError("busy", f"{len(q)} requests of yours are already queued; wait for replies")
            job = Job(envelope, header, params, arrays)
            queued = sum(map(len, self.pending.values()))
            if queued >= MAX_QUEUED or (queued and self.queued_bytes + job.nbytes > MAX_QUEUED_BYTES):
                raise ProtocolError("busy", f"the server has {queued} requests ({self.queued_bytes / 1e6:.0f} MB) "
                                            f"queued from all its clients; try again later")
            if client not in self.turns:
                self.turns.append(client)
            self.pending.setdefault(client, collections.deque()).append(job)
            self.queued_bytes += job.nbytes
        except ProtocolError as exc:
            request_id = (exc.header or header).get("id")
            # a message that did not verify is answered unsigned: see Session.error
            error = self.session.error(request_id, exc.code, str(exc), sign=bool(header) or exc.verified)
            self._reply(envelope, error, "?", {}, time.perf_counter())
        except Exception as exc:  # a bug: report it, keep serving
            log.exception("message could not be handled")
            error = self.session.error(header.get("id"), "internal", f"{type(exc).__name__}: {exc}", sign=bool(header))
            self._reply(envelope, error, "?", {}, time.perf_counter())

    def _quick(self, op: str, request_id: Any, params: dict[str, Any]) -> list[bytes]:
        if op == "cancel":
            return self.session.reply(request_id, op, cancelled=self._cancel(params["request"]))
        if op == "ping":
            return self.session.reply(request_id, op, busy=self.busy, queued=sum(map(len, self.pending.values())),
                                      prepared=self.cache.stats(), handled=dict(self.handled), instance=self.instance,
                                      progress=_progress(self.running))
        info = self.engines.default.info()
        return self.session.reply(request_id, op, model=info, categories=self.engines.served(),
                                  checkpoints=self.engines.checkpoint_names(), device=info["device"],
                                  cache={k: v for k, v in self.cache.stats().items() if k.startswith("max_")},
                                  limits={"max_vertices": self.max_vertices, "queue_per_client": self.queue_limit,
                                          "max_message_bytes": self.max_message_bytes})

    def _cancel(self, request_id: str | None) -> str:
        """Give up request `request_id`: "queued" (dropped, answered "cancelled"), "running"
        (it stops at its next pass over the points) or "unknown" (done, or never seen)."""
        for client, q in self.pending.items():
            for job in q:
                if job.header.get("id") == request_id:
                    q.remove(job)
                    self.queued_bytes -= job.nbytes
                    if not q:
                        del self.pending[client]
                        self.turns.remove(client)
                    self._answer(job, "cancelled", "cancelled by the client")
                    return "queued"
        if self.running is not None and request_id is not None and self.running.header.get("id") == request_id:
            self.running.cancel.set()
            return "running"
        return "unknown"

    def _dispatch(self) -> None:
        """Hand the next job to the worker, round-robin over clients; none once stopping (a
        stop that lands while the running job finishes leaves the queue to `close`)."""
        if self.busy or not self.turns or self.stopping.is_set():
            return
        client = self.turns.popleft()
        q = self.pending[client]
        job = q.popleft()
        self.queued_bytes -= job.nbytes
        if q:
            self.turns.append(client)
        else:
            del self.pending[client]
        self.busy, self.running = True, job
        self.work.put(job)

    def _send_done(self) -> None:
        while True:
            try:
                frames = self.done.get_nowait()
            except queue.Empty:
                return
            self.busy, self.running = False, None
            self.sock.send_multipart(frames)

    def _reply(self, envelope, frames, op, arrays, started) -> None:
        self.sock.send_multipart([*envelope, *frames])
        _log_request(op, arrays, started)

    # ------------------------------------------------------------------ worker thread
    def _work(self) -> None:
        wake = self.wake_ctx.socket(zmq.PUSH)
        wake.setsockopt(zmq.LINGER, 0)
        wake.connect(self._wake_addr)
        try:
            self._serve_jobs(wake)
        except zmq.ContextTerminated:  # the server closed while a job ran: its reply has no one to go to
            pass
        finally:
            wake.close()

    def _serve_jobs(self, wake: zmq.Socket) -> None:
        while True:
            job = self.work.get()
            if job is None:
                break
            request_id, op = job.header.get("id"), job.header["op"]
            try:
                arrays, fields = run_model_op(self.engines, self.cache, op, job.params, job.arrays, self.ranked,
                                              job.cancel, job)
                frames = self.session.reply(request_id, op, arrays, **fields)
            except Cancelled:
                frames = self.session.error(request_id, "cancelled", "cancelled by the client")
            except (ValueError, TypeError) as exc:
                frames = self.session.error(request_id, "bad_input", str(exc))
            except Exception as exc:  # a bug or out of memory: report it, keep serving
                log.exception("request %r failed", request_id)
                frames = self.session.error(request_id, "internal", f"{type(exc).__name__}: {exc}")
            self.cache.settle()
            self.handled[op] += 1
            _log_request(op, job.arrays, job.received, self.cache)
            self.done.put([*job.envelope, *frames])
            wake.send(b"")

    def stop(self) -> None:
        self.stopping.set()

    def close(self) -> None:
        """Stop: queued requests are answered `shutting_down` at once, the running one gets its
        reply if it finishes within WORKER_GRACE_S and `shutting_down` if not, and those
        last replies have STOP_LINGER_S to go out before the socket closes."""
        self._answer_queued()
        if self.worker.is_alive():
            self.work.put(None)
            self.worker.join(timeout=WORKER_GRACE_S)
        self._send_done()
        if self.running is not None:  # still running after the grace
            log.info("a request is still running: stopping without waiting for it")
            self.running.cancel.set()
            self._answer(self.running, "shutting_down", SHUTTING_DOWN)
        self.sock.close(linger=int(STOP_LINGER_S * 1000))
        self._stop_auth()
        self.ctx.term()  # returns once the last replies are out, or STOP_LINGER_S has passed
        self.wake_recv.close(0)
        if not self.worker.is_alive():  # else the (daemon) worker ends with the process, not after the job
            self.wake_ctx.term()

    def _stop_auth(self) -> None:
        if self.auth is not None:
            self.auth.stop()
            self.auth = None

    def _answer_queued(self) -> None:
        for q in self.pending.values():
            for job in q:
                self._answer(job, "shutting_down", SHUTTING_DOWN)
        self.pending.clear()
        self.turns.clear()
        self.queued_bytes = 0

    def _answer(self, job: Job, code: str, message: str) -> None:
        self._reply(job.envelope, self.session.error(job.header.get("id"), code, message), job.header["op"],
                    job.arrays, job.received)


def _split_envelope(frames: list[bytes]) -> tuple[list[bytes], list[bytes]]:
    """ROUTER frames -> (routing envelope, message): the client's identity, and the empty
    delimiter when the client sent one (REQ does, a DEALER may not).  Only right after the
    identity: an empty array further on is data, not a delimiter."""
    if len(frames) > 1 and not frames[1]:
        return frames[:2], frames[2:]
    return frames[:1], frames[1:]


def _log_request(op: Any, arrays: dict[str, np.ndarray], started: float, cache: PreparedCache | None = None) -> None:
    sizes = " ".join(f"{k}={'x'.join(map(str, v.shape))}" for k, v in arrays.items())
    kept = "" if cache is None else f" (prepared shapes kept: {len(cache)}, {cache.bytes / 1e6:.0f} MB, {cache.hits} reused)"
    log.info("%s %s %.1f ms%s", op, sizes or "-", (time.perf_counter() - started) * 1000, kept)


def _alive(pid: int, is_parent: bool = False) -> bool:
    """Whether process `pid` still runs.  `is_parent`: it was our parent at start, so a new
    parent (we were handed to init or a subreaper) means it is gone, even while it lingers
    as a zombie that os.kill still finds."""
    if sys.platform == "win32":  # os.kill(pid, 0) there sends CTRL_C_EVENT, it does not probe
        return _alive_windows(pid)
    if is_parent and os.getppid() != pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


_PROCESS_QUERY_LIMITED_INFORMATION, _ERROR_ACCESS_DENIED, _STILL_ACTIVE = 0x1000, 5, 259  # Windows API values


def _alive_windows(pid: int) -> bool:
    import ctypes
    from ctypes import wintypes

    kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)
    kernel32.OpenProcess.restype = wintypes.HANDLE  # a pointer-sized handle, not the default int
    kernel32.OpenProcess.argtypes = (wintypes.DWORD, wintypes.BOOL, wintypes.DWORD)
    kernel32.GetExitCodeProcess.argtypes = (wintypes.HANDLE, ctypes.POINTER(wintypes.DWORD))
    kernel32.CloseHandle.argtypes = (wintypes.HANDLE,)
    handle = kernel32.OpenProcess(_PROCESS_QUERY_LIMITED_INFORMATION, False, pid)
    if not handle:  # no such process, unless it is one we may not open
        return ctypes.get_last_error() == _ERROR_ACCESS_DENIED
    try:
        code = wintypes.DWORD()
        return not kernel32.GetExitCodeProcess(handle, ctypes.byref(code)) or code.value == _STILL_ACTIVE
    finally:
        kernel32.CloseHandle(handle)


def _key(secret: str | None, secret_file: str | None) -> str | None:
    """The shared key: --secret, else --secret-file, else CORR_SERVER_SECRET."""
    if secret is not None and secret_file is not None:
        raise ValueError("give the key with --secret or --secret-file, not both")
    if secret_file is None:
        return secret if secret is not None else os.environ.get("CORR_SERVER_SECRET")
    return key_from_file(secret_file, "--secret-file")


def main(argv: Iterable[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m server", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bind", default=DEFAULT_BIND, help=f"ZeroMQ endpoint (default {DEFAULT_BIND})")
    ap.add_argument("--checkpoint", default=None, help="checkpoint file (default: shipped per-category models)")
    ap.add_argument("--device", default=None, help="cuda or cpu (default: cuda when available)")
    ap.add_argument("--max-vertices", type=int, default=2_000_000, help="largest shape accepted")
    ap.add_argument("--secret-file", default=None, metavar="PATH",
                    help="file holding the key both ends sign every message with (HMAC-SHA256, never sent), "
                         "readable by its owner only (chmod 600); or set CORR_SERVER_SECRET. "
                         "A key is required for a non-loopback --bind")
    ap.add_argument("--secret", default=None,
                    help="the key itself: other local users can read it in the process list, "
                         "so prefer --secret-file or CORR_SERVER_SECRET")
    ap.add_argument("--curve", action="store_true",
                    help="take connections over CurveZMQ only, with keys derived from the key: the handshake "
                         "shuts out peers without it before they send anything, and the traffic is encrypted. "
                         "Clients need curve=True or CORR_SERVER_CURVE=1, which also turns this on")
    ap.add_argument("--parent-pid", type=int, default=None, help="exit when this process is gone")
    ap.add_argument("--log-level", default="INFO", type=str.upper, choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    args = ap.parse_args(list(argv) if argv is not None else None)
    if args.parent_pid is not None and not _alive(args.parent_pid):
        ap.error(f"--parent-pid {args.parent_pid}: no such process")
    try:
        key = _key(args.secret, args.secret_file)
    except ValueError as exc:
        ap.error(str(exc))
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(message)s")
    try:
        server = Server(args.bind, args.checkpoint, args.device, args.max_vertices, key=key,
                        parent_pid=args.parent_pid, curve=args.curve or curvezmq.in_environment())
    except (ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: server.stop())
    server.serve()
    if server.worker.is_alive():  # a request still running: the interpreter cannot finish under it
        logging.shutdown()
        os._exit(0)
    return 0
