"""Client for the correspondence server: plain Python + numpy + pyzmq, no torch.

    from server.client import Client
    with Client("tcp://127.0.0.1:5555") as c:
        c.ping()
        res = c.correspond(src_vertices, tgt_vertices, source_faces=src_faces)
        res["source_face"], res["source_bary"], res["mapped"], res["confidence"]

A timeout raises ServerError("timeout"); the socket is then rebuilt, so the next call
works as soon as the server is back (the "lazy pirate" pattern).  With a key (`secret=`,
or CORR_SERVER_SECRET in the environment) every request and reply is signed; see
server/protocol.py for the wire format.  With `curve=True` (or CORR_SERVER_CURVE=1) the
connection is also a CurveZMQ one, as a server started with --curve requires (server/curve.py).
"""
from __future__ import annotations

import contextlib
import itertools
import os
import stat
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import zmq
from zmq.utils.monitor import recv_monitor_message

from . import curve as curvezmq
from . import protocol

DEFAULT_ADDRESS = "tcp://127.0.0.1:5555"
REPLY_MAX_ELEMENTS = 1 << 31  # replies are about as big as what was sent; this only stops nonsense
CANCEL_TIMEOUT = 2.0  # seconds to wait for the server to take a request back (it answers at once)
# While a model request runs, every PROBE_EVERY seconds a ping on a socket of its own asks
# which run of the server answers: another than the one that took the request (named by a
# ping sent right behind it) means it was restarted and the request is lost, said then
# rather than after the whole timeout.
PROBE_EVERY = 15.0
PROBE_TIMEOUT = 2.0
# A server that answers no probe for this many probe intervals (about 45 s) is taken to be
# gone (crashed, killed for memory): said then rather than after the whole timeout.
SILENT_PROBES = 3
# With a `progress` callback, the probes come this often (seconds), and each tells how far
# the request is; a server is still taken to be gone after SILENT_PROBES * PROBE_EVERY s.
PROGRESS_EVERY = 2.0


# A correspond reply's arrays with a row per target vertex (protocol.OPS)
PER_TARGET = ("mapped", "confidence", "source_index", "source_face", "source_bary")

# A shape whose rebuild distance (a reply's `rebuild_distance`, protocol.py) is above this
# does not look like the answering model's category (docs/model.md, *Rebuild distance*).
UNLIKE_DISTANCE = 0.08
# Mean confidence below which a report suggests auto-alignment: upright real chairs score
# 0.57-0.75, turned ones 0.53-0.67 and one lying on its side 0.46 (docs/blender.md).
LOW_CONFIDENCE = 0.55


def unlike_warning(name: str, category: str | None, distance: float | None) -> str | None:
    """The warning for a mesh whose rebuild lies over UNLIKE_DISTANCE off; None when it does not."""
    if distance is None or not distance > UNLIKE_DISTANCE:
        return None
    return f"{name} does not look like a {category} to its model (rebuilt {distance:.2f} of its diagonal off)"


def key_from_file(path: str, what: str = "key file") -> str:
    """The key in `path` (its first line), refused if other users could read or change it;
    `what` names the file in the message (the server says --secret-file)."""
    try:
        mode = os.stat(path).st_mode
        if sys.platform != "win32" and mode & (stat.S_IRWXG | stat.S_IRWXO):  # Windows has no such mode bits
            raise ValueError(f"{what} {path}: other users can read or change it (mode {stat.filemode(mode)}): "
                             f"run chmod 600 {path}")
        with open(path, encoding="utf-8-sig") as f:  # a byte-order mark (Notepad) is no part of the key
            key = f.readline().rstrip("\r\n")
    except OSError as exc:
        raise ValueError(f"{what} {path}: {exc.strerror or exc}") from None
    if not key:
        raise ValueError(f"{what} {path}: the first line, the key, is empty")
    return key


class ServerError(RuntimeError):
    """An error reply, or no reply: `code` says which (e.g. "timeout", "bad_input")."""

    def __init__(self, code: str, message: str):
        super().__init__(f"{code}: {message}")
        self.code, self.message = code, message


