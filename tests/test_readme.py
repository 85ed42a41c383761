"""Every shell command of the README runs, so the README cannot drift from the code.

Commands run as written in a scratch folder (`.venv/bin/python` is this interpreter), with
the extra flags below where the real thing takes hours (the training commands on the tiny
network, which the evaluation and report after them then load); the few run by other
tests say where.
"""
import re
import shlex
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import trimesh

from training.prepare import load_mesh

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"

ELSEWHERE = {
    "scripts/demo.sh": "tests/test_demo.py",
    "scripts/test.sh": ".ci/run",
    ".venv/bin/python -m blender_addon.build": "tests/addon/test_build.py",
    ".venv/bin/python benchmarks/run_all.py": "tests/test_benchmarks.py",
    # the same flags against a --curve server on loopback
    ".venv/bin/python -m server.client --address tcp://farm:5555 --secret-file ~/.corr/key --curve ping":
        "tests/server/test_curve.py",
}
# README command -> flags added here to keep it short; in the order they run
SHORTENED = {
    ".venv/bin/python -m training.prepare --meshes my_chairs/ --out data/my_chairs": "",
    ".venv/bin/python -m training.train_stage1 --cate_name chair --epoch 50 --resolution 16 --batch_size 45 "
    "--data_dir data/my_chairs": "--max_steps_per_epoch 1 --checkpoint_dir runs/stage1 --no_progress --preset tiny",
    ".venv/bin/python -m training.train --cate_name chair --preset small":
        "--max_steps_per_epoch 1 --procedural_count 8 --no_progress --preset tiny",
    ".venv/bin/python -m training.evaluate --checkpoint runs/chair/final.pth --procedural chair": "--count 5",
    ".venv/bin/python -m training.report --category chair --checkpoint runs/chair/final.pth":
        "--count 5 --real_targets 2",
    ".venv/bin/python benchmarks/bench_engine.py": "--points 500 --repeats 1",
    ".venv/bin/python -m training.artist --category chair --out data/artist_chair": "--limit 1 --workers 1",
}
SERVERS = [
    ".venv/bin/python -m server",
    ".venv/bin/python -m server --device cpu --checkpoint runs/chair/final.pth --bind tcp://127.0.0.1:6000",
]
CLIENT = [
    ".venv/bin/python -m server.client correspond source.obj target.obj --out target_labeled.ply",
    ".venv/bin/python -m server.client transfer source_colored.ply target.obj --out target_colored.ply",
    ".venv/bin/python -m server.client segment table.obj --out table_parts.ply --category table --align yaw",
]


def readme_commands() -> list[str]:
    text = README.read_text()
    lines = [line.split("  #")[0].strip() for block in re.findall(r"```bash\n(.*?)```", text, re.S)
             for line in block.splitlines()]
    return [line for line in lines if line]


def argv(command: str) -> list[str]:
    """The README line as an argument list, run by this interpreter (no shell: stopping it stops it)."""
    words = shlex.split(command)
    return [sys.executable if words[0] == ".venv/bin/python" else words[0], *words[1:]]


def shell(command: str, cwd: Path, extra: str = "", timeout: float = 600) -> str:
    cmd = argv(command) + extra.split()
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{command}\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
    return proc.stdout


class Server:
    def __init__(self, command: str, cwd: Path):
        self.proc = subprocess.Popen(argv(command), cwd=cwd, stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        assert line.startswith("ready"), f"{command}: {line!r}"
        self.address = line.split()[1]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.proc.terminate()
        self.proc.wait(15)


def test_every_readme_command_is_exercised():
    listed = readme_commands()
    known = set(ELSEWHERE) | set(SHORTENED) | set(SERVERS) | set(CLIENT)
    assert set(listed) == known, f"not exercised: {set(listed) - known}; stale here: {known - set(listed)}"


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


@pytest.mark.slow
def test_readme_commands_run(tmp_path, psb_dir):
    if not (_port_free(5555) and _port_free(6000)):
        pytest.skip("the README's ports 5555/6000 are taken on this machine")
    (tmp_path / "my_chairs").mkdir()
    for name in ("101", "105"):
        shutil.copy(psb_dir / "chair" / f"{name}.off.gz", tmp_path / "my_chairs")
    (tmp_path / "benchmarks").symlink_to(ROOT / "benchmarks")
    load_mesh(psb_dir / "chair" / "101.off.gz").export(tmp_path / "source.obj")
    load_mesh(psb_dir / "chair" / "110.off.gz").export(tmp_path / "target.obj")
    load_mesh(psb_dir / "table" / "141.off.gz").export(tmp_path / "table.obj")

    out = [shell(command, tmp_path, extra) for command, extra in SHORTENED.items()]
    assert len(list((tmp_path / "data" / "my_chairs").glob("*.npz"))) == 2
    assert (tmp_path / "runs" / "stage1" / "Corr-49.pth").is_file()
    assert (tmp_path / "runs" / "chair" / "final.pth").is_file()
    assert "nearest neighbour" in out[3]  # the evaluation table
    assert (tmp_path / "runs" / "chair" / "report" / "chair_pck.png").is_file()  # beside the checkpoint
    assert "seconds=" in out[5]
    assert len(list((tmp_path / "data" / "artist_chair").glob("*.npz"))) == 1

    with Server(SERVERS[0], tmp_path) as server:
        assert server.address == "tcp://127.0.0.1:5555"
        shell(CLIENT[0], tmp_path)
        shutil.copy(tmp_path / "target_labeled.ply", tmp_path / "source_colored.ply")
        shell(CLIENT[1], tmp_path)
        shell(CLIENT[2], tmp_path)
        shell(".venv/bin/python -m server.client ping", tmp_path)  # troubleshooting
    labeled = trimesh.load(tmp_path / "target_labeled.ply", process=False)
    assert len(labeled.vertices) == len(trimesh.load(tmp_path / "target.obj", process=False).vertices)
    assert (tmp_path / "target_colored.ply").stat().st_size > 0
    assert len(trimesh.load(tmp_path / "table_parts.ply", process=False).vertices) == len(
        trimesh.load(tmp_path / "table.obj", process=False).vertices)

    with Server(SERVERS[1], tmp_path) as server:
        assert server.address == "tcp://127.0.0.1:6000"
        assert "chair" in shell(".venv/bin/python -m server.client --address tcp://127.0.0.1:6000 info", tmp_path)
