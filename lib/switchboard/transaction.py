"""Transactions over UDP (RFC 3261 §17, RFC 6026): every state, transition and timer.

Table-driven in the manner of h11's `_state.py`: a transaction is in one named state;
an *event* (a response received or sent, a timer, a retransmitted request, an ACK, a
CANCEL wanted by the proxy) is looked up with `transition(kind, state, event)` (the table is
written out readably as _SOURCE below) and gives the next state and the *steps* to run.
`TransactionTable.handle()` runs them and returns *actions*
for the transaction user (the proxy), as tuples:

    (SEND, bytes, (ip, port))   put these bytes on the wire
    (DELIVER,)                  the response for the response context (client side)
    (STRAY_2XX,)                a 2xx for a branch already finished: relay it statelessly
    (SEND_CANCEL,)              CANCEL this branch now (it has a provisional response)
    (TIMEOUT, name)             the branch is over without an answer ("B", "F" or "C"): 408

An event a state does not list is absorbed (nothing happens). Nobody else writes `state`.

Timers: A/B, E/F (client retransmit / give up), G/H (server INVITE final retransmit / give
up), D, I, J, K (lingering to absorb retransmissions; on UDP D, H, J = 64*T1, I, K = T4)
and Timer C. Timer C (§16.8) belongs to the proxy, but the proxy runs one client INVITE
transaction per branch, so it is armed here, on the branch, reported as (TIMEOUT, "C")
after (SEND_CANCEL,), and its length is the table's `timer_c` (ms).

Times are integer milliseconds passed in by the caller. The table is bounded: transactions
in progress count against the limit (a full table makes the proxy answer 503).

Finished transactions linger only to absorb retransmissions. Most are kept as one small
integer each (a board keeps about a thousand at 8 calls a second): a 30-bit hash of the key
maps to an 18-bit second hash, what the transaction still does (`ABSORB`, `ANSWER`, `ASK`)
and its final status, in dicts of `_GEN_MS` generations that are dropped
whole when their time is up (so a transaction lingers its timer's length plus up to
`_GEN_MS`). A retransmitted request of a finished non-INVITE server transaction gets its
answer rebuilt from the request (`ANSWER`: status, Via, From, To, Call-ID, CSeq, the same
To tag) or by the part that made it (`ASK`: the registrar's bindings, a fresh challenge),
so no response bytes are stored. Kept whole, with their bytes, are only the finished
transactions whose answer cannot be rebuilt (the ACK of an INVITE client's non-2xx, a
relayed answer with a body or another's To tag); they are evicted oldest first when room is
needed. `finished(key)` reads the compact ones.
"""

import sys

from switchboard.message import Message, fnv_halves

try:
    from micropython import const  # names starting with _ vanish from the .mpy
except ImportError:  # CPython
    const = int

T1 = 500
T2 = 4000
T4 = 5000
LINGER = 64 * T1  # Timers B, F, H, J and D on UDP

# kinds
INVITE_CLIENT = 0
NON_INVITE_CLIENT = 1
INVITE_SERVER = 2
NON_INVITE_SERVER = 3


# states (§17.1.1, §17.1.2, §17.2.1, §17.2.2; ACCEPTED from RFC 6026); from COMPLETED on, a
# transaction is finished (it only absorbs retransmissions)
CALLING = 1
TRYING = 2
PROCEEDING = 3
COMPLETED = 4
CONFIRMED = 5
ACCEPTED = 6
TERMINATED = 7
STATE_NAMES = ("", "Calling", "Trying", "Proceeding", "Completed", "Confirmed", "Accepted",
               "Terminated")

# events
PROVISIONAL = 1  # a 1xx received (client) or sent (server)
SUCCESS = 2  # a 2xx
FAILURE = 3  # a 3xx-6xx
RETRANSMIT_TIMER = 4  # Timer A, E or G
GIVE_UP_TIMER = 5  # Timer B, F or H
TIMER_C = 6
REQUEST = 7  # a retransmitted request reached a server transaction
ACK = 8
CANCEL = 9  # the proxy wants this INVITE branch cancelled

# actions returned to the transaction user
SEND = "send"
DELIVER = "deliver"
STRAY_2XX = "stray 2xx"
SEND_CANCEL = "send CANCEL"
TIMEOUT = "timeout"

