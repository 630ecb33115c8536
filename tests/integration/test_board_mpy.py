"""netif.py and w5500udp.py run on MicroPython (the VM of tests/mpyvm.py), against a stand-in
driver object: the DHCP client binds a 90-day lease, renews it at T1, and the UDP endpoint
reads and sends through the driver's low-level calls."""

import json
import os
import sys

from mpyvm import run_micropython

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

SCRIPT = r'''
import json
from switchboard.bringup import derive_mac
from switchboard.netif import NetIf
from switchboard.w5500udp import W5500UDP

LEASE = 90 * 86400


class Clock:
    t = 1000

    def now(self):
        return self.t


def option(data, code):
    i = 240
    while i < len(data) and data[i] != 255:
        if data[i] == 0:
            i += 1
            continue
        if data[i] == code:
            return data[i + 2:i + 2 + data[i + 1]]
        i += 2 + data[i + 1]
    return None


class Eth:
    chip = "w5500"

    def __init__(self):
        self.sent = []
        self.inbox = []
        self.src_port = 0
        self.config = None
        self.link_status = True
        self.dest = None
        self.opened = []
        # registers of the one socket W5500UDP drives at register level
        self.rx = bytearray()  # unread UDP records in the RX buffer
        self.rx_rd = 0
        self.rx_rd_new = 0
        self.tx = b""
        self.ir = 0

    def get_socket(self, reserve_socket=False):
        return 3

    def release_socket(self, n):
        pass

    def socket_open(self, n, conn_mode=2):
        self.opened.append(self.src_port)

    def socket_close(self, n):
        pass

    def socket_status(self, n):
        return 0x22

    def _write(self, addr, ctrl, data):
        kind = (ctrl >> 3) & 3  # 1 socket register, 2 TX buffer, 3 RX buffer
        value = data if isinstance(data, int) else int.from_bytes(bytes(data), "big")
        if kind == 2:
            self.tx = bytes(data)
        elif addr == 0x0C:
            self.dest = bytes(data)  # Sn_DIPR + Sn_DPORT
        elif addr == 0x28:
            self.rx_rd_new = value  # Sn_RX_RD
        elif addr == 0x02:
            self.ir &= ~value  # Sn_IR: writing 1 clears
        elif addr == 0x01 and value == 0x20:  # SEND
            self.sent.append((self.dest, self.tx))
            self.ir |= 0x10
        elif addr == 0x01 and value == 0x40:  # RECV
            self.rx = self.rx[self.rx_rd_new - self.rx_rd:]
            self.rx_rd = self.rx_rd_new

    def _read(self, addr, ctrl, length=1):
        if (ctrl >> 3) & 3 == 3:
            start = addr - self.rx_rd
            return bytes(self.rx[start:start + length])
        if addr == 0x26:  # Sn_RX_RSR: the waiting datagrams as UDP records
            while self.inbox:
                data, src = self.inbox.pop(0)
                self.rx += self.unpretty_ip(src[0]) + src[1].to_bytes(2, "big")
                self.rx += len(data).to_bytes(2, "big") + data
            return len(self.rx).to_bytes(2, "big")
        if addr == 0x28:
            return self.rx_rd.to_bytes(2, "big")
        if addr == 0x02:
            return bytes((self.ir,))
        return bytes(length)  # Sn_CR (command taken), Sn_TX_WR

    def socket_write(self, n, data, timeout=0):
        data = bytes(data)
        self.sent.append((self.dest, data))
        if self.opened[-1] == 68:
            self.dhcp(data)
        return len(data)

    def socket_available(self, n, kind):
        return len(self.inbox[0][0]) + 8 if self.inbox else 0

    def read_udp(self, n, length):
        data, src = self.inbox.pop(0)
        self.udp_from_ip = {n: bytes(int(x) for x in src[0].split("."))}
        self.udp_from_port = {n: src[1]}
        return len(data), data[:length]

    def pretty_ip(self, b):
        return "%d.%d.%d.%d" % (b[0], b[1], b[2], b[3])

    def unpretty_ip(self, s):
        return bytes(int(x) for x in s.split("."))

    @property
    def ifconfig(self):
        return self.config

    @ifconfig.setter
    def ifconfig(self, value):
        self.config = value

    def dhcp(self, req):
        kind = option(req, 53)[0]
        out = bytearray(240)
        out[0] = 2
        out[4:8] = req[4:8]
        out[16:20] = bytes((10, 0, 0, 42))
        out[28:34] = req[28:34]
        out[236:240] = b"c\x82Sc"
        out += bytes((53, 1, 2 if kind == 1 else 5, 54, 4, 10, 0, 0, 1, 51, 4))
        out += LEASE.to_bytes(4, "big")
        out += bytes((1, 4, 255, 255, 255, 0, 3, 4, 10, 0, 0, 1, 255))
        self.inbox.append((bytes(out), ("10.0.0.1", 67)))


settings = {"NET_HOSTNAME": "vm-board"}
lines = []
clock = Clock()
net = NetIf(settings.get, lambda level, text: lines.append(text), clock)
eth = net.eth = Eth()
net.mac = derive_mac(b"vm-board")
net.link = True
net.dhcp.begin(clock.now())
for _ in range(10):
    net.poll(clock.now())
    clock.t += 10
bound = net.status()
clock.t += 45 * 86400 * 1000 + 1000  # past T1
for _ in range(10):
    net.poll(clock.now())
    clock.t += 10
renewed = net.status()

sip = W5500UDP(eth, 5060, 1500, lambda level, text: lines.append(text))
eth.inbox.append((b"OPTIONS sip:x SIP/2.0\r\n\r\n", ("10.0.0.7", 5062)))
got = sip.recv()
sip.send(b"SIP/2.0 200 OK\r\n\r\n", ("10.0.0.7", 5062))
print(json.dumps({
    "bound": bound, "renewed": renewed, "config": [list(x) for x in eth.config],
    "sent": [[list(d), len(m)] for d, m in eth.sent], "opened": eth.opened,
    "got": [got[0].decode(), list(got[1])], "none": sip.recv() is None,
    "mac": list(derive_mac(b"\x01\x23\x45\x67\x89\xab\xcd\xef")), "log": lines,
}))
'''


