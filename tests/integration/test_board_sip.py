"""SIP on the board path where the W5500 differs from a computer: a receive buffer that
drops what does not fit (8 KB for SIP once split, 2 KB as the driver leaves it), and replies
that must not cost datagrams already in the chip."""

import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "w5500"))

from flows import SDP  # noqa: E402
from harness import Board  # noqa: E402
from udpphone import UdpPhone  # noqa: E402


def big_invite(phone, n):
    """An INVITE of more than 900 bytes (a desk phone's, with its long SDP and headers)."""
    data = phone.request("INVITE", "sip:9999@%s:%d" % phone.server, "<sip:9999@%s>" % phone.ip,
                         "burst-%d" % n, 1, ["Contact: %s" % phone.contact(),
                                             "X-Padding: " + "p" * 450],
                         SDP % (phone.ip, phone.ip, 4000 + 2 * n))
    assert 900 < len(data) < 1016, len(data)  # eight of them (with 8-byte headers) fit 8 KB
    return data


def test_eight_big_invites_at_once_are_all_answered():
    """Eight 900-byte INVITEs reach the chip together: the SIP socket's 8 KB RX buffer holds
    them all (the driver's 2 KB held two), so each phone gets its answer without having to
    retransmit (these phones never do); the split is on /api/status and within 16 KB."""
    with Board({"MAX_TRANSACTIONS": 32}) as board:  # the RP2040 profile's 4 would 503 some
        phones = [UdpPhone("10%02d" % i, "127.0.0.%d" % (80 + i), board) for i in range(8)]
        try:
            status = board.api("/api/status")["network"]["buffers_kb"]
            assert status["rx"][status["sip_socket"]] == 8, status
            assert sum(status["rx"]) <= 16 and sum(status["tx"]) <= 16, status
            chip = board.stats()
            sip = [s for s in chip["sockets"] if s["port"] == 5060]
            assert sip and sip[0]["rx_kb"] == 8, chip["sockets"]
            assert sum(s["rx_kb"] for s in chip["sockets"]) <= 16, chip["sockets"]
            before = chip["stats"]
            board.control("pause", port=5060)
            for n, phone in enumerate(phones):
                phone.send(big_invite(phone, n))
            time.sleep(0.3)  # all eight wait in front of the chip, then arrive at once
            board.control("resume", port=5060)
            for phone in phones:  # these phones never retransmit: an answer means it fit
                assert phone.expect("SIP/2.0 100", timeout=5.0)
            after = board.stats()["stats"]
            assert after["udp_dropped"] == before["udp_dropped"], after
            assert after["udp_in"] - before["udp_in"] >= 8, after
        finally:
            for p in phones:
                p.close()


def test_datagram_arriving_while_a_reply_is_sent_is_kept():
    """B's REGISTER reaches the chip just as the board starts its reply to A (the model holds
    it until the first register write for that reply). Re-opening the socket to send (the
    pool's sendto) would wipe it; the board must answer both."""
    with Board() as board:
        alice = UdpPhone("1001", "127.0.0.71", board)
        bob = UdpPhone("1002", "127.0.0.72", board)
        try:
            board.control("hold", port=5060, ip="127.0.0.72")
            bob.send(bob.register())
            alice.send(alice.register())
            assert alice.expect("SIP/2.0 200").startswith(b"SIP/2.0 200")
            assert bob.expect("SIP/2.0 200").startswith(b"SIP/2.0 200")
            stats = board.stats()["stats"]
            assert stats["held_released"] == 1, stats
            assert stats["lost_on_open"] == 0, stats
        finally:
            alice.close()
            bob.close()
