"""The dashboard and JSON API on adafruit_httpserver, polled from the main loop.

adafruit_httpserver handles a whole request inside poll() and waits on slow
clients; DashboardServer bounds that: a request must arrive whole within
REQUEST_BUDGET_MS and fit in MAX_REQUEST bytes, or the client gets 408/431 and
is dropped, so SIP never waits long behind HTTP. A malformed request gets 400. A
listener that fails is started again.
"""

from adafruit_httpserver import GET, JSONResponse, Request, Response, Route, Server
from adafruit_httpserver.authentication import Basic, check_authentication

from switchboard import VERSION
from switchboard.ratelimit import Lockout

REQUEST_BUDGET_MS = 150  # longest one HTTP request may hold the loop while arriving
SOCKET_TIMEOUT = 0.05  # seconds per receive call
MAX_REQUEST = 2048  # bytes of request line and headers
SECURITY = {
    "Content-Security-Policy": "default-src 'self'; style-src 'unsafe-inline'; "
                               "script-src 'unsafe-inline'; img-src data:",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}
API_HEADERS = {"Cache-Control": "no-store"}
LOGIN_FAILURES = 5  # wrong passwords in a row before a client is refused for a while
LOGIN_BLOCK_MS = 60000
MAX_FAILING = 16
ERRORS = {400: "Bad Request", 408: "Request Timeout", 431: "Request Header Fields Too Large"}


def _raw_reply(sock, code):
    text = ERRORS[code]
    body = "%d %s\n" % (code, text)
    head = "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n" \
           "Connection: close\r\n\r\n" % (code, text, len(body))
    try:
        sock.send((head + body).encode())
    except OSError:
        pass


class DashboardServer(Server):
    """adafruit_httpserver's Server with a time and size budget per request."""

    def __init__(self, pool, clock):
        Server.__init__(self, pool, None)
        self.clock = clock
        self.socket_timeout = SOCKET_TIMEOUT
        self.request_buffer_size = 512
        self.refused = 0

    def _read_head(self, sock):
        """(request head, 0), or (what came, HTTP error code) when over budget."""
        data = b""
        deadline = self.clock.now() + REQUEST_BUDGET_MS
        while b"\r\n\r\n" not in data:
            if len(data) > MAX_REQUEST:
                return data, 431
            if self.clock.now() >= deadline:
                return data, 408 if data else 0
            try:
                n = sock.recv_into(self._buffer, len(self._buffer))
            except OSError:
                continue  # this receive timed out: go on until the deadline
            if not n:
                return data, 400 if data else 0  # the client closed early
            data += self._buffer[:n]
        return data, 0

    def _drain(self, sock):
        """Read what the client already sent (bounded), so closing does not reset the answer."""
        deadline = self.clock.now() + REQUEST_BUDGET_MS
        for _ in range(32):
            if self.clock.now() >= deadline:
                return
            try:
                if not sock.recv_into(self._buffer, len(self._buffer)):
                    return
            except OSError:
                return

    def _receive_request(self, sock, client_address):
        data, code = self._read_head(sock)
        if not data:
            return None
        request = None
        if not code:
            try:
                request = Request(self, sock, client_address, data)
                if not request.path.startswith("/"):
                    code = 400
            except (ValueError, UnicodeError, IndexError, KeyError):
                code = 400
        if code:
            self.refused += 1
            if code == 431:
                self._drain(sock)
            _raw_reply(sock, code)
            return None
        request.body = b""  # the API takes no bodies
        return request


