"""Headless Chromium (Debian's) on the dashboard (issue 16): extension states, reachability,
ending a call from the page, a failed call's ladder, DND from the page, the phone layout,
and the same page served by the board path on the W5500 model."""

import os
import shutil
import socket
import sys
import time
import urllib.request

import pytest
from flows import first_line
from hostmode import ROOT, HostMode
from udpphone import UdpPhone, answer, call

CHROMIUM = "/usr/bin/chromium"
SHOTS = os.path.join(ROOT, "tests", "artifacts")
PAGE_LIMIT = 16 * 1024


@pytest.fixture(scope="module")
def browser():
    assert os.path.exists(CHROMIUM) or shutil.which("chromium"), "Debian chromium is missing"
    from playwright.sync_api import sync_playwright

    os.makedirs(SHOTS, exist_ok=True)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--no-first-run", "--disable-sync"])
        try:
            yield b
        finally:
            b.close()


def open_page(browser, url, width=1100, height=900, dark=False):
    page = browser.new_page(viewport={"width": width, "height": height},
                            color_scheme="dark" if dark else "light")
    page.on("dialog", lambda d: d.accept())  # the page confirms ending calls and removals
    page.goto(url)
    page.wait_for_selector("#live:has-text('live')", timeout=10000)
    return page


def state(page, ext):
    return page.locator("#ext-%s .st" % ext)


class PingedPhone(UdpPhone):
    """A UdpPhone that answers OPTIONS pings while pump() runs (a phone that is on)."""

    def pump(self, seconds, answering=True):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.sock.settimeout(max(0.01, end - time.monotonic()))
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                return
            if data.startswith(b"OPTIONS ") and answering:
                self.send(self.answer(data, 200, "OK"))


def test_states_call_from_ringing_to_ended_from_the_page(browser):
    from playwright.sync_api import expect

    with HostMode({"SIP_USERS": "1001,1002,1003"}) as host:
        alice, bob, carol = (UdpPhone(u, "127.0.0.1", host) for u in ("1001", "1002", "1003"))
        page = open_page(browser, "http://127.0.0.1:%d/" % host.http_port)
        try:
            for ext in ("1001", "1002", "1003"):
                expect(state(page, ext)).to_have_text("offline", timeout=10000)
            for phone in (alice, bob):
                phone.send(phone.register())
                phone.expect("SIP/2.0 200")
            expect(state(page, "1001")).to_have_text("idle", timeout=10000)
            expect(state(page, "1003")).to_have_text("offline")
            carol.send(carol.register())  # an offline extension turns idle when it registers
            carol.expect("SIP/2.0 200")
            expect(state(page, "1003")).to_have_text("idle", timeout=10000)
            invite = call(alice, bob, "browser-call")
            expect(state(page, "1001")).to_have_text("ringing · 1002", timeout=10000)
            expect(state(page, "1002")).to_have_text("ringing · 1001", timeout=10000)
            answer(alice, bob, invite)
            expect(state(page, "1001")).to_have_text("in a call with 1002", timeout=10000)
            expect(state(page, "1002")).to_have_text("in a call with 1001", timeout=10000)
            expect(page.locator("#calls")).to_contain_text("talking")
            page.screenshot(path=os.path.join(SHOTS, "dashboard.png"), full_page=True)
            page.locator("#calls button:has-text('End call')").click()
            for phone in (alice, bob):  # BYE inside the dialog to each phone
                bye = phone.expect("BYE")
                assert b"Call-ID: browser-call" in bye and b";tag=" in bye
                phone.send(phone.answer(bye, 200, "OK"))
            expect(page.locator("#history")).to_contain_text("ended from the dashboard",
                                                             timeout=10000)
            expect(state(page, "1001")).to_have_text("idle", timeout=10000)
            assert host.wait_for("ended from the dashboard", timeout=5)
        finally:
            page.close()
            for phone in (alice, bob, carol):
                phone.close()


