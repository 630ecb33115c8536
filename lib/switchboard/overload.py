"""Overload control: shed new work early and cheaply when the loop falls behind (RFC 6357 §4).

A proxy that falls behind spends its time on retransmissions and timers of calls that are
already lost, and its goodput collapses. Three cheap parts keep it doing useful work:

- `method(data)` reads a datagram's first bytes: the request method, b"" for a response,
  None for anything else. Nothing is parsed.
- `scan(data)` finds only the Via, From, To, Call-ID and CSeq lines (compact forms too), and
  `answer_503(fields, ...)` builds a 503 with Retry-After from them (RFC 3261 §8.2.6,
  §21.5.4), with a To tag derived from the Call-ID so a retransmission gets the same answer.
  A datagram whose headers cannot be found gets nothing.
- `Overload` decides what share of new work to shed from how far behind the loop stays
  (the age of the oldest datagram waiting, its least over each 100 ms); and it
  remembers the branches of the last INVITEs and REGISTERs it let through, so that their
  retransmissions are absorbed (dropped) while shedding instead of getting a 503.

New work is a request without a To tag other than ACK, CANCEL and BYE (INVITE, REGISTER,
OPTIONS, SUBSCRIBE, ...). ACK, CANCEL, BYE (it ends work, whatever its To), in-dialog
requests (re-INVITE, ...) and every response always reach the engine. Sans-I/O: bytes and
integer ms in, bytes out.
"""

SHED_TAG = b"sbov"  # To tag prefix of our 503s: their ACKs are absorbed here, not relayed
RETRY_AFTER = 5  # seconds (RFC 3261 §21.5.4); phones retry then, or fail over elsewhere
HIGH_MS = 50  # more is shed while the oldest waiting datagram stays this old for STEP_MS...
LOW_MS = 10  # ...less once it was this young (the queue emptied) at some point in STEP_MS
HIGH_DEPTH = 2048  # ...and more while this many datagrams wait
STEP_MS = 50  # how often the share of new work shed moves (100 let admitted calls queue past
# their 500 ms retransmission at 4x: bench/host_load.py, docs/performance.md section 4)
MEMORY = 256  # INVITE branches remembered to tell a retransmission from a new INVITE
FREE = 4  # while shedding, new work still goes through while fewer datagrams than this wait

_NAMES = {b"via": 0, b"v": 0, b"from": 1, b"f": 1, b"to": 2, b"t": 2, b"call-id": 3, b"i": 3,
          b"cseq": 4}
_RAW = {}  # header names as written -> their _NAMES slot (-1: not one of the five)...
_RAW_MAX = 64  # ...for at most this many spellings (the rest are lower-cased each time)
_OUR_TAG = b"tag=" + SHED_TAG
_REMEMBER = (b"INVITE", b"REGISTER")  # new work whose retransmissions must not get a 503


def method(data):
    """The request method (bytes) from the first bytes, b"" for a response, None otherwise."""
    sp = data.find(b" ", 0, 24)
    if sp <= 0:
        return None
    first = data[:sp]
    if first == b"SIP/2.0":
        return b""
    if first.isalpha() and first.isupper():
        return first
    return None


def scan(data):
    """[[Via values], From, To, Call-ID, CSeq] as bytes from the header lines, or None when
    one of them is missing. Only these five names are looked at (compact forms too);
    folded lines are joined; the body is never touched."""
    end = data.find(b"\r\n\r\n")
    if end < 0:
        end = data.find(b"\n\n")
        if end < 0:
            end = len(data)
    lines = data[:end].split(b"\n")
    vias = []
    found = [vias, None, None, None, None]
    last = -1
    names = _RAW
    for i in range(1, len(lines)):
        line = lines[i]
        if not line or line == b"\r":
            continue
        if line[0] in (32, 9):  # a folded continuation of the previous header
            if last == 0:
                vias[-1] = vias[-1] + b" " + line.strip()
            elif last > 0:
                found[last] = found[last] + b" " + line.strip()
            continue
        colon = line.find(b":")
        if colon <= 0:
            last = -1
            continue
        raw = line[:colon]
        slot = names.get(raw)
        if slot is None:
            slot = _NAMES.get(raw.strip().lower(), -1)
            if len(names) < _RAW_MAX:
                names[raw] = slot
        last = slot
        if slot < 0:
            continue
        value = line[colon + 1:].strip()
        if slot == 0:
            vias.append(value)
        elif found[slot] is None:
            found[slot] = value
        else:
            last = -1  # a second From/To/...: keep the first
    if not vias or not vias[0] or None in found:
        return None
    return found


def plainly_untagged(data):
    """True when the datagram's only header line starting with "t" (any case) is a To
    written "To:", not folded, with no "tag" in it at all: new work, told without scan().
    False when that cannot be told so plainly (scan() and tag() then decide)."""
    end = data.find(b"\r\n\r\n")
    if end < 0:
        return False
    head = data[:end].lower()
    at = head.find(b"\nto:")
    if at < 0 or head.count(b"\nt") != 1:
        return False  # no To, or another line that could be one (t:, to :, a second To)
    line_end = head.find(b"\n", at + 4)
    if line_end < 0:
        line_end = end
    elif head[line_end + 1:line_end + 2] in (b" ", b"\t"):
        return False  # the To value goes on, folded (a slice: the line may end the head)
    return head.find(b"tag", at + 4, line_end) < 0


