"""The loop under overload (App.step with a fake SIP socket and a fake clock): new INVITEs get
503 + Retry-After as soon as the loop is behind; ACK, BYE, CANCEL and responses of calls in
progress still reach the engine; retransmissions and ACKs to our 503s are absorbed."""

import os

from flows import PROXY, Phone, status

from switchboard.app import App
from switchboard.config import Config
from switchboard.message import Via, parse, to_tag
from switchboard.overload import HIGH_MS

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class FakeClock:
    def __init__(self):
        self.t = 1000

    def now(self):
        return self.t


class FakeSip:
    """Same interface as udp.UDPEndpoint: datagrams queued by the test, sends recorded."""

    def __init__(self):
        self.waiting = []
        self.sent = []
        self.errors = 0

    def recv(self):
        return self.waiting.pop(0) if self.waiting else None

    def send(self, data, addr):
        self.sent.append((data, addr))

    def close(self):
        pass


class Rig:
    def __init__(self, **settings):
        values = {"SIP_ADDRESS": PROXY[0], "SIP_PORT": PROXY[1], "SIP_USERS": "1001,1002",
                  "RATE_LIMIT": 0, "MAX_TRANSACTIONS": 5000, "MAX_CALLS": 2000}
        values.update(settings)
        config = Config(overrides=values)
        self.clock = FakeClock()
        self.sip = FakeSip()
        self.lines = []
        self.app = App(config, None, self.clock, lambda level, text: self.lines.append(text),
                       b"x" * 16, self.sip)

    def arrive(self, phone, data):
        self.sip.waiting.append((data, phone.addr))

    def run(self, limit=1000):
        """Steps until nothing waits; returns what was sent meanwhile."""
        start = len(self.sip.sent)
        for _ in range(limit):
            self.app.step()
            if not self.sip.waiting and self.app.head >= len(self.app.queue):
                break
        return self.sip.sent[start:]

    def exchange(self, phone, data):
        self.arrive(phone, data)
        return self.run()


def to(sent, phone):
    return [d for d, a in sent if a == phone.addr]


