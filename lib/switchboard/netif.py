"""The W5500 network interface on a board: bring-up and upkeep.

adafruit_wiznet5k drives the chip; this module decides everything around it:

- MAC from NET_MAC, else derived from microcontroller.cpu.uid (stable, locally administered);
- the chip is started with is_dhcp=False and addressed by our own DHCP client
  (switchboard.dhcp: the driver's cannot hold a lease of 3.1 days or more, and it blocks
  for seconds when the server is silent) or from NET_IP/NET_NETMASK/NET_GATEWAY/NET_DNS;
- DHCP fails at start-up -> NET_IP when set, else no address yet while DHCP keeps asking;
- the link (PHYCFGR bit 0) is read once a second; on link up a new DHCP exchange starts;
- status() is the "network" part of /api/status.
"""

import time

from switchboard.dhcp import ZERO, Dhcp, fnv, ip_str  # noqa: F401 (ip_str: boot.py uses it)

UDP = 0x02  # the driver's SNMR_UDP
SOCK_UDP = 0x22  # Sn_SR of an open UDP socket
LINK_POLL_MS = 1000
RETRIES = 2  # W5500 RCR: an unanswered ARP costs (RCR + 1) x 200 ms, not 1.8 s
# The W5500's 16 KB of RX and 16 KB of TX memory, set per socket (Sn_RXBUF_SIZE 0x1E,
# Sn_TXBUF_SIZE 0x1F, in KB: 0, 1, 2, 4, 8 or 16; each sum at most 16). The driver leaves
# 2 KB each: two SIP INVITEs with SDP. The SIP socket gets SIP_RX_KB; the other seven
# sockets share the rest (1 KB each; 2 KB for the DHCP socket when no dashboard needs them).
# TX stays 2 KB everywhere: the driver writes TCP data in 2 KB pieces and waits for that
# much room, and it addresses TX memory as 2 KB blocks (larger TX buffers would be written
# in the wrong place).
SIP_RX_KB = 8
TX_KB = 2
CHIP_KB = 16
SN_RXBUF, SN_TXBUF = 0x1E, 0x1F


def buffer_split(sip, dhcp, dashboard):
    """[(rx KB, tx KB)] for the eight sockets: SIP_RX_KB for socket `sip`, the rest shared by
    the sockets in use (all of them with the dashboard on: its connections take any free
    socket; else the DHCP socket first). Never more than CHIP_KB in total per direction."""
    rx = [1] * 8
    rx[sip] = SIP_RX_KB
    if not dashboard and dhcp is not None and dhcp != sip:
        rx[dhcp] = 2
    return [(r, TX_KB) for r in rx]


class _Absent:
    """Stands in sys.modules for adafruit_wiznet5k's DHCP and DNS modules, which Switchboard
    never calls (is_dhcp=False, no names resolved): 14 KB of heap not spent at import."""

    def __init__(self, name):
        self.name = name

    def __getattr__(self, attr):
        raise RuntimeError("%s is not loaded on this board (Switchboard does not use it)"
                           % self.name)


def import_driver():
    """adafruit_wiznet5k's WIZNET5K class, without importing its DHCP and DNS modules."""
    import sys

    import adafruit_wiznet5k

    for part in ("adafruit_wiznet5k_dhcp", "adafruit_wiznet5k_dns"):
        name = "adafruit_wiznet5k." + part
        if name not in sys.modules:
            stand_in = _Absent(name)
            sys.modules[name] = stand_in
            setattr(adafruit_wiznet5k, part, stand_in)
    from adafruit_wiznet5k.adafruit_wiznet5k import WIZNET5K

    return WIZNET5K




def derive_mac(uid):
    """A locally administered unicast MAC (02:...) that depends only on the chip's unique id."""
    h1 = fnv(uid, 0x811C9DC5)
    h2 = fnv(uid, h1 ^ 0x5BD1E995)
    return bytes((0x02, h2 & 0xFF, h1 >> 24, (h1 >> 16) & 0xFF, (h1 >> 8) & 0xFF, h1 & 0xFF))


def parse_mac(text):
    parts = text.replace("-", ":").split(":")
    if len(parts) != 6:
        raise ValueError("NET_MAC must be six hex bytes like 02:12:34:56:78:9a")
    return bytes(int(p, 16) for p in parts)


def pretty_mac(mac):
    return ":".join("%02x" % b for b in mac)