def test_dhcp_client_and_udp_endpoint_on_micropython():
    out = json.loads(run_micropython(SCRIPT).strip().splitlines()[-1])
    bound, renewed = out["bound"], out["renewed"]
    assert bound["ip"] == "10.0.0.42" and bound["mode"] == "dhcp", out
    assert bound["dhcp"]["lease"] == 90 * 86400 and bound["dhcp"]["state"] == "bound"
    assert 45 * 86400 - 2 <= bound["dhcp"]["renew_in"] <= 45 * 86400
    assert renewed["dhcp"]["renewals"] == 1 and renewed["dhcp"]["state"] == "bound"
    assert out["config"][0] == [10, 0, 0, 42] and out["config"][1] == [255, 255, 255, 0]
    dests = [d for d, _ in out["sent"]]
    # DISCOVER and REQUEST broadcast, the renewal unicast to the server, then the SIP reply
    assert dests == [[255, 255, 255, 255, 0, 67]] * 2 + [[10, 0, 0, 1, 0, 67],
                                                          [10, 0, 0, 7, 0x13, 0xC6]], out
    assert out["opened"] == [68, 68, 5060]
    assert out["got"] == ["OPTIONS sip:x SIP/2.0\r\n\r\n", ["10.0.0.7", 5062]] and out["none"]
    from switchboard.bringup import derive_mac

    assert out["mac"] == list(derive_mac(bytes.fromhex("0123456789abcdef")))


CLOCK = r'''
import gc
from switchboard.clock import Clock

PERIOD = 1 << 29
STEP = 3600000  # an hour


class Ticks:  # like supervisor.ticks_ms(): small ints only, wraps at 2**29
    t = PERIOD - 5000

    def __call__(self):
        return self.t

    def advance(self, ms):
        self.t = (self.t + ms) % PERIOD


def run(limit, hours):
    ticks = Ticks()
    clock = Clock(ticks, PERIOD, 0, limit)
    shifts = []
    clock.listeners.append(shifts.append)
    biggest = 0
    for _ in range(hours):
        ticks.advance(STEP)
        now = clock.now()
        if now > biggest:
            biggest = now
    # now() 1000 times, 1 ms apart: the VM collects nothing inside one run, so mem_alloc()
    # only grows; a difference of 0 means not one allocation
    before = gc.mem_alloc()
    for _ in range(1000):
        ticks.advance(1)
        clock.now()
    grew = gc.mem_alloc() - before
    exact = clock.uptime() == hours * STEP + 1000
    return [biggest < (1 << 30), grew, clock.epochs, len(shifts), exact]


print(run(1 << 29, 100 * 24))
print(run(None, 13 * 24))
'''


