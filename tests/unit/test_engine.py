"""The engine in memory: registrar, proxy, transactions, calls (RFC 3261 §10, §16, §17)."""

from flows import PROXY, Phone, first_line, new_engine, snapshot, status

from switchboard.message import parse


class Rig:
    def __init__(self, auth=None, router=None, **overrides):
        self.logs = []
        self.engine = new_engine(overrides, log=lambda level, text: self.logs.append(text),
                                 auth=auth, router=router)
        self.now = 1000

    def send(self, phone, data, advance=10):
        self.now += advance
        return self.engine.receive(data, phone.addr, self.now)

    def tick(self, advance):
        self.now += advance
        return self.engine.tick(self.now)

    def call(self, caller, callee_phone, call_id, callee="1002"):
        """INVITE from caller through to callee_phone; returns (invite, what the callee got)."""
        invite = caller.invite(callee, call_id)
        out = self.send(caller, invite)
        assert [status(d) for d, _ in out][0] == 100
        forwarded = [d for d, a in out if a == callee_phone.addr]
        assert forwarded, out
        return invite, forwarded[0]


def statuses(out):
    return [status(d) for d, _ in out]


def test_register_then_call_answered_and_hung_up():
    rig = Rig()
    alice, bob = Phone("1001", "10.0.0.11"), Phone("1002", "10.0.0.12", 5070)
    assert statuses(rig.send(alice, alice.register())) == [200]
    assert statuses(rig.send(bob, bob.register())) == [200]
    invite, at_bob = rig.call(alice, bob, "c1")
    fwd = parse(at_bob)
    assert fwd.uri == "sip:1002@10.0.0.12:5070"
    assert fwd.get("max-forwards") == "69"
    assert fwd.values("record-route") == ["<sip:10.0.0.1:5060;lr>"]
    vias = fwd.values("via")
    assert vias[0].startswith("SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK")
    assert "received=10.0.0.11" in vias[1] and "rport=5060" in vias[1]
    assert fwd.body == parse(invite).body
    out = rig.send(bob, bob.answer(at_bob, 180, "Ringing"))
    assert out[0][1] == alice.addr and status(out[0][0]) == 180
    assert len(parse(out[0][0]).values("via")) == 1  # our Via removed
    assert snapshot(rig.engine, rig.now)["calls"][0]["state"] == "ringing"
    out = rig.send(bob, bob.answer(at_bob, 200, "OK", sdp=True))
    ok = out[0][0]
    assert status(ok) == 200 and out[0][1] == alice.addr
    call = snapshot(rig.engine, rig.now)["calls"][0]
    assert call["state"] == "answered" and call["answer"]["address"] == "10.0.0.12"
    assert call["offer"]["codecs"] == ["PCMU", "PCMA", "telephone-event"]
    out = rig.send(alice, alice.in_dialog("ACK", ok, 1))
    assert [(first_line(d).split()[0], a) for d, a in out] == [("ACK", bob.addr)]
    rig.now += 5000
    out = rig.send(alice, alice.in_dialog("BYE", ok, 2))
    assert first_line(out[0][0]).startswith("BYE sip:1002@10.0.0.12:5070")
    out = rig.send(bob, bob.answer(out[0][0], 200, "OK"))
    assert statuses(out) == [200] and out[0][1] == alice.addr
    snap = snapshot(rig.engine, rig.now)
    assert snap["calls"] == []
    assert snap["history"][0]["state"] == "ended" and snap["history"][0]["duration"] == 5
    assert any("call c1 1001 -> 1002 answered" in line for line in rig.logs)


def test_retransmitted_invite_is_absorbed_and_last_response_resent():
    rig = Rig()
    alice, bob = Phone("1001", "10.0.0.11"), Phone("1002", "10.0.0.12")
    rig.send(bob, bob.register())
    invite, at_bob = rig.call(alice, bob, "c1")
    out = rig.send(alice, invite)
    assert statuses(out) == [100] and out[0][1] == alice.addr
    rig.send(bob, bob.answer(at_bob, 180, "Ringing"))
    assert statuses(rig.send(alice, invite)) == [180]
    assert rig.engine.counters["retransmitted"] == 2


