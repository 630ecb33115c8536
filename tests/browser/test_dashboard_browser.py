"""Headless Chromium (Debian's) on the dashboard: registrations and a call appear and end live."""

import os
import shutil

import pytest
from hostmode import ROOT, HostMode
from udpphone import UdpPhone, answer, call, hang_up

CHROMIUM = "/usr/bin/chromium"
SHOTS = os.path.join(ROOT, "tests", "artifacts")


@pytest.fixture(scope="module")
def browser():
    assert os.path.exists(CHROMIUM) or shutil.which("chromium"), "Debian chromium is missing"
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--no-first-run", "--disable-sync"])
        try:
            yield b
        finally:
            b.close()


def test_dashboard_live_updates(browser):
    from playwright.sync_api import expect

    os.makedirs(SHOTS, exist_ok=True)
    with HostMode({"SIP_USERS": "1001,1002"}) as host:
        alice = UdpPhone("1001", "127.0.0.1", host)
        bob = UdpPhone("1002", "127.0.0.1", host)
        page = browser.new_page(viewport={"width": 1000, "height": 900})
        requests = []
        page.on("request", lambda r: requests.append(r.url))
        try:
            page.goto("http://127.0.0.1:%d/" % host.http_port)
            page.wait_for_selector("#live:has-text('live')", timeout=10000)
            assert "No phone registered" in page.inner_text("#registrations")
            for phone in (alice, bob):
                phone.send(phone.register())
                phone.expect("SIP/2.0 200")
            rows = page.locator("#registrations tr")
            expect(rows).to_have_count(2, timeout=10000)
            expect(page.locator("#registrations")).to_contain_text("1002")
            invite = call(alice, bob, "browser-call")
            page.wait_for_selector("#calls td:has-text('ringing')", timeout=10000)
            ok = answer(alice, bob, invite)
            page.wait_for_selector("#calls td:has-text('answered')", timeout=10000)
            page.screenshot(path=os.path.join(SHOTS, "dashboard-call.png"), full_page=True)
            hang_up(alice, bob, ok)
            page.wait_for_selector("#history td:has-text('ended')", timeout=10000)
            page.wait_for_selector("#calls td:has-text('No active call')", timeout=10000)
            page.screenshot(path=os.path.join(SHOTS, "dashboard.png"), full_page=True)
            # readable on a phone: nothing wider than the screen, tables scroll inside their box
            phone = browser.new_page(viewport={"width": 390, "height": 844})
            try:
                phone.goto("http://127.0.0.1:%d/" % host.http_port)
                expect(phone.locator("#live")).to_have_text("live", timeout=10000)
                for box in ("header", "main", "section >> nth=0", "#health"):
                    assert phone.locator(box).bounding_box()["width"] <= 390, box
                phone.screenshot(path=os.path.join(SHOTS, "dashboard-phone.png"), full_page=True)
            finally:
                phone.close()
            navigations = [u for u in requests if u.rstrip("/").endswith(str(host.http_port))]
            assert len(navigations) == 1  # no reload: everything came through the API
            assert not [u for u in requests if "favicon" in u]
        finally:
            page.close()
            alice.close()
            bob.close()
