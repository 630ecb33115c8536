"""The trunk on the 32-bit MicroPython VM: tests/trunk_flows.py (registration with a 401,
calls out with 407s on INVITE and BYE, a DID call in, a refused refresh, back-off) gives a
byte-identical transcript under CPython and in the VM, with adafruit_hashlib for MD5 there
as on a board."""

import os
import shutil

from mpyvm import run_micropython

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_trunk_flows_same_under_micropython(tmp_path):
    import adafruit_hashlib
    import trunk_flows

    lines = []
    trunk_flows.run(lines.append)
    expected = "\n".join(lines) + "\n"
    lib = tmp_path / "lib"
    shutil.copytree(os.path.join(ROOT, "lib", "switchboard"), lib / "switchboard",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(os.path.dirname(adafruit_hashlib.__file__), lib / "adafruit_hashlib",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(os.path.join(ROOT, "tests", "flows.py"), lib / "flows.py")
    script = tmp_path / "run_trunk_flows.py"
    with open(os.path.join(ROOT, "tests", "trunk_flows.py")) as f:
        script.write_text(f.read().replace('if __name__ == "__main__":', "if True:"))
    got = run_micropython(str(script), lib_dir=str(lib))
    assert "algorithm=SHA-256" in expected and "algorithm=MD5" in expected
    assert "trunk failing 408 Request Timeout" in expected
    assert got == expected


# Budgets on the 32-bit VM (bench/trunk_memory.py measured 20448, 848 and 2324 bytes at
# commit 3970b6e; docs/performance.md#trunk): a regression past these fails.
BUDGET_IMPORT = 24 * 1024
BUDGET_TRUNK = 2 * 1024
BUDGET_PER_CALL = 3 * 1024
GROWTH_SLACK = 256


def test_trunk_heap_within_budget():
    import subprocess
    import sys

    out = subprocess.run([sys.executable, os.path.join(ROOT, "bench", "trunk_memory.py")],
                         capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert out.returncode == 0, out.stderr + out.stdout
    rows = {}
    for line in out.stdout.split("\n"):
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) == 2 and cells[1].isdigit():
            rows[cells[0].split(" (")[0]] = int(cells[1])
    assert 0 < rows["import switchboard.trunk"] <= BUDGET_IMPORT, rows
    assert 0 < rows["Trunk object over an engine"] <= BUDGET_TRUNK, rows
    assert 0 < rows["per call out in progress"] <= BUDGET_PER_CALL, rows
    # no growth per round once warm (a leak of even 100 B a call is 800 B a round); the first
    # rounds may leave one table resize behind (a dict or a qstr pool: up to 2 KB; the
    # engine's generations of finished transactions settle in the third)
    first = rows["left after those calls ended and their transactions expired"]
    third = rows["the same after a third round of 8 calls"]
    fourth = rows["the same after a fourth round of 8 calls"]
    assert third <= first + 2048 and fourth <= third + GROWTH_SLACK, rows