def test_new_invites_shed_with_503_while_calls_in_progress_carry_on():
    rig = Rig()
    alice, bob = Phone("1001", "10.0.0.11"), Phone("1002", "10.0.0.12")
    assert status(rig.exchange(alice, alice.register())[0][0]) == 200
    assert status(rig.exchange(bob, bob.register())[0][0]) == 200
    # call 1 answered (its ACK and BYE still to come), call 2 ringing (to be cancelled),
    # call 3 ringing (its 200 still to come)
    calls = {}
    for name in ("c1", "c2", "c3"):
        invite = alice.invite("1002", name)
        at_bob = to(rig.exchange(alice, invite), bob)[0]
        assert to(rig.exchange(bob, bob.answer(at_bob, 180, "Ringing")), alice)
        calls[name] = (invite, at_bob)
    ok1 = to(rig.exchange(bob, bob.answer(calls["c1"][1], 200, "OK", sdp=True)), alice)[0]

    # A backlog: 300 new INVITEs read in one step; the loop handles 16 a step, so the oldest
    # of them waits longer and longer: a standing queue of four times HIGH_MS for a whole
    # step of the controller, and every new request is shed.
    backlog = [alice.invite("1002", "old%d" % i) for i in range(300)]
    for invite in backlog:
        rig.arrive(alice, invite)
    start = len(rig.sip.sent)
    rig.app.step()
    assert not rig.app.overload.shedding and len(rig.app.queue) - rig.app.head == 300 - 16
    for _ in range(2):
        rig.clock.t += 2 * HIGH_MS + 10
        rig.arrive(alice, b"\r\n\r\n")
        rig.app.step()
    assert rig.app.overload.share == 100

    # Now new INVITEs and the in-progress traffic arrive together.
    fresh = [alice.invite("1002", "new%d" % i) for i in range(50)]
    for invite in fresh[:25]:
        rig.arrive(alice, invite)
    rig.arrive(alice, alice.in_dialog("ACK", ok1, 1))
    rig.arrive(alice, alice.cancel(calls["c2"][0]))
    rig.arrive(bob, bob.answer(calls["c3"][1], 200, "OK", sdp=True))
    for invite in fresh[25:]:
        rig.arrive(alice, invite)
    rig.arrive(alice, backlog[-1])  # a retransmission of one already let through
    rig.app.step()
    assert rig.app.overload.share == 100 and rig.app.overload.lag >= 4 * HIGH_MS
    sheds = [d for d, a in rig.sip.sent[start:] if status(d) == 503]
    assert len(sheds) == 50  # answered at once, while read, not after the backlog
    for invite, answer in zip(fresh, sheds):
        r, req = parse(answer), parse(invite)
        assert r.get("retry-after") == "5"
        for name in ("from", "call-id", "cseq"):
            assert r.get(name) == req.get(name)
        assert Via(r.first_value("via")).branch() == Via(req.first_value("via")).branch()
        assert r.get("to").startswith(req.get("to")) and to_tag(r)
    # the ACKs to those 503s are absorbed, never relayed to bob
    for invite, answer in zip(fresh, sheds):
        rig.arrive(alice, alice.ack(invite, answer))
    rig.run()
    counters = rig.app.engine.counters
    assert counters["shed"] == 50 and counters["shed_absorbed"] == 51
    assert counters["overloads"] == 1 and counters["answered_5xx"] == 50

    # everything in progress reached the engine: the ACK and the CANCEL went on to bob, the
    # CANCEL got its 200, call 3's 200 reached alice, and every backlog INVITE went to bob;
    # only the one ACK of call 1 reached bob (none of the 50 ACKs to our 503s)
    at_bob = to(rig.sip.sent[start:], bob)
    assert sum(1 for d in at_bob if d.startswith(b"ACK ")) == 1
    assert sum(1 for d in at_bob if d.startswith(b"CANCEL ")) == 1
    relayed = set(parse(d).get("call-id") for d in at_bob if d.startswith(b"INVITE "))
    assert relayed == set("old%d" % i for i in range(300))  # (and retransmitted by Timer A)
    at_alice = to(rig.sip.sent[start:], alice)
    assert any(status(d) == 200 and b"CSeq: 1 CANCEL" in d for d in at_alice)
    assert any(status(d) == 200 and b"Call-ID: c3" in d for d in at_alice)

    # the BYE of call 1 and bob's 200 to it still go through; then, with the backlog gone,
    # the share shed falls step by step to nothing and a new INVITE is relayed again
    rig.clock.t += 10
    bye = to(rig.exchange(alice, alice.in_dialog("BYE", ok1, 2)), bob)[0]
    assert bye.startswith(b"BYE ")
    assert status(to(rig.exchange(bob, bob.answer(bye, 200, "OK")), alice)[0]) == 200
    assert rig.app.overload.shedding
    shares = []
    for _ in range(40):
        rig.clock.t += 100
        rig.exchange(alice, b"\r\n\r\n")  # keepalives: traffic that is not new work
        shares.append(rig.app.overload.share)
    assert shares == sorted(shares, reverse=True) and shares[-1] == 0 and shares[0] > 0
    said = [line for line in rig.lines if "overload" in line]
    assert len(said) == 2 and "answering new requests with 503" in said[0]
    assert "50 new requests answered with 503" in said[1]
    sent = rig.exchange(alice, alice.invite("1002", "after"))
    assert any(d.startswith(b"INVITE ") for d in to(sent, bob))
    assert rig.app.engine.counters["shed"] == 50


def test_a_backlog_does_not_starve_the_services():
    rig = Rig()
    alice = Phone("1001", "10.0.0.11")
    polls = []

    class Service:
        def poll(self, now):
            polls.append(now)

    rig.app.services.append(Service())
    for i in range(100):
        rig.arrive(alice, alice.request("OPTIONS", "sip:10.0.0.1", "<sip:10.0.0.1>", "o%d" % i,
                                        1))
    assert rig.app.step() == 0  # a backlog: the idle function must not wait
    assert len(polls) == 1 and len(rig.app.queue) - rig.app.head == 100 - 16
    rig.run()
    assert len(polls) == 7  # one turn for every 16 datagrams
    assert len(to(rig.sip.sent, alice)) == 100


def test_a_retransmission_of_a_datagram_still_queued_is_dropped():
    rig = Rig()
    alice, bob = Phone("1001", "10.0.0.11"), Phone("1002", "10.0.0.12")
    options = alice.request("OPTIONS", "sip:10.0.0.1", "<sip:10.0.0.1>", "dup", 1)
    for _ in range(20):  # a backlog, so that the first copy still waits when the rest arrive
        rig.arrive(bob, bob.request("OPTIONS", "sip:10.0.0.1", "<sip:10.0.0.1>", "b", 1,
                                    branch="z9hG4bK%d" % rig.clock.t))
        rig.clock.t += 1
    rig.arrive(alice, options)
    rig.app.step()
    for _ in range(3):
        rig.arrive(alice, options)  # three retransmissions while it waits
    rig.arrive(alice, b"\r\n\r\n")
    rig.arrive(bob, b"\r\n\r\n")  # the same bytes from another address are no duplicate
    sent = rig.run()
    assert rig.app.engine.counters["queued_duplicates"] == 3
    assert sum(1 for d in to(sent, alice) if status(d) == 200) == 1
    assert b"\r\n" in to(sent, alice) and b"\r\n" in to(sent, bob)  # both keepalives answered
    rig.arrive(alice, options)  # once handled, a retransmission goes to the engine again
    sent = rig.run()
    assert [status(d) for d in to(sent, alice)] == [200]
    assert rig.app.engine.counters["retransmitted"] == 1