def test_client_transaction_retransmits_then_times_out_with_408():
    rig = Rig()
    alice, bob = Phone("1001", "10.0.0.11"), Phone("1002", "10.0.0.12")
    rig.send(bob, bob.register())
    invite, at_bob = rig.call(alice, bob, "c1")
    resent = []
    for _ in range(200):  # Timer A doubles from 500 ms; Timer B gives up at 32 s
        for data, dest in rig.tick(250):
            resent.append((first_line(data), dest))
    invites = [r for r in resent if r[0].startswith("INVITE")]
    assert 5 <= len(invites) <= 7 and invites[0][1] == bob.addr
    assert ("SIP/2.0 408 Request Timeout", alice.addr) in resent


def test_non_invite_timeout_and_retransmission_cap():
    rig = Rig()
    alice, bob = Phone("1001", "10.0.0.11"), Phone("1002", "10.0.0.12")
    rig.send(bob, bob.register())
    msg = alice.request("MESSAGE", "sip:1002@10.0.0.1", "<sip:1002@10.0.0.1>", "m1", 1,
                        ["Content-Type: text/plain"])
    out = rig.send(alice, msg)
    assert [a for _, a in out] == [bob.addr]  # no 100 for non-INVITE
    times = []
    for _ in range(400):
        for data, _ in rig.tick(100):
            times.append((rig.now, first_line(data)))
    sends = [t for t, line in times if line.startswith("MESSAGE")]
    gaps = [b - a for a, b in zip(sends, sends[1:])]
    assert max(gaps) <= 4000 + 100  # Timer E capped at T2
    assert any(line == "SIP/2.0 408 Request Timeout" for _, line in times)


def test_forking_first_2xx_wins_and_other_branch_cancelled():
    rig = Rig()
    alice = Phone("1001", "10.0.0.11")
    desk, soft = Phone("1002", "10.0.0.12"), Phone("1002", "10.0.0.22")
    rig.send(desk, desk.register())
    rig.send(soft, soft.register())
    out = rig.send(alice, alice.invite("1002", "fork"))
    branches = {a: d for d, a in out if a != alice.addr}
    assert set(branches) == {desk.addr, soft.addr}
    rig.send(desk, desk.answer(branches[desk.addr], 180, "Ringing", tag="d"))
    rig.send(soft, soft.answer(branches[soft.addr], 180, "Ringing", tag="s"))
    out = rig.send(soft, soft.answer(branches[soft.addr], 200, "OK", tag="s", sdp=True))
    kinds = [(first_line(d), a) for d, a in out]
    assert ("SIP/2.0 200 OK", alice.addr) in kinds
    cancels = [a for line, a in kinds if line.startswith("CANCEL")]
    assert cancels == [desk.addr]
    cancel = [d for d, a in out if a == desk.addr][0]
    assert parse(cancel).values("via")[0] == parse(branches[desk.addr]).values("via")[0]
    rig.send(desk, desk.answer(cancel, 200, "OK"))
    out = rig.send(desk, desk.answer(branches[desk.addr], 487, "Request Terminated", tag="d"))
    assert [(first_line(d).split()[0], a) for d, a in out] == [("ACK", desk.addr)]


def test_forking_all_fail_relays_best_response():
    rig = Rig()
    alice = Phone("1001", "10.0.0.11")
    a, b = Phone("1002", "10.0.0.12"), Phone("1002", "10.0.0.22")
    rig.send(a, a.register())
    rig.send(b, b.register())
    out = rig.send(alice, alice.invite("1002", "fork"))
    branches = {addr: d for d, addr in out if addr != alice.addr}
    out = rig.send(a, a.answer(branches[a.addr], 503, "Service Unavailable", tag="a"))
    assert all(addr != alice.addr for _, addr in out)  # waits for the other branch
    out = rig.send(b, b.answer(branches[b.addr], 486, "Busy Here", tag="b"))
    assert (486, alice.addr) in [(status(d), addr) for d, addr in out]