class Client:
    def __init__(self, address: str = DEFAULT_ADDRESS, timeout: float = 60.0, secret: str | None = None,
                 context: zmq.Context | None = None, curve: bool | None = None,
                 progress: Callable[[str, int, int], None] | None = None):
        """`secret`: the key shared with the server; None reads CORR_SERVER_SECRET, "" means none.
        `curve`: connect over CurveZMQ with keys derived from the secret (a server started with
        --curve); None reads CORR_SERVER_CURVE ("1" for yes).  `progress(stage, done, total)`:
        called about every PROGRESS_EVERY s while a model request runs on the server, with the
        step it is at ("matching: g onto the source") and the points done of the pass."""
        self.address, self.timeout, self.progress = address, timeout, progress
        key = secret if secret is not None else os.environ.get("CORR_SERVER_SECRET")
        self._key = key or ""
        self.curve = curve if curve is not None else curvezmq.in_environment()
        if self.curve and not self._key:  # said now, not at the first request
            raise ValueError("CurveZMQ (curve=True or CORR_SERVER_CURVE) needs the server's key: secret=, a key "
                             "file, or CORR_SERVER_SECRET")
        self.session = protocol.Session(key, max_elements=REPLY_MAX_ELEMENTS, side="client")
        self.server_instance: str | None = None  # the run of the server that last answered a ping or took a request
        self._own_ctx = context is None
        self.ctx = context or zmq.Context()
        self._ids = itertools.count(1)
        self._prefix = os.urandom(4).hex()
        self.sock: zmq.Socket | None = None
        self.monitor: zmq.Socket | None = None  # the socket's failed handshakes, said at once rather than timed out
        self.cancel: threading.Event | None = None
        self._server_limit: int | None = None
        # the header of the last reply: after a model op, `category` (the model that
        # answered) and `rebuild_distance` (protocol.py); and its arrays
        self.last_reply: dict[str, Any] = {}
        self.last_arrays: dict[str, np.ndarray] = {}

    def _socket(self) -> zmq.Socket:
        """The connected socket, built on first use (again after a drop).  Nothing is kept of
        one that could not be built whole: a socket never connected would block a send."""
        if self.sock is not None:
            return self.sock
        sock = monitor = None
        try:
            sock = self.ctx.socket(zmq.DEALER)
            sock.setsockopt(zmq.LINGER, 0)
            if "[" in self.address:  # an IPv6 address such as tcp://[::1]:5555
                sock.setsockopt(zmq.IPV6, 1)
            if self.curve:
                curvezmq.connect(sock, self._key)
            monitor = sock.get_monitor_socket(curvezmq.HANDSHAKE_FAILED)
            try:
                sock.connect(self.address)
            except zmq.ZMQError as exc:
                raise ValueError(f"cannot connect to {self.address!r}: {exc} "
                                 "(expected an endpoint such as tcp://127.0.0.1:5555)") from None
        except BaseException:
            _close(sock, monitor)
            raise
        self.sock, self.monitor = sock, monitor
        return sock

    def _drop_socket(self) -> None:
        _close(self.sock, self.monitor)
        self.sock = self.monitor = None

    def request(self, op: str, arrays: dict[str, np.ndarray] | None = None, timeout: float | None = None,
                **params: Any) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """Send one request, wait for its reply; raise ServerError on an error reply, a timeout,
        or ("cancelled") when `self.cancel` (a threading.Event, if set) fires while waiting.
        A request that protocol.OPS refuses raises ProtocolError (a ValueError) before sending."""
        request_id = self._next_id()
        frames = self.session.request(op, request_id, arrays, **params)  # checked against protocol.OPS here
        self._check_size(op, sum(len(f) for f in frames))
        sock = self._socket()
        sock.send_multipart([b"", *frames])
        probes = protocol.OPS[op].model
        # a ping right behind the request, on its connection, reaches the same run of the server:
        # its reply (at once, ahead of the request's) names the run that took the request
        ping_id = self._send_ping(sock) if probes else None
        taken_by: str | None = None
        silent_since: float | None = None  # when the probes stopped being answered
        every = PROGRESS_EVERY if self.progress is not None else PROBE_EVERY
        deadline = timeout if timeout is not None else self.timeout
        give_up = time.monotonic() + deadline
        while True:
            try:
                answered = self._wait(sock, min(give_up, time.monotonic() + every) if probes else give_up)
            except KeyboardInterrupt:  # Ctrl-C: the server must not go on with what no one waits for
                self._abandon(op, request_id)
                raise
            if not answered and probes and time.monotonic() < give_up and not self._cancelled():
                try:
                    now, progress = self._probe()
                except BaseException:  # Ctrl-C while probing: as while waiting, the server must stop
                    self._abandon(op, request_id)
                    raise
                if now is None:
                    silent_since = silent_since or time.monotonic() - every
                else:
                    silent_since = None
                if taken_by is not None and now is not None and now != taken_by:
                    self._drop_socket()
                    raise ServerError("restarted", f"the server at {self.address} was restarted while it held this "
                                                   f"{op} request, which is lost: send it again")
                silence = 0.0 if silent_since is None else time.monotonic() - silent_since
                if silence >= SILENT_PROBES * PROBE_EVERY:
                    self._abandon(op, request_id)
                    raise ServerError("gone", f"the server at {self.address} stopped answering while it held this "
                                              f"{op} request (no reply to pings over {silence:.0f} s): it may have "
                                              "crashed or run out of memory; see its log, start it again and send the "
                                              "request again")
                try:
                    self._tell(progress, request_id)
                except BaseException:  # the caller's callback failed (or Ctrl-C in it): no one waits now
                    self._abandon(op, request_id)
                    raise
                continue
            if not answered:
                self._abandon(op, request_id)
                if self._cancelled():
                    raise ServerError("cancelled", f"{op} cancelled")
                raise ServerError("timeout", f"no reply from {self.address} within {deadline:g} s")
            frames = sock.recv_multipart()
            body = frames[1:] if frames and frames[0] == b"" else frames
            try:
                reply, out = self.session.decode(body)
            except protocol.ProtocolError as exc:
                self._drop_socket()  # what else it carries (the ping's reply) is no more to be trusted
                raise self._refused(exc, request_id) from None
            if ping_id is not None and reply.get("id") == ping_id:
                taken_by = self.server_instance = reply.get("instance") or self.server_instance
                continue
            if reply.get("id") != request_id:
                continue  # a late reply to an earlier, timed-out request
            if not reply.get("ok"):
                err = reply.get("error") or {}
                raise ServerError(str(err.get("code", "error")), str(err.get("message", "")))
            try:
                protocol.check_arrays(op, "reply", out)
            except protocol.ProtocolError as exc:
                raise ServerError(exc.code, f"reply from {self.address}: {exc}") from None
            # decoded over the message's bytes, so read-only: a caller may want to edit them
            out = {name: np.array(a) for name, a in out.items()}
            self.last_reply, self.last_arrays = reply, out
            if op == "ping":
                self.server_instance = reply.get("instance", self.server_instance)
            return reply, out

    def _tell(self, progress: Any, request_id: str) -> None:
        """Hand what a ping said of this request's progress to the `progress` callback (a
        server that says it some other way is not understood, and not an error)."""
        if self.progress is None or not isinstance(progress, dict) or progress.get("request") != request_id:
            return
        stage, done, total = progress.get("stage"), progress.get("done"), progress.get("total")
        if isinstance(stage, str) and isinstance(done, int) and isinstance(total, int):
            self.progress(stage, done, total)

    def _next_id(self) -> str:
        return f"{self._prefix}-{next(self._ids)}"

    def _send_ping(self, sock: zmq.Socket) -> str:
        ping_id = self._next_id()
        sock.send_multipart([b"", *self.session.request("ping", ping_id)])
        return ping_id

    def _refused(self, exc: protocol.ProtocolError, request_id: str) -> ServerError:
        """The error for a reply that failed verification.  An unsigned error reply to this very
        request, to a client with a key, is the server refusing a request it could not
        authenticate (it signs no reply to those): its code, said as such."""
        header = exc.header or {}
        err = header.get("error")
        if (self.session.key and exc.code == "bad_signature" and header.get("sig") is None
                and header.get("id") == request_id and header.get("ok") is False and isinstance(err, dict)):
            return ServerError(str(err.get("code", "error")),
                               f"the server at {self.address} refused the request as unauthenticated: check that this "
                               f"client has the server's key{_server_said(header)}")
        return ServerError(exc.code, f"reply from {self.address}: {exc}{_server_said(header)}")

    def _cancelled(self) -> bool:
        return self.cancel is not None and self.cancel.is_set()

    def _abandon(self, op: str, request_id: str) -> None:
        """No one waits for this request any more: a fresh socket next time (no stale reply
        can arrive late), and a model request taken back from the server."""
        self._drop_socket()
        if protocol.OPS[op].model:
            self._give_up(request_id)

    def _probe(self) -> tuple[str | None, dict[str, Any] | None]:
        """(The run of the server that answers a ping now, on a socket of its own, and what it
        says of its running request); None when none answers (busy reading, coming back, or gone)."""
        with Client(self.address, timeout=PROBE_TIMEOUT, secret=self._key, context=self.ctx, curve=self.curve) as probe:
            try:
                said = probe.ping(timeout=PROBE_TIMEOUT)
            except ServerError:
                return None, None
            return said.get("instance"), said.get("progress")

    def _give_up(self, request_id: str) -> None:
        """Tell the server to drop or stop a request no one waits for any more, so that it
        does not hold up the next one (best effort: a server that is gone costs CANCEL_TIMEOUT)."""
        cancel, self.cancel = self.cancel, None  # the user's cancel must not stop this one too
        try:
            self.request("cancel", timeout=CANCEL_TIMEOUT, request=request_id)
        except ServerError:
            pass
        finally:
            self.cancel = cancel

    def _check_size(self, op: str, size: int) -> None:
        """A model request is first checked against the server's limit (`info`, asked once):
        ZeroMQ drops a message over it unread, which would look like a server that is down."""
        if not protocol.OPS[op].model:  # ping, info, cancel: a few hundred bytes
            return
        if self._server_limit is None:
            self._server_limit = int(self.info().get("limits", {}).get("max_message_bytes", 0))
        if self._server_limit and size > self._server_limit:
            raise ServerError("too_large", f"the {op} request is {size / 1e6:.0f} MB, over the server's limit of "
                                           f"{self._server_limit / 1e6:.0f} MB: send fewer vertices, or start the "
                                           f"server with a larger --max-vertices")

    def _wait(self, sock: zmq.Socket, give_up: float) -> bool:
        """Poll until a reply is there (True), or the deadline passes or a cancel fires (False);
        raise ServerError("handshake") when the connection's handshake fails."""
        poller = zmq.Poller()
        poller.register(sock, zmq.POLLIN)
        poller.register(self.monitor, zmq.POLLIN)
        while True:
            left = give_up - time.monotonic()
            if left <= 0 or self._cancelled():
                return False
            # in slices of at most a second: a ms count must fit a C int, and Ctrl-C gets a look-in
            ready = dict(poller.poll(int(min(left, 0.1 if self.cancel is not None else 1.0) * 1000) + 1))
            if self.monitor in ready:
                self._check_handshake()
            if sock in ready:
                return True

    def _check_handshake(self) -> None:
        event = recv_monitor_message(self.monitor)
        said = curvezmq.handshake_error(event["event"], event["value"], self.address, self.curve)
        if said is not None:
            self._drop_socket()  # the request never reached the server
            raise ServerError("handshake", said)

    # ------------------------------------------------------------------ typed operations
    def ping(self, timeout: float = 5.0) -> dict[str, Any]:
        return self.request("ping", timeout=min(timeout, self.timeout))[0]

    def info(self) -> dict[str, Any]:
        return self.request("info")[0]

    def reach(self, timeout: float, hint: str) -> None:
        """A short ping before the work, so that no server at all reads differently from a
        slow reply: ServerError("timeout", "no server answers at ADDRESS ...: HINT")."""
        try:
            self.ping(timeout=timeout)
        except ServerError as exc:
            if exc.code != "timeout":
                raise
            raise ServerError("timeout", f"no server answers at {self.address} (within "
                                         f"{min(timeout, self.timeout):g} s): {hint}") from None

    # align: False, True (any rotation) or "yaw" (upright shapes, about the up axis): protocol.ALIGN_MODES;
    # also the command line's "off" and "any"
    def segment(self, vertices, faces=None, category: str | None = None, align: bool | str = False) -> np.ndarray:
        sent, sent_faces, back = welded(centred(vertices)[0], faces)
        with _counts_as_given("shape", back):
            parts = self.request("segment", _shape("", sent, sent_faces), category=category or None,
                                 align=protocol.align_mode(align))[1]["parts"]
        if back is not None:
            self.last_arrays = unwelded(self.last_arrays, back, ("parts",))
            parts = self.last_arrays["parts"]
        return parts

    def correspond(self, source_vertices, target_vertices, source_faces=None, target_faces=None,
                   category: str | None = None, align: bool | str = False, both: bool = False,
                   source_labels=None, source_parts: bool = False) -> dict[str, np.ndarray]:
        """Per target vertex: `source_face`, `source_bary`, `source_index`, `mapped`, `confidence`
        (and the same with a `reverse_` prefix from source to target when `both`), and the
        rotations alignment chose, `source_rotation` / `target_rotation` (3, 3).  The target
        is sent each position once (`welded`), the reply comes back per vertex; each shape
        is sent less its centre (`centred`), and `mapped` (float64) is where the source lies.
        `source_labels`: the source's own part labels (one int per vertex or face, -1 for
        none), which guide the match where the user has them.  `source_parts`: also send
        the model's part of each source vertex (`source_parts`).  The server keeps prepared
        shapes, so sending the same source with each target prepares it once."""
        source_vertices, source_centre = centred(source_vertices)
        target_vertices, target_centre = centred(target_vertices)
        sent, sent_faces, back = welded(target_vertices, target_faces)
        arrays = {**_shape("source_", source_vertices, source_faces), **_shape("target_", sent, sent_faces)}
        if source_labels is not None:
            arrays["source_labels"] = source_labels
        with _counts_as_given("target", back):
            reply = self.request("correspond", arrays, both=bool(both), category=category or None,
                                 align=protocol.align_mode(align), source_parts=bool(source_parts))[1]
        if back is not None:
            reply = unwelded(reply, back, faces=target_faces)
        reply = self.last_arrays = _moved(reply, {"mapped": source_centre, "reverse_mapped": target_centre})
        return reply

    def reconstruct(self, vertices, faces=None, resolution: int = 64, category: str | None = None,
                    align: bool | str = False) -> dict[str, np.ndarray]:
        vertices, centre = centred(vertices)
        reply = self.request("reconstruct", _shape("", vertices, faces), resolution=int(resolution),
                             category=category or None, align=protocol.align_mode(align))[1]
        reply = self.last_arrays = _moved(reply, {"vertices": centre})
        return reply

    def close(self) -> None:
        self._drop_socket()
        if self._own_ctx:
            self.ctx.term()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _close(sock: zmq.Socket | None, monitor: zmq.Socket | None) -> None:
    if sock is not None and monitor is not None:
        sock.disable_monitor()
    for s in (monitor, sock):
        if s is not None:
            s.close(0)


