"""Feature codes and intercom on real phones (baresip 1.0, linphonec 5.1) through Switchboard
with digest auth on (SIP_AUTH=all, so the feature-code INVITE is challenged first and the
caller is who it says it is).

What each phone shows (docs/pbx.md quotes these): the answer to *78 and *79, the DND busy in
between, and an intercom call (*80EXT) arriving with the auto-answer headers, which neither
of these two versions acts on: it rings like any call.
"""

import re
import time

import pytest
from interop_helpers import STACKS, header_values

SHOWN = {  # what the caller's console prints for a feature code's answer
    "baresip": r"session closed: 480 %s",
    "linphone": r"Call \d+ with sip:\%s@[^\n]* error\.",
}


@pytest.mark.parametrize("stack", STACKS)
def test_dnd_by_feature_code_and_intercom(lab, stack):
    lab.start_server(md5_only=stack != "linphone", DND="1003", INTERCOM="1002")
    a = lab.phone(stack, "1001")
    b = lab.phone(stack, "1002")

    def feature(code, reason):
        ma = a.mark()
        a.dial(code)
        a.wait_failed(480, ma)
        assert a.received("SIP/2.0 480 %s\n" % reason, ma), a.received("SIP/2.0", ma)
        assert a.received("SIP/2.0 407", ma), "the feature code was not challenged"
        shown = SHOWN[stack] % (reason if stack == "baresip" else code)
        a._wait(shown, 5, ma)
        lab.wait_event(r"feature \%s from 1001: 480 %s" % (code, reason))

    feature("*78", "Do Not Disturb On")
    mb = b.mark()
    b.dial("1001")
    b.wait_failed(486, mb)
    assert b.received("SIP/2.0 486 Busy Here\n", mb)
    if stack == "baresip":
        b._wait(r"session closed: 486 Busy Here", 5, mb)
    feature("*79", "Do Not Disturb Off")
    assert lab.api("/api/pbx")["settings"]["1001"]["dnd"] is False

    # intercom: the headers arrive, the phone rings (neither version answers by itself)
    mb = b.mark()
    a.dial("*801002")
    b.wait_incoming("1001", mb)
    invite = b.wait_received("INVITE ", ("Call-Info:",), since=mb)
    assert header_values(invite, "Call-Info") == ["<sip:%s>;answer-after=0" % lab.proxy]
    assert header_values(invite, "Alert-Info") == ["<http://127.0.0.1>;info=alert-autoanswer"]
    time.sleep(3)
    assert not b.sent("SIP/2.0 200", mb), "%s answered the intercom call by itself" % b.name
    a.hangup()
    b.wait_cancelled(mb)
    lab.wait_event(r"call \S+ 1001 -> %s cancelled" % re.escape("1002"))


@pytest.mark.parametrize("stack", STACKS)
def test_ring_group_and_hunt_group_with_real_phones(lab, stack):
    lab.start_server(md5_only=stack != "linphone", RING_GROUPS="600=1002,1003",
                     HUNT_GROUPS="601=1002,1003", HUNT_TIMEOUT=2)
    a = lab.phone(stack, "1001")
    b = lab.phone(stack, "1002")
    c = lab.phone(stack, "1003")

    # ring group: both ring at once, the second member answers, the first is cancelled
    ma, mb, mc = a.mark(), b.mark(), c.mark()
    a.dial("600")
    b.wait_incoming("1001", mb)
    c.wait_incoming("1001", mc)
    c.answer()
    a.wait_established(ma)
    c.wait_established(mc)
    b.wait_cancelled(mb)
    lab.wait_event(r"call \S+ 1001 -> 600 answered")
    ma, mc = a.mark(), c.mark()
    a.hangup()
    a.wait_hung_up(ma)
    c.wait_remote_ended(mc)

    # hunt group: 1002 rings alone for 2 s, is cancelled, then 1003 rings and answers
    ma, mb, mc = a.mark(), b.mark(), c.mark()
    a.dial("601")
    b.wait_incoming("1001", mb)
    rang = time.monotonic()
    assert not c.received("INVITE ", mc), "1003 rang together with 1002"
    b.wait_cancelled(mb)
    c.wait_incoming("1001", mc)
    assert time.monotonic() - rang >= 1.5
    c.answer()
    a.wait_established(ma)
    lab.wait_event(r"call \S+ 1001 -> 601 answered")
    ma, mc = a.mark(), c.mark()
    a.hangup()
    a.wait_hung_up(ma)
    c.wait_remote_ended(mc)
    for phone in (a, b, c):
        phone.assert_only_proxy()


@pytest.mark.parametrize("stack", STACKS)
def test_hunt_group_member_who_refuses(lab, stack):
    """baresip refuses an incoming call with 486: the hunt goes on to the next member.
    linphonec refuses with 603 Decline: a 6xx ends the call for everyone (RFC 3261 §16.7: no
    new branches after a 6xx), and the caller gets the 603."""
    lab.start_server(md5_only=stack != "linphone", HUNT_GROUPS="601=1002,1003",
                     HUNT_TIMEOUT=10)
    a = lab.phone(stack, "1001")
    b = lab.phone(stack, "1002")
    c = lab.phone(stack, "1003")
    ma, mb, mc = a.mark(), b.mark(), c.mark()
    a.dial("601")
    b.wait_incoming("1001", mb)
    b.reject()
    if stack == "baresip":
        c.wait_incoming("1001", mc)
        assert b.sent("SIP/2.0 486", mb), b.sent("SIP/2.0", mb)
        c.answer()
        a.wait_established(ma)
        lab.wait_event(r"call \S+ 1001 -> 601 answered")
        ma, mc = a.mark(), c.mark()
        a.hangup()
        a.wait_hung_up(ma)
        c.wait_remote_ended(mc)
    else:
        a.wait_failed(603, ma)
        lab.wait_event(r"call \S+ 1001 -> 601 failed 603")
        assert not c.received("INVITE ", mc), "1003 rang after a 603"
