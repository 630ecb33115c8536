"""Reachability pings (qualify.py) through the engine: OPTIONS to each contact, round-trip
time, unreachable after an unanswered ping, left out of forking, 480 when none answers."""

from flows import Phone, first_line, new_engine, status

from switchboard.message import parse
from switchboard.qualify import BATCH, SCAN_MS


class Rig:
    def __init__(self, **overrides):
        settings = {"QUALIFY_INTERVAL": 2}
        settings.update(overrides)
        self.engine = new_engine(settings)
        self.now = 1000

    def send(self, phone, data, advance=10):
        self.now += advance
        return self.engine.receive(data, phone.addr, self.now)

    def run(self, ms, step=100):
        """Tick for ms; every datagram sent."""
        out = []
        for _ in range(ms // step):
            self.now += step
            out += self.engine.tick(self.now)
        return out


def pings(out, phone=None):
    return [d for d, a in out if d.startswith(b"OPTIONS ") and (phone is None or a == phone.addr)]


def contact_state(engine, user, now):
    b = engine.location.lookup(user, now)[0]
    return engine.qualify.state(b)


def test_ping_after_one_interval_answer_gives_rtt_and_silence_unreachable():
    rig = Rig()
    alice = Phone("1001", "10.0.0.11")
    assert status(rig.send(alice, alice.register())[0][0]) == 200
    assert pings(rig.run(1500)) == []  # the REGISTER itself was the first sign of life
    sent = []
    for _ in range(10):
        sent += pings(rig.run(100), alice)
        if sent:
            break
    assert len(sent) == 1
    ping = parse(sent[0])
    assert ping.uri == "sip:1001@10.0.0.11:5060" and ping.cseq() == (1, "OPTIONS")
    assert ping.top_via().branch().startswith("z9hG4bKsbq")
    rig.now += 42
    before = dict(rig.engine.counters)
    assert rig.engine.receive(alice.answer(sent[0], 200, "OK"), alice.addr, rig.now) == []
    assert rig.engine.counters["dropped"] == before["dropped"]  # taken by qualify
    assert contact_state(rig.engine, "1001", rig.now) == (True, 42)
    # alice goes silent: the next ping (2 s later) is retransmitted once, then she is out
    silent = rig.run(3600)
    assert len(pings(silent, alice)) == 2 and len(set(pings(silent, alice))) == 1
    assert contact_state(rig.engine, "1001", rig.now)[0] is False
    assert rig.engine.qualify.stats()["lost"] == 1


def test_unreachable_callee_gets_480_at_once_and_comes_back_when_it_answers():
    rig = Rig()
    alice, bob = Phone("1001", "10.0.0.11"), Phone("1002", "10.0.0.12")
    for p in (alice, bob):
        rig.send(p, p.register())
    out = rig.run(2400)
    rig.now += 5
    for p in (alice, bob):
        rig.engine.receive(p.answer(pings(out, p)[0], 200, "OK"), p.addr, rig.now)
    out = rig.run(2400)  # bob stops answering
    rig.now += 5
    rig.engine.receive(alice.answer(pings(out, alice)[0], 200, "OK"), alice.addr, rig.now)
    rig.run(1400)
    assert contact_state(rig.engine, "1002", rig.now)[0] is False
    out = rig.send(alice, alice.invite("1002", "q-call"))
    assert [status(d) for d, _ in out] == [100, 480]
    assert not [d for d, a in out if a == bob.addr]
    # a REGISTER refresh counts as an answer
    rig.send(bob, bob.register(cseq=2))
    rig.run(600)
    assert contact_state(rig.engine, "1002", rig.now)[0] is True
    out = rig.send(alice, alice.invite("1002", "q-call-2"))
    assert [first_line(d) for d, a in out if a == bob.addr] == [
        "INVITE sip:1002@10.0.0.12:5060 SIP/2.0"]


def test_forking_skips_the_contact_that_stopped_answering():
    rig = Rig()
    desk, soft = Phone("1002", "10.0.0.21"), Phone("1002", "10.0.0.22")
    alice = Phone("1001", "10.0.0.11")
    for p in (desk, soft, alice):
        rig.send(p, p.register())
    out = rig.run(2400)
    rig.now += 5
    for p in (desk, soft):
        rig.engine.receive(p.answer(pings(out, p)[0], 200, "OK"), p.addr, rig.now)
    out = rig.run(2400)  # the soft phone stops answering
    rig.now += 5
    rig.engine.receive(desk.answer(pings(out, desk)[0], 200, "OK"), desk.addr, rig.now)
    rig.run(1400)
    out = rig.send(alice, alice.invite("1002", "fork"))
    assert [a for d, a in out if d.startswith(b"INVITE")] == [desk.addr]


def test_a_contact_that_never_answers_is_still_called_and_asked_twice_only():
    rig = Rig()
    alice, bob = Phone("1001", "10.0.0.11"), Phone("1002", "10.0.0.12")
    for p in (alice, bob):
        rig.send(p, p.register())
    sent = pings(rig.run(20000), bob)
    assert len(set(sent)) == 2  # two pings (each retransmitted once), then no more
    assert contact_state(rig.engine, "1002", rig.now) == (None, None)
    out = rig.send(alice, alice.invite("1002", "to-silent"))
    assert [a for d, a in out if d.startswith(b"INVITE")] == [bob.addr]
    rig.send(bob, bob.register(cseq=2))  # registering again: asked again
    assert len(set(pings(rig.run(3000), bob))) == 1


def test_bounded_pings_per_scan():
    rig = Rig(SIP_USERS="")
    phones = [Phone("20%02d" % i, "10.0.1.%d" % i) for i in range(12)]
    for p in phones:
        rig.send(p, p.register(), advance=0)
    pinged = set()

    def new_pings(advance):
        rig.now += advance
        fresh = set(a for d, a in rig.engine.tick(rig.now) if d.startswith(b"OPTIONS"))
        fresh -= pinged  # retransmissions of earlier pings are not new work
        pinged.update(fresh)
        return len(fresh)

    assert new_pings(2000) == 4  # PER_SCAN, not all twelve at once
    assert new_pings(SCAN_MS - 10) == 0  # the next scan is SCAN_MS later
    assert new_pings(10) == 4
    assert new_pings(SCAN_MS) == 4


def test_a_scan_looks_at_one_batch_of_users_a_round_at_all_of_them():
    rig = Rig(SIP_USERS="")
    phones = [Phone("3%03d" % i, "10.0.2.%d" % (i + 1)) for i in range(BATCH * 2 + 5)]
    for p in phones:
        rig.send(p, p.register(), advance=0)
    q = rig.engine.qualify
    rig.now += 10
    rig.engine.tick(rig.now)
    assert len(q.entries) == BATCH  # the first batch of names
    assert sorted(q.entries, key=lambda b: b.uri)[0].uri == "sip:3000@10.0.2.1:5060"
    for _ in range(2):
        rig.now += SCAN_MS
        rig.engine.tick(rig.now)
    assert len(q.entries) == len(phones)
    rig.engine.location.remove("3000", rig.engine.location.lookup("3000", rig.now)[0])
    for _ in range(6):  # the end of this round and the whole next one
        rig.now += SCAN_MS
        rig.engine.tick(rig.now)
    assert len(q.entries) == len(phones) - 1  # forgotten with its binding


def test_off_when_interval_is_zero():
    engine = new_engine({"QUALIFY_INTERVAL": 0})
    assert engine.qualify is None and engine.router.reachable is None


def test_a_new_clock_epoch_moves_every_stored_time():
    rig = Rig()
    alice = Phone("1001", "10.0.0.11")
    rig.send(alice, alice.register())
    sent = []
    for _ in range(30):
        sent += pings(rig.run(100), alice)
        if sent:
            break
    q = rig.engine.qualify
    before = [list(e) for e in q.entries.values()]
    scan = q.scan_at
    shift = 1000
    q.shift_times(shift)
    after = list(q.entries.values())
    assert q.scan_at == scan - shift
    assert [e[0] for e in after] == [e[0] - shift for e in before]  # due
    assert [e[1] for e in after] == [e[1] - shift for e in before]  # ping sent at
    assert [e[5] for e in after] == [e[5] - shift for e in before]  # expiry seen
