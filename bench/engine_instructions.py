"""Machine instructions per call through the sans-I/O engine, counted by valgrind.

    .venv/bin/python bench/engine_instructions.py [--lib DIR ...] [--calls 600] [--base 100]
                                                  [--refused] [--no-relay]

Needs valgrind (Debian: apt-get install valgrind); the tests do not.

On this shared machine a timing moves by 10 to 30% between runs of the same code, which
hides the few percent one change to the engine saves. An instruction count does not move:
each lib runs bench/engine_calls.py's calls (INVITE, 180, 200, ACK, BYE, 200, fifty at a
time, the message ring on, plain responses relayed as bytes as in host mode when the lib
has hostrelay.py; --no-relay: every response parsed, as on a board) under
`valgrind --tool=cachegrind`, once with --base calls and once with --calls, and prints
(I refs at --calls - I refs at --base) / (--calls - --base): start-up and imports cancel
out. The count includes the test phones that build the
messages (the same for every lib). PYTHONHASHSEED is fixed; the cyclic collector is off.
Compare libs in one run (--lib once for each checkout, e.g. a git worktree of an older
commit); an instruction is not a fixed time, so this ranks changes, it does not time them.

--refused counts refusing instead: Overload.admit() on a refused call's INVITE and on the
ACK to its 503, as bench/overload_cost.py's second figure (no sockets); --calls and --base
are then numbers of refused calls (the datagrams are written by the bench, the same for
every lib).
"""

import argparse
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def child(lib, calls, refused, no_relay):
    sys.path[:0] = [lib, os.path.join(ROOT, "tests"), HERE]
    import gc

    if refused:
        import overload_cost

        from switchboard.overload import Overload

        gc.disable()
        overload_cost.admit_only(Overload, calls)
        return
    import engine_calls
    from flows import Phone

    from switchboard.config import Config
    from switchboard.engine import Engine
    from switchboard.trace import Trace

    gc.disable()
    engine_calls.one_round(Engine, Config, Trace, Phone, calls, 50,
                           engine_calls.host_relay(no_relay))


def refs(lib, calls, refused, no_relay):
    env = dict(os.environ, PYTHONHASHSEED="0")
    run = subprocess.run(
        ["valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null",
         sys.executable, os.path.abspath(__file__), "--child", lib, "--calls", str(calls)]
        + (["--refused"] if refused else []) + (["--no-relay"] if no_relay else []),
        env=env, capture_output=True, text=True, check=False)
    found = re.search(r"I\s+refs:\s+([\d,]+)", run.stderr)
    if run.returncode or not found:
        raise SystemExit("valgrind failed for %s:\n%s" % (lib, run.stderr[-2000:]))
    return int(found.group(1).replace(",", ""))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lib", action="append", help="a checkout's lib/ (default: this one)")
    parser.add_argument("--calls", type=int, default=600)
    parser.add_argument("--base", type=int, default=100)
    parser.add_argument("--refused", action="store_true",
                        help="count Overload.admit() on refused calls instead of calls")
    parser.add_argument("--no-relay", action="store_true",
                        help="parse every response (a board's way), not host mode's relay")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.calls, args.refused, args.no_relay)
        return
    import benchlib as bl

    what = "refused calls (Overload.admit)" if args.refused else "calls"
    bl.print_machine("bench/engine_instructions.py", [
        "%s: %d less %d; valgrind cachegrind, PYTHONHASHSEED=0" % (what, args.calls, args.base),
        "responses relayed as bytes (where the lib has hostrelay.py): %s"
        % ("no" if args.no_relay else "yes")])
    rows = []
    for lib in args.lib or [os.path.join(ROOT, "lib")]:
        lib = os.path.abspath(lib)
        per_call = ((refs(lib, args.calls, args.refused, args.no_relay)
                     - refs(lib, args.base, args.refused, args.no_relay))
                    // (args.calls - args.base))
        rows.append([lib, "{:,}".format(per_call)])
    print(bl.table(rows, ["lib", "instructions per %s" % ("refused call" if args.refused
                                                          else "call")]))


if __name__ == "__main__":
    main()
