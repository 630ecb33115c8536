"""The cooperative main loop shared by the board and host mode.

One step: drain the SIP socket into a bounded queue, each datagram stamped with the time it
was read; hand at most BURST of the queue to the engine; run the engine's timers; then give
the dashboard and the other services their turn. The caller supplies the socket pool, the
clock and an idle function (select() on a host, a short sleep or nothing on a board);
code.py is the only place that knows which.

Overload (overload.py): the age of the oldest queued datagram (and the queue's depth) says
how far behind the loop is; from it follows the share of new requests (INVITE, REGISTER,
OPTIONS, ...) answered with 503 and Retry-After as they are read, before they are parsed
or queued. ACK, CANCEL, in-dialog requests and responses always go to the engine; a
datagram identical to one still queued (a retransmission) is dropped. Timers run at most
every _TICK ms: each run looks at every transaction in progress, and SIP's timers count in
T1 = 500 ms. The board's dashboard and watchdog keep their turn every step.
"""

import sys

from switchboard.engine import Engine
from switchboard.udp import UDPEndpoint

try:
    from micropython import const  # names starting with _ vanish from the .mpy
except ImportError:  # CPython
    const = int

BURST = 16  # datagrams handled per step before timers and HTTP get a turn
_QUEUE = const(2048)  # datagrams read ahead of the engine; past this they wait in the socket
MEMORY = 4096  # INVITE/REGISTER branches remembered (fewer when MAX_TRANSACTIONS is lower)
_TICK = const(10)  # ms between timer runs at most (a run scans every active transaction)
_FAULT_LOG_MS = const(10000)  # at most one console line per this many ms about failures in the loop
PASS, SHED, ABSORB = 0, 1, 2  # overload.py's verdicts (imported only with OVERLOAD = 1)
DUPLICATE = -1  # the loop's own verdict beside those and overload.DROP
COUNTERS = ("shed", "shed_absorbed", "overloads", "queued_duplicates")  # added to the engine's