# what a finished transaction kept compactly still does (see the module docstring)
ABSORB = 0  # every retransmission is absorbed
ANSWER = 2  # non-INVITE server: the request again gets the same answer, rebuilt from it
ASK = 3  # the same, the answer rebuilt by whoever made it (registrar, auth)
_GEN_MS = const(4000)  # compact transactions expire in generations of this many ms
_KEEP_PER_SLOT = const(64)  # finished transactions kept (about 9 B each), per one in progress

# what a client INVITE knows about cancelling it (§9.1)
_NO_CANCEL = const(0)
_CANCEL_WANTED = const(1)  # sent when a provisional response arrives
_CANCEL_SENT = const(2)

# steps a transition runs, as bit flags; they always run in this order
_RESEND = const(1)  # server: the last response again; client: the request again
_WANT_CANCEL = const(2)
_CANCEL_IF_WANTED = const(4)
_CANCEL = const(8)
_ACK = const(16)  # client INVITE: ACK the non-2xx final (§17.1.1.3)
_DELIVER = const(32)
_STRAY = const(64)
_TIMEOUT = const(128)
_STEPS = (_RESEND, _WANT_CANCEL, _CANCEL_IF_WANTED, _CANCEL, _ACK, _DELIVER, _STRAY, _TIMEOUT)



def _flatten(source):
    """{kind: {state: {event: (next, steps)}}} as 2 bytes per (kind, state, event) in one
    bytearray (640 bytes; a dict of the same would take several KB on a board)."""
    table = bytearray(4 * 8 * 10 * 2)
    for kind in source:
        for state in source[kind]:
            for event in source[kind][state]:
                state_next, steps = source[kind][state][event]
                value = state_next | steps << 3  # never 0: every state is >= 1
                i = ((kind * 8 + state) * 10 + event) * 2
                table[i] = value & 0xFF
                table[i + 1] = value >> 8
    return table


# The table, written readably: {kind: {state: {event: (next state, steps)}}}, kept only in
# its flat form.
_TABLE = _flatten({
    INVITE_CLIENT: {
        CALLING: {
            PROVISIONAL: (PROCEEDING, _CANCEL_IF_WANTED | _DELIVER),
            SUCCESS: (ACCEPTED, _DELIVER),
            FAILURE: (COMPLETED, _ACK | _DELIVER),
            RETRANSMIT_TIMER: (CALLING, _RESEND),  # Timer A
            GIVE_UP_TIMER: (COMPLETED, _TIMEOUT),  # Timer B
            CANCEL: (CALLING, _WANT_CANCEL),
        },
        PROCEEDING: {
            PROVISIONAL: (PROCEEDING, _DELIVER),
            SUCCESS: (ACCEPTED, _DELIVER),
            FAILURE: (COMPLETED, _ACK | _DELIVER),
            TIMER_C: (COMPLETED, _CANCEL | _TIMEOUT),
            CANCEL: (PROCEEDING, _CANCEL),
        },
        COMPLETED: {  # Timer D: lingering; a final retransmitted is ACKed again
            FAILURE: (COMPLETED, _ACK),
            SUCCESS: (COMPLETED, _STRAY),
        },
        ACCEPTED: {  # further 2xx (retransmitted or forked) go upstream statelessly
            SUCCESS: (ACCEPTED, _STRAY),
        },
    },
    NON_INVITE_CLIENT: {
        TRYING: {
            PROVISIONAL: (PROCEEDING, _DELIVER),
            SUCCESS: (COMPLETED, _DELIVER),
            FAILURE: (COMPLETED, _DELIVER),
            RETRANSMIT_TIMER: (TRYING, _RESEND),  # Timer E
            GIVE_UP_TIMER: (TERMINATED, _TIMEOUT),  # Timer F
        },
        PROCEEDING: {
            PROVISIONAL: (PROCEEDING, _DELIVER),
            SUCCESS: (COMPLETED, _DELIVER),
            FAILURE: (COMPLETED, _DELIVER),
            RETRANSMIT_TIMER: (PROCEEDING, _RESEND),
            GIVE_UP_TIMER: (TERMINATED, _TIMEOUT),
        },
        # COMPLETED: Timer K, lingering; responses absorbed
    },
    INVITE_SERVER: {
        PROCEEDING: {
            PROVISIONAL: (PROCEEDING, 0),
            SUCCESS: (ACCEPTED, 0),
            FAILURE: (COMPLETED, 0),
            REQUEST: (PROCEEDING, _RESEND),
        },
        COMPLETED: {
            REQUEST: (COMPLETED, _RESEND),
            RETRANSMIT_TIMER: (COMPLETED, _RESEND),  # Timer G
            GIVE_UP_TIMER: (TERMINATED, 0),  # Timer H
            ACK: (CONFIRMED, 0),
        },
        CONFIRMED: {  # Timer I: lingering, ACKs absorbed
            REQUEST: (CONFIRMED, _RESEND),
        },
        ACCEPTED: {  # RFC 6026: further 2xx of a forked INVITE still go upstream; a
            SUCCESS: (ACCEPTED, 0),  # retransmitted INVITE is absorbed (RFC 6026 §8.7)
        },
    },
    NON_INVITE_SERVER: {
        TRYING: {
            PROVISIONAL: (PROCEEDING, 0),
            SUCCESS: (COMPLETED, 0),
            FAILURE: (COMPLETED, 0),
            REQUEST: (TRYING, 0),
        },
        PROCEEDING: {
            PROVISIONAL: (PROCEEDING, 0),
            SUCCESS: (COMPLETED, 0),
            FAILURE: (COMPLETED, 0),
            REQUEST: (PROCEEDING, _RESEND),
        },
        COMPLETED: {  # Timer J
            REQUEST: (COMPLETED, _RESEND),
        },
    },
})

