"""An exact integer-millisecond clock for months of uptime.

CircuitPython's float time.monotonic() loses milliseconds after hours, and its
integer tick counters wrap (supervisor.ticks_ms and adafruit_ticks every 2**29
ms, about 6.2 days). Clock turns any wrapping millisecond counter into an exact
int, provided now() is called at least once per period.

Without a limit (host mode, tests) now() grows for ever. On a board small ints end at
2**30 (about 12.4 days in ms): past that every now() and every sum with it would be a
heap-allocated long. With limit=L the clock restarts its epoch instead: when now() would
reach L it takes L // 2 off, counts the epoch and calls each listener with that shift, so
that whoever stored times from this clock moves them by the same amount (an expiry 30 s
ahead stays 30 s ahead). With L = 2**29 and a counter wrapping at 2**29, no value the
clock computes reaches 2**30. uptime() is the exact, ever-growing time for display.
"""


class Clock:
    def __init__(self, ticks, period=1 << 29, start=0, limit=None):
        self.ticks = ticks  # callable returning the counter in ms
        self.period = period
        self.last = ticks()
        self.total = start
        self.limit = limit  # None: never restart the epoch
        self.epochs = 0  # epochs restarted so far
        self.shift = limit >> 1 if limit else 0  # ms taken off at each restart
        self.listeners = []  # callables(shift_ms) run at each restart

    def now(self):
        t = self.ticks()
        total = self.total + (t - self.last) % self.period
        self.last = t
        if self.limit is not None and total >= self.limit:
            total -= self.shift
            self.epochs += 1
            self.total = total
            for listener in self.listeners:
                listener(self.shift)
        self.total = total
        return total

    def uptime(self):
        """What now() would say without epochs: exact, ever-growing (a long after 12 days);
        for display (log lines, uptime), not for timers."""
        return self.now() + self.epochs * self.shift