def centred(vertices) -> tuple[Any, np.ndarray | None]:
    """A shape's vertices less the centre of their bounding box, in float64, and that centre.
    The wire carries float32, about 7 digits: a shape far from the origin (a georeferenced
    scan at 5e6) would lose its shape on the way, and the model sees shapes centred anyway.
    The vertices as they are, and None, where they are not finite (N, 3) numbers (the
    server's message then names them as sent)."""
    points = np.asarray(vertices)
    if points.ndim != 2 or points.shape[1:] != (3,) or not len(points) or points.dtype.kind not in "fiu":
        return vertices, None
    points = points.astype(np.float64)
    if not np.isfinite(points).all():
        return vertices, None
    centre = (points.min(axis=0) + points.max(axis=0)) / 2
    return points - centre, centre


@contextlib.contextmanager
def _counts_as_given(name: str, back: np.ndarray | None) -> Iterator[None]:
    """A refusal of a `welded` shape says how many vertices it has as given: the server's
    message counts the positions it was sent."""
    try:
        yield
    except ServerError as exc:
        if back is None or exc.code != "bad_input" or not exc.message.startswith(f"{name}: "):
            raise  # not about this shape (the source's, a parameter's)
        raise ServerError(exc.code, f"{exc.message} (the {name}'s {len(back)} vertices, sent as "
                                    f"{int(back.max()) + 1} distinct positions)") from None


