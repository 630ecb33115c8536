"""What the engine keeps while it runs, table by table, on the 32-bit MicroPython VM.

    .venv/bin/python bench/vm_tables.py              # the load of issue 13 for 2 minutes
    .venv/bin/python bench/vm_tables.py --minutes 4
    .venv/bin/python bench/vm_tables.py --at 241dbf2 # lib/switchboard as it was at a commit

Runs tests/w5500/budget.py's LOAD (32 phones with digest re-registering every 60 s, 8 calls a
second held 1 s; modules compiled to .mpy as on a board) with CALL_HISTORY 16 and
QUALIFY_INTERVAL 60 (TABLES_ON; --as-budget leaves LOAD's settings alone), then empties the
engine's tables one at a time and prints the live heap each gave back (gc.mem_alloc() after a
real collection, bench/vm_tables_probe.py's held_steps): lingering transactions, call history,
active calls, bindings, nonce counts, HA1 values. Then the empty engine is taken apart the
same way, part by part. An object two tables share is counted where it is freed last
(transactions go first: they refer to call records). The harness's own objects are garbage
by then, so what the engine shares with them (a phone's address tuple) counts as the
engine's, as on a board.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile

import benchlib as bl

sys.path.insert(0, os.path.join(bl.TESTS, "w5500"))

import budget  # noqa: E402

# Beside budget.LOAD's settings, so that the call history and the ping state hold records
# (the RP2040 profile turns both off; boards with the dashboard have them).
TABLES_ON = {"CALL_HISTORY": 16, "QUALIFY_INTERVAL": 60}
LABELS = {
    "transactions": "transactions (active and lingering)",
    "calls_history": "calls: history",
    "calls_active": "calls: active",
    "bindings": "bindings",
    "qualify": "qualify: ping state per binding",
    "nonces": "auth: nonce counts",
    "ha1": "auth: HA1 per user",
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=int, default=2)
    parser.add_argument("--board-sources", action="store_true",
                        help="a new (ip, port) for every datagram, as the board's socket "
                             "gives (the budget load shares one per phone)")
    parser.add_argument("--as-budget", action="store_true",
                        help="the budget load's settings as they are (CALL_HISTORY and "
                             "QUALIFY_INTERVAL as the RP2040 profile has them)")
    parser.add_argument("--at", metavar="COMMIT",
                        help="measure lib/switchboard as it was at this commit (git archive)")
    args = parser.parse_args()
    bl.vm_node()
    bl.print_machine("bench/vm_tables.py", ["VM: @micropython/micropython-webassembly-pyscript "
                                            "(tests/mpy), modules as .mpy"])
    spec = dict(budget.LOAD, minutes=args.minutes, held=True, fresh_sources=args.board_sources,
                settings=dict(budget.LOAD["settings"]))
    if not args.as_budget:  # every table holds records (the RP2040 profile keeps none there)
        spec["settings"].update(TABLES_ON)
    workdir = tempfile.mkdtemp(prefix="bench-tables-")
    try:
        package = None
        if args.at:
            archive = subprocess.run(["git", "archive", args.at, "lib/switchboard"], cwd=bl.ROOT,
                                     capture_output=True, check=True, timeout=60).stdout
            subprocess.run(["tar", "-x", "-C", workdir], input=archive, check=True, timeout=60)
            package = os.path.join(workdir, "lib", "switchboard")
            print("lib/switchboard as at commit %s" % args.at)
        lib = budget.make_lib(os.path.join(workdir, "mpy"), package=package)
        got = budget.measure_load(lib, spec, extra=[os.path.join(bl.BENCH, "vm_tables_probe.py")])
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print("== Load: %d phones with digest re-registering every %d s, %d calls/s held %d ms, "
          "%d minutes; %s" % (spec["phones"], spec["rereg_s"], spec["calls_per_s"],
                              spec["hold_ms"], args.minutes,
                              "a new source address for every datagram (as on the board)"
                              if args.board_sources else "one source tuple per phone"))
    print("settings: %s" % " ".join("%s=%s" % kv for kv in sorted(spec["settings"].items())))
    print("imports %.1f KB, engine built %.1f KB, peak %.1f KB (budget %.1f KB)"
          % (got["imports"] / 1024, got["engine"] / 1024, got["peak"] / 1024,
             budget.LOAD_BUDGET / 1024))
    print()
    print("== What each table holds after the load (emptied in this order)")
    rows = []
    total = 0
    for name, records, size in got["held"]:
        if name.startswith("empty:"):
            continue
        total += size
        rows.append([LABELS.get(name, name), str(records), str(size),
                     str(size // records) if records else "-"])
    rows.append(["all tables", "", str(total), ""])
    print(bl.table(rows, ["table", "records", "bytes", "bytes/record"]))
    print()
    print("== The engine with its tables empty, part by part")
    rows = []
    total = 0
    for name, _, size in got["held"]:
        if name.startswith("empty:"):
            total += size
            rows.append([name[6:], str(size)])
    rows.append(["all parts", str(total)])
    print(bl.table(rows, ["part", "bytes"]))
    print()
    print("load average at end (1, 5, 15 min): %s" % bl.load_average())


if __name__ == "__main__":
    main()
