"""Ending a call from the dashboard (endcall.py): a BYE to each phone inside the dialog, in
client transactions of their own; the record keeps tags, contacts, Route sets and CSeqs."""

from flows import Phone, first_line, new_engine, status

from switchboard.endcall import end
from switchboard.message import parse


def answered_call(extra_rr=None):
    engine = new_engine()
    from switchboard import endcall

    engine.calls.legs = endcall  # as the dashboard sets it (views.add_routes)
    alice, bob = Phone("1001", "10.0.0.11"), Phone("1002", "10.0.0.12", 5070)
    now = 1000
    for p in (alice, bob):
        engine.receive(p.register(), p.addr, now)
    invite = alice.invite("1002", "stuck-1")
    if extra_rr:  # as if an upstream proxy had record-routed the INVITE
        invite = invite.replace(b"Max-Forwards",
                                b"Record-Route: " + extra_rr.encode() + b"\r\nMax-Forwards")
    out = engine.receive(invite, alice.addr, now + 10)
    fwd = [d for d, a in out if a == bob.addr][0]
    out = engine.receive(bob.answer(fwd, 200, "OK", sdp=True), bob.addr, now + 20)
    ok = [d for d, a in out if status(d) == 200][0]
    engine.receive(alice.in_dialog("ACK", ok, 1), alice.addr, now + 30)
    # a re-INVITE from alice raises her CSeq to 5
    engine.receive(alice.in_dialog("INVITE", ok, 5), alice.addr, now + 40)
    return engine, alice, bob, now + 50


def test_end_call_sends_bye_to_both_phones_inside_the_dialog():
    engine, alice, bob, now = answered_call()
    problem, out = end(engine, "stuck-1", now)
    assert problem is None and len(out) == 2
    byes = dict((a, parse(d)) for d, a in out)
    to_alice, to_bob = byes[alice.addr], byes[bob.addr]
    assert to_bob.uri == "sip:1002@10.0.0.12:5070"
    assert to_bob.get("from") == "<sip:1001@10.0.0.1>;tag=t1001"
    assert to_bob.get("to") == "<sip:1002@10.0.0.1>;tag=callee"
    assert to_bob.cseq() == (6, "BYE")  # above alice's re-INVITE
    assert to_alice.uri == "sip:1001@10.0.0.11:5060"
    assert to_alice.get("from") == "<sip:1002@10.0.0.1>;tag=callee"
    assert to_alice.get("to") == "<sip:1001@10.0.0.1>;tag=t1001"
    assert to_alice.cseq() == (1, "BYE")
    for m in (to_alice, to_bob):
        assert m.get("call-id") == "stuck-1" and m.values("route") == []
        assert m.top_via().host == "10.0.0.1" and "dashboard" in m.get("reason")
    assert engine.calls.active == {}
    assert engine.call_history(now)[0]["reason"] == "ended from the dashboard"
    # their 200s are absorbed by the BYE transactions (nothing relayed, nothing dropped)
    dropped = engine.counters["dropped"]
    for phone, bye in ((alice, out[0][0] if out[0][1] == alice.addr else out[1][0]),
                       (bob, out[0][0] if out[0][1] == bob.addr else out[1][0])):
        assert engine.receive(phone.answer(bye, 200, "OK"), phone.addr, now + 5) == []
    assert engine.counters["dropped"] == dropped


def test_bye_unanswered_is_retransmitted():
    engine, alice, bob, now = answered_call()
    _, out = end(engine, "stuck-1", now)
    again = engine.tick(now + 600)
    byes = sorted(first_line(d) for d, _ in again if d.startswith(b"BYE"))
    assert byes == sorted(first_line(d) for d, _ in out)


def test_route_set_towards_the_caller_is_kept():
    engine, alice, bob, now = answered_call("<sip:10.0.0.50;lr>")
    _, out = end(engine, "stuck-1", now)
    by_dest = dict((a, parse(d)) for d, a in out)
    assert by_dest[("10.0.0.50", 5060)].values("route") == ["<sip:10.0.0.50;lr>"]
    assert by_dest[("10.0.0.50", 5060)].uri == "sip:1001@10.0.0.11:5060"
    assert by_dest[bob.addr].values("route") == []


def test_refusals():
    engine, alice, bob, now = answered_call()
    assert end(engine, "nope", now) == ("no such call", [])
    out = engine.receive(alice.invite("1002", "ringing-1"), alice.addr, now)
    assert [d for d, a in out if a == bob.addr]
    assert end(engine, "ringing-1", now + 10) == ("the call is not answered yet", [])
    assert "ringing-1" in engine.calls.active


def test_without_the_dashboard_no_call_keeps_its_legs():
    engine = new_engine()
    alice, bob = Phone("1001", "10.0.0.11"), Phone("1002", "10.0.0.12", 5070)
    for p in (alice, bob):
        engine.receive(p.register(), p.addr, 1000)
    out = engine.receive(alice.invite("1002", "plain"), alice.addr, 1010)
    fwd = [d for d, a in out if a == bob.addr][0]
    engine.receive(bob.answer(fwd, 200, "OK", sdp=True), bob.addr, 1020)
    call = engine.calls.active["plain"]
    assert call.answered is not None and call.leg_a is None and call.leg_b is None
    assert end(engine, "plain", 1030)[0].startswith("what a BYE needs was not kept")
