"""A DHCP client (RFC 2131) for the W5500 that never blocks; used by switchboard.netif.

adafruit_wiznet5k's own client cannot hold a lease of 3.1 days or more (adafruit_ticks.ticks_add
raises OverflowError on the interval) and its maintain_dhcp_lease() blocks for seconds when the
server is silent. This one keeps its timers on the exact millisecond Clock: each poll sends at
most one datagram or reads what arrived. T1 renew, T2 rebind, NAK, expiry.
"""

UDP = 0x02  # the driver's SNMR_UDP
MAGIC = b"c\x82Sc"
DISCOVER, OFFER, REQUEST, ACK, NAK = 1, 2, 3, 5, 6
BROADCAST = b"\xff\xff\xff\xff"
ZERO = b"\x00\x00\x00\x00"


def fnv(data, h):
    for b in data:
        h = ((h ^ b) * 0x01000193) & 0xFFFFFFFF
    return h


def ip_str(b):
    return "%d.%d.%d.%d" % (b[0], b[1], b[2], b[3])


def duration(seconds):
    if seconds >= 2 * 86400:
        return "%d days" % (seconds // 86400)
    if seconds >= 7200:
        return "%d hours" % (seconds // 3600)
    return "%d s" % seconds


class Dhcp:
    """A DHCP client (RFC 2131) that never blocks: poll(now) does one small step."""

    def __init__(self, net):
        self.net = net
        self.state = "off"  # selecting, requesting, bound, renewing, rebinding
        self.sock = None
        self.xid = 0
        self.server = None
        self.offered = None
        self.started = 0  # when the current exchange began (ms)
        self.requested_at = 0
        self.next_send = 0
        self.tries = 0
        self.lease = None  # seconds; None when infinite or not bound
        self.t1 = self.t2 = self.expiry = None  # clock ms
        self.renewals = 0
        self.naks = 0
        self.expired = 0
        self.errors = 0
        self.acks = 0

    # exchange ------------------------------------------------------------------
    def begin(self, now):
        """Start from scratch (DISCOVER), keeping the current address until a new one is bound."""
        self.state = "selecting"
        self.xid = (fnv(self.net.mac, now & 0xFFFFFFFF) ^ now) & 0x7FFFFFFF
        self.started = now
        self.tries = 0
        self.next_send = now

    def poll(self, now):
        state = self.state
        if state == "off":
            return
        if state == "bound":
            if self.t1 is not None and now >= self.t1:
                self.state = "renewing"
                self.tries = 0
                self.next_send = now
                self.requested_at = now
                self.xid = (self.xid + 1) & 0x7FFFFFFF
            return
        if not self.net.link:
            return
        self.receive(now)
        if self.state == "bound":
            return
        if self.state == "renewing" and now >= self.t2:
            self.state = "rebinding"
            self.next_send = now
        if self.state in ("renewing", "rebinding") and now >= self.expiry:
            self.expired += 1
            self.net.log("warning", "DHCP: lease on %s expired without an answer from any "
                         "server; keeping the address and asking again" % self.net.ip)
            self.begin(now)
        if now >= self.next_send:
            self.transmit(now)

    def transmit(self, now):
        state = self.state
        if state == "requesting" and self.tries >= 4:
            self.begin(now)  # no ACK to our REQUEST: start over
            state = self.state
        self.tries += 1
        if state == "selecting":
            kind, dest = DISCOVER, BROADCAST
            wait = min(2000 << min(self.tries - 1, 3), 16000)
        elif state == "requesting":
            kind, dest = REQUEST, BROADCAST
            wait = min(2000 << min(self.tries - 1, 3), 16000)
        else:  # renewing: unicast to our server; rebinding: to anyone
            kind = REQUEST
            dest = self.server if state == "renewing" and self.server else BROADCAST
            end = self.t2 if state == "renewing" else self.expiry
            wait = max(60000, (end - now) // 2)
        if state == "requesting" and self.tries == 1:
            self.requested_at = now
        self.next_send = now + wait
        try:
            self.send(self.message(kind, now), dest)
        except (OSError, RuntimeError, ValueError) as e:
            self.errors += 1
            self.close()
            self.net.log("warning", "DHCP: cannot send (%r)" % (e,))

    def shift_times(self, ms):
        """The board clock restarted its epoch: every stored time moves back by ms."""
        self.started -= ms
        self.requested_at -= ms
        self.next_send -= ms
        if self.t1 is not None:
            self.t1 -= ms
            self.t2 -= ms
            self.expiry -= ms

    # socket ------------------------------------------------------------------------
    def open(self):
        eth = self.net.eth
        n = eth.get_socket(reserve_socket=True)  # not socket 0: keep it free for the driver
        eth.src_port = 68
        try:
            eth.socket_open(n, conn_mode=UDP)
        except Exception:
            eth.release_socket(n)
            raise
        finally:
            eth.src_port = 0
        self.sock = n

    def close(self):
        if self.sock is None:
            return
        eth = self.net.eth
        n = self.sock
        self.sock = None
        try:
            eth.socket_close(n)
        except (OSError, RuntimeError):
            pass
        eth.release_socket(n)

    def send(self, data, dest):
        if self.sock is None:
            self.open()
        eth = self.net.eth
        eth._write(0x0C, (self.sock << 5) + 0x0C, bytes(dest) + b"\x00\x43")  # Sn_DIPR, port 67
        eth.socket_write(self.sock, data)

    def receive(self, now):
        if self.sock is None:
            return
        eth = self.net.eth
        for _ in range(4):
            try:
                if not eth.socket_available(self.sock, UDP):
                    return
                got, data = eth.read_udp(self.sock, 1024)
            except (OSError, RuntimeError, ValueError):
                self.errors += 1
                self.close()
                return
            if got:
                self.handle(data, now)
            if self.state == "bound":
                return

    # messages -------------------------------------------------------------------------
    def message(self, kind, now):
        net = self.net
        m = bytearray(300)
        m[0], m[1], m[2] = 1, 1, 6
        m[4:8] = self.xid.to_bytes(4, "big")
        m[8:10] = min((now - self.started) // 1000, 0xFFFF).to_bytes(2, "big")
        if self.state in ("renewing", "rebinding"):
            m[12:16] = net.ip_bytes
        m[28:34] = net.mac
        m[236:240] = MAGIC
        opts = bytearray((53, 1, kind, 61, 7, 1))
        opts += net.mac
        host = net.hostname.encode()[:32]
        opts += bytes((12, len(host))) + host
        opts += bytes((55, 6, 1, 3, 6, 51, 58, 59))
        if kind == REQUEST and self.state == "requesting":
            opts += bytes((50, 4)) + self.offered + bytes((54, 4)) + self.server
        opts.append(255)
        m[240:240 + len(opts)] = opts
        return m

    def handle(self, data, now):
        if len(data) < 241 or data[0] != 2 or data[236:240] != MAGIC:
            return
        if int.from_bytes(data[4:8], "big") != self.xid or data[28:34] != self.net.mac:
            return
        opts = {}
        i = 240
        while i + 1 < len(data) and data[i] != 255:
            if data[i] == 0:
                i += 1
                continue
            n = data[i + 1]
            opts[data[i]] = bytes(data[i + 2:i + 2 + n])
            i += 2 + n
        kind = opts.get(53, b"\x00")[0]
        yiaddr = bytes(data[16:20])
        if kind == OFFER and self.state == "selecting":
            self.server = opts.get(54) or bytes(data[20:24])
            self.offered = yiaddr
            self.state = "requesting"
            self.tries = 0
            self.next_send = now
        elif kind == ACK and self.state in ("requesting", "renewing", "rebinding"):
            self.bound(yiaddr, opts, now)
        elif kind == NAK and self.state in ("requesting", "renewing", "rebinding"):
            self.naks += 1
            self.net.log("warning", "DHCP: server refused %s (NAK); starting over"
                         % ip_str(yiaddr if yiaddr != ZERO else self.net.ip_bytes))
            self.begin(now)

    def bound(self, ip, opts, now):
        renewing = self.state in ("renewing", "rebinding")
        self.acks += 1
        if 54 in opts:
            self.server = opts[54]
        lease = int.from_bytes(opts[51], "big") if len(opts.get(51, b"")) == 4 else 86400
        base = self.requested_at
        if lease == 0xFFFFFFFF:
            self.lease = None
            self.t1 = self.t2 = self.expiry = None
        else:
            self.lease = lease
            t1 = int.from_bytes(opts[58], "big") if len(opts.get(58, b"")) == 4 else lease // 2
            t2 = (int.from_bytes(opts[59], "big") if len(opts.get(59, b"")) == 4
                  else lease - lease // 8)
            self.expiry = base + lease * 1000
            self.t2 = base + min(t2, lease) * 1000
            self.t1 = base + min(t1, t2, lease) * 1000
        self.state = "bound"
        self.close()
        mask = opts.get(1, b"\xff\xff\xff\x00")[:4]
        gateway = opts.get(3, ZERO)[:4]
        dns = opts.get(6, ZERO)[:4]
        if renewing:
            self.renewals += 1
        self.net.configure(ip, mask, gateway, dns, "dhcp")
        self.net.log("info" if not renewing else "debug",
                     "DHCP: %s %s/%s gateway %s from %s, lease %s"
                     % ("renewed" if renewing else "bound", ip_str(ip), ip_str(mask),
                        ip_str(gateway), ip_str(self.server),
                        "infinite" if self.lease is None else duration(self.lease)))

    def status(self, now):
        def left(t):
            return None if t is None or self.state == "off" else max(0, (t - now) // 1000)

        return {
            "state": self.state, "server": ip_str(self.server) if self.server else None,
            "lease": self.lease, "renew_in": left(self.t1), "rebind_in": left(self.t2),
            "expires_in": left(self.expiry), "renewals": self.renewals, "naks": self.naks,
            "expired": self.expired, "errors": self.errors,
        }
