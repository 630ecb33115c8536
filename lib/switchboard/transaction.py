"""Transactions over UDP (RFC 3261 §17): state, retransmission timers, matching keys.

Times are integer milliseconds passed in by the caller. The table is bounded:
transactions still in progress count against the limit (a full table makes
the proxy answer 503); finished transactions linger only to absorb
retransmissions and are evicted oldest first when room is needed.
"""

T1 = 500
T2 = 4000
T4 = 5000
LINGER = 64 * T1  # Timers B, F, H, J and D on UDP

# states
TRYING = 0  # client: Calling/Trying; server: Trying/Proceeding
PROCEEDING = 1
COMPLETED = 2
CONFIRMED = 3


class ServerTransaction:
    """A request we received: the last response re-sent on retransmissions."""

    def __init__(self, key, request, source, now):
        self.key = key
        self.method = request.method
        self.request = request  # dropped when finished
        self.source = source
        self.created = now
        self.state = TRYING
        self.last = None  # bytes of the last response sent
        self.status = 0  # final status sent, 0 before
        self.branches = []  # client transactions of the response context
        self.best = None  # best final response so far
        self.cancelled = False
        self.call = None  # the call record this INVITE started
        self.due = None
        self.interval = T1
        self.give_up = 0

    def release(self):
        """Drop the links to branches and messages so reference counting frees all of it
        at once (no cycle left for a garbage collector pause to find)."""
        for ct in self.branches:
            if ct.server is self:
                ct.server = None
        self.branches = []
        self.request = None
        self.best = None
        self.call = None


class ClientTransaction:
    """A request we forwarded to one target."""

    def __init__(self, key, method, request, data, dest, server, now):
        self.key = key
        self.method = method
        self.request = request  # the Message sent, for CANCEL and ACK
        self.data = data  # bytes, for retransmission
        self.dest = dest
        self.server = server
        self.state = TRYING
        self.status = 0
        self.cancel = 0  # 1 = wanted once a provisional arrives, 2 = sent
        self.ack = None  # bytes of the ACK sent for a non-2xx final
        self.interval = T1
        self.due = now + T1
        self.give_up = now + LINGER
        self.timer_c = None

    def release(self):
        self.server = None
        self.request = None


def server_key(request, via):
    """Matching key for a request (§17.2.3); ACK matches its INVITE."""
    method = "INVITE" if request.method == "ACK" else request.method
    branch = via.branch()
    if branch.startswith("z9hG4bK"):
        return "%s|%s:%s|%s" % (branch, via.host, via.port, method)
    # RFC 2543 peers: no magic cookie
    from_value = request.get("from") or ""
    return "%s|%s|%s|%s|%s" % (request.get("call-id"), request.get("cseq").split()[0],
                               from_value, via.text(), method)


class TransactionTable:
    def __init__(self, limit):
        self.limit = limit
        self.all = {}
        self.active = {}  # key -> transaction with timers running
        self.lingering = []  # [(until, key)] in order: finished, absorbing retransmissions
        self.next_due = None

    def get(self, key):
        return self.all.get(key)

    def busy(self):
        return len(self.active)

    def full(self):
        return len(self.active) >= self.limit

    def add(self, txn):
        """Register txn as active; False when the table is full of work in progress."""
        if len(self.active) >= self.limit:
            return False
        while len(self.all) >= self.limit and self.lingering:
            self._drop_oldest()
        self.all[txn.key] = txn
        self.active[txn.key] = txn
        self.wake(txn.due)
        return True

    def wake(self, due):
        if due is not None and (self.next_due is None or due < self.next_due):
            self.next_due = due

    def finish(self, txn, now, linger=LINGER):
        """Stop txn's timers; keep it linger ms to absorb retransmissions."""
        self.active.pop(txn.key, None)
        txn.due = None
        if txn.key in self.all:
            if linger:
                self.lingering.append((now + linger, txn.key))
            else:
                self._forget(txn.key)

    def expire(self, now):
        """Forget lingering transactions whose time is up."""
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

    def due(self, now):
        """Active transactions whose timer has come; recomputes next_due."""
        if self.next_due is None or now < self.next_due:
            return ()
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
        return fired
