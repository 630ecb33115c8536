"""Measurements run inside the MicroPython VM and, for timings, under CPython too.

bench/vm_memory.py runs this file; it is not a benchmark by itself. It prints
"key value..." lines that vm_memory.py turns into tables. MODE (set by the driver in a
line put before this text) is "memory" (VM only: heap figures from gc.mem_alloc) or
"timing" (per-message processing time, on both interpreters). N is the batch size and
ROUNDS the number of batches of which the fastest counts; CYCLES the length of the
steady-state run.

The work is the generator steps(): in the VM, bench/vm_steps.mjs runs one step per
runPython() call, because this VM collects garbage only between such calls (see there);
`yield from heap()` is therefore "collect, then read gc.mem_alloc()". Under CPython the
generator is simply run to its end. Memory is measured as gc.mem_alloc() differences
after a collection: the VM's heap grows on demand, so free memory says nothing. Within
one step nothing is collected, so a gc.mem_alloc() difference there counts everything
allocated. Messages are built by tests/flows.py Phone before anything is measured or timed.
"""

import gc
import sys

try:
    MODE  # noqa: B018 (set by bench/vm_memory.py)
except NameError:
    MODE = "timing"
try:
    N  # noqa: B018
except NameError:
    N = 200
try:
    ROUNDS  # noqa: B018
except NameError:
    ROUNDS = 5
try:
    CYCLES  # noqa: B018
except NameError:
    CYCLES = 3000

MICRO = sys.implementation.name != "cpython"
LINGER_MS = 40000  # past every transaction's linger time (64 * T1 = 32 s)

if MICRO:
    import time

    def now_us():
        return time.ticks_us()

    def since_us(start):
        return time.ticks_diff(time.ticks_us(), start)
else:
    import time

    def now_us():
        return time.perf_counter_ns() // 1000

    def since_us(start):
        return now_us() - start


def out(*items):
    print(" ".join(str(i) for i in items))


def heap():
    """Use as `h = yield from heap()`: the VM collects while the step is suspended."""
    gc.collect()
    yield
    return gc.mem_alloc()


def settings(**extra):
    s = {"SIP_ADDRESS": "10.0.0.1", "SIP_PORT": 5060, "RATE_LIMIT": 0, "LOG_LEVEL": "error"}
    for k in extra:
        s[k] = extra[k]
    return s


