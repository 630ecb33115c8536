"""The transaction state machine (RFC 3261 §17, RFC 6026), driven directly: events in,
actions out. Runs under CPython and on the MicroPython VM (tests/test_portable.py)."""

from switchboard.message import parse
from switchboard.transaction import (
    ABSORB,
    ACCEPTED,
    ACK,
    ANSWER,
    CALLING,
    CANCEL,
    COMPLETED,
    CONFIRMED,
    DELIVER,
    FAILURE,
    GIVE_UP_TIMER,
    INVITE_CLIENT,
    INVITE_SERVER,
    LINGER,
    LINGERING,
    NON_INVITE_CLIENT,
    NON_INVITE_SERVER,
    PROCEEDING,
    PROVISIONAL,
    REQUEST,
    RETRANSMIT_TIMER,
    SEND,
    SEND_CANCEL,
    STATE_NAMES,
    STRAY_2XX,
    SUCCESS,
    T1,
    T2,
    T4,
    TERMINATED,
    TIMEOUT,
    TIMER_C,
    TRYING,
    ClientTransaction,
    ServerTransaction,
    TransactionTable,
    event_for,
    fnv_slot,
    sibling_key,
    transition,
)

GEN_MS = 4000  # transaction._GEN_MS: a const(), which a board's .mpy does not export
DEST = ("10.0.0.12", 5060)
SOURCE = ("10.0.0.11", 5060)
INVITE = (
    "INVITE sip:1002@10.0.0.12 SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKabc.1\r\n"
    "Via: SIP/2.0/UDP 10.0.0.11:5060;branch=z9hG4bKcaller\r\n"
    "Max-Forwards: 69\r\n"
    "From: <sip:1001@10.0.0.1>;tag=a\r\n"
    "To: <sip:1002@10.0.0.1>\r\n"
    "Call-ID: c1\r\n"
    "CSeq: 1 INVITE\r\n"
    "Content-Length: 0\r\n\r\n")
BUSY = (
    "SIP/2.0 486 Busy Here\r\n"
    "Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKabc.1\r\n"
    "From: <sip:1001@10.0.0.1>;tag=a\r\n"
    "To: <sip:1002@10.0.0.1>;tag=b\r\n"
    "Call-ID: c1\r\n"
    "CSeq: 1 INVITE\r\n"
    "Content-Length: 0\r\n\r\n")


def client(method="INVITE", now=0, timer_c=180000, table=None):
    table = table or TransactionTable(8, timer_c)
    text = INVITE if method == "INVITE" else INVITE.replace("INVITE", method)
    req = parse(text.encode())
    ct = ClientTransaction("z9hG4bKabc.1|" + method, method, req, text.encode(), DEST, None,
                           now, timer_c if method == "INVITE" else 0)
    assert table.add(ct)
    return table, ct


def server(method="INVITE", now=0):
    table = TransactionTable(8)
    text = INVITE if method == "INVITE" else INVITE.replace("INVITE", method)
    st = ServerTransaction("k|" + method, parse(text.encode()), SOURCE, now)
    assert table.add(st)
    return table, st


def kinds(actions):
    return [a[0] for a in actions]


def fire_all(table, until, step=100):
    """Run the table's timers every step ms up to until; [(ms, action)] in order."""
    seen = []
    now = 0
    while now <= until:
        for txn in table.due(now):
            for action in table.fire(txn, now):
                seen.append((now, action))
        now += step
    return seen


def test_every_state_and_event_is_named():
    states = (CALLING, TRYING, PROCEEDING, COMPLETED, CONFIRMED, ACCEPTED, TERMINATED)
    assert [STATE_NAMES[s] for s in states] == ["Calling", "Trying", "Proceeding", "Completed",
                                                "Confirmed", "Accepted", "Terminated"]
    kinds = (INVITE_CLIENT, NON_INVITE_CLIENT, INVITE_SERVER, NON_INVITE_SERVER)
    events = (PROVISIONAL, SUCCESS, FAILURE, RETRANSMIT_TIMER, GIVE_UP_TIMER, TIMER_C, REQUEST,
              ACK, CANCEL)
    entries = 0
    for kind in kinds:
        for state in states:
            for event in events:
                entry = transition(kind, state, event)
                if entry is not None:
                    entries += 1
                    assert entry[0] in states
                    if state >= COMPLETED:  # a finished transaction stays finished
                        assert entry[0] >= COMPLETED
    assert entries == 43
    assert transition(INVITE_SERVER, ACCEPTED, REQUEST) is None  # RFC 6026: absorbed
    assert transition(NON_INVITE_CLIENT, COMPLETED, SUCCESS) is None  # Timer K absorbs
    assert transition(INVITE_CLIENT, CALLING, ACK) is None
    for key in LINGERING:
        assert key >> 4 in kinds and key & 15 in states
    assert event_for(100) == PROVISIONAL and event_for(299) == SUCCESS
    assert event_for(300) == FAILURE and event_for(699) == FAILURE


