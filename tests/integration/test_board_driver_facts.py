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


def test_maintain_dhcp_lease_blocks_after_t1_with_a_silent_server():
    found = run("maintain")
    assert found["before_t1_s"] < 0.5
    assert found["after_t1_s"] >= 2.5, found  # 4 s +- 1 s in the driver
