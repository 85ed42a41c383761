"""Prepared shapes kept between requests, so a source sent with every target is prepared once.

Keyed by a hash of the shape's arrays as they arrived (bytes, dtype and shape) with the
request's category and align mode: a changed mesh has another key and is prepared again.
Least recently used entries go first when the cache holds more than MAX_ENTRIES shapes or
MAX_BYTES of arrays (measured again after each request: a shape's surface index is built
on first use).  Filled by the server's single model thread; `ping` reads its counts from
the main thread, so the entries change and are counted under a lock.
"""
from __future__ import annotations

import dataclasses
import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

MAX_ENTRIES = 16  # a Transfer's sources plus a few targets to preview again
MAX_BYTES = 1 << 30  # a 20k-vertex shape holds about 10-20 MB


def shape_key(arrays: Mapping[str, np.ndarray], prefix: str, category: str | None, align: Any) -> str:
    """The identity of one shape of a request: its vertices and faces, category and align mode."""
    h = hashlib.blake2b(digest_size=20)
    h.update(repr((category or "", align)).encode())
    for name in ("vertices", "faces"):  # not the prefix: a shape sent as source, target or alone is one shape
        arr = arrays.get(prefix + name)
        if arr is None:
            h.update(b"-")
            continue
        arr = np.ascontiguousarray(arr)
        h.update(f"{name}:{arr.dtype.str}:{arr.shape}".encode())
        h.update(arr)  # its bytes, without a copy (an empty one too: the engine refuses it, not the hash)
    return h.hexdigest()


def nbytes(obj: Any, depth: int = 4) -> int:
    """Bytes held in numpy arrays and torch tensors reachable from obj (fields, attributes,
    tuples, dicts), a few levels deep: an estimate of what a cached shape costs."""
    if isinstance(obj, np.ndarray):
        return obj.nbytes
    if hasattr(obj, "element_size") and hasattr(obj, "nelement"):  # a torch tensor, without importing torch
        return obj.element_size() * obj.nelement()
    if depth == 0:
        return 0
    if isinstance(obj, (tuple, list)):
        return sum(nbytes(x, depth - 1) for x in obj)
    if isinstance(obj, dict):  # a prepared shape's vertex embeddings, kept on first use
        return sum(nbytes(x, depth - 1) for x in obj.values())
    if hasattr(obj, "__dict__"):  # dataclasses (with their cached properties) and plain objects
        return sum(nbytes(v, depth - 1) for v in vars(obj).values())
    if dataclasses.is_dataclass(obj):
        return sum(nbytes(getattr(obj, f.name), depth - 1) for f in dataclasses.fields(obj))
    return 0


class PreparedCache:
    """LRU of prepared shapes, bounded in entries and in bytes."""

    def __init__(self, max_entries: int = MAX_ENTRIES, max_bytes: int = MAX_BYTES):
        self.max_entries, self.max_bytes = max_entries, max_bytes
        self._entries: OrderedDict[str, tuple[Any, int]] = OrderedDict()
        self.hits = self.misses = 0
        self._lock = threading.Lock()  # not held while a shape is made or measured

    def get(self, key: str, make: Callable[[], Any]) -> Any:
        """The cached shape for key, or make() it (and keep it)."""
        with self._lock:
            if key in self._entries:
                self._entries.move_to_end(key)
                self.hits += 1
                return self._entries[key][0]
            self.misses += 1
        value = make()
        size = nbytes(value)
        with self._lock:
            self._entries[key] = (value, size)
        self.settle()
        return value

    def settle(self) -> None:
        """Measure the entries again and drop the least recently used until within bounds."""
        with self._lock:
            held = list(self._entries.items())
        sizes = {key: nbytes(value) for key, (value, _) in held}
        with self._lock:
            for key, size in sizes.items():
                if key in self._entries:
                    self._entries[key] = (self._entries[key][0], size)
            while self._entries and (len(self._entries) > self.max_entries or self._bytes() > self.max_bytes):
                self._entries.popitem(last=False)

    def _bytes(self) -> int:
        return sum(size for _, size in self._entries.values())

    @property
    def bytes(self) -> int:
        with self._lock:
            return self._bytes()

    def __len__(self) -> int:
        return len(self._entries)

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {"entries": len(self._entries), "bytes": self._bytes(), "hits": self.hits, "misses": self.misses,
                    "max_entries": self.max_entries, "max_bytes": self.max_bytes}
