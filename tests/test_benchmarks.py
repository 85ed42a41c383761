"""The benchmarks run end to end (at --quick sizes) and write the table the README links."""
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_run_all_writes_a_table_of_side_by_side_ratios(tmp_path):
    out = tmp_path / "RESULTS.md"
    out.write_text("# Benchmarks\n\nan old table\n\n## Texture\n\nwritten by hand\n")
    proc = subprocess.run([sys.executable, "benchmarks/run_all.py", "--quick", "--out", str(out)], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    text = out.read_text()
    assert "Machine: " in text and "torch " in text
    assert "an old table" not in text and text.endswith("\n## Texture\n\nwritten by hand\n")  # only the table replaced
    rows = [line for line in text.splitlines() if line.startswith("| ") and not line.startswith(("| benchmark", "| ---"))]
    assert len(rows) == 6, rows
    ratios = {r.split(" | ")[0].strip("| "): r.split(" | ")[2] for r in rows if r.split(" | ")[2].strip()}
    assert len(ratios) == 5
    for name, value in ratios.items():
        assert re.fullmatch(r"\d+\.\d+", value), (name, value)
        assert float(value) > 0
    # stage 3 computes stage 1's occupancy loss and adds the reconstructions and the EMD
    stage3 = next(v for k, v in ratios.items() if k.startswith("training: stage 3"))
    assert float(stage3) > 1
