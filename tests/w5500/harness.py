"""Start code.py's board path on the W5500 model for a test (a subprocess, stopped by PID).

Board(settings, ...) is HostMode's sibling: the same output reading (wait_for, output, stop),
but the process is tests/w5500/runner.py, which runs board_main() against the chip model
with a random loopback address as the board's IP. control(op, ...) talks to the model.
"""

import json
import os
import random
import socket
import subprocess
import sys
import time
import urllib.request

from hostmode import READY, HostMode, free_port

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
RUNNER = os.path.join(HERE, "runner.py")
# settings a board reads; none may leak in from the test's own environment
BOARD_KEYS = ("SIP_HOST", "SIP_PORT", "SIP_ADDRESS", "SIP_DOMAIN", "SIP_USERS", "HTTP_HOST",
              "HTTP_PORT", "LOG_LEVEL", "NET_DHCP", "NET_IP", "NET_NETMASK", "NET_GATEWAY",
              "NET_DNS", "NET_MAC", "NET_HOSTNAME", "NET_DHCP_TIMEOUT", "WATCHDOG", "W5500_CS",
              "W5500_RST", "SPI_SCK", "SPI_MOSI", "SPI_MISO", "DASHBOARD_PASSWORD", "SIP_AUTH")


def loopback_ip():
    """A random 127.x.y.z whose SIP port 5060 is free: the board's address on the model."""
    for _ in range(100):
        ip = "127.%d.%d.%d" % (random.randint(100, 250), random.randint(0, 255),
                               random.randint(10, 250))
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.bind((ip, 5060))
        except OSError:
            continue
        return ip
    raise RuntimeError("no free loopback address")


def dhcp_config(ip, **changes):
    server = ip.rsplit(".", 1)[0] + ".1"
    cfg = {"server_ip": server, "offer_ip": ip, "netmask": "255.0.0.0", "router": server,
           "dns": server, "lease": 3600}
    cfg.update(changes)
    return cfg


class Board(HostMode):
    """A running board_main() on the model. dhcp: DhcpServer settings (None: no server)."""

    def __init__(self, settings=None, ip=None, dhcp=True, link=True, board_id=None, stub=None,
                 wiring=None, ready=READY, timeout=40):
        self.host = self.ip = ip or loopback_ip()
        self.sip_port = 5060
        self.http_port = free_port(socket.SOCK_STREAM, host=self.ip)
        self.control_port = free_port()
        if dhcp is True:
            dhcp = dhcp_config(self.ip)
        self.model = {"board_ip": self.ip, "dhcp": dhcp or None, "link": link,
                      "control_port": self.control_port, "wiring": wiring}
        env = {k: v for k, v in os.environ.items() if k not in BOARD_KEYS}
        env.update({"HTTP_PORT": str(self.http_port), "PYTHONUNBUFFERED": "1",
                    "W5500_MODEL": json.dumps(self.model), "NET_DHCP_TIMEOUT": "3"})
        if board_id:
            env["STUB_BOARD_ID"] = board_id
        for key, value in (stub or {}).items():
            env["STUB_" + key.upper()] = str(value)
        for key, value in (settings or {}).items():
            env[key] = str(value)
        self.env = env
        self.lines = []
        self._partial = b""
        self.proc = subprocess.Popen([sys.executable, RUNNER], cwd=ROOT, env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, bufsize=0)
        try:
            if ready:
                self.wait_for(ready, timeout=timeout)
        except Exception:
            self.stop()
            raise

    def control(self, op, timeout=5.0, **args):
        args["op"] = op
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", 0))
            s.settimeout(timeout)
            s.sendto(json.dumps(args).encode(), ("127.0.0.1", self.control_port))
            try:
                data, _ = s.recvfrom(1 << 20)
            except TimeoutError:
                raise AssertionError("the model did not answer %r\n%s"
                                     % (args, self.output())) from None
        answer = json.loads(data)
        if "error" in answer:
            raise AssertionError("model: %s" % answer["error"])
        return answer

    def stats(self):
        return self.control("stats")

    def advance(self, ms, timeout=30.0):
        """Move the board's clock forward by ms (in steps the loop follows) and wait."""
        self.control("advance", ms=int(ms))
        end = time.monotonic() + timeout
        while self.stats()["advance_pending"]:
            if time.monotonic() > end:
                raise AssertionError("time travel did not finish\n" + self.output())
            time.sleep(0.05)

    def url(self, path):
        return "http://%s:%d%s" % (self.ip, self.http_port, path)

    def get(self, path, timeout=5.0):
        with urllib.request.urlopen(self.url(path), timeout=timeout) as r:
            return r.status, r.read()

    def api(self, path, timeout=5.0):
        status, body = self.get(path, timeout)
        assert status == 200, (path, status, body)
        return json.loads(body)

    def wait_until(self, check, what, timeout=10.0, interval=0.05):
        """Wait until check() is true (returns its value)."""
        end = time.monotonic() + timeout
        while True:
            value = check()
            if value:
                return value
            if time.monotonic() > end or self.proc.poll() is not None:
                raise AssertionError("%s never happened\n%s" % (what, self.output()))
            time.sleep(interval)