# How long a transaction lingers on entering a state (ms): it stops counting as work in
# progress and is forgotten when the time is up. 0 forgets it at once.
LINGERING = {
    INVITE_CLIENT << 4 | COMPLETED: LINGER,  # Timer D (at least 32 s on UDP)
    INVITE_CLIENT << 4 | ACCEPTED: LINGER,  # RFC 6026 Timer M
    NON_INVITE_CLIENT << 4 | COMPLETED: T4,  # Timer K
    NON_INVITE_CLIENT << 4 | TERMINATED: 0,
    INVITE_SERVER << 4 | ACCEPTED: LINGER,  # RFC 6026 Timer L
    INVITE_SERVER << 4 | CONFIRMED: T4,  # Timer I
    INVITE_SERVER << 4 | TERMINATED: 0,
    NON_INVITE_SERVER << 4 | COMPLETED: LINGER,  # Timer J
}


def transition(kind, state, event):
    """(next state, steps as bit flags) for event in state, or None: the event is absorbed."""
    i = ((kind * 8 + state) * 10 + event) * 2
    value = _TABLE[i] | _TABLE[i + 1] << 8
    if not value:
        return None
    return value & 7, value >> 3


if sys.implementation.name == "cpython":
    def key_hash(key):
        """(30-bit slot, 18-bit check) of a transaction key: CPython's own 64-bit hash."""
        h = hash(key)
        return h & 0x3FFFFFFF, (h >> 30) & 0x3FFFF
else:
    def key_hash(key):
        """(30-bit slot, 18-bit check) of a transaction key: FNV-1a with two offset bases
        (a board's hash() of a str has only a few bits); every value a small int."""
        return fnv_slot(key)


def fnv_slot(key):
    """key_hash by FNV-1a, on any interpreter (the board's; the tests run it on CPython)."""
    hi, lo = fnv_halves(key)
    hi2, lo2 = fnv_halves(key, 0x050C, 0x5D1F)
    return (hi & 0x3FFF) << 16 | lo, (hi2 & 3) << 16 | lo2


def event_for(status):
    """The event a response with this status is: PROVISIONAL, SUCCESS or FAILURE."""
    if status < 200:
        return PROVISIONAL
    if status < 300:
        return SUCCESS
    return FAILURE


class ServerTransaction:
    """A request we received; retransmissions of it get the last response again.

    Keeps the request (for the answer) only until the final response is sent; from then on
    only the key, the peer, the last response's bytes and the timer.
    """

    def __init__(self, key, request, source, now):
        self.key = key
        self.method = request.method
        self.kind = INVITE_SERVER if request.method == "INVITE" else NON_INVITE_SERVER
        self.state = PROCEEDING if self.kind == INVITE_SERVER else TRYING
        self.request = request  # dropped when the final response is sent
        self.source = source  # where responses go
        self.created = now
        self.last = None  # bytes of the last response sent
        self.status = 0  # final status sent, 0 before
        self.context = None  # the proxy's response context; dropped with the request
        self.again = None  # ANSWER or ASK once finished when its answer can be rebuilt
        self.due = None
        self.interval = T1
        self.give_up = 0
        self.seq = 0

    def release(self):
        """Drop the links to messages and the response context (the table forgot us)."""
        self.request = None
        self.context = None


