"""Issue 11's classes over real UDP against host mode (`python code.py`): one datagram never
stops it, junk never reaches a registered phone, and the loop outlives a failing code path.
The in-memory versions are in tests/test_hostile_classes.py; the board path's in
tests/integration/test_board_sip.py."""

import json
import os
import socket
import sys
import time
import urllib.request

from hostmode import HostMode
from udpphone import UdpPhone

HERE = os.path.dirname(os.path.abspath(__file__))
FAULTS = os.path.join(os.path.dirname(HERE), "faults.py")


def crash_responses(server):
    """Responses nobody asked for, our Via on top and a poisoned one below (issue 11)."""
    seconds = [
        "SIP/2.0/UDP 127.0.0.66:5060;branch=z9hG4bKx;rport=99999",
        "SIP/2.0/UDP 127.0.0.66:5060;branch=z9hG4bKx;rport=70000",
        "SIP/2.0/UDP 127.0.0.66:5060;branch=z9hG4bKx;received=\u00e4\u00f6\u00fc",
        "SIP/2.0/UDP attacker.invalid:5060;branch=z9hG4bKx",
        "SIP/2.0/UDP [2001:db8::1]:5060;branch=z9hG4bKx",
    ]
    out = []
    for i, via in enumerate(seconds):
        out.append(("SIP/2.0 200 OK\r\n"
                    "Via: SIP/2.0/UDP %s:%d;branch=z9hG4bKforged.%d\r\n"
                    "Via: %s\r\n"
                    "From: <sip:1001@%s>;tag=a\r\nTo: <sip:1002@%s>;tag=b\r\n"
                    "Call-ID: forged-%d\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
                    % (server[0], server[1], i, via, server[0], server[0], i)).encode())
    return out


def invalid_invites(alice):
    """INVITEs to a registered phone that must get 400/420/502, never reach it."""
    base = alice.invite("1002", "junk")
    swaps = [
        (b"Max-Forwards: 70", b"Max-Forwards: 70\r\nMax-Forwards: 69"),
        (b"CSeq: 1 INVITE", b"CSeq: 1 INVITE\r\nCSeq: 2 INVITE"),
        (b"Contact:", b"l: 0\r\nContact:"),
        (b";rport\r\n", b";rport;;,;,,\r\n"),
        (b"From: <sip:1001", b"From: Bell, Alexander <sip:1001"),
        (b"Contact:", b"Proxy-Require: foo\r\nContact:"),
        (b";rport\r\n", b";rport=99999\r\n"),
        (b"Max-Forwards: 70", b"Route: <sip:[2001:db8::5];lr>\r\nMax-Forwards: 70"),
    ]
    out = []
    for i, (old, new) in enumerate(swaps):
        assert old in base, old
        data = base.replace(old, new, 1).replace(b"Call-ID: junk", b"Call-ID: junk-%d" % i)
        out.append(data.replace(b"branch=z9hG4bK", b"branch=z9hG4bKjunk%d" % i))  # new txns
    return out


def test_one_datagram_never_stops_host_mode_and_junk_never_reaches_a_phone():
    with HostMode({"SIP_USERS": "1001,1002", "RATE_LIMIT": 0}) as host:
        alice = UdpPhone("1001", "127.0.0.61", host)
        bob = UdpPhone("1002", "127.0.0.62", host)
        try:
            for phone in (alice, bob):
                phone.send(phone.register())
                phone.expect("SIP/2.0 200")
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.bind(("127.0.0.66", 0))
                for data in crash_responses(host.sip_addr):
                    s.sendto(data, host.sip_addr)
            answers = []
            for i, data in enumerate(invalid_invites(alice)):
                alice.send(data)
                final = None
                while final is None:  # skip 100 Trying and retransmitted earlier answers
                    got = alice.expect("SIP/2.0")
                    code = int(got.split(b" ")[1])
                    if code >= 200 and b"Call-ID: junk-%d\r\n" % i in got:
                        final = code
                answers.append(final)
            assert answers == [400, 400, 400, 400, 400, 420, 400, 502], answers
            bob.sock.settimeout(0.3)
            try:
                leaked = bob.sock.recv(65536)
            except socket.timeout:
                leaked = None
            assert leaked is None, leaked  # nothing of the junk reached the phone
            assert host.proc.poll() is None, host.output()
            # still a working PBX: a call goes through
            alice.send(alice.invite("1002", "after-junk"))
            assert bob.expect("INVITE").startswith(b"INVITE sip:1002@")
            status = json.load(urllib.request.urlopen(
                "http://%s:%d/api/status" % (host.host, host.http_port), timeout=5))
            assert status["counters"]["internal_errors"] == 0, status["counters"]
        finally:
            alice.close()
            bob.close()


