"""The wire protocol, in one place: server, client and tests all encode and decode through here.

Needs only numpy and the standard library (the add-on ships a copy beside its client).

A message is a ZeroMQ multipart message:

* frame 0: a UTF-8 JSON object, the header;
* frames 1..n: the raw little-endian bytes of each array listed in the header's `arrays`,
  in order;
* frame n+1, only when the header says `"sig": "hmac-sha256"`: the signature, the hex
  HMAC-SHA256 of frames 0..n fed in order (the header fixes every array frame's length).

Header fields: `v` (protocol version, the integer 1), `id` (the request's id, chosen by the
client and copied into its reply: a string of at most MAX_ID_CHARS characters or a 64-bit
integer), `msg_id` (random, unique per message), `ts` (the sender's clock,
seconds since the epoch), `arrays` (`[{"name", "dtype", "shape"}]`, describing frames
1..n), `sig` when signed.  A request adds `op` and that op's parameters; a reply adds
`"ok": true` and the op's reply fields, or `"ok": false, "error": {"code", "message"}`.

    {"v": 1, "op": "segment", "id": "3f2a-1", "msg_id": "9c0d...", "ts": 1718000000.25,
     "align": false, "arrays": [{"name": "vertices", "dtype": "float32", "shape": [500, 3]}]}

The server's work is per vertex: a client should send a shape's vertices that share a
position once (a glTF import splits them at every seam) and copy the answers back, as
server.client does (`welded`, `unwelded`).  Coordinates travel as float32, about 7 digits:
a client should send each shape less its centre and add it back to the positions it gets
(`mapped`, a reconstruction's `vertices`), as server.client does (`centred`), or a shape far
from the origin (a georeferenced scan at 5e6) arrives flattened.

Signing, as jupyter_client's Session does: when both ends hold the same key, every message
in both directions is signed and the key itself never travels.  A receiver with a key
refuses (error code in brackets) an unsigned message or a wrong signature
["bad_signature"], a `ts` more than WINDOW_S seconds from its own clock ["stale_message"],
and a `msg_id` it has already seen within that window ["replayed_message"]; it remembers
at most MAX_SEEN ids.  A receiver without a key refuses a signed message ["bad_signature"],
so a key set on one end only is reported at once rather than silently ignored.  A server
answers a message that did not verify unsigned (signed, it would be a genuine reply to an
id of the sender's choosing); a keyed client takes an unsigned error reply to its own
request as the server refusing it unauthenticated, and refuses any other unsigned reply.
Replays are refused within one run of a receiver: a restarted server has forgotten the
ids it saw, so it takes a message captured within the last WINDOW_S seconds once more.

A frame over the server's size limit (`info`'s `limits.max_message_bytes`) is dropped
unread by ZeroMQ, which resets the connection, so it gets no reply: a client checks the
limit before sending a large request, as `server.client.Client` does.  ZeroMQ applies the
limit to each frame, not to a message's sum: a message of many frames is read whole, then
refused for its frame count or its arrays' size; that happens before it is authenticated,
so a key alone does not keep a peer without it from making the server read large messages.
A server started with --curve also takes connections over CurveZMQ only, with key pairs
derived from the key (server/curve.py): a peer without the key is shut out at the
handshake, before it sends a message, and the traffic is encrypted.  Use it on a
non-loopback bind, where anyone who can reach the port can send.

Every model op's reply also carries the fields `category` (the model that answered) and
`rebuild_distance` (how far that model's rebuild of each shape lies from it, over the
shape's diagonal: a number, or `{"source", "target"}` for `correspond`).  A request's
`category` may be AUTO_CATEGORY: the server then answers with the served model that
rebuilds the request's shapes closest from E's codes (each shape encoded by every model,
prepared by the one chosen); the reply's `rebuild_distance` is still that model's from the
fitted codes, as for any other request.

OPS is the table of operations: each op's request and reply arrays (required or optional,
dtype, shape rule) and its parameters.  Senders cast and check their arrays against it,
receivers check what came against it; nothing is ever pickled: arrays are rebuilt with
numpy.frombuffer from a whitelisted dtype after their byte length has been checked
against the declared shape.
"""
from __future__ import annotations

