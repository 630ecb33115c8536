"""Switchboard: a SIP registrar and proxy.

On a CircuitPython board this file runs at boot. On a desktop, `python3 code.py`
runs host mode: the same loop over CPython's socket module. This is the only file
that knows which of the two it is on.
"""

import sys

# A board runs CircuitPython; tests drive board_main() directly with stand-in modules.
ON_BOARD = sys.implementation.name == "circuitpython"


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


# Settings that turn the PBX dialplan on (switchboard.dialplan.NAMES; not imported otherwise).
PBX_SETTINGS = ("RING_GROUPS", "HUNT_GROUPS", "HUNT_TIMEOUT", "ALIASES", "FORWARD_ALWAYS",
                "FORWARD_BUSY", "FORWARD_NOANSWER", "FORWARD_NOANSWER_AFTER", "DND", "INTERCOM")


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
        app = App(config, socket, clock, log, os.urandom(16))
    except OSError as e:
        log("error", "cannot open SIP port %s:%d: %s" % (config.sip_host, config.sip_port, e))
        return 1
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
        web = os.path.join(os.path.dirname(os.path.abspath(__file__)), "web")

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
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(1))
    sip_sock = app.sip.sock

    def idle(ms):
        watch = [sip_sock]
        if dashboard is not None and dashboard.server._sock is not None:
            watch.append(dashboard.server._sock)
        try:
            select.select(watch, [], [], min(ms, 50) / 1000)
        except (InterruptedError, ValueError, OSError):
            pass

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


# Board profiles: board.board_id -> (how to reach the SPI bus, SCK, MOSI, MISO, CS, RST).
# "A|B" means the first of these names that the board module has; "" means not wired.
# Settings SPI_SCK, SPI_MOSI, SPI_MISO, W5500_CS, W5500_RST override each pin by its board name.
BOARDS = {
    "wiznet_w5500_evb_pico": ("busio", "W5K_SCK|GP18", "W5K_MOSI|GP19", "W5K_MISO|GP16",
                              "W5K_CS|GP17", "W5K_RST|GP20"),
    "wiznet_w5500_evb_pico2": ("busio", "W5K_SCK|GP18", "W5K_MOSI|GP19", "W5K_MISO|GP16",
                               "W5K_CS|GP17", "W5K_RST|GP20"),
    "wiznet_w55rp20_evb_pico": ("pio", "W5K_SCK|GP21", "W5K_MOSI|GP23", "W5K_MISO|GP22",
                                "W5K_CS|GP20", "W5K_RST|GP25"),
    "waveshare_esp32_s3_eth": ("busio", "ETH_CLK", "ETH_MOSI", "ETH_MISO", "ETH_CS", "ETH_RST"),
}
FEATHERWING = ("board", "SCK", "MOSI", "MISO", "D10", "")  # Ethernet / PoE FeatherWing


BOARD_DEFAULTS = {"HTTP_PORT": 80, "MAX_MESSAGE_SIZE": 1472}


def board_getenv(getenv):
    """Settings on a board: os.getenv, with the board's own defaults: HTTP_PORT 80, and
    MAX_MESSAGE_SIZE 1472 (the W5500 neither fragments nor reassembles: a UDP payload over
    1472 bytes does not fit a 1500-byte Ethernet frame, so a forward that would grow past it
    gets 513)."""

    def get(name):
        value = getenv(name)
        if value is None:
            return BOARD_DEFAULTS.get(name)
        return value

    return get


def board_pin(board, names, setting=None):
    """The board's pin object for a setting value or the first existing name of names."""
    if setting is not None and str(setting).strip() != "":
        names = str(setting).strip()
    if names and names.lower() == "none":
        return None  # W5500_RST = "none": no reset pin wired
    for name in names.split("|"):
        if name and hasattr(board, name):
            return getattr(board, name)
    if names:
        raise ValueError("this board has no pin %s" % " or ".join(names.split("|")))
    return None


def board_profile(board_id, getenv):
    """(kind, sck, mosi, miso, cs, rst) pin names for this board, settings applied."""
    profile = BOARDS.get(board_id)
    if profile is None and "feather" in board_id:
        profile = FEATHERWING
    overrides = [getenv(k) for k in ("SPI_SCK", "SPI_MOSI", "SPI_MISO", "W5500_CS", "W5500_RST")]
    if profile is None:
        if not (overrides[0] and overrides[1] and overrides[2] and overrides[3]):
            raise ValueError(
                "board %s is not one Switchboard knows: set SPI_SCK, SPI_MOSI, SPI_MISO and "
                "W5500_CS (and W5500_RST if wired) in settings.toml to the board's pin names"
                % board_id)
        profile = ("busio", "", "", "", "", "")
    kind = profile[0]
    if kind == "board" and (overrides[0] or overrides[1] or overrides[2]):
        kind = "busio"
    names = list(profile[1:])
    for i in range(5):
        if overrides[i] is not None and str(overrides[i]).strip() != "":
            names[i] = str(overrides[i]).strip()
    return kind, names


