"""A request to the server running off Blender's main thread.

The worker thread only talks to the server (bpy must not be touched there); the main
thread starts the job, polls `done` from a timer or modal operator, and applies the
result.  Plain Python: tests drive it without bpy.
"""
from __future__ import annotations

import threading
import time
from typing import Any, Callable

from .client import Client, ServerError


class Job:
    """Runs `work(client, progress)` in a thread with its own client (sockets are per thread).

    `progress(fraction, text)` may be called by `work` to report how far it is.  The client
    signs with CORR_SERVER_SECRET when Blender's environment has it (see server/protocol.py).
    """

    def __init__(self, work: Callable[[Client, Callable[[float, str], None]], Any], address: str,
                 timeout: float = 120.0):
        self.work, self.address, self.timeout = work, address, timeout
        self.cancel_event = threading.Event()
        self.fraction, self.text = 0.0, "starting"
        self.result: Any = None
        self.error: Exception | None = None
        self.started = 0.0
        self._thread = threading.Thread(target=self._run, name="corr-request", daemon=True)

    def start(self) -> "Job":
        self.started = time.monotonic()
        self._thread.start()
        return self

    def _progress(self, fraction: float, text: str) -> None:
        self.fraction, self.text = fraction, text

    def _run(self) -> None:
        client = Client(self.address, timeout=self.timeout)
        client.cancel = self.cancel_event
        try:
            self.result = self.work(client, self._progress)
        except Exception as exc:  # reported on the main thread
            self.error = exc
        finally:
            client.close()

    @property
    def done(self) -> bool:
        return not self._thread.is_alive()

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def cancel(self) -> None:
        self.cancel_event.set()

    def wait(self, timeout: float | None = None) -> Any:
        """Block until finished; return the result or raise the worker's error."""
        self._thread.join(timeout)
        if not self.done:
            raise ServerError("timeout", "the request is still running")
        if self.error is not None:
            raise self.error
        return self.result


def describe(exc: BaseException) -> str:
    """One line for the user: what went wrong and what to do."""
    if isinstance(exc, ServerError):
        if exc.code == "timeout":
            return (f"The correspondence server did not answer ({exc.message}). "
                    "Start it (panel: Start local server, or `python -m server`) and check the address.")
        if exc.code == "cancelled":
            return "Cancelled."
        return f"Server error ({exc.code}): {exc.message}"
    return str(exc)
