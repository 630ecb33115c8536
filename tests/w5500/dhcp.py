"""A DHCP server peer (RFC 2131 / 2132 messages) for the W5500 model.

It answers what the chip sends to port 67 (broadcast or to the server's address) with
real BOOTP/DHCP packets: DISCOVER -> OFFER, REQUEST -> ACK (or NAK for an address it did
not offer), with the lease time, T1/T2 when set, subnet mask, router and DNS server. It
records every message for the tests and can be told to stay silent (a server that is down).
"""

import struct

MAGIC = b"c\x82Sc"
NAMES = {1: "DISCOVER", 2: "OFFER", 3: "REQUEST", 4: "DECLINE", 5: "ACK", 6: "NAK",
         7: "RELEASE", 8: "INFORM"}


def ip_bytes(s):
    return bytes(int(x) for x in s.split("."))


def ip_str(b):
    return "%d.%d.%d.%d" % tuple(b)


def parse_options(data):
    opts = {}
    i = 240
    while i < len(data):
        code = data[i]
        if code == 255:
            break
        if code == 0:
            i += 1
            continue
        if i + 1 >= len(data):
            break
        n = data[i + 1]
        opts[code] = bytes(data[i + 2:i + 2 + n])
        i += 2 + n
    return opts


class DhcpServer:
    def __init__(self, server_ip, offer_ip, netmask="255.0.0.0", router=None, dns=None,
                 lease=3600, t1=None, t2=None, silent=False):
        self.server_ip = server_ip
        self.offer_ip = offer_ip
        self.netmask = netmask
        self.router = router or server_ip
        self.dns = dns or server_ip
        self.lease = lease
        self.t1 = t1
        self.t2 = t2
        self.silent = silent
        self.log = []  # dicts: what the client sent and what we answered

    def configure(self, **changes):
        for key, value in changes.items():
            if not hasattr(self, key) or key == "log":
                raise KeyError(key)
            setattr(self, key, value)

    def handle(self, data, chip=None):
        """Replies (bytes) to one datagram a client sent to port 67."""
        if len(data) < 240 or data[0] != 1 or data[236:240] != MAGIC:
            self.log.append({"type": "junk", "length": len(data)})
            return []
        opts = parse_options(data)
        kind = opts.get(53, b"\0")[0]
        entry = {
            "type": NAMES.get(kind, str(kind)), "xid": struct.unpack(">I", data[4:8])[0],
            "ciaddr": ip_str(data[12:16]), "chaddr": ":".join("%02x" % b for b in data[28:34]),
            "hostname": opts.get(12, b"").decode("latin-1"),
            "requested": ip_str(opts[50]) if 50 in opts else None,
            "server_id": ip_str(opts[54]) if 54 in opts else None,
            "lease_asked": (struct.unpack(">I", opts[51])[0]
                            if len(opts.get(51, b"")) == 4 else None),
            "length": len(data), "answer": None,
        }
        self.log.append(entry)
        if self.silent:
            return []
        if kind == 1:
            answer = 2
        elif kind == 3:
            wanted = entry["requested"] or entry["ciaddr"]
            server_id = entry["server_id"]
            if server_id is not None and server_id != self.server_ip:
                return []  # the client chose another server
            answer = 5 if wanted == self.offer_ip else 6
        else:
            return []
        entry["answer"] = NAMES[answer]
        return [self.reply(data, answer)]

    def reply(self, request, kind):
        out = bytearray(240)
        out[0] = 2  # BOOTREPLY
        out[1] = 1
        out[2] = 6
        out[4:8] = request[4:8]  # xid
        out[10:12] = request[10:12]  # flags
        out[12:16] = request[12:16]  # ciaddr
        if kind != 6:
            out[16:20] = ip_bytes(self.offer_ip)  # yiaddr
        out[20:24] = ip_bytes(self.server_ip)  # siaddr
        out[28:44] = request[28:44]  # chaddr
        out[236:240] = MAGIC

        def opt(code, value):
            out.extend(bytes((code, len(value))) + value)

        opt(53, bytes((kind,)))
        opt(54, ip_bytes(self.server_ip))
        if kind != 6:
            opt(51, struct.pack(">I", self.lease))
            if self.t1 is not None:
                opt(58, struct.pack(">I", self.t1))
            if self.t2 is not None:
                opt(59, struct.pack(">I", self.t2))
            opt(1, ip_bytes(self.netmask))
            opt(3, ip_bytes(self.router))
            opt(6, ip_bytes(self.dns))
        out.append(255)
        while len(out) < 300:
            out.append(0)
        return bytes(out)
