"""Scenarios 2 and 3: calls through Switchboard with digest auth on (SIP_AUTH=all, so every
INVITE is challenged with 407 first).

2. A call answered, then hung up by the caller; another hung up by the callee.
3. Cancel while ringing; callee busy (already in a call, so it refuses another with 486); no
   answer until the proxy's Timer C (TIMER_C=3) cancels the ringing phone and answers 408.

Both phones' consoles and SIP traces show each outcome; the server's event lines and JSON API show
the same call (same Call-ID) going through its states.
"""

import re
import time

import pytest
from interop_helpers import STACKS, header_values


def call_id_of_invite(phone, since):
    """Call-ID of the INVITE the phone sent since the mark (the one with credentials)."""
    invites = [t for t in phone.sent("INVITE ", since) if "Proxy-Authorization:" in t]
    assert invites, "%s sent no INVITE with credentials" % phone.name
    return header_values(invites[0], "Call-ID", "i")[0]


def assert_challenged(phone, since):
    """The phone's first INVITE got 407, its second carried Proxy-Authorization."""
    phone.wait_received("SIP/2.0 407", ("INVITE\n",), since=since)
    assert any("Proxy-Authorization:" in t for t in phone.sent("INVITE ", since))


@pytest.mark.parametrize("stack", STACKS)
def test_call_hung_up_by_caller_then_by_callee(lab, stack):
    lab.start_server(md5_only=stack != "linphone")
    a = lab.phone(stack, "1001")
    b = lab.phone(stack, "1002", answer=True)

    # 1: answered, then the caller hangs up
    ma, mb = a.mark(), b.mark()
    a.dial("1002")
    b.wait_incoming("1001", mb)
    a.wait_established(ma)
    b.wait_established(mb)
    assert_challenged(a, ma)
    call_id = call_id_of_invite(a, ma)
    lab.wait_event(r"call %s 1001 -> 1002 answered" % re.escape(call_id))
    calls = lab.api("/api/calls")
    assert [(c["call_id"], c["state"]) for c in calls] == [(call_id, "answered")], calls
    invite = b.wait_received("INVITE ", ("Record-Route: <sip:%s;lr>" % lab.proxy,), since=mb)
    assert header_values(invite, "Call-ID", "i") == [call_id]
    time.sleep(1)
    ma, mb = a.mark(), b.mark()
    a.hangup()
    a.wait_hung_up(ma)
    b.wait_remote_ended(mb)
    b.wait_received("BYE ", (call_id,), since=mb)
    lab.wait_event(r"call %s 1001 -> 1002 ended \(bye\)" % re.escape(call_id))

    # 2: answered, then the callee hangs up
    ma, mb = a.mark(), b.mark()
    a.dial("1002")
    a.wait_established(ma)
    b.wait_established(mb)
    second = call_id_of_invite(a, ma)
    assert second != call_id
    lab.wait_event(r"call %s 1001 -> 1002 answered" % re.escape(second))
    time.sleep(1)
    ma, mb = a.mark(), b.mark()
    b.hangup()
    b.wait_hung_up(mb)
    a.wait_remote_ended(ma)
    a.wait_received("BYE ", (second,), since=ma)
    lab.wait_event(r"call %s 1001 -> 1002 ended \(bye\)" % re.escape(second))

    history = lab.wait_api("/api/history", lambda h: len(h) == 2, what="two finished calls")
    assert [(c["call_id"], c["state"], c["reason"]) for c in history] == [
        (second, "ended", "bye"),
        (call_id, "ended", "bye"),
    ], history
    assert lab.api("/api/calls") == []
    a.assert_only_proxy()
    b.assert_only_proxy()


@pytest.mark.parametrize("stack", STACKS)
def test_cancel_busy_and_no_answer(lab, stack):
    lab.start_server(md5_only=stack != "linphone", TIMER_C=3)
    a = lab.phone(stack, "1001")
    b = lab.phone(stack, "1002", max_calls=1)
    c = lab.phone(stack, "1003")

    # cancel while ringing
    ma, mb = a.mark(), b.mark()
    a.dial("1002")
    b.wait_incoming("1001", mb)
    a.wait_ringing(ma)
    call_id = call_id_of_invite(a, ma)
    lab.wait_event(r"call %s 1001 -> 1002 ringing" % re.escape(call_id))
    a.hangup()
    b.wait_cancelled(mb)
    a.wait_received("SIP/2.0 487", ("INVITE\n",), since=ma)
    lab.wait_event(r"call %s 1001 -> 1002 cancelled 487" % re.escape(call_id))

    # busy: B is in a call with C and takes only one call at a time
    mb, mc = b.mark(), c.mark()
    c.dial("1002")
    b.wait_incoming("1003", mb)
    b.answer()
    c.wait_established(mc)
    b.wait_established(mb)
    ma, mb = a.mark(), b.mark()
    a.dial("1002")
    a.wait_failed(486, ma)
    busy = b.sent("SIP/2.0 486", mb)
    assert busy and "INVITE\n" in busy[0], b.sent("SIP/2.0", mb)
    busy_id = call_id_of_invite(a, ma)
    lab.wait_event(r"call %s 1001 -> 1002 failed 486" % re.escape(busy_id))
    mb, mc = b.mark(), c.mark()
    c.hangup()
    c.wait_hung_up(mc)
    b.wait_remote_ended(mb)

    # no answer: B rings until Timer C (3 s after the 180) ends the branch with CANCEL; A: 408
    ma, mb = a.mark(), b.mark()
    a.dial("1002")
    b.wait_incoming("1001", mb)
    rang = time.monotonic()
    b.wait_cancelled(mb, timeout=15)
    a.wait_failed(408, ma)
    assert time.monotonic() - rang >= 2.0
    late = call_id_of_invite(a, ma)
    lab.wait_event(r"call %s 1001 -> 1002 failed 408" % re.escape(late))

    history = lab.wait_api("/api/history", lambda h: len(h) == 4, what="four finished calls")
    states = {c["call_id"]: (c["state"], c["status"]) for c in history}
    assert states[call_id] == ("cancelled", 487)
    assert states[busy_id] == ("failed", 486)
    assert states[late] == ("failed", 408)
    for phone in (a, b, c):
        phone.assert_only_proxy()