def _after(v, key):
    """The parameter value after key (b";tag=") in v, up to the next ";", or None."""
    i = v.find(key)
    if i < 0:
        return None
    v = v[i + len(key):]
    semi = v.find(b";")
    return (v if semi < 0 else v[:semi]).strip()


def tag(value):
    """The tag parameter of a From/To value (lower case), or None. Only the parameters after
    the name-addr count, not those of the URI inside <>."""
    v = value.lower()
    return _after(v[v.rfind(b">") + 1:].replace(b" ", b"").replace(b"\t", b""), b";tag=")


def branch(via):
    """The branch parameter of the first value of a Via (lower case), or None."""
    return _after(via.split(b",", 1)[0].lower(), b";branch=")


def quick_branch(data):
    """The first branch parameter in the datagram (the top Via's: no other header carries
    one), found with one search; None when it is not written ";branch=" in lower case."""
    i = data.find(b";branch=")
    if i < 0:
        return None
    end = data.find(b"\n", i)
    return branch(data[i:end if end > 0 else len(data)]) or None


def reply_address(via, source):
    """Where a stateless answer goes (RFC 3261 §18.2.2, RFC 3581): the source address, and
    the source port only when the top Via asked for rport, else its sent-by port (5060)."""
    return stamp_via(via, source)[1]


def stamp_via(via, source):
    """(the top Via value with received= and, when asked for, rport= filled in (§18.2.1,
    RFC 3581), reply_address()); the value comes back unchanged when it holds a quoted
    string. One reading of the top Via's parameters serves both."""
    comma = via.find(b",")
    first = via if comma < 0 else via[:comma]
    params = first.rstrip().split(b";")
    out = [params[0]]
    rport = False
    for p in params[1:]:
        name = p.split(b"=", 1)[0].strip().lower()
        if name == b"received":
            continue
        if name == b"rport":
            rport = True
            p = b"rport=%d" % source[1]
        out.append(p)
    if rport:
        dest = source
    else:
        port = 5060
        sent_by = params[0].split()
        if len(sent_by) >= 2:
            hostport = sent_by[-1]
            colon = hostport.rfind(b":")
            if colon > 0 and hostport.rfind(b"]") < colon and hostport[colon + 1:].isdigit():
                port = int(hostport[colon + 1:])
                if not 0 < port < 65536:
                    port = 5060
        dest = (source[0], port)
    if b'"' in first:
        return via, dest
    out.append(b"received=" + source[0].encode())
    return b";".join(out) + (b"" if comma < 0 else via[comma:]), dest


def answer_503(fields, source, retry_after=RETRY_AFTER, server=b"", tagged=None):
    """(a 503 Service Unavailable with Retry-After for the request fields came from, where it
    goes). tagged: whether the To value has a tag, when the caller already looked."""
    vias, from_, to, call_id, cseq = fields
    if tagged is None:
        tagged = tag(to) is not None
    if not tagged:
        to = to + b";tag=" + SHED_TAG + b"%06x" % (hash(call_id) & 0xFFFFFF)
    top, dest = stamp_via(vias[0], source)
    parts = [b"SIP/2.0 503 Service Unavailable\r\nVia: ", top]
    for v in vias[1:]:
        parts.append(b"\r\nVia: ")
        parts.append(v)
    parts.extend((b"\r\nFrom: ", from_, b"\r\nTo: ", to, b"\r\nCall-ID: ", call_id,
                  b"\r\nCSeq: ", cseq, b"\r\nRetry-After: %d\r\n" % retry_after))
    if server:
        parts.append(b"Server: " + server + b"\r\n")
    parts.append(b"Content-Length: 0\r\n\r\n")
    return b"".join(parts), dest


# what Overload.admit() says about one datagram
PASS = 0  # to the engine
SHED = 1  # answer with the 503 from Overload.answer
ABSORB = 2  # drop: an ACK to our 503, or a retransmission of an INVITE let through
DROP = 3  # new work whose headers cannot be found: nothing to answer


