"""Open-loop REGISTER load with digest authentication, for bench/host_load.py.

Why not sipp: SIPp 3.6 computes only MD5 (and AKA) credentials and answers the first
WWW-Authenticate of a 401; with SIP_AUTH_ALGORITHMS = "SHA-256,MD5" Switchboard offers SHA-256
first (RFC 8760 order of preference), and sipp then fails with "authentication must use MD5 or
AKAv1-MD5". This client does what RFC 8760 asks of a client: it takes the first challenge
whose algorithm it supports (SHA-256 or MD5; none named means MD5).

Per user: REGISTER, 401 with a challenge, REGISTER with Authorization (qop=auth), 200. New
registrations start at a fixed rate whether or not earlier ones are answered (open loop), on
one UDP socket; a request unanswered for T1 is sent again with doubling intervals (RFC 3261
Timer E, capped at T2) and the registration fails after MAX_SENDS sends. The latency is from
the first REGISTER to the 200, measured with time.perf_counter (microseconds).
"""

import hashlib
import os
import select
import socket
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))
from switchboard.auth import parse_credentials  # noqa: E402

T1 = 0.5
T2 = 4.0
MAX_SENDS = 6  # gives up 0.5 + 1 + 2 + 4 + 4 + 4 = 15.5 s after the first send
HASHES = {"SHA-256": hashlib.sha256, "MD5": hashlib.md5}


def _h(make, text):
    return make(text.encode()).hexdigest()


def authorization(challenges, user, password, uri, method="REGISTER"):
    """The Authorization value for the first challenge with an algorithm we know, or None."""
    for value in challenges:
        p = parse_credentials(value)
        label = p.get("algorithm", "MD5").upper()
        make = HASHES.get(label)
        if make is None:
            continue
        realm = p.get("realm", "")
        nonce = p.get("nonce", "")
        ha1 = _h(make, "%s:%s:%s" % (user, realm, password))
        ha2 = _h(make, "%s:%s" % (method, uri))
        text = 'Digest username="%s", realm="%s", nonce="%s", uri="%s", algorithm=%s' % (
            user, realm, nonce, uri, label)
        qops = [q.strip() for q in p.get("qop", "").split(",")]
        if "auth" in qops:
            cnonce = os.urandom(8).hex()
            nc = "00000001"
            response = _h(make, "%s:%s:%s:%s:auth:%s" % (ha1, nonce, nc, cnonce, ha2))
            text += ', qop=auth, nc=%s, cnonce="%s"' % (nc, cnonce)
        else:
            response = _h(make, "%s:%s:%s" % (ha1, nonce, ha2))
        text += ', response="%s"' % response
        if "opaque" in p:
            text += ', opaque="%s"' % p["opaque"]
        return text
    return None


class Registration:
    __slots__ = ("user", "password", "call_id", "cseq", "data", "sent_at", "interval", "sends",
                 "started")

    def __init__(self, user, password, call_id):
        self.user = user
        self.password = password
        self.call_id = call_id
        self.cseq = 1
        self.data = b""
        self.sent_at = 0.0
        self.interval = T1
        self.sends = 0
        self.started = 0.0


class Result:
    def __init__(self):
        self.done = 0
        self.failed = 0
        self.reasons = {}
        self.retrans = 0
        self.latencies = []  # ms, sorted at the end
        self.finished = []  # seconds from the start to each 200, in order
        self.elapsed = 0.0
        self.created = 0
        self.creating = 0.0  # seconds from the first REGISTER to the last new one
        self.cpu = 0.0

    def fail(self, reason):
        self.failed += 1
        self.reasons[reason] = self.reasons.get(reason, 0) + 1


def _parse(data):
    """(status, call_id, cseq, [WWW-Authenticate values]) of a response, or None."""
    try:
        text = data.decode()
    except UnicodeError:
        return None
    head = text.split("\r\n\r\n", 1)[0].split("\r\n")
    first = head[0].split(" ", 2)
    if len(first) < 2 or not first[0].startswith("SIP/2.0") or not first[1].isdigit():
        return None
    call_id = None
    cseq = 0
    challenges = []
    for line in head[1:]:
        name, _, value = line.partition(":")
        name = name.strip().lower()
        if name in ("call-id", "i"):
            call_id = value.strip()
        elif name == "cseq":
            number = value.split()[0] if value.split() else ""
            cseq = int(number) if number.isdigit() else 0
        elif name == "www-authenticate":
            challenges.append(value.strip())
    return int(first[1]), call_id, cseq, challenges


