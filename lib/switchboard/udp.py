"""The SIP UDP endpoint over any socket pool (CPython's socket module, the W5500 pool).

One datagram per receive, never blocking: the socket has timeout 0 and one
preallocated buffer, a byte longer than the largest message we accept so that
an oversize datagram shows as such instead of being silently cut.
"""

try:
    from micropython import const  # names starting with _ vanish from the .mpy
except ImportError:  # CPython
    const = int


_RECEIVE_BUFFER = const(4 << 20)  # Linux doubles it, up to net.core.rmem_max


class UDPEndpoint:
    def __init__(self, pool, host, port, max_size, log):
        self.log = log
        self.sock = pool.socket(pool.AF_INET, pool.SOCK_DGRAM)
        try:  # room for a burst while the loop is busy (a CPython socket; the W5500 has 2 KB)
            self.sock.setsockopt(pool.SOL_SOCKET, pool.SO_RCVBUF, _RECEIVE_BUFFER)
        except (AttributeError, OSError):
            pass
        self.sock.bind((host, port))
        self.sock.settimeout(0)
        self.buf = bytearray(max_size + 1)
        self.view = memoryview(self.buf)
        self.errors = 0

    def recv(self):
        """(bytes, (ip, port)) or None when nothing is waiting."""
        try:
            n, addr = self.sock.recvfrom_into(self.buf)
        except OSError:
            return None  # EAGAIN, or an ICMP error reported late: nothing to read now
        return bytes(self.view[:n]), (addr[0], addr[1])

    def send(self, data, addr):
        try:
            self.sock.sendto(data, addr)
        except (OSError, OverflowError, TypeError, ValueError) as e:  # never out of the loop
            self.errors += 1
            self.log("warning", "send to %s:%s failed: %r" % (addr[0], addr[1], e))

    def close(self):
        self.sock.close()
