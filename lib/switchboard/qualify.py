"""Reachability of registered contacts: OPTIONS pings (RFC 3261 §11), Asterisk's "qualify".

A phone that lost power stays registered until its binding expires; a ping every
QUALIFY_INTERVAL seconds tells. Sans-I/O: the engine's tick calls tick(now, out), which
every SCAN_MS looks at the bindings of the next BATCH users and sends at most PER_SCAN pings
(bounded work per tick; with more than about 3,840 users a round takes longer than a
minute and pings come less often than the interval); responses whose top Via carries our
ping branch go to response(msg, now). Any answer
(even 404 or 405) means the phone is there. A ping that gets none within the timeout (half
the interval, at most TIMEOUT_MS; one retransmission halfway) marks a contact that answered
before as unreachable; the router then leaves it out when forking (and answers 480 when no
contact is left). A contact that never answered a ping (a client that ignores OPTIONS) stays
"unknown", is still called, and is asked SILENT_TRIES times only, until it registers again.
A REGISTER refresh counts as an answer. Imported only when QUALIFY_INTERVAL is not 0.
"""

BRANCH = "z9hG4bKsbq"  # our pings' branch prefix: their answers are ours, not the proxy's
SCAN_MS = 250  # how often a batch of bindings is looked at
BATCH = 16  # users looked at per scan: 64 users take 1 s, 3,840 a minute
PER_SCAN = 4  # pings sent per scan at most (16 a second)
TIMEOUT_MS = 5000  # longest wait for an answer
SILENT_TRIES = 2  # pings a contact that never answered one gets before we stop asking
# an entry: [due, sent_at or None, branch, rtt_ms or None, reachable (None unknown),
#            expires_at seen (a change means a REGISTER refresh), the user while the ping's
#            one retransmission is still to come (the bytes are made again, not kept),
#            unanswered pings in a row, the round that last saw it]
DUE, SENT, BRANCH_AT, RTT, UP, SEEN, DATA, MISSES, ROUND = 0, 1, 2, 3, 4, 5, 6, 7, 8