def test_cancel_before_provisional_waits_for_it():
    rig = Rig()
    alice, bob = Phone("1001", "10.0.0.11"), Phone("1002", "10.0.0.12")
    rig.send(bob, bob.register())
    invite, at_bob = rig.call(alice, bob, "c1")
    out = rig.send(alice, alice.cancel(invite))
    assert [(status(d), a) for d, a in out] == [(200, alice.addr)]  # nothing to bob yet (§9.1)
    out = rig.send(bob, bob.answer(at_bob, 180, "Ringing"))
    assert [first_line(d).split()[0] for d, a in out if a == bob.addr] == ["CANCEL"]


def test_cancel_unknown_transaction_481():
    rig = Rig()
    alice = Phone("1001", "10.0.0.11")
    out = rig.send(alice, alice.cancel(alice.invite("1002", "nothing")))
    assert statuses(out) == [481]


def test_2xx_retransmission_relayed_statelessly():
    rig = Rig()
    alice, bob = Phone("1001", "10.0.0.11"), Phone("1002", "10.0.0.12")
    rig.send(bob, bob.register())
    invite, at_bob = rig.call(alice, bob, "c1")
    ok = bob.answer(at_bob, 200, "OK", sdp=True)
    assert statuses(rig.send(bob, ok)) == [200]
    out = rig.send(bob, ok, advance=500)
    assert [(status(d), a) for d, a in out] == [(200, alice.addr)]


def test_max_forwards_zero_gets_483_and_loop_gets_482():
    rig = Rig()
    alice, bob = Phone("1001", "10.0.0.11"), Phone("1002", "10.0.0.12")
    rig.send(bob, bob.register())
    invite = alice.invite("1002", "hops").replace(b"Max-Forwards: 70", b"Max-Forwards: 0")
    assert statuses(rig.send(alice, invite))[-1] == 483
    invite, at_bob = rig.call(alice, bob, "loop")
    # another proxy sends our forwarded request back with the Request-URI it had when it first
    # reached us: a loop (§16.3 step 4), not a spiral
    looped = at_bob.replace(b"INVITE sip:1002@10.0.0.12:5060", b"INVITE sip:1002@10.0.0.1", 1)
    other = b"\r\nVia: SIP/2.0/UDP 10.0.0.99;branch=z9hG4bKo\r\nVia:"
    looped = looped.replace(b"\r\nVia:", other, 1)
    out = rig.engine.receive(looped, ("10.0.0.99", 5060), rig.now + 5)
    assert statuses(out) == [100, 482]
    # a spiral (new Request-URI) is forwarded
    spiral = at_bob.replace(b"\r\nVia:", other.replace(b"bKo", b"bKp"), 1)
    out = rig.engine.receive(spiral, ("10.0.0.99", 5060), rig.now + 6)
    assert statuses(out) == [100, 0]


def test_requests_to_the_server_itself():
    rig = Rig()
    alice = Phone("1001", "10.0.0.11")
    opts = alice.request("OPTIONS", "sip:10.0.0.1", "<sip:10.0.0.1>", "o1", 1)
    out = rig.send(alice, opts)
    assert statuses(out) == [200]
    assert "INVITE" in parse(out[0][0]).get("allow")
    sub = alice.request("SUBSCRIBE", "sip:10.0.0.1", "<sip:10.0.0.1>", "s1", 1)
    assert statuses(rig.send(alice, sub)) == [405]


def test_keepalive_pong():
    rig = Rig()
    alice = Phone("1001", "10.0.0.11")
    assert rig.send(alice, b"\r\n\r\n") == [(b"\r\n", alice.addr)]
    assert rig.send(alice, b"\r\n") == []