def test_host_mode_loop_survives_exceptions_from_a_datagram_and_from_timers(tmp_path):
    """A bug stand-in (tests/faults.py) makes the engine raise on marked datagrams and on
    every timer run: the loop counts each, prints one line per 10 s, and keeps serving."""
    fault_file = tmp_path / "timers-fail"
    settings = {"SIP_USERS": "1001", "RATE_LIMIT": 0, "INJECT_FAULTS": "1",
                "FAULT_FILE": str(fault_file)}
    with HostMode(settings, script=FAULTS) as host:
        alice = UdpPhone("1001", "127.0.0.63", host)
        try:
            for i in range(5):
                alice.send(alice.register(cseq=i + 1).replace(b"Expires:",
                                                              b"X-Inject-Fault: 1\r\nExpires:"))
            alice.send(alice.register(cseq=10))
            alice.expect("SIP/2.0 200")
            fault_file.write_text("on")
            time.sleep(0.3)  # some hundred loop turns with failing timers
            alice.send(alice.register(cseq=11))
            alice.expect("SIP/2.0 200")
            fault_file.unlink()
            alice.send(alice.register(cseq=12))
            alice.expect("SIP/2.0 200")
            host.read_available(0.2)
            assert host.proc.poll() is None, host.output()
            lines = [line for line in host.lines if "loop:" in line]
            assert len([x for x in lines if "datagram failed" in x]) == 1, lines
            assert len([x for x in lines if "timers failed" in x]) == 1, lines
            assert "injected fault in receive" in lines[0], lines
            status = json.load(urllib.request.urlopen(
                "http://%s:%d/api/status" % (host.host, host.http_port), timeout=5))
            assert status["counters"]["internal_errors"] >= 6, status["counters"]
        finally:
            alice.close()


def test_board_path_survives_the_crash_class_and_a_failing_code_path(tmp_path):
    """The same on the board path: board_main() on the W5500 model with the unmodified
    adafruit_wiznet5k, the poisoned responses, then injected faults in receive and timers."""
    sys.path.insert(0, os.path.join(os.path.dirname(HERE), "w5500"))
    from harness import Board

    fault_file = tmp_path / "timers-fail"
    settings = {"SIP_USERS": "1001,1002", "RATE_LIMIT": 0, "INJECT_FAULTS": "1",
                "FAULT_FILE": str(fault_file)}
    with Board(settings) as board:
        alice = UdpPhone("1001", "127.0.0.64", board)
        try:
            alice.send(alice.register())
            alice.expect("SIP/2.0 200")
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.bind(("127.0.0.66", 0))
                for data in crash_responses(board.sip_addr):
                    s.sendto(data, board.sip_addr)
                    time.sleep(0.05)  # one at a time: the chip's 2 KB would drop a burst
            alice.send(alice.register(cseq=2))
            alice.expect("SIP/2.0 200")
            assert board.api("/api/status")["counters"]["internal_errors"] == 0
            assert board.api("/api/status")["counters"]["dropped"] >= 5
            alice.send(alice.register(cseq=3).replace(b"Expires:", b"X-Inject-Fault: 1\r\n"
                                                                   b"Expires:"))
            fault_file.write_text("on")
            time.sleep(0.3)
            alice.send(alice.register(cseq=4))
            alice.expect("SIP/2.0 200")
            fault_file.unlink()
            board.read_available(0.2)
            assert board.proc.poll() is None, board.output()
            lines = [line for line in board.lines if "loop:" in line]
            assert len([x for x in lines if "datagram failed" in x]) == 1, lines
            assert len([x for x in lines if "timers failed" in x]) == 1, lines
            assert board.api("/api/status")["counters"]["internal_errors"] >= 2
        finally:
            alice.close()
