"""Network upkeep on the board path: long DHCP leases, renewal with a silent server, link
down and up, many browser connections at once, the HTTP listener dying, the watchdog."""

import json
import os
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "w5500"))

from harness import Board, dhcp_config, loopback_ip  # noqa: E402
from sipp_helpers import Phone  # noqa: E402
from udpphone import UdpPhone  # noqa: E402

DAY = 86400 * 1000


def registers(board, phone, timeout=3.0):
    """Send a REGISTER, return the seconds until the 200 came back."""
    start = time.monotonic()
    phone.send(phone.register(cseq=phone.next()))
    phone.expect("SIP/2.0 200", timeout=timeout)
    return time.monotonic() - start


def test_ninety_day_lease_is_held_and_renewed_at_t1():
    ip = loopback_ip()
    with Board(ip=ip, dhcp=dhcp_config(ip, lease=90 * 86400)) as board:
        net = board.api("/api/status")["network"]
        assert net["dhcp"]["lease"] == 90 * 86400
        assert 45 * 86400 - 60 < net["dhcp"]["renew_in"] <= 45 * 86400
        assert "lease 90 days" in board.output()
        board.advance(45 * DAY + 60000)
        board.wait_until(lambda: board.api("/api/status")["network"]["dhcp"]["renewals"] == 1,
                         "a renewal at T1")
        log = board.stats()["dhcp_log"]
        renew = log[-1]
        assert renew["type"] == "REQUEST" and renew["ciaddr"] == ip and renew["answer"] == "ACK"
        assert renew["server_id"] is None and renew["requested"] is None  # RENEWING (RFC 2131)
        status = board.api("/api/status")
        assert status["uptime"] >= 45 * 86400
        assert status["network"]["dhcp"]["state"] == "bound"
        assert 45 * 86400 - 120 < status["network"]["dhcp"]["renew_in"] <= 45 * 86400
        phone = UdpPhone("1001", "127.0.0.73", board)
        try:
            registers(board, phone)
        finally:
            phone.close()


def test_silent_dhcp_server_never_stalls_sip():
    ip = loopback_ip()
    with Board(ip=ip, dhcp=dhcp_config(ip, lease=600)) as board:
        phone = UdpPhone("1001", "127.0.0.74", board)
        try:
            board.control("dhcp", set={"silent": True})
            board.advance(301 * 1000)  # past T1 (300 s): renewing, nobody answers
            board.wait_until(lambda: board.api("/api/status")["network"]["dhcp"]["state"]
                             == "renewing", "renewing state")
            waits = [registers(board, phone) for _ in range(10)]
            board.advance(230 * 1000)  # past T2 (525 s): rebinding, broadcast
            waits += [registers(board, phone) for _ in range(10)]
            net = board.api("/api/status")["network"]
            assert net["dhcp"]["state"] == "rebinding", net
            sent = [e for e in board.stats()["dhcp_log"] if e["type"] == "REQUEST"]
            assert len(sent) >= 3 and sent[-1]["ciaddr"] == ip
            # the driver's maintain_dhcp_lease() blocks 3-5 s per call here; ours never waits
            assert max(waits) < 1.0, waits
            board.control("dhcp", set={"silent": False})
            board.advance(61 * 1000)  # the next retransmission gets its ACK
            board.wait_until(lambda: board.api("/api/status")["network"]["dhcp"]["state"]
                             == "bound", "bound again")
            board.control("dhcp", set={"silent": True})
            board.advance(601 * 1000)  # the whole lease runs out without an answer
            board.wait_for("expired without an answer")
            assert board.api("/api/status")["network"]["ip"] == ip  # kept: phones still reach it
            registers(board, phone)
        finally:
            phone.close()


def test_link_down_then_up_gets_a_new_lease_and_moves_sip():
    ip = loopback_ip()
    new_ip = loopback_ip()
    with Board({"SIP_USERS": "1001,1002"}, ip=ip) as board:
        board.control("link", up=False)
        board.wait_for("Ethernet: link down")
        phone = UdpPhone("1001", "127.0.0.75", board)
        try:
            phone.send(phone.register())
            try:
                phone.expect("SIP/2.0 200", timeout=0.5)
                raise AssertionError("a REGISTER got through a link that is down")
            except AssertionError as e:
                assert "never got" in str(e)
            assert board.stats()["stats"]["udp_dropped_link"] >= 1
            board.control("dhcp", set={"offer_ip": new_ip})
            before = len(board.stats()["dhcp_log"])
            board.control("link", up=True)
            board.wait_for("Ethernet: link up")
            board.wait_for("address is now %s" % new_ip)
            log = board.stats()["dhcp_log"][before:]
            assert [e["type"] for e in log] == ["DISCOVER", "REQUEST"], log
            board.host = board.ip = new_ip
            phone.server = (new_ip, 5060)
            phone.domain = "%s:5060" % new_ip
            registers(board, phone)
            status = board.api("/api/status")
            assert status["network"]["ip"] == new_ip and status["network"]["link_changes"] == 2
            assert status["sip"] == "%s:5060" % new_ip
        finally:
            phone.close()


