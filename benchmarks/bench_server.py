"""Correspondence through the server vs in process, and ping round trips, in one run.

Starts a server on a free loopback port with the paper-size network (random weights:
timing does not depend on them), then times a 10k -> 10k `correspond` both ways,
alternating, and ends with one line:
    ratio=<through server / in process> ping_ms=<median ping round trip>

    .venv/bin/python benchmarks/bench_server.py [--points 10000] [--repeats 5]
"""
from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from model import Checkpoint, Correspondence, ImplicitCorrespondenceNet, preset, save_checkpoint  # noqa: E402
from server.client import Client  # noqa: E402
from benchmarks.timing import side_by_side  # noqa: E402


def measure(points: int = 10_000, repeats: int = 5) -> dict[str, float]:
    """Median seconds of a correspond in process and through a real server, alternated, and ping."""
    torch.manual_seed(0)
    net = ImplicitCorrespondenceNet(preset("paper"))
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = Path(tmp) / "paper.pth"
        save_checkpoint(ckpt, Checkpoint(preset("paper"), net.state_dict(), "chair"))
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        address = f"tcp://127.0.0.1:{port}"
        proc = subprocess.Popen([sys.executable, "-m", "server", "--bind", address, "--checkpoint", str(ckpt),
                                 "--device", "cpu", "--log-level", "WARNING"], cwd=ROOT, stdout=subprocess.PIPE,
                                text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
        try:
            if not proc.stdout.readline().startswith("ready"):
                raise RuntimeError("the benchmark server did not start")
            engine = Correspondence.load(ckpt, device="cpu")
            rng = np.random.default_rng(0)
            src = rng.random((points, 3)).astype(np.float32)
            tgt = rng.random((points, 3)).astype(np.float32)
            with Client(address, timeout=600) as client:
                client.correspond(src, tgt)  # warm-up both
                engine.correspond(src, tgt)
                lo, re_ = side_by_side(lambda _: engine.correspond(src, tgt), lambda _: client.correspond(src, tgt),
                                       repeats)
                pings = []
                for _ in range(200):
                    t = time.perf_counter()
                    client.ping()
                    pings.append((time.perf_counter() - t) * 1000)
        finally:
            proc.terminate()
            proc.wait(10)
    return {"points": points, "in_process": lo, "through_server": re_, "ratio": re_ / lo,
            "ping_ms": statistics.median(pings)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--points", type=int, default=10_000)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    r = measure(args.points, args.repeats)
    print(f"points={r['points']} in_process={r['in_process']:.3f}s through_server={r['through_server']:.3f}s "
          f"(medians of {args.repeats})")
    print(f"ratio={r['ratio']:.3f} ping_ms={r['ping_ms']:.3f}")


if __name__ == "__main__":
    main()