def _moved(reply: dict[str, np.ndarray], centres: dict[str, np.ndarray | None]) -> dict[str, np.ndarray]:
    """A reply's positions back where their shape lies (float64): `centres` names each
    position array and the centre its shape was sent less (None: sent as it was)."""
    out = dict(reply)
    for key, centre in centres.items():
        if key in out and centre is not None:
            out[key] = np.asarray(out[key], dtype=np.float64) + centre
    return out


def welded(vertices, faces=None) -> tuple[Any, Any, np.ndarray | None]:
    """A shape as the server is sent it, each position once: a glTF import splits vertices at
    every UV seam and sharp edge (a flat-shaded one at every face), and the server's work is
    per vertex, the same for vertices at one position -> (vertices, faces, each vertex's row
    among those vertices).  The shape as it is, and None, where no two share a position, or
    where it is one the server will refuse (its message then names the shape as sent)."""
    points = _weldable(vertices, faces)
    if points is None:
        return vertices, faces, None
    unique, inverse = np.unique(points, axis=0, return_inverse=True)
    if len(unique) == len(inverse) or len(unique) < 3:
        return vertices, faces, None
    inverse = inverse.reshape(-1)
    return unique, None if faces is None else inverse[np.asarray(faces, dtype=np.int64)], inverse


