"""The chart ring (stats.py): one slot per 10 s of differences, 60 slots, oldest first."""

from switchboard.stats import SLOTS, Stats


def test_slots_hold_differences_and_lowest_heap():
    s = Stats()
    s.sample(0, 100, 0, 0, 5000)
    s.sample(5000, 130, 1, 0, 4000)
    s.sample(9999, 150, 1, 0, 4500)
    assert s.view()["messages"] == []
    s.sample(10000, 160, 2, 1, 4800)
    v = s.view()
    assert v["messages"] == [60] and v["answered"] == [2] and v["failed"] == [1]
    assert v["heap_free"] == [4000]
    s.sample(20000, 160, 2, 1, None)
    assert s.view()["messages"] == [60, 0] and s.view()["heap_free"] == [4000, 4800]


def test_ring_is_bounded_oldest_first_and_survives_a_stall():
    s = Stats()
    for n in range(SLOTS + 5):
        s.sample(n * 10000, n * n, 0, 0, None)
    v = s.view()
    assert len(v["messages"]) == SLOTS
    assert v["messages"][-1] == (SLOTS + 4) ** 2 - (SLOTS + 3) ** 2
    assert v["messages"][0] == 5 ** 2 - 4 ** 2 and v["heap_free"][0] is None
    s.sample(10 ** 7, 0, 0, 0, None)  # the loop stalled for a long time: one slot, then on
    s.sample(10 ** 7 + 10000, 0, 0, 0, None)
    assert len(s.view()["messages"]) == SLOTS


def test_open_slot_comes_last_with_its_length():
    s = Stats()
    s.sample(0, 10, 0, 0, 900)
    v = s.view(4000, 30, 1, 0)
    assert v["messages"] == [20] and v["answered"] == [1] and v["open_seconds"] == 4
    assert v["heap_free"] == [900]
    for n in range(1, SLOTS + 1):
        s.sample(n * 10000, 10 + n, 0, 0, None)
    v = s.view(SLOTS * 10000 + 2000, 10 + SLOTS + 7, 0, 0)
    assert len(v["messages"]) == SLOTS and v["messages"][-1] == 7 and v["messages"][-2] == 1


def test_a_new_clock_epoch_moves_the_open_slot():
    s = Stats()
    s.sample(50000, 0, 0, 0, None)
    s.shift_times(40000)
    s.sample(19999, 5, 0, 0, None)
    assert s.view()["messages"] == []
    s.sample(20000, 7, 0, 0, None)
    assert s.view()["messages"] == [7]