def board_bus(board, getenv):
    """(spi, cs, rst): the SPI bus to the W5500 and its chip-select and reset pins."""
    import digitalio

    kind, names = board_profile(getattr(board, "board_id", "unknown"), getenv)
    pins = [board_pin(board, name) for name in names]
    if kind == "board":
        spi = board.SPI()
    elif kind == "pio":
        import wiznet

        spi = wiznet.PIO_SPI(pins[0], MOSI=pins[1], MISO=pins[2])
    else:
        import busio

        spi = busio.SPI(pins[0], MOSI=pins[1], MISO=pins[2])
    if pins[3] is None:
        raise ValueError("no chip-select pin for the W5500 (W5500_CS)")
    cs = digitalio.DigitalInOut(pins[3])
    rst = digitalio.DigitalInOut(pins[4]) if pins[4] is not None else None
    return spi, cs, rst


def boot_info(board_id):
    """Why the board started: microcontroller's reset reason, lower case ("watchdog", ...)."""
    info = {"board": board_id, "reason": "unknown"}
    try:
        import microcontroller

        info["reason"] = str(microcontroller.cpu.reset_reason).split(".")[-1].lower()
    except (ImportError, AttributeError, NotImplementedError):
        pass
    try:
        import supervisor

        info["run_reason"] = str(supervisor.runtime.run_reason).split(".")[-1].lower()
    except (ImportError, AttributeError):
        pass
    return info


def start_watchdog(seconds, log):
    """microcontroller.watchdog in RESET mode, or None (no watchdog, or WATCHDOG = 0)."""
    if seconds <= 0:
        return None
    try:
        import microcontroller
        from watchdog import WatchDogMode

        timer = microcontroller.watchdog
        try:
            timer.timeout = seconds
        except ValueError:
            timer.timeout = 8  # the RP2040's longest is about 8.3 s
        timer.mode = WatchDogMode.RESET
        timer.feed()
        return timer
    except (ImportError, AttributeError, NotImplementedError, RuntimeError, ValueError) as e:
        log("warning", "watchdog: not available on this board (%r)" % (e,))
        return None


