"""The SIP UDP endpoint straight on a W5500 hardware socket (same interface as udp.UDPEndpoint).

The socket pool's sendto() runs connect() first, which OPENs the hardware socket again, and
OPEN resets the socket's RX pointers: every datagram still waiting in the chip would be
lost. This endpoint opens its socket once and sends by writing the destination registers
(Sn_DIPR, Sn_DPORT) and the driver's socket_write(); it receives one datagram per call
with read_udp(), and only after socket_available() said something is there (never a
blocking read). check() re-opens the socket if the chip lost it (a chip reset).
"""

try:
    from micropython import const  # names starting with _ vanish from the .mpy
except ImportError:  # CPython
    const = int

UDP = 0x02  # the driver's SNMR_UDP
SOCK_UDP = 0x22  # Sn_SR of an open UDP socket
# W5500 socket registers (datasheet §4.2) and commands
_SN_CR = const(0x01)
_SN_IR = const(0x02)
_SN_TX_WR = const(0x24)
_SN_RX_RSR = const(0x26)
_SN_RX_RD = const(0x28)
_CMD_SEND = const(0x20)
_CMD_RECV = const(0x40)
IR_TIMEOUT = 0x08
IR_SEND_OK = 0x10
_MAX_POLLS = const(2000)  # bound on waiting for the chip (a command, SEND_OK)


class W5500UDP:
    def __init__(self, eth, port, max_size, log, sock=None, tx_kb=2):
        self.eth = eth
        self.port = port
        self.log = log
        self.max = max_size + 1  # one byte more: an oversize datagram shows as such
        self.errors = 0
        self.reopened = 0
        if sock is None:  # netif reserves it before splitting the chip's buffers
            sock = eth.get_socket(reserve_socket=True)
        self.sock = sock  # the hardware socket number
        self.tx_max = tx_kb * 1024
        n = self.sock
        # SPI control bytes: BSB socket n register / TX buffer / RX buffer, read or write
        self.reg_r = (n << 5) + 0x08
        self.reg_w = (n << 5) + 0x0C
        self.tx_w = (n << 5) + 0x14
        self.rx_r = (n << 5) + 0x18
        self.open()

    def open(self):
        eth = self.eth
        eth.src_port = self.port
        try:
            eth.socket_open(self.sock, conn_mode=UDP)
        finally:
            eth.src_port = 0

    def _reg16(self, reg):
        return int.from_bytes(self.eth._read(reg, self.reg_r, 2), "big")

    def _command(self, cmd):
        eth = self.eth
        eth._write(_SN_CR, self.reg_w, cmd)
        for _ in range(_MAX_POLLS):  # the chip clears Sn_CR when it has taken the command
            if not eth._read(_SN_CR, self.reg_r)[0]:
                return
        raise RuntimeError("W5500 did not take command 0x%02x" % cmd)

    def recv(self):
        """(bytes, (ip, port)) or None when nothing is waiting.

        Register reads are two bytes in one SPI frame (the driver reads one byte a frame);
        Sn_RX_RSR is read until two reads agree, as the datasheet asks. About 8 frames a
        datagram instead of the driver's 35 (bench/w5500_spi.py)."""
        eth = self.eth
        try:
            size = self._reg16(_SN_RX_RSR)
            while True:
                again = self._reg16(_SN_RX_RSR)
                if again == size:
                    break
                size = again
            if not size:
                return None
            ptr = self._reg16(_SN_RX_RD)
            head = eth._read(ptr, self.rx_r, 8)  # source IP, port, length (the chip wraps)
            length = head[6] << 8 | head[7]
            if size < 8 or length > size - 8:
                raise ValueError("broken UDP record in the RX buffer")
            take = min(length, self.max)
            data = eth._read((ptr + 8) & 0xFFFF, self.rx_r, take) if take else b""
            eth._write(_SN_RX_RD, self.reg_w, ((ptr + 8 + length) & 0xFFFF).to_bytes(2, "big"))
            self._command(_CMD_RECV)
        except (OSError, RuntimeError) as e:  # link down (ConnectionError), chip trouble
            self.errors += 1
            self.log("debug", "SIP socket: receive failed: %r" % (e,))
            return None
        except ValueError as e:  # a broken RX record: start the socket afresh
            self.errors += 1
            self.log("warning", "SIP socket: %r; opening it again" % (e,))
            self.reopen()
            return None
        return bytes(data), (eth.pretty_ip(head[:4]), head[4] << 8 | head[5])

    def send(self, data, addr):
        eth = self.eth
        try:
            if len(data) > self.tx_max:
                raise ValueError("%d bytes do not fit the socket's %d KB TX buffer"
                                 % (len(data), self.tx_max // 1024))
            dest = eth.unpretty_ip(addr[0]) + int(addr[1]).to_bytes(2, "big")
            # Sn_DIPR (0x0C..0x0F) and Sn_DPORT (0x10..0x11) in one SPI frame
            eth._write(0x0C, self.reg_w, dest)
            # each send waits for SEND_OK, so the TX buffer is empty here: no Sn_TX_FSR poll
            ptr = self._reg16(_SN_TX_WR)
            eth._write(ptr, self.tx_w, data)
            eth._write(_SN_TX_WR, self.reg_w, ((ptr + len(data)) & 0xFFFF).to_bytes(2, "big"))
            self._command(_CMD_SEND)
            for _ in range(_MAX_POLLS):
                ir = eth._read(_SN_IR, self.reg_r)[0]
                if ir & (IR_SEND_OK | IR_TIMEOUT):
                    break
            else:
                raise RuntimeError("no SEND_OK from the W5500")
            eth._write(_SN_IR, self.reg_w, ir & (IR_SEND_OK | IR_TIMEOUT))  # clear them
            if ir & IR_TIMEOUT and not ir & IR_SEND_OK:
                raise RuntimeError("ARP timeout: %s does not answer" % addr[0])
        except (OSError, RuntimeError, ValueError, OverflowError, TypeError) as e:
            self.errors += 1
            self.log("warning", "send to %s:%s failed: %r" % (addr[0], addr[1], e))

    def check(self):
        """Open the socket again if the chip no longer has it open (after a chip reset)."""
        try:
            if self.eth.socket_status(self.sock) != SOCK_UDP:
                self.reopen()
        except (OSError, RuntimeError) as e:
            self.log("debug", "SIP socket check failed: %r" % (e,))

    def reopen(self):
        self.reopened += 1
        try:
            self.eth.socket_close(self.sock)
            self.open()
        except (OSError, RuntimeError) as e:
            self.errors += 1
            self.log("warning", "SIP socket: cannot open it again: %r" % (e,))

    def close(self):
        try:
            self.eth.socket_close(self.sock)
        except (OSError, RuntimeError):
            pass
        self.eth.release_socket(self.sock)
