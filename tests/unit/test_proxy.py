"""The proxy's response context with a router of several stages (serial forking: hunt
groups, forwarding on busy or no answer), per-branch headers, answers from the router.

A tiny router stands in for the PBX dialplan: "2000" rings 1002 for STAGE_MS, then 1003;
"2001" rings 1002 and, when that fails, answers 480 itself; "*78" is a feature code.
Runs under CPython and on the MicroPython VM."""

from flows import PROXY, Phone, first_line, new_config, new_engine, snapshot, status

from switchboard.location import Location
from switchboard.message import parse
from switchboard.router import Decision, Here, Router, Target, answer

STAGE_MS = 8000
INTERCOM = ("Call-Info", "<sip:%s>;answer-after=0" % PROXY[0])


class StageRouter(Router):
    """Hunt group 2000: 1002 then 1003; 2001: 1002 then an answer; *78: 200 at once."""

    def __init__(self, config, here, location):
        Router.__init__(self, config, here, location)
        self.asked = []  # (plan, best_status) for each next() call

    def lookup(self, user, req, now, caller):
        if user == "*78":
            return answer(200, "DND on", [("Subject", "dnd")])
        if user in ("2000", "2001"):
            first = self._targets("1002", now, [INTERCOM] if caller == "1003" else [])
            return Decision(targets=first, timeout=STAGE_MS if user == "2000" else 0,
                            plan=[user, "1003"], callee="group " + user)
        return Router.lookup(self, user, req, now, caller)

    def next(self, plan, best_status, now):
        self.asked.append((list(plan), best_status))
        if len(plan) < 2:
            return None
        if plan[0] == "2001":
            return answer(480, "Nobody Home")
        return Decision(targets=self._targets(plan[1], now, []), plan=[plan[0]])

    def _targets(self, user, now, headers):
        return [Target(b.uri, b.source, headers) for b in self.location.lookup(user, now)]


class Rig:
    def __init__(self):
        config = new_config()
        here = Here(config)
        location = Location(config.max_bindings, config.max_contacts_per_aor)
        self.router = StageRouter(config, here, location)
        self.engine = new_engine(config=config, here=here, location=location,
                                 router=self.router)
        self.now = 1000
        self.alice = Phone("1001", "10.0.0.11")
        self.bob = Phone("1002", "10.0.0.12")
        self.carol = Phone("1003", "10.0.0.13")
        for p in (self.alice, self.bob, self.carol):
            assert statuses(self.send(p, p.register())) == [200]

    def send(self, phone, data, advance=10):
        self.now += advance
        return self.engine.receive(data, phone.addr, self.now)

    def tick(self, advance):
        self.now += advance
        return self.engine.tick(self.now)

    def to(self, out, phone):
        """The datagrams in out sent to phone."""
        return [d for d, a in out if a == phone.addr]


def statuses(out):
    return [status(d) for d, _ in out]


def methods(out):
    return [first_line(d).split(" ")[0] for d, _ in out]


def test_busy_member_moves_the_call_to_the_next_stage_and_the_caller_keeps_ringing():
    rig = Rig()
    alice, bob, carol = rig.alice, rig.bob, rig.carol
    invite = alice.invite("2000", "hunt-1")
    out = rig.send(alice, invite)
    assert statuses(out) == [100, 0] and rig.to(out, bob)
    to_bob = rig.to(out, bob)[0]
    out = rig.send(bob, bob.answer(to_bob, 180, "Ringing"))
    assert statuses(out) == [180] and out[0][1] == alice.addr
    out = rig.send(bob, bob.answer(to_bob, 486, "Busy Here"))
    # the 486 is ACKed, not relayed; the INVITE goes to the next stage
    assert methods(out) == ["ACK", "INVITE"]
    assert out[0][1] == bob.addr and out[1][1] == carol.addr
    assert rig.router.asked == [(["2000", "1003"], 486)]
    to_carol = out[1][0]
    fwd = parse(to_carol)
    assert fwd.uri == "sip:1003@10.0.0.13:5060" and fwd.get("max-forwards") == "69"
    assert fwd.values("record-route") == ["<sip:%s:%d;lr>" % PROXY]
    assert fwd.first_value("via") != parse(to_bob).first_value("via")  # a new branch
    out = rig.send(carol, carol.answer(to_carol, 200, "OK", tag="carol", sdp=True))
    assert statuses(out) == [200] and out[0][1] == alice.addr
    assert parse(out[0][0]).get("to").endswith("tag=carol")
    calls = snapshot(rig.engine, rig.now)["calls"]
    assert calls[0]["callee"] == "group 2000" and calls[0]["state"] == "answered"


