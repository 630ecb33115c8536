"""Headless Chromium on the dashboard's PBX panel: DND and forwards set and cleared by hand,
through POST /api/pbx, with the browser's saved Basic credentials."""

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


def test_pbx_panel_sets_and_clears_dnd_and_forwards(browser):
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
            expect(page.locator("#pbx")).to_be_visible(timeout=10000)
            expect(page.locator("#pbxrows tr")).to_have_count(4)  # 600, 1001, 1002, 1003
            expect(page.locator("button[data-dnd='1003']")).to_have_text("on")
            expect(page.locator("button[data-dnd='1002']")).to_have_text("off")
            assert page.locator("button[data-dnd='600']").count() == 0  # a group has no DND
            page.click("button[data-dnd='1002']")
            expect(page.locator("button[data-dnd='1002']")).to_have_text("on", timeout=5000)
            assert api(host, "/api/pbx")["settings"]["1002"]["dnd"] is True
            host.wait_for("pbx: 1002 dnd=True (dashboard)", timeout=3)
            page.fill("input[aria-label='1001 always']", "600")
            page.click("button[data-set='1001']")
            expect(page.locator("#pbxmsg")).to_have_text("saved", timeout=5000)
            assert api(host, "/api/pbx")["settings"]["1001"]["always"] == "600"
            page.fill("input[aria-label='1001 busy']", "1099")
            page.click("button[data-set='1001']")
            expect(page.locator("#pbxmsg")).to_have_text(
                "not saved: no such extension or group: 1099", timeout=5000)
            assert api(host, "/api/pbx")["settings"]["1001"]["busy"] is None
            page.screenshot(path=os.path.join(SHOTS, "dashboard-pbx.png"), full_page=True)
            page.fill("input[aria-label='1001 always']", "")
            page.fill("input[aria-label='1001 busy']", "")
            page.click("button[data-set='1001']")
            expect(page.locator("#pbxmsg")).to_have_text("saved", timeout=5000)
            assert api(host, "/api/pbx")["settings"]["1001"]["always"] is None
        finally:
            context.close()


def test_pbx_panel_stays_hidden_without_pbx_settings(browser):
    from playwright.sync_api import expect

    with HostMode({"SIP_USERS": "1001"}) as host:
        page = browser.new_page()
        try:
            page.goto("http://127.0.0.1:%d/" % host.http_port)
            expect(page.locator("#live")).to_have_text("live", timeout=10000)
            assert page.locator("#pbx").is_hidden()
        finally:
            page.close()
