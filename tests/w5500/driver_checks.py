"""The driver facts the board code designs around, shown on the model with the unmodified
adafruit_wiznet5k (no Switchboard code except w5500udp where named). Run as a subprocess:

    python tests/w5500/driver_checks.py CHECK     -> prints one JSON line of findings

CHECK is one of: reopen, concat, lease, accept_closed, accept_race, dashboard_race, maintain.
"""

import json
import os
import socket
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path[:0] = [os.path.join(HERE, "stubs"), os.path.join(os.path.dirname(os.path.dirname(HERE)),
                                                          "lib"), HERE]

import board  # noqa: E402
import busio  # noqa: E402
import digitalio  # noqa: E402
import runner  # noqa: E402
import supervisor  # noqa: E402
from dhcp import DhcpServer  # noqa: E402
from model import W5500  # noqa: E402

IP = "127.98.%d.%d" % (os.getpid() % 250, 7)


def chip_and_eth(dhcp=None, is_dhcp=False):
    from adafruit_wiznet5k.adafruit_wiznet5k import WIZNET5K

    runner.micropython_errors()
    digitalio._claimed.clear()  # a new board for each chip
    chip = W5500(dhcp=dhcp)
    board.pin_named("GPIO18").device = chip
    board.pin_named("GPIO17").hook = chip.set_cs
    spi = busio.SPI(board.GP18, MOSI=board.GP19, MISO=board.GP16)
    cs = digitalio.DigitalInOut(board.GP17)
    eth = WIZNET5K(spi, cs, is_dhcp=is_dhcp, mac="02:00:00:00:00:01")
    if not is_dhcp:
        eth.ifconfig = (eth.unpretty_ip(IP), b"\xff\0\0\0", b"\x7f\0\0\x01", b"\x7f\0\0\x01")
    return chip, eth


def queue_two(port):
    peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    peer.bind(("127.0.0.1", 0))
    peer.sendto(b"first", (IP, port))
    peer.sendto(b"second", (IP, port))
    time.sleep(0.1)
    return peer


def drain(recv, tries=50):
    got = []
    for _ in range(tries):
        item = recv()
        if item is not None:
            got.append(item)
    return got


def check_reopen():
    """Two datagrams wait in the chip; the pool's sendto() re-OPENs the socket: both gone.
    w5500udp's send() writes Sn_DIPR/Sn_DPORT instead: both still there."""
    from adafruit_wiznet5k.adafruit_wiznet5k_socketpool import SocketPool

    from switchboard.w5500udp import W5500UDP

    chip, eth = chip_and_eth()
    pool = SocketPool(eth)
    s = pool.socket(pool.AF_INET, pool.SOCK_DGRAM)
    s.bind(("", 5070))
    s.settimeout(0)
    chip.pump()
    peer = queue_two(5070)
    chip.pump()
    queued = chip.sockets[s._socknum].rx_used()
    s.sendto(b"reply", ("127.0.0.1", peer.getsockname()[1]))
    buf = bytearray(100)

    def pool_recv():
        try:
            n, _ = s.recvfrom_into(buf)
        except OSError:
            return None
        return bytes(buf[:n])

    after_pool = drain(pool_recv)
    s.close()

    ep = W5500UDP(eth, 5071, 100, lambda *a: None)
    chip.pump()
    peer2 = queue_two(5071)
    chip.pump()
    ep.send(b"reply", ("127.0.0.1", peer2.getsockname()[1]))
    peer2.settimeout(2)
    reply = peer2.recv(100)
    after_ep = [d for d, _ in drain(ep.recv)]
    return {"queued_bytes": queued, "after_pool_sendto": [d.decode() for d in after_pool],
            "after_w5500udp_send": [d.decode() for d in after_ep],
            "w5500udp_reply": reply.decode(), "lost_on_open": chip.stats["lost_on_open"]}


def check_concat():
    """timeout 0: one datagram per recvfrom_into; blocking: the queued ones run together."""
    from adafruit_wiznet5k.adafruit_wiznet5k_socketpool import SocketPool

    chip, eth = chip_and_eth()
    pool = SocketPool(eth)
    s = pool.socket(pool.AF_INET, pool.SOCK_DGRAM)
    s.bind(("", 5072))
    chip.pump()
    queue_two(5072)
    chip.pump()
    buf = bytearray(100)
    s.settimeout(0)
    n1, _ = s.recvfrom_into(buf)
    first = bytes(buf[:n1])
    n2, _ = s.recvfrom_into(buf)
    second = bytes(buf[:n2])
    queue_two(5072)
    chip.pump()
    s.settimeout(0.5)
    n, _ = s.recvfrom_into(buf)
    return {"nonblocking": [first.decode(), second.decode()], "with_timeout": buf[:n].decode()}


