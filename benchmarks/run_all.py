"""Run the engine, server and training-step benchmarks and write one markdown table.

    .venv/bin/python benchmarks/run_all.py [--out benchmarks/RESULTS.md] [--quick] [--device cpu|cuda]

Each benchmark measures its ratio side by side within its own run (engine vs a plain
matmul, server vs in process, each training stage vs stage 1), so the ratios compare
across machines even where the absolute seconds do not.  --quick uses small sizes to
check that everything runs (its figures are not meaningful).
"""
from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench_engine  # noqa: E402
import bench_server  # noqa: E402
import bench_training  # noqa: E402

FULL = {"points": 10_000, "repeats": 5, "network": "small", "batch": 16}
QUICK = {"points": 500, "repeats": 1, "network": "tiny", "batch": 4}


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = f", {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ""
    return (f"{cpu}, {os.cpu_count()} cores{gpu}; {torch.get_num_threads()} torch threads; "
            f"Python {platform.python_version()}, torch {torch.__version__}")


def rows(engine: dict, server: dict, training: dict) -> list[tuple[str, str, str, str]]:
    """(benchmark, measured, ratio, what the ratio compares)."""
    return [
        (f"engine: correspond {engine['points']:,} -> {engine['points']:,} points, paper network, {engine['device']}",
         f"{engine['seconds']:.3f} s ({engine['gflops']:.1f} GFLOP/s)", f"{engine['fraction']:.2f}",
         f"achieved FLOP rate / plain {engine['matmul_gflops']:.0f} GFLOP/s matmul"),
        (f"server: correspond {server['points']:,} -> {server['points']:,} over loopback ZeroMQ",
         f"{server['through_server']:.3f} s (in process {server['in_process']:.3f} s)", f"{server['ratio']:.3f}",
         "through the server / in process"),
        ("server: ping round trip", f"{server['ping_ms']:.3f} ms", "", ""),
        (f"training: stage 1 step, {training['network']} network, batch {training['batch_size']}, {training['device']}",
         f"{training['stage1_s']:.3f} s", "1.00", "reference"),
        ("training: stage 2 step (self-reconstruction)", f"{training['stage2_s']:.3f} s",
         f"{training['stage2_ratio']:.2f}", "stage 2 step / stage 1 step"),
        ("training: stage 3 step (cross-reconstruction)", f"{training['stage3_s']:.3f} s",
         f"{training['stage3_ratio']:.2f}", "stage 3 step / stage 1 step"),
    ]


def markdown(table: list[tuple[str, str, str, str]], seconds: float, quick: bool) -> str:
    stamp = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    lines = [
        "# Benchmarks",
        "",
        f"`benchmarks/run_all.py`{' --quick (sizes too small to mean anything)' if quick else ''}, "
        f"{stamp}, {seconds:.0f} s in all.",
        "",
        f"Machine: {machine()}.",
        "",
        "| benchmark | measured | ratio | ratio of |",
        "| --- | --- | --- | --- |",
    ]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in table]
    return "\n".join(lines) + "\n"


def kept_sections(path: Path) -> str:
    """The file's sections after this table (the other benchmarks' write-ups): only the table is replaced."""
    text = path.read_text() if path.is_file() else ""
    at = text.find("\n## ")
    return "" if at < 0 else text[at:]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=HERE / "RESULTS.md")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--device", default=None, help="engine and training device (the server bench runs on cpu)")
    args = ap.parse_args()
    size = QUICK if args.quick else FULL
    start = time.perf_counter()
    print("[1/3] engine", flush=True)
    engine = bench_engine.measure(size["points"], args.device, size["repeats"])
    print("[2/3] server", flush=True)
    server = bench_server.measure(size["points"], size["repeats"])
    print("[3/3] training steps", flush=True)
    training = bench_training.measure(size["network"], size["batch"], args.device, size["repeats"])
    text = markdown(rows(engine, server, training), time.perf_counter() - start, args.quick)
    tmp = args.out.with_suffix(".tmp")
    tmp.write_text(text + kept_sections(args.out))
    tmp.replace(args.out)
    print(text)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
