"""Heap cost of the dashboard features of issue 16 on the MicroPython VM (32-bit, like a board).

    .venv/bin/python bench/dash_memory.py

Prints, from gc.mem_alloc() after a collection (bench/vm_steps.mjs runs the probe in steps so
that the VM really collects between measurements, see there):
  - heap taken by importing each new module (qualify, trace, stats, endcall, views);
  - bytes per answered call that the call record keeps so the dashboard can end it (the two
    legs: tags, contacts, addresses, Route sets, CSeqs), from 16 calls with and without them;
  - bytes per entry of the call-message ring (MESSAGE_TRACE), from a full ring of 64;
  - bytes per registered contact for the reachability pings (QUALIFY_INTERVAL), idle and
    with a ping in flight;
  - the chart ring (stats.Stats), which is fixed.
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


def heap():
    gc.collect()
    yield
    return gc.mem_alloc()


def out(*items):
    print(" ".join(str(i) for i in items))


def settings(**extra):
    s = {"SIP_ADDRESS": "10.0.0.1", "SIP_PORT": 5060, "RATE_LIMIT": 0, "LOG_LEVEL": "error",
         "QUALIFY_INTERVAL": 0, "MESSAGE_TRACE": 0}
    for k in extra:
        s[k] = extra[k]
    return s


def steps():
    from flows import Phone

    from switchboard.config import Config
    from switchboard.engine import Engine

    for name in ("qualify", "trace", "stats", "endcall", "views"):
        before = yield from heap()
        __import__("switchboard." + name)
        after = yield from heap()
        out("import", name, after - before)

    # the call-message ring
    from switchboard.trace import Trace

    size = 64
    alice = Phone("1001", "10.0.0.11")
    msgs = [alice.invite("1002", "trace-call-%08d@10.0.0.11" % i) for i in range(size)]
    t = Trace(size)
    empty = yield from heap()
    for i in range(size):
        t.add(msgs[i], ("10.0.0.11", 5060), True, 1000 + i)
    full = yield from heap()  # the messages themselves are alive in both measurements
    msgs = None
    out("trace_entry", (full - empty) // size, len(t.ring))
    t = None

    # call legs: 16 answered calls, heap with and without the legs
    calls = 16
    engine = Engine(Config(overrides=settings(MAX_CALLS=calls, CALL_HISTORY=0)), 7)
    from switchboard import endcall

    engine.calls.legs = endcall  # as the dashboard sets it
    alice, bob = Phone("1001", "10.0.0.11"), Phone("1002", "10.0.0.12")
    now = 1000
    engine.receive(alice.register(), alice.addr, now)
    engine.receive(bob.register(), bob.addr, now)
    for i in range(calls):
        now += 10
        fwd = engine.receive(alice.invite("1002", "leg-call-%d" % i), alice.addr, now)[-1][0]
        ok = engine.receive(bob.answer(fwd, 200, "OK", tag="b%d" % i, sdp=True), bob.addr,
                            now)[-1][0]
        engine.receive(alice.in_dialog("ACK", ok, 1), alice.addr, now)
    fwd = ok = None
    engine.tick(now + 40000)  # transactions gone
    with_legs = yield from heap()
    for call in engine.calls.active.values():
        call.leg_a = call.leg_b = None
    without = yield from heap()
    out("legs", (with_legs - without) // calls, len(engine.calls.active))
    engine = None

    # reachability: 32 contacts, entries idle, then a ping in flight for each
    n = 32
    engine = Engine(Config(overrides=settings(MAX_BINDINGS=64, SIP_USERS="",
                                              QUALIFY_INTERVAL=60)), 7)
    phones = [Phone("2%03d" % i, "10.0.1.%d" % (i + 1)) for i in range(n)]
    for p in phones:
        engine.receive(p.register(), p.addr, 1000)
    engine.tick(41000)  # REGISTER transactions gone
    q = engine.qualify

    def full_round(t):  # one whole round over the users, batch by batch
        q.cursor = len(q.order)
        while True:
            q.scan_at = 0
            q.tick(t, [])
            if q.cursor >= len(q.order):
                return

    full_round(41000)  # entries made; first pings due at 61 s
    entries = len(q.entries)
    with_entries = yield from heap()
    q.entries = {}
    bare = yield from heap()
    out("qualify_entry", (with_entries - bare) // n, entries)
    full_round(41000)  # made again
    idle = yield from heap()
    t_now = 61000
    while len(q.pending) < n and t_now < 80000:
        engine.tick(t_now)
        t_now += 250
    flying = yield from heap()
    out("qualify_ping", (flying - idle) // n, len(q.pending))

    from switchboard.stats import Stats

    before = yield from heap()
    s = Stats()
    after = yield from heap()
    out("stats", after - before)
'''


def main():
    node = bl.vm_node()
    work = tempfile.mkdtemp(prefix="dash_memory_")
    try:
        lib = os.path.join(work, "lib")
        shutil.copytree(os.path.join(bl.ROOT, "lib", "switchboard"),
                        os.path.join(lib, "switchboard"),
                        ignore=shutil.ignore_patterns("__pycache__"))
        shutil.copy(os.path.join(bl.TESTS, "flows.py"), lib)
        script = os.path.join(work, "probe.py")
        with open(script, "w") as f:
            f.write(PROBE)
        proc = subprocess.run([node, STEPS, "--heap=%d" % (4 * 1024 * 1024), lib, script],
                              cwd=bl.BENCH, capture_output=True, text=True, timeout=600,
                              check=False)
        if proc.returncode != 0:
            sys.exit("the VM run failed (exit %d):\n%s\n%s" % (proc.returncode, proc.stderr,
                                                              proc.stdout))
        rows = [line.split() for line in proc.stdout.splitlines() if line.strip()]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("== Heap of the issue-16 features on the MicroPython VM (gc.mem_alloc after a "
          "collection)")
    table = [["import switchboard." + r[1], r[2]] for r in rows if r[0] == "import"]
    for r in rows:
        if r[0] == "legs":
            table.append(["per answered call: what ending it needs (%s calls)" % r[2], r[1]])
        elif r[0] == "trace_entry":
            table.append(["per MESSAGE_TRACE entry (ring of %s)" % r[2], r[1]])
        elif r[0] == "qualify_entry":
            table.append(["per contact, reachability state (%s contacts)" % r[2], r[1]])
        elif r[0] == "qualify_ping":
            table.append(["per contact, extra while a ping waits (%s pings)" % r[2], r[1]])
        elif r[0] == "stats":
            table.append(["chart ring (60 slots, fixed)", r[1]])
    print(bl.table(table, ["what", "bytes"]))


if __name__ == "__main__":
    main()
