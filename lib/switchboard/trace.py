"""A bounded ring of call-message summaries, for the dashboard's ladder diagrams.

Each SIP datagram of a call (CSeq method INVITE, ACK, CANCEL, BYE, PRACK or UPDATE) that
passes the engine, in or out, is kept as (time ms, inbound, peer "ip:port", first line,
Call-ID): only the start line and the Call-ID, never a header value or a body, so no
password, digest response or SDP is ever kept. MESSAGE_TRACE entries at most (0: off, not
imported); the oldest is overwritten.
"""

CALL_METHODS = (b"INVITE", b"ACK", b"CANCEL", b"BYE", b"PRACK", b"UPDATE")
MAX_LINE = 96  # longest first line kept
MAX_ID = 80  # longest Call-ID kept


def summary(data):
    """(first line, Call-ID) of a call message, or None for anything else."""
    head_end = data.find(b"\r\n\r\n")
    head = data if head_end < 0 else data[:head_end]
    # the usual spellings, found without a loop over the lines
    i = head.find(b"\r\nCall-ID:")
    c = head.find(b"\r\nCSeq:")
    if i > 0 and c > 0:
        i += 10
        c += 7
        e = head.find(b"\r", i)
        call_id = head[i:e] if e > 0 else head[i:]
        e = head.find(b"\r", c)
        return _summary(head[:head.find(b"\r")], call_id.strip(),
                        (head[c:e] if e > 0 else head[c:]).split())
    call_id = None
    method = None
    lines = head.split(b"\n")
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
    return _summary(lines[0], call_id, [b"", method] if method else ())


def _summary(first, call_id, cseq):
    if len(cseq) != 2 or not call_id:
        return None
    method = cseq[1].upper()
    if method not in CALL_METHODS:
        return None
    first = first.strip()
    if first.startswith(b"SIP/2.0 "):
        first = first[8:]
    elif first.endswith(b" SIP/2.0"):
        first = first[:-8]
    try:
        return (first[:MAX_LINE].decode(), call_id[:MAX_ID].decode())
    except UnicodeError:
        return None


class Trace:
    def __init__(self, size):
        self.size = size
        self.ring = []
        self.next = 0  # where the next entry goes once the ring is full

    def add(self, data, peer, inbound, now):
        got = summary(data)
        if got is None:
            return
        entry = (now, inbound, "%s:%d" % (peer[0], peer[1]), got[0], got[1])
        ring = self.ring
        if len(ring) < self.size:
            ring.append(entry)
        else:
            ring[self.next] = entry
            self.next = (self.next + 1) % self.size

    def shift_times(self, ms):
        """The board clock restarted its epoch (clock.py): every stored time moves back by ms."""
        ring = self.ring
        for i in range(len(ring)):
            e = ring[i]
            ring[i] = (e[0] - ms, e[1], e[2], e[3], e[4])

    def messages(self, call_id):
        """The entries of one call, oldest first."""
        n = len(self.ring)
        start = self.next if n == self.size else 0
        out = []
        for i in range(n):
            e = self.ring[(start + i) % n]
            if e[4] == call_id:
                out.append(e)
        return out

    def call_ids(self):
        """Call-IDs with messages in the ring."""
        seen = {}
        for e in self.ring:
            seen[e[4]] = True
        return seen
