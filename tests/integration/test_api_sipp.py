"""The JSON API follows a SIPp call live: registrations, ringing, answered, ended, history."""

import json
import time
import urllib.request

from hostmode import HostMode
from sipp_helpers import Phone


def api(host, path):
    url = "http://%s:%d%s" % (host.host, host.http_port, path)
    with urllib.request.urlopen(url, timeout=5) as r:
        return json.loads(r.read())


def wait_until(host, path, check, timeout=10.0):
    """Poll path until check(answer) is true; return that answer."""
    end = time.monotonic() + timeout
    seen = None
    while time.monotonic() < end:
        seen = api(host, path)
        if check(seen):
            return seen
        time.sleep(0.1)
    raise AssertionError("%s never matched; last answer: %r\n%s" % (path, seen, host.output()))


def test_api_follows_a_call(tmp_path):
    with HostMode({"SIP_USERS": "1001,1002"}) as host:
        alice = Phone(host.sip_addr, "1001", "127.0.0.51", str(tmp_path))
        bob = Phone(host.sip_addr, "1002", "127.0.0.52", str(tmp_path))
        try:
            assert alice.register().ok and bob.register().ok
            regs = api(host, "/api/registrations")
            assert [r["user"] for r in regs] == ["1001", "1002"]
            assert regs[1]["contacts"][0]["source"] == "127.0.0.52:%d" % bob.port
            assert api(host, "/api/status")["tables"]["bindings"]["use"] == 2

            callee = bob.answer("uas_answer_slow.xml")
            caller = alice.start_call("1002", pause_ms=1500)
            ringing = wait_until(host, "/api/calls",
                                 lambda calls: calls and calls[0]["state"] == "ringing")
            assert ringing[0]["caller"] == "1001" and ringing[0]["callee"] == "1002"
            assert ringing[0]["offer"]["codecs"]
            answered = wait_until(host, "/api/calls",
                                  lambda calls: calls and calls[0]["state"] == "answered")
            assert answered[0]["answer"]["address"] == "127.0.0.52"
            wait_until(host, "/api/calls", lambda calls: calls == [])
            history = api(host, "/api/history")
            assert history[0]["state"] == "ended" and history[0]["status"] == 200
            assert history[0]["call_id"] == ringing[0]["call_id"]
            assert 1 <= history[0]["duration"] <= 3
            assert caller.wait().ok and callee.wait().ok
            status = api(host, "/api/status")
            assert status["counters"]["requests"] >= 5
            assert status["tables"]["history"]["use"] == 1
        finally:
            alice.stop()
            bob.stop()
