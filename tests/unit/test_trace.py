"""The call-message ring (trace.py): call messages only, first line and Call-ID only,
bounded, oldest overwritten; through the engine, both directions; on a host, datagrams
held and summarized later give the same ring as summarizing each at once (a board's way)."""

from flows import Phone, new_engine

from switchboard.trace import Trace, summary


def test_summary_keeps_first_line_and_call_id_of_call_messages_only():
    alice = Phone("1001", "10.0.0.11")
    invite = alice.invite("1002", "abc")
    assert summary(invite) == ("INVITE sip:1002@10.0.0.1", "abc")
    assert summary(alice.register()) is None
    assert summary(alice.answer(invite, 486, "Busy Here")) == ("486 Busy Here", "abc")
    compact = invite.replace(b"Call-ID:", b"i:")
    assert summary(compact)[1] == "abc"
    assert summary(b"\r\n\r\n") is None and summary(b"\xff\xfe") is None


def test_ring_is_bounded_and_never_holds_credentials():
    t = Trace(3)
    alice = Phone("1001", "10.0.0.11")
    secret = 'Digest username="1001", response="0123456789abcdef0123456789abcdef"'
    for n in range(5):
        data = alice.request("INVITE", "sip:1002@x", "<sip:1002@x>", "c%d" % n, 1,
                             ["Proxy-Authorization: " + secret])
        t.add(data, ("10.0.0.11", 5060), True, n)
    t.flush()  # (on a host the datagrams wait in t.queue until something reads the ring)
    assert t.queue == []
    assert len(t.ring) == 3
    assert [e[4] for e in t.messages("c4")] == ["c4"]
    assert t.messages("c0") == []
    assert sorted(t.call_ids()) == ["c2", "c3", "c4"]
    assert "0123456789abcdef" not in repr(t.ring) and "Digest" not in repr(t.ring)


def test_engine_traces_a_failed_call_in_both_directions():
    engine = new_engine()
    engine.trace = Trace(16)  # as the dashboard sets it (views.add_routes)
    alice, bob = Phone("1001", "10.0.0.11"), Phone("1002", "10.0.0.12")
    now = 1000
    for p in (alice, bob):
        engine.receive(p.register(), p.addr, now)
    out = engine.receive(alice.invite("1002", "busy-1"), alice.addr, now + 10)
    fwd = [d for d, a in out if a == bob.addr][0]
    engine.receive(bob.answer(fwd, 486, "Busy Here"), bob.addr, now + 20)
    lines = [(e[1], e[2], e[3]) for e in engine.trace.messages("busy-1")]
    assert lines == [
        (True, "10.0.0.11:5060", "INVITE sip:1002@10.0.0.1"),
        (False, "10.0.0.11:5060", "100 Trying"),
        (False, "10.0.0.12:5060", "INVITE sip:1002@10.0.0.12:5060"),
        (True, "10.0.0.12:5060", "486 Busy Here"),
        (False, "10.0.0.12:5060", "ACK sip:1002@10.0.0.12:5060"),
        (False, "10.0.0.11:5060", "486 Busy Here"),
    ]


def test_engine_keeps_no_ring_by_itself():
    assert new_engine().trace is None  # the dashboard makes it; without one, no ring


def test_a_new_clock_epoch_moves_the_times():
    t = Trace(4)
    alice = Phone("1001", "10.0.0.11")
    t.add(alice.invite("1002", "e1"), ("10.0.0.11", 5060), True, 5000)
    t.shift_times(3000)
    assert t.messages("e1")[0][0] == 2000


def test_long_first_lines_and_call_ids_are_kept_cut():
    t = Trace(2)
    alice = Phone("1001", "10.0.0.11")
    uri = "sip:1002@" + "h" * 300
    t.add(alice.request("INVITE", uri, "<sip:1002@x>", "c" * 200, 1), ("10.0.0.11", 5060),
          True, 1)
    t.flush()
    entry = t.ring[0]
    assert len(entry[3]) <= 104 and len(entry[4]) == 80  # what the ring holds stays small
    (when, inbound, peer, line, call_id), = t.messages("c" * 80)
    assert line == ("INVITE " + uri)[:96] and peer == "10.0.0.11:5060"


def test_a_call_id_or_cseq_line_that_ends_the_datagram_is_read_whole():
    for data in (b"INVITE sip:b@x SIP/2.0\r\nCSeq: 1 INVITE\r\nCall-ID: abc",
                 b"INVITE sip:b@x SIP/2.0\r\nCall-ID: abc\r\nCSeq: 1 INVITE"):
        assert summary(data) == ("INVITE sip:b@x", "abc")


def test_held_datagrams_give_the_ring_that_summarizing_each_at_once_gives():
    alice, bob = Phone("1001", "10.0.0.11"), Phone("1002", "10.0.0.12")
    seed = [5]

    def pick(n):  # a small LCG: the same sequence on CPython and MicroPython
        seed[0] = (seed[0] * 1103515245 + 12345) & 0x7FFFFFFF
        return (seed[0] >> 8) % n

    for size in (1, 3, 32):
        held, at_once = Trace(size), Trace(size)
        held.depth = 256  # a host's way, whatever runs the test
        at_once.depth = 1  # a board's way
        for n in range(1200):
            call_id = "c%d" % pick(40)
            kind = pick(4)
            if kind == 0:
                data = alice.register()  # not a call message: never in the ring
            elif kind == 1:
                data = alice.invite("1002", call_id)
            elif kind == 2:
                data = bob.answer(alice.invite("1002", call_id), 180, "Ringing")
            else:
                data = alice.request("BYE", "sip:1002@x", "<sip:1002@x>;tag=b", call_id, 2)
            peer = (alice if kind != 2 else bob).addr
            for t in (held, at_once):
                t.add(data, peer, kind != 2, n)
            if pick(150) == 0:  # the dashboard reads now and then
                assert held.call_ids() == at_once.call_ids()
        assert len(held.queue) < 256  # flushed by itself as it fills
        for call_id in ["c%d" % i for i in range(40)]:
            assert held.messages(call_id) == at_once.messages(call_id)
        assert held.call_ids() == at_once.call_ids() and len(held.ring) == size
    t = Trace(2)
    t.depth = 256
    for n in range(256):  # nobody reads: the queue empties itself when it is full
        t.add(alice.invite("1002", "q%d" % n), alice.addr, True, n)
    assert t.queue == [] and [e[4] for e in t.ring] == [b"q254", b"q255"]