def test_invite_client_timer_a_doubles_then_timer_b_gives_up():
    table, ct = client()
    assert ct.kind == INVITE_CLIENT and ct.state == CALLING
    seen = fire_all(table, LINGER)
    sends = [t for t, a in seen if a[0] == SEND]
    assert sends == [500, 1500, 3500, 7500, 15500, 31500]  # A: T1, 2T1, 4T1, ...
    assert seen[-1] == (LINGER, (TIMEOUT, "B"))
    assert ct.state == COMPLETED and ct.status == 408
    assert table.busy() == 0 and table.get(ct.key) is ct  # lingering (Timer D)
    assert ct.request is not None  # a late final is still ACKed
    table.expire(2 * LINGER)
    assert table.get(ct.key) is None


def test_invite_client_provisional_stops_a_and_b_and_timer_c_cancels():
    table, ct = client(timer_c=10000)
    resp = parse(BUSY.replace("486 Busy Here", "180 Ringing").encode())
    assert kinds(table.handle(ct, PROVISIONAL, 100, 180, resp)) == [DELIVER]
    assert ct.state == PROCEEDING and ct.due == 100 + 10000  # Timer C restarted
    assert fire_all(table, 10000) == []
    actions = [a for t, a in fire_all(table, 10200)]
    assert actions == [(SEND_CANCEL,), (TIMEOUT, "C")]
    assert ct.state == COMPLETED and ct.status == 408
    # the 487 that follows the CANCEL is ACKed with the response's To tag
    actions = table.handle(ct, FAILURE, 10300, 487, parse(BUSY.replace("486 Busy Here",
                                                                      "487 Terminated").encode()))
    assert kinds(actions) == [SEND]
    ack = parse(actions[0][1])
    assert ack.method == "ACK" and ack.get("to").endswith("tag=b") and actions[0][2] == DEST
    assert ack.first_value("via") == "SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKabc.1"


def test_cancel_before_a_provisional_waits_for_one():
    table, ct = client()
    assert table.handle(ct, CANCEL, 10) == []
    actions = table.handle(ct, PROVISIONAL, 20, 100, None)
    assert kinds(actions) == [SEND_CANCEL, DELIVER]
    assert table.handle(ct, CANCEL, 30) == []  # never twice


def test_invite_client_failure_acks_and_absorbs_retransmissions():
    table, ct = client()
    resp = parse(BUSY.encode())
    actions = table.handle(ct, FAILURE, 50, 486, resp)
    assert kinds(actions) == [SEND, DELIVER]
    ack = actions[0][1]
    assert ct.state == COMPLETED and ct.status == 486
    assert ct.request is None and ct.data is None  # lingering keeps only the ACK's bytes
    again = table.handle(ct, FAILURE, 60, 486, resp)
    assert again == [(SEND, ack, DEST)]
    assert kinds(table.handle(ct, SUCCESS, 70, 200, resp)) == [STRAY_2XX]
    assert table.handle(ct, PROVISIONAL, 80, 180, resp) == []


def test_invite_client_2xx_accepted_and_later_2xx_stray():
    table, ct = client()
    assert kinds(table.handle(ct, SUCCESS, 50, 200, None)) == [DELIVER]
    assert ct.state == ACCEPTED and ct.status == 200 and table.busy() == 0
    assert kinds(table.handle(ct, SUCCESS, 60, 200, None)) == [STRAY_2XX]
    assert ct.status == 200


def test_non_invite_client_timer_e_capped_at_t2_then_f():
    table, ct = client("OPTIONS")
    assert ct.kind == NON_INVITE_CLIENT and ct.state == TRYING
    seen = fire_all(table, LINGER)
    sends = [t for t, a in seen if a[0] == SEND]
    assert sends[:5] == [500, 1500, 3500, 7500, 11500]  # E doubles up to T2
    assert all(b - a == T2 for a, b in zip(sends[3:], sends[4:]))
    assert seen[-1] == (LINGER, (TIMEOUT, "F"))
    assert ct.state == TERMINATED and table.get(ct.key) is None  # forgotten at once


