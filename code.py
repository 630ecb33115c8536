"""Switchboard: a SIP registrar and proxy.

On a CircuitPython board this file runs at boot. On a desktop, `python3 code.py`
runs host mode: the same loop over CPython's socket module. This is the only file
that knows which of the two it is on.
"""

import sys

try:
    import board  # noqa: F401  (CircuitPython, or a test's stand-in)

    ON_BOARD = True
except ImportError:
    ON_BOARD = False


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


def host_main():
    import os
    import select
    import signal
    import socket
    import time

    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
    from switchboard import VERSION
    from switchboard.app import App
    from switchboard.clock import Clock
    from switchboard.config import Config
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
        app = App(config, socket, clock, log, int.from_bytes(os.urandom(3), "big"))
    except OSError as e:
        log("error", "cannot open SIP port %s:%d: %s" % (config.sip_host, config.sip_port, e))
        return 1
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(1))
    sip_sock = app.sip.sock

    def idle(ms):
        try:
            select.select([sip_sock], [], [], min(ms, 50) / 1000)
        except InterruptedError:
            pass

    where = "%s:%d" % (config.sip_address, config.sip_port)
    write("Switchboard %s (host mode)" % VERSION)
    write("SIP: UDP %s:%d; point phones at sip:%s (registrar and outbound proxy), domain %s"
          % (config.sip_host, config.sip_port, where, app.engine.domain))
    if config.users:
        write("Users: %s" % ", ".join(sorted(config.users)))
    else:
        write("Users: any extension may register (set SIP_USERS to restrict)")
    write("Switchboard ready")
    try:
        app.run(lambda: not stopping, idle)
    except KeyboardInterrupt:
        app.sip.close()
    write("Switchboard stopped")
    return 0


def board_main():
    print("Switchboard: board support (W5500 bring-up) is not in this version yet.")
    print("Run it in host mode on a computer: python3 code.py")
    return 1


if __name__ == "__main__" or ON_BOARD:
    result = board_main() if ON_BOARD else host_main()
    if not ON_BOARD:
        sys.exit(result)
