"""Trunk flows driven through the sans-I/O engine with fake phones and a fake upstream.

Runs unchanged under CPython and MicroPython (with adafruit_hashlib for MD5 there):
`run(emit)` plays registration with a 401, a call out with a 407 on the INVITE and on the
BYE, a call in by DID, an "outside" call from a stranger, a refused refresh, a timed-out
REGISTER and a call out while the trunk is down, emitting every datagram and the trunk's
status. tests/test_trunk_portable.py compares the two interpreters' transcripts;
tests/unit/test_trunk.py asserts on the pieces (Net, Upstream).
"""

from flows import PROXY, Phone, first_line, new_engine

from switchboard.message import parse
from switchboard.trunk import install

UPSTREAM = ("10.0.0.100", 5060)
SETTINGS = {"TRUNK": "sip:siteA@10.0.0.100", "TRUNK_PASSWORD": "pw-A",
            "TRUNK_DIDS": "+4930123456=1002", "TRUNK_INBOUND": "1003", "TRUNK_EXPIRES": "120"}


class Box:
    """What trunk.install() needs of an App: the engine and the services list."""

    def __init__(self, engine):
        self.engine = engine
        self.services = []


def new_trunk(settings=None, overrides=None, log=None):
    """(engine, trunk) with SETTINGS (settings replaces keys; None values remove them)."""
    merged = {}
    for k in SETTINGS:
        merged[k] = SETTINGS[k]
    for k in (settings or {}):
        merged[k] = settings[k]
    engine = new_engine(overrides, log=log)
    box = Box(engine)
    trunk = install(box, merged.get)
    return engine, trunk


def insert(data, line):
    """data with one header line added before Content-Length."""
    head, rest = data.split(b"Content-Length:", 1)
    return head + line.encode() + b"\r\nContent-Length:" + rest


class Upstream(Phone):
    """The upstream server: answers, challenges, and calls in."""

    def __init__(self):
        Phone.__init__(self, "itsp", UPSTREAM[0], UPSTREAM[1], domain="%s:%d" % PROXY)

    def challenge(self, request, status, algorithm="MD5", nonce="nonce-1"):
        header = "WWW-Authenticate" if status == 401 else "Proxy-Authenticate"
        reason = "Unauthorized" if status == 401 else "Proxy Authentication Required"
        r = self.answer(request, status, reason, tag="itsp")
        return insert(r, '%s: Digest realm="itsp.test", nonce="%s", algorithm=%s, qop="auth"'
                      % (header, nonce, algorithm))

    def in_dialog_as_callee(self, method, invite, tag, cseq):
        """A request of ours (the callee) in the dialog invite set up: to its Contact."""
        m = parse(invite)
        contact = m.get("contact")
        target = contact[contact.find("<") + 1:contact.find(">")]
        lines = ["%s %s SIP/2.0" % (method, target),
                 "Via: SIP/2.0/UDP %s:%d;branch=z9hG4bKup%d;rport" % (self.ip, self.port, cseq),
                 "Max-Forwards: 70", "From: %s;tag=%s" % (m.get("to"), tag),
                 "To: %s" % m.get("from"), "Call-ID: %s" % m.get("call-id"),
                 "CSeq: %d %s" % (cseq, method), "Content-Length: 0"]
        return ("\r\n".join(lines) + "\r\n\r\n").encode()

    def registered(self, request, expires):
        m = parse(request)
        r = self.answer(request, 200, "OK", tag="itsp")
        return insert(r, "Contact: %s;expires=%d" % (m.get("contact"), expires))


class Net:
    """The engine with a clock; sends and ticks return (and emit) what it sent."""

    def __init__(self, engine, emit):
        self.engine = engine
        self.emit = emit
        self.now = 1000

    def _out(self, out, how):
        for datagram, dest in out:
            self.emit("-> %s:%d%s\n%s" % (dest[0], dest[1], how, datagram.decode()))
        return out

    def send(self, who, data, advance=10):
        self.now += advance
        return self._out(self.engine.receive(data, who.addr, self.now), "")

    def tick(self, advance):
        self.now += advance
        return self._out(self.engine.tick(self.now), " (timer)")


