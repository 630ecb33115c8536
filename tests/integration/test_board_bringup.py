"""code.py's board path (board_main) under the real adafruit_wiznet5k, on the W5500 model.

Each test starts tests/w5500/runner.py: board_main() with stand-in board modules, the
unmodified driver from PyPI talking SPI to the register-level chip model, and the model's
network side on a loopback address of its own. SIPp phones and HTTP clients reach the
"board" over real sockets; DHCP is answered by the model's DHCP peer.
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "w5500"))

from harness import Board  # noqa: E402
from sipp_helpers import Phone  # noqa: E402


def evidence(board, *results):
    return "\n".join(r.report() for r in results) + "\n=== board output:\n" + board.output()


def test_dhcp_bring_up(tmp_path):
    with Board({"NET_HOSTNAME": "pbx-lobby"}) as board:
        out = board.output()
        assert "Ethernet: w5500, MAC 02:" in out
        assert "Network: dhcp %s/255.0.0.0" % board.ip in out
        assert "point phones at sip:%s:5060" % board.ip in out
        assert "Dashboard: http://%s:%d/" % (board.ip, board.http_port) in out
        stats = board.stats()
        log = stats["dhcp_log"]
        assert [e["type"] for e in log] == ["DISCOVER", "REQUEST"], log
        assert log[0]["hostname"] == "pbx-lobby"
        assert log[1]["requested"] == board.ip and log[1]["server_id"] == board.ip.rsplit(
            ".", 1)[0] + ".1"
        assert log[0]["chaddr"] == stats["mac"]
        net = board.api("/api/status")["network"]
        assert net["ip"] == board.ip and net["mode"] == "dhcp" and net["link"] is True
        assert net["mac"] == stats["mac"] and net["mac_source"] == "board id"
        assert net["dhcp"]["state"] == "bound" and net["dhcp"]["lease"] == 3600
        assert net["hostname"] == "pbx-lobby"
        # SIP keeps its one UDP socket; HTTP its listener; DHCP gave its socket back
        kinds = sorted((s["mode"], s["sr"]) for s in stats["sockets"] if s["sr"])
        assert kinds == [(1, 0x14), (2, 0x22)], stats["sockets"]


def test_mac_is_stable_and_locally_administered():
    macs = []
    for _ in range(2):
        with Board(stub={"uid": "0123456789abcdef"}) as board:
            macs.append(board.api("/api/status")["network"]["mac"])
    with Board(stub={"uid": "fedcba9876543210"}) as board:
        other = board.api("/api/status")["network"]["mac"]
    first = int(macs[0][:2], 16)
    assert macs[0] == macs[1] and other != macs[0]
    assert first & 0x02 and not first & 0x01, macs  # locally administered, unicast
    with Board({"NET_MAC": "02:11:22:33:44:55"}) as board:
        assert board.stats()["mac"] == "02:11:22:33:44:55"
        assert board.api("/api/status")["network"]["mac_source"] == "settings"


def test_static_fallback_when_no_dhcp_server():
    settings = {"NET_IP": "127.99.1.2", "NET_NETMASK": "255.255.0.0", "NET_GATEWAY": "127.99.0.1",
                "NET_DNS": "127.99.0.53"}
    with Board(settings, ip="127.99.1.2", dhcp=None) as board:
        out = board.output()
        assert "DHCP: no answer in 3 s; using NET_IP 127.99.1.2" in out
        assert "Network: fallback 127.99.1.2/255.255.0.0, gateway 127.99.0.1, DNS 127.99.0.53" \
            in out
        stats = board.stats()
        assert stats["ip"] == "127.99.1.2" and stats["subnet"] == "255.255.0.0"
        assert stats["gateway"] == "127.99.0.1"
        net = board.api("/api/status")["network"]
        assert net["mode"] == "fallback" and net["dhcp"]["state"] == "selecting"


def test_static_when_dhcp_is_off():
    with Board({"NET_DHCP": "off", "NET_IP": "127.99.2.3"}, ip="127.99.2.3") as board:
        assert "Network: static 127.99.2.3/255.255.255.0" in board.output()
        assert board.stats()["dhcp_log"] == []
        assert board.api("/api/status")["network"]["dhcp"] is None


def test_register_and_call_through_the_board(tmp_path):
    with Board({"SIP_USERS": "1001,1002"}) as board:
        alice = Phone((board.ip, 5060), "1001", "127.0.0.61", str(tmp_path))
        bob = Phone((board.ip, 5060), "1002", "127.0.0.62", str(tmp_path))
        try:
            for phone in (alice, bob):
                result = phone.register()
                assert result.ok, evidence(board, result)
            board.wait_for("register 1002 contact=<sip:1002@127.0.0.62:%d>" % bob.port)
            regs = board.api("/api/registrations")
            assert [r["user"] for r in regs] == ["1001", "1002"]
            answering = bob.answer()
            made = alice.call("1002")
            answered = answering.wait()
            assert made.ok and answered.ok, evidence(board, made, answered)
            via = [m for m in answered.received() if m.startswith("INVITE")][0]
            assert "Record-Route: <sip:%s:5060;lr>" % board.ip in via
            board.wait_for("ended")
            history = board.api("/api/history")
            assert history[0]["state"] == "ended" and history[0]["status"] == 200
            stats = board.stats()["stats"]
            assert stats["lost_on_open"] == 0 and stats["udp_dropped"] == 0, stats
        finally:
            alice.stop()
            bob.stop()
