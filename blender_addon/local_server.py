"""Start and stop a server process on this machine for the add-on (no bpy).

The server is started with --parent-pid, so it exits by itself if Blender dies without
unregistering the add-on.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


class LocalServer:
    def __init__(self) -> None:
        self.process: subprocess.Popen | None = None
        self.log_path = Path(tempfile.gettempdir()) / f"corr-server-{os.getpid()}.log"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, address: str, python: str = "", checkpoint: str = "", device: str = "", key_file: str = "",
              curve: bool = False) -> None:
        """Spawn `python -m server`; `python` empty means this interpreter.  `key_file`,
        `curve`: as the add-on's client connects (with neither, the server takes them from
        the environment it inherits, as the client does)."""
        if self.running:
            return
        cmd = [python or sys.executable, "-m", "server", "--bind", address, "--parent-pid", str(os.getpid())]
        if checkpoint:
            cmd += ["--checkpoint", checkpoint]
        if device:
            cmd += ["--device", device]
        if key_file:
            cmd += ["--secret-file", key_file]
        if curve:
            cmd += ["--curve"]
        # From a checkout the `server` package sits beside the add-on; an installed project
        # finds it on the interpreter's own path.
        cwd = REPO_ROOT if (REPO_ROOT / "server" / "__main__.py").is_file() else None
        log = open(self.log_path, "wb")
        try:
            self.process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=cwd)
        except OSError as exc:
            raise RuntimeError(f"cannot start the server with {cmd[0]!r}: {exc}") from None
        finally:
            log.close()

    def failure(self) -> str | None:
        """If the process has exited, the last lines of its log (why it stopped)."""
        if self.process is None or self.process.poll() is None:
            return None
        try:
            lines = self.log_path.read_text(errors="replace").strip().splitlines()
        except OSError:
            lines = []
        return f"server exited with code {self.process.returncode}: " + " | ".join(lines[-3:])

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.process = None