def test_in_dialog_request_to_phone_behind_nat_uses_registered_source():
    rig = Rig()
    alice = Phone("1001", "10.0.0.11")
    bob = Phone("1002", "10.0.0.12", 5070)
    contact = "<sip:1002@192.168.9.9:5060>"  # what the phone thinks its address is
    rig.send(bob, bob.register(contact=contact))
    out = rig.send(alice, alice.invite("1002", "nat"))
    assert out[-1][1] == bob.addr
    bye = alice.request("BYE", "sip:1002@192.168.9.9:5060", "<sip:1002@10.0.0.1>;tag=x", "nat", 2,
                        ["Route: <sip:10.0.0.1:5060;lr>"])
    out = rig.send(alice, bye)
    assert out[-1][1] == bob.addr


def test_bad_requests_get_400_with_reason_and_nothing_raises():
    rig = Rig()
    alice = Phone("1001", "10.0.0.11")
    for reason in ("Missing Call-ID", "CSeq method does not match"):
        reg = alice.register()
        if reason.startswith("Missing"):
            reg = reg.replace(b"Call-ID: reg-1001\r\n", b"")
        else:
            reg = reg.replace(b"REGISTER sip:", b"OPTIONS sip:", 1)
        out = rig.send(alice, reg)
        assert [first_line(d) for d, _ in out] == ["SIP/2.0 400 " + reason]
    broken = b"INVITE sip:1002@10.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.11;branch=z9hG4bKx\r\n" \
             b"From: <sip:1001@x>;tag=1\r\nTo: \"unbalanced <sip:1002@x>\r\nCall-ID: b\r\n" \
             b"CSeq: 1 INVITE\r\n\r\n"
    out = rig.send(alice, broken)
    assert first_line(out[0][0]) == "SIP/2.0 400 Unbalanced quotes"
    assert rig.send(alice, b"garbage without via\r\n\r\n") == []
    assert rig.send(alice, b"SIP/2.0 200 OK\r\nVia: nonsense\r\n\r\n") == []
    assert rig.send(alice, b"X" * 5000) == []
    assert rig.engine.counters["oversize"] == 1
    assert rig.engine.counters["internal_errors"] == 0
    assert rig.engine.counters["parse_errors"] >= 3


def test_version_505():
    rig = Rig()
    alice = Phone("1001", "10.0.0.11")
    reg = alice.register().replace(b" SIP/2.0\r\n", b" SIP/3.0\r\n", 1)
    assert first_line(rig.send(alice, reg)[0][0]) == "SIP/2.0 505 Version Not Supported"


def test_transaction_table_full_answers_503():
    rig = Rig(MAX_TRANSACTIONS=4)
    alice, bob = Phone("1001", "10.0.0.11"), Phone("1002", "10.0.0.12")
    rig.send(bob, bob.register())
    got = []
    for i in range(4):
        got.append(statuses(rig.send(alice, alice.invite("1002", "t%d" % i))))
    assert got[0] == [100, 0]
    assert [503] in got
    assert rig.engine.txns.busy() <= 4


def test_calls_table_full_answers_503():
    rig = Rig(MAX_CALLS=1)
    alice, bob = Phone("1001", "10.0.0.11"), Phone("1002", "10.0.0.12")
    rig.send(bob, bob.register())
    rig.call(alice, bob, "first")
    out = rig.send(alice, alice.invite("1002", "second"))
    assert statuses(out) == [100, 503]
    assert parse(out[1][0]).get("retry-after")


def test_call_without_bye_closed_after_idle_timeout():
    rig = Rig(CALL_IDLE_TIMEOUT=60)
    alice, bob = Phone("1001", "10.0.0.11"), Phone("1002", "10.0.0.12")
    rig.send(bob, bob.register())
    invite, at_bob = rig.call(alice, bob, "gone")
    ok = rig.send(bob, bob.answer(at_bob, 200, "OK", sdp=True))[0][0]
    rig.send(alice, alice.in_dialog("ACK", ok, 1))
    rig.tick(30000)
    assert snapshot(rig.engine, rig.now)["calls"][0]["state"] == "answered"
    rig.tick(31000)
    snap = snapshot(rig.engine, rig.now)
    assert snap["calls"] == [] and snap["history"][0]["reason"] == "idle timeout"