def test_non_invite_client_provisional_then_final_lingers_t4():
    table, ct = client("OPTIONS")
    assert kinds(table.handle(ct, PROVISIONAL, 100, 100, None)) == [DELIVER]
    assert ct.state == PROCEEDING and ct.due == 100 + T2
    assert kinds(table.handle(ct, SUCCESS, 200, 200, None)) == [DELIVER]
    assert ct.state == COMPLETED and table.busy() == 0
    assert table.handle(ct, SUCCESS, 300, 200, None) == []  # Timer K absorbs
    # kept as one integer: forgotten with its generation, T4 to T4 + GEN_MS later
    assert table.get(ct.key) is None and ct.request is None
    assert table.finished(ct.key) == (ABSORB, 200) and table.held() == 1
    table.expire(200 + T4 - 1)
    assert table.finished(ct.key) == (ABSORB, 200)
    table.expire(200 + T4 + GEN_MS)
    assert table.finished(ct.key) is None and table.held() == 0


def test_non_invite_client_cancel_is_not_an_event():
    table, ct = client("OPTIONS")
    assert table.handle(ct, CANCEL, 10) == []
    assert ct.state == TRYING


def test_invite_server_failure_timer_g_then_ack_confirms():
    table, st = server()
    assert st.kind == INVITE_SERVER and st.state == PROCEEDING
    assert table.send_response(st, 100, b"100", 0) == [(SEND, b"100", SOURCE)]
    assert table.handle(st, REQUEST, 10) == [(SEND, b"100", SOURCE)]
    assert table.send_response(st, 486, b"486", 20) == [(SEND, b"486", SOURCE)]
    assert st.state == COMPLETED and st.request is None and st.status == 486
    assert table.send_response(st, 180, b"180", 30) == []  # nothing after the final
    seen = []
    now = 20
    while now < 20 + 12000:
        now += 10
        for txn in table.due(now):
            seen.extend((now, a) for a in table.fire(txn, now))
    assert [t - 20 for t, a in seen] == [500, 1500, 3500, 7500, 11500]  # G, capped at T2
    assert all(a == (SEND, b"486", SOURCE) for t, a in seen)
    assert table.handle(st, ACK, now) == []
    assert st.state == CONFIRMED and table.busy() == 0
    assert table.handle(st, REQUEST, now + 1) == [(SEND, b"486", SOURCE)]
    table.expire(now + T4)
    assert table.get(st.key) is None  # Timer I


def test_invite_server_timer_h_gives_up_without_ack():
    table, st = server()
    table.send_response(st, 500, b"500", 0)
    seen = fire_all(table, LINGER + 100, 10)
    assert st.state == TERMINATED and table.get(st.key) is None
    assert seen and seen[-1][0] < LINGER


def test_invite_server_2xx_accepted_takes_more_2xx_only():
    table, st = server()
    table.send_response(st, 200, b"200a", 0)
    assert st.state == ACCEPTED and table.busy() == 0
    assert table.send_response(st, 200, b"200b", 5) == [(SEND, b"200b", SOURCE)]
    assert st.status == 200
    assert table.handle(st, REQUEST, 6) == []  # RFC 6026 §8.7: a retransmission is absorbed
    assert table.get(st.key) is None and table.finished(st.key) == (ABSORB, 200)
    assert table.send_response(st, 486, b"486", 7) == []
    assert table.handle(st, ACK, 8) == []


def test_non_invite_server_final_lingers_timer_j():
    table, st = server("OPTIONS")
    assert st.kind == NON_INVITE_SERVER and st.state == TRYING
    assert table.handle(st, REQUEST, 1) == []  # nothing sent yet
    table.send_response(st, 200, b"200", 2)
    assert st.state == COMPLETED and table.busy() == 0
    assert table.handle(st, REQUEST, 3) == [(SEND, b"200", SOURCE)]
    table.expire(2 + LINGER)
    assert table.get(st.key) is None


def test_non_invite_server_answer_rebuilt_is_kept_as_an_integer():
    table, st = server("BYE")
    st.again = ANSWER  # the user can rebuild its answer: no bytes kept
    table.send_response(st, 200, b"200", 2)
    assert table.get(st.key) is None and st.request is None and st.last == b"200"
    assert table.finished(st.key) == (ANSWER, 200)
    assert table.finished("k|OPTIONS") is None and table.finished("k|INVITE") is None
    table.expire(2 + LINGER)  # Timer J is at least 64*T1
    assert table.finished(st.key) == (ANSWER, 200)
    table.expire(2 + LINGER + GEN_MS)
    assert table.finished(st.key) is None and table.held() == 0 and table.gens == {}


