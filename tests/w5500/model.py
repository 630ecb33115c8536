"""A register-level model of the WIZnet W5500, behind a fake SPI bus, bridged to real sockets.

What the unmodified adafruit_wiznet5k driver sees is the chip's SPI protocol: a frame is
framed by chip select, starts with two address bytes and a control byte
(BSB << 3 | RWB << 2 | OM), then data; the address increments for every data byte. BSB 0
is the common register block, 4n+1 socket n's registers, 4n+2 its TX buffer, 4n+3 its RX
buffer. The model keeps what the datasheet (W5500 v1.0.9) says the chip keeps:

- common registers: MR (bit 7 reset, self-clearing), GAR, SUBR, SHAR, SIPR, RTR, RCR,
  PHYCFGR (bit 0 = link, from the test) and VERSIONR = 0x04;
- socket registers: Sn_MR, Sn_CR (commands run at once and read back 0), Sn_IR (write 1 to
  clear), Sn_SR, Sn_PORT, Sn_DIPR, Sn_DPORT, Sn_TX_FSR / Sn_TX_RD / Sn_TX_WR,
  Sn_RX_RSR / Sn_RX_RD / Sn_RX_WR, buffer sizes;
- 2 KB TX and RX ring buffers per socket, addressed by the 16-bit pointers modulo the size;
- UDP RX records (4 bytes source IP, 2 bytes source port, 2 bytes length, payload); a
  datagram that does not fit in the free RX space is dropped, as the chip drops it;
- OPEN resets every buffer pointer of the socket: whatever waited in its RX buffer is gone;
- TCP: OPEN/LISTEN/CONNECT/DISCON/CLOSE/SEND/RECV with the status codes of the datasheet;
  a connection arriving at a port where no socket is in LISTEN is answered with RST (the
  W5500 has no backlog); the RX buffer is the TCP window (the model reads from the real
  connection only what fits).

The chip's network side is real sockets of the test machine: a UDP socket in the chip
bound to port P is a real UDP socket bound to (SIPR, P); a TCP socket in LISTEN on port P
is served by a real listening socket on (SIPR, P). The board's IP is therefore a loopback
address (127.x.y.z) that SIPp, curl and the tests can reach. DHCP (port 67) goes to a DHCP
peer object (tests/w5500/dhcp.py) that speaks the real protocol.

The network side runs when the driver touches the chip (at every chip-select), so what
arrives between two SPI frames lands in the chip's buffers as it would on the wire.
"""

import errno
import socket
import struct
import time

VERSION = 0x04
MEMORY_KB = 16  # RX memory and TX memory each, shared by the eight sockets
SIZES_KB = (0, 1, 2, 4, 8, 16)  # what Sn_RXBUF_SIZE / Sn_TXBUF_SIZE accept


class BufferSizeError(AssertionError):
    """A buffer size the chip does not support, or sizes over its 16 KB: the real chip
    would misplace data; the model refuses, so the test fails at that write."""

# socket status (Sn_SR)
CLOSED = 0x00
INIT = 0x13
LISTEN = 0x14
SYNSENT = 0x15
ESTABLISHED = 0x17
FIN_WAIT = 0x18
CLOSE_WAIT = 0x1C
UDP = 0x22

# commands (Sn_CR)
OPEN, LISTEN_CMD, CONNECT, DISCON, CLOSE, SEND, SEND_MAC, SEND_KEEP, RECV = (
    0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x21, 0x22, 0x40)

# Sn_IR bits
IR_SEND_OK, IR_TIMEOUT, IR_RECV, IR_DISCON, IR_CON = 0x10, 0x08, 0x04, 0x02, 0x01

# socket register offsets
S_MR, S_CR, S_IR, S_SR, S_PORT, S_DIPR, S_DPORT = 0x00, 0x01, 0x02, 0x03, 0x04, 0x0C, 0x10
S_RXBUF, S_TXBUF = 0x1E, 0x1F
S_TX_FSR, S_TX_RD, S_TX_WR, S_RX_RSR, S_RX_RD, S_RX_WR = 0x20, 0x22, 0x24, 0x26, 0x28, 0x2A

PHY_UP, PHY_DOWN = 0xBF, 0xB8  # PHYCFGR: RST=1, OPMD=0, OPMDC=111 (auto), 100M full, link


