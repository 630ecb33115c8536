"""switchboard.clock.Clock: an exact integer-ms clock over a wrapping tick counter."""

from switchboard.clock import Clock

PERIOD = 1 << 29  # supervisor.ticks_ms / adafruit_ticks wrap here
HOUR = 3_600_000
DAY = 24 * HOUR


class FakeTicks:
    """A millisecond counter that wraps every `period`, like supervisor.ticks_ms()."""

    def __init__(self, start, period=PERIOD):
        self.real = start  # unwrapped ms
        self.period = period

    def __call__(self):
        return self.real % self.period

    def advance(self, ms):
        self.real += ms


def test_starts_at_start_value():
    ticks = FakeTicks(12345)
    assert Clock(ticks).now() == 0
    assert Clock(ticks, start=777).now() == 777


def test_counts_elapsed_ms():
    ticks = FakeTicks(1000)
    clock = Clock(ticks)
    ticks.advance(1)
    assert clock.now() == 1
    ticks.advance(999)
    assert clock.now() == 1000
    assert clock.now() == 1000  # no time passed


def test_exact_across_several_wraps():
    ticks = FakeTicks(PERIOD - 5)  # just below the wrap point
    clock = Clock(ticks)
    elapsed = 0
    wraps = 0
    for step in (3, 4, 10, PERIOD - 1, 1, PERIOD // 2, PERIOD // 2 + 7, 123_456_789, 2) * 2:
        before = ticks()
        ticks.advance(step)
        wraps += ticks() < before
        elapsed += step
        assert clock.now() == elapsed
    assert wraps >= 4  # it really wrapped several times


def test_one_ms_across_the_wrap():
    ticks = FakeTicks(PERIOD - 1)
    clock = Clock(ticks)
    ticks.advance(1)
    assert ticks() == 0
    assert clock.now() == 1
    ticks.advance(1)
    assert clock.now() == 2


def test_monotonic_and_never_negative_across_wraps():
    ticks = FakeTicks(PERIOD - 2 * HOUR)
    clock = Clock(ticks)
    last = clock.now()
    for _ in range(500):
        ticks.advance(HOUR // 3 + 17)
        now = clock.now()
        assert now > last
        last = now


def _simulate(start_total, days=100, step=HOUR):
    ticks = FakeTicks(PERIOD - 1234)
    clock = Clock(ticks, start=start_total)
    expected = start_total
    for _ in range(days * DAY // step):
        ticks.advance(step)
        expected += step
        value = clock.now()
        assert value == expected
        assert type(value) is int
    return clock, expected


def test_hundred_days_from_2_pow_31():
    clock, expected = _simulate(1 << 31)
    assert expected == (1 << 31) + 100 * DAY
    assert clock.now() == expected
    # after 100 days a 1 ms step is still visible (a float seconds clock loses it)
    clock.ticks.advance(1)
    assert clock.now() == expected + 1


def test_hundred_days_beyond_2_pow_32():
    clock, expected = _simulate((1 << 32) + 5)
    assert clock.now() == expected
    assert expected > 1 << 33
    for _ in range(3):
        clock.ticks.advance(1)
    assert clock.now() == expected + 3


def test_other_period():
    ticks = FakeTicks(250, period=256)
    clock = Clock(ticks, period=256)
    total = 0
    for step in (5, 1, 200, 255, 100):
        ticks.advance(step)
        total += step
        assert clock.now() == total


# --- epochs: a board's clock stays below 2**30 -------------------------------------------------
def test_epoch_restart_keeps_values_small_and_moves_listeners():
    ticks = FakeTicks(PERIOD - 1234)
    clock = Clock(ticks, limit=1 << 29)
    shifts = []
    clock.listeners.append(shifts.append)
    due = None  # a timer kept the way the engine keeps one: an absolute time on this clock
    elapsed = 0
    for _ in range(100 * DAY // HOUR):
        ticks.advance(HOUR)
        elapsed += HOUR
        before = len(shifts)
        now = clock.now()
        if len(shifts) > before:
            due -= shifts[-1]  # what a listener does
        if due is None or now >= due:
            assert due is None or now - due < HOUR  # fired on time, not a day late
            due = now + 5 * HOUR + 17
        assert 0 <= now < 1 << 29
        assert clock.uptime() == elapsed  # exact across epochs
    assert clock.epochs == len(shifts) >= 30 and set(shifts) == {1 << 28}


def test_epoch_restart_is_exact_to_the_millisecond():
    ticks = FakeTicks(0)
    clock = Clock(ticks, limit=1 << 29)
    ticks.advance((1 << 29) - 1)
    assert clock.now() == (1 << 29) - 1 and clock.epochs == 0
    ticks.advance(1)
    assert clock.now() == 1 << 28 and clock.epochs == 1
    assert clock.uptime() == 1 << 29
    ticks.advance(1)
    assert clock.now() == (1 << 28) + 1 and clock.uptime() == (1 << 29) + 1


def test_without_limit_no_epochs():
    ticks = FakeTicks(0)
    clock = Clock(ticks)
    for _ in range(3):
        ticks.advance(PERIOD - 1)
        clock.now()
    assert clock.epochs == 0 and clock.now() == 3 * (PERIOD - 1) == clock.uptime()
