"""PBX features end to end: Switchboard in host mode with SIPp phones on loopback.

Ring and hunt groups, forwarding (always, busy, no answer), a forwarding loop, DND by feature
code, intercom headers, the dashboard API, bad settings at start, and a call after a restart
with the state file. Each test starts its own `python3 code.py`; every process is stopped by
PID when the test ends.
"""

import base64
import http.client
import json

import pytest
from hostmode import HostMode
from sipp_helpers import Phone, expect_scenario, first_line, header_values

USERS = "1001,1002,1003,1004"
ADDRESSES = {"1001": "127.0.0.61", "1002": "127.0.0.62", "1003": "127.0.0.63",
             "1004": "127.0.0.64"}


class Office:
    """A host-mode Switchboard with PBX settings and sipp phones that register."""

    def __init__(self, tmp_path, settings, phones=("1001", "1002", "1003", "1004")):
        base = {"SIP_USERS": USERS, "TIMER_C": 8, "LOG_LEVEL": "info"}
        base.update(settings)
        self.tmp = str(tmp_path)
        self.server = HostMode(base)
        self.phones = {}
        try:
            for user in phones:
                self.phones[user] = self.phone(user)
        except Exception:
            self.stop()
            raise

    def phone(self, user, port=None):
        p = Phone(self.server.sip_addr, user, ADDRESSES[user], self.tmp, port=port)
        result = p.register()
        assert result.ok, self.evidence(result)
        self.server.wait_for("register %s contact=" % user, timeout=3)
        return p

    def evidence(self, *results):
        return "\n".join(r.report() for r in results) + "\n=== switchboard output:\n" + \
            self.server.output()

    def stop(self):
        for p in self.phones.values():
            p.stop()
        self.server.stop()


@pytest.fixture
def office(tmp_path):
    made = []

    def make(settings, phones=("1001", "1002", "1003", "1004")):
        o = Office(tmp_path, settings, phones)
        made.append(o)
        return o

    try:
        yield make
    finally:
        for o in made:
            o.stop()


def ring(o, caller, callee, callees, uac="uac_call_forked.xml", timeout=8):
    """callees: {user: scenario}; all run while caller calls callee. Returns the results."""
    running = {u: o.phones[u].answer(s, timeout=timeout) for u, s in callees.items()}
    made = None
    try:
        made = o.phones[caller].call(callee, uac, timeout=timeout)
    finally:
        results = {u: r.wait(None if made is not None and made.ok else 1.0)
                   for u, r in running.items()}
    return made, results


def final(result):
    return [first_line(m) for m in result.received() if not first_line(m).startswith(
        ("SIP/2.0 1",))][-1]


def test_ring_group_second_member_answers_others_cancelled(office):
    o = office({"RING_GROUPS": "600=1001,1002,1003"})
    made, got = ring(o, "1004", "600", {"1001": "uas_ring.xml", "1002": "uas_answer_slow.xml",
                                        "1003": "uas_ring.xml"})
    assert made.ok and all(r.ok for r in got.values()), o.evidence(made, *got.values())
    for user in ("1001", "1003"):  # each rang, then got the CANCEL
        assert [first_line(m).split()[0] for m in got[user].received()][:2] == \
            ["INVITE", "CANCEL"], o.evidence(got[user])
    o.server.wait_for("1004 -> 600 answered", timeout=3)


def test_hunt_group_first_member_times_out(office):
    o = office({"HUNT_GROUPS": "601=1001,1002", "HUNT_TIMEOUT": 1})
    made, got = ring(o, "1004", "601", {"1001": "uas_ring.xml", "1002": "uas_answer.xml"})
    assert made.ok and all(r.ok for r in got.values()), o.evidence(made, *got.values())
    # 1001 rang alone first: the INVITE reached 1002 only after 1001's CANCEL
    assert "CANCEL" in [first_line(m).split()[0] for m in got["1001"].received()]
    ringing = [first_line(m) for m in made.received()].count("SIP/2.0 180 Ringing")
    assert ringing >= 1, o.evidence(made)
    o.server.wait_for("1004 -> 601 answered", timeout=3)


def test_forward_on_busy(office):
    o = office({"FORWARD_BUSY": "1001=1002"})
    made, got = ring(o, "1004", "1001", {"1001": "uas_busy.xml", "1002": "uas_answer.xml"})
    assert made.ok and all(r.ok for r in got.values()), o.evidence(made, *got.values())
    o.server.wait_for("1004 -> 1001 answered", timeout=3)  # the original callee is kept


