"""Heap cost of the trunk (lib/switchboard/trunk.py) on the MicroPython VM (32-bit, like a board).

    .venv/bin/python bench/trunk_memory.py [--calls 8]

Prints, from the npm MicroPython WebAssembly VM run in steps by bench/vm_steps.mjs (which
collects garbage between steps, see there), gc.mem_alloc() differences after a collection:
  - importing switchboard.trunk once the engine and auth are imported (a board imports auth
    through app.py whatever SIP_AUTH says);
  - the Trunk installed and registered at a fake upstream (tests/trunk_flows.py), with the
    REGISTER transactions gone;
  - per call out in progress (answered, both legs), with CALLS calls at once;
  - after those calls have ended and their transactions are gone (what stays);
  - MD5 from adafruit_hashlib, which the VM (like CircuitPython) lacks in hashlib: the trunk
    needs it for an MD5 upstream when SIP_AUTH has not loaded it already;
  - importing switchboard.trunk compiled to .mpy, as a board deploys it (measured the way the
    board budgets are, by tests/w5500/budget.py); the other figures are from .py.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile

import benchlib as bl

STEPS = os.path.join(bl.BENCH, "vm_steps.mjs")

SCRIPT = r'''
import gc

CALLS = %d


def start_calls(net, alice, up, rnd):
    from trunk_flows import UPSTREAM, find

    oks = []
    for i in range(CALLS):
        invite = find(net.send(alice, alice.invite("05550100", "m-%%d-%%d" %% (rnd, i))),
                      "INVITE", UPSTREAM)
        ok = find(net.send(up, up.answer(invite, 200, "OK", tag="far%%d" %% i, sdp=True)),
                  "SIP/2.0 200", alice.addr)
        net.send(alice, alice.in_dialog("ACK", ok, 1))
        oks.append(ok)
    net.tick(40000)
    net.tick(1000)
    return oks


def end_calls(net, alice, up, oks):
    from trunk_flows import UPSTREAM, find

    for i in range(CALLS):
        out = net.send(alice, alice.in_dialog("BYE", oks[i], 2))
        net.send(up, up.answer(find(out, "BYE", UPSTREAM), 200, "OK", tag="far%%d" %% i))
    net.tick(40000)
    net.tick(1000)


def steps():
    from flows import Phone, new_engine
    import switchboard.auth
    yield
    base = gc.mem_alloc()
    import switchboard.trunk
    yield
    print("import", gc.mem_alloc() - base)
    from trunk_flows import UPSTREAM, Net, Upstream, find, new_trunk
    yield
    warm = new_engine()  # what a first Engine leaves behind (lazy imports) is not the trunk's
    warm = None
    yield
    base = gc.mem_alloc()
    plain = new_engine()
    yield
    print("engine_alone", gc.mem_alloc() - base)
    plain = None
    yield
    base = gc.mem_alloc()
    engine, trunk = new_trunk()
    yield
    print("engine_and_trunk", gc.mem_alloc() - base)
    net = Net(engine, lambda text: None)
    up = Upstream()
    register = find(net.tick(10), "REGISTER", UPSTREAM)
    net.send(up, up.registered(register, 3600))
    alice = Phone("1001", "10.0.0.11")
    net.send(alice, alice.register())
    register = None
    net.tick(40000)
    net.tick(1000)
    yield
    print("registered", trunk.state)
    base = gc.mem_alloc()
    for rnd in (1, 2, 3, 4):
        # each half in a function, so that its temporaries end with its frame instead of
        # staying in this generator's frame across the measurement. Written inline, the heap
        # left after a round moved by about 3.5 KB between rounds 1, 2 or 3 with unrelated
        # changes to message.py; this way a one-off allocation of that size always falls in
        # round 1, and the later rounds compare with it.
        oks = start_calls(net, alice, up, rnd)
        yield
        print("calls%%d" %% rnd, trunk.status(net.now)["calls"], gc.mem_alloc() - base)
        end_calls(net, alice, up, oks)
        oks = None
        history = len(engine.calls.history)
        engine.calls.history = []  # the dashboard's finished calls: the engine's, not the trunk's
        yield
        print("after%%d" %% rnd, trunk.status(net.now)["calls"], gc.mem_alloc() - base,
              len(trunk.txns.all), len(trunk.resend), history)
    base = gc.mem_alloc()
    from switchboard.auth import hasher
    make = hasher("md5")
    yield
    print("md5", make is not None, gc.mem_alloc() - base)
'''


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--calls", type=int, default=8)
    args = ap.parse_args()
    import adafruit_hashlib
    from mpyvm import node_path

    node = node_path()
    with tempfile.TemporaryDirectory(prefix="trunk-mem-") as work:
        lib = os.path.join(work, "lib")
        shutil.copytree(os.path.join(bl.LIB, "switchboard"), os.path.join(lib, "switchboard"),
                        ignore=shutil.ignore_patterns("__pycache__"))
        shutil.copytree(os.path.dirname(adafruit_hashlib.__file__),
                        os.path.join(lib, "adafruit_hashlib"),
                        ignore=shutil.ignore_patterns("__pycache__"))
        for name in ("flows.py", "trunk_flows.py"):
            shutil.copy(os.path.join(bl.TESTS, name), lib)
        script = os.path.join(work, "probe.py")
        with open(script, "w") as f:
            f.write(SCRIPT % args.calls)
        proc = subprocess.run([node, STEPS, "--heap=%d" % (8 * 1024 * 1024), lib, script],
                              cwd=bl.BENCH, capture_output=True, text=True, timeout=600,
                              check=False)
    if proc.returncode != 0:
        sys.exit("the VM run failed (exit %d):\n%s\n%s" % (proc.returncode, proc.stderr,
                                                          proc.stdout))
    got = {}
    for line in proc.stdout.split("\n"):
        parts = line.split()
        if parts:
            got[parts[0]] = parts[1:]
    calls = int(got["calls1"][0])
    assert calls == args.calls, got
    print("Trunk heap on the MicroPython %s VM (gc.mem_alloc() after a collection, bytes)"
          % "1.27 WebAssembly")
    print("| what | bytes |")
    print("| --- | --- |")
    print("| import switchboard.trunk (engine and auth already imported) | %s |"
          % got["import"][0])
    print("| Trunk object over an engine (engine with trunk %s, engine alone %s) | %d |"
          % (got["engine_and_trunk"][0], got["engine_alone"][0],
             int(got["engine_and_trunk"][0]) - int(got["engine_alone"][0])))
    print("| per call out in progress (%d answered calls at once; both legs and the "
          "dashboard's call record) | %d |"
          % (calls, int(got["calls1"][1]) // calls))
    print("| left after those calls ended and their transactions expired (%s trunk calls, "
          "%s trunk transactions; the %s calls the engine keeps in its history dropped) | %s |"
          % (got["after1"][0], got["after1"][2], got["after1"][4], got["after1"][1]))
    print("| the same after a second round of %d calls | %s |" % (calls, got["after2"][1]))
    print("| the same after a third round of %d calls | %s |" % (calls, got["after3"][1]))
    print("| the same after a fourth round of %d calls | %s |" % (calls, got["after4"][1]))
    print("| MD5 from adafruit_hashlib (when SIP_AUTH has not loaded it) | %s |" % got["md5"][1])
    sys.path.insert(0, os.path.join(bl.TESTS, "w5500"))
    import budget

    with tempfile.TemporaryDirectory(prefix="trunk-mpy-") as work:
        lib = budget.make_lib(work, mpy=True)
        mpy = budget.measure_imports(lib, ["switchboard.trunk"],
                                     ["switchboard.engine", "switchboard.auth"])[0]
    print("| import switchboard.trunk compiled to .mpy (as deployed; engine and auth already "
          "imported) | %d |" % mpy)


if __name__ == "__main__":
    main()
