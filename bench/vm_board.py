"""The board's heap on the 32-bit MicroPython VM: what each library and module costs, what a
board imports per feature set, the simulated load of issue 13, and each profile's capacity.

    .venv/bin/python bench/vm_board.py              # everything (about 3 minutes)
    .venv/bin/python bench/vm_board.py --skip-load  # imports and profiles only (20 s)
    .venv/bin/python bench/vm_board.py --minutes 2  # a shorter load

Live heap is gc.mem_alloc() after a real collection (bench/vm_steps.mjs), on the npm
MicroPython VM that tests/mpyvm.py installs; the libraries are this Python's PyPI packages,
run as .py (the figures match CircuitPython's 32-bit VM within a few percent: PLATFORM.md).
The measuring code is tests/w5500/budget.py and bench/vm_board_probe.py, which the budget
tests (tests/integration/test_board_budget.py) use too. Modules are measured compiled to .mpy
by MicroPython's mpy-cross (what circup installs and deploy --mpy makes; the budgets apply to
this) and as .py source (a plain deploy: more interned names, so more heap).
"""

import argparse
import os
import shutil
import sys
import tempfile

import benchlib as bl

sys.path.insert(0, os.path.join(bl.TESTS, "w5500"))
sys.path.insert(0, os.path.join(bl.ROOT, "lib"))

import budget  # noqa: E402

from switchboard import profiles  # noqa: E402

PROFILED = (("W5500-EVB-Pico", "wiznet_w5500_evb_pico"),
            ("W55RP20-EVB-Pico", "wiznet_w55rp20_evb_pico"),
            ("Feather + Ethernet FeatherWing", "adafruit_feather_rp2040"),
            ("W5500-EVB-Pico2", "wiznet_w5500_evb_pico2"),
            ("ESP32-S3-ETH", "waveshare_esp32_s3_eth"))


def kb(n):
    return "%.1f" % (n / 1024)


def alone(libs):
    print("== Each imported alone, in a fresh VM (KB of live heap): from .mpy (what circup "
          "installs, what deploy --mpy makes) and from .py")
    rows = []
    for label, pre, names in budget.ALONE:
        rows.append([label] + [kb(budget.measure_imports(lib, names, pre)[0]) for lib in libs])
    print(bl.table(rows, ["library or module", ".mpy KB", ".py KB"]))
    print()


def feature_sets(libs):
    print("== What a board imports, per feature set (KB of live heap after start: the start-up "
          "modules dropped); budget %s KB" % kb(budget.IMPORT_BUDGET))
    totals = {}
    rows = []
    details = []
    for label, names in budget.FEATURE_SETS:
        row = [label]
        for kind, lib in zip(("mpy", "py"), libs):
            total, steps, _ = budget.measure_imports(lib, names)
            totals[(label, kind)] = total
            row += [kb(total), "fits" if total <= budget.IMPORT_BUDGET else "over by %s" % kb(
                total - budget.IMPORT_BUDGET)]
            details.append(steps)
        rows.append(row)
    print(bl.table(rows, ["feature set", ".mpy KB", "", ".py KB", ""]))
    print()
    print("in import order (SIP + digest + dashboard), KB each adds (the steps carry the "
          "interpreter's string-table growth where it happens):")
    mpy, py = details[-2], details[-1]
    print(bl.table([[m[0], kb(m[1]), kb(p[1])] for m, p in zip(mpy, py)],
                   ["step", ".mpy KB", ".py KB"]))
    print()
    return totals