def test_forward_on_no_answer(office):
    o = office({"FORWARD_NOANSWER": "1001=1002", "FORWARD_NOANSWER_AFTER": 1})
    made, got = ring(o, "1004", "1001", {"1001": "uas_ring.xml", "1002": "uas_answer.xml"})
    assert made.ok and all(r.ok for r in got.values()), o.evidence(made, *got.values())
    o.server.wait_for("1004 -> 1001 answered", timeout=3)


def test_forward_always(office):
    o = office({"FORWARD_ALWAYS": "1001=1002"})
    made, got = ring(o, "1004", "1001", {"1002": "uas_answer.xml"})
    assert made.ok and got["1002"].ok, o.evidence(made, got["1002"])
    invite = got["1002"].received()[0]
    assert first_line(invite).startswith("INVITE sip:1002@127.0.0.62"), invite
    o.server.wait_for("1004 -> 1001 answered", timeout=3)


def test_forwarding_loop_is_answered_482(office, tmp_path):
    o = office({"FORWARD_ALWAYS": "1001=1002, 1002=1001"}, phones=("1001", "1002", "1004"))
    result = o.phones["1004"].call("1001", expect_scenario(482, str(tmp_path)))
    assert result.ok, o.evidence(result)
    assert final(result) == "SIP/2.0 482 Loop Detected"


def test_dnd_on_and_off_by_feature_code(office, tmp_path):
    o = office({"INTERCOM": "1002"}, phones=("1001", "1002", "1004"))
    a, c = o.phones["1001"], o.phones["1004"]
    result = a.call("*78", expect_scenario(480, str(tmp_path)))
    assert result.ok and final(result) == "SIP/2.0 480 Do Not Disturb On", o.evidence(result)
    o.server.wait_for("feature *78 from 1001: 480 Do Not Disturb On", timeout=3)
    busy = c.call("1001", expect_scenario(486, str(tmp_path)))
    assert busy.ok and final(busy) == "SIP/2.0 486 Busy Here", o.evidence(busy)
    result = a.call("*79", expect_scenario(480, str(tmp_path)))
    assert result.ok and final(result) == "SIP/2.0 480 Do Not Disturb Off", o.evidence(result)
    made, got = ring(o, "1004", "1001", {"1001": "uas_answer.xml"})
    assert made.ok and got["1001"].ok, o.evidence(made, got["1001"])


def test_feature_code_forward_always_then_off(office, tmp_path):
    o = office({"DND": "1003"}, phones=("1001", "1002", "1004"))
    result = o.phones["1001"].call("*721002", expect_scenario(480, str(tmp_path)))
    assert result.ok and final(result) == "SIP/2.0 480 Forward To 1002 On", o.evidence(result)
    made, got = ring(o, "1004", "1001", {"1002": "uas_answer.xml"})
    assert made.ok and got["1002"].ok, o.evidence(made, got["1002"])
    result = o.phones["1001"].call("*73", expect_scenario(480, str(tmp_path)))
    assert result.ok and final(result) == "SIP/2.0 480 Forward Off", o.evidence(result)
    made, got = ring(o, "1004", "1001", {"1001": "uas_answer.xml"})
    assert made.ok and got["1001"].ok, o.evidence(made, got["1001"])


def test_intercom_headers_reach_the_callee(office, tmp_path):
    o = office({"INTERCOM": "1002"}, phones=("1001", "1002", "1003"))
    made, got = ring(o, "1001", "*801002", {"1002": "uas_intercom.xml"})
    assert made.ok and got["1002"].ok, o.evidence(made, got["1002"])
    invite = got["1002"].received()[0]
    assert header_values(invite, "Call-Info") == [
        "<sip:%s:%d>;answer-after=0" % o.server.sip_addr], invite
    assert header_values(invite, "Alert-Info") == ["<http://127.0.0.1>;info=alert-autoanswer"]
    refused = o.phones["1001"].call("*801003", expect_scenario(403, str(tmp_path)))
    assert refused.ok and final(refused) == "SIP/2.0 403 Intercom Not Allowed", \
        o.evidence(refused)


