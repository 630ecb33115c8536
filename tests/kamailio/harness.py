"""Pieces of the trunk tests: the outside phone (SIPp, registered at Kamailio with digest),
a recording phone at Switchboard (raw SIP over UDP), and /api/status polling."""

import json
import os
import time
import urllib.request

from flows import first_line
from hostmode import free_port
from sipp_helpers import Sipp, run_sipp
from udpphone import UdpPhone

from switchboard.message import parse, parse_name_addr

HERE = os.path.dirname(os.path.abspath(__file__))


def scenario(name):
    return os.path.join(HERE, name)


def api_status(host):
    url = "http://%s:%d/api/status" % (host.host, host.http_port)
    with urllib.request.urlopen(url, timeout=3) as r:
        return json.loads(r.read())


def wait_trunk(host, state, timeout=10.0):
    """Poll /api/status until the trunk is in state; returns its trunk entry."""
    end = time.monotonic() + timeout
    trunk = None
    while time.monotonic() < end:
        trunk = api_status(host)["trunk"]
        if trunk and trunk["state"] == state:
            return trunk
        time.sleep(0.1)
    raise AssertionError("trunk never %s: %r\n%s" % (state, trunk, "\n".join(host.lines[-30:])))


class Outside:
    """A phone of the ITSP: registers its number at Kamailio with digest, then answers or
    calls with SIPp from the same address."""

    def __init__(self, kamailio, number, password, ip, workdir):
        self.kamailio = kamailio
        self.number = number
        self.password = password
        self.ip = ip
        self.port = free_port(host=ip)
        self.workdir = workdir
        self.runs = 0
        self.processes = []

    def _name(self, what):
        self.runs += 1
        return "out%s_%d_%s" % (self.number, self.runs, what)

    def register(self):
        result = run_sipp(scenario("register_auth.xml"), self.workdir, self._name("register"),
                          (self.ip, self.port), remote=self.kamailio.addr,
                          keys={"user": self.number, "contact": "%s:%d" % (self.ip, self.port)},
                          extra=["-au", self.number, "-ap", self.password])
        assert result.ok, result.report()
        return result

    def answer(self, name="uas_answer.xml", pause_ms=None, timeout=20):
        """Start a callee SIPp: name is one of tests/kamailio/ or else of tests/sipp/."""
        path = scenario(name) if os.path.isfile(scenario(name)) else name
        proc = Sipp(path, self.workdir, self._name(name[:-4]), (self.ip, self.port),
                    keys={"user": self.number}, pause_ms=pause_ms, timeout=timeout)
        self.processes.append(proc)
        return proc.wait_bound()

    def call(self, number, pause_ms=500, timeout=20, name="uac_call_auth.xml"):
        """Call number through Kamailio (its 407 answered with our password)."""
        proc = Sipp(scenario(name), self.workdir, self._name(name[:-4]),
                    (self.ip, self.port), remote=self.kamailio.addr, service=number,
                    keys={"user": self.number}, pause_ms=pause_ms, timeout=timeout,
                    extra=["-au", self.number, "-ap", self.password])
        self.processes.append(proc)
        return proc

    def stop(self):
        for proc in self.processes:
            proc.stop()


class Phone(UdpPhone):
    """A phone at Switchboard that keeps every datagram it received (self.got)."""

    def expect(self, start, timeout=5.0):  # 5 s here, 3 s for other UdpPhones
        return UdpPhone.expect(self, start, timeout)

    def register_here(self):
        self.send(self.register())
        self.expect("SIP/2.0 200")

    def as_callee(self, invite, method="BYE", cseq=1, tag="callee", sdp=None):
        """Our request in the dialog an INVITE we answered set up (with To tag `tag`): to
        the caller's Contact, the Record-Route as Route in order (RFC 3261 §12.1.1, §12.2.1.1);
        sdp: a body (an INVITE also gets our Contact)."""
        m = parse(invite)
        target = parse_name_addr(m.get("contact"))[1]
        lines = ["%s %s SIP/2.0" % (method, target),
                 "Via: SIP/2.0/UDP %s:%d;branch=z9hG4bK%s%s%d;rport" % (
                     self.ip, self.port, method.lower(), self.user, self.next()),
                 "Max-Forwards: 70"]
        routes = m.values("record-route")
        if routes:
            lines.append("Route: %s" % ", ".join(routes))
        lines += ["From: %s;tag=%s" % (m.get("to"), tag), "To: %s" % m.get("from"),
                  "Call-ID: %s" % m.get("call-id"), "CSeq: %d %s" % (cseq, method)]
        if method == "INVITE":
            lines.append("Contact: %s" % self.contact())
        if sdp:
            lines.append("Content-Type: application/sdp")
        lines.append("Content-Length: %d" % len(sdp or ""))
        return ("\r\n".join(lines) + "\r\n\r\n" + (sdp or "")).encode()

    def firsts(self):
        return [first_line(d) for d in self.got]