def _weldable(vertices, faces) -> np.ndarray | None:
    """The vertices as the server reads them (float32), where they are finite (N, 3) numbers
    and the (F, 3) faces lie within them; else None."""
    points = np.asarray(vertices)
    if points.ndim != 2 or points.shape[1:] != (3,) or len(points) < 3 or points.dtype.kind not in "fiu":
        return None
    with np.errstate(over="ignore"):
        points = points.astype(np.float32)
    if not np.isfinite(points).all():
        return None
    if faces is None:
        return points
    tri = np.asarray(faces)
    fits = tri.ndim == 2 and tri.shape[1:] == (3,) and tri.dtype.kind in "iu" and (
        not len(tri) or (tri.min() >= 0 and tri.max() < len(points)))
    return points if fits else None


def unwelded(reply: dict[str, np.ndarray], inverse: np.ndarray, per_vertex: tuple[str, ...] = PER_TARGET,
             faces: Any = None) -> dict[str, np.ndarray]:
    """A reply about a `welded` target, back on the target's own vertices: its `per_vertex`
    arrays spread to every copy.  A reverse match's target vertex is the copy that is a
    corner of its target face (the target's own `faces`, where it has them: copies at a seam
    carry different UVs), else the first copy."""
    first = np.empty(int(inverse.max()) + 1, np.int64)
    first[inverse[::-1]] = np.arange(len(inverse))[::-1]
    out = {}
    for key, value in reply.items():
        if key in per_vertex:
            value = value[inverse]
        elif key == "reverse_source_index":
            value = _copy_on_face(value, first, inverse, faces, reply.get("reverse_source_face"))
        out[key] = value
    return out