import hashlib
import heapq
import hmac
import json
import math
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

VERSION = 1
MAX_HEADER_BYTES = 64 * 1024
MAX_ID_CHARS = 64  # a request's `id` (a string, or an integer within 64 bits), copied into every reply
MAX_DIMENSION = 2**31 - 1  # any one dimension of an array: larger cannot be a real mesh, and numpy refuses some
WINDOW_S = 300.0  # a signed message's ts may be this far from the receiver's clock
MAX_SEEN = 100_000  # message ids remembered for replay protection (a few MB)
SIGNATURE = "hmac-sha256"
DTYPES = {
    "float32": np.dtype("<f4"),
    "float64": np.dtype("<f8"),
    "int32": np.dtype("<i4"),
    "int64": np.dtype("<i8"),
    "uint8": np.dtype("<u1"),
}
HEADER_FIELDS = ("v", "op", "id", "msg_id", "ts", "arrays", "sig")  # everything else in a request is a parameter


class ProtocolError(ValueError):
    """A message that breaks the protocol; `code` is machine-readable, the text is for people.
    `header` is the header when one could be read, so a reply can quote it; `verified` says
    whether it passed the receiver's checks of signature and freshness (it is the sender's
    own only then: a reply to it may be signed)."""

    def __init__(self, code: str, message: str, header: dict[str, Any] | None = None, verified: bool = False):
        super().__init__(message)
        self.code, self.header, self.verified = code, header, verified


# ---------------------------------------------------------------------- the table of ops
@dataclass(frozen=True)
class Array:
    """One array of a message.  `shape`: an int is a fixed length; a letter is any length,
    and the same letter is the same length throughout the message."""

    name: str
    dtype: str  # what senders cast to; receivers accept any dtype of the same kind
    shape: tuple[int | str, ...]
    required: bool = True

    def rule(self) -> str:
        return f"{self.dtype} ({', '.join(map(str, self.shape))})"


@dataclass(frozen=True)
class OneOf:
    """A parameter that takes one of a few JSON values (compared with their JSON type)."""

    values: tuple[Any, ...]

    def accepts(self, value: Any) -> bool:
        return any(type(value) is type(v) and value == v for v in self.values)

    def __str__(self) -> str:
        return "one of " + ", ".join(json.dumps(v) for v in self.values)


@dataclass(frozen=True)
class Op:
    request: tuple[Array, ...] = ()
    reply: tuple[Array, ...] = ()
    params: Mapping[str, tuple[type | OneOf, Any]] = field(default_factory=dict)  # name -> (type, default)
    model: bool = True  # False: answered at once, without waiting for the model


def _mesh(prefix: str, n: str, f: str) -> tuple[Array, ...]:
    return Array(f"{prefix}vertices", "float32", (n, 3)), Array(f"{prefix}faces", "int64", (f, 3), required=False)


def _matches(prefix: str, m: str) -> tuple[Array, ...]:
    """Per point of the shape mapped: where it lands on the other shape and how sure that is."""
    required = not prefix
    return (Array(f"{prefix}mapped", "float32", (m, 3), required), Array(f"{prefix}confidence", "float32", (m,), required),
            Array(f"{prefix}source_index", "int64", (m,), required),
            Array(f"{prefix}source_face", "int64", (m,), False), Array(f"{prefix}source_bary", "float32", (m, 3), False))


def _rotation(name: str) -> Array:
    """The rotation auto-alignment applied to a shape, model frame: p_aligned = R @ p."""
    return Array(name, "float32", (3, 3), required=False)


# category: a served model's, or this for the one that rebuilds the request's shapes closest
AUTO_CATEGORY = "auto"
# align: false (as given), "yaw" (upright shapes: turned about the up axis only), true (any rotation)
ALIGN_MODES = (False, True, "yaw")
# The command line's names for them, which the client also takes
ALIGN_NAMES = {"off": False, "yaw": "yaw", "any": True}


