"""The SIP UDP endpoint straight on a W5500 hardware socket (same interface as udp.UDPEndpoint).

The socket pool's sendto() runs connect() first, which OPENs the hardware socket again, and
OPEN resets the socket's RX pointers: every datagram still waiting in the chip would be
lost. This endpoint opens its socket once and sends by writing the destination registers
(Sn_DIPR, Sn_DPORT) and the driver's socket_write(); it receives one datagram per call
with read_udp(), and only after socket_available() said something is there (never a
blocking read). check() re-opens the socket if the chip lost it (a chip reset).
"""

UDP = 0x02  # the driver's SNMR_UDP
SOCK_UDP = 0x22  # Sn_SR of an open UDP socket


class W5500UDP:
    def __init__(self, eth, port, max_size, log):
        self.eth = eth
        self.port = port
        self.log = log
        self.max = max_size + 1  # one byte more: an oversize datagram shows as such
        self.errors = 0
        self.reopened = 0
        self.sock = eth.get_socket(reserve_socket=True)  # the hardware socket number
        self.open()

    def open(self):
        eth = self.eth
        eth.src_port = self.port
        try:
            eth.socket_open(self.sock, conn_mode=UDP)
        finally:
            eth.src_port = 0

    def recv(self):
        """(bytes, (ip, port)) or None when nothing is waiting."""
        eth = self.eth
        n = self.sock
        try:
            if not eth.socket_available(n, UDP):
                return None
            got, data = eth.read_udp(n, self.max)
        except (OSError, RuntimeError) as e:  # link down (ConnectionError), chip trouble
            self.errors += 1
            self.log("debug", "SIP socket: receive failed: %r" % (e,))
            return None
        except ValueError as e:  # a broken RX record: start the socket afresh
            self.errors += 1
            self.log("warning", "SIP socket: %r; opening it again" % (e,))
            self.reopen()
            return None
        if not got:
            return None
        return bytes(data), (eth.pretty_ip(eth.udp_from_ip[n]), eth.udp_from_port[n])

    def send(self, data, addr):
        eth = self.eth
        n = self.sock
        try:
            dest = eth.unpretty_ip(addr[0]) + int(addr[1]).to_bytes(2, "big")
            # Sn_DIPR (0x0C..0x0F) and Sn_DPORT (0x10..0x11) in one SPI frame
            eth._write(0x0C, (n << 5) + 0x0C, dest)
            sent = eth.socket_write(n, data)
        except (OSError, RuntimeError, ValueError) as e:
            self.errors += 1
            self.log("warning", "send to %s:%s failed: %r" % (addr[0], addr[1], e))
            return
        if sent != len(data):
            self.errors += 1
            self.log("warning", "send to %s:%s: %d of %d bytes went out"
                     % (addr[0], addr[1], sent, len(data)))

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
