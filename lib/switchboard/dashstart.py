"""Starting and keeping the dashboard on a board; imported only when HTTP_PORT is not 0.

DashboardStart imports adafruit_httpserver (through switchboard.http) and the driver's socket
pool only when the dashboard is on, and survives their failing for lack of heap: SIP goes
on, the console says why, and it tries again later (the heap may have room then); its
status() is the "dashboard" part of /api/status. DashboardGuard keeps the listener alive on
the W5500.
"""

import gc


def heap_free():
    try:
        return gc.mem_free()
    except AttributeError:  # CPython (tests)
        return None


class DashboardStart:
    """A service (poll(now)) that starts the dashboard, and again RETRY_MS later when it could
    not start for lack of heap (at most TRIES times)."""

    TRIES = 3
    RETRY_MS = 60000

    def __init__(self, app, net, config, boot, netinfo, pool=None, pbx=None):
        self.app = app
        self.net = net
        self.config = config
        self.boot = boot
        self.netinfo = netinfo
        self.pool = pool
        self.pbx = pbx  # the dialplan, whose routes (/api/pbx) the dashboard gets
        self.dashboard = None
        self.guard = None
        self.state = "off"
        self.reason = None
        self.tries = 0
        self.next_try = 0

    def start(self, now):
        """True when the dashboard runs; False when it failed (state/reason say why)."""
        self.tries += 1
        log = self.app.log
        try:
            if self.pool is None:
                from adafruit_wiznet5k.adafruit_wiznet5k_socketpool import SocketPool

                self.pool = SocketPool(self.net.eth)
            from switchboard.http import Dashboard

            dashboard = Dashboard(self.app, self.pool, self.net.ip, self.config.http_port, "web",
                                  self.config.dashboard_password, self.netinfo, self.boot)
            if self.pbx is not None:
                from switchboard.pbx import add_routes

                add_routes(dashboard, self.pbx)
            self.guard = DashboardGuard(dashboard, self.net)
        except MemoryError as e:
            gc.collect()
            self.state = "waiting" if self.tries < self.TRIES else "off"
            self.reason = "out of memory starting it (%r; %s bytes free after a collection)" \
                % (e, heap_free())
            self.next_try = now + self.RETRY_MS
            log("error", "dashboard: %s; SIP goes on%s" % (
                self.reason, "; trying again in %d s" % (self.RETRY_MS // 1000)
                if self.state == "waiting" else ""))
            return False
        except ImportError as e:
            self.state, self.reason = "off", "missing library: %s" % e
            log("warning", "dashboard off: %s (copy adafruit_httpserver to lib/)" % e)
            return False
        except (OSError, RuntimeError, ValueError) as e:
            self.state = "off"
            self.reason = "cannot listen on port %d: %r" % (self.config.http_port, e)
            log("error", "dashboard off: " + self.reason)
            return False
        self.dashboard = dashboard
        self.state = "on"
        return True

    def poll(self, now):
        if self.guard is not None:
            self.guard.poll(now)
        elif self.state == "waiting" and now >= self.next_try:
            earlier = self.reason
            if self.start(now):
                self.reason = "started on try %d (before: %s)" % (self.tries, earlier)
                self.app.log("info", "dashboard: " + self.reason)

    def shift_times(self, ms):
        self.next_try -= ms
        if self.guard is not None:
            self.guard.next_check -= ms
            self.dashboard.shift_times(ms)

    def status(self):
        d = self.dashboard
        return {"state": self.state, "reason": self.reason, "tries": self.tries,
                "memory_errors": d.memory_errors if d is not None else 0}


class DashboardGuard:
    """The dashboard as a service that survives the W5500: no HTTP while the link is down,
    and a listener whose hardware socket fell to CLOSED (the driver's accept() then fails
    forever) is started again."""

    def __init__(self, dashboard, net, check_ms=1000):
        self.dashboard = dashboard
        self.net = net
        self.check_ms = check_ms
        self.next_check = 0
        self.revived = 0

    def poll(self, now):
        if not self.net.link:
            return
        if now >= self.next_check:
            self.next_check = now + self.check_ms
            if not self.listening():
                self.revived += 1
                self.net.log("warning", "dashboard: listener lost on the chip; starting it again")
                self.dashboard.restart()
        self.dashboard.poll(now)

    def listening(self):
        sock = getattr(self.dashboard.server, "_sock", None)
        if sock is None or getattr(sock, "_socket_closed", False):
            return False
        n = getattr(sock, "_socknum", None)
        if n is None:
            return True
        try:
            return self.net.eth.socket_status(n) != 0x00  # SNSR_SOCK_CLOSED
        except (OSError, RuntimeError, ValueError):
            return True
