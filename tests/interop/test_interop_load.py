"""Scenarios 8 and 9.

8. Three phones, two calls at the same time (A-B, then C calls A, which takes the second call);
   /api/calls shows both, and each phone shows its calls.
9. A phone that vanishes mid-call (killed: no BYE, no unregistration): the server closes the call
   record after CALL_IDLE_TIMEOUT (10 s, the minimum) and the binding expires; the caller, which
   never got a BYE, then reaches nobody (480).
"""

import re
import time

import pytest
from interop_helpers import STACKS


@pytest.mark.parametrize("stack", STACKS)
def test_two_calls_at_once(lab, stack):
    lab.start_server(md5_only=stack != "linphone")
    a = lab.phone(stack, "1001")
    b = lab.phone(stack, "1002", answer=True)
    c = lab.phone(stack, "1003")

    ma, mb = a.mark(), b.mark()
    a.dial("1002")
    a.wait_established(ma)
    b.wait_established(mb)
    first = lab.wait_event(r"call (\S+) 1001 -> 1002 answered").group(1)
    time.sleep(1.2)  # so the API's "oldest first" has a whole second to go by
    ma, mc = a.mark(), c.mark()
    c.dial("1001")
    a.wait_incoming("1003", ma)
    a.answer()  # A, in a call with B, takes C's call too
    c.wait_established(mc)
    a.wait_established(ma)
    second = lab.wait_event(r"call (\S+) 1003 -> 1001 answered").group(1)

    calls = lab.wait_api("/api/calls", lambda cs: len(cs) == 2, what="two calls")
    seen = {(c["call_id"], c["caller"], c["callee"], c["state"]) for c in calls}
    assert seen == {(first, "1001", "1002", "answered"), (second, "1003", "1001", "answered")}
    assert calls[0]["call_id"] == first  # oldest first
    assert lab.api("/api/status")["tables"]["calls"]["use"] == 2
    assert a.count_calls() == 2
    assert b.count_calls() == 1 and c.count_calls() == 1

    # both end; both land in the history
    mb, mc = b.mark(), c.mark()
    b.hangup()
    b.wait_hung_up(mb)
    c.hangup()
    c.wait_hung_up(mc)
    lab.wait_event(r"call %s 1001 -> 1002 ended \(bye\)" % re.escape(first))
    lab.wait_event(r"call %s 1003 -> 1001 ended \(bye\)" % re.escape(second))
    lab.wait_api("/api/calls", lambda cs: cs == [], what="no calls")
    history = lab.api("/api/history")
    assert {h["call_id"] for h in history} == {first, second}
    for phone in (a, b, c):
        phone.assert_only_proxy()


IDLE = 10  # CALL_IDLE_TIMEOUT's minimum


def check_vanished_call(lab, a, call_id, ma, started):
    """After B vanished: call closed on idle timeout, binding expired, A got no BYE, a new call
    from A finds nobody (480)."""
    ended = lab.wait_event(
        r"call %s 1001 -> 1002 ended \(idle timeout\)" % re.escape(call_id), timeout=IDLE + 10
    )
    assert ended
    assert time.monotonic() - started >= IDLE - 1
    lab.wait_event(r"expired 1002 contact=", timeout=15)
    assert lab.api("/api/calls") == []
    history = lab.api("/api/history")
    assert (history[0]["call_id"], history[0]["state"], history[0]["reason"]) == (
        call_id,
        "ended",
        "idle timeout",
    ), history
    assert all(r["user"] != "1002" for r in lab.api("/api/registrations"))
    # A never heard of the end: no BYE reached it, its call is still up
    assert [t for t in a.received("BYE ", ma) if call_id in t] == []
    assert a.count_calls() == 1
    # A gives up on the silent call; 1002 is now unreachable: A's next call gets 480
    mark = a.mark()
    a.hangup()
    a.dial("1002")
    a.wait_failed(480, mark)
    lab.wait_event(r"call \S+ 1001 -> 1002 failed 480")


def test_phone_vanishes_mid_call_linphone(lab):
    lab.start_server(CALL_IDLE_TIMEOUT=IDLE, REG_MIN_EXPIRES=1)
    a = lab.phone("linphone", "1001")
    b = lab.phone("linphone", "1002", answer=True, expires=5)
    ma, mb = a.mark(), b.mark()
    a.dial("1002")
    a.wait_established(ma)
    b.wait_established(mb)
    call_id = lab.wait_event(r"call (\S+) 1001 -> 1002 answered").group(1)
    started = time.monotonic()
    b.kill()
    check_vanished_call(lab, a, call_id, ma, started)


def test_phone_vanishes_mid_call_sipp(lab):
    """B is SIPp: registers for 5 s, answers, takes the ACK and exits without BYE."""
    lab.start_server(md5_only=True, CALL_IDLE_TIMEOUT=IDLE, REG_MIN_EXPIRES=1)
    a = lab.phone("baresip", "1001")
    b = lab.sipp_phone("1002")
    registration = b.register(expires=5)
    assert registration.ok, registration.report()
    callee = b.start("interop_uas_vanish.xml", timeout=20)
    ma = a.mark()
    a.dial("1002")
    a.wait_established(ma)
    gone = callee.wait()
    assert gone.ok, gone.report()
    started = time.monotonic()
    assert [m.split("\n", 1)[0] for m in gone.sent()] == ["SIP/2.0 180 Ringing", "SIP/2.0 200 OK"]
    assert not any(m.startswith("BYE") for m in gone.sent())
    call_id = lab.wait_event(r"call (\S+) 1001 -> 1002 answered").group(1)
    check_vanished_call(lab, a, call_id, ma, started)