class ClientTransaction:
    """A request we send to one destination (one branch of a response context).

    Keeps the request (for CANCEL and ACK) and its bytes (for retransmission) until the
    final response; then only the key, the destination, the ACK's bytes and the timer.
    """

    def __init__(self, key, method, request, data, dest, context, now, timer_c=0):
        self.key = key
        self.method = method
        self.kind = INVITE_CLIENT if method == "INVITE" else NON_INVITE_CLIENT
        self.state = CALLING if self.kind == INVITE_CLIENT else TRYING
        self.request = request  # the Message sent; None for a CANCEL we generated
        self.data = data  # bytes, for retransmission
        self.dest = dest
        self.context = context  # the proxy's response context, None for a CANCEL
        self.status = 0  # final status received (408 on a timeout)
        self.cancel = _NO_CANCEL
        self.ack = None  # bytes of the ACK for a non-2xx final
        self.interval = T1
        self.due = now + T1  # Timer A or E
        self.give_up = now + LINGER  # Timer B or F
        self.timer_c = now + timer_c if timer_c else None
        self.stage = 0  # the proxy's serial stage this branch belongs to
        self.seq = 0

    def release(self):
        """Drop the links to messages and the response context."""
        self.request = None
        self.data = None
        self.context = None

    def pending(self):
        """True until a final response (or a timeout) ended the branch."""
        return self.state < COMPLETED


def hop_request(r, method, to):
    """CANCEL or non-2xx ACK for the request r we forwarded: its Request-URI, our Via (same
    branch), its Route set, From, Call-ID and CSeq number (§9.1, §17.1.1.3)."""
    m = Message()
    m.method = method
    m.uri = r.uri
    m.add("Via", r.first_value("via"))
    for value in r.values("route"):
        m.add("Route", value)
    m.add("Max-Forwards", "70")
    m.add("From", r.get("from"))
    m.add("To", to)
    m.add("Call-ID", r.get("call-id"))
    m.add("CSeq", "%s %s" % (r.get("cseq").split()[0], method))
    return m.to_bytes()


def server_key(request, via):
    """Matching key for a request (§17.2.3); ACK and CANCEL match their INVITE's key when
    given method "INVITE" (see cancel_key)."""
    method = "INVITE" if request.method == "ACK" else request.method
    branch = via.branch()
    if branch.startswith("z9hG4bK"):
        return "%s|%s:%s|%s" % (branch, via.host, via.port, method)
    # RFC 2543 peers: no magic cookie
    from_value = request.get("from") or ""
    return "%s|%s|%s|%s|%s" % (request.get("call-id"), request.get("cseq").split()[0],
                               from_value, via.text(), method)


def sibling_key(key, method):
    """The key of the transaction with the same branch and another method (CANCEL's INVITE)."""
    return key[:key.rfind("|")] + "|" + method