class Overload:
    """How much new work to shed, and the counters the dashboard shows.

    A share (percent) of new requests is answered 503, spread evenly. What moves it is the
    standing queue, as CoDel (RFC 8289) tells one from a burst: the least lag seen over
    STEP_MS. A pause (a garbage collection, a burst of arrivals) leaves the queue empty
    again within the step, so it moves nothing; a loop that no longer catches up does.
    Every STEP_MS the share rises by a quarter of what is left when the least lag was
    `high` ms or more (or `depth` datagrams waited throughout), to everything at four
    times `high`; it falls by a quarter when the least lag was `low` or less (the loop had
    time to spare), and holds in between. Shedding all or nothing would swing between
    admitting everyone and no one; a share that settles keeps calls flowing.

    The share lags behind the load: a call let through brings its answers, ACK and BYE
    later. When it is too high the queue runs dry and the loop would idle while new calls
    get 503s; so whatever the share, a new request goes through while fewer than `free`
    datagrams wait (the depth given to the last update()): refusing costs a call only when
    the loop has work for it."""

    def __init__(self, high=HIGH_MS, low=LOW_MS, depth=HIGH_DEPTH, memory=MEMORY,
                 retry_after=RETRY_AFTER, server=b"", free=FREE):
        self.high = high
        self.low = low
        self.depth = depth
        self.retry_after = retry_after
        self.server = server
        self.free = free
        self.share = 0  # percent of new requests answered 503
        self.shedding = False  # share > 0
        self.credit = 0  # spreads the share evenly over requests
        self.lag = 0  # age of the oldest datagram waiting at the last update (ms)
        self.waiting = 0  # datagrams waiting at the last update
        self.least = None  # least lag since the share last moved (ms)
        self.moved = None  # when the share last moved (ms)
        self.episodes = 0  # times shedding started
        self.seen = set()  # branches of INVITEs let through, the last `memory` of them
        self.ring = [None] * memory
        self.next = 0
        self.answer = None  # the 503 to send when admit() said SHED...
        self.reply_to = None  # ...and where to

    def update(self, lag, waiting, now):
        """Feed how far behind the loop is at now (ms): the oldest waiting datagram's age
        (ms) and how many wait. Returns whether new work is being shed."""
        self.lag = lag
        self.waiting = waiting
        if waiting >= self.depth and lag < self.high:
            lag = self.high  # a burst not yet old is as bad
        if self.least is None or lag < self.least:
            self.least = lag
        if self.moved is None or now < self.moved:
            self.moved = now
        if now - self.moved < STEP_MS:
            return self.shedding
        least = self.least
        share = self.share
        if least >= 4 * self.high:
            share = 100
        elif least >= self.high:
            share += (100 - share + 3) // 4
        elif least <= self.low:
            share -= (share + 3) // 4
        self.least = None
        self.moved = now
        if share and not self.share:
            self.episodes += 1
        self.share = share
        self.shedding = share > 0
        return self.shedding

    def _shed_next(self):
        """Whether the next new request is shed: share percent of them, evenly."""
        self.credit += self.share
        if self.credit >= 100:
            self.credit -= 100
            return True
        return False

    def _passing(self, data, remembered):
        """admit() of a request that is not refused whatever it is: ABSORB a retransmission
        of one let through; PASS the rest, new work taking its turn of the share."""
        b = quick_branch(data) if remembered else None
        if (remembered and b is None) or not plainly_untagged(data):
            fields = scan(data)  # an unusual spelling: read as when refusing
            if fields is None:
                return DROP
            if tag(fields[2]) is not None:
                return PASS  # in a dialog: not new work, no turn of the share
            b = branch(fields[0][0]) if remembered else None
        if b is not None and b in self.seen:
            return ABSORB
        if self.waiting >= self.free:
            self._shed_next()  # (not a refusal: the share's turn was checked)
        if b:
            self.remember(b)
        return PASS

    def remember(self, branch_id):
        ring = self.ring
        if not ring or branch_id in self.seen:
            return
        old = ring[self.next]
        if old is not None:
            self.seen.discard(old)
        ring[self.next] = branch_id
        self.seen.add(branch_id)
        self.next = (self.next + 1) % len(ring)

    def admit(self, data, source):
        """PASS, SHED (send self.answer to self.reply_to), ABSORB or DROP for one datagram.
        Outside shedding only two searches: the branch of INVITEs and REGISTERs (remembered),
        and our To tag in ACKs (an ACK to our 503 is absorbed whenever it comes). While
        shedding, a request that would pass whatever it is (the share's next turn is not a
        refusal) is only told new or not, cheaply when plainly written; the five headers
        are scanned for the 503 of one that may be refused."""
        m = method(data)
        if not m:  # a response, a keepalive or junk: the engine's business
            return PASS
        if m == b"ACK":
            return ABSORB if data.find(_OUR_TAG) > 0 else PASS
        remembered = m in _REMEMBER
        if not self.shedding:
            if remembered:
                b = quick_branch(data)
                if b:
                    self.remember(b)
            return PASS
        if m == b"CANCEL" or m == b"BYE":
            return PASS
        if self.waiting < self.free or self.credit + self.share < 100:
            return self._passing(data, remembered)
        fields = scan(data)
        if fields is None:
            return DROP
        if tag(fields[2]) is not None:
            return PASS  # in a dialog: re-INVITE, ...
        b = branch(fields[0][0]) if remembered else None
        if b is not None and b in self.seen:
            return ABSORB  # a retransmission of one let through: the engine answers that one
        self._shed_next()  # (a refusal: the check above said so)
        self.answer, self.reply_to = answer_503(fields, source, self.retry_after, self.server,
                                                False)
        return SHED
