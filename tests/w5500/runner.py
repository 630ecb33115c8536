"""Run the board path (switchboard.board.main(), what code.py runs on a board) under CPython
on the W5500 model (a subprocess of a test).

The stand-in modules of tests/w5500/stubs (board, busio, digitalio, microcontroller,
supervisor, watchdog, wiznet, micropython) come first on sys.path, then lib/ as on a board.
The chip model is wired to the pins the test names (W5500_MODEL, JSON in the environment):

    {"board_ip": "127.x.y.z", "link": true, "control_port": 40000,
     "dhcp": {"server_ip": ..., "offer_ip": ..., "lease": 3600, ...} or null,
     "wiring": {"sck": "GPIO18", "cs": "GPIO17", "rst": "GPIO20"}}

Settings reach board_main() through os.getenv, as on a board. SIGTERM stops it the way
Ctrl-C stops a board (KeyboardInterrupt). A UDP control socket on 127.0.0.1 takes JSON
commands from the test: link up/down, time travel, DHCP server changes, holding a
datagram back, and a snapshot of the chip and watchdog.
"""

import json
import os
import signal
import socket
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path[:0] = [os.path.join(HERE, "stubs"), os.path.join(ROOT, "lib"), HERE]
sys.path.append(os.path.join(ROOT, "tests"))  # faults.py

import board  # noqa: E402  (the stand-in)
import faults  # noqa: E402  (tests/faults.py)
import microcontroller  # noqa: E402
import supervisor  # noqa: E402
from dhcp import DhcpServer  # noqa: E402
from model import W5500  # noqa: E402

WIRING = {  # where the W5500 sits on each board (the hardware, not what code.py believes)
    "wiznet_w5500_evb_pico": {"sck": "GPIO18", "cs": "GPIO17", "rst": "GPIO20"},
    "wiznet_w5500_evb_pico2": {"sck": "GPIO18", "cs": "GPIO17", "rst": "GPIO20"},
    "wiznet_w55rp20_evb_pico": {"sck": "GPIO21", "cs": "GPIO20", "rst": "GPIO25"},
    "waveshare_esp32_s3_eth": {"sck": "GPIO13", "cs": "GPIO14", "rst": "GPIO9"},
    "adafruit_feather_rp2040": {"sck": "GPIO18", "cs": "GPIO10", "rst": None},
}
DAY_STEP = 12 * 3600 * 1000  # time travel in steps the Clock can follow (< 2**29 ms)


class MicroPythonOSError(OSError):
    """OSError as MicroPython builds it: OSError(errno.EAGAIN).errno == EAGAIN. (CPython
    sets errno only from two arguments, so under CPython the pool's non-blocking EAGAIN
    would look like a failure to adafruit_httpserver, which checks error.errno.)"""

    def __init__(self, *args):
        OSError.__init__(self, *args)
        if len(args) == 1 and isinstance(args[0], int):
            self.errno = args[0]


def micropython_errors():
    import adafruit_wiznet5k.adafruit_wiznet5k_socketpool as pool

    pool.OSError = MicroPythonOSError  # the module raises OSError(code) and catches none


class Control:
    def __init__(self, chip, dhcp, port):
        self.chip = chip
        self.dhcp = dhcp
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", port))
        self.sock.setblocking(False)
        self.pending = 0
        self.last_step = 0.0
        self.next_poll = 0.0

    def poll(self):
        now = time.monotonic()
        if self.pending and now - self.last_step >= 0.02:
            step = min(self.pending, DAY_STEP)
            supervisor.advance(step)
            self.pending -= step
            self.last_step = now
        if now < self.next_poll:
            return
        self.next_poll = now + 0.002
        for _ in range(8):
            try:
                data, peer = self.sock.recvfrom(65535)
            except BlockingIOError:
                return
            try:
                answer = self.run(json.loads(data))
            except Exception as e:  # report to the test, keep the board running
                answer = {"error": repr(e)}
            self.sock.sendto(json.dumps(answer).encode(), peer)

    def run(self, cmd):
        op = cmd.get("op")
        chip = self.chip
        if op == "ping":
            return {"ok": True}
        if op == "link":
            chip.link = bool(cmd["up"])
            return {"ok": True}
        if op == "advance":
            self.pending += int(cmd["ms"])
            return {"ok": True}
        if op == "dhcp":
            self.dhcp.configure(**cmd["set"])
            return {"ok": True}
        if op == "hold":
            chip.hold_until_reply(int(cmd["port"]), cmd["ip"])
            return {"ok": True}
        if op == "modules":  # what the board has imported (ours and the board libraries)
            return sorted(name for name in sys.modules
                          if name.startswith(("switchboard", "adafruit_", "_md5", "_sha")))
        if op == "pause":  # datagrams for this UDP port wait in the kernel ...
            chip.paused.add(int(cmd["port"]))
            return {"ok": True}
        if op == "resume":  # ... and then reach the chip all at once
            chip.paused.discard(int(cmd["port"]))
            return {"ok": True}
        if op == "close_listener":  # the HTTP listener's hardware socket drops to CLOSED
            for s in chip.sockets:
                if s.sr == 0x14 and s.port == int(cmd["port"]):
                    s.sr = 0x00
                    return {"ok": True, "socket": s.n}
            return {"ok": False}
        if op == "stats":
            snap = chip.snapshot()
            snap["dhcp_log"] = self.dhcp.log if self.dhcp is not None else []
            snap["watchdog"] = microcontroller.watchdog.stats()
            snap["advance_pending"] = self.pending
            snap["ticks_offset"] = supervisor.offset()
            return snap
        raise ValueError("unknown op %r" % op)


def main():
    cfg = json.loads(os.environ["W5500_MODEL"])
    micropython_errors()
    dhcp = DhcpServer(**cfg["dhcp"]) if cfg.get("dhcp") else None
    chip = W5500(dhcp=dhcp, link=cfg.get("link", True))
    wiring = cfg.get("wiring") or WIRING.get(board.board_id) or {}  # {}: no chip on the board
    if wiring:
        board.pin_named(wiring["sck"]).device = chip
        board.pin_named(wiring["cs"]).hook = chip.set_cs
    if wiring.get("rst"):
        board.pin_named(wiring["rst"]).hook = chip.set_reset
    control = Control(chip, dhcp, int(cfg["control_port"]))
    chip.hooks.append(control.poll)

    def stop(*_):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    faults.install()  # only with INJECT_FAULTS=1 (tests of the loop's survival)
    os.chdir(ROOT)
    from switchboard.board import main as board_main  # what code.py runs on a board

    try:
        result = board_main()
    except KeyboardInterrupt:
        result = 0
    finally:
        chip.close()
    return result


if __name__ == "__main__":
    sys.exit(main() or 0)
