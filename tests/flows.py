"""SIP flows driven through the sans-I/O engine with fake phones.

Runs unchanged under CPython and MicroPython: `run(emit)` plays register, call
answered and hung up, cancel, busy, unregistered and unknown callee, and a
Timer C expiry, emitting every datagram the engine sends. tests/test_portable.py
compares the two interpreters' transcripts; tests/unit/test_engine.py and others use Phone.
"""

from switchboard.config import Config
from switchboard.engine import Engine
from switchboard.message import URI, param, parse, parse_name_addr

PROXY = ("10.0.0.1", 5060)
SDP = "v=0\r\no=- 1 1 IN IP4 %s\r\ns=-\r\nc=IN IP4 %s\r\nt=0 0\r\nm=audio %d RTP/AVP 0 8 101\r\n" \
      "a=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n"


def new_config(overrides=None):
    settings = {"SIP_ADDRESS": PROXY[0], "SIP_PORT": PROXY[1], "SIP_USERS": "1001,1002,1003"}
    if overrides:
        for k in overrides:
            settings[k] = overrides[k]
    return Config(overrides=settings)


def new_engine(overrides=None, seed=7, log=None, config=None, **parts):
    """An Engine for the test network; parts (auth, router, location, ...) are injected."""
    return Engine(config or new_config(overrides), seed, log, **parts)


def snapshot(engine, now):
    """Registrations, calls, history and counters as plain data."""
    counters = {}
    for name in engine.counters:
        counters[name] = engine.counters[name]
    return {"registrations": engine.registrations(now), "calls": engine.active_calls(now),
            "history": engine.call_history(now), "counters": counters,
            "limits": engine.config.limits(), "use": engine.table_use(),
            "address": engine.sent_by, "domain": engine.domain}


class Phone:
    """A minimal user agent that writes RFC 3261 requests and answers."""

    def __init__(self, user, ip, port=5060, domain=PROXY[0]):
        self.user = user
        self.ip = ip
        self.port = port
        self.domain = domain  # the proxy's host[:port], as the phone is configured
        self.n = 0

    @property
    def addr(self):
        return (self.ip, self.port)

    def contact(self):
        return "<sip:%s@%s:%d>" % (self.user, self.ip, self.port)

    def next(self):
        self.n += 1
        return self.n

    def request(self, method, uri, to, call_id, cseq, headers=(), body="", branch=None,
                from_tag=None):
        branch = branch or "z9hG4bK%s%d" % (self.user, self.next())
        lines = [
            "%s %s SIP/2.0" % (method, uri),
            "Via: SIP/2.0/UDP %s:%d;branch=%s;rport" % (self.ip, self.port, branch),
            "Max-Forwards: 70",
            "From: <sip:%s@%s>;tag=%s" % (self.user, self.domain, from_tag or "t" + self.user),
            "To: %s" % to,
            "Call-ID: %s" % call_id,
            "CSeq: %d %s" % (cseq, method),
        ]
        lines.extend(headers)
        if body:
            lines.append("Content-Type: application/sdp")
        lines.append("Content-Length: %d" % len(body))
        return ("\r\n".join(lines) + "\r\n\r\n" + body).encode()

    def register(self, expires=3600, call_id=None, cseq=1, contact=None):
        aor = "<sip:%s@%s>" % (self.user, self.domain)
        return self.request("REGISTER", "sip:%s" % self.domain, aor, call_id or "reg-" + self.user,
                            cseq, ["Contact: %s" % (contact or self.contact()),
                                   "Expires: %d" % expires])

    def invite(self, callee, call_id, cseq=1, from_tag=None):
        body = SDP % (self.ip, self.ip, 4000 + int(self.user[-1]) * 2)
        return self.request("INVITE", "sip:%s@%s" % (callee, self.domain),
                            "<sip:%s@%s>" % (callee, self.domain), call_id, cseq,
                            ["Contact: %s" % self.contact()], body, from_tag=from_tag)

    def cancel(self, invite):
        """CANCEL for an INVITE we sent: same branch, same CSeq number (§9.1)."""
        m = parse(invite)
        via = m.first_value("via")
        branch = param(via[via.find(";"):], "branch")
        return self.request("CANCEL", m.uri, m.get("to"), m.get("call-id"), m.cseq()[0],
                            branch=branch)

    def ack(self, invite, response):
        """ACK for a non-2xx final: same branch as the INVITE, To from the response."""
        m = parse(invite)
        r = parse(response)
        via = m.first_value("via")
        branch = param(via[via.find(";"):], "branch")
        return self.request("ACK", m.uri, r.get("to"), m.get("call-id"), m.cseq()[0],
                            branch=branch)

    def in_dialog(self, method, ok, cseq, from_tag=None, to_value=None):
        """ACK/BYE inside a dialog set up by ok (a 2xx we got as caller), via its Record-Route."""
        r = parse(ok)
        target = parse_name_addr(r.get("contact"))[1]
        routes = r.values("record-route")
        routes.reverse()  # the caller uses the Record-Route in reverse order (§12.1.2)
        headers = ["Route: %s" % ", ".join(routes)] if routes else []
        return self.request(method, target, to_value or r.get("to"), r.get("call-id"), cseq,
                            headers, from_tag=from_tag)

    def answer(self, request, status, reason, tag="callee", sdp=False):
        """A response (as UAS) to a request the proxy delivered to us."""
        m = parse(request)
        lines = ["SIP/2.0 %d %s" % (status, reason)]
        for name in ("via", "record-route"):
            for value in m.values(name):
                lines.append("%s: %s" % ("Via" if name == "via" else "Record-Route", value))
        lines.append("From: %s" % m.get("from"))
        to = m.get("to")
        if status > 100 and ";tag=" not in to:
            to += ";tag=" + tag
        lines.append("To: %s" % to)
        lines.append("Call-ID: %s" % m.get("call-id"))
        lines.append("CSeq: %s" % m.get("cseq"))
        if m.method == "INVITE" and 200 <= status < 300:
            lines.append("Contact: %s" % self.contact())
        body = SDP % (self.ip, self.ip, 5000) if sdp else ""
        if body:
            lines.append("Content-Type: application/sdp")
        lines.append("Content-Length: %d" % len(body))
        return ("\r\n".join(lines) + "\r\n\r\n" + body).encode()