def test_board_clock_never_allocates_after_months_on_micropython():
    """On the 32-bit VM the board's clock (limit 2**29) stays a small int for 100 days: a
    thousand readings allocate nothing, and uptime() is exact. The clock without a limit
    passes 2**30 after 12.4 days and then every reading allocates (the bug it avoids)."""
    bounded, unbounded = [json.loads(line.replace("True", "true").replace("False", "false"))
                          for line in run_micropython(CLOCK).strip().splitlines()]
    assert bounded[0] is True and bounded[1] == 0 and bounded[2] == bounded[3] >= 30
    assert bounded[4] is True
    assert unbounded[0] is False and unbounded[1] > 1000 and unbounded[4] is True


DIGEST = r'''
import sys
from binascii import hexlify
from switchboard import digest

md5 = digest.hasher("md5")
sha = digest.hasher("sha256")
print(hexlify(md5(b"abc").digest()).decode())
print(hexlify(sha(b"abc").digest()).decode())
print(digest.backends["md5"], digest.backends["sha256"])
print("adafruit_hashlib" in sys.modules, "adafruit_hashlib._sha512" in sys.modules)
'''


def test_digest_backend_on_micropython_loads_only_md5_of_adafruit_hashlib(tmp_path):
    """The VM, like CircuitPython, has no md5: digest.py takes adafruit_hashlib's _md5 module
    alone (not the package, whose __init__ imports all six hashes) and the VM's own sha256."""
    import shutil

    import adafruit_hashlib

    lib = tmp_path / "lib"
    shutil.copytree(os.path.join(ROOT, "lib", "switchboard"), lib / "switchboard")
    shutil.copytree(os.path.dirname(adafruit_hashlib.__file__), lib / "adafruit_hashlib",
                    ignore=shutil.ignore_patterns("__pycache__"))
    out = run_micropython(DIGEST, lib_dir=str(lib)).strip().splitlines()
    assert out[0] == "900150983cd24fb0d6963f7d28e17f72"  # RFC 1321's "abc"
    assert out[1].startswith("ba7816bf8f01cfea414140de5dae2223")
    assert out[2] == "adafruit_hashlib._md5 hashlib.sha256"
    assert out[3] == "False False"


class _CircuitPythonHashlib:
    """CircuitPython's hashlib: new(name, data) for sha1/sha256 only, no attributes."""

    def __init__(self):
        import hashlib

        self.real = hashlib
        self.made = []

    def new(self, name, data=b""):
        if name not in ("sha1", "sha256"):
            raise ValueError("unsupported hash type")
        self.made.append(name)
        return self.real.new(name, data)


def test_digest_backend_uses_hashlib_new_where_the_board_has_it(monkeypatch):
    sys.path.insert(0, os.path.join(ROOT, "lib"))
    import hashlib

    from switchboard import digest

    fake = _CircuitPythonHashlib()
    monkeypatch.setitem(sys.modules, "hashlib", fake)
    monkeypatch.setattr(digest, "backends", {})
    for name in [n for n in sys.modules if n.startswith(("adafruit_hashlib", "_md5"))]:
        monkeypatch.delitem(sys.modules, name)
    sha = digest.hasher("sha256")
    assert sha(b"abc").digest() == hashlib.sha256(b"abc").digest() and "sha256" in fake.made
    assert digest.backends["sha256"] == "hashlib.new"
    md5 = digest.hasher("md5")
    assert md5(b"abc").digest() == hashlib.md5(b"abc").digest()
    assert digest.backends["md5"] == "adafruit_hashlib._md5"
    assert "adafruit_hashlib" not in sys.modules  # the package's __init__ never ran
