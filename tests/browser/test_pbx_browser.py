"""Headless Chromium on the dashboard's PBX controls (on each extension and group card): DND
and forwards set and cleared by hand, through POST /api/pbx, with the browser's saved Basic
credentials."""

import base64
import json
import os
import shutil
import urllib.request

import pytest
from hostmode import ROOT, HostMode

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


def api(host, path):
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (host.http_port, path), headers={
        "Authorization": "Basic " + base64.b64encode(b"admin:pw").decode()})
    with urllib.request.urlopen(req, timeout=5) as answer:
        return json.loads(answer.read())


def test_pbx_controls_set_and_clear_dnd_and_forwards(browser):
    from playwright.sync_api import expect

    os.makedirs(SHOTS, exist_ok=True)
    settings = {"SIP_USERS": "1001,1002,1003", "DND": "1003", "RING_GROUPS": "600=1001,1002",
                "DASHBOARD_PASSWORD": "pw"}
    with HostMode(settings) as host:
        context = browser.new_context(http_credentials={"username": "admin", "password": "pw"},
                                      viewport={"width": 1000, "height": 900})
        page = context.new_page()
        try:
            page.goto("http://127.0.0.1:%d/" % host.http_port)
            expect(page.locator("#extensions .card")).to_have_count(3, timeout=10000)
            expect(page.locator("#groups .card")).to_have_count(1)  # 600
            expect(page.locator("#group-600")).to_contain_text("ring group: 1001, 1002")
            expect(page.locator("button[data-dnd='1003']")).to_have_text("DND on")
            expect(page.locator("button[data-dnd='1002']")).to_have_text("DND off")
            assert page.locator("button[data-dnd='600']").count() == 0  # a group has no DND
            page.click("button[data-dnd='1002']")
            expect(page.locator("button[data-dnd='1002']")).to_have_text("DND on", timeout=5000)
            assert api(host, "/api/pbx")["settings"]["1002"]["dnd"] is True
            host.wait_for("pbx: 1002 dnd=True (dashboard)", timeout=3)
            card = page.locator("#ext-1001")
            card.locator("summary").click()  # the forwarding fields
            page.fill("input[aria-label='1001 always']", "600")
            card.locator("button:has-text('Save')").click()
            expect(card.locator(".msg")).to_have_text("saved", timeout=5000)
            assert api(host, "/api/pbx")["settings"]["1001"]["always"] == "600"
            expect(card).to_contain_text("forwarded to 600", timeout=5000)  # offline, forwarded
            page.fill("input[aria-label='1001 busy']", "1099")
            card.locator("button:has-text('Save')").click()
            expect(card.locator(".msg")).to_have_text(
                "not saved: no such extension or group: 1099", timeout=5000)
            assert api(host, "/api/pbx")["settings"]["1001"]["busy"] is None
            page.screenshot(path=os.path.join(SHOTS, "dashboard-pbx.png"), full_page=True)
            page.fill("input[aria-label='1001 always']", "")
            page.fill("input[aria-label='1001 busy']", "")
            card.locator("button:has-text('Save')").click()
            expect(card.locator(".msg")).to_have_text("saved", timeout=5000)
            assert api(host, "/api/pbx")["settings"]["1001"]["always"] is None
        finally:
            context.close()


def test_pbx_controls_stay_hidden_without_pbx_settings(browser):
    from playwright.sync_api import expect

    with HostMode({"SIP_USERS": "1001"}) as host:
        page = browser.new_page()
        try:
            page.goto("http://127.0.0.1:%d/" % host.http_port)
            expect(page.locator("#live")).to_have_text("live", timeout=10000)
            expect(page.locator("#ext-1001")).to_be_visible(timeout=10000)
            assert page.locator("button[data-dnd]").count() == 0
            assert page.locator("#extensions details").count() == 0
        finally:
            page.close()
