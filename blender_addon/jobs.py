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

# Seconds a server gets to answer a ping before the request: one that is not there is
# told at once, not after the request's own timeout (minutes, for a long transfer).
REACH_TIMEOUT = 5.0


class Progress:
    """What `work` reports (`progress(fraction, text)`) and is asked: `stop_requested`, set
    when the user wants it to stop after the step it is on (Esc in the panel)."""

    def __init__(self) -> None:
        self.fraction, self.text = 0.0, "starting"
        self._stop = threading.Event()

    def __call__(self, fraction: float, text: str) -> None:
        self.fraction, self.text = fraction, text

    def request_stop(self) -> None:
        self._stop.set()

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()


class Job:
    """Runs `work(client, progress)` in a thread with its own client (sockets are per thread).

    `progress` is a `Progress`: `work` reports how far it is through it, and checks its
    `stop_requested` between steps.  The client signs with the key of the preferences' key
    file, or of CORR_SERVER_SECRET when Blender's environment has it (server/protocol.py).
    """

    def __init__(self, work: Callable[[Client, Progress], Any], address: str, timeout: float = 120.0,
                 connect: dict[str, Any] | None = None):
        """`connect`: the client's `secret` and `curve` (client.connection); none: from the environment."""
        self.work, self.address, self.timeout, self.connect = work, address, timeout, connect or {}
        self.cancel_event = threading.Event()
        self.progress = Progress()
        self.result: Any = None
        self.error: Exception | None = None
        self.started = 0.0
        self._thread = threading.Thread(target=self._run, name="corr-request", daemon=True)

    def start(self) -> "Job":
        self.started = time.monotonic()
        self._thread.start()
        return self

    @property
    def fraction(self) -> float:
        return self.progress.fraction

    @property
    def text(self) -> str:
        return self.progress.text

    def _run(self) -> None:
        client, reached = None, False
        try:
            client = Client(self.address, timeout=self.timeout, **self.connect)  # curve without a key: ValueError
            client.cancel = self.cancel_event
            client.reach(REACH_TIMEOUT, "start one, or check the address")
            reached = True
            self.result = self.work(client, self.progress)
        except ServerError as exc:  # reported on the main thread
            self.error = exc
            if reached and exc.code == "timeout":  # it answered the ping: busy or slow, not absent
                self.error = ServerError("slow", f"the server is running but gave no reply within {self.timeout:g} s "
                                                 f"(it may be busy with another request, or the meshes are large): "
                                                 f"raise Timeout in the add-on's preferences")
        except Exception as exc:
            self.error = exc
        finally:
            if client is not None:
                client.close()

    @property
    def done(self) -> bool:
        return not self._thread.is_alive()

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def cancel(self) -> None:
        """Stop now: the request in flight is abandoned and the job ends with ServerError("cancelled")."""
        self.cancel_event.set()

    def stop(self) -> None:
        """Stop after the current step: `work` returns what it has finished."""
        self.progress.request_stop()

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
            return (f"The correspondence server did not answer: {exc.message} "
                    "(panel: Start local server, or `python -m server`)")
        if exc.code == "cancelled":
            return "Cancelled."
        if exc.code in ("slow", "restarted"):  # the message says what happened and what to do
            return exc.message[:1].upper() + exc.message[1:] + "."
        return f"Server error ({exc.code}): {exc.message}"
    return str(exc)
