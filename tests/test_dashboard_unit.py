"""The Dashboard service in process: listener restart, error logging, rendering."""

import socket

from flows import Phone

from switchboard.app import App
from switchboard.config import Config
from switchboard.http import Dashboard, escape
from switchboard.views import render_extensions


class FakeClock:
    def __init__(self):
        self.t = 0

    def now(self):
        return self.t


def make(tmp_path):
    lines = []
    config = Config(overrides={"SIP_HOST": "127.0.0.1", "SIP_PORT": 0, "HTTP_PORT": 0})
    clock = FakeClock()
    app = App(config, socket, clock, lambda level, text: lines.append(text), b"x" * 16)
    (tmp_path / "index.html").write_text("<table><!--@extensions--></table>")
    dash = Dashboard(app, socket, "127.0.0.1", 0, str(tmp_path))
    return app, dash, clock, lines


def test_listener_that_dies_is_started_again(tmp_path):
    app, dash, clock, lines = make(tmp_path)
    try:
        dash.server._sock.close()  # the listener dies under the server
        dash.poll(clock.now())
        assert dash.restarts == 1 and dash.server._sock.fileno() >= 0
        assert any("starting it again" in line for line in lines)
    finally:
        dash.server.stop()
        app.sip.close()


def test_repeated_errors_counted_but_printed_once_per_10_s(tmp_path):
    app, dash, clock, lines = make(tmp_path)
    try:
        def broken():
            raise RuntimeError("All sockets in use.")

        dash.server.poll = broken
        for _ in range(50):
            dash.poll(clock.now())
            clock.t += 100
        assert dash.errors == 50
        assert len([line for line in lines if "request failed" in line]) == 1
        clock.t += 10000
        dash.poll(clock.now())
        assert len([line for line in lines if "request failed" in line]) == 2
    finally:
        dash.server.poll = lambda: None
        app.sip.close()


def test_rendering_escapes_what_phones_send():
    view = {"extensions": [{"name": "<script>", "state": "idle", "contacts": [
        {"address": '"><img src=x onerror=alert(1)>'}]}]}
    html = render_extensions(view)
    assert "<script>" not in html and "<img" not in html
    assert escape("a&b<c>\"'") == "a&amp;b&lt;c&gt;&quot;&#39;"


def test_lost_w5500_listener_is_started_again(tmp_path):
    """adafruit_wiznet5k raises RuntimeError, not OSError, when accept() cannot open a new
    listening socket or the listener was closed: the dashboard listens afresh."""
    app, dash, clock, lines = make(tmp_path)
    try:
        for text in ("Failed to open new listening socket", "The socket has been closed."):
            def lost(text=text):
                raise RuntimeError(text)

            dash.server.poll = lost
            dash.poll(clock.now())
            clock.t += 20000
        assert dash.restarts == 2
        assert any("listener lost" in line for line in lines)
    finally:
        dash.server.poll = lambda: None
        dash.server.stop()
        app.sip.close()


def test_out_of_memory_while_serving_leaves_sip_running(tmp_path):
    """A MemoryError from one request is counted, said on the console and in /api/status,
    and the dashboard keeps polling; nothing reaches the loop."""
    app, dash, clock, lines = make(tmp_path)
    try:
        def hungry():
            raise MemoryError("memory allocation failed, allocating 8192 bytes")

        real = dash.server.poll
        dash.server.poll = hungry
        dash.poll(clock.now())
        assert dash.memory_errors == 1
        assert any("out of memory serving a request" in line and "SIP goes on" in line
                   for line in lines), lines
        dash.server.poll = real
        dash.poll(clock.now())
        assert dash.status(clock.now())["counters"]["http_memory_errors"] == 1
    finally:
        dash.server.stop()
        app.sip.close()


class _Hungry:
    """Stands in sys.modules for switchboard.http: importing from it runs out of heap."""

    def __getattr__(self, name):
        raise MemoryError("memory allocation failed, allocating 4096 bytes")


class _Net:
    ip = "127.0.0.1"
    link = True
    eth = None

    def log(self, level, text):
        pass


