"""Calls: the INVITE dialogs the proxy saw start (RFC 3261 §12, §13, §15).

A call is created by an initial INVITE and followed through the responses the
proxy relays and the in-dialog requests that pass through it (Record-Route).
Finished calls move to a bounded history, newest last.
"""

from switchboard import sdp
from switchboard.message import _KEPT

# What a call keeps of an SDP body (media = ... below): on a host (_KEPT is not 0 only on
# CPython) the body as it came, which sdp.expand() summarises when the dashboard asks
# (summarising each answer as it passed cost the relay its time); on a board the short
# sdp.compact() string instead of a body of a few hundred bytes. No new name for it: on a
# board each one costs heap, and the imports sit at the edge of the next interned-name step.

TRYING = "trying"
RINGING = "ringing"
ANSWERED = "answered"
ENDED = "ended"
CANCELLED = "cancelled"
FAILED = "failed"


class Call:
    """One INVITE dialog: who called whom, its state and times (ms), the SDP summaries.

    On the board every attribute an instance holds costs heap (the VM keeps them in a hash
    table per instance: 6 attributes take 64 B, 12 take 112 B, 13-16 take 160 B), so the
    fields most calls leave at their start value are class attributes, set on the instance
    only when they change; the SDP summaries are kept as sdp.compact() strings (on a host,
    the bodies themselves)."""

    status = 0
    answered = None
    ended = None
    reason = ""
    # what a BYE to each phone needs (endcall.py), kept from the INVITE and its 2xx:
    # [From or To value with the phone's tag, its tag, Contact URI, (ip, port),
    #  Route set towards it (tuple), highest CSeq it sent]
    leg_a = None  # the caller
    leg_b = None  # the callee that answered
    sdp_offer = None  # sdp.compact() of the offer and of the answer
    sdp_answer = None

    def __init__(self, call_id, caller, callee, now):
        self.call_id = call_id
        self.caller = caller
        self.callee = callee
        self.state = TRYING
        self.started = now
        self.last_seen = now

    # the SDP summaries (sdp.summary's dicts, or None) of the caller and of the callee
    offer = property(lambda self: sdp.expand(self.sdp_offer))
    answer = property(lambda self: sdp.expand(self.sdp_answer))

    def duration(self, now):
        """Seconds talking (answered to ended), 0 if never answered."""
        if self.answered is None:
            return 0
        end = self.ended if self.ended is not None else now
        return (end - self.answered) // 1000

    def as_dict(self, now):
        """The call as plain data for the dashboard (ages and durations in seconds)."""
        return {
            "call_id": self.call_id, "caller": self.caller, "callee": self.callee,
            "state": self.state, "status": self.status,
            "age": (now - self.started) // 1000, "duration": self.duration(now),
            "ended_ago": None if self.ended is None else (now - self.ended) // 1000,
            "reason": self.reason, "offer": self.offer, "answer": self.answer,
        }


class Calls:
    """Calls in progress by Call-ID (at most max_calls) and a bounded history of finished ones."""

    def __init__(self, max_calls, history_size, idle_timeout_ms, log):
        self.max_calls = max_calls
        self.history_size = history_size
        self.idle_timeout = idle_timeout_ms
        self.active = {}  # Call-ID -> Call
        self.history = []  # finished calls, oldest first
        self.log = log
        self.answered = 0  # calls answered and calls failed since start (charts)
        self.failed = 0
        self.legs = None  # endcall.py while the dashboard runs: keeps what ending a call needs

    def full(self):
        """True when no further call can start."""
        return len(self.active) >= self.max_calls

    def start(self, call_id, caller, callee, body, now):
        """A call for an initial INVITE (the existing one for a known Call-ID); None when
        the table is full."""
        if call_id in self.active or self.full():
            return self.active.get(call_id)
        call = Call(call_id, caller, callee, now)
        media = body if _KEPT and body[:2] == b"v=" else sdp.compact(body)
        if media is not None:
            call.sdp_offer = media
        self.active[call_id] = call
        self._event(call)
        return call

    def progress(self, call, status, body, now):
        """A response relayed to the caller for the initial INVITE."""
        call.last_seen = now
        media = body if _KEPT and body[:2] == b"v=" else sdp.compact(body)
        if media is not None:
            call.sdp_answer = media
        if status < 200:
            if status >= 180 and call.state == TRYING:
                call.state = RINGING
                self._event(call)
        elif status < 300:
            if call.state in (TRYING, RINGING):
                call.state = ANSWERED
                call.status = status
                call.answered = now
                self.answered += 1
                self._event(call)
        elif call.state in (TRYING, RINGING):
            call.status = status
            self._finish(call, CANCELLED if status == 487 else FAILED, now)

    def in_dialog(self, call_id, method, body, now, req=None):
        """A request inside a call passed through: BYE ends it, others keep it alive.
        req (the request) keeps each side's highest CSeq when endcall.py keeps legs."""
        call = self.active.get(call_id)
        if call is None:
            return
        call.last_seen = now
        if req is not None and call.leg_a is not None:
            self.legs.track(call, req)
        if method == "BYE":
            call.reason = "bye"
            self._finish(call, ENDED, now)
        elif method == "INVITE" and body:
            media = body if _KEPT and body[:2] == b"v=" else sdp.compact(body)
            if media is not None:
                call.sdp_offer = media

    def shift_times(self, ms):
        """The board clock started a new epoch: the stored times move back by ms."""
        for call in list(self.active.values()) + self.history:
            call.started -= ms
            call.last_seen -= ms
            if call.answered is not None:
                call.answered -= ms
            if call.ended is not None:
                call.ended -= ms

    def expire(self, now):
        """Close calls idle longer than the idle timeout (a phone vanished without BYE)."""
        for call_id in sorted(self.active):
            call = self.active[call_id]
            if now - call.last_seen >= self.idle_timeout:
                call.reason = "idle timeout"
                self._finish(call, ENDED if call.answered is not None else FAILED, now)

    def _finish(self, call, state, now):
        if state == FAILED:
            self.failed += 1
        if call.leg_a is not None or call.leg_b is not None:
            call.leg_a = call.leg_b = None
        call.state = state
        call.ended = now
        self.active.pop(call.call_id, None)
        self.history.append(call)
        if len(self.history) > self.history_size:
            self.history.pop(0)
        self._event(call)

    def _event(self, call):
        text = "call %s %s -> %s %s" % (call.call_id, call.caller, call.callee, call.state)
        if call.state in (FAILED, CANCELLED):
            text += " %d" % call.status
        if call.reason:
            text += " (%s)" % call.reason
        self.log("info", text)
