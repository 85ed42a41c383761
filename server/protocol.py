"""The wire format, in one place: server, client and tests all encode and decode through here.

A message is a ZeroMQ multipart message:

* frame 0: a UTF-8 JSON object, the header:
  `{"v": 1, "op": "correspond", "id": "...", "arrays": [{"name": "source", "dtype": "float32",
  "shape": [N, 3]}, ...], ...op parameters...}`;
* frames 1..n: the raw little-endian bytes of each array listed in `arrays`, in order.

Replies carry the request's `id`, `"ok": true` and their own `arrays`, or
`{"ok": false, "error": {"code": ..., "message": ...}}`.  Nothing is ever pickled: arrays
are rebuilt with numpy.frombuffer from a whitelisted dtype after their byte length has
been checked against the declared shape.
"""
from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

VERSION = 1
MAX_HEADER_BYTES = 64 * 1024
DEFAULT_MAX_ELEMENTS = 2_000_000 * 3  # 2M vertices of 3 coordinates
DTYPES = {
    "float32": np.dtype("<f4"),
    "float64": np.dtype("<f8"),
    "int32": np.dtype("<i4"),
    "int64": np.dtype("<i8"),
    "uint8": np.dtype("<u1"),
}
OPS = ("ping", "info", "segment", "correspond", "reconstruct")


class ProtocolError(ValueError):
    """A message that breaks the protocol; `code` is machine-readable, the text is for people."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


def _dtype_name(arr: np.ndarray) -> str:
    for name, dt in DTYPES.items():
        if arr.dtype.kind == dt.kind and arr.dtype.itemsize == dt.itemsize:
            return name
    raise ProtocolError("bad_dtype", f"dtype {arr.dtype} cannot be sent; use one of {sorted(DTYPES)}")


def encode(header: Mapping[str, Any], arrays: Mapping[str, np.ndarray] | None = None) -> list[bytes]:
    """Header + arrays -> frames.  `header` must not contain "arrays"; it is filled in."""
    arrays = dict(arrays or {})
    specs, frames = [], []
    for name, arr in arrays.items():
        arr = np.asarray(arr)
        dtype = DTYPES[_dtype_name(arr)]
        data = np.ascontiguousarray(arr, dtype=dtype)
        specs.append({"name": name, "dtype": _dtype_name(arr), "shape": list(data.shape)})
        frames.append(data.tobytes())
    head = {"v": VERSION, **header, "arrays": specs}
    return [json.dumps(head, separators=(",", ":")).encode("utf-8"), *frames]


def decode(frames: Sequence[bytes], max_elements: int = DEFAULT_MAX_ELEMENTS) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Frames -> (header, arrays by name).  Raises ProtocolError naming the first problem."""
    if not frames:
        raise ProtocolError("bad_header", "empty message: expected a JSON header frame")
    raw = bytes(frames[0])
    if len(raw) > MAX_HEADER_BYTES:
        raise ProtocolError("too_large", f"header is {len(raw)} bytes, the limit is {MAX_HEADER_BYTES}")
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ProtocolError("bad_json", f"header frame is not UTF-8 JSON: {exc}") from None
    if not isinstance(header, dict):
        raise ProtocolError("bad_header", "header must be a JSON object")
    if header.get("v") != VERSION:
        raise ProtocolError("bad_version", f"protocol version {header.get('v')!r} is not supported; this server speaks {VERSION}")
    specs = header.get("arrays", [])
    if not isinstance(specs, list):
        raise ProtocolError("bad_header", "'arrays' must be a list")
    if len(frames) - 1 != len(specs):
        raise ProtocolError("frame_count", f"header lists {len(specs)} arrays but {len(frames) - 1} data frames came")
    arrays: dict[str, np.ndarray] = {}
    total = 0
    for spec, frame in zip(specs, frames[1:]):
        name, arr = _decode_array(spec, frame)
        if name in arrays:
            raise ProtocolError("bad_header", f"array {name!r} is listed twice")
        total += arr.size
        if total > max_elements:
            raise ProtocolError("too_large", f"arrays hold more than {max_elements} values in all")
        arrays[name] = arr
    return header, arrays


def _decode_array(spec: Any, frame: bytes) -> tuple[str, np.ndarray]:
    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
        raise ProtocolError("bad_header", f"array spec {spec!r} needs a string 'name'")
    name = spec["name"]
    dtype = DTYPES.get(spec.get("dtype"))  # type: ignore[arg-type]
    if dtype is None:
        raise ProtocolError("bad_dtype", f"array {name!r}: dtype {spec.get('dtype')!r} is not one of {sorted(DTYPES)}")
    shape = spec.get("shape")
    if (not isinstance(shape, list) or len(shape) > 4
            or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)):
        raise ProtocolError("bad_shape", f"array {name!r}: shape must be a list of at most 4 non-negative integers, got {shape!r}")
    expected = math.prod(shape) * dtype.itemsize
    if len(frame) != expected:
        raise ProtocolError("size_mismatch", f"array {name!r}: {dtype.name}{tuple(shape)} needs {expected} bytes, the frame has {len(frame)}")
    return name, np.frombuffer(bytes(frame), dtype=dtype).reshape(shape)


def ok_reply(request_id: Any, arrays: Mapping[str, np.ndarray] | None = None, **fields: Any) -> list[bytes]:
    return encode({"id": request_id, "ok": True, **fields}, arrays)


def error_reply(request_id: Any, code: str, message: str) -> list[bytes]:
    return encode({"id": request_id, "ok": False, "error": {"code": code, "message": message}})
