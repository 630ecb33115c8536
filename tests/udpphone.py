"""flows.Phone over a real UDP socket on loopback, for tests against host mode."""

import socket
import time

from flows import Phone, first_line


class UdpPhone(Phone):
    def __init__(self, user, ip, host):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((ip, 0))
        Phone.__init__(self, user, ip, self.sock.getsockname()[1], "%s:%d" % host.sip_addr)
        self.server = host.sip_addr
        self.got = []  # every datagram expect() read, in order

    def send(self, data):
        self.sock.sendto(data, self.server)

    def expect(self, start, timeout=3.0):
        """The next datagram whose first line starts with start (others are skipped, and
        kept in self.got with it)."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            self.sock.settimeout(max(0.01, end - time.monotonic()))
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                break
            self.got.append(data)
            if first_line(data).startswith(start):
                return data
        raise AssertionError("%s never got %r; got %r" % (
            self.user, start, [first_line(d) for d in self.got]))

    def close(self):
        self.sock.close()


def call(alice, bob, call_id, callee=None):
    """alice calls bob, bob answers; returns the 200 OK as alice got it."""
    alice.send(alice.invite(callee or bob.user, call_id))
    invite = bob.expect("INVITE")
    bob.send(bob.answer(invite, 180, "Ringing"))
    alice.expect("SIP/2.0 180")
    return invite


def answer(alice, bob, invite):
    bob.send(bob.answer(invite, 200, "OK", sdp=True))
    ok = alice.expect("SIP/2.0 200")
    alice.send(alice.in_dialog("ACK", ok, 1))
    bob.expect("ACK")
    return ok


def hang_up(alice, bob, ok):
    alice.send(alice.in_dialog("BYE", ok, 2))
    bye = bob.expect("BYE")
    bob.send(bob.answer(bye, 200, "OK"))
    alice.expect("SIP/2.0 200")
