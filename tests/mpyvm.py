"""Run Python code under the MicroPython WebAssembly VM (tests/mpy/run.mjs, driven by node).

The VM is MicroPython 1.27 (PyScript variant, npm package
@micropython/micropython-webassembly-pyscript): a 32-bit build (sys.maxsize == 2**31 - 1,
31-bit small ints) without `socket`, so tests drive the sans-I/O core directly. Its heap
starts at 2 MB and grows on demand, so measure memory with gc.mem_alloc() differences,
not by waiting for MemoryError. `bash tools/test` installs node's package.
"""

import os
import shutil
import subprocess
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
LIB_DIR = os.path.join(ROOT, "lib")
MPY_DIR = os.path.join(HERE, "mpy")
RUNNER = os.path.join(MPY_DIR, "run.mjs")
PACKAGE = "@micropython/micropython-webassembly-pyscript"
PACKAGE_DIR = os.path.join(MPY_DIR, "node_modules", *PACKAGE.split("/"))
DEFAULT_HEAP = 2 * 1024 * 1024


class MicroPythonUnavailable(RuntimeError):
    """node or the VM package is missing: a test that needs the VM fails with this."""


class MicroPythonError(AssertionError):
    """The script raised (or exited non-zero) inside the VM."""

    def __init__(self, returncode, stdout, stderr):
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        super().__init__(
            "MicroPython exited with %d\n--- stderr ---\n%s--- stdout ---\n%s"
            % (returncode, stderr, stdout)
        )


def node_path():
    """The node executable, or MicroPythonUnavailable with what to do about it."""
    node = shutil.which("node")
    if node is None:
        raise MicroPythonUnavailable("node is not installed; run `bash tools/test` to set up")
    if not os.path.isfile(os.path.join(PACKAGE_DIR, "package.json")):
        raise MicroPythonUnavailable(
            "%s is not installed under %s; run `bash tools/test` (it runs npm ci there)"
            % (PACKAGE, MPY_DIR)
        )
    return node


def _is_path(script):
    if isinstance(script, os.PathLike):
        return True
    return "\n" not in script and script.endswith(".py") and os.path.isfile(script)


def run_micropython(script, lib_dir=LIB_DIR, timeout=120, heap=DEFAULT_HEAP):
    """Run script (a .py path or Python source) with lib_dir's .py files under /lib.

    Returns what the script printed on stdout. Raises MicroPythonError (with the VM's
    traceback) when the script fails, MicroPythonUnavailable when the VM is not installed.
    The node process is killed if it outlives timeout seconds.
    """
    node = node_path()
    with tempfile.TemporaryDirectory(prefix="mpyvm-") as tmp:
        if _is_path(script):
            script_path = os.fspath(script)
        else:
            script_path = os.path.join(tmp, "main.py")
            with open(script_path, "w", encoding="utf-8") as f:
                f.write(script)
        if lib_dir is None:
            lib_dir = os.path.join(tmp, "lib")
            os.mkdir(lib_dir)
        cmd = [node, RUNNER, "--heap=%d" % heap, os.fspath(lib_dir), script_path]
        proc = subprocess.run(
            cmd,
            cwd=MPY_DIR,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    stdout = proc.stdout.decode("utf-8", "replace")
    stderr = proc.stderr.decode("utf-8", "replace")
    if proc.returncode != 0:
        raise MicroPythonError(proc.returncode, stdout, stderr)
    return stdout