class Dashboard:
    """The HTTP service: routes, rendering, and the upkeep of the listener."""

    def __init__(self, app, pool, host, port, web_dir="web", password="", netinfo=None,
                 boot=None):
        self.app = app
        self.engine = app.engine
        self.clock = app.clock
        self.log = app.log
        self.host = host
        self.port = port
        self.web_dir = web_dir
        self.netinfo = netinfo or (lambda: {})
        self.boot = boot or {}
        self.auth = [Basic("admin", password)] if password else []
        self.failed_logins = 0
        self.failing = Lockout(LOGIN_FAILURES, LOGIN_BLOCK_MS, MAX_FAILING)
        self.restarts = 0
        self.errors = 0
        self.memory_errors = 0  # requests that ran out of heap (SIP goes on)
        self.quiet_until = 0
        # host mode: a callable, false while select() saw no connection waiting on the
        # listener (then poll() skips the server's accept(), which fails with an exception);
        # None on a board: the server is asked every turn
        self.ready = None
        server = self.server = DashboardServer(pool, self.clock)
        server.headers = SECURITY
        server.add_routes([
            Route("/", GET, self.page),
            Route("/api/status", GET, self.api_status),
            Route("/api/registrations", GET, self.api_registrations),
            Route("/api/calls", GET, self.api_calls),
            Route("/api/history", GET, self.api_history),
            Route("/api/state", GET, self.api_state),
        ])
        from switchboard import views  # extensions, charts, ladders, controls (issue 16)

        self.views = views
        self.sampler = views.add_routes(self, heap_free)
        server.start(host, port)

    def poll(self, now):
        if self.ready is not None and not self.ready():
            return
        listener = getattr(getattr(self.server, "_sock", None), "_socknum", None)  # W5500
        try:
            self.server.poll()
        except MemoryError as e:  # a page or JSON answer too big for the heap left
            self.memory_errors += 1  # adafruit_httpserver closed that connection
            import gc

            gc.collect()
            self._warn(now, "dashboard: out of memory serving a request (%r; %s bytes free "
                            "now); SIP goes on" % (e, heap_free()))
        except OSError as e:
            self._warn(now, "dashboard: listener failed (%r); starting it again" % (e,))
            self.restart()
        except Exception as e:  # a bad request, or no socket free: never stop the loop
            text = str(e)
            if "listening socket" in text or "has been closed" in text:
                # adafruit_wiznet5k: accept() gave the listener to a client and could not open
                # a new one, or the listener fell to CLOSED: listen afresh
                self._warn(now, "dashboard: listener lost (%r); starting it again" % (e,))
                self._close_orphan(listener)
                self.restart()
            else:
                self._warn(now, "dashboard: request failed: %r" % (e,))

    def _warn(self, now, text):
        """Count every error; print at most one line per 10 s (a dead chip fails each poll)."""
        self.errors += 1
        if now >= self.quiet_until:
            self.quiet_until = now + 10000
            self.log("warning", text)

    def shift_times(self, ms):
        """The board clock restarted its epoch: stored times move back by ms. Login blocks
        are forgotten (at most once in 3 days)."""
        self.quiet_until -= ms
        self.failing = Lockout(LOGIN_FAILURES, LOGIN_BLOCK_MS, MAX_FAILING)
        self.sampler.stats.shift_times(ms)  # the charts' slot (views.py)
        if self.engine.trace is not None:  # the dashboard made the ring (views.py)
            self.engine.trace.shift_times(ms)

    def _close_orphan(self, num):
        """adafruit_wiznet5k's accept() moves the listener to a new chip socket, gives the old
        one to the client, and raises before returning it when the new one is not listening
        (a SYN came in between). Nothing owns that client socket then: close it on the chip,
        or it stays in use for good and the chip runs out of sockets."""
        sock = getattr(self.server, "_sock", None)
        if num is None or getattr(sock, "_socknum", num) == num:
            return
        eth = sock._interface
        try:
            eth.socket_disconnect(num)
            eth.socket_close(num)
            eth.release_socket(num)
        except (OSError, RuntimeError, ValueError):
            pass

    def restart(self):
        self.restarts += 1
        try:
            self.server.stop()
        except Exception:
            pass
        try:
            self.server.start(self.host, self.port)
        except Exception as e:
            self.log("error", "dashboard: cannot listen on %s:%d: %r" % (self.host, self.port, e))

    # access ------------------------------------------------------------------
    def refuse_control(self, request):
        """None when a control POST may go on; else its refusal: the password (401/429), or
        403 for a request sent from another site (its Origin is not this Host)."""
        denied = self._denied(request)
        if denied:
            return denied
        origin = request.headers.get("Origin")
        host = request.headers.get("Host") or ""
        if origin is not None and origin.split("://")[-1] != host:
            return JSONResponse(request, {"error": "cross-site request refused"},
                                status=(403, "Forbidden"), headers=API_HEADERS)
        return None

    def _denied(self, request):
        """None when the request may go on; else a 401, or 429 after repeated failures."""
        if not self.auth:
            return None
        ip = request.client_address[0] if request.client_address else "?"
        now = self.clock.now()
        left = self.failing.blocked(ip, now)
        if left:
            return Response(request, "Too many failed logins; try again later\n",
                            status=(429, "Too Many Requests"),
                            headers={"Retry-After": str(left // 1000 + 1)})
        if check_authentication(request, self.auth):
            self.failing.succeeded(ip)
            return None
        if request.headers.get_directive("Authorization") is not None:
            self.failed_logins += 1
            self.failing.failed(ip, now)
        return Response(request, "Authentication required\n", status=(401, "Unauthorized"),
                        headers={"WWW-Authenticate": 'Basic realm="Switchboard", charset="UTF-8"'})

    def _json(self, request, data):
        return self._denied(request) or JSONResponse(request, data, headers=API_HEADERS)

    # API ---------------------------------------------------------------------
    def status(self, now):
        eng = self.engine
        counters = {}
        for name in eng.counters:  # the engine's and the loop's (overload) counters
            counters[name] = eng.counters[name]
        counters["http_refused"] = self.server.refused
        counters["http_errors"] = self.errors
        counters["http_restarts"] = self.restarts
        counters["http_failed_logins"] = self.failed_logins
        counters["http_memory_errors"] = self.memory_errors
        limits = eng.config.limits()
        return {
            "name": "Switchboard", "version": VERSION, "uptime": uptime_ms(self.clock) // 1000,
            "sip": eng.sent_by, "domain": eng.domain, "network": self.netinfo(),
            "heap_free": heap_free(), "boot": self.boot,
            "tables": eng.tables(), "limits": limits,
            "blocked_sources": eng.blocked_sources(now),
            "auth": eng.auth.stats if eng.auth is not None else None,
            "counters": counters,
            "trunk": eng.gateway.status(now) if eng.gateway is not None else None,
        }

    def api_status(self, request):
        return self._json(request, self.status(self.clock.now()))

    def api_registrations(self, request):
        return self._json(request, self.engine.registrations(self.clock.now()))

    def api_calls(self, request):
        return self._json(request, self.engine.active_calls(self.clock.now()))

    def api_history(self, request):
        return self._json(request, self.engine.call_history(self.clock.now()))

    def api_state(self, request):
        now = self.clock.now()
        return self._json(request, {
            "status": self.status(now), "extensions": self.views.extensions(self.engine, now),
            "calls": self.engine.active_calls(now), "history": self.engine.call_history(now),
        })

    # page ----------------------------------------------------------------------
    def page(self, request):
        denied = self._denied(request)
        if denied:
            return denied
        now = self.clock.now()
        try:
            with open(self.web_dir + "/index.html") as f:
                template = f.read()
        except OSError:
            return Response(request, "web/index.html is missing\n", status=(500, "Error"))
        # the first extensions as the page's static view; the script draws the rest
        template = template.replace("<!--@extensions-->", self.views.render_extensions(
            self.views.extensions(self.engine, now)))
        return Response(request, template, content_type="text/html; charset=utf-8",
                        headers=API_HEADERS)


def uptime_ms(clock):
    """Exact uptime across the board clock's epochs (Clock.uptime), else its now()."""
    return clock.uptime() if hasattr(clock, "uptime") else clock.now()


try:
    from gc import mem_free as heap_free  # CircuitPython and MicroPython only
except ImportError:  # CPython: looked up once, not on every turn of the loop
    def heap_free():
        return None


def escape(text):
    return (str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;").replace("'", "&#39;"))
