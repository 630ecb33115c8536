"""Counters over time for the dashboard's charts: a ring of per-10-s slots, 10 minutes.

sample(now, messages, answered, failed, heap) takes running totals (SIP datagrams received
plus sent, calls answered, calls failed) and the free heap (None where unknown); every
SLOT_MS it closes a slot with the differences. Four lists of SLOTS small integers: about
1 KB on a 32-bit board, fixed.
"""

SLOT_MS = 10000
SLOTS = 60


class Stats:
    def __init__(self):
        self.messages = [0] * SLOTS
        self.answered = [0] * SLOTS
        self.failed = [0] * SLOTS
        self.heap = [-1] * SLOTS  # lowest free heap seen in the slot, -1 unknown
        self.filled = 0  # slots closed so far (at most SLOTS)
        self.next = 0  # index of the slot being counted
        self.closes = None  # ms when the current slot closes
        self.last = None  # totals at the start of the current slot

    def sample(self, now, messages, answered, failed, heap):
        if self.closes is None:
            self.closes = now + SLOT_MS
            self.last = (messages, answered, failed)
        if now >= self.closes:
            self._close(now, messages, answered, failed)
        i = self.next
        if heap is not None and (self.heap[i] < 0 or heap < self.heap[i]):
            self.heap[i] = heap

    def _close(self, now, messages, answered, failed):
        i = self.next
        last = self.last
        self.messages[i] = messages - last[0]
        self.answered[i] = answered - last[1]
        self.failed[i] = failed - last[2]
        self.last = (messages, answered, failed)
        self.next = (i + 1) % SLOTS
        self.heap[self.next] = -1
        self.filled = min(SLOTS, self.filled + 1)
        self.closes += SLOT_MS
        if now >= self.closes:  # the loop stalled for more than a slot: start afresh
            self.closes = now + SLOT_MS

    def shift_times(self, ms):
        """The board clock restarted its epoch (clock.py): the slot's end moves back by ms."""
        if self.closes is not None:
            self.closes -= ms

    def view(self, now=None, messages=0, answered=0, failed=0):
        """The closed slots, oldest first: messages per slot etc.; heap null where unknown.
        With now and the running totals, the slot still open comes last (its length in
        open_seconds), so the charts show traffic before the first slot closes."""
        n = self.filled
        start = (self.next - n) % SLOTS
        idx = [(start + k) % SLOTS for k in range(n)]
        view = {
            "slot_seconds": SLOT_MS // 1000,
            "messages": [self.messages[i] for i in idx],
            "answered": [self.answered[i] for i in idx],
            "failed": [self.failed[i] for i in idx],
            "heap_free": [self.heap[i] if self.heap[i] >= 0 else None for i in idx],
            "open_seconds": 0,
        }
        if now is not None and self.last is not None:
            last = self.last
            i = self.next
            view["open_seconds"] = max(1, (now - (self.closes - SLOT_MS)) // 1000)
            view["messages"].append(messages - last[0])
            view["answered"].append(answered - last[1])
            view["failed"].append(failed - last[2])
            view["heap_free"].append(self.heap[i] if self.heap[i] >= 0 else None)
            if n == SLOTS:  # still ten minutes in all
                for key in ("messages", "answered", "failed", "heap_free"):
                    view[key].pop(0)
        return view
