"""Scenarios 4 to 7: what phones do inside and beside a call passes through the proxy untouched.

4. Hold and resume: re-INVITEs with sendonly, then sendrecv; the call goes on and ends normally.
5. Blind transfer: A calls B, B sends REFER (Refer-To C), A calls C, C answers; A and C talk.
6. An instant message (MESSAGE, challenged with 407 first) from A reaches B.
7. DTMF sent as SIP INFO (application/dtmf-relay) by linphonec reaches the other phone.

Digest auth is on for all of it (SIP_AUTH=all). Each outcome is read at the phones (console
lines, SIP traces); the server's events and JSON API follow the same call.
"""

import re
import time

import pytest
from interop_helpers import STACKS, header_values


def answered_call(lab, a, b, caller="1001", callee="1002"):
    """A calls B, B answers by itself; returns the server's Call-ID for the call."""
    ma, mb = a.mark(), b.mark()
    a.dial(callee)
    a.wait_established(ma)
    b.wait_established(mb)
    match = lab.wait_event(r"call (\S+) %s -> %s answered" % (caller, callee))
    return match.group(1)


def media_direction(lab, call_id):
    calls = {c["call_id"]: c for c in lab.api("/api/calls")}
    assert call_id in calls, calls
    return calls[call_id]["offer"]["direction"]


@pytest.mark.parametrize("stack", STACKS)
def test_hold_and_resume(lab, stack):
    lab.start_server(md5_only=stack != "linphone")
    a = lab.phone(stack, "1001")
    b = lab.phone(stack, "1002", answer=True)
    call_id = answered_call(lab, a, b)

    ma, mb = a.mark(), b.mark()
    a.hold()
    held = b.wait_held(mb)
    assert header_values(held, "Call-ID", "i") == [call_id]
    assert "Record-Route" not in held.split("\n\n")[0]  # in-dialog: routed, not re-recorded
    a.wait_received("SIP/2.0 200", ("INVITE\n",), since=ma)
    assert media_direction(lab, call_id) in ("sendonly", "inactive")

    time.sleep(1)
    ma, mb = a.mark(), b.mark()
    a.resume()
    b.wait_resumed(mb)
    a.wait_received("SIP/2.0 200", ("INVITE\n",), since=ma)
    assert media_direction(lab, call_id) == "sendrecv"
    assert lab.events(r"call %s .* ended" % re.escape(call_id)) == []

    # the call goes on: the callee hangs up normally
    time.sleep(1)
    ma, mb = a.mark(), b.mark()
    b.hangup()
    b.wait_hung_up(mb)
    a.wait_remote_ended(ma)
    lab.wait_event(r"call %s 1001 -> 1002 ended \(bye\)" % re.escape(call_id))
    history = lab.api("/api/history")
    assert history[0]["call_id"] == call_id and history[0]["duration"] >= 2, history
    a.assert_only_proxy()
    b.assert_only_proxy()


@pytest.mark.parametrize("stack", STACKS)
def test_blind_transfer(lab, stack):
    lab.start_server(md5_only=stack != "linphone")
    a = lab.phone(stack, "1001")
    b = lab.phone(stack, "1002", answer=True)
    c = lab.phone(stack, "1003", answer=True)
    first = answered_call(lab, a, b)

    ma, mb, mc = a.mark(), b.mark(), c.mark()
    b.transfer("1003")
    refer = a.wait_received("REFER ", ("Refer-To:",), since=ma)
    assert re.search(r"(?m)^Refer-To: *<?sip:1003@", refer), refer
    c.wait_incoming("1001", mc)
    c.wait_established(mc)
    a.wait_established(ma)
    b.wait_transferred(mb)
    second = lab.wait_event(r"call (\S+) 1001 -> 1003 answered").group(1)
    assert second != first
    lab.wait_event(r"call %s 1001 -> 1002 ended \(bye\)" % re.escape(first))
    # the old A-B dialog is closed at both phones (the transferor sends the BYE, both do)
    assert b.wait_bye_done(first, mb) == "sent"
    assert a.wait_bye_done(first, ma) == "received"
    calls = lab.wait_api("/api/calls", lambda cs: len(cs) == 1, what="only the A-C call")
    assert (calls[0]["call_id"], calls[0]["caller"], calls[0]["callee"]) == (second, "1001", "1003")
    assert calls[0]["state"] == "answered"

    # A and C talk, then A hangs up
    time.sleep(1)
    ma, mc = a.mark(), c.mark()
    a.hangup()
    a.wait_hung_up(ma)
    c.wait_remote_ended(mc)
    lab.wait_event(r"call %s 1001 -> 1003 ended \(bye\)" % re.escape(second))
    for phone in (a, b, c):
        phone.assert_only_proxy()


