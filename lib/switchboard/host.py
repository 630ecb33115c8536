"""The host path: `python3 code.py` (`bash tools/run`) runs main() on CPython.

The same loop as on a board, over CPython's socket module, with select() as the idle wait.
Never imported on a board.
"""



def host_settings(path):
    """settings.toml as a dict (CircuitPython's subset: top-level strings and integers)."""
    import tomllib

    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        return {}, None
    except (tomllib.TOMLDecodeError, OSError) as e:
        return {}, "%s is not valid TOML (%s); using defaults and the environment" % (path, e)
    return {k: v for k, v in data.items() if isinstance(v, (str, int))}, None


def primary_address():
    """The address other machines reach us at (a UDP connect sends no packet)."""
    import socket

    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.connect(("192.0.2.1", 9))  # TEST-NET-1: only selects a route, nothing is sent
        return probe.getsockname()[0]
    except OSError:
        return "127.0.0.1"
    finally:
        probe.close()


def main():
    import os
    import select
    import signal
    import socket
    import time

    from switchboard import VERSION
    from switchboard.app import App
    from switchboard.clock import Clock
    from switchboard.config import PBX_SETTINGS, Config
    from switchboard.log import Log

    settings, problem = host_settings("settings.toml")

    def getenv(name):
        value = os.environ.get(name)
        return settings.get(name) if value is None else value

    config = Config(getenv)
    if not config.sip_address:
        config.sip_address = primary_address()
    clock = Clock(lambda: time.monotonic_ns() // 1000000, 1 << 62)

    def write(line):
        print(line, flush=True)

    log = Log(config.log_level, clock, write)
    if problem:
        log("warning", problem)
    for error in config.errors:
        log("warning", "settings: " + error)
    try:
        app = App(config, socket, clock, log, os.urandom(16))
    except OSError as e:
        log("error", "cannot open SIP port %s:%d: %s" % (config.sip_host, config.sip_port, e))
        return 1
    from switchboard.hostrelay import relay

    app.engine.relay = relay  # plain responses relayed as bytes (hostrelay.py)
    pbx = None
    if any(str(getenv(name) or "").strip() for name in PBX_SETTINGS):
        from switchboard.pbx import install

        pbx = install(app.engine, getenv, log)  # the dialplan, only when configured
    saver = None
    if getenv("STATE_FILE"):
        from switchboard.persist import FileStore, Saver

        saver = Saver(FileStore(str(getenv("STATE_FILE")), open, os.replace),
                      app.engine.location, pbx, log)
        saver.restore(clock.now())
        app.services.append(saver)
    if str(getenv("TRUNK") or "").strip():
        from switchboard.trunk import install as install_trunk

        def resolve(name):  # blocking: only ever called by the trunk's Resolver service
            return socket.getaddrinfo(name, None, socket.AF_INET, socket.SOCK_DGRAM)[0][4][0]

        install_trunk(app, getenv, resolve)  # the trunk, only when configured
    dashboard = None
    try:
        from switchboard.http import Dashboard
    except ImportError as e:
        log("warning", "dashboard off: %s (install it with: pip install -r requirements.txt)" % e)
        config.http_port = 0
    if config.http_port:
        here = os.path.dirname(os.path.abspath(__file__))  # lib/switchboard
        web = os.path.join(os.path.dirname(os.path.dirname(here)), "web")

        def netinfo():
            return {"ip": config.sip_address, "netmask": None, "gateway": None, "mac": None,
                    "dhcp": None, "link": True, "mode": "host"}

        try:
            dashboard = Dashboard(app, socket, config.http_host, config.http_port, web,
                                  config.dashboard_password, netinfo, {"reason": "host start"})
        except (OSError, RuntimeError) as e:
            log("error", "cannot open dashboard port %s:%d: %s"
                % (config.http_host, config.http_port, e))
            return 1
        app.services.append(dashboard)
        if pbx is not None:
            from switchboard.pbx import add_routes

            add_routes(dashboard, pbx)
    stopping = []
    # SIGTERM and Ctrl-C both end the loop at its next turn (within 50 ms): a Ctrl-C raised
    # as KeyboardInterrupt could land in a finalizer, where Python only prints it. A SIGINT
    # our caller ignores (nohup, a background job of a script) stays ignored.
    def stop(*_):
        stopping.append(1)

    signal.signal(signal.SIGTERM, stop)
    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
        signal.signal(signal.SIGINT, stop)
    sip_sock = app.sip.sock
    browser = [True]  # whether the dashboard's listener had a connection waiting
    if dashboard is not None:
        dashboard.ready = lambda: browser[0]

    def idle(ms):
        watch = [sip_sock]
        listener = None if dashboard is None else dashboard.server._sock
        if listener is not None:
            watch.append(listener)
        try:
            readable = select.select(watch, [], [], min(ms, 50) / 1000)[0]
        except (InterruptedError, ValueError, OSError):
            readable = watch
        browser[0] = listener is None or listener in readable

    where = "%s:%d" % (config.sip_address, config.sip_port)
    write("Switchboard %s (host mode)" % VERSION)
    write("SIP: UDP %s:%d; point phones at sip:%s (registrar and outbound proxy), domain %s"
          % (config.sip_host, config.sip_port, where, app.engine.domain))
    if config.users:
        write("Users: %s; authentication: %s" % (", ".join(sorted(config.users)), config.sip_auth))
    else:
        write("Users: any extension may register (set SIP_USERS to restrict)")
    if dashboard is not None:
        shown = config.sip_address if config.http_host in ("", "0.0.0.0") else config.http_host
        write("Dashboard: http://%s:%d/" % (shown, config.http_port))
    write("Switchboard ready")
    try:
        app.run(lambda: not stopping, idle)
    except KeyboardInterrupt:
        app.sip.close()
    if saver is not None:
        saver.flush(clock.now())
    write("Switchboard stopped")
    return 0
