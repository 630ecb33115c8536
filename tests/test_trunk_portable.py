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
