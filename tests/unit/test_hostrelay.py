"""Host mode's byte-level relay of plain responses (hostrelay.py): whatever it takes, the
engine must send and record exactly what its usual path (parse, Message.to_bytes) does."""

import flows
import pytest
from flows import Phone, new_engine, snapshot, status
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from switchboard import hostrelay


def counting(taken):
    def relay(engine, data, now, out):
        done = hostrelay.relay(engine, data, now, out)
        if done:
            taken.append(data[:11])
        return done
    return relay


def transcript(monkeypatch, relay):
    lines = []

    def make(*args, **kwargs):
        engine = new_engine(*args, **kwargs)
        engine.relay = relay
        return engine

    monkeypatch.setattr(flows, "new_engine", make)
    flows.run(lines.append)
    return lines


def test_the_flows_send_the_same_bytes_with_the_shortcut(monkeypatch):
    taken = []
    assert transcript(monkeypatch, counting(taken)) == transcript(monkeypatch, None)
    # it did take provisionals and 2xx to BYE (and nothing else)
    assert b"SIP/2.0 180" in taken and b"SIP/2.0 200" in taken
    assert all(t[8:9] in (b"1", b"2") for t in taken)


class Call:
    """One engine, alice calling bob up to the response under test."""

    def __init__(self, relay, bye):
        self.engine = new_engine()
        self.engine.relay = relay
        self.now = 1000
        self.alice, self.bob = Phone("1001", "10.0.0.11"), Phone("1002", "10.0.0.12")
        self.send(self.alice, self.alice.register())
        self.send(self.bob, self.bob.register())
        self.request = self.send(self.alice, self.alice.invite("1002", "c1"))[-1][0]
        if bye:
            ok = self.send(self.bob, self.bob.answer(self.request, 200, "OK", sdp=True))[-1][0]
            self.send(self.alice, self.alice.in_dialog("ACK", ok, 1))
            self.request = self.send(self.alice, self.alice.in_dialog("BYE", ok, 2))[-1][0]

    def send(self, phone, data):
        self.now += 10
        return self.engine.receive(data, phone.addr, self.now)


# each edit makes a response that is still plain (taken) or that the shortcut must leave
# to the usual path; either way the two engines must agree
EDITS = [
    lambda d: d,
    lambda d: d.replace(b"CSeq:", b"cseq:"),
    lambda d: d.replace(b"Call-ID:", b"i:"),
    lambda d: d.replace(b"To:", b"To :"),
    lambda d: d.replace(b"\r\nTo:", b"\r\nTo:  \t"),
    lambda d: d.replace(b"\r\nCall-ID:", b" \r\nCall-ID:"),
    lambda d: d.replace(b"\r\nCall-ID: ", b"\r\nCall-ID:\r\n "),
    lambda d: d.replace(b"\r\nCall-ID", b"\nCall-ID"),
    lambda d: d.replace(b"\r\nCall-ID", b"\r\r\nCall-ID"),
    lambda d: d.replace(b"Content-Length: 0", b"Content-Length: 00"),
    lambda d: d.replace(b"Content-Length: 0", b"Content-Length: 3") + b"abc",
    lambda d: d.replace(b"Content-Length: 0", b"Content-Length: 3") + b"abcdef",
    lambda d: d.replace(b"Content-Length: 0", b"Content-Length: 9") + b"abc",
    lambda d: d.replace(b"Content-Length: 0\r\n", b""),
    lambda d: d.replace(b"Content-Length: 0", b"Content-Length: 0\r\nContent-Length: 0"),
    lambda d: d.replace(b"\r\nCSeq:", b"\r\nCSeq: 9 BYE\r\nCSeq:"),
    lambda d: d.replace(b"\r\nCSeq: ", b"\r\nCSeq: x"),
    lambda d: d[:d.find(b"\r\nCSeq:")] + d[d.find(b"\r\n", d.find(b"\r\nCSeq:") + 2):],
    lambda d: d.replace(b"\r\nCSeq: ", b"\r\nCSeq: 99999999999 "),
    lambda d: d.replace(b";branch=", b";received=10.0.0.1;branch="),
    lambda d: d.replace(b";branch=", b";branch=x", 1),
    lambda d: d.replace(b"Via: SIP/2.0/UDP 10.0.0.1:5060;",
                        b"Via: SIP/2.0/UDP 10.0.0.1:5060 ;"),
    lambda d: d.replace(b"Via: SIP/2.0/UDP 10.0.0.1:5060", b"v: SIP/2.0/UDP 10.0.0.1:5060"),
    lambda d: d.replace(b"Via: SIP/2.0/UDP 10.0.0.1:5060", b"Via: SIP/2.0/UDP 10.0.0.9:5060"),
    lambda d: d.replace(b"\r\nVia: SIP/2.0/UDP 10.0.0.1",
                        b"\r\nX-A: b\r\nVia: SIP/2.0/UDP 10.0.0.1"),
    lambda d: d.replace(b"Ringing", "Sonne \u00e0".encode()).replace(b" OK", b" Ok\x00"),
    lambda d: d.replace(b"\r\nFrom", b"\r\nX-Bad\r\nFrom"),
    lambda d: d.replace(b"\r\nFrom", b"\r\nSubject: \xff\r\nFrom"),
    # the caller's Via as a second value on our line (as SIPp writes them), and more
    lambda d: d.replace(b"\r\nVia: SIP/2.0/UDP 10.0.0.11", b", SIP/2.0/UDP 10.0.0.11"),
    lambda d: d.replace(b"\r\nVia: SIP/2.0/UDP 10.0.0.11", b",SIP/2.0/UDP 10.0.0.11"),
    lambda d: d.replace(b"\r\nVia: SIP/2.0/UDP 10.0.0.11", b",  SIP/2.0/UDP 10.0.0.11"),
    lambda d: d.replace(b"\r\nVia: SIP/2.0/UDP 10.0.0.11", b" , SIP/2.0/UDP 10.0.0.11"),
    lambda d: d.replace(b"\r\nVia: SIP/2.0/UDP 10.0.0.11", b", , SIP/2.0/UDP 10.0.0.11"),
    lambda d: d.replace(b"\r\nVia: SIP/2.0/UDP 10.0.0.11",
                        b", SIP/2.0/UDP 10.0.0.7;branch=z9hG4bKx, SIP/2.0/UDP 10.0.0.11"),
    lambda d: d.replace(b"\r\nVia: SIP/2.0/UDP 10.0.0.11",
                        b", SIP/2.0/UDP 10.0.0.7;x=\"a,b\", SIP/2.0/UDP 10.0.0.11"),
    lambda d: d.replace(b"\r\nVia: SIP/2.0/UDP 10.0.0.11",
                        b", SIP/2.0/UDP 10.0.0.7;x=\"a, b\", SIP/2.0/UDP 10.0.0.11"),
    lambda d: d.replace(b"\r\nVia: SIP/2.0/UDP 10.0.0.11",
                        b", SIP/2.0/UDP 10.0.0.7;branch=z9hG4bKx,SIP/2.0/UDP 10.0.0.11"),
    lambda d: d.replace(b"\r\nVia: SIP/2.0/UDP 10.0.0.11;", b", SIP/2.0/UDP 10.0.0.11;"),
    lambda d: d.replace(b"\r\nVia: SIP/2.0/UDP 10.0.0.11:5060;",
                        b", SIP/2.0/UDP 10.0.0.11:5060\r\nSubject: "),
    lambda d: d.replace(b"\r\nFrom", b"\r\nServer: a" + b"\r\nServer: a" * 80 + b"\r\nFrom"),
    lambda d: d.replace(b"\r\nFrom", b"\r\nSubject:\r\nWarning: 399 x \"y\"\r\nFrom"),
]


