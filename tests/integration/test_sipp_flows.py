"""Switchboard in host mode driven by SIPp phones on loopback (RFC 3261 registrar and proxy).

Each test starts its own `python3 code.py` and phones on their own 127.0.0.x addresses; every
process is stopped by PID when the test ends. test_sipp_scenarios checks the same scenarios
sipp against sipp, so a failure here that does not show there is the server's.
"""

import socket

import pytest
from hostmode import HostMode, free_port
from sipp_helpers import Phone, expect_scenario, first_line, header_values

USERS = "1001,1002,1003"
ADDRESSES = {"1001": "127.0.0.41", "1002": "127.0.0.42", "1003": "127.0.0.43"}


@pytest.fixture
def server():
    sw = HostMode({"SIP_USERS": USERS, "TIMER_C": 2, "LOG_LEVEL": "info"})
    try:
        yield sw
    finally:
        sw.stop()


@pytest.fixture
def phones(server, tmp_path):
    made = []

    def phone(user, ip=None, port=None):
        p = Phone(
            server.sip_addr, user, ip or ADDRESSES.get(user, "127.0.0.49"), str(tmp_path), port=port
        )
        made.append(p)
        return p

    try:
        yield phone
    finally:
        for p in made:
            p.stop()


def count(server, text):
    """How many output lines so far contain text."""
    server.read_available(0)
    return sum(1 for line in server.lines if text in line)


def evidence(server, *results):
    return "\n".join(r.report() for r in results) + "\n=== switchboard output:\n" + server.output()


def registered(server, phone, expires=3600):
    """Register phone and check the 200 and the server's register line."""
    result = phone.register(expires)
    assert result.ok, evidence(server, result)
    ok = result.received()[-1]
    contacts = header_values(ok, "Contact", "m")
    assert any("sip:%s@%s" % (phone.user, phone.contact) in c for c in contacts), ok
    server.wait_for(
        "register %s contact=<sip:%s@%s>" % (phone.user, phone.user, phone.contact), timeout=3
    )
    return result


def call(server, caller, callee, uas, uac, pause_ms=200):
    """caller calls callee.user: callee answers with uas, caller runs uac; both must pass."""
    answering = callee.answer(uas)
    made = None
    try:
        made = caller.call(callee.user, uac, pause_ms=pause_ms)
    finally:
        # A failed caller leaves the callee waiting: give it a moment, then stop it.
        answered = answering.wait(None if made is not None and made.ok else 1.0)
    assert made.ok and answered.ok, evidence(server, made, answered)
    return made, answered


def test_two_users_register(server, phones):
    a, b = phones("1001"), phones("1002")
    registered(server, a)
    registered(server, b)
    assert count(server, "register 1001 ") == 1 and count(server, "register 1002 ") == 1
    line = server.wait_for("register 1002 ")
    assert "source=%s:%d" % (b.ip, b.port) in line and "expires=3600" in line


def test_unknown_user_may_not_register(server, phones):
    stranger = phones("1999")
    result = stranger.register()
    assert not result.ok
    assert [first_line(m) for m in result.received()] == ["SIP/2.0 404 Not Found"], evidence(
        server, result
    )


def test_answered_call_ends_with_bye(server, phones):
    a, b = phones("1001"), phones("1002")
    registered(server, a)
    registered(server, b)
    made, answered = call(server, a, b, "uas_answer.xml", "uac_call.xml")
    server.wait_for("1001 -> 1002 answered", timeout=3)
    server.wait_for("1001 -> 1002 ended", timeout=3)
    assert made.first_lines()[:2] == [
        "-> INVITE sip:1002@%s:%d SIP/2.0" % server.sip_addr,
        "<- SIP/2.0 100 Trying",
    ], evidence(server, made)
    ok = [m for m in made.received() if first_line(m) == "SIP/2.0 200 OK"][0]
    assert header_values(ok, "Record-Route") == ["<sip:%s:%d;lr>" % server.sip_addr], ok
    # In-dialog requests went through the proxy: it record-routed, and ACK and BYE reached the
    # callee with the proxy's Via on top.
    invite, ack, bye = answered.received()
    rr = header_values(invite, "Record-Route")
    assert rr and "%s:%d" % server.sip_addr in rr[0], invite
    for request in (ack, bye):
        top = header_values(request, "Via", "v")[0]
        assert "%s:%d" % server.sip_addr in top, request


