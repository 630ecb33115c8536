"""Start-up of the board path: everything that runs once, before the loop.

switchboard.board.main() calls start() and then drops this module and
switchboard.profiles from sys.modules, so their code does not stay on the heap for the
months the loop runs (nothing made here may keep a reference to them: the loop's callbacks
live in board.py).
"""

import sys

from switchboard.profiles import IMPORTS, board_getenv, board_pin, board_profile, defaults


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


def epochs(clock, run):
    """Keep the clock's values below 2**30 (small ints: no allocation per now()) by restarting
    its epoch every 2**28 ms (3.1 days), when everything that stores its times can move them:
    the engine (Engine.shift_times) and the shells (run.shift_times). An engine without
    shift_times keeps an ever-growing clock: exact, but every now() past 12.4 days of uptime
    allocates a long int."""
    parts = (run.app.engine, run.saver, run.pbx, run.trunk)
    if not all(hasattr(p, "shift_times") for p in parts if p is not None):
        print("Clock: exact ms; past 12.4 days each reading is a long int (the engine cannot "
              "move its stored times to a new epoch)")
        return
    clock.limit = 1 << 29
    clock.shift = 1 << 28
    clock.listeners.append(run.shift_times)
    print("Clock: exact ms, a new epoch every %d days" % (clock.shift // 86400000))


def start(run):
    """Bring everything up into `run` (a board.Running); False when the board cannot serve."""
    import os

    import board
    from adafruit_ticks import ticks_ms

    from switchboard import VERSION
    from switchboard.app import App
    from switchboard.bringup import start as bring_up
    from switchboard.clock import Clock
    from switchboard.config import PBX_SETTINGS, Config
    from switchboard.log import Log
    from switchboard.netif import NetIf, Watchdog, ip_str

    board_id = getattr(board, "board_id", "unknown")
    getenv = board_getenv(os.getenv, board_id)
    config = run.config = Config(getenv)
    clock = Clock(ticks_ms, 1 << 29)
    log = run.log = Log(config.log_level, clock, print)
    version = ".".join(str(v) for v in sys.implementation.version[:3])
    print("Switchboard %s on %s (%s %s)" % (VERSION, board_id, sys.implementation.name, version))
    boot = boot_info(board_id)
    print("Reset reason: %s" % boot["reason"])
    if boot["reason"] == "watchdog":
        log("warning", "the watchdog restarted the board: the previous run stopped feeding it")
    for error in config.errors:
        log("warning", "settings: " + error)
    chosen, heap_kb, chip = defaults(board_id, os.getenv)
    run.profile = {"board": chip, "heap_budget_kb": heap_kb}
    limits = config.limits()
    print("Profile: %s, heap budget %d KB; limits: %d bindings, %d transactions, %d calls, "
          "%d history, %d sources" % (chip, heap_kb, limits["bindings"], limits["transactions"],
                                      limits["calls"], limits["history"], limits["sources"]))
    if not config.http_port and not os.getenv("HTTP_PORT"):
        print("Dashboard: off by default on this board: adafruit_httpserver and the socket pool "
              "need about %d KB of heap beside SIP and digest (HTTP_PORT = 80 tries it anyway; "
              "the W5500-EVB-Pico2 and the ESP32-S3-ETH have room for it)" % IMPORTS["dashboard"])
    try:
        spi, cs, rst = board_bus(board, getenv)
    except (ValueError, AttributeError, ImportError) as e:
        print("Ethernet: cannot reach the W5500: %s" % e)
        return False
    net = run.net = NetIf(getenv, log, clock)
    try:
        bring_up(net, spi, cs, rst, dhcp_timeout_ms=1000 * board_int(getenv, "NET_DHCP_TIMEOUT",
                                                                     10),
                 dashboard=bool(config.http_port))
    except (RuntimeError, OSError) as e:
        print("Ethernet: the W5500 does not answer (%r); check the wiring and pins" % (e,))
        return False
    print("Ethernet: %s, MAC %s (%s), link up" % (net.chip, ":".join("%02x" % b for b in net.mac),
                                                 net.mac_source))
    if net.ip == "0.0.0.0" and net.use_dhcp:
        print("Network: no address yet (DHCP keeps asking)")
    elif net.ip == "0.0.0.0":
        print("Network: no address: NET_DHCP is off and NET_IP is not set")
    else:
        print("Network: %s %s/%s, gateway %s, DNS %s" % (net.mode, net.ip, ip_str(net.netmask),
                                                         ip_str(net.gateway), ip_str(net.dns)))
    run.explicit = bool(getenv("SIP_ADDRESS"))  # not SIP_HOST: the chip has one address
    if not run.explicit:
        config.sip_address = net.ip
    config.sip_host = ""  # the chip has one address
    try:
        sip = None
        pool = None
        if net.chip == "w5500":
            from switchboard.w5500udp import W5500UDP

            # the pool's socket re-OPENs on every sendto (losing queued datagrams): not for SIP
            sip = W5500UDP(net.eth, config.sip_port, config.max_message_size, log,
                           net.sip_socket, net.buffers[net.sip_socket][1])
            net.watch.append(sip)
        else:
            from adafruit_wiznet5k.adafruit_wiznet5k_socketpool import SocketPool

            pool = SocketPool(net.eth)
        app = run.app = App(config, pool, clock, log, os.urandom(16), sip)
    except (OSError, RuntimeError, ValueError) as e:
        log("error", "cannot open SIP port %d: %r" % (config.sip_port, e))
        return False
    app.services.append(net)
    if any(str(getenv(name) or "").strip() for name in PBX_SETTINGS):
        from switchboard.pbx import install

        run.pbx = install(app.engine, getenv, log)  # the dialplan, only when configured
    nvm = board_nvm(getenv)
    if nvm is not None:
        from switchboard.persist import NvmStore, Saver

        # flash: wait 5 s for changes to settle, at most 24 writes at once, then one an hour
        saver = run.saver = Saver(NvmStore(nvm), app.engine.location, run.pbx, log,
                                  settle_ms=5000, budget=24)
        saver.restore(clock.now())
        app.services.append(saver)
    if getenv("TRUNK"):
        from switchboard.trunk import board

        run.trunk = board(app, getenv, net)  # the trunk, only when configured
    epochs(clock, run)
    if config.http_port:
        from switchboard.dashstart import DashboardStart

        web = run.web = DashboardStart(app, net, config, boot, run.netinfo, pool, run.pbx)
        web.start(clock.now())
        if web.state != "off":
            app.services.append(web)
    net.listeners.append(run.readdress)
    timer = run.timer = start_watchdog(board_int(getenv, "WATCHDOG", 8), log)
    if timer is not None:
        app.services.append(Watchdog(timer))
    where = "%s:%d" % (config.sip_address, config.sip_port)
    print("SIP: UDP %s; point phones at sip:%s (registrar and outbound proxy), domain %s"
          % (where, where, app.engine.domain))
    if config.users:
        print("Users: %s; authentication: %s" % (", ".join(sorted(config.users)), config.sip_auth))
    else:
        print("Users: any extension may register (set SIP_USERS to restrict)")
    print("W5500 buffers (KB, RX/TX per socket): %s" % net.buffer_text())
    if run.web is not None and run.web.state == "on":
        port = "" if config.http_port == 80 else ":%d" % config.http_port
        print("Dashboard: http://%s%s/" % (net.ip, port))
    print("Watchdog: %s" % ("%d s" % timer.timeout if timer is not None else "off"))
    return True
