"""Per-source token buckets before parsing."""

from flows import Phone, new_engine, status

from switchboard.ratelimit import BLOCK_AFTER, RateLimit


def test_burst_then_rate():
    rl = RateLimit(rate=10, burst=5, block_ms=60000, max_sources=8)
    assert [rl.allow("a", 0) for _ in range(6)] == [True] * 5 + [False]
    assert rl.allow("a", 100)  # 100 ms at 10/s is one token
    assert not rl.allow("a", 100)
    assert rl.allow("b", 100)  # other sources have their own bucket


def test_persistent_flooder_is_blocked_then_released():
    rl = RateLimit(rate=10, burst=5, block_ms=60000, max_sources=8)
    now = 0
    for _ in range(5 + BLOCK_AFTER):
        rl.allow("a", now)
    assert rl.blocked(now) == [("a", 60)]
    assert not rl.allow("a", now + 59000)
    assert rl.allow("a", now + 61000)
    assert rl.blocks == 1


def test_table_is_bounded_and_keeps_blocked_sources():
    rl = RateLimit(rate=10, burst=2, block_ms=60000, max_sources=4)
    for _ in range(2 + BLOCK_AFTER):
        rl.allow("flood", 0)
    for i in range(100):
        rl.allow("10.0.0.%d" % i, 1)
    assert len(rl.sources) == 4
    assert "flood" in rl.sources


def test_engine_drops_before_parsing_and_counts():
    engine = new_engine({"RATE_LIMIT": 1, "RATE_BURST": 3})
    alice = Phone("1001", "10.0.0.11")
    answered = [engine.receive(alice.register(cseq=i + 1), alice.addr, 1000) for i in range(5)]
    assert [len(out) for out in answered] == [1, 1, 1, 0, 0]
    assert status(answered[0][0][0]) == 200
    assert engine.counters["rate_limited"] == 2
    assert engine.table_use()["sources"] == 1


def test_rate_limit_zero_disables():
    engine = new_engine({"RATE_LIMIT": 0})
    assert engine.ratelimit is None


def test_lockout_blocks_after_failures_and_is_bounded():
    from switchboard.ratelimit import Lockout

    lock = Lockout(failures=3, block_ms=1000, max_sources=2)
    for _ in range(2):
        lock.failed("a", 0)
    assert lock.blocked("a", 0) == 0
    lock.failed("a", 0)
    assert lock.blocked("a", 10) == 990
    assert lock.blocked("a", 1000) == 0
    lock.succeeded("a")
    assert len(lock) == 0
    for ip in ("a", "b", "c"):
        lock.failed(ip, 0)
    assert len(lock) == 2


def test_eviction_ties_never_depend_on_insertion_order():
    for order in (("10.0.0.3", "10.0.0.1", "10.0.0.2"), ("10.0.0.2", "10.0.0.3", "10.0.0.1")):
        rl = RateLimit(rate=10, burst=2, block_ms=60000, max_sources=3)
        for ip in order:
            rl.allow(ip, 0)  # three equal buckets
        rl.allow("10.0.0.9", 0)  # one must go
        assert sorted(rl.sources) == ["10.0.0.2", "10.0.0.3", "10.0.0.9"]


def test_lockout_eviction_ties_never_depend_on_insertion_order():
    from switchboard.ratelimit import Lockout

    for order in (("b", "a", "c"), ("c", "a", "b")):
        lock = Lockout(failures=1, block_ms=1000, max_sources=3)
        for ip in order:
            lock.failed(ip, 0)  # all blocked until 1000
        lock.failed("d", 0)
        assert sorted(lock.sources) == ["b", "c", "d"]
