"""The cooperative main loop shared by the board and host mode.

One step: drain the SIP socket (a bounded number of datagrams), run the
engine's timers, then give the dashboard its turn. The caller supplies the
socket pool, the clock and an idle function (select() on a host, a short sleep
or nothing on a board); code.py is the only place that knows which.
"""

from switchboard.auth import Auth
from switchboard.engine import Engine
from switchboard.udp import UDPEndpoint

BURST = 16  # datagrams handled per step before timers and HTTP get a turn


class App:
    def __init__(self, config, pool, clock, log, secret, sip=None):
        self.config = config
        self.clock = clock
        self.log = log
        seed = secret[0] << 16 | secret[1] << 8 | secret[2]
        self.engine = Engine(config, seed, log)
        if config.sip_auth != "off":
            self.engine.auth = Auth(config, secret)
        if sip is None:  # the board passes its own W5500 endpoint
            sip = UDPEndpoint(pool, config.sip_host, config.sip_port, config.max_message_size,
                              log)
        self.sip = sip
        self.services = []  # objects with poll(now): the dashboard, DHCP upkeep, watchdog

    def step(self):
        """One turn of the loop; returns ms until the engine next needs a tick."""
        now = self.clock.now()
        engine = self.engine
        send = self.sip.send
        for _ in range(BURST):
            got = self.sip.recv()
            if got is None:
                break
            for data, dest in engine.receive(got[0], got[1], now):
                send(data, dest)
        for data, dest in engine.tick(now):
            send(data, dest)
        for service in self.services:
            service.poll(now)
        return engine.next_due(now)

    def run(self, running, idle):
        """Loop while running() is true; idle(ms) waits for traffic or the next timer."""
        while running():
            wait = self.step()
            idle(wait)
        self.sip.close()