def browser_fetch(board, path, results, index, tries=40):
    """One browser connection: connect, send, read to the end; retry when the chip resets it."""
    resets = 0
    for _ in range(tries):
        try:
            with socket.create_connection((board.ip, board.http_port), timeout=5) as s:
                s.sendall(("GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n"
                           % (path, board.ip)).encode())
                data = b""
                while True:
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    data += chunk
            if data.startswith(b"HTTP/1.1 200"):
                results[index] = (data, resets)
                return
        except (ConnectionResetError, ConnectionRefusedError, BrokenPipeError, TimeoutError):
            pass  # reset (no backlog on the chip) or, on a loaded machine, too slow: try again
        resets += 1
        time.sleep(0.05)
    results[index] = (None, resets)


def test_eight_browser_connections_while_sip_keeps_working(tmp_path):
    with Board({"SIP_USERS": "1001,1002"}) as board:
        alice = Phone((board.ip, 5060), "1001", "127.0.0.76", str(tmp_path))
        bob = Phone((board.ip, 5060), "1002", "127.0.0.77", str(tmp_path))
        try:
            assert alice.register().ok and bob.register().ok
            answering = bob.answer()
            caller = alice.start_call("1002", pause_ms=1500, timeout=10)
            results = [None] * 8
            threads = [threading.Thread(target=browser_fetch,
                                        args=(board, "/api/status", results, i))
                       for i in range(8)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(60)
            made = caller.wait()
            answered = answering.wait()
            assert made.ok and answered.ok, made.report() + answered.report() + board.output()
            for data, _resets in results:
                assert data is not None, (results, board.output())
                body = json.loads(data.split(b"\r\n\r\n", 1)[1])
                assert body["network"]["ip"] == board.ip
            stats = board.stats()
            # the W5500 has no backlog: connections beyond the one listener are reset ...
            assert stats["stats"]["tcp_refused"] + stats["stats"]["tcp_accepted"] >= 8
            # ... and the board is back to one SIP socket and one listener afterwards
            board.wait_until(lambda: sorted((s["mode"], s["sr"]) for s in board.stats()[
                "sockets"] if s["sr"]) == [(1, 0x14), (2, 0x22)], "sockets back to two")
            assert "All sockets in use" not in board.output()
        finally:
            alice.stop()
            bob.stop()


def test_listener_that_dies_is_started_again():
    with Board() as board:
        assert board.api("/api/status")["network"]["link"] is True
        assert board.control("close_listener", port=board.http_port)["ok"]
        # Dashboard.poll (the driver's RuntimeError) or DashboardGuard (the CLOSED state),
        # whichever sees it first, listens afresh
        board.wait_for("starting it again")
        status = board.api("/api/status")  # served: the listener is back
        assert status["counters"]["http_restarts"] >= 1


def test_watchdog_is_fed_and_a_watchdog_reset_is_reported():
    with Board(stub={"reset_reason": "WATCHDOG"}) as board:
        out = board.output()
        assert "Reset reason: watchdog" in out
        assert "the watchdog restarted the board" in out
        assert "Watchdog: 8 s" in out
        status = board.api("/api/status")
        assert status["boot"]["reason"] == "watchdog" and status["network"]["watchdog"] == 8
        assert status["network"]["sip_socket"] == {"errors": 0, "reopened": 0}
        time.sleep(1.0)
        dog = board.stats()["watchdog"]
        assert dog["mode"] == "watchdog.WatchDogMode.RESET" and dog["timeout"] == 8
        assert dog["feeds"] > 10 and dog["max_gap"] < 2.0, dog
    with Board({"WATCHDOG": 0}) as board:
        assert "Watchdog: off" in board.output()
        assert board.stats()["watchdog"]["feeds"] == 0