class TransactionTable:
    """Every transaction by key, the state machine that moves them, and their timers.

    compact: keep finished transactions as small integers (see the module docstring); off
    for a user that needs the whole finished transaction (the trunk re-ACKs 2xx through it).
    """

    def __init__(self, limit, timer_c=180000, compact=True):
        self.limit = limit
        self.timer_c = timer_c  # ms
        self.all = {}  # key -> transaction object: in progress, or finished and kept whole
        self.active = {}  # key -> transaction with timers running
        self.lingering = []  # [(until, key)] in order: finished, kept whole
        self.gens = {} if compact else None  # until (ms) -> {slot: packed}: finished, compact
        self.kept = 0  # entries in gens
        self.keep_limit = limit * _KEEP_PER_SLOT
        self.next_due = None
        self.seq = 0

    def get(self, key):
        """The transaction with this key, or None."""
        return self.all.get(key)

    def busy(self):
        """How many transactions are work in progress."""
        return len(self.active)

    def held(self):
        """How many transactions the table holds: in progress, and finished ones lingering."""
        return len(self.all) + self.kept

    def finished(self, key):
        """(what, final status) of a finished transaction kept compactly under key, or None."""
        if not self.kept:
            return None
        slot, check = key_hash(key)
        for gen in self.gens.values():
            packed = gen.get(slot)
            if packed is not None and packed >> 12 == check:
                return (packed >> 10) & 3, packed & 1023
        return None

    def add(self, txn):
        """Register txn as active; False when the table is full of work in progress."""
        if len(self.active) >= self.limit:
            return False
        while len(self.all) >= self.limit and self.lingering:
            self._drop_oldest()
        self.seq += 1
        txn.seq = self.seq
        self.all[txn.key] = txn
        self.active[txn.key] = txn
        self.wake(txn.due)
        return True

    def wake(self, due):
        """Make sure due() runs no later than due (ms)."""
        if due is not None and (self.next_due is None or due < self.next_due):
            self.next_due = due

    # the state machine -----------------------------------------------------
    def handle(self, txn, event, now, status=0, response=None):
        """Feed event to txn; return the actions for its user (see the module docstring).

        response: for a client transaction, the Message received (the ACK copies its To).
        """
        entry = transition(txn.kind, txn.state, event)
        if entry is None:
            return []
        state, steps = entry
        before = txn.state
        txn.state = state
        out = []
        if steps:
            for step in _STEPS:
                if steps & step:
                    self._step(txn, step, event, response, out)
        if event in (SUCCESS, FAILURE) and txn.kind < INVITE_SERVER and before < COMPLETED:
            txn.status = status
        self._timers(txn, before, event, now, status)
        if state != before:
            linger = LINGERING.get(txn.kind << 4 | state)
            if linger is not None:
                self._finish(txn, now, linger)
        return out

    def send_response(self, txn, status, data, now):
        """The user sends a response on server transaction txn: (SEND, ...) actions, or []
        when the state takes no such response (a provisional after the final)."""
        if transition(txn.kind, txn.state, event_for(status)) is None:
            return []
        txn.last = data
        if status >= 200 and not txn.status:
            txn.status = status
            txn.request = None
            txn.context = None
        self.handle(txn, event_for(status), now, status)
        return [(SEND, data, txn.source)]

    def _step(self, txn, step, event, response, out):
        if step == _DELIVER:
            out.append((DELIVER,))
        elif step == _RESEND:
            if txn.kind >= INVITE_SERVER:
                if txn.last is not None:
                    out.append((SEND, txn.last, txn.source))
            elif txn.data is not None:
                out.append((SEND, txn.data, txn.dest))
        elif step == _ACK:
            if txn.ack is None and txn.request is not None:
                to = response.get("to") if response is not None else None
                txn.ack = hop_request(txn.request, "ACK", to or txn.request.get("to"))
                txn.request = None
            if txn.ack is not None:
                out.append((SEND, txn.ack, txn.dest))
        elif step == _STRAY:
            out.append((STRAY_2XX,))
        elif step == _WANT_CANCEL:
            if txn.cancel == _NO_CANCEL:
                txn.cancel = _CANCEL_WANTED
        elif step == _CANCEL or (step == _CANCEL_IF_WANTED and txn.cancel == _CANCEL_WANTED):
            if txn.cancel != _CANCEL_SENT:
                txn.cancel = _CANCEL_SENT
                out.append((SEND_CANCEL,))
        elif step == _TIMEOUT:
            txn.status = 408
            if event == TIMER_C:
                name = "C"
            else:
                name = "B" if txn.kind == INVITE_CLIENT else "F"
            out.append((TIMEOUT, name))

    def _timers(self, txn, before, event, now, status):
        """Arm, re-arm or stop txn's timers after a transition."""
        kind = txn.kind
        state = txn.state
        if event == RETRANSMIT_TIMER:
            if kind == INVITE_CLIENT:
                txn.interval *= 2  # Timer A doubles without a cap
            elif state == PROCEEDING:
                txn.interval = T2  # Timer E once a provisional came
            else:
                txn.interval = min(txn.interval * 2, T2)  # Timers E and G
            txn.due = min(now + txn.interval, txn.give_up)
        elif kind == INVITE_CLIENT and event == PROVISIONAL and state == PROCEEDING:
            if status > 100:
                txn.timer_c = now + self.timer_c  # Timer C restarts on each provisional
            txn.due = txn.timer_c  # Timer A and B stop
        elif kind == NON_INVITE_CLIENT and before == TRYING and state == PROCEEDING:
            txn.interval = T2
            txn.due = now + T2
        elif kind == INVITE_SERVER and state == COMPLETED and before == PROCEEDING:
            txn.interval = T1  # Timer G
            txn.due = now + T1
            txn.give_up = now + LINGER  # Timer H
        else:
            return
        self.wake(txn.due)

    def fire(self, txn, now):
        """txn's timer is due: the event it means (by state) fed to the machine."""
        if txn.kind == INVITE_CLIENT and txn.state == PROCEEDING:
            return self.handle(txn, TIMER_C, now)
        if now >= txn.give_up:
            return self.handle(txn, GIVE_UP_TIMER, now)
        return self.handle(txn, RETRANSMIT_TIMER, now)

    # bookkeeping -------------------------------------------------------------
    def _finish(self, txn, now, linger):
        """Stop txn's timers and drop what it no longer needs; keep it linger ms to absorb
        retransmissions (0: forget it now)."""
        self.active.pop(txn.key, None)
        txn.due = None
        if txn.kind < INVITE_SERVER:
            txn.data = None
            if txn.state != COMPLETED or txn.ack is not None or txn.kind != INVITE_CLIENT:
                txn.request = None  # kept only by a timed-out INVITE: its late final is ACKed
        if txn.key in self.all:
            what = self._compact(txn) if linger and self.gens is not None else None
            if what is not None:
                self._forget(txn.key)
                if what >= 0:
                    self._keep(txn.key, what, txn.status, now + linger)
            elif linger:
                self.lingering.append((now + linger, txn.key))
            else:
                self._forget(txn.key)

    @staticmethod
    def _compact(txn):
        """What finished txn still does, when an integer can say it; None: kept whole; -1:
        nothing at all (an INVITE client in Accepted: a further 2xx goes upstream statelessly
        with or without it, §16.7 step 5, which is all RFC 6026's Timer M asks of a proxy)."""
        if txn.kind == INVITE_CLIENT:
            return -1 if txn.state == ACCEPTED else None  # Completed: kept for its ACK's bytes
        if txn.kind == NON_INVITE_SERVER:
            return txn.again
        return ABSORB

    def _keep(self, key, what, status, until):
        gens = self.gens
        if self.kept >= self.keep_limit:
            self.kept -= len(gens.pop(min(gens)))  # the oldest generation makes room
        until = (until + _GEN_MS - 1) // _GEN_MS * _GEN_MS
        gen = gens.get(until)
        if gen is None:
            gen = gens[until] = {}
        slot, check = key_hash(key)
        if slot not in gen:
            self.kept += 1
        gen[slot] = check << 12 | what << 10 | status

    def drop(self, txn):
        """Forget txn at once (its request could not be handled: nothing will end it)."""
        self.active.pop(txn.key, None)
        txn.due = None
        self._forget(txn.key)

    def expire(self, now):
        """Forget lingering transactions whose time is up."""
        if self.kept:
            for until in [u for u in self.gens if u <= now]:
                self.kept -= len(self.gens.pop(until))
        lingering = self.lingering
        n = 0
        while n < len(lingering) and lingering[n][0] <= now:
            key = lingering[n][1]
            if key not in self.active:
                self._forget(key)
            n += 1
        if n:
            del lingering[:n]

    def _drop_oldest(self):
        key = self.lingering.pop(0)[1]
        if key not in self.active:
            self._forget(key)

    def _forget(self, key):
        txn = self.all.pop(key, None)
        if txn is not None:
            txn.release()

    def shift_times(self, ms):
        """The clock started a new epoch: every stored time moves back by ms."""
        for txn in self.all.values():
            if txn.due is not None:
                txn.due -= ms
            if txn.give_up:
                txn.give_up -= ms
            if getattr(txn, "timer_c", None) is not None:
                txn.timer_c -= ms
        self.lingering = [(until - ms, key) for until, key in self.lingering]
        if self.gens:
            old = self.gens
            self.gens = {}
            for until in old:
                self.gens[until - ms] = old[until]
        if self.next_due is not None:
            self.next_due -= ms

    def due(self, now):
        """Active transactions whose timer has come, oldest deadline (then oldest
        transaction) first, never in dict order; recomputes next_due."""
        if self.next_due is None or now < self.next_due:
            return []
        fired = []
        soonest = None
        for txn in self.active.values():
            due = txn.due
            if due is None:
                continue
            if due <= now:
                fired.append(txn)
            elif soonest is None or due < soonest:
                soonest = due
        self.next_due = soonest
        if len(fired) > 1:
            fired.sort(key=lambda t: (t.due, t.seq))
        return fired