class Qualify:
    """here: our address (router.Here); location: the bindings; interval in seconds;
    seed: makes branches and Call-IDs unique per boot."""

    def __init__(self, here, location, interval, seed=0):
        self.here = here
        self.location = location
        self.interval = interval * 1000
        self.timeout = min(self.interval // 2, TIMEOUT_MS)
        self.seed = "%06x" % (seed & 0xFFFFFF)
        self.serial = 0
        self.entries = {}  # Binding -> entry (list above)
        self.pending = {}  # branch -> Binding, for pings waiting for an answer
        self.scan_at = 0
        self.order = []  # the users of the current round, by name
        self.cursor = 0  # the next of them to look at
        self.rounds = 0
        self.sent = 0  # pings sent, answers received, contacts found unreachable
        self.answered = 0
        self.lost = 0

    def reachable(self, binding):
        """False only for a contact that stopped answering (unknown counts as reachable)."""
        e = self.entries.get(binding)
        return e is None or e[UP] is not False

    def state(self, binding):
        """(reachable True/False/None, rtt_ms or None) for the dashboard."""
        e = self.entries.get(binding)
        if e is None:
            return None, None
        return e[UP], e[RTT]

    def next_due(self):
        return self.scan_at

    def tick(self, now, out):
        """Every SCAN_MS: look at the next BATCH users' bindings (a round goes through every
        user in name order, then starts again), send at most PER_SCAN pings."""
        if now < self.scan_at:
            return
        self.scan_at = now + SCAN_MS
        table = self.location.table
        if self.cursor >= len(self.order):
            self._forget_unseen()
            self.order = sorted(table)  # this round's users
            self.cursor = 0
            self.rounds += 1
        budget = PER_SCAN
        end = min(len(self.order), self.cursor + BATCH)
        for k in range(self.cursor, end):
            user = self.order[k]
            for b in table.get(user, ()):
                if b.expires_at > now:
                    budget = self._check(user, b, now, out, budget)
        self.cursor = end

    def _forget_unseen(self):
        """Drop the state of bindings the last round did not see (expired, removed, moved)."""
        for b in list(self.entries):
            if self.entries[b][ROUND] != self.rounds:
                self._clear(self.entries.pop(b))

    def _check(self, user, b, now, out, budget):
        """One binding's turn: note a REGISTER refresh, time out or retransmit its ping,
        or ping it when due and budget allows; returns the budget left."""
        e = self.entries.get(b)
        if e is None:
            # first ping one interval after the registration: the REGISTER was the answer
            e = self.entries[b] = [b.since + self.interval, None, "", None, None,
                                   b.expires_at, None, 0, 0]
        e[ROUND] = self.rounds
        if e[SEEN] != b.expires_at:  # refreshed by a REGISTER: it is there
            e[SEEN] = b.expires_at
            if e[UP] is False:
                e[UP] = True
            e[MISSES] = 0
            self._clear(e)
            e[DUE] = now + self.interval
        elif e[SENT] is not None:
            waited = now - e[SENT]
            if waited >= self.timeout:
                e[MISSES] += 1
                self._clear(e)
                e[DUE] = now + self.interval - self.timeout
                if e[RTT] is None:  # never answered one: maybe it ignores OPTIONS
                    if e[MISSES] >= SILENT_TRIES:
                        e[DUE] = b.expires_at  # ask again after it registers again
                elif e[UP] is not False:
                    self.lost += 1
                    e[UP] = False
            elif e[DATA] is not None and waited * 2 >= self.timeout:
                out.append((self._options(b, e[DATA], e[BRANCH_AT]), b.source))
                e[DATA] = None  # one retransmission halfway
        elif e[DUE] <= now and budget:
            budget -= 1
            self._ping(b, e, user, now, out)
        return budget

    def _clear(self, e):
        if e[SENT] is not None:
            self.pending.pop(e[BRANCH_AT], None)
        e[SENT] = None
        e[DATA] = None
        e[BRANCH_AT] = ""  # only a ping in flight needs its branch (a string: heap on a board)

    def _ping(self, b, e, user, now, out):
        self.serial += 1
        branch = "%s%s%x" % (BRANCH, self.seed, self.serial)
        e[SENT] = now
        e[BRANCH_AT] = branch
        e[DATA] = user
        self.pending[branch] = b
        self.sent += 1
        out.append((self._options(b, user, branch), b.source))

    def _options(self, b, user, branch):
        here = self.here
        return ("OPTIONS %s SIP/2.0\r\n"
                "Via: SIP/2.0/UDP %s;branch=%s;rport\r\n"
                "Max-Forwards: 70\r\n"
                "From: <sip:switchboard@%s>;tag=q%s\r\n"
                "To: <sip:%s@%s>\r\n"
                "Call-ID: q%s@%s\r\n"
                "CSeq: 1 OPTIONS\r\n"
                "Accept: application/sdp\r\n"
                "Content-Length: 0\r\n\r\n"
                % (b.uri, here.sent_by, branch, here.domain, self.seed, user, here.domain,
                   branch[len(BRANCH):], here.address)).encode()

    def response(self, msg, now):
        """True when msg answers one of our pings (then it is taken here)."""
        value = msg.first_value("via")
        if value is None or BRANCH not in value:  # most answers: not ours, no need to parse
            return False
        via = msg.top_via()
        if via is None:
            return False
        branch = via.branch() or ""
        if not branch.startswith(BRANCH):
            return False
        b = self.pending.pop(branch, None)
        e = self.entries.get(b) if b is not None else None
        if e is not None and e[SENT] is not None and msg.status >= 200:
            self.answered += 1
            e[RTT] = now - e[SENT]
            e[UP] = True
            e[MISSES] = 0
            e[SENT] = None
            e[DATA] = None
            e[BRANCH_AT] = ""
            e[DUE] = now + self.interval
        elif e is not None and msg.status < 200:
            self.pending[branch] = b  # a provisional answer: wait for the final one
        return True

    def shift_times(self, ms):
        """The board clock restarted its epoch (clock.py): every stored time moves back by
        ms, the expiry seen too (the location moves its own)."""
        self.scan_at -= ms
        for e in self.entries.values():
            e[DUE] -= ms
            e[SEEN] -= ms
            if e[SENT] is not None:
                e[SENT] -= ms

    def stats(self):
        return {"interval": self.interval // 1000, "pings": self.sent, "answers": self.answered,
                "lost": self.lost}
