"""Call records (calls.py): start, progress by relayed responses, in-dialog requests, idle
expiry, bounded history. Runs under CPython and on the MicroPython VM."""

from switchboard.calls import ANSWERED, CANCELLED, ENDED, FAILED, RINGING, TRYING, Calls

SDP = b"v=0\r\nc=IN IP4 10.0.0.11\r\nm=audio 4000 RTP/AVP 0\r\n"


def calls(history=2, idle_ms=60000):
    logs = []
    return Calls(2, history, idle_ms, lambda level, text: logs.append(text)), logs


def test_call_goes_ringing_answered_ended():
    c, logs = calls()
    call = c.start("c1", "1001", "1002", SDP, 0)
    assert call.state == TRYING and call.offer["port"] == 4000
    c.progress(call, 180, b"", 100)
    assert call.state == RINGING
    c.progress(call, 200, SDP.replace(b"4000", b"5000"), 200)
    assert call.state == ANSWERED and call.answered == 200 and call.answer["port"] == 5000
    c.in_dialog("c1", "BYE", b"", 5200)
    assert call.state == ENDED and call.duration(9999) == 5 and c.active == {}
    assert c.history == [call] and call.reason == "bye"
    assert logs[-1] == "call c1 1001 -> 1002 ended (bye)"


def test_failures_and_cancel_go_to_history_bounded():
    c, _ = calls(history=2)
    for n, status in enumerate((486, 487, 404)):
        call = c.start("c%d" % n, "a", "b", b"", 0)
        c.progress(call, status, b"", 10)
    assert [(x.call_id, x.state, x.status) for x in c.history] == [
        ("c1", CANCELLED, 487), ("c2", FAILED, 404)]


def test_limit_and_duplicate_call_id():
    c, _ = calls()
    first = c.start("c1", "a", "b", b"", 0)
    assert c.start("c1", "a", "b", b"", 1) is first
    c.start("c2", "a", "b", b"", 0)
    assert c.full() and c.start("c3", "a", "b", b"", 0) is None


def test_idle_calls_expire():
    c, _ = calls(idle_ms=1000)
    talking = c.start("c1", "a", "b", b"", 0)
    c.progress(talking, 200, b"", 0)
    ringing = c.start("c2", "a", "b", b"", 0)
    c.in_dialog("c1", "INFO", b"", 500)
    c.expire(1000)
    assert ringing.state == FAILED and talking.state == ANSWERED
    c.expire(1500)
    assert talking.state == ENDED and talking.reason == "idle timeout"