def test_failed_call_ladder_shows_invite_and_486(browser):
    from playwright.sync_api import expect

    with HostMode({"SIP_USERS": "1001,1002"}) as host:
        alice, bob = UdpPhone("1001", "127.0.0.1", host), UdpPhone("1002", "127.0.0.1", host)
        page = open_page(browser, "http://127.0.0.1:%d/" % host.http_port)
        try:
            for phone in (alice, bob):
                phone.send(phone.register())
                phone.expect("SIP/2.0 200")
            alice.send(alice.invite("1002", "busy-call"))
            invite = bob.expect("INVITE")
            bob.send(bob.answer(invite, 486, "Busy Here"))
            alice.expect("SIP/2.0 486")
            expect(page.locator("#history")).to_contain_text("failed 486", timeout=10000)
            page.locator("#history button:has-text('Why?')").click()
            ladder = page.locator("#ladder")
            expect(ladder).to_contain_text("INVITE sip:1002", timeout=10000)
            expect(ladder).to_contain_text("486 Busy Here")
            labels = ladder.locator("text").all_text_contents()
            assert "Switchboard" in labels
            assert labels.index("INVITE sip:1002@127.0.0.1:%d" % host.sip_port) < \
                labels.index("486 Busy Here")
            assert "1002" in labels and "1001" in labels  # peers named
            page.locator("#ladderbox").screenshot(path=os.path.join(SHOTS, "ladder.png"))
        finally:
            page.close()
            alice.close()
            bob.close()


def test_phone_that_stops_answering_turns_unreachable_within_two_intervals(browser):
    from playwright.sync_api import expect

    interval = 3
    with HostMode({"SIP_USERS": "1001,1002", "QUALIFY_INTERVAL": interval}) as host:
        alice = UdpPhone("1001", "127.0.0.1", host)
        bob = PingedPhone("1002", "127.0.0.1", host)
        page = open_page(browser, "http://127.0.0.1:%d/" % host.http_port)
        try:
            for phone in (alice, bob):
                phone.send(phone.register())
                phone.expect("SIP/2.0 200")
            card = page.locator("#ext-1002")
            for _ in range(30):  # bob answers pings: reachable with a round-trip time
                bob.pump(0.3)
                if "reachable, " in card.inner_text():
                    break
            assert "reachable, " in card.inner_text() and " ms" in card.inner_text()
            stopped = time.monotonic()
            bob.pump(0.1, answering=False)
            # the page refreshes every 2 s: two intervals plus one refresh plus slack
            expect(card).to_contain_text("not answering pings",
                                         timeout=(2 * interval + 3) * 1000)
            assert time.monotonic() - stopped <= 2 * interval + 3
            expect(state(page, "1002")).to_have_text("not answering")
            alice.send(alice.invite("1002", "to-unreachable"))
            alice.expect("SIP/2.0 480", timeout=1.0)  # at once, no ringing into the void
        finally:
            page.close()
            alice.close()
            bob.close()


def test_dnd_from_the_page_makes_the_next_call_busy(browser):
    from playwright.sync_api import expect

    with HostMode({"SIP_USERS": "1001,1002", "RING_GROUPS": "sales=1001,1002"}) as host:
        alice, bob = UdpPhone("1001", "127.0.0.1", host), UdpPhone("1002", "127.0.0.1", host)
        page = open_page(browser, "http://127.0.0.1:%d/" % host.http_port)
        try:
            for phone in (alice, bob):
                phone.send(phone.register())
                phone.expect("SIP/2.0 200")
            expect(page.locator("#groups")).to_contain_text("ring group: 1001, 1002",
                                                            timeout=10000)
            page.locator("button[data-dnd='1002']").click()
            expect(state(page, "1002")).to_have_text("do not disturb", timeout=10000)
            alice.send(alice.invite("1002", "dnd-call"))
            assert first_line(alice.expect("SIP/2.0 486")) == "SIP/2.0 486 Busy Here"
            page.locator("button[data-dnd='1002']").click()
            expect(state(page, "1002")).to_have_text("idle", timeout=10000)
            call(alice, bob, "after-dnd")  # rings again
        finally:
            page.close()
            alice.close()
            bob.close()