def test_dashboard_that_cannot_import_for_lack_of_heap_waits_and_starts_later(
        tmp_path, monkeypatch):
    """The board's DashboardStart: adafruit_httpserver (through switchboard.http) failing to
    import with MemoryError leaves SIP running, says why on the console and in its status,
    and tries again a minute later."""
    import sys

    from switchboard.dashstart import DashboardStart

    lines = []
    config = Config(overrides={"SIP_HOST": "127.0.0.1", "SIP_PORT": 0, "HTTP_PORT": 0})
    clock = FakeClock()
    app = App(config, socket, clock, lambda level, text: lines.append(text), b"x" * 16)
    web = DashboardStart(app, _Net(), config, {}, lambda: {}, pool=socket)
    try:
        real = sys.modules["switchboard.http"]
        monkeypatch.setitem(sys.modules, "switchboard.http", _Hungry())
        assert web.start(clock.now()) is False
        status = web.status()
        assert status["state"] == "waiting" and "out of memory" in status["reason"], status
        assert any("dashboard: out of memory" in line and "SIP goes on" in line
                   for line in lines), lines
        monkeypatch.setitem(sys.modules, "switchboard.http", real)
        clock.t += DashboardStart.RETRY_MS - 1
        web.poll(clock.now())
        assert web.dashboard is None  # not before its time
        clock.t += 1
        web.poll(clock.now())
        assert web.status()["state"] == "on" and web.dashboard is not None
        assert "started on try 2" in web.status()["reason"]
        assert any("dashboard: started on try 2" in line for line in lines), lines
    finally:
        if web.dashboard is not None:
            web.dashboard.server.stop()
        app.sip.close()


def test_the_dashboard_brings_the_message_ring_and_the_chart_sampler(tmp_path):
    app, dash, clock, lines = make(tmp_path)
    try:
        assert app.engine.trace is not None and app.engine.trace.size == 32
        assert dash.sampler in app.services
        dash.sampler.poll(0)
        dash.sampler.poll(10000)
        assert dash.sampler.view(10000)["messages"] == [0, 0]
    finally:
        dash.server.stop()
        app.sip.close()


def test_no_ring_when_message_trace_is_zero(tmp_path):
    config = Config(overrides={"SIP_HOST": "127.0.0.1", "SIP_PORT": 0, "HTTP_PORT": 0,
                               "MESSAGE_TRACE": 0})
    app = App(config, socket, FakeClock(), lambda level, text: None, b"x" * 16)
    (tmp_path / "index.html").write_text("x")
    dash = Dashboard(app, socket, "127.0.0.1", 0, str(tmp_path))
    try:
        assert app.engine.trace is None
    finally:
        dash.server.stop()
        app.sip.close()


def test_a_new_clock_epoch_moves_the_charts_and_the_ring(tmp_path):
    app, dash, clock, lines = make(tmp_path)
    try:
        dash.sampler.poll(50000)
        app.engine.trace.ring.append((50000, True, "10.0.0.1:5060", "INVITE sip:x", "c"))
        alice = Phone("1001", "10.0.0.11")  # one held (on a host) when the epoch changes
        app.engine.trace.add(alice.invite("1002", "held"), alice.addr, True, 50000)
        dash.shift_times(40000)
        assert dash.sampler.stats.closes == 20000
        assert app.engine.trace.ring[0][0] == 10000
        app.engine.trace.flush()
        assert [e[0] for e in app.engine.trace.ring] == [10000, 10000]
    finally:
        dash.server.stop()
        app.sip.close()


def test_host_mode_asks_the_server_only_when_a_connection_waits(tmp_path):
    app, dash, clock, lines = make(tmp_path)
    polls = []
    real = dash.server.poll
    try:
        dash.server.poll = lambda: polls.append(1)
        waiting = [False]
        dash.ready = lambda: waiting[0]  # as host.py sets it from select()
        dash.poll(clock.now())
        assert polls == []
        waiting[0] = True
        dash.poll(clock.now())
        assert polls == [1]
    finally:
        dash.server.poll = real
        dash.server.stop()
        app.sip.close()