def test_history_is_bounded_newest_first():
    rig = Rig(CALL_HISTORY=3)
    alice = Phone("1001", "10.0.0.11")
    for i in range(5):
        invite = alice.invite("9999", "h%d" % i)
        out = rig.send(alice, invite)
        rig.send(alice, alice.ack(invite, out[-1][0]))
    history = snapshot(rig.engine, rig.now)["history"]
    assert [c["call_id"] for c in history] == ["h4", "h3", "h2"]
    assert history[0]["state"] == "failed" and history[0]["status"] == 404


def test_engine_never_raises_on_internal_error():
    rig = Rig()
    alice = Phone("1001", "10.0.0.11")

    def boom(*args):
        raise RuntimeError("bug")

    rig.engine.registrar.register = boom
    assert rig.send(alice, alice.register()) == []
    assert rig.engine.counters["internal_errors"] == 1
    assert any("internal error" in line for line in rig.logs)
    # the transaction made for it does not hold a place in the table for ever
    assert rig.engine.txns.busy() == 0 and rig.engine.txns.all == {}


def test_auth_hook_runs_before_registrar():
    alice = Phone("1001", "10.0.0.11")
    seen = []

    def auth(engine, req, source, now):
        seen.append(req.method)
        return 401, "Unauthorized", [("WWW-Authenticate", 'Digest realm="x", nonce="n"')]

    rig = Rig(auth=auth)
    out = rig.send(alice, alice.register())
    assert statuses(out) == [401] and seen == ["REGISTER"]
    assert rig.engine.location.count == 0


def test_registrations_are_a_copy():
    rig = Rig()
    alice = Phone("1001", "10.0.0.11")
    rig.send(alice, alice.register())
    regs = rig.engine.registrations(rig.now)
    regs.clear()
    assert rig.engine.registrations(rig.now)[0]["aor"] == "sip:1001@%s" % PROXY[0]


def test_response_without_via_is_dropped():
    """Found by tools/fuzz.py: a response whose Via line was mangled."""
    rig = Rig()
    alice = Phone("1001", "10.0.0.11")
    data = b"SIP/2.0 100 Trying\r\r\n.Via: SIP/2.0/UDP 10.0.0.11\r\r\nCSeq: 1 INVITE\r\r\n\r\r\n"
    assert rig.send(alice, data) == []
    assert rig.engine.counters["internal_errors"] == 0
    assert rig.engine.counters["dropped"] == 1


def test_forked_message_first_2xx_relayed_no_cancel():
    rig = Rig()
    alice = Phone("1001", "10.0.0.11")
    a, b = Phone("1002", "10.0.0.12"), Phone("1002", "10.0.0.22")
    rig.send(a, a.register())
    rig.send(b, b.register())
    msg = alice.request("MESSAGE", "sip:1002@10.0.0.1", "<sip:1002@10.0.0.1>", "im", 1,
                        ["Content-Type: text/plain"])
    out = rig.send(alice, msg)
    branches = {addr: d for d, addr in out}
    assert set(branches) == {a.addr, b.addr}
    out = rig.send(a, a.answer(branches[a.addr], 200, "OK", tag="a"))
    assert [(status(d), addr) for d, addr in out] == [(200, alice.addr)]
    out = rig.send(b, b.answer(branches[b.addr], 200, "OK", tag="b"))
    assert out == []  # the transaction already has its answer