def board_int(getenv, name, default):
    value = getenv(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        print("settings: %s=%r is not a number; using %d" % (name, value, default))
        return default


def board_nvm(getenv):
    """microcontroller.nvm for the state record, or None (no nvm, or STATE_NVM = 0)."""
    if str(getenv("STATE_NVM") or "1").strip().lower() in ("0", "off", "no", "false"):
        return None
    try:
        import microcontroller

        return getattr(microcontroller, "nvm", None)
    except ImportError:
        return None


def board_main():
    import os
    import time

    import board
    from adafruit_ticks import ticks_ms

    from switchboard import VERSION
    from switchboard.app import App
    from switchboard.clock import Clock
    from switchboard.config import Config
    from switchboard.log import Log
    from switchboard.netif import DashboardGuard, NetIf, Watchdog, ip_str

    getenv = board_getenv(os.getenv)
    config = Config(getenv)
    clock = Clock(ticks_ms, 1 << 29)
    log = Log(config.log_level, clock, print)
    board_id = getattr(board, "board_id", "unknown")
    version = ".".join(str(v) for v in sys.implementation.version[:3])
    print("Switchboard %s on %s (%s %s)" % (VERSION, board_id, sys.implementation.name, version))
    boot = boot_info(board_id)
    print("Reset reason: %s" % boot["reason"])
    if boot["reason"] == "watchdog":
        log("warning", "the watchdog restarted the board: the previous run stopped feeding it")
    for error in config.errors:
        log("warning", "settings: " + error)
    try:
        spi, cs, rst = board_bus(board, getenv)
    except (ValueError, AttributeError, ImportError) as e:
        print("Ethernet: cannot reach the W5500: %s" % e)
        return 1
    net = NetIf(getenv, log, clock)
    try:
        net.start(spi, cs, rst, dhcp_timeout_ms=1000 * board_int(getenv, "NET_DHCP_TIMEOUT", 10))
    except (RuntimeError, OSError) as e:
        print("Ethernet: the W5500 does not answer (%r); check the wiring and pins" % (e,))
        return 1
    print("Ethernet: %s, MAC %s (%s), link up" % (net.chip, ":".join("%02x" % b for b in net.mac),
                                                 net.mac_source))
    if net.ip == "0.0.0.0" and net.use_dhcp:
        print("Network: no address yet (DHCP keeps asking)")
    elif net.ip == "0.0.0.0":
        print("Network: no address: NET_DHCP is off and NET_IP is not set")
    else:
        print("Network: %s %s/%s, gateway %s, DNS %s" % (net.mode, net.ip, ip_str(net.netmask),
                                                         ip_str(net.gateway), ip_str(net.dns)))
    explicit = bool(getenv("SIP_ADDRESS"))  # not SIP_HOST: the chip has one address
    if not explicit:
        config.sip_address = net.ip
    config.sip_host = ""  # the chip has one address; the pool checks a bind address against it
    from adafruit_wiznet5k.adafruit_wiznet5k_socketpool import SocketPool

    pool = SocketPool(net.eth)
    try:
        sip = None
        if net.chip == "w5500":
            from switchboard.w5500udp import W5500UDP

            # the pool's socket re-OPENs on every sendto (losing queued datagrams): not for SIP
            sip = W5500UDP(net.eth, config.sip_port, config.max_message_size, log)
            net.watch.append(sip)
        app = App(config, pool, clock, log, os.urandom(16), sip)
    except (OSError, RuntimeError, ValueError) as e:
        log("error", "cannot open SIP port %d: %r" % (config.sip_port, e))
        return 1
    app.services.append(net)
    pbx = None
    if any(str(getenv(name) or "").strip() for name in PBX_SETTINGS):
        from switchboard.pbx import install

        pbx = install(app.engine, getenv, log)  # the dialplan, only when configured
    saver = None
    nvm = board_nvm(getenv)
    if nvm is not None:
        from switchboard.persist import NvmStore, Saver

        # flash: wait 5 s for changes to settle, at most 24 writes at once, then one an hour
        saver = Saver(NvmStore(nvm), app.engine.location, pbx, log, settle_ms=5000, budget=24)
        saver.restore(clock.now())
        app.services.append(saver)
    if str(getenv("TRUNK") or "").strip():
        from switchboard.trunk import install as install_trunk

        def resolve(name):  # the driver's DNS blocks: at start only (once=True)
            return net.eth.pretty_ip(net.eth.get_host_by_name(name))

        trunk = install_trunk(app, getenv, resolve, once=True)  # only when configured
        if trunk is not None:
            from switchboard.trunk import LinkWatch

            app.services.append(LinkWatch(trunk, net))  # register again on link up
    dashboard = None
    guard = None
    timer = None

    def netinfo():
        info = net.status()
        info["sip_socket"] = {"errors": app.sip.errors,
                              "reopened": getattr(app.sip, "reopened", None)}
        info["http_listener_revived"] = guard.revived if guard is not None else None
        info["watchdog"] = timer.timeout if timer is not None else None
        return info

    if config.http_port:
        try:
            from switchboard.http import Dashboard

            dashboard = Dashboard(app, pool, net.ip, config.http_port, "web",
                                  config.dashboard_password, netinfo, boot)
            guard = DashboardGuard(dashboard, net)
            app.services.append(guard)
            if pbx is not None:
                from switchboard.pbx import add_routes

                add_routes(dashboard, pbx)
        except ImportError as e:
            log("warning", "dashboard off: %s (copy adafruit_httpserver to lib/)" % e)
        except (OSError, RuntimeError, ValueError) as e:
            log("error", "dashboard off: cannot listen on port %d: %r" % (config.http_port, e))

    def readdress(ip):
        if not explicit:
            config.sip_address = ip
            app.engine.set_address(ip, config.sip_port)
        if dashboard is not None:
            dashboard.host = ip
        log("info", "address is now %s: point phones at sip:%s:%d"
            % (ip, app.engine.address, config.sip_port))

    net.listeners.append(readdress)
    timer = start_watchdog(board_int(getenv, "WATCHDOG", 8), log)
    if timer is not None:
        app.services.append(Watchdog(timer))
    where = "%s:%d" % (config.sip_address, config.sip_port)
    print("SIP: UDP %s; point phones at sip:%s (registrar and outbound proxy), domain %s"
          % (where, where, app.engine.domain))
    if config.users:
        print("Users: %s; authentication: %s" % (", ".join(sorted(config.users)), config.sip_auth))
    else:
        print("Users: any extension may register (set SIP_USERS to restrict)")
    if dashboard is not None:
        port = "" if config.http_port == 80 else ":%d" % config.http_port
        print("Dashboard: http://%s%s/" % (net.ip, port))
    print("Watchdog: %s" % ("%d s" % timer.timeout if timer is not None else "off"))
    print("Switchboard ready")

    def idle(ms):
        if ms > 0:
            time.sleep(0.001)

    while True:
        try:
            app.run(lambda: True, idle)
        except KeyboardInterrupt:
            break
        except Exception as e:  # keep serving: one bad turn must not stop the switchboard
            log("error", "main loop: %r" % (e,))
            time.sleep(0.01)
    if saver is not None:
        saver.flush(clock.now())
    app.sip.close()
    if timer is not None:
        try:
            timer.deinit()
        except (AttributeError, RuntimeError, NotImplementedError):
            pass
    print("Switchboard stopped")
    return 0


if __name__ == "__main__" or ON_BOARD:
    result = board_main() if ON_BOARD else host_main()
    if not ON_BOARD:
        sys.exit(result)
