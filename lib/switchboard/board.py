"""The board path: code.py runs main() on CircuitPython (a W5500 board).

main() runs switchboard.boot.start() once, then drops the start-up modules (boot, profiles,
bringup)
so that their code leaves the heap, and runs the loop. What the settings turn off is never
imported: no hash library when SIP_AUTH is off (the engine's Auth is not built), no
adafruit_httpserver or socket pool when HTTP_PORT is 0 (switchboard.dashstart is not
imported), and none of adafruit_wiznet5k's DHCP and DNS modules (netif has its own DHCP
client; Switchboard resolves no names). Running out of heap is never fatal here.
"""

import gc
import sys

START_ONLY = ("switchboard.boot", "switchboard.profiles", "switchboard.bringup")


def heap_free():
    try:
        return gc.mem_free()
    except AttributeError:  # CPython (tests)
        return None


def forget(names):
    """Drop modules from sys.modules and from their package, so the collector frees them."""
    for name in names:
        sys.modules.pop(name, None)
        package = sys.modules.get(name[:name.rfind(".")])
        if package is not None:
            try:
                delattr(package, name[name.rfind(".") + 1:])
            except AttributeError:
                pass


class Running:
    """What the loop keeps after start: the app and the parts /api/status reports on."""

    def __init__(self):
        self.app = None
        self.net = None
        self.web = None  # dashstart.DashboardStart when HTTP_PORT is set
        self.timer = None
        self.config = None
        self.log = None
        self.explicit = False  # SIP_ADDRESS was set: a new DHCP address does not move SIP
        self.profile = None
        self.pbx = None  # the dialplan, when PBX settings are set
        self.saver = None  # persist.Saver on microcontroller.nvm (STATE_NVM)
        self.gateway = None  # trunk.Trunk, when TRUNK is set

    def netinfo(self):
        """The "network" part of /api/status."""
        app = self.app
        info = self.net.status()
        info["sip_socket"] = {"errors": app.sip.errors,
                              "reopened": getattr(app.sip, "reopened", None)}
        web = self.web
        info["dashboard"] = web.status() if web is not None else None
        info["http_listener_revived"] = web.guard.revived \
            if web is not None and web.guard is not None else None
        info["watchdog"] = self.timer.timeout if self.timer is not None else None
        info["profile"] = self.profile
        info["heap_free"] = heap_free()
        return info

    def shift_times(self, ms):
        """The clock restarted its epoch: every stored time moves back by ms."""
        self.app.engine.shift_times(ms)
        self.net.shift_times(ms)
        self.app.shift_times(ms)  # its fault log, receive queue, timer run and overload step
        web = self.web
        if web is not None:
            web.shift_times(ms)
        for part in (self.saver, self.pbx, self.gateway):  # boot.epochs() checked they can
            if part is not None:
                part.shift_times(ms)

    def readdress(self, ip):
        app = self.app
        config = self.config
        if not self.explicit:
            config.sip_address = ip
            app.engine.set_address(ip, config.sip_port)
        web = self.web
        if web is not None and web.dashboard is not None:
            web.dashboard.host = ip
        self.log("info", "address is now %s: point phones at sip:%s:%d"
                 % (ip, app.engine.address, config.sip_port))


def main():
    run = Running()
    from switchboard.boot import start

    ok = start(run)
    del start
    forget(START_ONLY)
    gc.collect()
    if not ok:
        return 1
    free = heap_free()
    if free is not None:
        print("Heap: %d bytes free after start" % free)
    print("Switchboard ready")
    app = run.app
    log = run.log

    import time

    def idle(ms):
        if ms > 0:
            time.sleep(0.001)

    while True:
        try:
            app.run(lambda: True, idle)
        except KeyboardInterrupt:
            break
        except MemoryError as e:  # the loop's own guards missed it: collect and go on
            gc.collect()
            log("error", "main loop: out of memory (%r; %s bytes free now); carrying on"
                % (e, heap_free()))
        except Exception as e:  # keep serving: one bad turn must not stop the switchboard
            log("error", "main loop: %r" % (e,))
            time.sleep(0.01)
    if run.saver is not None:
        run.saver.flush(app.clock.now())
    app.sip.close()
    timer = run.timer
    if timer is not None:
        try:
            timer.deinit()
        except (AttributeError, RuntimeError, NotImplementedError):
            pass
    print("Switchboard stopped")
    return 0
