"""PbxRouter (lib/switchboard/pbx.py) inside the sans-I/O engine: the dialplan's stages become
the proxy's forks, cancels and next stages; feature codes are answered at once."""

import os
import subprocess
import sys

from flows import PROXY, Phone, new_engine
from hostmode import free_port

from switchboard.message import parse
from switchboard.pbx import install

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def pbx_engine(settings, users="1001,1002,1003,1004", **extra):
    overrides = {"SIP_USERS": users}
    overrides.update(extra)
    eng = new_engine(overrides)
    lines = []
    dp = install(eng, settings.get, lambda level, text: lines.append((level, text)))
    return eng, dp, lines


def registered(eng, *phones):
    for p in phones:
        out = eng.receive(p.register(), p.addr, 0)
        assert parse(out[-1][0]).status == 200


def sent(out):
    """[(first line, dest)] of what the engine sent."""
    got = []
    for data, dest in out:
        m = parse(data)
        got.append(("%s %s" % (m.method, m.uri) if m.method else "%d" % m.status, dest))
    return got


def final(out, to):
    for data, dest in out:
        m = parse(data)
        if dest == to and m.status and m.status >= 200:
            return m
    return None


P = {u: Phone(u, "10.0.0.%s" % u[-1]) for u in ("1001", "1002", "1003", "1004")}


def test_feature_code_answered_at_once_with_its_reason():
    eng, dp, lines = pbx_engine({"DND": "1003"})
    registered(eng, P["1001"])
    out = eng.receive(P["1001"].invite("*78", "fc-1"), P["1001"].addr, 10)
    m = final(out, P["1001"].addr)
    assert (m.status, m.reason) == (480, "Do Not Disturb On")
    assert dp.view()["1001"]["dnd"] is True
    assert ("info", "feature *78 from 1001: 480 Do Not Disturb On") in lines
    assert [d for _, d in sent(out)] == [P["1001"].addr] * 2  # 100 and the answer, nothing else


def test_feature_codes_refused_for_a_password_user_without_auth_on_invites():
    eng, dp, _ = pbx_engine({"DND": "1003"}, users="1001:pw,1002", SIP_AUTH="register")
    out = eng.receive(P["1001"].invite("*78", "fc-2"), P["1001"].addr, 10)
    assert final(out, P["1001"].addr).status == 403 and "1001" not in dp.view()
    out = eng.receive(P["1002"].invite("*78", "fc-3"), P["1002"].addr, 10)  # no password
    assert final(out, P["1002"].addr).status == 480 and dp.view()["1002"]["dnd"]


def test_hunt_stage_timeout_cancels_and_rings_the_next_member():
    eng, dp, _ = pbx_engine({"HUNT_GROUPS": "601=1001,1002", "HUNT_TIMEOUT": "2"})
    registered(eng, P["1001"], P["1002"], P["1004"])
    out = eng.receive(P["1004"].invite("601", "hunt-1"), P["1004"].addr, 100)
    assert [d for line, d in sent(out) if line.startswith("INVITE")] == [P["1001"].addr]
    invite = [data for data, d in out if d == P["1001"].addr][0]
    eng.receive(P["1001"].answer(invite, 180, "Ringing"), P["1001"].addr, 200)
    assert eng.next_due(300) <= 1800
    out = eng.tick(2100)
    got = sent(out)
    assert ("CANCEL sip:1001@10.0.0.1:5060", P["1001"].addr) in got
    assert ("INVITE sip:1002@10.0.0.2:5060", P["1002"].addr) in got
    assert final(out, P["1004"].addr) is None  # the caller keeps waiting


def test_messages_to_an_alias_reach_its_phone_but_groups_only_take_calls():
    eng, dp, _ = pbx_engine({"ALIASES": "alice=1001, team=600", "RING_GROUPS": "600=1001,1002"})
    registered(eng, P["1001"], P["1002"])
    msg = P["1002"].request("MESSAGE", "sip:alice@%s" % PROXY[0], "<sip:alice@%s>" % PROXY[0],
                            "msg-1", 1, body="hi")
    assert ("MESSAGE sip:1001@10.0.0.1:5060", P["1001"].addr) in sent(eng.receive(msg,
                                                                                  P["1002"].addr,
                                                                                  10))
    msg = P["1002"].request("MESSAGE", "sip:team@%s" % PROXY[0], "<sip:team@%s>" % PROXY[0],
                            "msg-2", 1, body="hi")
    assert final(eng.receive(msg, P["1002"].addr, 10), P["1002"].addr).status == 404


