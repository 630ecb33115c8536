"""The trunk on the board path: code.py's board_main() on the W5500 model (tests/w5500/)
with the real adafruit_wiznet5k driver, trunked to a real Kamailio (tests/kamailio/)."""

import os
import sys
import time

from kamailio.harness import Outside
from kamailio.server import Kamailio
from udpphone import UdpPhone

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "w5500"))

from harness import Board, loopback_ip  # noqa: E402

PW = "board-trunk-pw"


def wait_state(board, state, timeout=10.0):
    end = time.monotonic() + timeout
    trunk = None
    while time.monotonic() < end:
        trunk = board.api("/api/status")["trunk"]
        if trunk and trunk["state"] == state:
            return trunk
        time.sleep(0.1)
    raise AssertionError("trunk never %s: %r\n%s" % (state, trunk, board.output()[-3000:]))


def test_board_trunk_registers_calls_out_and_registers_again_on_link_up(tmp_path):
    k = Kamailio(str(tmp_path), {"siteA": PW, "5550100": "opw"}, trunks=("siteA",))
    outside = Outside(k, "5550100", "opw", "127.0.0.21", str(tmp_path))
    try:
        with Board({"SIP_USERS": "1001", "TRUNK": "sip:siteA@127.0.0.1:%d" % k.port,
                    "TRUNK_PASSWORD": PW}, ip=loopback_ip()) as board:
            trunk = wait_state(board, "registered")
            assert trunk["server"] == "127.0.0.1:%d" % k.port
            outside.register()
            callee = outside.answer("uas_answer.xml")
            phone = UdpPhone("1001", "127.0.0.76", board)
            try:
                phone.send(phone.register())
                phone.expect("SIP/2.0 200")
                phone.send(phone.invite("05550100", "board-trunk-1"))
                ok = phone.expect("SIP/2.0 200", timeout=5)
                phone.send(phone.in_dialog("ACK", ok, 1))
                phone.send(phone.in_dialog("BYE", ok, 2))
                phone.expect("SIP/2.0 200")
            finally:
                phone.close()
            result = callee.wait()
            assert result.ok, result.report()
            registers = k.log().count("REGISTER siteA by siteA")
            board.control("link", up=False)
            board.wait_for("Ethernet: link down")
            board.control("link", up=True)
            board.wait_for("trunk: link up; registering again")
            end = time.monotonic() + 10
            while k.log().count("REGISTER siteA by siteA") == registers and \
                    time.monotonic() < end:
                time.sleep(0.1)
            assert k.log().count("REGISTER siteA by siteA") == registers + 1
            wait_state(board, "registered")
            assert PW not in board.output()
    finally:
        outside.stop()
        k.stop()