def test_phone_layout_fits_390_px_and_page_stays_small(browser):
    from playwright.sync_api import expect

    users = ",".join(str(1001 + i) for i in range(12))
    with HostMode({"SIP_USERS": users}) as host:
        phones = [UdpPhone(str(1001 + i), "127.0.0.1", host) for i in range(3)]
        try:
            for p in phones:
                reg = p.register().replace(
                    b"Expires:", b"User-Agent: Yealink SIP-T54W 96.86.0.100 long model name\r\n"
                    b"Expires:")
                p.send(reg)
                p.expect("SIP/2.0 200")
            alice, bob = phones[0], phones[1]
            answer(alice, bob, call(alice, bob, "phone-layout-call"))
            url = "http://127.0.0.1:%d/" % host.http_port
            with urllib.request.urlopen(url, timeout=5) as r:
                body = r.read()
            assert len(body) <= PAGE_LIMIT, len(body)
            for dark in (False, True):
                page = open_page(browser, url, width=390, height=844, dark=dark)
                try:
                    expect(state(page, "1002")).to_have_text("in a call with 1001",
                                                             timeout=10000)
                    width = page.evaluate("document.documentElement.scrollWidth")
                    assert width <= 390, width
                    for box in ("header", "main", "#extensions", "#calls", "#history",
                                "#health"):
                        assert page.locator(box).bounding_box()["width"] <= 390, box
                    name = "dashboard-phone-dark.png" if dark else "dashboard-phone.png"
                    page.screenshot(path=os.path.join(SHOTS, name), full_page=True)
                    text = page.inner_text("body")
                    for internal in ("failing_sources", "bindings", "answered_4xx", "in_call"):
                        assert internal not in text, internal
                finally:
                    page.close()
        finally:
            for p in phones:
                p.close()


def test_board_path_serves_the_same_page(browser):
    """board_main() on the W5500 model: the page and its API through the chip's TCP socket; a
    call ended from the page there (the BYEs go out through the chip)."""
    from playwright.sync_api import expect

    sys.path.insert(0, os.path.join(ROOT, "tests", "w5500"))
    from harness import Board

    with Board({"SIP_USERS": "1001,1002"}) as board:
        alice = UdpPhone("1001", "127.0.0.71", board)
        bob = UdpPhone("1002", "127.0.0.72", board)
        try:
            status, body = board.get("/")
            assert status == 200 and len(body) <= PAGE_LIMIT and b"<td>1001</td>" in body
            page = open_page(browser, board.url("/"), width=390, height=844)
            try:
                expect(state(page, "1002")).to_have_text("offline", timeout=15000)
                alice.send(alice.register())
                alice.expect("SIP/2.0 200", timeout=5)
                expect(state(page, "1001")).to_have_text("idle", timeout=15000)
                assert page.evaluate("document.documentElement.scrollWidth") <= 390
                expect(page.locator("#charts")).to_contain_text("SIP messages per second")
                charts = board.api("/api/charts")
                assert charts["slot_seconds"] == 10
                bob.send(bob.register())
                bob.expect("SIP/2.0 200", timeout=5)
                answer(alice, bob, call(alice, bob, "board-call"))
                expect(state(page, "1002")).to_have_text("in a call with 1001", timeout=15000)
                page.screenshot(path=os.path.join(SHOTS, "dashboard-board.png"),
                                full_page=True)
                # the BYEs leave through the W5500 endpoint from inside the HTTP request
                page.locator("#calls button:has-text('End call')").click()
                for phone in (alice, bob):
                    bye = phone.expect("BYE", timeout=10)
                    assert b"Call-ID: board-call" in bye
                    phone.send(phone.answer(bye, 200, "OK"))
                expect(page.locator("#history")).to_contain_text("ended from the dashboard",
                                                                 timeout=15000)
            finally:
                page.close()
        finally:
            alice.close()
            bob.close()