def _copy_on_face(index: np.ndarray, first: np.ndarray, inverse: np.ndarray, faces: Any,
                  face: np.ndarray | None) -> np.ndarray:
    """Each welded vertex `index` as the copy among the corners of its `face` of `faces`
    (the first copy where there are no faces, or none of the corners is one)."""
    out = first[index]
    if faces is None or face is None or not len(index):
        return out
    corners = np.asarray(faces, dtype=np.int64)[face]  # (n, 3) the target's own vertices
    on = inverse[corners] == np.asarray(index)[:, None]
    found = on.any(axis=1)
    out[found] = corners[found, on[found].argmax(axis=1)]
    return out


def _shape(prefix: str, vertices, faces) -> dict[str, Any]:
    """Dtypes and shapes are the protocol table's business (Session.request casts and checks)."""
    return {f"{prefix}vertices": vertices, **({f"{prefix}faces": faces} if faces is not None else {})}


def _server_said(header: dict[str, Any] | None) -> str:
    """The server's own error, quoted from a reply that failed verification (it may explain why)."""
    err = (header or {}).get("error")
    if isinstance(err, dict) and err.get("message"):
        return f" (the unverified reply says: {err.get('code')}: {err['message']})"
    return ""


if __name__ == "__main__":
    import sys

    from .cli import main

    sys.exit(main())