def check_lease():
    """The driver's own DHCP with a 90-day lease: OverflowError from ticks_add; 1 h: fine."""
    out = {}
    for lease in (3600, 90 * 86400):
        dhcp = DhcpServer(server_ip="127.98.0.1", offer_ip=IP, lease=lease)
        try:
            _, eth = chip_and_eth(dhcp, is_dhcp=True)
            out[str(lease)] = "ok %s" % eth.pretty_ip(eth.ip_address)
        except Exception as e:
            out[str(lease)] = "%s: %s" % (type(e).__name__, e)
    return out


def check_accept_closed():
    """A listener whose hardware socket dropped to CLOSED: every accept() fails."""
    from adafruit_wiznet5k.adafruit_wiznet5k_socketpool import SocketPool

    chip, eth = chip_and_eth()
    pool = SocketPool(eth)
    s = pool.socket(pool.AF_INET, pool.SOCK_STREAM)
    s.bind((IP, 8081))
    s.listen(1)
    s.setblocking(False)
    errors = []
    try:
        s.accept()
    except OSError as e:
        errors.append("OSError %s" % e.errno)
    chip.sockets[s._socknum].sr = 0x00
    for _ in range(3):
        try:
            s.accept()
            errors.append("accepted")
        except Exception as e:
            errors.append("%s: %s" % (type(e).__name__, e))
    return {"accept": errors}


def race_listen(eth, port):
    """At the next LISTEN command a browser connects to port before the driver reads the
    status back (a SYN arriving in that gap on the real chip)."""
    listen = eth.socket_listen
    peers = []

    def listen_then_connect(num, *args):
        listen(num, *args)
        eth.socket_listen = listen  # once
        peer = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        peer.connect((IP, port))
        peers.append(peer)
        for _ in range(50):  # the chip takes the connection on its next register access
            if eth.socket_status(num) != 0x14:
                break
            time.sleep(0.01)

    eth.socket_listen = listen_then_connect
    return peers


def connect_first(pool, port):
    s = pool.socket(pool.AF_INET, pool.SOCK_STREAM)
    s.bind((IP, port))
    s.listen(1)
    s.setblocking(False)
    first = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    first.connect((IP, port))
    return s, first


def check_accept_race():
    """accept() swaps the listener's chip socket to the client, listens on a new one, and
    raises when that one is not in LISTEN: the client's chip socket is then owned by nothing."""
    from adafruit_wiznet5k.adafruit_wiznet5k_socketpool import SocketPool

    chip, eth = chip_and_eth()
    pool = SocketPool(eth)
    s, first = connect_first(pool, 8082)
    listener = s._socknum
    race_listen(eth, 8082)
    found = {"listener": listener}
    for _ in range(50):
        try:
            s.accept()
            found["error"] = "accepted"
            break
        except OSError:
            time.sleep(0.01)  # EAGAIN: the connection is not there yet
        except RuntimeError as e:
            found["error"] = str(e)
            break
    found["new_listener"] = s._socknum
    found["orphan_status"] = eth.socket_status(listener)
    return found


def check_dashboard_race():
    """The same race under switchboard.http.Dashboard: the orphaned chip socket is closed
    and the listener started again."""
    from adafruit_wiznet5k.adafruit_wiznet5k_socketpool import SocketPool

    from switchboard.app import App
    from switchboard.config import Config
    from switchboard.http import Dashboard

    chip, eth = chip_and_eth()
    pool = SocketPool(eth)
    lines = []
    clock = type("Clock", (), {"now": lambda self: 0})()
    config = Config(overrides={"SIP_HOST": IP, "HTTP_PORT": 8083})
    app = App(config, pool, clock, lambda level, text: lines.append(text), b"x" * 16,
              sip=object())
    dash = Dashboard(app, pool, IP, 8083, os.path.join(ROOT, "web"))
    listener = dash.server._sock._socknum
    race_listen(eth, 8083)
    first = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    first.connect((IP, 8083))
    for _ in range(50):
        dash.poll(0)
        if dash.restarts:
            break
        time.sleep(0.01)
    busy = [n for n in range(1, 8) if eth.socket_status(n) not in (0x00, 0x14)]
    return {"restarts": dash.restarts, "lines": lines, "listener_was": listener,
            "busy": busy, "listening": [n for n in range(8) if eth.socket_status(n) == 0x14]}


def check_maintain():
    """maintain_dhcp_lease() after T1 with a silent server: how long one call blocks."""
    dhcp = DhcpServer(server_ip="127.98.0.1", offer_ip=IP, lease=600)
    _, eth = chip_and_eth(dhcp, is_dhcp=True)
    dhcp.silent = True
    start = time.monotonic()
    eth.maintain_dhcp_lease()
    before_t1 = time.monotonic() - start
    supervisor.advance(301 * 1000)
    start = time.monotonic()
    eth.maintain_dhcp_lease()
    return {"before_t1_s": round(before_t1, 3), "after_t1_s": round(time.monotonic() - start, 3),
            "ip": eth.pretty_ip(eth.ip_address)}


if __name__ == "__main__":
    print(json.dumps(globals()["check_" + sys.argv[1]]()), flush=True)