def ip_str(b):
    return "%d.%d.%d.%d" % tuple(b)


def ip_bytes(s):
    return bytes(int(x) for x in s.split("."))


class HwSocket:
    """One of the eight hardware sockets."""

    def __init__(self, chip, n):
        self.chip = chip
        self.n = n
        self.regs = bytearray(0x30)
        self.tx = bytearray(MEMORY_KB * 1024)
        self.rx = bytearray(MEMORY_KB * 1024)
        self.reset()

    def reset(self):
        self.close_real()
        self.regs[:] = bytes(0x30)
        self.regs[S_RXBUF] = 2
        self.regs[S_TXBUF] = 2
        self.regs[0x12:0x14] = b"\x05\xb4"  # MSSR
        self.regs[0x16] = 0x80  # TTL
        self.sr = CLOSED
        self.tx_rd = 0
        self.tx_wr = 0
        self.rx_rd = 0  # committed by RECV
        self.rx_wr = 0
        self.conn = None  # real TCP connection
        self.udp = None  # real UDP socket
        self.udp_addr = None
        self.peer_eof = False
        self.shut = False

    # 16-bit register helpers -------------------------------------------------
    def reg16(self, off):
        return self.regs[off] << 8 | self.regs[off + 1]

    @property
    def port(self):
        return self.reg16(S_PORT)

    @property
    def mode(self):
        return self.regs[S_MR] & 0x0F

    def rx_used(self):
        return (self.rx_wr - self.rx_rd) & 0xFFFF

    def rx_free(self):
        return self.rx_size() - self.rx_used()

    def rx_size(self):
        return self.regs[S_RXBUF] * 1024

    def tx_size(self):
        return self.regs[S_TXBUF] * 1024

    def tx_used(self):
        return (self.tx_wr - self.tx_rd) & 0xFFFF

    def read_reg(self, off):
        if off in (S_TX_FSR, S_TX_FSR + 1):
            v = self.tx_size() - ((self.reg16(S_TX_WR) - self.tx_rd) & 0xFFFF)
            v = max(0, v)
            return (v >> 8) & 0xFF if off == S_TX_FSR else v & 0xFF
        if off in (S_TX_RD, S_TX_RD + 1):
            return (self.tx_rd >> 8) & 0xFF if off == S_TX_RD else self.tx_rd & 0xFF
        if off in (S_RX_RSR, S_RX_RSR + 1):
            v = self.rx_used()
            return (v >> 8) & 0xFF if off == S_RX_RSR else v & 0xFF
        if off in (S_RX_WR, S_RX_WR + 1):
            return (self.rx_wr >> 8) & 0xFF if off == S_RX_WR else self.rx_wr & 0xFF
        if off == S_SR:
            return self.sr
        if off == S_CR:
            return 0
        if off < len(self.regs):
            return self.regs[off]
        return 0

    def write_reg(self, off, value):
        self.chip.on_socket_write(self, off, value)
        if off == S_CR:
            self.command(value)
        elif off == S_IR:
            self.regs[S_IR] &= ~value & 0xFF
        elif off in (S_SR, S_TX_FSR, S_TX_FSR + 1, S_TX_RD, S_TX_RD + 1, S_RX_RSR, S_RX_RSR + 1,
                     S_RX_WR, S_RX_WR + 1):
            pass  # read-only
        elif off in (S_RXBUF, S_TXBUF):
            self.set_size(off, value)
        elif off < len(self.regs):
            self.regs[off] = value

    def set_size(self, off, value):
        """Sn_RXBUF_SIZE / Sn_TXBUF_SIZE: a size the chip knows, all sockets within 16 KB."""
        kind = "RX" if off == S_RXBUF else "TX"
        if value not in SIZES_KB:
            raise BufferSizeError("socket %d: %s buffer %d KB is not one of %s"
                                  % (self.n, kind, value, SIZES_KB))
        total = sum(s.regs[off] for s in self.chip.sockets if s is not self) + value
        if total > MEMORY_KB:
            raise BufferSizeError("socket %d: %s buffers would total %d KB (the chip has %d)"
                                  % (self.n, kind, total, MEMORY_KB))
        if self.sr != CLOSED and value != self.regs[off]:
            raise BufferSizeError("socket %d: %s buffer resized while open" % (self.n, kind))
        self.regs[off] = value

    # buffers -------------------------------------------------------------------
    def rx_put(self, data):
        for b in data:
            self.rx[self.rx_wr % self.rx_size()] = b
            self.rx_wr = (self.rx_wr + 1) & 0xFFFF

    def tx_take(self):
        end = self.reg16(S_TX_WR)
        n = (end - self.tx_rd) & 0xFFFF
        size = self.tx_size()
        out = bytes(self.tx[(self.tx_rd + i) % size] for i in range(min(n, size)))
        self.tx_rd = end
        return out

    # commands --------------------------------------------------------------------
    def command(self, cmd):
        chip = self.chip
        chip.stats["commands"][cmd] = chip.stats["commands"].get(cmd, 0) + 1
        if cmd == OPEN:
            lost = self.rx_used()
            if lost:
                chip.stats["lost_on_open"] += 1
                chip.stats["lost_on_open_bytes"] += lost
            self.close_real()
            self.tx_rd = self.tx_wr = self.rx_rd = self.rx_wr = 0
            self.regs[S_TX_WR:S_TX_WR + 2] = b"\0\0"
            self.regs[S_RX_RD:S_RX_RD + 2] = b"\0\0"
            self.peer_eof = False
            self.shut = False
            if self.mode == 0x01:
                self.sr = INIT
            elif self.mode == 0x02:
                self.sr = UDP
                chip.bind_udp(self)
            else:
                self.sr = CLOSED
        elif cmd == LISTEN_CMD:
            if self.sr == INIT:
                self.sr = LISTEN
                chip.ensure_listener(self.port)
        elif cmd == CONNECT:
            if self.sr == INIT:
                self.connect()
        elif cmd == DISCON:
            self.discon()
        elif cmd == CLOSE:
            self.close_real()
            self.sr = CLOSED
        elif cmd == SEND:
            self.send()
        elif cmd == RECV:
            self.rx_rd = self.reg16(S_RX_RD)
        # SEND_MAC, SEND_KEEP: nothing to model

    def send(self):
        chip = self.chip
        data = self.tx_take()
        if self.sr == UDP:
            dest = (ip_str(self.regs[S_DIPR:S_DIPR + 4]), self.reg16(S_DPORT))
            if not chip.link:
                self.regs[S_IR] |= IR_TIMEOUT  # ARP never answered
                return
            chip.udp_out(self, data, dest)
            self.regs[S_IR] |= IR_SEND_OK
        elif self.sr in (ESTABLISHED, CLOSE_WAIT) and self.conn is not None:
            try:
                self.conn.setblocking(True)
                self.conn.settimeout(2.0)
                self.conn.sendall(data)
                self.conn.setblocking(False)
                self.regs[S_IR] |= IR_SEND_OK
                chip.stats["tcp_sent"] += len(data)
            except OSError:
                self.tcp_dead()
        else:
            self.regs[S_IR] |= IR_TIMEOUT

    def connect(self):
        dest = (ip_str(self.regs[S_DIPR:S_DIPR + 4]), self.reg16(S_DPORT))
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.bind((self.chip.ip, 0))
            s.settimeout(1.0)
            s.connect(dest)
        except OSError:
            s.close()
            self.sr = CLOSED
            self.regs[S_IR] |= IR_TIMEOUT
            return
        s.setblocking(False)
        self.conn = s
        self.sr = ESTABLISHED
        self.regs[S_IR] |= IR_CON

    def discon(self):
        if self.sr in (ESTABLISHED, CLOSE_WAIT) and self.conn is not None:
            try:
                self.conn.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            self.shut = True
            if self.sr == CLOSE_WAIT or self.peer_eof:
                self.sr = CLOSED
                self.regs[S_IR] |= IR_DISCON
                self.close_real()
            else:
                self.sr = FIN_WAIT
        elif self.sr in (LISTEN, INIT, SYNSENT):
            self.sr = CLOSED
            self.regs[S_IR] |= IR_DISCON

    def tcp_dead(self):
        """The peer reset the connection."""
        self.sr = CLOSED
        self.regs[S_IR] |= IR_DISCON | IR_TIMEOUT
        if self.conn is not None:
            try:
                self.conn.close()
            except OSError:
                pass
            self.conn = None

    def close_real(self):
        if getattr(self, "conn", None) is not None:
            self.chip.linger(self.conn, self.shut)
            self.conn = None
        if getattr(self, "udp", None) is not None:
            self.chip.release_udp(self)

    # network side ------------------------------------------------------------------
    def pump_tcp(self):
        if self.conn is None or self.sr not in (ESTABLISHED, FIN_WAIT, CLOSE_WAIT):
            return
        if self.peer_eof:
            return
        free = self.rx_free()
        if free <= 0:
            return
        try:
            data = self.conn.recv(free)
        except BlockingIOError:
            return
        except OSError:
            self.tcp_dead()
            return
        if data:
            if not self.chip.link:
                return  # lost on the wire; TCP would retransmit (not modelled)
            self.rx_put(data)
            self.regs[S_IR] |= IR_RECV
            self.chip.stats["tcp_received"] += len(data)
            return
        self.peer_eof = True
        self.regs[S_IR] |= IR_DISCON
        if self.sr == ESTABLISHED:
            self.sr = CLOSE_WAIT
        elif self.sr == FIN_WAIT:
            self.sr = CLOSED
            self.close_real()


