"""Flood limits before parsing: a token bucket per source address.

Each datagram costs one token; a source gets RATE_LIMIT tokens a second up to
RATE_BURST. A source that keeps sending into an empty bucket (BLOCK_AFTER
datagrams refused in a row) is blocked for RATE_BLOCK seconds. The table of
sources is bounded: when it is full, the quietest source is forgotten.
"""

BLOCK_AFTER = 50


class RateLimit:
    """A token bucket per source IP, with blocking of sources that keep flooding."""

    def __init__(self, rate, burst, block_ms, max_sources):
        self.rate = rate  # tokens a second
        self.burst = max(burst, 1)
        self.block_ms = block_ms
        self.max_sources = max_sources
        self.sources = {}  # ip -> [milli-tokens, last ms, refused in a row, blocked until ms]
        self.refused = 0
        self.blocks = 0

    def allow(self, ip, now):
        """Take a token for one datagram from ip; False when it is to be dropped."""
        entry = self.sources.get(ip)
        if entry is None:
            if len(self.sources) >= self.max_sources:
                self._forget_one(now)
            entry = self.sources[ip] = [self.burst * 1000, now, 0, 0]
        if entry[3] > now:
            self.refused += 1
            return False
        tokens = entry[0] + (now - entry[1]) * self.rate
        cap = self.burst * 1000
        if tokens > cap:
            tokens = cap
        entry[1] = now
        if tokens >= 1000:
            entry[0] = tokens - 1000
            entry[2] = 0
            return True
        entry[0] = tokens
        entry[2] += 1
        self.refused += 1
        if entry[2] >= BLOCK_AFTER:
            entry[2] = 0
            entry[3] = now + self.block_ms
            self.blocks += 1
        return False

    def _forget_one(self, now):
        """Drop the source that would have the most tokens now (the quietest), never a blocked one
        unless all are blocked."""
        best = None
        best_score = None
        for ip in self.sources:
            e = self.sources[ip]
            # ties go to the smallest address: never to dict order (MicroPython's differs)
            score = (0 if e[3] > now else 1, e[0] + (now - e[1]) * self.rate)
            if best_score is None or score > best_score or (score == best_score and ip < best):
                best, best_score = ip, score
        del self.sources[best]

    def shift_times(self, ms):
        """The board clock started a new epoch: the stored times move back by ms."""
        for entry in self.sources.values():
            entry[1] -= ms
            entry[3] -= ms

    def blocked(self, now):
        """[(ip, seconds left)] of sources blocked now."""
        out = []
        for ip in sorted(self.sources):
            until = self.sources[ip][3]
            if until > now:
                out.append((ip, (until - now + 999) // 1000))
        return out


class Lockout:
    """Sources refused for a while after repeated failures (wrong passwords), bounded: when
    the table is full the entry whose block ends first is forgotten."""

    def __init__(self, failures, block_ms, max_sources):
        self.failures = failures
        self.block_ms = block_ms
        self.max_sources = max_sources
        self.sources = {}  # ip -> [failures in a row, blocked until ms]

    def __len__(self):
        return len(self.sources)

    def blocked(self, ip, now):
        """Milliseconds ip is still refused for (0 when it is not)."""
        entry = self.sources.get(ip)
        if entry is None or entry[1] <= now:
            return 0
        return entry[1] - now

    def shift_times(self, ms):
        """The board clock started a new epoch: the stored times move back by ms."""
        for entry in self.sources.values():
            entry[1] -= ms

    def succeeded(self, ip):
        """ip got it right: its failures are forgotten."""
        self.sources.pop(ip, None)

    def failed(self, ip, now):
        """ip failed once more; blocked for block_ms after `failures` in a row."""
        entry = self.sources.get(ip)
        if entry is None:
            if len(self.sources) >= self.max_sources:
                first = None
                for k in self.sources:  # ties: the smallest address, never dict order
                    if first is None or (self.sources[k][1], k) < (self.sources[first][1],
                                                                    first):
                        first = k
                del self.sources[first]
            entry = self.sources[ip] = [0, 0]
        entry[0] += 1
        if entry[0] >= self.failures:
            entry[0] = 0
            entry[1] = now + self.block_ms