def test_cancel_while_ringing(server, phones):
    a, b = phones("1001"), phones("1002")
    registered(server, a)
    registered(server, b)
    made, answered = call(server, a, b, "uas_ring.xml", "uac_cancel.xml", pause_ms=300)
    assert "SIP/2.0 487 Request Terminated" in [first_line(m) for m in made.received()]
    server.wait_for("1001 -> 1002 cancelled", timeout=3)


def test_busy_callee(server, phones, tmp_path):
    a, b = phones("1001"), phones("1002")
    registered(server, a)
    registered(server, b)
    call(server, a, b, "uas_busy.xml", expect_scenario(486, str(tmp_path)))
    server.wait_for("1001 -> 1002 failed 486", timeout=3)


def test_ringing_past_timer_c_gives_408(server, phones, tmp_path):
    # TIMER_C is 2 s: the proxy cancels the ringing branch and answers the caller 408.
    a, b = phones("1001"), phones("1002")
    registered(server, a)
    registered(server, b)
    call(server, a, b, "uas_ring.xml", expect_scenario(408, str(tmp_path)))
    server.wait_for("1001 -> 1002 failed 408", timeout=3)


def test_unregistered_known_callee_gets_480(server, phones, tmp_path):
    a = phones("1001")
    registered(server, a)
    result = a.call("1003", expect_scenario(480, str(tmp_path)))
    assert result.ok, evidence(server, result)


def test_unknown_callee_gets_404(server, phones, tmp_path):
    a = phones("1001")
    registered(server, a)
    result = a.call("1999", expect_scenario(404, str(tmp_path)))
    assert result.ok, evidence(server, result)


def listening(ip, port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((ip, port))
    s.setblocking(False)
    return s


def drained(sock):
    got = []
    while True:
        try:
            got.append(sock.recv(65536))
        except BlockingIOError:
            return got


@pytest.mark.parametrize("how", ["same_contact", "new_contact"])
def test_register_from_new_port_moves_binding(server, phones, how):
    """same_contact: the phone's address changed under it (same Call-ID and Contact URI,
    higher CSeq, new source port). new_contact: the phone restarted on a new port (new Call-ID
    and Contact URI) from the same IP address. Either way calls go to the new port only."""
    a, b = phones("1001"), phones("1002")
    registered(server, a)
    registered(server, b)
    old_port = b.port
    if how == "same_contact":
        result = b.register(port=free_port(host=b.ip))
        assert result.ok, evidence(server, result)
        server.wait_for(
            "register 1002 contact=<sip:1002@%s> source=%s:%d" % (b.contact, b.ip, b.port),
            timeout=3,
        )
    else:
        b = phones("1002")
        registered(server, b)
    assert b.port != old_port
    old = listening(b.ip, old_port)
    try:
        call(server, a, b, "uas_answer.xml", "uac_call.xml", pause_ms=100)
        stray = drained(old)
    finally:
        old.close()
    assert stray == [], "the old port got %r\n%s" % (stray, server.output())


def test_unregister_then_call_gets_480(server, phones, tmp_path):
    a, b = phones("1001"), phones("1002")
    registered(server, a)
    registered(server, b)
    result = b.unregister()
    assert result.ok, evidence(server, result)
    contacts = header_values(result.received()[-1], "Contact", "m")
    assert not any(b.contact in c for c in contacts), evidence(server, result)
    server.wait_for("unregister 1002 contact=<sip:1002@%s>" % b.contact, timeout=3)
    result = a.call("1002", expect_scenario(480, str(tmp_path)))
    assert result.ok, evidence(server, result)


def test_options_to_the_server(server, phones):
    result = phones("1001").options()
    assert result.ok, evidence(server, result)
    ok = result.received()[-1]
    assert first_line(ok) == "SIP/2.0 200 OK"
    assert header_values(ok, "Allow"), ok
