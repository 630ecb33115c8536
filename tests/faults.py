"""Faults injected into a running Switchboard, for tests only: a bug stand-in.

With INJECT_FAULTS=1 in the environment, `install()` makes the engine raise on every datagram
that contains b"X-Inject-Fault" and on every timer run while the file named by FAULT_FILE
exists, as a bug in one code path would. tests/w5500/runner.py calls it on the board path;
`python tests/faults.py` runs code.py in host mode with it installed.
"""

import os
import runpy
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MARKER = b"X-Inject-Fault"


def install():
    if os.environ.get("INJECT_FAULTS") != "1":
        return
    sys.path.insert(0, os.path.join(ROOT, "lib"))
    from switchboard.engine import Engine

    receive, tick = Engine.receive, Engine.tick
    fault_file = os.environ.get("FAULT_FILE", "")

    def faulty_receive(self, data, source, now):
        if MARKER in data:
            raise RuntimeError("injected fault in receive")
        return receive(self, data, source, now)

    def faulty_tick(self, now):
        if fault_file and os.path.exists(fault_file):
            raise ValueError("injected fault in timers")
        return tick(self, now)

    Engine.receive = faulty_receive
    Engine.tick = faulty_tick


if __name__ == "__main__":
    install()
    sys.argv = [os.path.join(ROOT, "code.py")]
    runpy.run_path(sys.argv[0], run_name="__main__")