def test_bad_settings_are_reported_at_start_and_ignored(office, tmp_path):
    o = office({"RING_GROUPS": "600=1001,1099; 610=1002,610", "HUNT_TIMEOUT": "soon",
                "ALIASES": "reception=600, bad"}, phones=("1001", "1004"))
    out = o.server.output()
    for text in ("settings: RING_GROUPS: 1099 in group 600 is not an extension; ignored",
                 "settings: RING_GROUPS: group 610 is inside itself",
                 "settings: HUNT_TIMEOUT='soon' is not a number of seconds",
                 "settings: ALIASES: 'bad' is not NAME=TARGET; ignored"):
        assert text in out, out
    made, got = ring(o, "1004", "reception", {"1001": "uas_answer.xml"})
    assert made.ok and got["1001"].ok, o.evidence(made, got["1001"])


def api(o, method, path, password="pw", origin=None):
    conn = http.client.HTTPConnection("127.0.0.1", o.server.http_port, timeout=5)
    headers = {"Authorization": "Basic " + base64.b64encode(("admin:" + password).encode())
               .decode()}
    if origin:
        headers["Origin"] = origin
    try:
        conn.request(method, path, headers=headers)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def test_dashboard_api_sets_and_clears_dnd_and_forwarding(office, tmp_path):
    o = office({"DND": "1003", "DASHBOARD_PASSWORD": "pw"}, phones=("1001", "1002", "1004"))
    status, body = api(o, "GET", "/api/pbx")
    assert status == 200 and json.loads(body)["settings"]["1003"]["dnd"] is True
    assert api(o, "POST", "/api/pbx?ext=1002&dnd=on", password="wrong")[0] == 401
    assert api(o, "POST", "/api/pbx?ext=1002&dnd=on", origin="http://evil.example")[0] == 403
    status, body = api(o, "POST", "/api/pbx?ext=1099&dnd=on")
    assert status == 400 and b"no such extension" in body
    status, body = api(o, "POST", "/api/pbx?ext=1002&dnd=on")
    assert status == 200 and json.loads(body)["settings"]["1002"]["dnd"] is True, body
    o.server.wait_for("pbx: 1002 dnd=True (dashboard)", timeout=3)
    busy = o.phones["1004"].call("1002", expect_scenario(486, str(tmp_path)))
    assert busy.ok, o.evidence(busy)
    status, body = api(o, "POST", "/api/pbx?ext=1002&dnd=off&always=1001")
    assert status == 200, body
    made, got = ring(o, "1004", "1002", {"1001": "uas_answer.xml"})
    assert made.ok and got["1001"].ok, o.evidence(made, got["1001"])
    status, body = api(o, "POST", "/api/pbx?ext=1002&always=")
    assert status == 200 and json.loads(body)["settings"]["1002"]["always"] is None


def test_call_after_a_restart_with_the_state_file(office, tmp_path):
    state = str(tmp_path / "switchboard.state")
    settings = {"STATE_FILE": state, "INTERCOM": "1002"}
    o = office(settings, phones=("1001", "1002"))
    result = o.phones["1001"].call("*78", expect_scenario(480, str(tmp_path)))
    assert result.ok, o.evidence(result)
    o.server.wait_for("state: saved 2 registrations and 1 user settings", timeout=5)
    # a change still settling when the server stops is written at the stop
    result = o.phones["1002"].call("*921001", expect_scenario(480, str(tmp_path)))
    assert result.ok, o.evidence(result)
    first = o.server
    assert first.stop() == 0
    assert "state: saved 2 registrations and 2 user settings" in first.output()
    # the same phones, not registering again, and a third that registers now
    second = HostMode(dict({"SIP_USERS": USERS, "TIMER_C": 8, "LOG_LEVEL": "info"}, **settings))
    o.server = second
    try:
        second.wait_for("state: restored 2 registrations and 2 user settings", timeout=3)
        for p in o.phones.values():
            p.server = second.sip_addr
        o.phones["1004"] = o.phone("1004")
        made, got = ring(o, "1004", "1002", {"1002": "uas_answer.xml"})
        assert made.ok and got["1002"].ok, o.evidence(made, got["1002"])
        busy = o.phones["1004"].call("1001", expect_scenario(486, str(tmp_path)))
        assert busy.ok, o.evidence(busy)  # DND survived too
    finally:
        second.stop()
