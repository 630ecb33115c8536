"""A bounded coverage-guided fuzzing run of Engine.receive (tools/fuzz.py, atheris)."""

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_fuzz_engine_for_20_seconds(tmp_path):
    proc = subprocess.run(
        [sys.executable, os.path.join(ROOT, "tools", "fuzz.py"), "--seconds", "20",
         "--corpus", str(tmp_path)],
        capture_output=True, text=True, timeout=180, check=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-4000:]
    runs = [line for line in output.splitlines() if line.startswith("Done ")]
    assert runs, output[-2000:]
    assert int(runs[-1].split()[1]) > 5000  # it really ran (each run feeds the engine twice)
    assert not [n for n in os.listdir(tmp_path) if n.startswith("crash-")]
