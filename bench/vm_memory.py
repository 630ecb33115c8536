"""Heap and per-message cost of the sans-I/O core on the MicroPython VM (32-bit, like a board).

    .venv/bin/python bench/vm_memory.py
    .venv/bin/python bench/vm_memory.py --n 300 --rounds 7

Prints, from the npm MicroPython WebAssembly VM (the one tests/mpyvm.py uses):
  - heap after importing the core (switchboard.engine and what it imports), module by module,
    and after everything a board imports;
  - heap with 1, 32 and 128 bindings (bytes per binding), with the REGISTER transactions
    still lingering and after they are gone;
  - heap per active call, per finished call kept in the history;
  - the allocation while handling one message (REGISTER, INVITE forward, 180/200 relay, ACK,
    BYE, 200 to BYE): with no collection in between, an upper bound of the peak;
  - whether steady traffic (register refreshes and complete calls) grows the heap;
  - time per message for REGISTER, INVITE forward, 180 relay, 200 relay and BYE (and ACK,
    200 to BYE), on the VM and on this CPython, and their ratio.

The measuring code is bench/vm_probe.py, run by bench/vm_steps.mjs so that the VM really
collects garbage between measurements (it cannot inside one runPython call). Messages come
from tests/flows.py Phone and are built outside the timed part. The VM's clock counts whole
milliseconds, so a batch of N messages is timed and the fastest of ROUNDS batches counts.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile

import benchlib as bl

PROBE = os.path.join(bl.BENCH, "vm_probe.py")
STEPS = os.path.join(bl.BENCH, "vm_steps.mjs")
TARGET_CORE = 40 * 1024
TARGET_BINDING = 300
TARGET_CALL = 1536
MESSAGES = ("REGISTER", "INVITE forward", "180 relay", "200 relay", "BYE forward",
            "ACK relay", "200 (BYE) relay")


def lib_dir(workdir):
    """lib/switchboard and tests/flows.py side by side, as the VM's /lib."""
    path = os.path.join(workdir, "lib")
    shutil.copytree(os.path.join(bl.ROOT, "lib", "switchboard"), os.path.join(path, "switchboard"),
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(os.path.join(bl.TESTS, "flows.py"), path)
    return path


def probe_script(workdir, mode, n, rounds, cycles):
    path = os.path.join(workdir, "probe_%s.py" % mode)
    with open(PROBE) as f:
        text = f.read()
    with open(path, "w") as f:
        f.write("MODE = %r\nN = %d\nROUNDS = %d\nCYCLES = %d\n" % (mode, n, rounds, cycles))
        f.write(text)
    return path


def run_vm(node, lib, script, heap, timeout):
    proc = subprocess.run([node, STEPS, "--heap=%d" % heap, lib, script], cwd=bl.BENCH,
                          capture_output=True, text=True, timeout=timeout, check=False)
    if proc.returncode != 0:
        sys.exit("the VM run failed (exit %d):\n%s\n%s" % (proc.returncode, proc.stderr,
                                                          proc.stdout))
    return proc.stdout


def run_cpython(lib, script, timeout):
    env = dict(os.environ)
    env["PYTHONPATH"] = lib
    proc = subprocess.run([sys.executable, script], capture_output=True, text=True, env=env,
                          timeout=timeout, check=False)
    if proc.returncode != 0:
        sys.exit("the CPython run failed (exit %d):\n%s" % (proc.returncode, proc.stderr))
    return proc.stdout


def parse(text):
    """[(key, [values])] from the probe's lines."""
    rows = []
    for line in text.splitlines():
        parts = line.split()
        if parts:
            rows.append((parts[0], parts[1:]))
    return rows


def first(rows, key):
    for k, values in rows:
        if k == key:
            return values
    return None


def all_of(rows, key):
    return [values for k, values in rows if k == key]


def kb(n):
    return "%s B (%.1f KB)" % (format(n, ","), n / 1024)


def verdict(value, target):
    return "meets" if value <= target else "MISSED by %s" % format(value - target, ",")


def report_memory(rows):
    interpreter = first(rows, "interpreter")
    print("== Heap on the VM: %s, sys.maxsize %s (32-bit); gc.mem_alloc() after a collection"
          % (interpreter[2].replace("_", " "), interpreter[1]))
    core = int(first(rows, "core")[0])
    print("core after import (switchboard.engine and what it imports): %s; target <= 40 KB: %s"
          % (kb(core), verdict(core, TARGET_CORE)))
    imports = all_of(rows, "import")
    print(bl.table([[name, format(int(size), ",")] for name, size in imports],
                   ["module (in import order)", "bytes"]))
    board = first(rows, "board_imports")
    print("everything a board's loop imports (core + auth, log, clock, udp, app): %s"
          % kb(int(board[0])))
    for values in all_of(rows, "import_failed"):
        print("  could not import %s: %s" % (values[0], values[1]))
    print("Engine() with empty tables: %s B" % format(int(first(rows, "engine_instance")[0]),
                                                      ","))
    print()
    print("== Bindings (REGISTERs from different phones; transactions linger 32 s after each)")
    table = []
    for target, settled, lingering in all_of(rows, "bindings"):
        table.append([target, format(int(settled), ","), format(int(lingering), ",")])
    print(bl.table(table, ["bindings", "heap over 0 bindings", "... while REGISTER transactions "
                                                             "linger"]))
    by_count = {int(t): (int(s), int(g)) for t, s, g in all_of(rows, "bindings")}
    per = (by_count[128][0] - by_count[1][0]) // 127
    per_lingering = (by_count[128][1] - by_count[1][1]) // 127
    print("bytes per binding (1 -> 128): %s; target <= 300: %s" % (format(per, ","),
                                                                    verdict(per, TARGET_BINDING)))
    print("bytes per binding while its REGISTER transaction lingers: %s"
          % format(per_lingering, ","))
    print("rate-limit table (RATE_LIMIT on, the default): %s B per source address"
          % first(rows, "per_rate_limit_source")[0])
    print()
    talking, lingering, calls = (int(v) for v in first(rows, "per_call"))
    print("== Calls (%d answered calls held open)" % calls)
    print("heap per active call: %s B; target <= 1.5 KB: %s"
          % (format(talking, ","), verdict(talking, TARGET_CALL)))
    print("heap per call just after the ACK, INVITE transactions still lingering: %s B"
          % format(lingering, ","))
    print("heap per finished call kept in the history (CALL_HISTORY): %s B"
          % format(int(first(rows, "per_history_call")[0]), ","))
    print()
    print("== Allocation while handling one message (no collection meanwhile: an upper bound "
          "of the peak; largest of the 16 calls)")
    print(bl.table([[name.replace("_", " "), format(int(size), ",")]
                    for name, size in all_of(rows, "peak")], ["message", "bytes allocated"]))
    print()
    print("== Steady state: per cycle two REGISTER refreshes and one call "
          "(INVITE/180/200/ACK/BYE/200); heap after the transactions' linger time")
    steady = all_of(rows, "steady")
    table = []
    base = int(steady[0][1])
    for cycle, heap, active, history, txns, errors in steady:
        table.append([cycle, format(int(heap), ","), format(int(heap) - base, "+,"), active,
                      history, txns, errors])
    print(bl.table(table, ["cycles", "heap", "vs first", "active calls", "history",
                           "transactions", "internal errors"]))
    growth = int(steady[-1][1]) - base
    span = int(steady[-1][0]) - int(steady[0][0])
    print("growth over the last %d cycles: %s B (%.1f B per cycle)"
          % (span, format(growth, "+,"), growth / max(1, span)))
    last = int(steady[-1][1]) - int(steady[-2][1])
    last_span = int(steady[-1][0]) - int(steady[-2][0])
    print("growth over the last %d of them: %s B" % (last_span, format(last, "+,")))
    for values in all_of(rows, "warning"):
        print("WARNING: %s" % " ".join(values))
    print()


def report_timing(vm_rows, cp_rows):
    vm = {v[0].replace("_", " "): v for v in all_of(vm_rows, "time")}
    cp = {v[0].replace("_", " "): v for v in all_of(cp_rows, "time")}
    print("== Time per message: fastest batch of %s messages; VM vs CPython %s"
          % (vm["REGISTER"][2], first(cp_rows, "interpreter")[2].split("_")[0]))
    table = []
    for name in MESSAGES:
        v = vm[name]
        c = cp[name]
        n = int(v[2])
        vm_us = int(v[1]) / n
        cp_us = int(c[1]) / int(c[2])
        table.append([name, "%.1f" % vm_us, "%.1f" % cp_us, "%.1f" % (vm_us / cp_us),
                      "%s/%s" % (v[3], c[3])])
    print(bl.table(table, ["message", "VM us", "CPython us", "VM / CPython",
                           "datagrams out (VM/CPython)"]))
    errors = (first(vm_rows, "internal_errors") or ["?"])[0], \
        (first(cp_rows, "internal_errors") or ["?"])[0]
    print("engine internal errors during the timed runs: VM %s, CPython %s" % errors)
    print()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=300, help="messages per timed batch")
    parser.add_argument("--rounds", type=int, default=5, help="batches; the fastest counts")
    parser.add_argument("--heap", type=int, default=2 * 1024 * 1024,
                        help="the VM's initial heap (it grows on demand)")
    parser.add_argument("--cycles", type=int, default=3000,
                        help="length of the steady-state run (register refreshes and calls)")
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--skip-timing", action="store_true")
    args = parser.parse_args()
    node = bl.vm_node()
    version = subprocess.run([node, "--version"], capture_output=True, text=True,
                             check=False).stdout.strip()
    bl.print_machine("bench/vm_memory.py", [
        "node: %s; VM: @micropython/micropython-webassembly-pyscript (tests/mpy)" % version,
        "timing: %d messages a batch, fastest of %d batches" % (args.n, args.rounds),
    ])
    workdir = tempfile.mkdtemp(prefix="bench-vm-")
    try:
        lib = lib_dir(workdir)
        if not args.skip_memory:
            script = probe_script(workdir, "memory", args.n, args.rounds, args.cycles)
            report_memory(parse(run_vm(node, lib, script, args.heap, 600)))
        if not args.skip_timing:
            script = probe_script(workdir, "timing", args.n, args.rounds, args.cycles)
            vm_rows = parse(run_vm(node, lib, script, args.heap, 900))
            cp_rows = parse(run_cpython(lib, script, 600))
            report_timing(vm_rows, cp_rows)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print("load average at end (1, 5, 15 min): %s" % bl.load_average())


if __name__ == "__main__":
    main()
