"""The adafruit_wiznet5k behaviour that the board code works around, reproduced with the
unmodified driver on the W5500 model (tests/w5500/driver_checks.py). If a driver release
changes one of these, this test says which, and the workaround can be revisited."""

import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CHECKS = os.path.join(ROOT, "tests", "w5500", "driver_checks.py")


def run(check):
    proc = subprocess.run([sys.executable, CHECKS, check], capture_output=True, text=True,
                          timeout=60, cwd=ROOT, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_sendto_reopens_the_socket_and_loses_queued_datagrams():
    found = run("reopen")
    assert found["queued_bytes"] > 0
    assert found["after_pool_sendto"] == [] and found["lost_on_open"] == 1
    assert found["after_w5500udp_send"] == ["first", "second"]
    assert found["w5500udp_reply"] == "reply"


def test_one_datagram_per_receive_only_without_timeout():
    found = run("concat")
    assert found["nonblocking"] == ["first", "second"]
    assert found["with_timeout"] == "firstsecond"


def test_driver_dhcp_cannot_take_a_90_day_lease():
    found = run("lease")
    assert found["3600"].startswith("ok ")
    assert found[str(90 * 86400)].startswith("OverflowError")


def test_listener_that_drops_to_closed_never_accepts_again():
    found = run("accept_closed")
    assert found["accept"][0] == "OSError 11"  # EAGAIN: nobody there yet
    assert all("closed" in a for a in found["accept"][1:]), found


def test_accept_racing_a_second_connection_orphans_the_clients_chip_socket():
    found = run("accept_race")
    assert found["error"] == "Failed to open new listening socket"
    assert found["new_listener"] != found["listener"]
    assert found["orphan_status"] == 0x17  # ESTABLISHED, and no Socket object returned for it


def test_dashboard_closes_the_orphan_and_listens_again():
    """switchboard.http.Dashboard on the same race: no chip socket is left in use."""
    found = run("dashboard_race")
    assert found["restarts"] == 1 and "listener lost" in found["lines"][0], found
    assert found["busy"] == [] and len(found["listening"]) == 1, found


def test_maintain_dhcp_lease_blocks_after_t1_with_a_silent_server():
    found = run("maintain")
    assert found["before_t1_s"] < 0.5
    assert found["after_t1_s"] >= 2.5, found  # 4 s +- 1 s in the driver


def test_model_enforces_the_chips_buffer_memory():
    """The W5500 model refuses what the real chip would get wrong: a size it does not know,
    RX or TX sizes over 16 KB in total, resizing an open socket. Shrinking first and then
    growing (what netif does) is accepted."""
    sys.path.insert(0, os.path.join(ROOT, "tests", "w5500"))
    from model import S_RXBUF, S_TXBUF, W5500, BufferSizeError

    chip = W5500()
    try:
        s = chip.sockets
        for bad in (3, 32):
            try:
                s[1].write_reg(S_RXBUF, bad)
            except BufferSizeError:
                pass
            else:
                raise AssertionError("size %d KB accepted" % bad)
        try:
            s[1].write_reg(S_RXBUF, 8)  # the others still hold 2 KB each: 22 KB
        except BufferSizeError as e:
            assert "22 KB" in str(e)
        else:
            raise AssertionError("22 KB of RX accepted")
        try:
            s[2].write_reg(S_TXBUF, 4)
        except BufferSizeError as e:
            assert "18 KB" in str(e)
        else:
            raise AssertionError("18 KB of TX accepted")
        for n in (0, 2, 3, 4, 5, 6, 7):
            s[n].write_reg(S_RXBUF, 1)
        s[1].write_reg(S_RXBUF, 8)  # 8 + 7 x 1 = 15 KB
        assert [x.rx_size() for x in s] == [1024, 8192] + [1024] * 6
        s[1].sr = 0x22  # open (UDP)
        try:
            s[1].write_reg(S_RXBUF, 4)
        except BufferSizeError as e:
            assert "while open" in str(e)
        else:
            raise AssertionError("resized while open")
    finally:
        chip.close()


def test_netif_split_fits_the_chip():
    """netif's split: 8 KB RX for SIP, everything within 16 KB, TX at the driver's 2 KB."""
    sys.path.insert(0, os.path.join(ROOT, "lib"))
    from switchboard.bringup import buffer_split

    for dashboard in (False, True):
        split = buffer_split(1, 2, dashboard)
        assert split[1][0] == 8
        assert sum(r for r, _ in split) <= 16 and sum(t for _, t in split) <= 16
        assert all(t == 2 for _, t in split)
        assert all(r >= 1 for r, _ in split)  # a socket the driver hands out can receive
