"""The board's heap on the 32-bit MicroPython VM: imports, and a simulated load.

Not run by itself: tests/w5500/budget.py puts a few settings lines in front of this text
(MODE, and PRE/NAMES or LOAD) and runs it with bench/vm_steps.mjs, which collects garbage
whenever steps() yields; `h = yield from heap()` is therefore the live heap
(gc.mem_alloc() after a real collection). Every figure is printed as "key value ..." lines.

MODE "import": import PRE (not measured), then each of NAMES in turn, printing the live heap
each one adds and the total. Names are modules, or:
    "driver"       adafruit_wiznet5k's WIZNET5K the way netif loads it (no DHCP/DNS modules)
    "hash:md5"     switchboard.digest.hasher("md5"), i.e. the hash code digest auth loads
    "hash:sha256"  the same for sha256 (the nonce MAC)
    "alone:_md5"   adafruit_hashlib's _md5 module imported without its package
    "forget"       board.forget(board.START_ONLY): the start-up modules dropped after start

MODE "load": the board's imports (LOAD["imports"]) and the engine the board builds (App with
digest on), driven in simulated time by
LOAD["phones"] phones that register with digest and re-register every LOAD["rereg_s"] s,
and LOAD["calls_per_s"] calls a second (INVITE, 180, 200, ACK, BYE after LOAD["hold_ms"],
200) for LOAD["minutes"] minutes. Prints the live heap after every LOAD["step_ms"] of
simulated time as per-minute peaks, and what failed.
"""

import gc
import sys
import time

try:
    MODE  # noqa: B018 (set by tests/w5500/budget.py, with PRE and NAMES or LOAD)
except NameError:
    MODE = "import"
PRE = globals().get("PRE", [])
NAMES = globals().get("NAMES", [])
LOAD = globals().get("LOAD", {})

# CircuitPython's time has these; the VM's does not (adafruit_httpserver imports them)
time.monotonic_ns = lambda: time.ticks_ms() * 1000000
time.monotonic = lambda: time.ticks_ms() / 1000
import __future__  # noqa: E402,F401 (VM stand-ins, tests/w5500/vmstubs: before measuring)

import traceback  # noqa: E402,F401

keep = []  # what was imported or built stays alive here


def out(*items):
    print(" ".join(str(i) for i in items))


def heap():
    gc.collect()
    yield
    return gc.mem_alloc()


def load(name):
    if name == "forget":  # what board.main() does after start
        from switchboard.board import START_ONLY, forget

        forget(START_ONLY)
    elif name == "driver":
        from switchboard.bringup import import_driver

        keep.append(import_driver())
    elif name.startswith("alone:"):  # one adafruit_hashlib module without its package
        from switchboard.digest import _alone

        keep.append(_alone(name[6:], name[7:]))
    elif name.startswith("hash:"):
        from switchboard.digest import hasher

        keep.append(hasher(name[5:]))
    else:
        keep.append(__import__(name))


def import_steps():
    for name in PRE:
        load(name)
    base = yield from heap()
    last = base
    for name in NAMES:
        load(name)
        h = yield from heap()
        out("import", name, h - last)
        last = h
    out("total", last - base)
    out("modules", ",".join(sorted(k for k in sys.modules)))


# --- the load ----------------------------------------------------------------------------------
class Board:
    """The engine as the board builds it, and the one place that calls its API."""

    def __init__(self, settings):
        from switchboard.app import App
        from switchboard.config import Config

        class Sip:  # App's endpoint: the simulation hands datagrams to the engine itself
            errors = 0

            def close(self):
                pass

        self.app = App(Config(overrides=settings), None, None, lambda level, text: None,
                       b"0123456789abcdef", Sip())
        self.engine = self.app.engine

    def receive(self, data, source, now):
        return self.engine.receive(data, source, now)

    def tick(self, now):
        return self.engine.tick(now)

    def tables(self):
        out = self.engine.tables()
        txns = self.engine.txns  # in progress and finished ones lingering (names the
        out["transactions_kept"] = {"use": txns.held(), "limit": txns.keep_limit}  # VM has)
        return out


def challenge(data):
    """realm, nonce, qop of the first Digest challenge in a 401."""
    text = data.decode()
    start = text.find("Digest ")
    end = text.find("\r\n", start)
    params = {}
    for part in text[start + 7:end].split(","):
        eq = part.find("=")
        if eq > 0:
            params[part[:eq].strip().lower()] = part[eq + 1:].strip().strip('"')
    return params