def test_client_invite_2xx_forgotten_and_non_2xx_kept_whole_for_its_ack():
    table, ok = client()
    table.handle(ok, SUCCESS, 10, 200, parse(BUSY.replace("486 Busy Here", "200 OK").encode()))
    assert ok.state == ACCEPTED and table.get(ok.key) is None and table.held() == 0
    table, busy = client()
    table.handle(busy, FAILURE, 10, 486, parse(BUSY.encode()))
    assert table.get(busy.key) is busy and busy.ack is not None  # Timer D: the ACK's bytes
    assert table.finished(busy.key) is None


def test_compact_entries_are_small_ints_and_bounded():
    for key in ("z9hG4bK.1|10.0.0.1:5060|INVITE", "é€|x", ""):
        slot, check = fnv_slot(key)
        assert 0 <= slot < 2 ** 30 and 0 <= check < 2 ** 18
        assert (check << 12 | 3 << 10 | 699) < 2 ** 30  # the packed value stays a small int
    assert fnv_slot("a|INVITE") != fnv_slot("b|INVITE")
    table = TransactionTable(1)  # keeps at most keep_limit finished ones
    keep = table.keep_limit
    assert keep >= 16
    for i in range(keep + 5):
        st = ServerTransaction("k%d|BYE" % i, parse(INVITE.replace("INVITE", "BYE").encode()),
                               SOURCE, i * GEN_MS)
        assert table.add(st)
        st.again = ANSWER
        table.send_response(st, 200, b"200", i * GEN_MS)
        assert table.held() <= keep
    assert table.finished("k0|BYE") is None  # the oldest generations made room
    assert table.finished("k%d|BYE" % (keep + 4)) == (ANSWER, 200)


def test_shift_times_moves_every_stored_time():
    table, ct = client()
    table2, st = server("BYE")
    st.again = ANSWER
    table2.send_response(st, 200, b"200", 1000)
    due, give_up, timer_c = ct.due, ct.give_up, ct.timer_c
    table.shift_times(400)
    assert (ct.due, ct.give_up, ct.timer_c) == (due - 400, give_up - 400, timer_c - 400)
    assert table.next_due == due - 400
    (until,) = list(table2.gens)
    table2.shift_times(1000)
    assert list(table2.gens) == [until - 1000]
    table2.expire(until - 1001)
    assert table2.finished(st.key) == (ANSWER, 200)
    table2.expire(until - 1000)
    assert table2.finished(st.key) is None


def test_timers_due_together_fire_in_creation_order_not_dict_order():
    for order in (("b", "a", "c"), ("c", "b", "a")):
        table = TransactionTable(8)
        made = []
        for name in order:
            st = ServerTransaction(name + "|INVITE", parse(INVITE.encode()), SOURCE, 0)
            table.add(st)
            table.send_response(st, 486, name.encode(), 0)
            made.append(st)
        fired = table.due(T1)
        assert [t.key for t in fired] == [t.key for t in made]


def test_full_table_refuses_work_and_evicts_lingering_first():
    table = TransactionTable(2)
    a = ServerTransaction("a|OPTIONS", parse(INVITE.replace("INVITE", "OPTIONS").encode()),
                          SOURCE, 0)
    b = ServerTransaction("b|OPTIONS", parse(INVITE.replace("INVITE", "OPTIONS").encode()),
                          SOURCE, 0)
    c = ServerTransaction("c|OPTIONS", parse(INVITE.replace("INVITE", "OPTIONS").encode()),
                          SOURCE, 0)
    assert table.add(a) and table.add(b)
    assert not table.add(c)  # two in progress: full
    table.send_response(a, 200, b"ok", 1)  # a lingers now
    assert table.add(c)
    assert table.get("a|OPTIONS") is None and a.request is None  # evicted, released


def test_sibling_key():
    assert sibling_key("z9hG4bKx|10.0.0.11:5060|CANCEL", "INVITE") == \
        "z9hG4bKx|10.0.0.11:5060|INVITE"


def test_no_module_but_transaction_writes_a_state():
    """The proxy and the engine never set a transaction state themselves."""
    import sys

    if sys.implementation.name != "cpython":
        return  # the VM has the compiled modules only, not their sources at this path
    import os

    here = os.path.dirname(os.path.abspath(__file__))
    lib = os.path.join(os.path.dirname(os.path.dirname(here)), "lib", "switchboard")
    for name in ("proxy.py", "engine.py", "router.py"):
        with open(os.path.join(lib, name)) as f:
            text = f.read()
        assert ".state =" not in text, name
