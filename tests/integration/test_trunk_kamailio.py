"""The trunk (issue 15) against a real Kamailio as the ITSP (tests/kamailio/itsp.cfg).

Kamailio: a registrar with digest in realm "itsp.test" that challenges every initial INVITE,
and the BYE and re-INVITE of trunk accounts. Outside phones are SIPp registered there with
digest; phones at Switchboard are raw-SIP phones that keep everything they got.
"""

import time

import pytest
from hostmode import HostMode
from kamailio.harness import Outside, Phone, api_status, wait_trunk
from kamailio.server import Kamailio
from sipp_helpers import first_line, header_values

TRUNK_PW = "trunk-secret-A"
OUT_PW = "outside-pw"
OUT_NUMBER = "5550100"


@pytest.fixture
def itsp(tmp_path):
    k = Kamailio(str(tmp_path), {"siteA": TRUNK_PW, "siteB": "trunk-secret-B",
                                 OUT_NUMBER: OUT_PW}, trunks=("siteA", "siteB"))
    yield k
    k.stop()


def switchboard(itsp, **settings):
    base = {"SIP_USERS": "1001,1002,600", "TRUNK": "sip:siteA@%s:%d" % itsp.addr,
            "TRUNK_PASSWORD": TRUNK_PW, "TRUNK_INBOUND": "600"}
    base.update(settings)
    return HostMode(base)


@pytest.fixture
def site(itsp):
    sb = switchboard(itsp)
    yield sb
    sb.stop()


@pytest.fixture
def outside(itsp, tmp_path):
    o = Outside(itsp, OUT_NUMBER, OUT_PW, "127.0.0.21", str(tmp_path))
    yield o
    o.stop()


def messages(result, start):
    return [m for m in result.received() if first_line(m).startswith(start)]


def cseq_numbers(result, method):
    return [int(header_values(m, "CSeq")[0].split()[0]) for m in messages(result, method)]


def calling_out(site, outside, *answer, **options):
    """The trunk registered, the outside's callee answering with the scenario answer, and
    alice (1001) registered here: (callee, alice)."""
    wait_trunk(site, "registered")
    outside.register()
    callee = outside.answer(*answer, **options)
    alice = Phone("1001", "127.0.0.11", site)
    try:
        alice.register_here()
    except BaseException:
        alice.close()
        raise
    return callee, alice


def test_outgoing_call_answered_caller_hangs_up(itsp, site, outside):
    callee, alice = calling_out(site, outside, "uas_answer.xml")
    try:
        alice.send(alice.invite("05550100", "trunk-out-1"))
        alice.expect("SIP/2.0 180")
        ok = alice.expect("SIP/2.0 200")
        alice.send(alice.in_dialog("ACK", ok, 1))
        time.sleep(0.3)
        alice.send(alice.in_dialog("BYE", ok, 2))
        alice.expect("SIP/2.0 200")
        result = callee.wait()
    finally:
        alice.close()
    assert result.ok, result.report()
    # the phone never saw the upstream's challenges
    assert not [f for f in alice.firsts() if f.startswith(("SIP/2.0 401", "SIP/2.0 407"))]
    invite = messages(result, "INVITE")[0]
    # upstream sees the trunk account as the caller, the dialled number without the 0
    assert "sip:siteA@" in header_values(invite, "From", "f")[0]
    assert "sip:siteA@" in header_values(invite, "P-Asserted-Identity")[0]
    assert first_line(invite).startswith("INVITE sip:5550100@") or \
        "5550100" in header_values(invite, "To", "t")[0]
    # challenged INVITE (1) and BYE (3) answered with credentials: the outside saw 2 and 4
    assert cseq_numbers(result, "INVITE") == [2]
    assert cseq_numbers(result, "BYE") == [4]
    site.read_available(0.3)
    everything = "\n".join(m for _, m in result.messages) + "\n".join(site.lines)
    assert TRUNK_PW not in everything
    assert TRUNK_PW not in str(api_status(site))
    assert "algorithm=MD5" in itsp.log()  # what this ITSP offers by default