def agree(bye, code, edits, twice):
    """The same edited response to two engines, one with the shortcut: same datagrams out,
    same snapshot. Returns whether the shortcut took it."""
    taken = []
    calls = [Call(counting(taken), bye), Call(None, bye)]
    results = []
    for call in calls:
        data = call.bob.answer(call.request, code, "Ringing" if code < 200 else "OK")
        for k in edits:
            data = EDITS[k](data)
        sent = call.send(call.bob, data)
        if twice:  # the same response again: absorbed or relayed alike
            sent += call.send(call.bob, data)
        results.append((sent, snapshot(call.engine, call.now)))
    assert results[0] == results[1]
    return bool(taken)


CODES = [100, 180, 183, 199, 200, 202, 486]


@pytest.mark.parametrize("bye", [False, True])
@pytest.mark.parametrize("code", CODES)
@pytest.mark.parametrize("edit", range(len(EDITS)))
def test_each_edited_response_gets_the_same_answer_with_and_without_the_shortcut(bye, code,
                                                                                 edit):
    taken = agree(bye, code, [edit], False)
    if edit == 0 and code < 300 and (code < 200 or bye):
        assert taken  # a plain one is taken


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bye=st.booleans(), code=st.sampled_from(CODES),
       edits=st.lists(st.integers(0, len(EDITS) - 1), min_size=2, max_size=4),
       twice=st.booleans())
def test_edits_together_give_the_same_answer_with_and_without_the_shortcut(bye, code, edits,
                                                                           twice):
    agree(bye, code, edits, twice)


def test_a_plain_ringing_is_relayed_without_our_via_and_counted():
    call = Call(hostrelay.relay, False)
    out = call.send(call.bob, call.bob.answer(call.request, 180, "Ringing"))
    assert [(status(d), a) for d, a in out] == [(180, call.alice.addr)]
    assert b"10.0.0.1:5060;branch" not in out[0][0]
    assert out[0][0].count(b"Via:") == 1
    assert call.engine.counters["responses"] == 1
    assert call.engine.active_calls(call.now)[0]["state"] == "ringing"


def test_sipps_one_line_of_vias_is_taken_and_loses_only_our_value():
    # SIPp's [last_Via:] writes every Via value of the request on one line
    call = Call(hostrelay.relay, True)
    plain = call.bob.answer(call.request, 200, "OK")
    merged = plain.replace(b"\r\nVia: SIP/2.0/UDP 10.0.0.11", b", SIP/2.0/UDP 10.0.0.11")
    assert merged.count(b"Via:") == 1
    taken = []
    call.engine.relay = counting(taken)
    out = call.send(call.bob, merged)
    assert taken == [b"SIP/2.0 200"]
    assert [(status(d), a) for d, a in out] == [(200, call.alice.addr)]
    assert out[0][0] == merged.replace(merged[merged.find(b"Via: "):merged.find(b", ") + 2],
                                       b"Via: ")