class App:
    def __init__(self, config, pool, clock, log, secret, sip=None):
        self.config = config
        self.clock = clock
        self.log = log
        seed = secret[0] << 16 | secret[1] << 8 | secret[2]
        auth = None
        if config.sip_auth != "off":
            from switchboard.auth import Auth  # digest off: no auth code, no hash library

            auth = Auth(config, secret)
        self.engine = Engine(config, seed, log, auth=auth)
        if sip is None:  # the board passes its own W5500 endpoint
            sip = UDPEndpoint(pool, config.sip_host, config.sip_port, config.max_message_size,
                              log)
        self.sip = sip
        self.overload = None  # OVERLOAD = 0 (a board whose heap has no room for it)
        if config.overload:
            from switchboard.overload import Overload
            from switchboard.proxy import SERVER

            self.overload = Overload(depth=256,  # about 60 ms of work: more is a standing queue
                                     memory=min(MEMORY, config.max_transactions),
                                     server=SERVER.encode())
        self.queue = []  # [data, source, ms when read]; consumed from self.head
        self.waiting = {}  # hash -> (datagram, source) queued: a retransmission of one is dropped
        self.head = 0
        self.ticked = 0  # when the engine's timers last ran (ms)
        self.shedding = False  # as last reported on the console
        self.shed_since = (0, 0)  # (ms, shed counter) when shedding started
        counters = self.engine.counters
        for name in COUNTERS:
            counters[name] = 0
        self.services = []  # objects with poll(now): the dashboard, DHCP upkeep, watchdog
        self.faults = 0  # exceptions the loop caught (one datagram, one timer, one service)
        self.fault_log = {}  # where -> [ms of its last console line, faults not printed since]

    def fault(self, where, error, now):
        """Count an exception from one datagram, timer run or service and go on; print at most
        one console line per _FAULT_LOG_MS for each place (a flood of bad packets must not
        flood the console)."""
        self.faults += 1
        self.engine.counters["internal_errors"] += 1  # shown on /api/status
        seen = self.fault_log.get(where)
        if seen is not None and now - seen[0] < _FAULT_LOG_MS:
            seen[1] += 1
            return
        more = " (%d more since the last report)" % seen[1] if seen and seen[1] else ""
        self.fault_log[where] = [now, 0]
        self.log("error", "loop: %s failed: %r%s; carrying on" % (where, error, more))

    def step(self):
        """One turn of the loop; returns ms until the loop has work again (0: a backlog)."""
        now = self.clock.now()
        engine = self.engine
        send = self.sip.send
        queue = self.queue
        # On a host (CPython), the 503s of the drain and what the burst answers go out
        # together after the burst: a peer waiting in poll() is woken once for them rather
        # than once a datagram. A board sends each answer at once: holding them would raise
        # its heap peak. (Not `const is int`: Blinka, which adafruit_httpserver pulls in on a
        # host, has a micropython module too.)
        held = [] if sys.implementation.name == "cpython" else None
        self.drain(now, held)
        end = min(len(queue), self.head + BURST)
        while self.head < end:
            item = queue[self.head]
            queue[self.head] = None
            self.head += 1
            try:
                self.waiting.pop(hash(item[0]), None)
                out = engine.receive(item[0], item[1], now)
                if held is not None:
                    held += out
                    continue
                for data, dest in out:
                    send(data, dest)
            except Exception as e:  # one datagram must never stop the loop
                self.fault("datagram", e, now)
        if held:
            for data, dest in held:
                send(data, dest)
        if self.head >= len(queue):
            del queue[:]
            self.head = 0
        elif self.head >= BURST * 8:
            del queue[:self.head]
            self.head = 0
        backlog = len(queue) - self.head
        if now - self.ticked >= _TICK or now < self.ticked:  # (a clock that went back: run)
            self.ticked = now
            try:
                for data, dest in engine.tick(now):
                    send(data, dest)
            except Exception as e:
                self.fault("timers", e, now)
        for service in self.services:
            try:
                service.poll(now)
            except Exception as e:
                self.fault(type(service).__name__, e, now)
        if backlog:
            return 0
        return max(engine.next_due(now), self.ticked + _TICK - now)

    def drain(self, now, out=None):
        """Read every waiting datagram (up to _QUEUE queued) and stamp it with now; while the
        loop is behind, answer new requests with 503 at once instead of queueing them (sent
        now, or added to out as (bytes, address) when step() holds its answers)."""
        queue = self.queue
        ov = self.overload
        engine = self.engine
        counters = engine.counters
        lag = now - queue[self.head][2] if self.head < len(queue) else 0
        recv = self.sip.recv
        while len(queue) - self.head < _QUEUE:
            try:
                got = recv()
                if got is None:
                    break
                verdict = PASS
                if ov is not None:
                    if ov.update(lag, len(queue) - self.head, now) != self.shedding:
                        self.overload_changed(now)
                    verdict = ov.admit(got[0], got[1])
                if verdict == PASS:
                    h = hash(got[0])
                    if self.waiting.get(h) != got:
                        self.waiting[h] = got
                        queue.append([got[0], got[1], now])
                        continue
                    verdict = DUPLICATE  # the same bytes from the same address while the
                    # first copy still waits: a retransmission, nothing new in it
                # not for the engine: counted here as the engine would, one token each
                counters["received"] += 1
                limit = engine.ratelimit  # a flooder is blocked while we shed, too
                if limit is not None and not limit.allow(got[1][0], now):
                    counters["rate_limited"] += 1
                elif verdict == DUPLICATE:
                    counters["queued_duplicates"] += 1
                elif verdict == SHED:
                    counters["shed"] += 1
                    counters["answered_5xx"] += 1
                    counters["sent"] += 1
                    if out is not None:
                        out.append((ov.answer, ov.reply_to))
                    else:
                        self.sip.send(ov.answer, ov.reply_to)
                elif verdict == ABSORB:
                    counters["shed_absorbed"] += 1
                else:
                    counters["dropped"] += 1
            except Exception as e:  # one datagram must never stop the loop
                self.fault("datagram", e, now)
        if ov is not None:
            counters["overloads"] = ov.episodes

    def shift_times(self, ms):
        """The board clock restarted its epoch: every time the loop stored moves back by ms
        (the fault log, the queue's read times, the last timer run, the overload step)."""
        for entry in self.fault_log.values():  # [last line ms, quiet]
            entry[0] -= ms
        for i in range(self.head, len(self.queue)):
            self.queue[i][2] -= ms
        self.ticked -= ms
        self.shed_since = (self.shed_since[0] - ms, self.shed_since[1])
        if self.overload is not None and self.overload.moved is not None:
            self.overload.moved -= ms

    def overload_changed(self, now):
        """One console line when shedding starts and one when it ends."""
        ov = self.overload
        counters = self.engine.counters
        self.shedding = ov.shedding
        if ov.shedding:
            self.shed_since = (now, counters["shed"])
            self.log("warning", "overload: the oldest datagram waited %d ms (%d waiting); "
                     "answering new requests with 503" % (ov.lag, ov.waiting))
        else:
            self.log("info", "overload over after %d ms: %d new requests answered with 503"
                     % (now - self.shed_since[0], counters["shed"] - self.shed_since[1]))

    def run(self, running, idle):
        """Loop while running() is true; idle(ms) waits for traffic or the next timer."""
        while running():
            wait = self.step()
            idle(wait)
        self.sip.close()