def load_steps():
    start = yield from heap()
    for name in LOAD.get("imports", ()):  # the rest of what the board imports: counted
        load(name)
    from binascii import hexlify

    import switchboard.app  # noqa: F401 (the board's own imports first: counted)
    import switchboard.auth  # noqa: F401
    from switchboard.digest import hasher

    md5 = hasher("md5")
    hasher("sha256")
    imported = yield from heap()
    from flows import Phone, first_line, parse, status  # the harness: not counted

    def hx(text):
        return hexlify(md5(text.encode()).digest()).decode()

    L = LOAD  # noqa: N806
    n = L["phones"]
    settings = {"SIP_ADDRESS": "10.0.0.1", "SIP_PORT": 5060, "LOG_LEVEL": "error",
                "SIP_USERS": ",".join("%d:pw%d" % (2000 + i, i) for i in range(n))}
    for key in L["settings"]:
        settings[key] = L["settings"][key]
    phones = [Phone(str(2000 + i), "10.1.0.%d" % (i + 1)) for i in range(n)]
    ha1 = [hx("%s:10.0.0.1:pw%d" % (p.user, i)) for i, p in enumerate(phones)]
    by_ip = {}
    for i, p in enumerate(phones):
        by_ip[p.ip] = i
    step = L["step_ms"]
    end = L["minutes"] * 60000
    gap = 1000 // L["calls_per_s"]
    counts = {"registered": 0, "reg_failed": 0, "calls": 0, "answered": 0, "ended": 0,
              "call_failed": 0, "other": 0}
    reg_cseq = [0] * n
    next_reg = [i * 50 for i in range(n)]  # first REGISTERs 50 ms apart, then every rereg_s
    pending = {}  # call id -> INVITE bytes until its final answer
    byes = []  # (due ms, caller, 200 OK) of answered calls
    queue = []  # (datagram, phone index, True: phone -> board / False: board -> phone)
    minute_peak = []
    minute_low = []
    most = {}  # table -> highest use seen
    state = [0, 0]  # now, calls started
    harness = yield from heap()
    board = Board(settings)
    built = yield from heap()
    own = harness - imported  # the harness's own objects: taken off every figure below
    out("imports", imported - start)
    out("engine", built - harness)

    def send_register(i, auth):
        p = phones[i]
        reg_cseq[i] += 1
        headers = ["Contact: %s" % p.contact(), "Expires: %d" % (2 * L["rereg_s"])]
        if auth is not None:
            resp = hx("%s:%s:00000001:c%d:auth:%s" % (ha1[i], auth["nonce"], i,
                                                     hx("REGISTER:sip:10.0.0.1")))
            headers.append('Authorization: Digest username="%s", realm="%s", nonce="%s", '
                           'uri="sip:10.0.0.1", response="%s", algorithm=MD5, qop=auth, '
                           'nc=00000001, cnonce="c%d"' % (p.user, auth["realm"], auth["nonce"],
                                                          resp, i))
        queue.append((p.request("REGISTER", "sip:10.0.0.1", "<sip:%s@10.0.0.1>" % p.user,
                                "reg-" + p.user, reg_cseq[i], headers), i, True))

    def phone_gets(i, data):
        p = phones[i]
        line = first_line(data)
        if not line.startswith("SIP/2.0"):
            method = line[:line.find(" ")]
            if method == "INVITE":
                queue.append((p.answer(data, 180, "Ringing"), i, True))
                queue.append((p.answer(data, 200, "OK", sdp=True), i, True))
            elif method == "BYE":
                queue.append((p.answer(data, 200, "OK"), i, True))
            elif method != "ACK":
                counts["other"] += 1
            return
        code = status(data)
        if code < 200:
            return
        m = parse(data)
        method = m.cseq()[1]
        if method == "REGISTER":
            if code == 401:
                send_register(i, challenge(data))
            elif code == 200:
                counts["registered"] += 1
            else:
                counts["reg_failed"] += 1
        elif method == "INVITE":
            invite = pending.pop(m.get("call-id"), None)
            if invite is None:
                return  # a retransmitted final answer
            if code < 300:
                counts["answered"] += 1
                queue.append((p.in_dialog("ACK", data, 1), i, True))
                byes.append((state[0] + L["hold_ms"], i, data))
            else:
                counts["call_failed"] += 1
                queue.append((p.ack(invite, data), i, True))
        elif method == "BYE":
            counts["ended" if code == 200 else "call_failed"] += 1

    next_call = 5000  # calls start once every phone had time to register
    while state[0] < end:
        now = state[0]
        for i in range(n):
            if now >= next_reg[i]:
                next_reg[i] += L["rereg_s"] * 1000
                send_register(i, None)
        while next_call <= now:
            k = state[1]
            caller, callee = (2 * k) % n, (2 * k + 1) % n
            call_id = "call-%d" % k
            invite = phones[caller].invite(phones[callee].user, call_id)
            pending[call_id] = invite
            queue.append((invite, caller, True))
            counts["calls"] += 1
            state[1] = k + 1
            next_call += gap
        while byes and byes[0][0] <= now:
            _, i, ok = byes.pop(0)
            queue.append((phones[i].in_dialog("BYE", ok, 2), i, True))
        for data, dest in board.tick(now):
            i = by_ip.get(dest[0])
            if i is not None:
                queue.append((data, i, False))
        while queue:
            data, i, to_board = queue.pop(0)
            if to_board:
                for reply, dest in board.receive(data, phones[i].addr, now):
                    j = by_ip.get(dest[0])
                    if j is not None:
                        queue.append((reply, j, False))
            else:
                phone_gets(i, data)
        state[0] = now + step
        h = (yield from heap()) - start - own
        minute = now // 60000
        if minute >= len(minute_peak):
            minute_peak.append(h)
            minute_low.append(h)
        if h > minute_peak[minute]:
            minute_peak[minute] = h
        if h < minute_low[minute]:
            minute_low[minute] = h
        tables = board.tables()
        for name in tables:
            if tables[name]["use"] > most.get(name, -1):
                most[name] = tables[name]["use"]
    for m in range(len(minute_peak)):
        out("minute", m + 1, minute_peak[m], minute_low[m])
    out("peak", max(minute_peak))
    out("harness", own)
    counts["unanswered"] = len(pending)  # INVITEs that never got a final answer
    for key in counts:
        out("count", key, counts[key])
    tables = board.tables()
    for name in tables:
        out("table", name, most.get(name, 0), tables[name]["limit"])


def steps():
    if MODE == "import":
        yield from import_steps()
    else:
        yield from load_steps()