@pytest.mark.parametrize("stack", STACKS)
def test_instant_message(lab, stack):
    lab.start_server(md5_only=stack != "linphone")
    a = lab.phone(stack, "1001", message_to="1002")
    b = lab.phone(stack, "1002")
    ma, mb = a.mark(), b.mark()
    text = "hello-1002-from-1001"
    a.message("1002", text)
    b.wait_message("1001", text, mb)
    a.wait_received("SIP/2.0 407", ("MESSAGE\n",), since=ma)
    a.wait_received("SIP/2.0 200", ("MESSAGE\n",), since=ma)
    message = b.wait_received("MESSAGE ", (text,), since=mb)
    vias = header_values(message, "Via", "v")
    assert len(vias) == 2 and lab.proxy in vias[0], vias
    assert lab.api("/api/calls") == [] and lab.api("/api/history") == []
    a.assert_only_proxy()
    b.assert_only_proxy()


@pytest.mark.parametrize("receiver", STACKS)
def test_dtmf_as_sip_info(lab, receiver):
    # linphonec is the phone here that sends DTMF as SIP INFO (baresip 1.0.0 only sends RTP
    # events), so it calls; the receiver is each stack in turn.
    lab.start_server(md5_only=receiver != "linphone")
    a = lab.phone("linphone", "1001")
    b = lab.phone(receiver, "1002", answer=True)
    call_id = answered_call(lab, a, b)
    ma, mb = a.mark(), b.mark()
    a.dtmf_info("5#")
    for digit in "5#":
        b.wait_dtmf(digit, mb)
        info = b.wait_received("INFO ", ("Signal=%s" % digit,), since=mb)
        assert re.search(r"(?mi)^Content-Type: *application/dtmf-relay", info), info
        assert header_values(info, "Call-ID", "i") == [call_id]
    oks = [t for t in a.received("SIP/2.0 200", ma) if "INFO\n" in t]
    assert len(oks) >= 2, a.received("SIP/2.0", ma)
    assert lab.api("/api/calls")[0]["state"] == "answered"
    ma, mb = a.mark(), b.mark()
    a.hangup()
    a.wait_hung_up(ma)
    b.wait_remote_ended(mb)
    lab.wait_event(r"call %s 1001 -> 1002 ended \(bye\)" % re.escape(call_id))
    a.assert_only_proxy()
    b.assert_only_proxy()


def test_proxy_credentials_stay_at_the_proxy(lab):
    """The INVITE, BYE and MESSAGE that B receives carry no credentials A gave the proxy."""
    lab.start_server()
    a = lab.phone("linphone", "1001")
    b = lab.phone("linphone", "1002", answer=True)
    mb = b.mark()
    call_id = answered_call(lab, a, b)
    a.message("1002", "no-credentials-please")
    b.wait_message("1001", "no-credentials-please", mb)
    ma = a.mark()
    a.hangup()
    a.wait_hung_up(ma)
    lab.wait_event(r"call %s 1001 -> 1002 ended" % re.escape(call_id))
    assert any("Proxy-Authorization:" in t for t in a.sent("INVITE ") + a.sent("MESSAGE "))
    requests = b.received("INVITE ", mb) + b.received("MESSAGE ", mb) + b.received("BYE ", mb)
    realm = 'realm="%s"' % lab.server.host
    leaked = [
        text.split("\n", 1)[0] + "\n" + line
        for text in requests
        for line in text.split("\n\n", 1)[0].split("\n")
        if line.lower().startswith("proxy-authorization:") and realm in line
    ]
    assert leaked == [], "\n".join(leaked)