def align_mode(align: Any) -> Any:
    """An `align` value as the op table has it: "off" and "any" read as false and true;
    anything else is left for the table's check to name."""
    return ALIGN_NAMES.get(align, align) if isinstance(align, str) else align
_SHAPE_PARAMS = {"category": (str, None), "align": (OneOf(ALIGN_MODES), False)}
OPS: dict[str, Op] = {
    "ping": Op(model=False),
    "info": Op(model=False),
    # give up a request sent earlier (its id), from any socket: a queued one is dropped, a
    # running one stops at its next pass over the points; its reply is error "cancelled"
    "cancel": Op(params={"request": (str, None)}, model=False),
    "segment": Op(_mesh("", "N", "F"), (Array("parts", "int64", ("N",)), _rotation("rotation")), _SHAPE_PARAMS),
    # source_parts: the model's parts of the source (N,), when asked for, so a transfer
    # without the artist's labels needs no separate segment request
    "correspond": Op((*_mesh("source_", "N", "F"), *_mesh("target_", "M", "G"),
                      Array("source_labels", "int64", ("L",), required=False)),
                     (*_matches("", "M"), *_matches("reverse_", "N"), Array("source_parts", "int64", ("N",), False),
                      _rotation("source_rotation"), _rotation("target_rotation")),
                     {**_SHAPE_PARAMS, "both": (bool, False), "source_parts": (bool, False)}),
    "reconstruct": Op(_mesh("", "N", "F"),
                      (Array("vertices", "float32", ("V", 3)), Array("faces", "int64", ("T", 3)),
                       Array("parts", "int64", ("V",)), _rotation("rotation")),
                      {**_SHAPE_PARAMS, "resolution": (int, 64)}),
}


def op_spec(op: Any) -> Op:
    if not isinstance(op, str) or op not in OPS:
        raise ProtocolError("unknown_op", f"unknown op {op!r}; ops are {', '.join(OPS)}")
    return OPS[op]


