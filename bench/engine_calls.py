"""CPU time of the sans-I/O engine alone per call, by message, without sockets or SIPp.

    .venv/bin/python bench/engine_calls.py [--calls 1000] [--together 50] [--rounds 5]
                                           [--lib DIR] [--no-relay] [--refuse N]

Plays answered-and-hung-up calls (INVITE, 180, 200, ACK, BYE, 200; tests/flows.py Phone,
each call with its own From and To tags)
through one Engine with the dashboard's message ring on (MESSAGE_TRACE's default, as in
host mode) and, as host mode does, plain responses relayed as bytes (hostrelay.py, when the
lib has it; --no-relay leaves every response to the parser, as on a board). Calls run
`--together` at a time, each message kind for all of them before the next, so that what
one call's messages leave behind meets the others' (as under SIPp).
Every round is a fresh engine; the cyclic collector is off while a round runs. Prints the
fastest round's microseconds per call and per message kind (time.perf_counter() around each
Engine.receive). --lib runs another checkout's lib/ (e.g. a git worktree of an older commit)
with the same messages: the engine's own share of host mode's CPU per call, before and
after a change. --refuse N runs, after each message the engine takes, N new INVITEs (those of
bench/overload_cost.py) through an Overload that refuses them all, as host mode does past
capacity (untimed): whether the refusals' work in between slows the engine's. Timings on a
shared machine move by 10% or more between runs; compare rounds of one run, or runs back
to back.
"""

import gc
import time

KINDS = ("INVITE", "180", "200 INVITE", "ACK", "BYE", "200 BYE")


def host_relay(off=False):
    """hostrelay.relay as host.py installs it, or None (--no-relay, or a lib without it)."""
    if off:
        return None
    try:
        from switchboard.hostrelay import relay
    except ImportError:
        return None
    return relay


def one_round(engine_class, config_class, trace_class, phone_class, calls, together,
              relay=None, refuse=None):
    config = config_class(overrides={
        "SIP_ADDRESS": "10.0.0.1", "SIP_PORT": 5060, "SIP_USERS": "1001,1002",
        "RATE_LIMIT": 0, "MAX_CALLS": together + 8, "MAX_TRANSACTIONS": 100000})
    engine = engine_class(config, 7)
    engine.trace = trace_class(getattr(config, "message_trace", 32))
    if relay is not None:
        engine.relay = relay
    spent = dict((kind, 0.0) for kind in KINDS)
    now = [1000]

    def send(kind, phone, data):
        now[0] += 1
        start = time.perf_counter()
        out = engine.receive(data, phone.addr, now[0])
        spent[kind] += time.perf_counter() - start
        if refuse is not None:
            refuse()
        return out

    alice = phone_class("1001", "10.0.0.11")
    bob = phone_class("1002", "10.0.0.12")
    send("INVITE", alice, alice.register())
    send("INVITE", bob, bob.register())
    spent["INVITE"] = 0.0
    done = 0
    while done < calls:
        n = min(together, calls - done)
        ids = ["call-%d" % (done + k) for k in range(n)]
        # every call its own tags, as real phones and SIPp write them: a call's From and To
        # values repeat in its own messages only
        invites = [alice.invite("1002", call_id, from_tag="a" + call_id) for call_id in ids]
        at_bob = [send("INVITE", alice, inv)[-1][0] for inv in invites]
        for data, call_id in zip(at_bob, ids):
            send("180", bob, bob.answer(data, 180, "Ringing", tag="b" + call_id))
        oks = [send("200 INVITE", bob, bob.answer(data, 200, "OK", tag="b" + call_id,
                                                  sdp=True))[-1][0]
               for data, call_id in zip(at_bob, ids)]
        for ok, call_id in zip(oks, ids):
            send("ACK", alice, alice.in_dialog("ACK", ok, 1, from_tag="a" + call_id))
        byes = [send("BYE", alice, alice.in_dialog("BYE", ok, 2, from_tag="a" + call_id))[-1][0]
                for ok, call_id in zip(oks, ids)]
        for data in byes:
            send("200 BYE", bob, bob.answer(data, 200, "OK"))
        start = time.perf_counter()
        engine.tick(now[0])
        spent["tick"] = spent.get("tick", 0.0) + time.perf_counter() - start
        done += n
    if engine.counters["answered_5xx"] or engine.counters["internal_errors"]:
        raise SystemExit("engine refused calls: %r" % engine.counters)
    return spent


def refuser(n):
    """A function that refuses n new INVITEs (each its own Call-ID and branch) through an
    Overload shedding everything, and builds each 503's bytes, as host mode's drain does."""
    from overload_cost import invite, shed_everything

    from switchboard.overload import SHED, Overload

    ov = Overload()
    shed_everything(ov)
    ov.waiting = ov.free  # as many datagrams wait as a refusal needs
    source = ("127.0.0.3", 5061)
    count = [0]

    def refuse():
        for _ in range(n):
            k = count[0] = count[0] + 1
            if ov.admit(invite(k), source) != SHED:
                raise SystemExit("the overload did not refuse an INVITE")
    return refuse


def main():
    import benchlib as bl  # puts this checkout's lib/ and tests/ on sys.path

    parser = bl.lib_parser(__doc__)
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--together", type=int, default=50)
    parser.add_argument("--no-relay", action="store_true",
                        help="parse every response (a board's way), not host mode's relay")
    parser.add_argument("--refuse", type=int, default=0, metavar="N",
                        help="N refused INVITEs after each message the engine takes (untimed)")
    args = parser.parse_args()
    lib_line = bl.use_lib(args.lib)
    from flows import Phone

    from switchboard.config import Config
    from switchboard.engine import Engine
    from switchboard.trace import Trace

    bl.print_machine("bench/engine_calls.py", [
        lib_line,
        "calls: %d a round, %d at a time, %d rounds" % (args.calls, args.together,
                                                        args.rounds),
        "responses relayed as bytes: %s" % ("yes" if host_relay(args.no_relay) else "no"),
        "refused INVITEs after each message: %d" % args.refuse])
    refuse = refuser(args.refuse) if args.refuse else None
    best = None
    for _ in range(args.rounds):
        gc.collect()
        gc.disable()
        try:
            spent = one_round(Engine, Config, Trace, Phone, args.calls, args.together,
                              host_relay(args.no_relay), refuse)
        finally:
            gc.enable()
        total = sum(spent.values())
        print("   round: %.1f us per call" % (total / args.calls * 1e6), flush=True)
        if best is None or total < sum(best.values()):
            best = spent
    rows = [[kind, "%.1f" % (best[kind] / args.calls * 1e6)] for kind in KINDS + ("tick",)]
    rows.append(["whole call", "%.1f" % (sum(best.values()) / args.calls * 1e6)])
    print()
    print("fastest round, microseconds per call:")
    print(bl.table(rows, ["message", "us"]))


if __name__ == "__main__":
    main()
