"""A flood from one address does not stop other phones (issue: flood limits before parsing)."""

import json
import socket
import threading
import time
import urllib.request

from hostmode import HostMode
from sipp_helpers import Phone

FLOOD_RATE = 10000  # datagrams a second
FLOOD_SECONDS = 4


def flood(target, stop, sent):
    """From 127.0.0.2: OPTIONS at FLOOD_RATE for at most FLOOD_SECONDS (bounded)."""
    data = (b"OPTIONS sip:%s:%d SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.2:5999;branch=z9hG4bKf\r\n"
            b"From: <sip:x@127.0.0.2>;tag=1\r\nTo: <sip:x@127.0.0.1>\r\nCall-ID: f\r\n"
            b"CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n" % (target[0].encode(), target[1]))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.2", 0))
        start = time.monotonic()
        while not stop.is_set() and sent[0] < FLOOD_RATE * FLOOD_SECONDS:
            due = start + sent[0] / FLOOD_RATE
            if due > time.monotonic():
                time.sleep(due - time.monotonic())
            for _ in range(50):
                s.sendto(data, target)
                sent[0] += 1


def test_flood_from_one_source_while_others_call(tmp_path):
    with HostMode({"SIP_USERS": "1001,1002", "RATE_LIMIT": 50, "RATE_BURST": 100}) as host:
        alice = Phone(host.sip_addr, "1001", "127.0.0.3", str(tmp_path))
        bob = Phone(host.sip_addr, "1002", "127.0.0.4", str(tmp_path))
        stop = threading.Event()
        sent = [0]
        flooder = threading.Thread(target=flood, args=(host.sip_addr, stop, sent), daemon=True)
        try:
            flooder.start()
            time.sleep(0.5)
            assert alice.register().ok and bob.register().ok
            for _ in range(3):
                callee = bob.answer()
                result = alice.call("1002")
                assert result.ok, result.report()
                assert callee.wait().ok
        finally:
            stop.set()
            flooder.join(timeout=FLOOD_SECONDS + 5)
            alice.stop()
            bob.stop()
        assert sent[0] >= FLOOD_RATE  # the flood really ran
        url = "http://127.0.0.1:%d/api/status" % host.http_port
        with urllib.request.urlopen(url, timeout=5) as r:
            status = json.loads(r.read())
        assert status["counters"]["rate_limited"] > sent[0] // 2
        assert [b["address"] for b in status["blocked_sources"]] == ["127.0.0.2"]
        assert status["tables"]["bindings"]["use"] == 2
        assert host.output().count("answered") == 3