def test_outgoing_call_outside_hangs_up(itsp, site, outside):
    callee, alice = calling_out(site, outside, "uas_answer_hangup.xml", pause_ms=300)
    try:
        alice.send(alice.invite("05550100", "trunk-out-2"))
        ok = alice.expect("SIP/2.0 200")
        alice.send(alice.in_dialog("ACK", ok, 1))
        bye = alice.expect("BYE")
        alice.send(alice.answer(bye, 200, "OK"))
        result = callee.wait()
    finally:
        alice.close()
    assert result.ok, result.report()
    # the BYE reached the phone inside its own dialog: its Call-ID and its own tag as To
    assert b"Call-ID: trunk-out-2" in bye
    assert b"tag=t1001" in bye.split(b"\r\nTo:")[1].split(b"\r\n")[0]
    site.wait_for("call trunk-out-2 1001 -> 05550100 ended", timeout=3)


def test_outgoing_call_cancelled_before_answer(itsp, site, outside):
    callee, alice = calling_out(site, outside, "uas_ring.xml")
    try:
        invite = alice.invite("05550100", "trunk-out-3")
        alice.send(invite)
        alice.expect("SIP/2.0 180")
        alice.send(alice.cancel(invite))
        alice.expect("SIP/2.0 200")
        final = alice.expect("SIP/2.0 487")
        alice.send(alice.ack(invite, final))
        result = callee.wait()
    finally:
        alice.close()
    assert result.ok, result.report()
    assert messages(result, "CANCEL"), result.report()


def test_outgoing_call_busy(itsp, site, outside):
    callee, alice = calling_out(site, outside, "uas_busy.xml")
    try:
        invite = alice.invite("05550100", "trunk-out-4")
        alice.send(invite)
        final = alice.expect("SIP/2.0 486")
        alice.send(alice.ack(invite, final))
        result = callee.wait()
    finally:
        alice.close()
    assert result.ok, result.report()


def answer_incoming(phone):
    """The phone rings, answers, takes the ACK and then the caller's BYE."""
    invite = phone.expect("INVITE")
    phone.send(phone.answer(invite, 180, "Ringing"))
    phone.send(phone.answer(invite, 200, "OK", sdp=True))
    phone.expect("ACK")
    bye = phone.expect("BYE", timeout=10)
    phone.send(phone.answer(bye, 200, "OK"))
    return invite


@pytest.mark.parametrize("dialled,who", [("+4930123456", "1002"), ("+4930999999", "600")])
def test_incoming_call_to_did_rings_its_extension(itsp, outside, dialled, who):
    """A DID listed in TRUNK_DIDS reaches its extension, any other the TRUNK_INBOUND one
    (an extension: ring groups come with the PBX branch)."""
    site = switchboard(itsp, TRUNK_DIDS="+4930123456=1002")
    phone = Phone(who, "127.0.0.12", site)
    try:
        wait_trunk(site, "registered")
        phone.register_here()
        outside.register()
        caller = outside.call(dialled, pause_ms=300)
        invite = answer_incoming(phone)
        result = caller.wait()
    finally:
        phone.close()
        site.stop()
    assert result.ok, result.report()
    assert first_line(invite.decode()).startswith("INVITE sip:%s@" % who)
    assert b"5550100" in invite.split(b"\r\nFrom:")[1].split(b"\r\n")[0]


def api_state(site):
    import json
    import urllib.request

    with urllib.request.urlopen("http://%s:%d/api/state" % (site.host, site.http_port),
                                timeout=3) as r:
        return json.loads(r.read())


def call_out_refused(site, ip="127.0.0.11"):
    """1001 dials out: the final answer comes at once (s) and is returned."""
    alice = Phone("1001", ip, site)
    try:
        alice.register_here()
        invite = alice.invite("05550100", "trunk-down-%d" % site.sip_port)
        started = time.monotonic()
        alice.send(invite)
        final = alice.expect("SIP/2.0 5", timeout=3)
        took = time.monotonic() - started
        alice.send(alice.ack(invite, final))
    finally:
        alice.close()
    return final, took


