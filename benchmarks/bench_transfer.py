"""A Transfer end to end against the engine in process, side by side in one run.

From the add-on's gather (real bpy, headless) through a real server on loopback to the
attributes written on the target, on two PSB chairs subdivided to about 20k vertices
each, against `Correspondence.correspond` of the same pair in this process (both shapes
prepared, as a first request to the server must).  Each repeat moves both objects a
little, so the server cannot reuse shapes it prepared before.  The same with Auto-align
in yaw mode (the panel's default) at both ends.  Then one source to ten targets (other PSB
chairs, about 20k vertices each), per target, as they face.  Three lines:

    one target: seconds=<per target> ratio=<that / in-process correspond> in_process=<s>
    one target, Auto-align yaw: seconds=<per target> ratio=<...> in_process=<s>
    10 targets: seconds=<per target> ratio=<that / in-process correspond> in_process=<s>

    .venv/bin/python benchmarks/bench_transfer.py [--vertices 20000] [--repeats 5] [--targets 10] [--threads N]

Both ends run the model with the same number of torch threads (--threads, also given to
the server as OMP_NUM_THREADS): the server runs it on a worker thread, where OpenMP does
not follow torch.set_num_threads, and on a busy machine a different thread count alone
changes the time severalfold.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import bpy  # noqa: E402  (the pip bpy module: headless Blender)

from blender_addon import api, frames  # noqa: E402
from blender_addon.client import Client  # noqa: E402
from model import Correspondence  # noqa: E402
from tests.server.conftest import free_port  # noqa: E402
from training.prepare import load_psb_upright  # noqa: E402

PSB_CHAIRS = ROOT.parent / "shared" / "data" / "psb" / "chair"
CHECKPOINT = ROOT / "model" / "checkpoints" / "chair.pth"
SOURCE, TARGET = "102", "117"  # the two largest chairs (15.7k and 14.4k vertices before subdividing)


def chair(name: str, vertices: int) -> tuple[np.ndarray, np.ndarray]:
    """A PSB chair, upright (model frame), its largest faces split until it has `vertices`."""
    mesh = load_psb_upright(PSB_CHAIRS / f"{name}.off.gz")
    while len(mesh.vertices) < vertices:
        need = vertices - len(mesh.vertices)
        mesh = mesh.subdivide(face_index=np.argsort(-mesh.area_faces)[: max(1, int(need / 1.6))])
    return np.asarray(mesh.vertices, np.float64), np.asarray(mesh.faces, np.int64)


def blender_object(name: str, mesh: tuple[np.ndarray, np.ndarray]) -> bpy.types.Object:
    me = bpy.data.meshes.new(name)
    me.from_pydata(frames.to_blender(mesh[0]).tolist(), [], mesh[1].tolist())
    me.update()
    ob = bpy.data.objects.new(name, me)
    bpy.context.scene.collection.objects.link(ob)
    return ob


def world_model_frame(ob: bpy.types.Object) -> tuple[np.ndarray, np.ndarray]:
    """The object as the engine would get it from the add-on: world space, model frame, triangles."""
    arrays = api.mesh_data.gather(ob)
    return arrays.vertices, arrays.triangles


def start_server(threads: int) -> tuple[subprocess.Popen, str]:
    address = f"tcp://127.0.0.1:{free_port()}"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": str(threads)}
    proc = subprocess.Popen([sys.executable, "-m", "server", "--bind", address, "--checkpoint", str(CHECKPOINT),
                             "--device", "cpu", "--log-level", "WARNING"], cwd=ROOT, stdout=subprocess.PIPE,
                            text=True, env=env)
    if not proc.stdout.readline().startswith("ready"):
        raise RuntimeError("the benchmark server did not start")
    return proc, address


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def measure(vertices: int = 20_000, repeats: int = 5, n_targets: int = 10,
            threads: int = torch.get_num_threads()) -> dict:
    torch.set_num_threads(threads)
    bpy.ops.wm.read_factory_settings(use_empty=True)
    src, tgt = blender_object("source", chair(SOURCE, vertices)), blender_object("target", chair(TARGET, vertices))
    engine = Correspondence.load(CHECKPOINT, device="cpu")
    proc, address = start_server(threads)
    try:
        opts = {"address": address, "timeout": 900.0}
        api.transfer(src, [tgt], **opts)  # warm-up, both ends
        engine.correspond(world_model_frame(src), world_model_frame(tgt))
        local, remote = {False: [], "yaw": []}, {False: [], "yaw": []}
        for i in range(repeats):  # alternate so drift from other load hits both alike
            for align in local:
                for ob in (src, tgt):
                    ob.location.x += 1e-3  # other coordinates: nothing prepared before can be reused
                bpy.context.view_layer.update()
                pair = world_model_frame(src), world_model_frame(tgt)
                local[align].append(timed(lambda: engine.correspond(*pair, align=align)))
                remote[align].append(timed(lambda: api.transfer(src, [tgt], align=align, **opts)))
        one = prepared(address)
        names = [p.name.split(".")[0] for p in sorted(PSB_CHAIRS.glob("*.off.gz"))]
        many = [blender_object(f"t{n}", chair(n, vertices)) for n in names if n != SOURCE][:n_targets]
        src.location.x += 1e-3  # the source is prepared once within the Transfer, not before it
        bpy.context.view_layer.update()
        per_target = timed(lambda: api.transfer(src, many, **opts)) / len(many)
        cache = {k: v - one[k] for k, v in prepared(address).items() if k in ("hits", "misses")}
        cache.update(entries=prepared(address)["entries"], mb=prepared(address)["bytes"] / 1e6, one_target=one)
    finally:
        proc.terminate()
        proc.wait(10)
    lo, lo_yaw = statistics.median(local[False]), statistics.median(local["yaw"])
    return {"vertices": (len(src.data.vertices), len(tgt.data.vertices)), "in_process": lo,
            "one_target": statistics.median(remote[False]), "one_ratio": statistics.median(remote[False]) / lo,
            "yaw_in_process": lo_yaw, "yaw_target": statistics.median(remote["yaw"]),
            "yaw_ratio": statistics.median(remote["yaw"]) / lo_yaw,
            "targets": len(many), "per_target": per_target, "many_ratio": per_target / lo,
            "many_vertices": int(np.mean([len(o.data.vertices) for o in many])), "cache": cache}


def prepared(address: str) -> dict:
    """The server's prepared-shape cache counts (server/cache.py)."""
    with Client(address) as c:
        return c.ping()["prepared"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--vertices", type=int, default=20_000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--targets", type=int, default=10)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads(),
                    help="torch threads at both ends (default: the server's own, one per core)")
    args = ap.parse_args()
    r = measure(args.vertices, args.repeats, args.targets, args.threads)
    print(f"# source {r['vertices'][0]} vertices, target {r['vertices'][1]}; {r['targets']} targets of "
          f"{r['many_vertices']} vertices on average; {args.threads} torch thread(s) at both ends")
    print(f"one target: seconds={r['one_target']:.3f} ratio={r['one_ratio']:.3f} in_process={r['in_process']:.3f}")
    print(f"one target, Auto-align yaw: seconds={r['yaw_target']:.3f} ratio={r['yaw_ratio']:.3f} "
          f"in_process={r['yaw_in_process']:.3f}")
    print(f"{r['targets']} targets: seconds={r['per_target']:.3f} ratio={r['many_ratio']:.3f} "
          f"in_process={r['in_process']:.3f}")
    c = r["cache"]
    print(f"# server cache over the {r['targets']} targets: {c['misses']} shapes prepared, {c['hits']} reused; "
          f"{c['entries']} kept, {c['mb']:.0f} MB; after the one-target runs: {c['one_target']}")


if __name__ == "__main__":
    main()