def conform(op: str, what: str, arrays: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Sending side: cast each array to the table's dtype, then check them all.  `what`: request or reply."""
    specs = {a.name: a for a in getattr(op_spec(op), what)}
    out = {}
    for name, value in arrays.items():
        arr = np.asarray(value)
        if name in specs:
            want = DTYPES[specs[name].dtype]
            if arr.dtype.kind not in ("iu" if want.kind == "i" else "fiu"):
                raise ProtocolError("bad_array", f"{name} must be {'integers' if want.kind == 'i' else 'numbers'}, got {arr.dtype}")
            arr = arr.astype(want, copy=False)
        out[name] = arr
    check_arrays(op, what, out)
    return out


def check_arrays(op: str, what: str, arrays: Mapping[str, np.ndarray]) -> None:
    """Receiving side (and the end of sending): names, dtype kinds and shapes against the table."""
    specs = getattr(op_spec(op), what)
    names = [a.name for a in specs]
    for name in arrays:
        if name not in names:
            raise ProtocolError("unknown_array", f"a {op} {what} has no array {name!r}; its arrays are {', '.join(names) or 'none'}")
    lengths: dict[str, int] = {}
    for spec in specs:
        arr = arrays.get(spec.name)
        if arr is None:
            if spec.required:
                raise ProtocolError("missing_array", f"a {op} {what} needs the array {spec.name!r}: {spec.rule()}")
            continue
        kind_ok = arr.dtype.kind in ("iu" if DTYPES[spec.dtype].kind == "i" else "f")
        fits = arr.ndim == len(spec.shape) and all(
            dim == (rule if isinstance(rule, int) else lengths.setdefault(rule, dim)) for dim, rule in zip(arr.shape, spec.shape))
        if not (kind_ok and fits):
            known = ", ".join(f"{k} = {v}" for k, v in lengths.items())
            raise ProtocolError("bad_array", f"{spec.name} is {arr.dtype} {tuple(arr.shape)}; a {op} {what} needs {spec.rule()}"
                                             + (f" with {known}" if known else ""))


def check_params(op: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """Parameters with their defaults filled in; a wrong type or an unknown name is refused."""
    table = op_spec(op).params
    for name in params:
        if name not in table:
            raise ProtocolError("bad_param", f"{op} takes no parameter {name!r}; its parameters are {', '.join(table) or 'none'}")
    out = {}
    for name, (kind, default) in table.items():
        value = params.get(name)
        if value is None:
            pass
        elif isinstance(kind, OneOf):
            if not kind.accepts(value):
                raise ProtocolError("bad_param", f"{op} parameter {name!r} must be {kind}, got {json.dumps(value, default=repr)}")
        elif not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise ProtocolError("bad_param", f"{op} parameter {name!r} must be {kind.__name__}, got {value!r}")
        out[name] = default if value is None else value
    return out


# ---------------------------------------------------------------------- the session
class Session:
    """Encodes and decodes messages for one end of the conversation; signs and verifies them
    when it has a key.  `side` ("server" or "client") only words the error messages."""

    def __init__(self, key: str | bytes | None, max_elements: int, side: str):
        self.key = key.encode() if isinstance(key, str) else key or None
        self.max_elements, self.side = max_elements, side
        self.seen = _Seen(WINDOW_S, MAX_SEEN)

    # -------------------------------------------------------------- typed messages
    def request(self, op: str, request_id: Any, arrays: Mapping[str, Any] | None = None, **params: Any) -> list[bytes]:
        params = {k: v for k, v in params.items() if v is not None}
        check_params(op, params)
        return self.encode({"op": op, "id": request_id, **params}, conform(op, "request", arrays or {}))

    def read_request(self, frames: Sequence[bytes]) -> tuple[dict[str, Any], dict[str, Any], dict[str, np.ndarray]]:
        """-> (header, parameters with defaults, arrays), every one checked against OPS."""
        header, arrays = self.decode(frames)
        try:
            op = header.get("op")
            params = check_params(op, {k: v for k, v in header.items() if k not in HEADER_FIELDS})
            check_arrays(op, "request", arrays)
        except ProtocolError as exc:
            raise ProtocolError(exc.code, str(exc), header, verified=True) from None  # decode verified it
        return header, params, arrays

    def reply(self, request_id: Any, op: str, arrays: Mapping[str, Any] | None = None, **fields: Any) -> list[bytes]:
        return self.encode({"id": request_id, "ok": True, **fields}, conform(op, "reply", arrays or {}))

    def error(self, request_id: Any, code: str, message: str, sign: bool = True) -> list[bytes]:
        """`sign=False` for the answer to a message that did not verify: signed, it would hand
        whoever sent it a genuine reply to an id of their choosing."""
        return self.encode({"id": request_id, "ok": False, "error": {"code": code, "message": message}}, sign=sign)

    # -------------------------------------------------------------- frames
    def encode(self, header: Mapping[str, Any], arrays: Mapping[str, np.ndarray] | None = None,
               sign: bool = True) -> list[bytes]:
        """Header + arrays -> frames, stamped and (with a key, unless `sign` is False) signed.
        No table check: see request/reply."""
        specs, frames = [], []
        for name, arr in (arrays or {}).items():
            dtype_name = _dtype_name(np.asarray(arr))
            data = np.ascontiguousarray(arr, dtype=DTYPES[dtype_name])
            specs.append({"name": name, "dtype": dtype_name, "shape": list(data.shape)})
            frames.append(data.tobytes())
        head = {"v": VERSION, **header, "arrays": specs}
        head.setdefault("msg_id", os.urandom(16).hex())
        head.setdefault("ts", time.time())
        signed = bool(self.key) and sign
        if signed:
            head["sig"] = SIGNATURE
        frames.insert(0, json.dumps(head, separators=(",", ":"), allow_nan=False).encode("utf-8"))
        return [*frames, self._sign(frames)] if signed else frames

    def decode(self, frames: Sequence[bytes]) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """Frames -> (header, arrays by name).  Raises ProtocolError naming the first problem."""
        frames = [bytes(f) for f in frames]
        header = _header(frames)
        verified = False
        try:
            specs = header.get("arrays", [])
            if not isinstance(specs, list):
                raise ProtocolError("bad_header", "'arrays' must be a list")
            signed = header.get("sig") is not None
            if len(frames) != 1 + len(specs) + signed:
                raise ProtocolError("frame_count", f"header lists {len(specs)} arrays{' and a signature' if signed else ''} "
                                                   f"but {len(frames) - 1} frames follow it")
            self._verify(header, frames, signed)
            verified = True
            return header, self._arrays(specs, frames[1:1 + len(specs)])
        except ProtocolError as exc:
            raise ProtocolError(exc.code, str(exc), header, verified) from None

    def _sign(self, frames: Sequence[bytes]) -> bytes:
        mac = hmac.new(self.key, digestmod=hashlib.sha256)
        for frame in frames:
            mac.update(frame)
        return mac.hexdigest().encode()

    def _verify(self, header: dict[str, Any], frames: list[bytes], signed: bool) -> None:
        if not self.key:
            if signed:
                raise ProtocolError("bad_signature", f"the message is signed but this {self.side} has no key: "
                                                     "give both ends the same key (--secret-file or CORR_SERVER_SECRET)")
            return
        if not signed:
            raise ProtocolError("bad_signature", f"missing signature: this {self.side} requires a key")
        if header["sig"] != SIGNATURE:
            raise ProtocolError("bad_signature", f"signature scheme {header['sig']!r} is not {SIGNATURE!r}")
        if not hmac.compare_digest(self._sign(frames[:-1]), frames[-1]):
            raise ProtocolError("bad_signature", "signature does not match: wrong key?")
        # Only a verified header's msg_id and ts are worth remembering.
        msg_id, ts = header.get("msg_id"), header.get("ts")
        if not isinstance(msg_id, str) or not 0 < len(msg_id) <= 64:
            raise ProtocolError("bad_header", "a signed message needs a string 'msg_id' of at most 64 characters")
        if not isinstance(ts, (int, float)) or isinstance(ts, bool) or not math.isfinite(ts):
            raise ProtocolError("bad_header", "a signed message needs a numeric 'ts'")
        self.seen.admit(msg_id, float(ts), time.time())

    def _arrays(self, specs: list[Any], frames: list[bytes]) -> dict[str, np.ndarray]:
        arrays: dict[str, np.ndarray] = {}
        total = 0
        for spec, frame in zip(specs, frames):
            name, arr = _decode_array(spec, frame, self.max_elements)
            if name in arrays:
                raise ProtocolError("bad_header", f"array {name!r} is listed twice")
            total += arr.size
            if total > self.max_elements:
                raise ProtocolError("too_large", f"arrays hold more than {self.max_elements} values in all")
            arrays[name] = arr
        return arrays


class _Seen:
    """Message ids seen within the window, at most `limit` of them.  When the limit forces an
    id out before its time, nothing as old as it is accepted any more, so no replay slips
    through the forgetting.  "As old" goes by the message's `ts`, or by when it came if its
    `ts` lies ahead of this clock: so the floor never passes this clock, and ids stamped in
    the future (a key holder's, or a clock ahead) cannot lock every sender out until then.
    The price: such an id, once forced out, is refused only by the window."""

    def __init__(self, window: float, limit: int):
        self.window, self.limit = window, limit
        self.heap: list[tuple[float, float, str]] = []  # (min(ts, arrival), ts, msg_id), oldest first
        self.ids: set[str] = set()
        self.floor = -math.inf

    def admit(self, msg_id: str, ts: float, now: float) -> None:
        while self.heap and (self.heap[0][1] < now - self.window or len(self.heap) >= self.limit):
            age, _, old_id = heapq.heappop(self.heap)
            self.ids.discard(old_id)
            self.floor = max(self.floor, age)
        if ts <= self.floor:
            raise ProtocolError("stale_message", f"the message is older than the {self.limit} newer ones this end "
                                                 "remembers within its window: send it again")
        if abs(now - ts) > self.window:
            raise ProtocolError("stale_message", f"the message's timestamp is {abs(now - ts):.0f} s "
                                                 f"{'behind' if ts < now else 'ahead of'} this clock, outside the "
                                                 f"{self.window:g} s window (clocks out of sync, or a replay)")
        if msg_id in self.ids:
            raise ProtocolError("replayed_message", f"message {msg_id} was already received: a replay")
        heapq.heappush(self.heap, (min(ts, now), ts, msg_id))
        self.ids.add(msg_id)


def _header(frames: list[bytes]) -> dict[str, Any]:
    if not frames:
        raise ProtocolError("bad_header", "empty message: expected a JSON header frame")
    if len(frames[0]) > MAX_HEADER_BYTES:
        raise ProtocolError("too_large", f"header is {len(frames[0])} bytes, the limit is {MAX_HEADER_BYTES}")
    try:
        header = json.loads(frames[0].decode("utf-8"), parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:  # ValueError: JSON errors, huge integers
        raise ProtocolError("bad_json", f"header frame is not UTF-8 JSON that can be read: {exc}") from None
    if not isinstance(header, dict):
        raise ProtocolError("bad_header", "header must be a JSON object")
    if not _good_id(header.get("id")):
        raise ProtocolError("bad_header", f"'id' must be a string of at most {MAX_ID_CHARS} characters or a 64-bit "
                                          "integer", {k: v for k, v in header.items() if k != "id"})  # not echoed
    if type(header.get("v")) is not int or header["v"] != VERSION:  # not True, not 1.0
        raise ProtocolError("bad_version", f"protocol version {header.get('v')!r} is not supported; this end speaks "
                                           f"{VERSION} (an integer)", header)
    return header


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _good_id(request_id: Any) -> bool:
    """None (a message without one), a short string or a 64-bit integer: anything else would
    be copied into the reply as it came."""
    if isinstance(request_id, str):
        return len(request_id) <= MAX_ID_CHARS
    if type(request_id) is int:
        return -2**63 <= request_id < 2**63
    return request_id is None


def _dtype_name(arr: np.ndarray) -> str:
    for name, dt in DTYPES.items():
        if arr.dtype.kind == dt.kind and arr.dtype.itemsize == dt.itemsize:
            return name
    raise ProtocolError("bad_dtype", f"dtype {arr.dtype} cannot be sent; use one of {sorted(DTYPES)}")


def _decode_array(spec: Any, frame: bytes, max_elements: int) -> tuple[str, np.ndarray]:
    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
        raise ProtocolError("bad_header", f"array spec {spec!r} needs a string 'name'")
    name = spec["name"]
    dtype = DTYPES.get(spec.get("dtype"))  # type: ignore[arg-type]
    if dtype is None:
        raise ProtocolError("bad_dtype", f"array {name!r}: dtype {spec.get('dtype')!r} is not one of {sorted(DTYPES)}")
    shape = spec.get("shape")
    if (not isinstance(shape, list) or len(shape) > 4
            or not all(isinstance(d, int) and not isinstance(d, bool) and 0 <= d <= MAX_DIMENSION for d in shape)):
        raise ProtocolError("bad_shape", f"array {name!r}: shape must be a list of at most 4 integers from 0 to "
                                         f"{MAX_DIMENSION}, got {shape!r}")
    # an empty array of shape (0, 2**31-1, ...) passes the byte count yet numpy cannot make it
    # (a non-empty one is bounded by its frame's length and Session._arrays)
    if 0 in shape and math.prod(d for d in shape if d) > max_elements:
        raise ProtocolError("bad_shape", f"array {name!r}: shape {shape!r} is empty, yet its other dimensions span "
                                         f"more than the {max_elements} values a message may hold")
    expected = math.prod(shape) * dtype.itemsize
    if len(frame) != expected:
        raise ProtocolError("size_mismatch", f"array {name!r}: {dtype.name}{tuple(shape)} needs {expected} bytes, the frame has {len(frame)}")
    return name, np.frombuffer(frame, dtype=dtype).reshape(shape)