class W5500:
    """The chip: SPI side (select/write/read) and network side (pump)."""

    def __init__(self, dhcp=None, link=True, log=None):
        self.dhcp = dhcp
        self.link = link
        self.log = log or (lambda text: None)
        self.sockets = [HwSocket(self, n) for n in range(8)]
        self.listeners = {}  # (ip, port) -> real listening socket
        self.lingering = []  # (socket, deadline)
        self.in_reset = False
        self.selected = False
        self.frame = bytearray()
        self.addr = 0
        self.ctrl = 0
        self.hold = None  # see hold_until_reply()
        self.paused = set()  # UDP ports whose real sockets are not read (datagrams pile up)
        self.hooks = []  # callables run at each pump (the control channel)
        self.stats = {
            "frames": 0, "commands": {}, "lost_on_open": 0, "lost_on_open_bytes": 0,
            "udp_in": 0, "udp_arrived": 0, "udp_dropped": 0, "udp_dropped_link": 0, "udp_out": 0,
            "tcp_accepted": 0, "tcp_refused": 0, "tcp_sent": 0, "tcp_received": 0,
            "resets": 0, "bind_errors": [], "held_released": 0,
        }
        self.common = bytearray(0x40)
        self.chip_reset()

    # chip state ---------------------------------------------------------------------
    def chip_reset(self):
        self.stats["resets"] += 1
        for s in self.sockets:
            s.reset()
        self.common[:] = bytes(0x40)
        self.common[0x19:0x1B] = b"\x07\xd0"  # RTR 200 ms
        self.common[0x1B] = 8  # RCR
        self.common[0x1D] = 0x28  # PTIMER
        self.common[0x26:0x28] = b"\xff\xff"  # PMRU

    @property
    def ip(self):
        return ip_str(self.common[0x0F:0x13])

    @property
    def mac(self):
        return ":".join("%02x" % b for b in self.common[0x09:0x0F])

    def read_common(self, addr):
        if addr == 0x2E:
            return PHY_UP if self.link else PHY_DOWN
        if addr == 0x39:
            return VERSION
        if addr < 0x40:
            return self.common[addr]
        return 0  # nothing there

    def write_common(self, addr, value):
        if addr == 0x00:
            if value & 0x80:
                self.chip_reset()
                return  # RST self-clears: MR reads back 0
            self.common[0] = value
        elif addr in (0x2E, 0x39) or addr >= 0x40:
            if addr == 0x2E:
                self.common[0x2E] = value
        else:
            self.common[addr] = value

    # SPI side -------------------------------------------------------------------------
    def set_cs(self, high):
        if not high:
            self.pump()
            self.selected = True
            self.frame = bytearray()
            self.stats["frames"] += 1
        else:
            self.selected = False

    def set_reset(self, high):
        if not high:
            self.in_reset = True
            self.chip_reset()
        else:
            self.in_reset = False

    def spi_write(self, data):
        if not self.selected or self.in_reset:
            return
        for b in data:
            if len(self.frame) < 3:
                self.frame.append(b)
                if len(self.frame) == 3:
                    self.addr = self.frame[0] << 8 | self.frame[1]
                    self.ctrl = self.frame[2]
                continue
            if self.ctrl & 0x04:  # RWB = 1: write
                self.put(self.addr, b)
                self.addr = (self.addr + 1) & 0xFFFF
            # during a read frame the bytes on MOSI are ignored

    def spi_read(self, n):
        if not self.selected or self.in_reset or len(self.frame) < 3 or self.ctrl & 0x04:
            return bytes(n)  # MISO idles low
        out = bytearray(n)
        for i in range(n):
            out[i] = self.get(self.addr)
            self.addr = (self.addr + 1) & 0xFFFF
        return bytes(out)

    def block(self):
        bsb = self.ctrl >> 3
        if bsb == 0:
            return "common", None
        n, kind = (bsb - 1) // 4, (bsb - 1) % 4
        if n > 7 or kind == 3:
            return "reserved", None
        return ("reg", "tx", "rx")[kind], self.sockets[n]

    def get(self, addr):
        kind, sock = self.block()
        if kind == "common":
            return self.read_common(addr)
        if kind == "reg":
            return sock.read_reg(addr)
        if kind == "tx":
            return sock.tx[addr % sock.tx_size()]
        if kind == "rx":
            return sock.rx[addr % sock.rx_size()]
        return 0

    def put(self, addr, value):
        kind, sock = self.block()
        if kind == "common":
            self.write_common(addr, value)
        elif kind == "reg":
            sock.write_reg(addr, value)
        elif kind == "tx":
            self.on_socket_write(sock, "tx", value)
            sock.tx[addr % sock.tx_size()] = value
        elif kind == "rx":
            sock.rx[addr % sock.rx_size()] = value

    # test hooks -------------------------------------------------------------------------------
    def hold_until_reply(self, port, source_ip):
        """Keep datagrams for chip port `port` from `source_ip` off the chip until the driver
        next writes to that socket for something other than reading (a reply starts): the way
        to make a datagram arrive while a reply is being sent."""
        self.hold = {"port": port, "ip": source_ip, "held": [], "armed": False}

    def on_socket_write(self, sock, off, value):
        hold = self.hold
        if hold is None or not hold["held"] or sock.sr != UDP or sock.port != hold["port"]:
            return
        if off in (S_RX_RD, S_RX_RD + 1) or (off == S_CR and value == RECV) or off == S_IR:
            return
        self.hold = None
        for data, src in hold["held"]:
            self.stats["held_released"] += 1
            self.deliver_udp(sock, data, src)

    # network side ------------------------------------------------------------------------
    def bind_udp(self, sock):
        if sock.port == 68 or self.ip == "0.0.0.0":
            return  # DHCP client socket: served by the DHCP peer, not a real socket
        addr = (self.ip, sock.port)
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            s.bind(addr)
        except OSError as e:
            s.close()
            self.stats["bind_errors"].append("%s:%d %s" % (addr + (e,)))
            return
        s.setblocking(False)
        sock.udp = s
        sock.udp_addr = addr

    def release_udp(self, sock):
        try:
            sock.udp.close()
        except OSError:
            pass
        sock.udp = None
        sock.udp_addr = None

    def ensure_listener(self, port):
        addr = (self.ip, port)
        if addr in self.listeners:
            return
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(addr)
            s.listen(64)
        except OSError as e:
            s.close()
            self.stats["bind_errors"].append("tcp %s:%d %s" % (addr + (e,)))
            return
        s.setblocking(False)
        self.listeners[addr] = s

    def linger(self, conn, shut):
        """A connection the chip closed: FIN it and read what the peer still sends (so the
        kernel does not answer with RST and cut off the reply in flight), then close it."""
        try:
            if not shut:
                conn.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        self.lingering.append((conn, time.monotonic() + 2.0))

    def udp_out(self, sock, data, dest):
        self.stats["udp_out"] += 1
        if dest[1] == 67 and self.dhcp is not None and (
                dest[0] == "255.255.255.255" or dest[0] == self.dhcp.server_ip):
            for reply in self.dhcp.handle(data, self):
                for s in self.sockets:
                    if s.sr == UDP and s.port == 68:
                        self.deliver_udp(s, reply, (self.dhcp.server_ip, 67))
            return
        if sock.udp is None:
            return  # no real socket (port 68 or no IP): the datagram goes nowhere
        try:
            sock.udp.sendto(data, dest)
        except OSError:
            pass

    def deliver_udp(self, sock, data, src):
        if len(data) + 8 > sock.rx_free():
            self.stats["udp_dropped"] += 1
            return False
        sock.rx_put(ip_bytes(src[0]) + struct.pack(">HH", src[1], len(data)) + data)
        sock.regs[S_IR] |= IR_RECV
        self.stats["udp_in"] += 1
        return True

    def pump(self):
        for hook in self.hooks:
            hook()
        ip = self.ip
        for sock in self.sockets:
            if sock.sr == UDP:
                if sock.udp is not None and sock.udp_addr[0] != ip:
                    self.release_udp(sock)  # the chip's address changed: follow it
                if sock.udp is None and sock.port != 68 and ip != "0.0.0.0":
                    self.bind_udp(sock)
                if sock.udp is not None and sock.port not in self.paused:
                    self.pump_udp(sock)
            elif sock.conn is not None:
                sock.pump_tcp()
            elif sock.sr == LISTEN and ip != "0.0.0.0" and (ip, sock.port) not in self.listeners:
                self.ensure_listener(sock.port)  # the chip's address changed: follow it
        for addr, lsock in list(self.listeners.items()):
            self.pump_accept(addr, lsock)
        if self.lingering:
            self.pump_lingering()

    def pump_udp(self, sock):
        hold = self.hold
        for _ in range(64):
            try:
                data, src = sock.udp.recvfrom(65535)
            except BlockingIOError:
                return
            except OSError as e:
                if e.errno in (errno.ECONNREFUSED, errno.EHOSTUNREACH):
                    continue  # an ICMP error for an earlier send
                return
            if not self.link:
                self.stats["udp_dropped_link"] += 1
                continue
            self.stats["udp_arrived"] += 1
            if hold is not None and sock.port == hold["port"] and src[0] == hold["ip"]:
                hold["held"].append((data, src))
                continue
            self.deliver_udp(sock, data, src)

    def pump_accept(self, addr, lsock):
        for _ in range(16):
            try:
                conn, peer = lsock.accept()
            except BlockingIOError:
                return
            except OSError:
                return
            target = None
            if self.link and addr[0] == self.ip:
                for s in self.sockets:
                    if s.sr == LISTEN and s.port == addr[1]:
                        target = s
                        break
            if target is None:
                # no socket listening on that port: the W5500 answers the SYN with RST
                self.stats["tcp_refused"] += 1
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                conn.close()
                continue
            conn.setblocking(False)
            target.conn = conn
            target.sr = ESTABLISHED
            target.peer_eof = False
            target.shut = False
            target.regs[S_DIPR:S_DIPR + 4] = ip_bytes(peer[0])
            target.regs[S_DPORT:S_DPORT + 2] = struct.pack(">H", peer[1])
            target.regs[S_IR] |= IR_CON
            self.stats["tcp_accepted"] += 1
            target.pump_tcp()

    def pump_lingering(self):
        now = time.monotonic()
        keep = []
        for conn, deadline in self.lingering:
            done = now > deadline
            if not done:
                try:
                    while True:
                        data = conn.recv(4096)
                        if not data:
                            done = True
                            break
                except BlockingIOError:
                    pass
                except OSError:
                    done = True
            if done:
                conn.close()
            else:
                keep.append((conn, deadline))
        self.lingering = keep

    def snapshot(self):
        """What the tests look at: socket states and counters."""
        return {
            "ip": self.ip, "mac": self.mac, "link": self.link,
            "sockets": [{"n": s.n, "sr": s.sr, "port": s.port, "mode": s.mode,
                         "rx_used": s.rx_used(), "rx_kb": s.regs[S_RXBUF],
                         "tx_kb": s.regs[S_TXBUF]} for s in self.sockets],
            "stats": dict(self.stats, commands={str(k): v
                                                for k, v in self.stats["commands"].items()}),
            "subnet": ip_str(self.common[0x05:0x09]), "gateway": ip_str(self.common[0x01:0x05]),
        }

    def close(self):
        for s in self.sockets:
            s.reset()
        for lsock in self.listeners.values():
            lsock.close()
        self.listeners = {}
        for conn, _ in self.lingering:
            conn.close()
        self.lingering = []
