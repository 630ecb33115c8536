"""Heap cost of the PBX features (dialplan.py, persist.py) on the MicroPython VM (32-bit).

    .venv/bin/python bench/pbx_memory.py

Runs a probe in the npm MicroPython VM through bench/vm_steps.mjs (one runPython() per
step, so gc.collect() really collects between measurements; see bench/vm_memory.py) and
prints gc.mem_alloc() differences after a collection:
  - importing switchboard.dialplan, and switchboard.persist, on top of the core's
    switchboard.location (the core has it already);
  - a Dialplan built from the issue's example settings, and from a larger office;
  - each extension with a setting row (DND or a forward set by a phone or the dashboard);
  - a call in progress through the dialplan (its Plan);
  - a Saver, and what writing a record of 64 bindings allocates (no collection meanwhile:
    an upper bound of the peak); the record's size for 64 bindings.
"""

import os
import shutil
import subprocess
import sys
import tempfile

import benchlib as bl

STEPS = os.path.join(bl.BENCH, "vm_steps.mjs")

PROBE = r'''
import gc
import sys


def out(*items):
    print(" ".join(str(i) for i in items))


def heap():
    gc.collect()
    yield
    return gc.mem_alloc()


EXAMPLE = {
    "RING_GROUPS": "600=1001,1002,1003; 610=1004,1005",
    "HUNT_GROUPS": "601=1003,1004,1001", "HUNT_TIMEOUT": "15",
    "ALIASES": "reception=600, alice=1001, 9=600",
    "FORWARD_ALWAYS": "1004=1002", "FORWARD_BUSY": "1001=1002, 1003=600",
    "FORWARD_NOANSWER": "1002=601", "FORWARD_NOANSWER_AFTER": "20", "DND": "1005",
}
USERS = {}
for n in range(1001, 1017):
    USERS[str(n)] = ""


def office():
    users = {}
    for n in range(1001, 1033):
        users[str(n)] = ""
    ring = "; ".join("%d=%s" % (600 + g, ",".join(str(1001 + g * 4 + i) for i in range(4)))
                     for g in range(8))
    aliases = ", ".join("name%d=%d" % (i, 1001 + i) for i in range(16))
    fwd = ", ".join("%d=%d" % (1001 + i, 1002 + i) for i in range(0, 32, 2))
    return users, {"RING_GROUPS": ring, "HUNT_GROUPS": "690=1001,1002,1003,1004,1005,1006",
                   "ALIASES": aliases, "FORWARD_BUSY": fwd, "FORWARD_NOANSWER": fwd,
                   "DND": "1031,1032"}


def phones(user):
    return [("sip:%s@10.0.0.%s:5060" % (user, user[-1]), ("10.0.0." + user[-1], 5060))]


def steps():
    out("interpreter", sys.implementation.name, sys.maxsize)
    import switchboard.location  # noqa: F401  (part of the core already)
    import switchboard.message  # noqa: F401
    base = yield from heap()
    import switchboard.dialplan
    h = yield from heap()
    out("import_dialplan", h - base)
    base = h
    try:
        import switchboard.router  # noqa: F401  (the core's, when this tree has it)
        base2 = yield from heap()
        import switchboard.pbx  # noqa: F401  (PbxRouter: only where the core has a Router)
        h2 = yield from heap()
        out("import_pbx", h2 - base2)
    except ImportError as e:
        out("import_pbx", "n/a", repr(e).replace(" ", "_"))
    base = yield from heap()
    dp = switchboard.dialplan.Dialplan(EXAMPLE.get, USERS, "10.0.0.1:5060")
    h = yield from heap()
    out("example_dialplan", h - base, len(dp.errors))
    base = h
    users, settings = office()
    big = switchboard.dialplan.Dialplan(settings.get, users, "10.0.0.1:5060")
    h = yield from heap()
    out("office_dialplan", h - base, len(big.errors))
    base = h
    for n in range(1006, 1016):
        dp.feature("*78", str(n))
    h = yield from heap()
    out("per_setting_row", (h - base) // 10)
    base = h
    calls = [dp.start("601", "1016", phones) for i in range(10)]
    h = yield from heap()
    out("per_call_plan", (h - base) // 10)
    calls = None
    big = None
    base = yield from heap()
    import switchboard.persist
    h = yield from heap()
    out("import_persist", h - base)
    from switchboard.location import Binding, Location
    loc = Location(64, 4)
    for i in range(64):
        user = str(1001 + i)
        loc.add(user, Binding("sip:%s@192.168.1.%d:5060;transport=udp" % (user, i + 2),
                              ("192.168.1.%d" % (i + 2), 5060), 3600000, "c", 1, 0, "ua",
                              '"<urn:uuid:00000000-0000-1000-8000-%012d>"' % i, 1000))
    nvm = bytearray(b"\xff" * 4096)
    base = yield from heap()
    saver = switchboard.persist.Saver(switchboard.persist.NvmStore(nvm), loc, dp,
                                      lambda level, text: None, settle_ms=0, budget=24)
    saver.restore(0)
    h = yield from heap()
    out("saver", h - base)
    base = yield from heap()
    before = gc.mem_alloc()
    key = saver.key()
    out("key_alloc", gc.mem_alloc() - before, len(key))
    key = None
    yield
    before = gc.mem_alloc()
    saver.save(1000)
    out("save_alloc", gc.mem_alloc() - before)
    out("record_bytes", 9 + (nvm[3] << 8 | nvm[4]), saver.writes,
        len(switchboard.persist.decode(bytes(nvm))[0]))
    yield
    before = gc.mem_alloc()
    loc2 = Location(64, 4)
    switchboard.persist.Saver(switchboard.persist.NvmStore(nvm), loc2, None,
                              lambda level, text: None).restore(0)
    out("restore_alloc", gc.mem_alloc() - before, loc2.count)
'''