def test_stage_timeout_cancels_the_ringing_member_and_rings_the_next():
    rig = Rig()
    alice, bob, carol = rig.alice, rig.bob, rig.carol
    out = rig.send(alice, alice.invite("2000", "hunt-2"))
    to_bob = rig.to(out, bob)[0]
    rig.send(bob, bob.answer(to_bob, 180, "Ringing"))
    assert rig.engine.next_due(rig.now) <= STAGE_MS
    assert rig.tick(STAGE_MS - 100) == []
    out = rig.tick(100)
    assert methods(out) == ["CANCEL", "INVITE"]
    assert out[0][1] == bob.addr and out[1][1] == carol.addr
    assert rig.router.asked == [(["2000", "1003"], 408)]
    to_carol = out[1][0]
    out = rig.send(bob, bob.answer(out[0][0], 200, "OK"))  # 200 to the CANCEL: absorbed
    assert out == []
    out = rig.send(bob, bob.answer(to_bob, 487, "Request Terminated"))
    assert methods(out) == ["ACK"] and out[0][1] == bob.addr  # not the caller's answer
    out = rig.send(carol, carol.answer(to_carol, 486, "Busy Here"))
    # no third stage: the best answer of the last stage, not the cancelled member's 487
    assert methods(out) == ["ACK", "SIP/2.0"] and statuses(out)[1] == 486
    assert out[1][1] == alice.addr
    assert rig.router.asked[-1] == (["2000"], 486)


def test_late_2xx_from_a_cancelled_stage_still_reaches_the_caller():
    rig = Rig()
    alice, bob, carol = rig.alice, rig.bob, rig.carol
    out = rig.send(alice, alice.invite("2000", "hunt-3"))
    to_bob = rig.to(out, bob)[0]
    rig.send(bob, bob.answer(to_bob, 180, "Ringing"))
    out = rig.tick(STAGE_MS)
    to_carol = rig.to(out, carol)[0]
    # bob answered as the CANCEL crossed: the 2xx goes upstream, carol's branch is cancelled
    out = rig.send(bob, bob.answer(to_bob, 200, "OK", sdp=True))
    assert statuses(out)[0] == 200 and out[0][1] == alice.addr
    assert ("CANCEL", carol.addr) not in [(m, a) for m, (_, a) in zip(methods(out), out)]
    out = rig.send(carol, carol.answer(to_carol, 180, "Ringing"))
    assert ("CANCEL", carol.addr) in [(m, a) for m, (_, a) in zip(methods(out), out)]


def test_router_may_answer_when_a_stage_fails():
    rig = Rig()
    alice, bob = rig.alice, rig.bob
    out = rig.send(alice, alice.invite("2001", "hunt-4"))
    to_bob = rig.to(out, bob)[0]
    out = rig.send(bob, bob.answer(to_bob, 603, "Decline"))
    # a 6xx ends the search (§16.7 step 6): the router is not asked again
    assert methods(out) == ["ACK", "SIP/2.0"] and statuses(out)[1] == 603
    assert rig.router.asked == []
    out = rig.send(alice, alice.invite("2001", "hunt-5"))
    to_bob = rig.to(out, bob)[0]
    out = rig.send(bob, bob.answer(to_bob, 486, "Busy Here"))
    assert methods(out) == ["ACK", "SIP/2.0"]
    resp = parse(out[1][0])
    assert (resp.status, resp.reason) == (480, "Nobody Home") and out[1][1] == alice.addr
    history = snapshot(rig.engine, rig.now)["history"]
    assert history[0]["status"] == 480 and history[0]["callee"] == "group 2001"


def test_cancel_during_a_later_stage_ends_the_search():
    rig = Rig()
    alice, bob, carol = rig.alice, rig.bob, rig.carol
    invite = alice.invite("2000", "hunt-6")
    out = rig.send(alice, invite)
    to_bob = rig.to(out, bob)[0]
    out = rig.send(bob, bob.answer(to_bob, 486, "Busy Here"))
    to_carol = rig.to(out, carol)[-1]
    rig.send(carol, carol.answer(to_carol, 180, "Ringing"))
    out = rig.send(alice, alice.cancel(invite))
    assert statuses(out)[0] == 200 and ("CANCEL", carol.addr) in list(
        zip(methods(out), [a for _, a in out]))
    out = rig.send(carol, carol.answer(to_carol, 487, "Request Terminated"))
    assert methods(out) == ["ACK", "SIP/2.0"] and statuses(out)[1] == 487
    assert len(rig.router.asked) == 1  # not asked again after the CANCEL


def test_branch_headers_go_to_that_branch_only():
    rig = Rig()
    carol, bob = rig.carol, rig.bob
    out = rig.send(carol, carol.invite("2000", "intercom-1"))
    fwd = parse(rig.to(out, bob)[0])
    assert fwd.get("call-info") == INTERCOM[1]
    out = rig.send(rig.alice, rig.alice.invite("2000", "intercom-2"))
    assert parse(rig.to(out, bob)[0]).get("call-info") is None


def test_feature_code_is_answered_by_the_router():
    rig = Rig()
    alice = rig.alice
    out = rig.send(alice, alice.request("OPTIONS", "sip:*78@%s" % PROXY[0],
                                        "<sip:*78@%s>" % PROXY[0], "fc-1", 1))
    assert statuses(out) == [200] and out[0][1] == alice.addr
    resp = parse(out[0][0])
    assert resp.reason == "DND on" and resp.get("subject") == "dnd"


def test_every_entry_point_returns_its_own_datagrams():
    rig = Rig()
    alice, bob = rig.alice, rig.bob
    first = rig.send(alice, alice.invite("2000", "own-1"))
    kept = list(first)
    rig.send(bob, bob.answer(rig.to(first, bob)[0], 180, "Ringing"))
    rig.tick(STAGE_MS)
    assert first == kept  # later calls did not touch an earlier result
