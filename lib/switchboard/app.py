"""The cooperative main loop shared by the board and host mode.

One step: drain the SIP socket (a bounded number of datagrams), run the
engine's timers, then give the dashboard its turn. The caller supplies the
socket pool, the clock and an idle function (select() on a host, a short sleep
or nothing on a board); code.py is the only place that knows which.
"""

from switchboard.engine import Engine
from switchboard.udp import UDPEndpoint

BURST = 16  # datagrams handled per step before timers and HTTP get a turn
FAULT_LOG_MS = 10000  # at most one console line per this many ms about failures in the loop


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
        self.services = []  # objects with poll(now): the dashboard, DHCP upkeep, watchdog
        self.faults = 0  # exceptions the loop caught (one datagram, one timer, one service)
        self.fault_log = {}  # where -> [ms of its last console line, faults not printed since]

    def fault(self, where, error, now):
        """Count an exception from one datagram, timer run or service and go on; print at most
        one console line per FAULT_LOG_MS for each place (a flood of bad packets must not
        flood the console)."""
        self.faults += 1
        self.engine.counters["internal_errors"] += 1  # shown on /api/status
        seen = self.fault_log.get(where)
        if seen is not None and now - seen[0] < FAULT_LOG_MS:
            seen[1] += 1
            return
        more = " (%d more since the last report)" % seen[1] if seen and seen[1] else ""
        self.fault_log[where] = [now, 0]
        self.log("error", "loop: %s failed: %r%s; carrying on" % (where, error, more))

    def step(self):
        """One turn of the loop; returns ms until the engine next needs a tick."""
        now = self.clock.now()
        engine = self.engine
        send = self.sip.send
        for _ in range(BURST):
            try:
                got = self.sip.recv()
                if got is None:
                    break
                for data, dest in engine.receive(got[0], got[1], now):
                    send(data, dest)
            except Exception as e:  # one datagram must never stop the loop
                self.fault("datagram", e, now)
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
        return engine.next_due(now)

    def run(self, running, idle):
        """Loop while running() is true; idle(ms) waits for traffic or the next timer."""
        while running():
            wait = self.step()
            idle(wait)
        self.sip.close()
