"""What the engine leaves for CPython's cyclic garbage collector, per call.

    .venv/bin/python bench/gc_cycles.py [--calls 100]

Runs answered-and-hung-up calls (INVITE, 180, 200, ACK, BYE, 200; tests/flows.py Phone)
through the sans-I/O engine with the cyclic collector off, lets every transaction expire,
then collects with gc.DEBUG_SAVEALL and counts by type the objects that were unreachable:
what reference counting alone never frees. In host mode these are what full collections
walk (and pause for); see docs/performance.md.
"""

import argparse
import collections
import gc

import benchlib as bl
from flows import Phone

from switchboard.config import Config
from switchboard.engine import Engine

LINGER_MS = 40000  # past every transaction's linger time (64 * T1 = 32 s)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=100)
    args = parser.parse_args()
    bl.print_machine("bench/gc_cycles.py", ["calls: %d" % args.calls])
    gc.collect()
    gc.disable()
    try:
        engine = Engine(Config(overrides={
            "SIP_ADDRESS": "10.0.0.1", "SIP_PORT": 5060, "RATE_LIMIT": 0,
            "MAX_CALLS": args.calls + 8, "MAX_TRANSACTIONS": 6 * args.calls + 50}), 7)
        now = 1000
        alice = Phone("1001", "10.0.0.11")
        bob = Phone("1002", "10.0.0.12")
        engine.receive(alice.register(), alice.addr, now)
        engine.receive(bob.register(), bob.addr, now)
        for i in range(args.calls):
            now += 10
            fwd = engine.receive(alice.invite("1002", "c%d" % i), alice.addr, now)[-1][0]
            engine.receive(bob.answer(fwd, 180, "Ringing", tag="b%d" % i), bob.addr, now)
            ok = engine.receive(bob.answer(fwd, 200, "OK", tag="b%d" % i, sdp=True), bob.addr,
                                now)[-1][0]
            engine.receive(alice.in_dialog("ACK", ok, 1), alice.addr, now)
            fwd = engine.receive(alice.in_dialog("BYE", ok, 2), alice.addr, now)[-1][0]
            engine.receive(bob.answer(fwd, 200, "OK"), bob.addr, now)
        for _ in range(3):
            now += LINGER_MS
            engine.tick(now)
        print("after %d calls and %d s: %d transactions in the table, %d calls active, "
              "%d in the history" % (args.calls, 3 * LINGER_MS // 1000, len(engine.txns.all),
                                     len(engine.calls.active), len(engine.calls.history)))
        gc.set_debug(gc.DEBUG_SAVEALL)
        found = gc.collect()
        kinds = collections.Counter(type(o).__name__ for o in gc.garbage)
        gc.set_debug(0)
        gc.garbage.clear()
    finally:
        gc.enable()
    print("unreachable objects only the cyclic collector frees: %d (%.1f per call)"
          % (found, found / args.calls))
    print(bl.table([[name, str(n), "%.1f" % (n / args.calls)]
                    for name, n in kinds.most_common()], ["type", "objects", "per call"]))


if __name__ == "__main__":
    main()
