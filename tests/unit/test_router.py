"""Routing policy (router.py): Route set, location lookup, Request-URI; Decision and Target.
Runs under CPython and on the MicroPython VM."""

from flows import PROXY, new_config

from switchboard.location import Binding, Location
from switchboard.message import parse
from switchboard.router import Decision, Here, Router, Target, answer, is_ip


def request(uri, *headers):
    lines = ["INVITE %s SIP/2.0" % uri,
             "Via: SIP/2.0/UDP 10.0.0.11:5060;branch=z9hG4bKr",
             "From: <sip:1001@10.0.0.1>;tag=a", "To: <sip:1002@10.0.0.1>",
             "Call-ID: r1", "CSeq: 1 INVITE"]
    lines.extend(headers)
    return parse(("\r\n".join(lines) + "\r\n\r\n").encode())


def router(users="1001,1002,1003"):
    config = new_config({"SIP_USERS": users})
    location = Location(16, 4)
    return Router(config, Here(config), location), location


def bind(location, user, uri, source, q=1000, expires_at=10000):
    location.add(user, Binding(uri, source, expires_at, "c", 1, 0, "", "", q))


def test_decision_defaults_and_answer():
    d = Decision()
    assert (d.status, d.reason, d.targets, d.timeout, d.plan, d.callee) == (0, "", (), 0, None,
                                                                            "")
    d = answer(486, "Busy Here", [("Retry-After", "5")])
    assert d.status == 486 and d.reason == "Busy Here" and d.headers == [("Retry-After", "5")]
    t = Target("sip:x@10.0.0.5", ("10.0.0.5", 5060), [("Call-Info", "<sip:x>;answer-after=0")])
    assert t.uri == "sip:x@10.0.0.5" and t.dest == ("10.0.0.5", 5060) and t.headers


def test_local_user_forks_to_every_binding_best_q_first():
    r, loc = router()
    bind(loc, "1002", "sip:1002@10.0.0.12", ("10.0.0.12", 5060), q=500)
    bind(loc, "1002", "sip:1002@10.0.0.22", ("10.0.0.22", 5062), q=900)
    bind(loc, "1002", "sip:1002@10.0.0.32", ("10.0.0.32", 5060), q=500)
    d = r.route(request("sip:1002@%s" % PROXY[0]), 100, "1001")
    assert d.status == 0 and d.timeout == 0
    assert [(t.uri, t.dest) for t in d.targets] == [
        ("sip:1002@10.0.0.22", ("10.0.0.22", 5062)),
        ("sip:1002@10.0.0.12", ("10.0.0.12", 5060)),  # equal q: registration order
        ("sip:1002@10.0.0.32", ("10.0.0.32", 5060))]
    assert r.next(d.plan, 486, 200) is None  # the base router has one stage


def test_known_user_without_binding_480_stranger_404():
    r, _ = router()
    assert r.route(request("sip:1003@%s" % PROXY[0]), 0, "1001").status == 480
    d = r.route(request("sip:9999@%s" % PROXY[0]), 0, "1001")
    assert (d.status, d.reason, d.targets) == (404, "Not Found", ())


def test_foreign_request_uri_goes_to_its_address_and_names_are_not_resolved():
    r, _ = router()
    d = r.route(request("sip:bob@192.0.2.7:5070"), 0, "")
    assert [(t.uri, t.dest) for t in d.targets] == [("sip:bob@192.0.2.7:5070",
                                                     ("192.0.2.7", 5070))]
    # a host name is "ours" (we serve any domain name) and bob is nobody: 404, no DNS
    assert r.route(request("sip:bob@example.com"), 0, "").status == 404


def test_loose_route_our_entry_removed_next_hop_used():
    r, _ = router()
    req = request("sip:1002@10.0.0.12:5060", "Route: <sip:%s:%d;lr>, <sip:192.0.2.9;lr>"
                  % PROXY)
    d = r.route(req, 0, "1001")
    assert [(t.uri, t.dest) for t in d.targets] == [("sip:1002@10.0.0.12:5060",
                                                     ("192.0.2.9", 5060))]
    assert req.values("route") == ["<sip:192.0.2.9;lr>"]


def test_strict_router_request_uri_restored_from_last_route():
    r, _ = router()
    req = request("sip:%s:%d" % PROXY, "Route: <sip:10.0.0.12:5060>")
    d = r.route(req, 0, "1001")
    assert req.uri == "sip:10.0.0.12:5060" and req.values("route") == []
    assert [(t.uri, t.dest) for t in d.targets] == [("sip:10.0.0.12:5060",
                                                     ("10.0.0.12", 5060))]


def test_malformed_route_is_400():
    r, _ = router()
    d = r.route(request("sip:1002@%s" % PROXY[0], "Route: <sip:>"), 0, "1001")
    assert d.status == 400 and d.reason == "Malformed Route"


def test_registered_contact_reached_at_its_source():
    r, loc = router()
    bind(loc, "1002", "sip:1002@192.168.1.5:5060", ("203.0.113.8", 40000))
    d = r.route(request("sip:1002@192.168.1.5:5060"), 0, "1001")
    assert d.targets[0].dest == ("203.0.113.8", 40000)


def test_here_is_local_and_moves_with_dhcp():
    config = new_config()
    here = Here(config)
    req = request("sip:1002@%s" % PROXY[0])
    r = Router(config, here, Location(4, 4))
    assert r.route(req, 0, "").status == 480
    here.set("10.0.0.99", 5060)
    assert here.sent_by == "10.0.0.99:5060" and here.record_route == "<sip:10.0.0.99:5060;lr>"
    d = r.route(request("sip:1002@%s" % PROXY[0]), 0, "")
    assert d.targets[0].dest == (PROXY[0], 5060)  # no longer ours: an address elsewhere


def test_is_ip():
    assert is_ip("10.0.0.1") and is_ip("[::1]")
    assert not is_ip("example.com") and not is_ip("10.0.0") and not is_ip("1.2.3.x")