def find(out, start, dest=None):
    """The first datagram of out whose first line starts with start (to dest)."""
    for datagram, to in out:
        if first_line(datagram).startswith(start) and (dest is None or to == dest):
            return datagram
    raise AssertionError("no %r in %r" % (start, [first_line(d) for d, _ in out]))


def run(emit):
    """Play every trunk flow and emit its transcript; returns (engine, trunk, net)."""
    engine, trunk = new_trunk(log=lambda level, text: emit("log %s %s" % (level, text)))
    net = Net(engine, emit)
    up = Upstream()
    alice = Phone("1001", "10.0.0.11")
    bob = Phone("1002", "10.0.0.12")
    stranger = Phone("5550199", "10.0.0.99")

    def status():
        s = trunk.status(net.now)
        emit("trunk %s %s %s %s next %s expires %s calls %s" % (
            s["state"], s["last_status"], s["last_reason"], s["server"], s["next_try"],
            s["expires_in"], s["calls"]))

    emit("== register: 401, credentials, 200")
    status()
    register = find(net.tick(10), "REGISTER", UPSTREAM)
    out = net.send(up, up.challenge(register, 401))
    register = find(out, "REGISTER", UPSTREAM)
    net.send(up, up.registered(register, 120))
    status()
    net.send(alice, alice.register())
    net.send(bob, bob.register())

    emit("== call out: 407 on the INVITE, answered, the upstream hangs up")
    out = net.send(alice, alice.invite("05550100", "out-1"))
    invite = find(out, "INVITE", UPSTREAM)
    out = net.send(up, up.challenge(invite, 407, "SHA-256"))
    invite = find(out, "INVITE", UPSTREAM)
    net.send(up, up.answer(invite, 180, "Ringing", tag="far"))
    out = net.send(up, up.answer(invite, 200, "OK", tag="far", sdp=True))
    ok = find(out, "SIP/2.0 200", alice.addr)
    net.send(alice, alice.in_dialog("ACK", ok, 1))
    status()
    out = net.send(up, up.in_dialog_as_callee("BYE", invite, "far", 1))
    to_alice = find(out, "BYE", alice.addr)
    net.send(alice, alice.answer(to_alice, 200, "OK"))

    emit("== call out: the phone hangs up, the BYE is challenged upstream")
    out = net.send(alice, alice.invite("05550100", "out-2"))
    invite = find(out, "INVITE", UPSTREAM)
    out = net.send(up, up.answer(invite, 200, "OK", tag="far2", sdp=True))
    ok = find(out, "SIP/2.0 200", alice.addr)
    out = net.send(alice, alice.in_dialog("ACK", ok, 1))
    out = net.send(alice, alice.in_dialog("BYE", ok, 2))
    bye = find(out, "BYE", UPSTREAM)
    out = net.send(up, up.challenge(bye, 407))
    bye = find(out, "BYE", UPSTREAM)
    net.send(up, up.answer(bye, 200, "OK", tag="far2"))

    emit("== call in by DID, and from a stranger")
    did = up.request("INVITE", "sip:siteA@%s:%d" % PROXY, "<sip:+4930123456@itsp.test>",
                     "in-1", 1, ["Contact: <sip:itsp@10.0.0.100>"], "v=0\r\n")
    out = net.send(up, did)
    find(out, "INVITE sip:1002@", bob.addr)
    net.send(stranger, stranger.invite("+4930123456", "in-2"))

    emit("== refresh refused, retry unanswered, call out while down")
    register = find(net.tick(100000), "REGISTER", UPSTREAM)
    net.send(up, up.answer(register, 403, "Forbidden", tag="itsp"))
    status()
    out = net.send(alice, alice.invite("05550100", "out-3"))
    find(out, "SIP/2.0 503", alice.addr)
    net.tick(30000)
    for _ in range(8):
        net.tick(4000)
    status()
    return engine, trunk, net


if __name__ == "__main__":
    run(print)