def test_a_new_clock_epoch_moves_the_loops_times():
    rig = Rig()
    alice = Phone("1001", "10.0.0.11")
    for i in range(40):  # a backlog: 24 stay queued after one step
        rig.arrive(alice, alice.request("OPTIONS", "sip:10.0.0.1", "<sip:10.0.0.1>", "e%d" % i,
                                        1))
    rig.clock.t = 5000
    rig.app.step()
    app = rig.app
    stamps = [item[2] for item in app.queue[app.head:]]
    assert stamps and app.ticked == 5000
    rig.clock.t -= 4000  # the board clock restarts its epoch: the board shifts every part
    app.shift_times(4000)
    assert [item[2] for item in app.queue[app.head:]] == [t - 4000 for t in stamps]
    assert app.ticked == 1000 and app.overload.moved <= 1000
    ticks = []
    engine_tick = app.engine.tick
    app.engine.tick = lambda now: ticks.append(now) or engine_tick(now)
    rig.clock.t += 10
    rig.arrive(alice, b"\r\n\r\n")
    app.step()
    assert ticks == [1010] and app.overload.lag == 10  # timers run, the lag is still right
    rig.clock.t = 10  # a clock that went back without a shift: timers still run at once
    rig.arrive(Phone("1002", "10.0.0.12"), b"\r\n\r\n")
    app.step()
    assert ticks == [1010, 10]
    rig.run()
    assert len(to(rig.sip.sent, alice)) == 41


def test_overload_off_imports_nothing_and_serves_in_order():
    import subprocess
    import sys

    script = ("import sys; sys.path[:0] = ['lib']\n"
              "from switchboard.app import App\nfrom switchboard.config import Config\n"
              "class Sip:\n    recv = lambda self: None\n"
              "app = App(Config(overrides={'OVERLOAD': 0}), None, None, print, b'x' * 16, "
              "Sip())\nprint(app.overload, 'switchboard.overload' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         cwd=ROOT, timeout=60)
    assert out.stdout.split() == ["None", "False"], out.stderr
    rig = Rig(OVERLOAD=0)
    alice = Phone("1001", "10.0.0.11")
    for i in range(300):  # a backlog far behind: with overload control off all are served
        rig.arrive(alice, alice.request("OPTIONS", "sip:10.0.0.1", "<sip:10.0.0.1>",
                                        "n%d" % i, 1))
    rig.app.step()
    rig.clock.t += 1000
    sent = rig.run()
    answers = [parse(d) for d in to(rig.sip.sent, alice)]
    assert [r.status for r in answers] == [200] * 300
    assert [r.get("call-id") for r in answers] == ["n%d" % i for i in range(300)]
    assert sent and rig.app.engine.counters["shed"] == 0


def test_the_loops_verdicts_are_overloads():
    from switchboard import app, overload

    assert (app.PASS, app.SHED, app.ABSORB) == (overload.PASS, overload.SHED, overload.ABSORB)
    assert app.DUPLICATE not in (overload.PASS, overload.SHED, overload.ABSORB, overload.DROP)


def test_on_a_host_a_steps_answers_go_out_after_its_burst():
    # CPython (host mode) holds what a burst answers and sends it after the burst; Blinka's
    # micropython module must not make it look like a board (it did: `const is int`)
    rig = Rig()
    alice = Phone("1001", "10.0.0.11")
    events = []
    receive = rig.app.engine.receive

    def logged(data, source, now):
        events.append("in")
        return receive(data, source, now)

    rig.app.engine.receive = logged
    send = rig.sip.send
    rig.sip.send = lambda data, addr: (events.append("out"), send(data, addr))
    for n in range(3):
        rig.arrive(alice, alice.request("OPTIONS", "sip:10.0.0.1", "<sip:10.0.0.1>", "o%d" % n,
                                        1))
    rig.run()
    assert events == ["in"] * 3 + ["out"] * 3