def test_wrong_password_status_says_why_and_calls_get_503(itsp):
    site = switchboard(itsp, TRUNK_PASSWORD="not-the-password")
    try:
        trunk = wait_trunk(site, "failing")
        view = api_state(site)["extensions"]["trunk"]  # what the dashboard's Trunk card shows
        final, took = call_out_refused(site)
        site.read_available(0.3)
    finally:
        site.stop()
    assert trunk["last_status"] == 401 and trunk["last_reason"] == "Unauthorized"
    assert (view["account"], view["state"], view["last_status"]) == (
        "sip:siteA@127.0.0.1:%d" % itsp.port, "failing", 401)
    assert 25 <= trunk["next_try"] <= 30  # back-off starts at 30 s
    assert first_line(final.decode()).startswith("SIP/2.0 503")
    assert took < 1.0
    assert any("not registered: 401 Unauthorized; next try in 30 s" in line
               for line in site.lines)
    assert not any("not-the-password" in line for line in site.lines)


def test_unreachable_trunk_status_says_why_and_calls_get_503(tmp_path):
    from hostmode import free_port

    nobody = free_port()  # nothing listens there
    site = HostMode({"SIP_USERS": "1001", "TRUNK": "sip:siteA@127.0.0.1:%d" % nobody,
                     "TRUNK_PASSWORD": TRUNK_PW})
    try:
        assert api_status(site)["trunk"]["state"] == "registering"
        final, took = call_out_refused(site)  # at once, not after Timer F
        trunk = wait_trunk(site, "failing", timeout=40)  # the REGISTER times out (64*T1)
    finally:
        site.stop()
    assert first_line(final.decode()).startswith("SIP/2.0 503") and took < 1.0
    assert trunk["last_status"] == 408


def test_trunk_host_name_resolved_by_the_shell_and_sha256(tmp_path):
    """TRUNK names its host (localhost): host mode resolves it before registering; the
    ITSP challenges with SHA-256."""
    k = Kamailio(str(tmp_path), {"siteA": TRUNK_PW}, trunks=("siteA",), sha256=True)
    site = HostMode({"SIP_USERS": "1001", "TRUNK": "sip:siteA@localhost:%d" % k.port,
                     "TRUNK_PASSWORD": TRUNK_PW})
    try:
        trunk = wait_trunk(site, "registered")
    finally:
        site.stop()
        k.stop()
    assert trunk["server"] == "127.0.0.1:%d" % k.port
    assert trunk["account"] == "sip:siteA@localhost:%d" % k.port
    assert "REGISTER siteA by siteA: Digest" in k.log()
    assert "algorithm=SHA-256" in k.log() and "algorithm=MD5" not in k.log()


def call_through(caller, callee, dialled, call_id):
    """caller dials; callee (at the other site) rings and answers; caller hangs up."""
    caller.send(caller.invite(dialled, call_id))
    invite = callee.expect("INVITE")
    callee.send(callee.answer(invite, 180, "Ringing"))
    caller.expect("SIP/2.0 180")
    callee.send(callee.answer(invite, 200, "OK", sdp=True))
    ok = caller.expect("SIP/2.0 200")
    caller.send(caller.in_dialog("ACK", ok, 1))
    callee.expect("ACK")
    caller.send(caller.in_dialog("BYE", ok, 2))
    bye = callee.expect("BYE")
    callee.send(callee.answer(bye, 200, "OK"))
    caller.expect("SIP/2.0 200")
    return invite