def test_relayed_request_keeps_unknown_headers_order_and_body_byte_for_byte():
    rig = Rig()
    alice, bob = Phone("1001", "10.0.0.11"), Phone("1002", "10.0.0.12")
    rig.send(bob, bob.register())
    invite = alice.invite("1002", "bytes")
    odd = (b"X-Zeta:  spaced   value\r\nallow: INVITE,ACK\r\nX-Alpha:1\r\n"
           b"Subject: \xc3\xa9t\xc3\xa9\r\n")
    invite = invite.replace(b"Max-Forwards: 70\r\n", b"Max-Forwards: 70\r\n" + odd, 1)
    out = rig.send(alice, invite)
    fwd = [d for d, a in out if a == bob.addr][0]
    assert odd in fwd  # unknown headers, their spelling, spacing and order, untouched
    head, body = invite.split(b"\r\n\r\n", 1)
    assert fwd.endswith(b"\r\n\r\n" + body)
    # only our Via, Record-Route, Max-Forwards and the Request-URI differ
    sent = [line for line in head.split(b"\r\n")[1:] if not line.startswith(b"Max-Forwards")]
    got = fwd.split(b"\r\n\r\n", 1)[0].split(b"\r\n")[1:]
    extra = [line for line in got if line not in sent]
    assert [line.split(b":")[0] for line in extra] == [b"Record-Route", b"Via", b"Via",
                                                       b"Max-Forwards"]


def test_request_uri_in_angle_brackets_is_400():
    """RFC 4475 ltgtruri: the Request-URI may not be enclosed in <>."""
    rig = Rig()
    alice = Phone("1001", "10.0.0.11")
    data = alice.invite("1002", "lt").replace(b"INVITE sip:1002@10.0.0.1 ",
                                              b"INVITE <sip:1002@10.0.0.1> ")
    out = rig.send(alice, data)
    assert [first_line(d) for d, _ in out] == ["SIP/2.0 400 Malformed Request-URI"]


def test_finished_calls_leave_no_reference_cycles():
    """Transactions free their branches and messages when forgotten, so CPython's cyclic
    collector has nothing to pause for (bench/gc_cycles.py measured 34 objects a call)."""
    import gc
    import sys

    if sys.implementation.name != "cpython":
        return  # a property of CPython's reference counting; MicroPython has none

    rig = Rig(RATE_LIMIT=0)
    alice, bob = Phone("1001", "10.0.0.11"), Phone("1002", "10.0.0.12")
    rig.send(bob, bob.register())
    gc.collect()
    gc.disable()
    try:
        for i in range(40):
            invite, at_bob = rig.call(alice, bob, "cyc%d" % i)
            ok = rig.send(bob, bob.answer(at_bob, 200, "OK", sdp=True))[0][0]
            rig.send(alice, alice.in_dialog("ACK", ok, 1))
            out = rig.send(alice, alice.in_dialog("BYE", ok, 2))
            rig.send(bob, bob.answer(out[0][0], 200, "OK"))
        rig.tick(40000)  # every transaction's linger time is over
        assert rig.engine.txns.all == {}
        found = gc.collect()
    finally:
        gc.enable()
    assert found < 40, found  # before the fix: about 34 objects per call


class FailingRouter:
    """A router that runs out of memory (as a board's 190 KB heap can)."""

    def route(self, req, now, caller):
        raise MemoryError()

    def next(self, plan, best_status, now):
        return None


def test_memory_error_is_answered_503_collected_counted_and_logged():
    rig = Rig(router=FailingRouter())
    alice = Phone("1001", "10.0.0.11")
    invite = alice.invite("1002", "oom-1")
    out = rig.send(alice, invite)
    assert statuses(out) == [100, 503]
    resp = parse(out[1][0])
    assert resp.get("retry-after") == "5" and out[1][1] == alice.addr
    assert rig.engine.counters["memory_errors"] == 1
    assert rig.engine.counters["internal_errors"] == 0
    assert any("out of memory" in line for line in rig.logs)
    # answered on its transaction: a retransmission gets the same 503, and the table
    # holds nothing but the finished transaction
    again = rig.send(alice, invite)
    assert again == [(out[1][0], alice.addr)]
    assert rig.engine.txns.busy() == 1 and rig.engine.counters["retransmitted"] == 1
    # an ACK is never answered, but still counted
    out = rig.send(alice, alice.request("ACK", "sip:1002@%s" % PROXY[0],
                                        "<sip:1002@%s>;tag=x" % PROXY[0], "oom-2", 1))
    assert out == [] and rig.engine.counters["memory_errors"] == 2


