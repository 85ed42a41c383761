import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from model import Checkpoint, ImplicitCorrespondenceNet, preset, save_checkpoint

from ..conftest import child_env

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    def __init__(self, checkpoint: Path | None, *args: str, port: int | None = None, bind: str | None = None,
                 env: dict[str, str] | None = None):
        self.port = port or free_port()
        self.address = f"tcp://127.0.0.1:{self.port}"
        model = ["--checkpoint", str(checkpoint)] if checkpoint else []  # None: the shipped models
        cmd = [sys.executable, "-m", "server", "--bind", bind or self.address, *model,
               "--device", "cpu", "--log-level", "WARNING", *args]
        env = child_env(OMP_NUM_THREADS="1", **(env or {}))
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def wait_ready(self, timeout: float = 60) -> "ServerProcess":
        deadline = time.time() + timeout
        while time.time() < deadline:
            line = self.proc.stdout.readline()
            if line.startswith("ready"):
                return self
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.proc.stderr.read()}")
        raise RuntimeError("server did not start")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pth"
    save_checkpoint(path, Checkpoint(preset("tiny"), ImplicitCorrespondenceNet(preset("tiny")).state_dict(), "chair",
                                    stage=3))
    return path


KEY = "test-key-0123"  # the keyed server's --secret


@pytest.fixture(scope="module")
def keyed_server(tiny_checkpoint):
    proc = ServerProcess(tiny_checkpoint, "--secret", KEY).wait_ready()
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def server(tiny_checkpoint):
    proc = ServerProcess(tiny_checkpoint, "--max-vertices", "50000").wait_ready()
    yield proc
    proc.stop()