def parse_ip(text):
    parts = str(text).strip().split(".")
    if len(parts) != 4:
        raise ValueError("%r is not an IPv4 address" % text)
    out = bytes(int(p) for p in parts)  # ValueError for numbers outside 0..255
    return out




def is_on(value, default=True):
    if value is None or value == "":
        return default
    return str(value).strip().lower() not in ("0", "off", "false", "no")




class NetIf:
    """The W5500 and its address: start() once, then poll(now) from the main loop."""

    def __init__(self, getenv, log, clock):
        self.getenv = getenv
        self.log = log
        self.clock = clock
        self.eth = None
        self.chip = None
        self.mode = "none"  # dhcp, static, fallback (static after DHCP failed), none
        self.ip_bytes = ZERO
        self.netmask = ZERO
        self.gateway = ZERO
        self.dns = ZERO
        self.link = False
        self.link_changes = 0
        self.next_link_check = 0
        self.listeners = []  # callables(ip string) run when the address changes
        self.watch = []  # objects with check(): sockets re-opened when the chip lost them
        self.hostname = str(getenv("NET_HOSTNAME") or "switchboard")
        self.use_dhcp = is_on(getenv("NET_DHCP"))
        self.dhcp = Dhcp(self)
        self.mac, self.mac_source = self.choose_mac()
        self.sip_socket = None  # the hardware socket reserved for SIP (W5500)
        self.buffers = None  # [(rx KB, tx KB)] per socket once split

    @property
    def ip(self):
        return ip_str(self.ip_bytes)

    def choose_mac(self):
        text = self.getenv("NET_MAC")
        if text:
            try:
                return parse_mac(str(text)), "settings"
            except ValueError as e:
                self.log("warning", "settings: %s; deriving the MAC from the board's id" % e)
        try:
            import microcontroller

            uid = bytes(microcontroller.cpu.uid)
            if uid:
                return derive_mac(uid), "board id"
        except (ImportError, AttributeError, TypeError):
            pass
        self.log("warning", "no NET_MAC and no unique id on this board: random MAC")
        try:
            import os

            seed = os.urandom(8)
        except (ImportError, AttributeError, NotImplementedError):
            import random

            seed = bytes(random.getrandbits(8) for _ in range(8))
        return derive_mac(seed), "random"

    def static_settings(self):
        """(ip, mask, gateway, dns) bytes from settings, or None when NET_IP is not set."""
        ip = self.getenv("NET_IP")
        if not ip:
            return None
        try:
            address = parse_ip(ip)
            mask = parse_ip(self.getenv("NET_NETMASK") or "255.255.255.0")
            gateway = self.getenv("NET_GATEWAY")
            gateway = parse_ip(gateway) if gateway else ZERO
            dns = self.getenv("NET_DNS")
            dns = parse_ip(dns) if dns else gateway
        except ValueError as e:
            self.log("error", "settings: NET_IP/NET_NETMASK/NET_GATEWAY/NET_DNS: %s" % e)
            return None
        return address, mask, gateway, dns

    # bring-up --------------------------------------------------------------------------
    def start(self, spi, cs, reset=None, feed=None, dhcp_timeout_ms=10000, dashboard=False):
        """Reset and start the chip, wait for the link, get an address. Blocks (boot only).
        On a W5500 the SIP socket is reserved here (sip_socket) and the chip's buffer memory
        split before any socket opens (buffers)."""
        WIZNET5K = import_driver()  # noqa: N806 (the driver's class)

        if reset is not None:
            reset.switch_to_output(value=False)
            time.sleep(0.01)
            reset.value = True
            time.sleep(0.05)
        # is_dhcp=False: the driver's DHCP would fail on long leases and block (see above)
        eth = self.eth = WIZNET5K(spi, cs, is_dhcp=False, mac=self.mac)
        self.chip = eth.chip
        try:
            eth.rcr = RETRIES
        except (AttributeError, ValueError):
            pass
        if self.chip == "w5500":
            self.split_buffers(dashboard)
        waited = 0
        while not eth.link_status:
            if waited % 10 == 0:
                self.log("warning", "Ethernet: no link yet (cable, switch port, PoE?); waiting")
            if feed is not None:
                feed()
            time.sleep(0.5)
            waited += 1
        self.link = True
        now = self.clock.now()
        self.next_link_check = now + LINK_POLL_MS
        static = self.static_settings()
        if not self.use_dhcp:
            if static is None:
                self.log("error", "NET_DHCP is off but NET_IP is not set: no address")
                return False
            self.configure(static[0], static[1], static[2], static[3], "static")
            return True
        self.dhcp.begin(now)
        deadline = now + dhcp_timeout_ms
        while self.dhcp.state != "bound" and self.clock.now() < deadline:
            self.dhcp.poll(self.clock.now())
            if feed is not None:
                feed()
            time.sleep(0.005)
        if self.dhcp.state == "bound":
            return True
        if static is not None:
            self.log("warning", "DHCP: no answer in %d s; using NET_IP %s (DHCP keeps asking)"
                     % (dhcp_timeout_ms // 1000, ip_str(static[0])))
            self.configure(static[0], static[1], static[2], static[3], "fallback")
        else:
            self.log("warning", "DHCP: no answer in %d s and no NET_IP to fall back on; "
                     "still asking" % (dhcp_timeout_ms // 1000))
        return self.ip_bytes != ZERO

    def split_buffers(self, dashboard):
        """Reserve the SIP socket and write every socket's buffer sizes (all closed now)."""
        eth = self.eth
        self.sip_socket = eth.get_socket(reserve_socket=True)
        dhcp = None
        for n in range(1, 8):  # the socket the DHCP client will take: the next free one
            if n != self.sip_socket:
                dhcp = n
                break
        split = buffer_split(self.sip_socket, dhcp, dashboard)
        for grow in (False, True):  # shrink first: the sums stay within 16 KB at every write
            for n in range(8):
                ctrl = (n << 5) + 0x0C  # socket n registers, write
                for reg, kb in ((SN_RXBUF, split[n][0]), (SN_TXBUF, split[n][1])):
                    if (kb > 2) == grow:  # the driver left 2 KB everywhere
                        eth._write(reg, ctrl, kb)
        self.buffers = split

    def buffer_text(self):
        """"socket n rx/tx" for the console, or the driver's default when not split."""
        if not self.buffers:
            return "driver default (2/2 each)"
        return ", ".join("%d%s %d/%d" % (n, " SIP" if n == self.sip_socket else "", b[0], b[1])
                         for n, b in enumerate(self.buffers))

    def configure(self, ip, mask, gateway, dns, mode):
        ip = bytes(ip)
        changed = ip != self.ip_bytes
        self.eth.ifconfig = (ip, bytes(mask), bytes(gateway), bytes(dns))
        self.ip_bytes, self.netmask, self.gateway, self.dns = ip, bytes(mask), bytes(gateway), \
            bytes(dns)
        self.mode = mode
        if changed:
            for listener in self.listeners:
                listener(self.ip)

    # upkeep ------------------------------------------------------------------------------
    def shift_times(self, ms):
        """The board clock restarted its epoch (Clock.listeners): stored times move by ms."""
        self.next_link_check -= ms
        self.dhcp.shift_times(ms)

    def poll(self, now):
        if now >= self.next_link_check:
            self.next_link_check = now + LINK_POLL_MS
            self.check_link(now)
        self.dhcp.poll(now)

    def check_link(self, now):
        try:
            up = self.eth.link_status
        except (OSError, RuntimeError):
            up = False
        if up != self.link:
            self.link = up
            self.link_changes += 1
            if not up:
                self.log("warning", "Ethernet: link down")
                self.dhcp.close()
            else:
                self.log("info", "Ethernet: link up")
                if self.use_dhcp:
                    self.dhcp.begin(now)
        if up:
            for item in self.watch:
                item.check()

    def status(self):
        now = self.clock.now()
        return {
            "mode": self.mode, "ip": self.ip, "netmask": ip_str(self.netmask),
            "gateway": ip_str(self.gateway), "dns": ip_str(self.dns), "mac": pretty_mac(self.mac),
            "mac_source": self.mac_source, "hostname": self.hostname, "link": self.link,
            "link_changes": self.link_changes, "chip": self.chip,
            "buffers_kb": {"sip_socket": self.sip_socket, "rx": [b[0] for b in self.buffers],
                           "tx": [b[1] for b in self.buffers]} if self.buffers else None,
            "dhcp": self.dhcp.status(now) if self.use_dhcp else None,
        }


class Watchdog:
    """Feeds microcontroller.watchdog from the loop (a service: poll(now))."""

    def __init__(self, timer):
        self.timer = timer
        self.feeds = 0

    def poll(self, now):
        self.timer.feed()
        self.feeds += 1