def test_forwarded_call_keeps_the_original_callee_in_the_call_record():
    eng, dp, _ = pbx_engine({"FORWARD_ALWAYS": "1001=1002"})
    registered(eng, P["1002"], P["1004"])
    out = eng.receive(P["1004"].invite("1001", "fwd-1"), P["1004"].addr, 10)
    assert ("INVITE sip:1002@10.0.0.2:5060", P["1002"].addr) in sent(out)
    calls = eng.active_calls(20)
    assert [(c["caller"], c["callee"]) for c in calls] == [("1004", "1001")]


def test_bad_settings_are_console_warnings():
    eng, dp, lines = pbx_engine({"RING_GROUPS": "600=1001,1099"})
    assert ("warning", "settings: RING_GROUPS: 1099 in group 600 is not an extension; "
            "ignored") in lines
    assert dp.groups["600"] == (False, ["1001"])


def test_host_mode_lists_the_same_pbx_settings_as_the_dialplan():
    from switchboard.config import PBX_SETTINGS  # what host mode and the board check
    from switchboard.dialplan import NAMES

    assert PBX_SETTINGS == NAMES


# host mode (switchboard.host, what code.py runs) up to "Switchboard ready", without its loop
RUNNER = (
    "import sys\n"
    "sys.path.insert(0, 'lib')\n"
    "from switchboard.app import App\n"
    "App.run = lambda self, running, idle: None\n"
    "from switchboard.host import main\n"
    "main()\n"
)


def imported_modules(settings):
    """The switchboard modules host mode imports with these settings (-X importtime)."""
    env = dict(os.environ)
    env.update(settings)
    env.update({"SIP_HOST": "127.0.0.1", "SIP_PORT": str(free_port()), "HTTP_PORT": "0",
                "PYTHONPROFILEIMPORTTIME": "1"})
    proc = subprocess.run([sys.executable, "-c", RUNNER], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=30)
    assert "Switchboard ready" in proc.stdout, proc.stdout + proc.stderr
    return {line.split("|")[-1].strip() for line in proc.stderr.splitlines()
            if "switchboard." in line}


def test_dialplan_is_imported_only_when_a_pbx_setting_is_set():
    plain = imported_modules({})
    assert "switchboard.engine" in plain
    assert not {"switchboard.dialplan", "switchboard.pbx", "switchboard.persist"} & plain
    pbx = imported_modules({"DND": "1001", "STATE_FILE": "/nonexistent-dir/state"})
    assert {"switchboard.dialplan", "switchboard.pbx", "switchboard.persist"} <= pbx


def test_intercom_call_info_names_our_current_address():
    eng, dp, _ = pbx_engine({"INTERCOM": "1002"})
    registered(eng, P["1002"], P["1001"])
    eng.set_address("10.0.0.77", 5060)  # DHCP gave the board a new address
    caller = Phone("1001", P["1001"].ip, domain="10.0.0.77")
    out = eng.receive(caller.invite("*801002", "ic-1"), caller.addr, 10)
    invite = parse([data for data, d in out if d == P["1002"].addr][0])
    assert invite.get("call-info") == "<sip:10.0.0.77:5060>;answer-after=0"
    assert invite.get("alert-info") == "<http://127.0.0.1>;info=alert-autoanswer"


def test_busy_plain_extension_with_a_pbx_configured_relays_the_486():
    """A call to an extension that is in no group ends in the router's plain lookup stage
    (plan None); its 486 reaches the caller (it once raised in the response context)."""
    eng, dp, _ = pbx_engine({"RING_GROUPS": "600=1003,1004"})
    registered(eng, P["1001"], P["1002"])
    out = eng.receive(P["1001"].invite("1002", "plain-busy"), P["1001"].addr, 100)
    invite = [data for data, d in out if d == P["1002"].addr][0]
    out = eng.receive(P["1002"].answer(invite, 486, "Busy Here"), P["1002"].addr, 200)
    m = final(out, P["1001"].addr)
    assert m is not None and m.status == 486
    assert eng.counters["internal_errors"] == 0
