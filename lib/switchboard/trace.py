"""A bounded ring of call-message summaries, for the dashboard's ladder diagrams.

Each SIP datagram of a call (CSeq method INVITE, ACK, CANCEL, BYE, PRACK or UPDATE) that
passes the engine, in or out, is kept as (time ms, inbound, peer (ip, port), first line,
Call-ID), the last two as the bytes they were: only the start line and the Call-ID, never
a header value or a body, so no password, digest response or SDP is ever kept in it. They
become text ("ip:port", str) only when the dashboard reads them: the ring sees every datagram.
On a host the datagrams wait in a queue of at most 256 (references to the datagrams the
engine read or wrote) and only the newest call messages among them are summarized, when the
queue is full or something reads the ring; a board summarizes each datagram at once.
MESSAGE_TRACE entries at most (0: off, not imported); the oldest is overwritten.
"""

import sys

CALL_METHODS = (b"INVITE", b"ACK", b"CANCEL", b"BYE", b"PRACK", b"UPDATE")
MAX_LINE = 96  # longest first line kept
MAX_ID = 80  # longest Call-ID kept


def summary(data):
    """(first line, Call-ID) of a call message as text, or None for anything else."""
    return _text(_raw(data))


def _raw(data):
    """(first line, Call-ID) of a call message as bytes, or None for anything else: what the
    ring keeps (made text only when the dashboard reads it)."""
    end = data.find(b"\r\n\r\n")
    if end < 0:
        end = len(data)
    # the usual spellings, found in the header without a loop over its lines
    i = data.find(b"\r\nCall-ID:", 0, end)
    c = data.find(b"\r\nCSeq:", 0, end)
    if i > 0 and c > 0:
        e = data.find(b"\r", c + 7)  # (-1: the line ends the datagram)
        cseq = data[c + 7:e if e > 0 else end].split()
        if len(cseq) != 2 or cseq[1].upper() not in CALL_METHODS:
            return None
        e = data.find(b"\r", i + 10)
        call_id = data[i + 10:e if e > 0 else end].strip()
        return (data[:data.find(b"\r")], call_id) if call_id else None
    call_id = None
    method = None
    lines = data[:end].split(b"\n")
    for line in lines[1:]:
        colon = line.find(b":")
        if colon <= 0:
            continue
        name = line[:colon].strip().lower()
        if name in (b"call-id", b"i"):
            call_id = line[colon + 1:].strip()
        elif name == b"cseq":
            parts = line[colon + 1:].split()
            if len(parts) == 2:
                method = parts[1].upper()
        if call_id is not None and method is not None:
            break
    if not call_id or method not in CALL_METHODS:
        return None
    return lines[0], call_id


def _text(raw):
    """The ring's (first line, Call-ID) bytes as text, status lines without "SIP/2.0 " and
    request lines without " SIP/2.0"; None when they are not UTF-8."""
    if raw is None:
        return None
    first = raw[0].strip()
    if first.startswith(b"SIP/2.0 "):
        first = first[8:]
    elif first.endswith(b" SIP/2.0"):
        first = first[:-8]
    try:
        return (first[:MAX_LINE].decode(), raw[1][:MAX_ID].decode())
    except UnicodeError:
        return None


class Trace:
    def __init__(self, size):
        self.size = size
        self.ring = []
        self.next = 0  # where the next entry goes once the ring is full
        # add() holds (now, inbound, peer, data); flush() summarizes the newest call messages
        # among them (the ones the ring keeps) when depth are held or a reader asks. On a
        # host 256 wait: at thousands of datagrams a second most entries of a small ring
        # would be overwritten before anyone reads them. A board summarizes each datagram
        # at once: a held datagram is heap.
        self.queue = []
        self.depth = 256 if sys.implementation.name == "cpython" else 1

    def add(self, data, peer, inbound, now):
        queue = self.queue
        queue.append((now, inbound, peer, data))
        if len(queue) >= self.depth:
            self.flush()

    def flush(self):
        """Summarize the held datagrams into the ring (every reader calls it first)."""
        queue = self.queue
        kept = []
        i = len(queue)
        while i and len(kept) < self.size:
            i -= 1
            e = queue[i]
            got = _raw(e[3])
            if got is not None:
                # as bytes, made text by messages() and call_ids(); the line cut where a long
                # one is shown cut anyway (" SIP/2.0" comes off a request line shorter than that)
                kept.append((e[0], e[1], e[2], got[0][:MAX_LINE + 8], got[1][:MAX_ID]))
        del queue[:]
        ring = self.ring
        for entry in reversed(kept):
            if len(ring) < self.size:
                ring.append(entry)
            else:
                ring[self.next] = entry
                self.next = (self.next + 1) % self.size

    def shift_times(self, ms):
        """The board clock restarted its epoch (clock.py): every stored time moves back by ms."""
        self.flush()
        ring = self.ring
        for i in range(len(ring)):
            e = ring[i]
            ring[i] = (e[0] - ms, e[1], e[2], e[3], e[4])

    def messages(self, call_id):
        """The entries of one call, oldest first, as (ms, inbound, "ip:port", first line,
        Call-ID)."""
        self.flush()
        n = len(self.ring)
        start = self.next if n == self.size else 0
        out = []
        for i in range(n):
            e = self.ring[(start + i) % n]
            text = _text((e[3], e[4]))
            if text is not None and text[1] == call_id:
                out.append((e[0], e[1], "%s:%d" % (e[2][0], e[2][1]), text[0], text[1]))
        return out

    def call_ids(self):
        """Call-IDs with messages in the ring."""
        self.flush()
        seen = {}
        for e in self.ring:
            text = _text((e[3], e[4]))
            if text is not None:
                seen[text[1]] = True
        return seen