def main():
    node = bl.vm_node()
    with tempfile.TemporaryDirectory(prefix="pbxmem-") as tmp:
        lib = os.path.join(tmp, "lib")
        shutil.copytree(os.path.join(bl.ROOT, "lib", "switchboard"),
                        os.path.join(lib, "switchboard"),
                        ignore=shutil.ignore_patterns("__pycache__"))
        script = os.path.join(tmp, "probe.py")
        with open(script, "w") as f:
            f.write(PROBE)
        proc = subprocess.run([node, STEPS, lib, script], cwd=bl.BENCH, capture_output=True,
                              text=True, timeout=300, check=False)
    if proc.returncode != 0:
        sys.exit("the VM run failed (exit %d):\n%s\n%s" % (proc.returncode, proc.stderr,
                                                          proc.stdout))
    rows = {}
    for line in proc.stdout.splitlines():
        parts = line.split()
        if parts:
            rows[parts[0]] = parts[1:]
    print("== PBX features on the VM: %s, sys.maxsize %s; gc.mem_alloc() after a collection"
          % tuple(rows["interpreter"]))
    table = [
        ["import switchboard.dialplan", rows["import_dialplan"][0]],
        ["import switchboard.pbx (PbxRouter; the dashboard API is imported only with a "
         "dashboard)", rows["import_pbx"][0]],
        ["Dialplan, the issue's example settings (16 users)", rows["example_dialplan"][0]],
        ["Dialplan, an office: 32 users, 8 ring groups, a hunt group, 16 aliases, 32 forwards",
         rows["office_dialplan"][0]],
        ["each extension with a setting row (DND/forward)", rows["per_setting_row"][0]],
        ["each call in progress through a group (Plan)", rows["per_call_plan"][0]],
        ["import switchboard.persist", rows["import_persist"][0]],
        ["Saver with its store (nvm 4 KB bytearray not counted)", rows["saver"][0]],
    ]
    print(bl.table(table, ["what", "bytes"]))
    print("allocated while comparing 64 bindings with the last write (every 2 s): %s B"
          % rows["key_alloc"][0])
    print("allocated while writing a record of 64 bindings: %s B (no collection meanwhile)"
          % rows["save_alloc"][0])
    print("allocated while restoring it: %s B (%s bindings back)" % tuple(rows["restore_alloc"]))
    print("record for 64 bindings (each with +sip.instance) and 10 setting rows: %s bytes, "
          "%s bindings decoded" % (rows["record_bytes"][0], rows["record_bytes"][2]))


if __name__ == "__main__":
    main()