def capacity(totals):
    print("== Board profiles: heap budget, default features, table limits, heap left (imports "
          "from .mpy)")
    rows = []
    for name, board_id in PROFILED:
        table, heap_kb, chip = profiles.defaults(board_id, {}.get)
        web = table["HTTP_PORT"] != 0
        label = "SIP + digest + dashboard" if web else "SIP + digest"
        imported = totals[(label, "mpy")]
        used = (table["MAX_BINDINGS"] * profiles.COSTS["bindings"]
                + table["MAX_TRANSACTIONS"] * profiles.COSTS["transactions"]
                + table["MAX_CALLS"] * (profiles.COSTS["calls"]
                                        + (profiles.DASHBOARD_CALL if web else 0))
                + table["CALL_HISTORY"] * profiles.COSTS["history"])
        left = heap_kb * 1024 - imported - used
        rows.append([name, chip, str(heap_kb), label.replace("SIP + ", "SIP, "), kb(imported),
                     str(table["MAX_BINDINGS"]), str(table["MAX_CALLS"]),
                     str(table["MAX_TRANSACTIONS"]), str(table["CALL_HISTORY"]), kb(left)])
    print(bl.table(rows, ["board", "chip", "budget KB", "default features", "imports KB",
                          "phones", "calls", "transactions", "history", "heap left KB"]))
    print("(heap left: budget - measured imports - full tables at profiles.COSTS bytes each, "
          "a call DASHBOARD_CALL more with the dashboard)")
    print()


def load(lib, minutes, board_id=None):
    spec = dict(budget.LOAD, minutes=minutes)
    title = "Simulated load"
    if board_id is not None:  # the same load within a profile's own table limits
        spec = budget.profile_load(board_id, minutes)
        title = "The same load within the %s profile's default limits" % board_id
    print("== %s: %d phones with digest re-registering every %d s, %d calls/s "
          "(held %d ms), %d minutes; live heap every %d ms of simulated time; budget %s KB"
          % (title, spec["phones"], spec["rereg_s"], spec["calls_per_s"], spec["hold_ms"],
             minutes, spec["step_ms"], kb(budget.LOAD_BUDGET)))
    print("settings: %s" % " ".join("%s=%s" % kv for kv in sorted(spec["settings"].items())))
    got = budget.measure_load(lib, spec)
    print("imports (the board's, SIP + digest): %s KB; engine built: %s KB; harness (not counted): "
          "%s KB" % (kb(got["imports"]), kb(got["engine"]), kb(got["harness"])))
    rows = [[str(i + 1), kb(peak), kb(low)] for i, (peak, low) in enumerate(got["minutes"])]
    print(bl.table(rows, ["minute", "peak KB", "lowest KB"]))
    first, last = got["minutes"][min(1, len(got["minutes"]) - 1)][0], got["minutes"][-1][0]
    print("peak %s KB (%s); last minute vs the second: %+.1f KB"
          % (kb(got["peak"]), "fits" if got["peak"] <= budget.LOAD_BUDGET else "over by %s KB"
             % kb(got["peak"] - budget.LOAD_BUDGET), (last - first) / 1024))
    print("counts: %s" % ", ".join("%s %d" % kv for kv in sorted(got["counts"].items())))
    print("tables (highest use / limit): %s" % ", ".join(
        "%s %d/%d" % (k, v[0], v[1]) for k, v in sorted(got["tables"].items())))
    print()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=int, default=budget.LOAD["minutes"])
    parser.add_argument("--skip-load", action="store_true")
    parser.add_argument("--skip-full-load", action="store_true",
                        help="only the load within the RP2040 profile's limits")
    parser.add_argument("--skip-alone", action="store_true")
    parser.add_argument("--profile-minutes", type=int, default=2,
                        help="length of the load run within the RP2040 profile's limits")
    args = parser.parse_args()
    bl.vm_node()
    bl.print_machine("bench/vm_board.py", ["VM: @micropython/micropython-webassembly-pyscript "
                                           "(tests/mpy), libraries from %s"
                                           % budget.site_packages()])
    workdir = tempfile.mkdtemp(prefix="bench-board-")
    try:
        lib = budget.make_lib(os.path.join(workdir, "mpy"))
        libs = (lib, budget.make_lib(os.path.join(workdir, "py"), mpy=False))
        if not args.skip_alone:
            alone(libs)
        totals = feature_sets(libs)
        capacity(totals)
        if not args.skip_load:
            if not args.skip_full_load:
                load(lib, args.minutes)
            load(lib, args.profile_minutes, "wiznet_w5500_evb_pico")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print("load average at end (1, 5, 15 min): %s" % bl.load_average())


if __name__ == "__main__":
    main()