def first_line(data):
    return data[:data.find(b"\r\n")].decode()


def status(data):
    line = first_line(data)
    return int(line.split(" ")[1]) if line.startswith("SIP/2.0") else 0


def to_uri_host(data):
    return URI(parse(data).uri).host


def run(emit):
    """Play every flow and emit its transcript; returns the engine for inspection."""
    now = [1000]
    engine = new_engine()

    def send(phone, data, advance=10):
        now[0] += advance
        out = engine.receive(data, phone.addr, now[0])
        for datagram, dest in out:
            emit("-> %s:%d\n%s" % (dest[0], dest[1], datagram.decode()))
        return out

    def tick(advance):
        now[0] += advance
        out = engine.tick(now[0])
        for datagram, dest in out:
            emit("-> %s:%d (timer)\n%s" % (dest[0], dest[1], datagram.decode()))
        return out

    alice = Phone("1001", "10.0.0.11")
    bob = Phone("1002", "10.0.0.12")
    carol = Phone("1003", "10.0.0.13")
    emit("== register")
    send(alice, alice.register())
    send(bob, bob.register())

    emit("== call answered, caller hangs up")
    invite = alice.invite("1002", "call-1")
    out = send(alice, invite)
    to_bob = out[-1][0]
    send(bob, bob.answer(to_bob, 180, "Ringing"))
    ok = bob.answer(to_bob, 200, "OK", sdp=True)
    out = send(bob, ok)
    ok_at_alice = out[-1][0]
    send(alice, alice.in_dialog("ACK", ok_at_alice, 1))
    out = send(alice, alice.in_dialog("BYE", ok_at_alice, 2))
    send(bob, bob.answer(out[-1][0], 200, "OK"))

    emit("== cancel while ringing")
    invite = alice.invite("1002", "call-2")
    out = send(alice, invite)
    to_bob = out[-1][0]
    send(bob, bob.answer(to_bob, 180, "Ringing"))
    out = send(alice, alice.cancel(invite))
    cancel_at_bob = out[-1][0]
    send(bob, bob.answer(cancel_at_bob, 200, "OK"))
    out = send(bob, bob.answer(to_bob, 487, "Request Terminated"))
    send(alice, alice.ack(invite, out[-1][0]))

    emit("== busy")
    invite = alice.invite("1002", "call-3")
    out = send(alice, invite)
    out = send(bob, bob.answer(out[-1][0], 486, "Busy Here"))
    send(alice, alice.ack(invite, out[-1][0]))

    emit("== unregistered and unknown callee")
    for callee, call_id in (("1003", "call-4"), ("9999", "call-5")):
        invite = alice.invite(callee, call_id)
        out = send(alice, invite)
        send(alice, alice.ack(invite, out[-1][0]))

    emit("== no answer: Timer C")
    send(carol, carol.register())
    invite = alice.invite("1003", "call-6")
    out = send(alice, invite)
    to_carol = out[-1][0]
    send(carol, carol.answer(to_carol, 180, "Ringing"))
    out = tick(engine.config.timer_c * 1000)
    for datagram, _ in out:
        if first_line(datagram).startswith("CANCEL"):
            send(carol, carol.answer(datagram, 200, "OK"))
    out = send(carol, carol.answer(to_carol, 487, "Request Terminated"))

    emit("== unregister")
    send(bob, bob.register(expires=0, cseq=2))

    emit("== state")
    emit_state(snapshot(engine, now[0]), emit)
    return engine


def emit_state(value, emit, indent=""):
    """Print plain data with sorted keys (json.dumps has no sort_keys on MicroPython)."""
    if isinstance(value, dict):
        for key in sorted(value):
            item = value[key]
            if isinstance(item, (dict, list)):
                emit("%s%s:" % (indent, key))
                emit_state(item, emit, indent + "  ")
            else:
                emit("%s%s: %r" % (indent, key, item))
    elif isinstance(value, list):
        for item in value:
            emit("%s-" % indent)
            emit_state(item, emit, indent + "  ")
    else:
        emit("%s%r" % (indent, value))


if __name__ == "__main__":
    run(print)