def phone_ip(i):
    return "10.%d.%d.%d" % (1 + i // 62500, (i // 250) % 250, i % 250 + 1)


# --- memory --------------------------------------------------------------------------------
CORE = ("switchboard", "switchboard.message", "switchboard.transaction", "switchboard.location",
        "switchboard.registrar", "switchboard.sdp", "switchboard.calls", "switchboard.ratelimit",
        "switchboard.proxy", "switchboard.config", "switchboard.engine")
BOARD_EXTRA = ("switchboard.auth", "switchboard.log", "switchboard.clock", "switchboard.udp",
               "switchboard.app")


def memory():
    base = yield from heap()
    prev = base
    for name in CORE:
        __import__(name)
        h = yield from heap()
        out("import", name, h - prev)
        prev = h
    out("core", prev - base)
    core_end = prev
    for name in BOARD_EXTRA:
        try:
            __import__(name)
        except ImportError as e:
            out("import_failed", name, repr(e).replace(" ", "_"))
            continue
        h = yield from heap()
        out("import", name, h - prev)
        prev = h
    out("board_imports", prev - base, prev - core_end)

    from flows import Phone

    from switchboard.config import Config
    from switchboard.engine import Engine
    from switchboard.ratelimit import RateLimit

    # bindings --------------------------------------------------------------------------
    phones = [Phone("2%03d" % i, phone_ip(i)) for i in range(128)]
    now = 1000
    h0 = yield from heap()
    engine = Engine(Config(overrides=settings(MAX_BINDINGS=200)), 7)
    h_engine = yield from heap()
    out("engine_instance", h_engine - h0)
    engine.tick(now)
    h_b0 = yield from heap()
    marks = {}
    count = 0
    for target in (1, 32, 128):
        while count < target:
            p = phones[count]
            engine.receive(p.register(), p.addr, now)
            count += 1
        marks["lingering", target] = yield from heap()  # the REGISTER transactions still linger
        now += LINGER_MS
        engine.tick(now)
        marks["bound", target] = yield from heap()
        now += 10
    if engine.location.count != 128:
        out("warning", "bindings", engine.location.count)
    for target in (1, 32, 128):
        out("bindings", target, marks["bound", target] - h_b0, marks["lingering", target] - h_b0)
    del engine, phones
    gc.collect()

    # the rate limiter's table of sources ---------------------------------------------------
    h0 = yield from heap()
    limiter = RateLimit(50, 100, 60000, 64)
    for i in range(64):
        limiter.allow(phone_ip(i), 1000)
    out("per_rate_limit_source", ((yield from heap()) - h0) // 64)
    del limiter

    # active calls ---------------------------------------------------------------------------
    calls = 16
    engine = Engine(Config(overrides=settings(MAX_CALLS=calls, CALL_HISTORY=32)), 7)
    alice = Phone("1001", "10.0.0.11")
    bob = Phone("1002", "10.0.0.12")
    now = 1000
    engine.receive(alice.register(), alice.addr, now)
    engine.receive(bob.register(), bob.addr, now)
    now += LINGER_MS
    engine.tick(now)
    invites = [alice.invite("1002", "call-%d" % i) for i in range(calls)]
    h_idle = yield from heap()
    oks = []
    peaks = {}

    def handle(name, data, source):
        """engine.receive, and how much it allocated (nothing is collected within a step)."""
        start = gc.mem_alloc()
        result = engine.receive(data, source, now)
        allocated = gc.mem_alloc() - start
        if allocated > peaks.get(name, 0):
            peaks[name] = allocated
        return result

    for i in range(calls):
        now += 10
        fwd = handle("INVITE forward", invites[i], alice.addr)[-1][0]
        now += 10
        handle("180 relay", bob.answer(fwd, 180, "Ringing", tag="b%d" % i), bob.addr)
        now += 10
        ok_at_alice = handle("200 relay", bob.answer(fwd, 200, "OK", tag="b%d" % i, sdp=True),
                             bob.addr)[-1][0]
        now += 10
        handle("ACK relay", alice.in_dialog("ACK", ok_at_alice, 1), alice.addr)
        oks.append(ok_at_alice)
        fwd = ok_at_alice = None
    if len(engine.calls.active) != calls:
        out("warning", "active_calls", len(engine.calls.active))
    h_lingering = yield from heap()
    # the 200s this script keeps (to build BYEs from) are not the engine's: weigh a copy
    h = yield from heap()
    copies = [bytes(bytearray(ok)) for ok in oks]
    held = (yield from heap()) - h
    del copies
    now += LINGER_MS
    engine.tick(now)
    h_talking = (yield from heap()) - held
    h_lingering -= held
    out("per_call", (h_talking - h_idle) // calls, (h_lingering - h_idle) // calls, calls)
    byes = [alice.in_dialog("BYE", ok, 2) for ok in oks]
    h_before_bye = yield from heap()
    for i in range(calls):
        now += 10
        fwd = handle("BYE forward", byes[i], alice.addr)[-1][0]
        now += 10
        handle("200 (BYE) relay", bob.answer(fwd, 200, "OK"), bob.addr)
        fwd = None
    now += LINGER_MS
    engine.tick(now)
    h_history = yield from heap()
    out("per_history_call", (h_history - h_before_bye + (h_talking + held - h_idle)) // calls)
    reg = alice.register(cseq=2)
    handle("REGISTER refresh", reg, alice.addr)
    carol = Phone("1003", "10.0.0.13")
    handle("REGISTER new", carol.register(), carol.addr)
    for name in ("REGISTER new", "REGISTER refresh", "INVITE forward", "180 relay", "200 relay",
                 "ACK relay", "BYE forward", "200 (BYE) relay"):
        out("peak", name.replace(" ", "_"), peaks[name])

    # steady state: many register refreshes and calls, heap compared after the lingering ends
    cycle = 0
    cseq = 10
    points = [50] + [CYCLES * k // 6 for k in range(1, 7)]
    for point in points:
        while cycle < point:
            cycle += 1
            cseq += 1
            now += 500
            engine.receive(alice.register(cseq=cseq), alice.addr, now)
            engine.receive(bob.register(cseq=cseq), bob.addr, now)
            fwd = engine.receive(alice.invite("1002", "steady-%d" % cycle), alice.addr, now)[-1][0]
            engine.receive(bob.answer(fwd, 180, "Ringing", tag="s%d" % cycle), bob.addr, now)
            ok = engine.receive(bob.answer(fwd, 200, "OK", tag="s%d" % cycle, sdp=True),
                                bob.addr, now)[-1][0]
            engine.receive(alice.in_dialog("ACK", ok, 1), alice.addr, now)
            now += 500
            fwd = engine.receive(alice.in_dialog("BYE", ok, 2), alice.addr, now)[-1][0]
            engine.receive(bob.answer(fwd, 200, "OK"), bob.addr, now)
            engine.tick(now)
            fwd = ok = None
        now += LINGER_MS
        engine.tick(now)
        h = yield from heap()
        out("steady", cycle, h, len(engine.calls.active), len(engine.calls.history),
            len(engine.txns.all), engine.counters["internal_errors"])


# --- timing --------------------------------------------------------------------------------
def timing():
    from flows import Phone

    from switchboard.config import Config
    from switchboard.engine import Engine

    best = {}
    checks = {}

    def timed(name, items, source):
        """Feed items to the engine; record the batch time; return the last datagram of each."""
        gc.collect()
        outputs = []
        start = now_us()
        for data in items:
            outputs.append(engine.receive(data, source, now))
        took = since_us(start)
        if name not in best or took < best[name]:
            best[name] = took
        checks[name] = sum(len(o) for o in outputs)
        return [o[-1][0] if o else b"" for o in outputs]

    for r in range(ROUNDS):
        engine = Engine(Config(overrides=settings(MAX_BINDINGS=N + 8, MAX_CALLS=N + 8,
                                                  MAX_TRANSACTIONS=6 * N + 50)), 7)
        now = 1000
        alice = Phone("1001", "10.0.0.11")
        bob = Phone("1002", "10.0.0.12")
        engine.receive(alice.register(), alice.addr, now)
        engine.receive(bob.register(), bob.addr, now)
        phones = [Phone("3%04d" % i, "10.0.1.1", 5060) for i in range(N)]
        registers = [p.register() for p in phones]
        phones = None
        yield  # collect before a timed batch
        timed("REGISTER", registers, ("10.0.1.1", 5060))
        registers = None
        invites = [alice.invite("1002", "t%d-%d" % (r, i)) for i in range(N)]
        yield  # collect before a timed batch
        forwarded = timed("INVITE forward", invites, alice.addr)
        invites = None
        rings = [bob.answer(f, 180, "Ringing", tag="b%d" % i) for i, f in enumerate(forwarded)]
        yield  # collect before a timed batch
        timed("180 relay", rings, bob.addr)
        rings = None
        oks = [bob.answer(f, 200, "OK", tag="b%d" % i, sdp=True) for i, f in enumerate(forwarded)]
        yield  # collect before a timed batch
        at_alice = timed("200 relay", oks, bob.addr)
        oks = forwarded = None
        acks = [alice.in_dialog("ACK", ok, 1) for ok in at_alice]
        yield  # collect before a timed batch
        timed("ACK relay", acks, alice.addr)
        acks = None
        byes = [alice.in_dialog("BYE", ok, 2) for ok in at_alice]
        yield  # collect before a timed batch
        at_bob = timed("BYE forward", byes, alice.addr)
        byes = at_alice = None
        finals = [bob.answer(f, 200, "OK") for f in at_bob]
        yield  # collect before a timed batch
        timed("200 (BYE) relay", finals, bob.addr)
        finals = at_bob = None
        errors = engine.counters["internal_errors"]
        engine = None
    for name in ("REGISTER", "INVITE forward", "180 relay", "200 relay", "ACK relay",
                 "BYE forward", "200 (BYE) relay"):
        out("time", name.replace(" ", "_"), best[name], N, checks[name])
    out("internal_errors", errors)


def steps():
    out("interpreter", sys.implementation.name, sys.maxsize, sys.version.replace(" ", "_"))
    if MODE == "memory":
        yield from memory()
    else:
        yield from timing()


if not MICRO:
    for _ in steps():
        pass
