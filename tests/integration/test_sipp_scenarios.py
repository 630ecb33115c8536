"""The SIPp scenarios and their harness, checked sipp against sipp with no proxy between.

When these pass and test_sipp_flows fails, the failure is Switchboard's.
"""

import os

import pytest
from sipp_helpers import SCENARIOS, Phone, expect_text, header_values, sipp_binary


def pair(workdir):
    callee = Phone(None, "1002", "127.0.0.32", workdir)
    caller = Phone((callee.ip, callee.port), "1001", "127.0.0.31", workdir)
    return caller, callee


def flow(caller, callee, uas, uac, pause_ms=100):
    try:
        answering = callee.answer(uas)
        made = caller.call("1002", uac, pause_ms=pause_ms)
        answered = answering.wait()
    finally:
        callee.stop()
        caller.stop()
    assert made.ok and answered.ok, made.report() + answered.report()
    return made, answered


def test_sipp_is_installed():
    assert os.access(sipp_binary(), os.X_OK)


@pytest.mark.parametrize("status", [404, 408, 480, 486])
def test_expect_copies_match_the_template(status):
    with open(os.path.join(SCENARIOS, "uac_%d.xml" % status)) as f:
        assert f.read() == expect_text(status)


def test_answered_call_direct(tmp_path):
    caller, callee = pair(str(tmp_path))
    made, answered = flow(caller, callee, "uas_answer.xml", "uac_call.xml")
    assert [line for line in made.first_lines()] == [
        "-> INVITE sip:1002@%s:%d SIP/2.0" % (callee.ip, callee.port),
        "<- SIP/2.0 180 Ringing",
        "<- SIP/2.0 200 OK",
        "-> ACK sip:1002@%s:%d SIP/2.0" % (callee.ip, callee.port),
        "-> BYE sip:1002@%s:%d SIP/2.0" % (callee.ip, callee.port),
        "<- SIP/2.0 200 OK",
    ]
    invite, ack, bye = made.sent()
    # No Record-Route, so no Route; a fresh branch for the 2xx ACK and for the BYE.
    assert header_values(ack, "Route") == [] and header_values(bye, "Route") == []
    branches = {header_values(m, "Via", "v")[0].split("branch=")[1] for m in (invite, ack, bye)}
    assert len(branches) == 3


def test_cancelled_call_direct(tmp_path):
    caller, callee = pair(str(tmp_path))
    made, answered = flow(caller, callee, "uas_ring.xml", "uac_cancel.xml")
    assert [line.split(" sip:")[0] for line in made.first_lines()] == [
        "-> INVITE",
        "<- SIP/2.0 180 Ringing",
        "-> CANCEL",
        "<- SIP/2.0 200 OK",
        "<- SIP/2.0 487 Request Terminated",
        "-> ACK",
    ]
    invite, cancel, ack = made.sent()
    via = header_values(invite, "Via", "v")
    assert header_values(cancel, "Via", "v") == via and header_values(ack, "Via", "v") == via
    ok_cancel, terminated = made.received()[1:]
    assert header_values(ok_cancel, "CSeq") == ["1 CANCEL"]
    assert header_values(terminated, "CSeq") == ["1 INVITE"]


def test_busy_direct(tmp_path):
    caller, callee = pair(str(tmp_path))
    made, answered = flow(caller, callee, "uas_busy.xml", "uac_486.xml")
    invite, ack = made.sent()
    assert header_values(ack, "Via", "v") == header_values(invite, "Via", "v")
    assert first_lines(answered) == ["INVITE", "SIP/2.0 486 Busy Here", "ACK"]


def first_lines(result):
    return [line[3:].split(" sip:")[0] for line in result.first_lines()]
