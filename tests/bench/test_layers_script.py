import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "layers.py"


def run(*args):
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True,
                          timeout=300)


def test_layers_benchmark_compares_each_fast_layer_with_its_stock_twin():
    r = run("--batch", "8", "--rounds", "1", "--reps", "1", "--threads", "1")
    assert r.returncode == 0, r.stderr
    rows = [line for line in r.stdout.splitlines() if line.rstrip().endswith("x")]
    assert len(rows) == 6
    assert sum("stock" in row and "fast" in row for row in rows) == 5
    assert any("layers" in row and "fused" in row for row in rows)


def test_layers_benchmark_rejects_a_bad_batch():
    r = run("--batch", "0")
    assert r.returncode == 2 and "must be positive" in r.stderr and "Traceback" not in r.stderr
