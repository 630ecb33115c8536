"""An exact integer-millisecond clock for months of uptime.

CircuitPython's float time.monotonic() loses milliseconds after hours, and its
integer tick counters wrap (supervisor.ticks_ms and adafruit_ticks every 2**29
ms, about 6.2 days). Clock turns any wrapping millisecond counter into an
ever-growing exact int, provided now() is called at least once per period.
"""


class Clock:
    def __init__(self, ticks, period=1 << 29, start=0):
        self.ticks = ticks  # callable returning the counter in ms
        self.period = period
        self.last = ticks()
        self.total = start

    def now(self):
        t = self.ticks()
        self.total += (t - self.last) % self.period
        self.last = t
        return self.total
