"""The dashboard's issue-16 API in host mode over real HTTP and UDP: extensions with states,
reachability, ladders, charts, history CSV, and the controls behind the password. The
answers are saved under tests/artifacts/api/ (docs/api.md quotes them)."""

import base64
import json
import os
import time
import urllib.error
import urllib.request

import pytest
from hostmode import ROOT, HostMode
from udpphone import UdpPhone, answer, call

OUT = os.path.join(ROOT, "tests", "artifacts", "api")


def fetch(h, path, method="GET", headers=None):
    req = urllib.request.Request("http://%s:%d%s" % (h.host, h.http_port, path),
                                 method=method, headers=headers or {})
    with urllib.request.urlopen(req, timeout=5) as r:
        return r.status, r.headers, r.read()


def api(h, path, method="GET", headers=None, save=None):
    status, _, body = fetch(h, path, method, headers)
    assert status == 200
    data = json.loads(body)
    if save:
        os.makedirs(OUT, exist_ok=True)
        with open(os.path.join(OUT, save), "w") as f:
            json.dump(data, f, indent=2)
    return data


def pump(phones, seconds):
    """Answer OPTIONS pings for a while (phones that are switched on)."""
    import select

    socks = dict((p.sock, p) for p in phones)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        ready, _, _ = select.select(list(socks), [], [], max(0.0, end - time.monotonic()))
        for s in ready:
            data = s.recv(65536)
            if data.startswith(b"OPTIONS "):
                socks[s].send(socks[s].answer(data, 200, "OK"))


def test_views_and_controls_end_to_end():
    settings = {"SIP_USERS": "1001,1002,1003", "RING_GROUPS": "sales=1001,1002",
                "ALIASES": "office=sales", "QUALIFY_INTERVAL": 2}
    with HostMode(settings) as h:
        alice, bob = UdpPhone("1001", "127.0.0.1", h), UdpPhone("1002", "127.0.0.1", h)
        try:
            for p in (alice, bob):
                p.send(p.register().replace(b"Expires:", b"User-Agent: Example Phone 1.0\r\n"
                                                         b"Expires:"))
                p.expect("SIP/2.0 200")
            pump((alice, bob), 2.6)  # the first ping comes one interval after registering
            invite = alice.invite("1002", "doc-busy")
            alice.send(invite)
            busy = bob.expect("INVITE")
            bob.send(bob.answer(busy, 486, "Busy Here"))
            alice.send(alice.ack(invite, alice.expect("SIP/2.0 486")))
            answer(alice, bob, call(alice, bob, "doc-call"))
            view = api(h, "/api/extensions", save="extensions.json")
            by_name = dict((e["name"], e) for e in view["extensions"])
            assert sorted(by_name) == ["1001", "1002", "1003"]
            assert by_name["1001"]["state"] == "in_call" and by_name["1001"]["with"] == "1002"
            assert by_name["1002"]["state"] == "in_call" and by_name["1002"]["with"] == "1001"
            assert by_name["1003"]["state"] == "offline" and by_name["1003"]["contacts"] == []
            contact = by_name["1001"]["contacts"][0]
            assert contact["user_agent"] == "Example Phone 1.0"
            assert contact["reachable"] is True and contact["rtt_ms"] >= 0
            assert view["groups"] == [{"name": "sales", "kind": "ring", "members": ["1001", "1002"],
                                       "state": "idle", "with": None, "forward": None}]
            assert view["aliases"] == [{"name": "office", "target": "sales"}]
            assert view["pbx"] is True and view["qualify"]["interval"] == 2
            assert "extensions" in api(h, "/api/state")  # what the page polls
            ladder = api(h, "/api/ladder?call_id=doc-busy", save="ladder.json")
            lines = [m["line"] for m in ladder["messages"]]
            assert lines[0].startswith("INVITE sip:1002@") and "486 Busy Here" in lines
            assert [p["name"] for p in ladder["peers"]] == ["1001", "1002"]
            charts = api(h, "/api/charts", save="charts.json")
            assert charts["slot_seconds"] == 10 and charts["messages"][-1] > 0
            assert charts["failed"][-1] == 1 and charts["answered"][-1] == 1
            # end the answered call from the API: BYE to both phones
            ended = api(h, "/api/calls/end?call_id=doc-call", "POST", save="end.json")
            assert ended == {"ended": "doc-call", "byes": 2}
            for p in (alice, bob):
                bye = p.expect("BYE")
                p.send(p.answer(bye, 200, "OK"))
            status, headers, body = fetch(h, "/api/history.csv")
            assert headers["Content-Type"].startswith("text/csv")
            with open(os.path.join(OUT, "history.csv"), "wb") as f:
                f.write(body)
            rows = body.decode().splitlines()
            assert rows[0].startswith("call_id,caller,callee,result,status")
            assert rows[1].startswith("doc-call,1001,1002,ended,200,ended from the dashboard,")
            assert rows[2].startswith("doc-busy,1001,1002,failed,486,")
            with pytest.raises(urllib.error.HTTPError) as e:
                api(h, "/api/calls/end?call_id=doc-call", "POST")
            assert e.value.code == 404
            removed = api(h, "/api/contacts/remove?user=1002&uri=" + bob.contact()[1:-1],
                          "POST", save="remove.json")
            assert removed["user"] == "1002"
            assert api(h, "/api/extensions")["extensions"][1]["state"] == "offline"
            with open(os.path.join(OUT, "state.json"), "w") as f:
                json.dump(api(h, "/api/state")["extensions"], f, indent=2)
        finally:
            alice.close()
            bob.close()


def test_controls_need_the_password_and_the_same_site():
    with HostMode({"SIP_USERS": "1001", "DASHBOARD_PASSWORD": "pw"}) as h:
        alice = UdpPhone("1001", "127.0.0.1", h)
        try:
            alice.send(alice.register())
            alice.expect("SIP/2.0 200")
            uri = alice.contact()[1:-1]
            for path, method in (("/api/contacts/remove?user=1001&uri=" + uri, "POST"),
                                 ("/api/calls/end?call_id=x", "POST"),
                                 ("/api/history.csv", "GET"), ("/api/extensions", "GET"),
                                 ("/api/ladder?call_id=x", "GET"), ("/api/charts", "GET")):
                with pytest.raises(urllib.error.HTTPError) as e:
                    fetch(h, path, method)
                assert e.value.code == 401, path
            good = {"Authorization": "Basic " + base64.b64encode(b"admin:pw").decode()}
            other = dict(good, Origin="http://evil.example")
            with pytest.raises(urllib.error.HTTPError) as e:
                fetch(h, "/api/contacts/remove?user=1001&uri=" + uri, "POST", other)
            assert e.value.code == 403
            assert api(h, "/api/extensions", headers=good)["extensions"][0]["state"] == "idle"
            api(h, "/api/contacts/remove?user=1001&uri=" + uri, "POST", good)
            assert api(h, "/api/extensions", headers=good)["extensions"][0]["state"] == "offline"
            assert h.wait_for("unregister 1001 contact=<%s> (dashboard)" % uri, timeout=5)
        finally:
            alice.close()
