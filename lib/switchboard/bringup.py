"""Bringing the W5500 up at boot: MAC, driver, buffer split, link, first address.

Start-up only: switchboard.board drops this module after start (with boot and profiles), so
its code does not stay on the heap; what runs afterwards is in netif.py and dhcp.py.
"""

from switchboard.dhcp import ZERO, fnv, ip_str
from switchboard.netif import CHIP_KB, LINK_POLL_MS, SIP_RX_KB, TX_KB, _Absent

RETRIES = 2  # W5500 RCR: an unanswered ARP costs (RCR + 1) x 200 ms, not 1.8 s
SN_RXBUF, SN_TXBUF = 0x1E, 0x1F  # Sn_RXBUF_SIZE, Sn_TXBUF_SIZE (KB)


def buffer_split(sip, dhcp, dashboard):
    """[(rx KB, tx KB)] for the eight sockets: SIP_RX_KB for socket `sip`, the rest shared by
    the sockets in use (all of them with the dashboard on: its connections take any free
    socket; else the DHCP socket first). Never more than CHIP_KB in total per direction."""
    rx = [1] * 8
    rx[sip] = SIP_RX_KB
    if not dashboard and dhcp is not None and dhcp != sip:
        rx[dhcp] = 2
    assert sum(rx) <= CHIP_KB and 8 * TX_KB <= CHIP_KB
    return [(r, TX_KB) for r in rx]


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


def parse_ip(text):
    parts = str(text).strip().split(".")
    if len(parts) != 4:
        raise ValueError("%r is not an IPv4 address" % text)
    return bytes(int(p) for p in parts)  # ValueError for numbers outside 0..255


def choose_mac(getenv, log):
    """(mac, where from): NET_MAC, else derived from the board's unique id, else random."""
    text = getenv("NET_MAC")
    if text:
        try:
            return parse_mac(str(text)), "settings"
        except ValueError as e:
            log("warning", "settings: %s; deriving the MAC from the board's id" % e)
    try:
        import microcontroller

        uid = bytes(microcontroller.cpu.uid)
        if uid:
            return derive_mac(uid), "board id"
    except (ImportError, AttributeError, TypeError):
        pass
    log("warning", "no NET_MAC and no unique id on this board: random MAC")
    try:
        import os

        seed = os.urandom(8)
    except (ImportError, AttributeError, NotImplementedError):
        import random

        seed = bytes(random.getrandbits(8) for _ in range(8))
    return derive_mac(seed), "random"


def static_settings(getenv, log):
    """(ip, mask, gateway, dns) bytes from settings, or None when NET_IP is not set."""
    ip = getenv("NET_IP")
    if not ip:
        return None
    try:
        address = parse_ip(ip)
        mask = parse_ip(getenv("NET_NETMASK") or "255.255.255.0")
        gateway = getenv("NET_GATEWAY")
        gateway = parse_ip(gateway) if gateway else ZERO
        dns = getenv("NET_DNS")
        dns = parse_ip(dns) if dns else gateway
    except ValueError as e:
        log("error", "settings: NET_IP/NET_NETMASK/NET_GATEWAY/NET_DNS: %s" % e)
        return None
    return address, mask, gateway, dns


def split_buffers(net, dashboard):
    """Reserve the SIP socket and write every socket's buffer sizes (all closed now)."""
    eth = net.eth
    net.sip_socket = eth.get_socket(reserve_socket=True)
    dhcp = None
    for n in range(1, 8):  # the socket the DHCP client will take: the next free one
        if n != net.sip_socket:
            dhcp = n
            break
    split = buffer_split(net.sip_socket, dhcp, dashboard)
    for grow in (False, True):  # shrink first: the sums stay within 16 KB at every write
        for n in range(8):
            ctrl = (n << 5) + 0x0C  # socket n registers, write
            for reg, kb in ((SN_RXBUF, split[n][0]), (SN_TXBUF, split[n][1])):
                if (kb > 2) == grow:  # the driver left 2 KB everywhere
                    eth._write(reg, ctrl, kb)
    net.buffers = split


def start(net, spi, cs, reset=None, feed=None, dhcp_timeout_ms=10000, dashboard=False):
    """Reset and start the chip, wait for the link, get an address. Blocks (boot only).
    On a W5500 the SIP socket is reserved (net.sip_socket) and the chip's buffer memory
    split before any socket opens (net.buffers)."""
    import time

    net.mac, net.mac_source = choose_mac(net.getenv, net.log)
    WIZNET5K = import_driver()  # noqa: N806 (the driver's class)

    if reset is not None:
        reset.switch_to_output(value=False)
        time.sleep(0.01)
        reset.value = True
        time.sleep(0.05)
    # is_dhcp=False: the driver's DHCP fails on long leases and blocks (netif.py)
    eth = net.eth = WIZNET5K(spi, cs, is_dhcp=False, mac=net.mac)
    net.chip = eth.chip
    try:
        eth.rcr = RETRIES
    except (AttributeError, ValueError):
        pass
    if net.chip == "w5500":
        split_buffers(net, dashboard)
    waited = 0
    while not eth.link_status:
        if waited % 10 == 0:
            net.log("warning", "Ethernet: no link yet (cable, switch port, PoE?); waiting")
        if feed is not None:
            feed()
        time.sleep(0.5)
        waited += 1
    net.link = True
    clock = net.clock
    now = clock.now()
    net.next_link_check = now + LINK_POLL_MS
    static = static_settings(net.getenv, net.log)
    if not net.use_dhcp:
        if static is None:
            net.log("error", "NET_DHCP is off but NET_IP is not set: no address")
            return False
        net.configure(static[0], static[1], static[2], static[3], "static")
        return True
    net.dhcp.begin(now)
    deadline = now + dhcp_timeout_ms
    while net.dhcp.state != "bound" and clock.now() < deadline:
        net.dhcp.poll(clock.now())
        if feed is not None:
            feed()
        time.sleep(0.005)
    if net.dhcp.state == "bound":
        return True
    if static is not None:
        net.log("warning", "DHCP: no answer in %d s; using NET_IP %s (DHCP keeps asking)"
                % (dhcp_timeout_ms // 1000, ip_str(static[0])))
        net.configure(static[0], static[1], static[2], static[3], "fallback")
    else:
        net.log("warning", "DHCP: no answer in %d s and no NET_IP to fall back on; "
                "still asking" % (dhcp_timeout_ms // 1000))
    return net.ip_bytes != ZERO
