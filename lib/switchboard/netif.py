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

from switchboard.dhcp import ZERO, Dhcp, ip_str

UDP = 0x02  # the driver's SNMR_UDP
SOCK_UDP = 0x22  # Sn_SR of an open UDP socket
LINK_POLL_MS = 1000
# The W5500's 16 KB of RX and 16 KB of TX memory, set per socket (Sn_RXBUF_SIZE 0x1E,
# Sn_TXBUF_SIZE 0x1F, in KB: 0, 1, 2, 4, 8 or 16; each sum at most 16). The driver leaves
# 2 KB each: two SIP INVITEs with SDP. The SIP socket gets SIP_RX_KB; the other seven
# sockets share the rest (1 KB each; 2 KB for the DHCP socket when no dashboard needs them):
# switchboard.bringup.buffer_split() at boot.
# TX stays 2 KB everywhere: the driver writes TCP data in 2 KB pieces and waits for that
# much room, and it addresses TX memory as 2 KB blocks (larger TX buffers would be written
# in the wrong place).
SIP_RX_KB = 8
TX_KB = 2
CHIP_KB = 16


class _Absent:
    """Stands in sys.modules for adafruit_wiznet5k's DHCP and DNS modules, which Switchboard
    never calls (is_dhcp=False, no names resolved): 14 KB of heap not spent at import."""

    def __init__(self, name):
        self.name = name

    def __getattr__(self, attr):
        raise RuntimeError("%s is not loaded on this board (Switchboard does not use it)"
                           % self.name)


def pretty_mac(mac):
    return ":".join("%02x" % b for b in mac)


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
        self.mac = None  # set by bringup.start(): NET_MAC, derived from the board id, random
        self.mac_source = None
        self.sip_socket = None  # the hardware socket reserved for SIP (W5500)
        self.buffers = None  # [(rx KB, tx KB)] per socket once split

    @property
    def ip(self):
        return ip_str(self.ip_bytes)

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