def test_memory_error_in_timers_is_counted():
    rig = Rig()

    def boom(now, out):
        raise MemoryError()

    rig.engine.proxy.tick = boom
    assert rig.tick(10) == []
    assert rig.engine.counters["memory_errors"] == 1
    assert rig.engine.counters["internal_errors"] == 0


def test_results_of_entry_points_are_independent():
    rig = Rig()
    alice, bob = Phone("1001", "10.0.0.11"), Phone("1002", "10.0.0.12")
    rig.send(bob, bob.register())
    first = rig.send(alice, alice.invite("1002", "ind-1"))
    kept = list(first)
    assert rig.tick(500) and first == kept  # the retransmission went to tick's own list
    assert rig.engine.counters["sent"] == 1 + len(first) + 1


def test_shift_times_changes_nothing_a_phone_sees():
    """Engine.shift_times (a board's clock restarts its epoch every 2**28 ms, boot.epochs):
    an engine whose clock is moved back halfway answers every datagram exactly as one whose
    clock ran on, through registration expiry, a call's setup and end, a rebuilt answer for a
    retransmitted BYE and the end of its lingering, and a password lockout."""
    shift = 1 << 28
    users = "1001,1002,1003:pw"  # carol alone has a password
    plain, moved = Rig(SIP_USERS=users), Rig(SIP_USERS=users)
    alice, bob = Phone("1001", "10.0.0.11"), Phone("1002", "10.0.0.12", 5070)
    carol = Phone("1003", "10.0.0.13")
    offset = [0]

    def both(phone, data, advance=10):
        plain.now += advance
        moved.now += advance
        a = plain.engine.receive(data, phone.addr, plain.now)
        b = moved.engine.receive(data, phone.addr, moved.now - offset[0])
        assert a == b
        return a

    def tick(advance):
        for _ in range(0, advance, 500):
            plain.now += 500
            moved.now += 500
            assert plain.engine.tick(plain.now) == moved.engine.tick(moved.now - offset[0])

    both(alice, alice.register(expires=60))
    bob_register = bob.register()
    both(bob, bob_register)
    for i in range(6):  # wrong passwords: carol's address is locked out for a while
        both(carol, carol.register(cseq=i + 1).replace(
            b"Contact:", b'Authorization: Digest username="1003", realm="10.0.0.1", '
            b'nonce="x", uri="sip:10.0.0.1", response="0"\r\nContact:'))
    invite = alice.invite("1002", "c1")
    at_bob = [d for d, a in both(alice, invite) if a == bob.addr][0]
    both(bob, bob.answer(at_bob, 180, "Ringing"))
    ok = both(bob, bob.answer(at_bob, 200, "OK", sdp=True))[0][0]
    both(alice, alice.in_dialog("ACK", ok, 1))
    tick(3000)
    moved.engine.shift_times(shift)  # the new epoch, mid-call
    offset[0] = shift
    bye = alice.in_dialog("BYE", ok, 2)
    at_bob = [d for d, a in both(alice, bye) if a == bob.addr][0]
    assert status(both(bob, bob.answer(at_bob, 200, "OK"))[0][0]) == 200
    tick(20000)
    again = both(alice, bye)  # within Timer J: the answer rebuilt
    assert [status(d) for d, _ in again] == [200] and again[0][1] == alice.addr
    assert statuses(both(bob, bob_register)) == [200]  # from before the epoch: rebuilt too
    tick(17000)  # Timer J, rounded up to its generation, and the next housekeeping
    assert statuses(both(bob, bob_register)) == [500]  # its Timer J is over: out of order
    tick(50000)  # alice's 60 s binding has expired, the BYE's transaction is forgotten
    late = both(alice, bye)
    assert late and [a for _, a in late] == [bob.addr]  # a new BYE now: relayed again
    out = both(bob, bob.invite("1001", "c2"))
    assert statuses(out)[-1] == 480  # no live contact for 1001
    mnow = moved.now - offset[0]
    assert plain.engine.call_history(plain.now) == moved.engine.call_history(mnow)
    assert plain.engine.registrations(plain.now) == moved.engine.registrations(mnow)