def test_two_sites_call_each_other_and_survive_each_other(itsp):
    """Site A (1xxx) and site B (2xxx, its trunk host given by name) registered to one
    Kamailio, which routes between the ranges: 1001 at A calls 2001 at B and back; A keeps
    working while B is stopped, and B (started again) while A is stopped."""
    def site_a():
        return switchboard(itsp, SIP_USERS="1001,1002", TRUNK_INBOUND="")

    def site_b():
        return switchboard(itsp, SIP_USERS="2001,2002", TRUNK_INBOUND="",
                           TRUNK="sip:siteB@localhost:%d" % itsp.port,
                           TRUNK_PASSWORD="trunk-secret-B")

    a = site_a()
    b = site_b()
    phones = []
    try:
        wait_trunk(a, "registered")
        wait_trunk(b, "registered")
        a1001 = Phone("1001", "127.0.0.31", a)
        a1002 = Phone("1002", "127.0.0.32", a)
        b2001 = Phone("2001", "127.0.0.41", b)
        phones += [a1001, a1002, b2001]
        for p in phones:
            p.register_here()
        at_b = call_through(a1001, b2001, "02001", "two-sites-1")
        at_a = call_through(b2001, a1001, "01001", "two-sites-2")
        b.stop()
        call_through(a1001, a1002, "1002", "two-sites-3")  # A alone: local calls go on
        assert api_status(a)["trunk"]["state"] == "registered"
        b = site_b()
        wait_trunk(b, "registered")
        a.stop()
        b2001b = Phone("2001", "127.0.0.43", b)
        b2002 = Phone("2002", "127.0.0.42", b)
        phones += [b2001b, b2002]
        b2001b.register_here()
        b2002.register_here()
        call_through(b2001b, b2002, "2002", "two-sites-4")  # B alone
        assert api_status(b)["trunk"]["state"] == "registered"
    finally:
        for p in phones:
            p.close()
        a.stop()
        b.stop()
    assert first_line(at_b.decode()).startswith("INVITE sip:2001@")
    assert b"siteA" in at_b.split(b"\r\nFrom:")[1].split(b"\r\n")[0]  # A's account calls
    assert first_line(at_a.decode()).startswith("INVITE sip:1001@")


def test_hold_both_ways_in_an_outgoing_call(itsp, site, outside):
    """The phone puts the outside on hold (re-INVITE, challenged upstream and answered with
    the trunk credentials), then the outside holds the phone (its own re-INVITE reaches the
    phone in the phone's dialog); the phone hangs up. The outside sees CSeq rising with no
    gap the phone could see: INVITE 2, re-INVITE 4, BYE 6 (1, 3 and 5 were challenged)."""
    from flows import SDP

    callee, alice = calling_out(site, outside, "uas_answer_hold.xml")
    try:
        alice.send(alice.invite("05550100", "trunk-hold"))
        ok = alice.expect("SIP/2.0 200")
        alice.send(alice.in_dialog("ACK", ok, 1))
        hold = (SDP % ("127.0.0.11", "127.0.0.11", 4002)).replace("sendrecv", "sendonly")
        reinvite = alice.in_dialog("INVITE", ok, 2).replace(
            b"Content-Length: 0\r\n\r\n",
            ("Contact: %s\r\nContent-Type: application/sdp\r\nContent-Length: %d\r\n\r\n%s"
             % (alice.contact(), len(hold), hold)).encode())
        alice.send(reinvite)
        ok2 = alice.expect("SIP/2.0 200")
        assert b"a=recvonly" in ok2
        alice.send(alice.in_dialog("ACK", ok2, 2))
        held = alice.expect("INVITE")
        assert b"a=sendonly" in held and b"Call-ID: trunk-hold" in held
        alice.send(alice.answer(held, 200, "OK", sdp=True))
        alice.expect("ACK")
        alice.send(alice.in_dialog("BYE", ok, 3))
        alice.expect("SIP/2.0 200")
        result = callee.wait()
    finally:
        alice.close()
    assert result.ok, result.report()
    assert cseq_numbers(result, "INVITE") == [2, 4]
    assert cseq_numbers(result, "BYE") == [6]
    assert not [f for f in alice.firsts() if f.startswith(("SIP/2.0 401", "SIP/2.0 407"))]


