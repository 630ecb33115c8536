"""SIP on the board path where the W5500 differs from a computer: a 2 KB receive buffer that
drops what does not fit, and replies that must not cost datagrams already in the chip."""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "w5500"))

from harness import HERE, Board  # noqa: E402
from sipp_helpers import Phone, read_text  # noqa: E402
from udpphone import UdpPhone  # noqa: E402

DESK_CALL = os.path.join(HERE, "sipp", "uac_call_desk.xml")


def evidence(board, *results):
    return "\n".join(r.report() for r in results) + "\n=== board output:\n" + board.output()


def sent_invite(workdir, proc):
    return "INVITE sip:" in read_text(os.path.join(workdir, proc.name + "_messages.log"))


def test_three_invites_at_once_all_calls_complete(tmp_path):
    """Three ~1 KB INVITEs reach the chip together: two fit in the socket's 2 KB, the third
    is dropped by the chip, and SIPp's retransmission (500 ms) still completes its call."""
    work = str(tmp_path)
    with Board({"SIP_USERS": "2001,2002,2003,3001,3002,3003"}) as board:
        server = (board.ip, 5060)
        callers = [Phone(server, "200%d" % i, "127.0.0.8%d" % i, work) for i in (1, 2, 3)]
        callees = [Phone(server, "300%d" % i, "127.0.0.9%d" % i, work) for i in (1, 2, 3)]
        try:
            for phone in callers + callees:
                result = phone.register()
                assert result.ok, evidence(board, result)
            answering = [p.answer() for p in callees]
            before = board.stats()["stats"]
            board.control("pause", port=5060)
            calls = [c.start_call(p.user, DESK_CALL, pause_ms=300, timeout=10)
                     for c, p in zip(callers, callees)]
            # all three INVITEs wait in front of the chip, then arrive at once
            board.wait_until(lambda: all(sent_invite(work, c) for c in calls), "3 INVITEs sent")
            board.control("resume", port=5060)
            made = [c.wait() for c in calls]
            answered = [a.wait() for a in answering]
            assert all(r.ok for r in made + answered), evidence(board, *(made + answered))
            after = board.stats()["stats"]
            assert after["udp_dropped"] - before["udp_dropped"] >= 1, after
            invites = [m for r in made for m in r.sent() if m.startswith("INVITE")]
            assert min(len(m) for m in invites) > 900, [len(m) for m in invites]
            retransmitted = [r for r in made if len([m for m in r.sent()
                                                     if m.startswith("INVITE")]) > 1]
            assert retransmitted, "no caller had to retransmit: nothing was dropped"
            history = board.api("/api/history")
            assert sorted(h["state"] for h in history) == ["ended"] * 3, history
        finally:
            for p in callers + callees:
                p.stop()


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