def run(server, local_ip, users, rate, limit_seconds):
    """Register every (user, password) in users at rate per second; returns a Result."""
    host, port = server
    registrar = "sip:%s:%d" % (host, port)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    result = Result()
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
        sock.bind((local_ip, 0))
        sock.setblocking(False)
        local_port = sock.getsockname()[1]
        tag = "%x" % os.getpid()
        serial = [0]

        def request(reg, auth=None):
            serial[0] += 1
            lines = [
                "REGISTER %s SIP/2.0" % registrar,
                "Via: SIP/2.0/UDP %s:%d;branch=z9hG4bK%s.%d;rport" % (local_ip, local_port, tag,
                                                                     serial[0]),
                "Max-Forwards: 70",
                "From: <sip:%s@%s>;tag=%s" % (reg.user, host, tag),
                "To: <sip:%s@%s>" % (reg.user, host),
                "Call-ID: %s" % reg.call_id,
                "CSeq: %d REGISTER" % reg.cseq,
                "Contact: <sip:%s@%s:%d>" % (reg.user, local_ip, local_port),
            ]
            if auth:
                lines.append("Authorization: " + auth)
            lines += ["Expires: 3600", "User-Agent: switchboard-bench digest_load",
                      "Content-Length: 0", "", ""]
            return "\r\n".join(lines).encode()

        def send(reg, now):
            try:
                sock.sendto(reg.data, server)
            except (BlockingIOError, InterruptedError):
                pass  # counts as lost: the retransmission timer sends it again
            reg.sent_at = now
            reg.sends += 1

        pending = {}
        n = len(users)
        cpu0 = time.process_time()
        t0 = time.perf_counter()
        deadline = t0 + limit_seconds
        next_scan = t0
        last_end = t0
        while (result.created < n or pending) and time.perf_counter() < deadline:
            now = time.perf_counter()
            due = min(n, int((now - t0) * rate) + 1)
            while result.created < due:
                user, password = users[result.created]
                reg = Registration(user, password, "%s-%d-%s@%s" % (tag, result.created, user,
                                                                    local_ip))
                reg.data = request(reg)
                reg.started = now
                send(reg, now)
                pending[reg.call_id] = reg
                result.created += 1
                result.creating = now - t0 + 1.0 / rate
            while True:
                try:
                    data = sock.recv(65535)
                except (BlockingIOError, InterruptedError):
                    break
                parsed = _parse(data)
                if parsed is None:
                    continue
                status, call_id, cseq, challenges = parsed
                reg = pending.get(call_id)
                if reg is None or cseq != reg.cseq or status < 200:
                    continue  # late, duplicate or provisional
                now = time.perf_counter()
                if status == 401 and reg.cseq == 1:
                    auth = authorization(challenges, reg.user, reg.password, registrar)
                    if auth is None:
                        del pending[call_id]
                        result.fail("no usable challenge")
                        continue
                    reg.cseq = 2
                    reg.data = request(reg, auth)
                    reg.sends = 0
                    reg.interval = T1
                    send(reg, now)
                elif 200 <= status < 300:
                    del pending[call_id]
                    result.done += 1
                    result.latencies.append(1000.0 * (now - reg.started))
                    result.finished.append(now - t0)
                    last_end = now
                else:
                    del pending[call_id]
                    result.fail("status %d" % status)
            now = time.perf_counter()
            if now >= next_scan:
                next_scan = now + 0.02
                for reg in list(pending.values()):
                    if now - reg.sent_at >= reg.interval:
                        if reg.sends >= MAX_SENDS:
                            del pending[reg.call_id]
                            result.fail("timeout")
                            continue
                        reg.interval = min(2 * reg.interval, T2)
                        result.retrans += 1
                        send(reg, now)
            if result.created < n:
                wait = t0 + result.created / rate - time.perf_counter()
            else:
                wait = 0.01
            select.select([sock], [], [], max(0.0, min(wait, 0.01)))
        for _ in pending:
            result.fail("unanswered at the time limit")
        result.elapsed = (time.perf_counter() if result.failed else last_end) - t0
        result.cpu = time.process_time() - cpu0
    finally:
        sock.close()
    result.latencies.sort()
    return result