def test_incoming_call_phone_hangs_up_and_outside_cancel(itsp, outside):
    """Calls in are proxied: the extension's BYE reaches the outside through Kamailio, and
    the outside's CANCEL while it rings reaches the extension (200, 487)."""
    site = switchboard(itsp)
    phone = Phone("600", "127.0.0.12", site)
    try:
        wait_trunk(site, "registered")
        phone.register_here()
        outside.register()
        caller = outside.call("+4930999999", name="uac_call_auth_callee_hangs_up.xml")
        invite = phone.expect("INVITE")
        phone.send(phone.answer(invite, 180, "Ringing"))
        phone.send(phone.answer(invite, 200, "OK", sdp=True))
        phone.expect("ACK")
        bye = phone.as_callee(invite)
        phone.send(bye)
        phone.expect("SIP/2.0 200")
        result = caller.wait()
        assert result.ok, result.report()
        caller = outside.call("+4930999999", pause_ms=300, name="uac_cancel_auth.xml")
        invite = phone.expect("INVITE")
        phone.send(phone.answer(invite, 180, "Ringing"))
        cancel = phone.expect("CANCEL")
        phone.send(phone.answer(cancel, 200, "OK"))
        phone.send(phone.answer(invite, 487, "Request Terminated"))
        phone.expect("ACK")
        result = caller.wait()
        assert result.ok, result.report()
    finally:
        phone.close()
        site.stop()


def test_incoming_call_held_by_the_extension(itsp, outside):
    """The extension puts a call in on hold (a re-INVITE through Switchboard and Kamailio to
    the outside phone, answered recvonly), then hangs up."""
    from flows import SDP

    site = switchboard(itsp)
    phone = Phone("600", "127.0.0.12", site)
    try:
        wait_trunk(site, "registered")
        phone.register_here()
        outside.register()
        caller = outside.call("+4930999999", name="uac_call_auth_held.xml")
        invite = phone.expect("INVITE")
        phone.send(phone.answer(invite, 200, "OK", sdp=True))
        phone.expect("ACK")
        hold = (SDP % ("127.0.0.12", "127.0.0.12", 4002)).replace("sendrecv", "sendonly")
        phone.send(phone.as_callee(invite, "INVITE", 1, sdp=hold))
        ok = phone.expect("SIP/2.0 200")
        assert b"a=recvonly" in ok
        phone.send(phone.as_callee(invite, "ACK", 1))
        phone.send(phone.as_callee(invite, "BYE", 2))
        phone.expect("SIP/2.0 200")
        result = caller.wait()
    finally:
        phone.close()
        site.stop()
    assert result.ok, result.report()


def test_did_rings_a_ring_group_and_a_member_answers(tmp_path):
    """TRUNK_INBOUND names a ring group of the PBX dialplan (RING_GROUPS): a DID call rings
    every member; one answers, the other gets the CANCEL; the outside hangs up."""
    k = Kamailio(str(tmp_path), {"siteA": "pwA", "5550100": "opw"}, trunks=("siteA",))
    site = HostMode({"SIP_USERS": "1001,1002", "RING_GROUPS": "600=1001,1002",
                     "TRUNK": "sip:siteA@%s:%d" % k.addr, "TRUNK_PASSWORD": "pwA",
                     "TRUNK_INBOUND": "600"})
    outside = Outside(k, "5550100", "opw", "127.0.0.21", str(tmp_path))
    a = Phone("1001", "127.0.0.11", site)
    b = Phone("1002", "127.0.0.12", site)
    try:
        wait_trunk(site, "registered")
        a.register_here()
        b.register_here()
        outside.register()
        caller = outside.call("+4930123456", pause_ms=300)
        inv_a = a.expect("INVITE")
        inv_b = b.expect("INVITE")
        a.send(a.answer(inv_a, 180, "Ringing"))
        b.send(b.answer(inv_b, 180, "Ringing"))
        b.send(b.answer(inv_b, 200, "OK", sdp=True))
        cancel = a.expect("CANCEL")
        a.send(a.answer(cancel, 200, "OK"))
        a.send(a.answer(inv_a, 487, "Request Terminated"))
        b.expect("ACK")
        bye = b.expect("BYE", timeout=10)
        b.send(b.answer(bye, 200, "OK"))
        result = caller.wait()
    finally:
        a.close()
        b.close()
        outside.stop()
        site.stop()
        k.stop()
    assert result.ok, result.report()
