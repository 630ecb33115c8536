"""The trunk (lib/switchboard/trunk.py) through the sans-I/O engine: settings, digest,
registration and back-off, the B2BUA's legs, DIDs. End to end against Kamailio:
tests/integration/test_trunk_kamailio.py."""

import hashlib
import subprocess
import sys

import pytest
from flows import Phone
from trunk_flows import UPSTREAM, Net, Upstream, find, new_trunk, run

from switchboard.auth import parse_credentials
from switchboard.message import parse
from switchboard.trunk import BACKOFF_MAX, Settings, credentials


def settings(**values):
    return Settings(values.get)


# settings ----------------------------------------------------------------------------
def test_settings_defaults_and_parsing():
    s = settings(TRUNK="sip:siteA@itsp.example.com:5070", TRUNK_PASSWORD="pw",
                 TRUNK_DIDS="+4930123456=600, +4930123457=1001")
    assert s.ok and not s.errors
    assert (s.user, s.host, s.port, s.domain) == ("siteA", "itsp.example.com", 5070,
                                                  "itsp.example.com:5070")
    assert (s.auth_user, s.expires, s.outbound, s.strip, s.inbound) == ("siteA", 300, "0", 1,
                                                                         "")
    assert s.dids == {"+4930123456": "600", "+4930123457": "1001"}
    s = settings(TRUNK="sip:u@10.0.0.1", TRUNK_OUTBOUND="*", TRUNK_AUTH_USER="auth-u")
    assert (s.port, s.domain, s.strip, s.auth_user) == (5060, "10.0.0.1", 0, "auth-u")
    assert settings(TRUNK="sip:u@10.0.0.1", TRUNK_OUTBOUND="00").strip == 2


@pytest.mark.parametrize("values, problem", [
    ({"TRUNK": "itsp.example.com"}, "TRUNK="),
    ({"TRUNK": "sip:itsp.example.com"}, "TRUNK="),
    ({"TRUNK": "sip:u@h", "TRUNK_EXPIRES": "10"}, "TRUNK_EXPIRES"),
    ({"TRUNK": "sip:u@h", "TRUNK_OUTBOUND": "9x"}, "TRUNK_OUTBOUND"),
    ({"TRUNK": "sip:u@h", "TRUNK_DIDS": "600"}, "TRUNK_DIDS"),
])
def test_bad_settings_are_reported(values, problem):
    s = settings(**values)
    assert any(e.startswith(problem) for e in s.errors), s.errors
    assert s.ok == (problem != "TRUNK=")


# digest --------------------------------------------------------------------------------
def test_credentials_match_the_rfc_examples():
    """RFC 2617 §3.5 (MD5, qop auth) and RFC 7616 §3.9.1 (SHA-256 and MD5)."""
    got = parse_credentials(credentials(
        'Digest realm="testrealm@host.com", qop="auth,auth-int", '
        'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41"',
        "GET", "/dir/index.html", "Mufasa", "Circle Of Life", "0a4f113b"))
    assert got["response"] == "6629fae49393a05397450978507c4ef1"
    assert got["opaque"] == "5ccc069c403ebaf9f0171e9517f40e41" and got["nc"] == "00000001"
    for algorithm, response in (
            ("SHA-256", "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"),
            ("MD5", "8ca523f5e9506fed4657c9700eebdbec")):
        got = parse_credentials(credentials(
            'Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm=%s, '
            'nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", '
            'opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"' % algorithm,
            "GET", "/dir/index.html", "Mufasa", "Circle of Life",
            "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"))
        assert got["response"] == response and got["algorithm"] == algorithm


def test_credentials_refuse_what_they_cannot_do():
    assert credentials('Digest realm="r", nonce="n", qop="auth-int"', "INVITE", "sip:x",
                       "u", "p", "c") is None
    assert credentials('Digest realm="r", nonce="n", algorithm=SHA-512-256', "INVITE",
                       "sip:x", "u", "p", "c") is None
    plain = parse_credentials(credentials('Digest realm="r", nonce="n"', "INVITE", "sip:x",
                                          "u", "p", "c"))
    md5 = hashlib.md5
    ha1 = md5(b"u:r:p").hexdigest()
    ha2 = md5(b"INVITE:sip:x").hexdigest()
    assert plain["response"] == md5(("%s:n:%s" % (ha1, ha2)).encode()).hexdigest()
    assert "qop" not in plain


# the flows -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def transcript():
    lines = []
    run(lines.append)
    return "\n".join(lines)


def datagrams(text, dest):
    """The datagrams of a transcript sent to dest (ip, port)."""
    out = []
    for block in text.split("\n-> ")[1:]:
        head, _, body = block.partition("\n")
        if head.split(" ")[0] == "%s:%d" % dest:
            out.append(body)
    return out


def test_register_answers_the_challenge_in_the_upstream_realm(transcript):
    registers = [d for d in datagrams(transcript, UPSTREAM) if d.startswith("REGISTER")]
    c = parse_credentials(parse(registers[1].encode()).get("authorization"))
    assert c["realm"] == "itsp.test" and c["username"] == "siteA" and c["qop"] == "auth"
    md5 = hashlib.md5
    ha1 = md5(b"siteA:itsp.test:pw-A").hexdigest()
    ha2 = md5(b"REGISTER:sip:10.0.0.100").hexdigest()
    assert c["response"] == md5(("%s:nonce-1:%s:%s:auth:%s" % (
        ha1, c["nc"], c["cnonce"], ha2)).encode()).hexdigest()
    assert "trunk registered 200 OK 10.0.0.100:5060 next 90 expires 120" in transcript


def test_phone_never_sees_challenges_or_credentials(transcript):
    to_alice = datagrams(transcript, ("10.0.0.11", 5060))
    assert to_alice
    for d in to_alice:
        assert not d.startswith(("SIP/2.0 401", "SIP/2.0 407"))
        assert "uthorization" not in d and "uthenticate" not in d and "pw-A" not in d
    assert "pw-A" not in transcript


def test_call_out_leg_has_its_own_identity_and_cseq(transcript):
    up = [d for d in datagrams(transcript, UPSTREAM) if "Call-ID: out-" not in d]
    invites = [parse(d.encode()) for d in up if d.startswith("INVITE")]
    first, retry = invites[0], invites[1]
    assert first.uri == "sip:5550100@10.0.0.100"
    assert first.get("from").startswith('"1001" <sip:siteA@10.0.0.100>;tag=')
    assert first.get("p-asserted-identity") == "<sip:siteA@10.0.0.100>"
    assert first.get("call-id") == retry.get("call-id") != "out-1"
    assert (first.cseq(), retry.cseq()) == ((1, "INVITE"), (2, "INVITE"))
    c = parse_credentials(retry.get("proxy-authorization"))
    assert c["algorithm"] == "SHA-256" and c["uri"] == "sip:5550100@10.0.0.100"
    sha = hashlib.sha256
    ha1 = sha(b"siteA:itsp.test:pw-A").hexdigest()
    ha2 = sha(b"INVITE:sip:5550100@10.0.0.100").hexdigest()
    assert c["response"] == sha(("%s:nonce-1:%s:%s:auth:%s" % (
        ha1, c["nc"], c["cnonce"], ha2)).encode()).hexdigest()
    acks = [parse(d.encode()) for d in up if d.startswith("ACK")]
    assert [a.cseq()[0] for a in acks][:2] == [1, 2]  # the 407's ACK, then the 2xx's


def test_bye_challenged_upstream_is_sent_again_with_the_next_cseq(transcript):
    up = [parse(d.encode()) for d in datagrams(transcript, UPSTREAM) if d.startswith("BYE")]
    assert [b.cseq()[0] for b in up] == [2, 3]
    assert up[0].get("proxy-authorization") is None
    assert parse_credentials(up[1].get("proxy-authorization"))["uri"] == \
        "sip:itsp@10.0.0.100:5060"


def test_upstream_bye_reaches_the_phone_in_its_dialog(transcript):
    to_alice = [parse(d.encode()) for d in datagrams(transcript, ("10.0.0.11", 5060))
                if d.startswith("BYE")]
    bye = to_alice[0]
    assert bye.get("call-id") == "out-1" and bye.uri == "sip:1001@10.0.0.11:5060"
    assert bye.get("to") == "<sip:1001@10.0.0.1>;tag=t1001"  # the phone's own From
    assert bye.cseq() == (1, "BYE")


def test_did_goes_to_its_extension_and_strangers_cannot_use_it(transcript):
    to_bob = [d for d in datagrams(transcript, ("10.0.0.12", 5060)) if d.startswith("INVITE")]
    assert to_bob[0].startswith("INVITE sip:1002@10.0.0.12:5060 SIP/2.0")
    to_stranger = datagrams(transcript, ("10.0.0.99", 5060))
    assert to_stranger[-1].startswith("SIP/2.0 404")


def test_refused_refresh_backs_off_and_calls_get_503_at_once(transcript):
    assert "trunk failing 403 Forbidden 10.0.0.100:5060 next 30" in transcript
    assert "not registered: 403 Forbidden; next try in 30 s" in transcript
    assert "trunk failing 408 Request Timeout 10.0.0.100:5060 next 60" in transcript
    to_alice = [d for d in datagrams(transcript, ("10.0.0.11", 5060)) if "Call-ID: out-3" in d]
    assert to_alice[1].startswith("SIP/2.0 503 Service Unavailable (trunk not registered)")


# pieces --------------------------------------------------------------------------------
def registered(settings=None, overrides=None):
    """A trunk registered at the fake upstream, alice (1001) registered with us."""
    engine, trunk = new_trunk(settings, overrides)
    net = Net(engine, lambda text: None)
    up = Upstream()
    register = find(net.tick(10), "REGISTER", UPSTREAM)
    net.send(up, up.registered(register, 120))
    assert trunk.registered(net.now)
    alice = Phone("1001", "10.0.0.11")
    net.send(alice, alice.register())
    return engine, trunk, net, up, alice


def test_backoff_doubles_to_ten_minutes_and_success_resets_it():
    engine, trunk = new_trunk()
    net = Net(engine, lambda text: None)
    up = Upstream()
    waits = []
    for _ in range(7):
        out = net.tick(trunk.next_try - net.now)
        register = find(out, "REGISTER", UPSTREAM)
        net.send(up, up.answer(register, 403, "Forbidden", tag="itsp"), advance=0)
        waits.append(trunk.next_try - net.now)
    assert waits == [30000, 60000, 120000, 240000, 480000, BACKOFF_MAX, BACKOFF_MAX]
    register = find(net.tick(trunk.next_try - net.now), "REGISTER", UPSTREAM)
    net.send(up, up.registered(register, 300), advance=0)
    assert trunk.state == "registered" and trunk.backoff == 30000
    assert trunk.next_try - net.now == 270000  # refreshed 30 s before it expires


def test_challenges_answered_twice_then_a_failure_not_a_loop():
    engine, trunk = new_trunk()
    net = Net(engine, lambda text: None)
    up = Upstream()
    register = find(net.tick(10), "REGISTER", UPSTREAM)
    register = find(net.send(up, up.challenge(register, 401)), "REGISTER", UPSTREAM)
    register = find(net.send(up, up.challenge(register, 401, nonce="n2")), "REGISTER",
                    UPSTREAM)
    out = net.send(up, up.challenge(register, 401, nonce="n3"))
    assert not [d for d, _ in out if d.startswith(b"REGISTER")]
    assert (trunk.state, trunk.last_status) == ("failing", 401)


def test_reregisters_at_once_on_a_new_address():
    engine, trunk, net, up, alice = registered()
    engine.set_address("10.0.0.2", 5060)
    register = parse(find(net.tick(10), "REGISTER", UPSTREAM))
    assert register.get("contact") == "<sip:siteA@10.0.0.2:5060>"
    assert register.cseq()[0] == 2


def test_only_registered_phones_call_out():
    engine, trunk, net, up, alice = registered()
    mallory = Phone("1002", "10.0.0.66")  # a known extension, not registered from there
    out = net.send(mallory, mallory.invite("05550100", "m-1"))
    assert find(out, "SIP/2.0 403", mallory.addr)
    assert not [d for d, dest in out if dest == UPSTREAM]


def test_outbound_rules_prefix_and_any_number():
    engine, trunk, net, up, alice = registered({"TRUNK_OUTBOUND": "*"},
                                               {"SIP_USERS": "1001,1002"})
    out = net.send(alice, alice.invite("+4930555", "any-1"))
    assert parse(find(out, "INVITE", UPSTREAM)).uri == "sip:+4930555@10.0.0.100"
    out = net.send(alice, alice.invite("1002", "local-1"))  # ours: not the trunk's
    assert not [d for d, dest in out if dest == UPSTREAM]
    assert find(out, "SIP/2.0 480", alice.addr)


def test_cancel_before_answer_and_busy_are_relayed():
    engine, trunk, net, up, alice = registered()
    invite = alice.invite("05550100", "c-1")
    invite_up = find(net.send(alice, invite), "INVITE", UPSTREAM)
    net.send(up, up.answer(invite_up, 180, "Ringing", tag="far"))
    out = net.send(alice, alice.cancel(invite))
    assert find(out, "SIP/2.0 200", alice.addr) and find(out, "SIP/2.0 487", alice.addr)
    cancel = parse(find(out, "CANCEL", UPSTREAM))
    assert cancel.cseq() == (1, "CANCEL") and cancel.get("call-id") == \
        parse(invite_up).get("call-id")
    assert trunk.status(net.now)["calls"] == 0
    # the upstream answered before the CANCEL reached it: ACKed and hung up at once
    out = net.send(up, up.answer(invite_up, 200, "OK", tag="far", sdp=True))
    assert find(out, "ACK", UPSTREAM) and find(out, "BYE", UPSTREAM)
    assert not [d for d, dest in out if dest == alice.addr]
    invite = alice.invite("05550100", "b-1")
    invite_up = find(net.send(alice, invite), "INVITE", UPSTREAM)
    out = net.send(up, up.answer(invite_up, 486, "Busy Here", tag="far"))
    assert find(out, "SIP/2.0 486", alice.addr)
    assert find(out, "ACK", UPSTREAM)  # the upstream's non-2xx ACKed on its leg


def test_upstream_refusing_our_credentials_is_a_403_for_the_phone():
    engine, trunk, net, up, alice = registered()
    invite_up = find(net.send(alice, alice.invite("05550100", "r-1")), "INVITE", UPSTREAM)
    for nonce in ("a", "b"):
        invite_up = find(net.send(up, up.challenge(invite_up, 407, nonce=nonce)), "INVITE",
                         UPSTREAM)
    out = net.send(up, up.challenge(invite_up, 407, nonce="c"))
    final = find(out, "SIP/2.0 403", alice.addr)
    assert b"Proxy-Authenticate" not in final


def test_trunk_module_is_not_imported_without_trunk():
    code = ("import sys; sys.path.insert(0, 'lib'); "
            "import switchboard.app, switchboard.engine, switchboard.http; "
            "print('switchboard.trunk' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"


def test_transfer_refer_and_notify_cross_the_legs():
    """The phone transfers the outside party (REFER): the upstream gets a REFER of ours with
    the Refer-To, the next CSeq and the trunk credentials when challenged; its 202 and its
    NOTIFY come back into the phone's dialog."""
    engine, trunk, net, up, alice = registered()
    invite_up = find(net.send(alice, alice.invite("05550100", "x-1")), "INVITE", UPSTREAM)
    ok = find(net.send(up, up.answer(invite_up, 200, "OK", tag="far", sdp=True)),
              "SIP/2.0 200", alice.addr)
    net.send(alice, alice.in_dialog("ACK", ok, 1))
    refer = alice.in_dialog("REFER", ok, 2).replace(
        b"Content-Length: 0", b"Refer-To: <sip:5550111@itsp.test>\r\n"
                              b"Contact: <sip:1001@10.0.0.11:5060>\r\nContent-Length: 0")
    refer_up = find(net.send(alice, refer), "REFER", UPSTREAM)
    m = parse(refer_up)
    assert m.get("refer-to") == "<sip:5550111@itsp.test>" and m.cseq() == (2, "REFER")
    assert m.get("call-id") == parse(invite_up).get("call-id")
    refer_up = find(net.send(up, up.challenge(refer_up, 407)), "REFER", UPSTREAM)
    assert parse(refer_up).cseq() == (3, "REFER")
    out = net.send(up, up.answer(refer_up, 202, "Accepted", tag="far"))
    assert find(out, "SIP/2.0 202", alice.addr)
    notify = up.in_dialog_as_callee("NOTIFY", invite_up, "far", 2).replace(
        b"Content-Length: 0\r\n\r\n",
        b"Event: refer\r\nSubscription-State: terminated;reason=noresource\r\n"
        b"Content-Type: message/sipfrag\r\nContent-Length: 16\r\n\r\nSIP/2.0 200 OK\r\n")
    to_alice = parse(find(net.send(up, notify), "NOTIFY", alice.addr))
    assert to_alice.get("call-id") == "x-1" and to_alice.get("event") == "refer"
    assert to_alice.body == b"SIP/2.0 200 OK\r\n"
    assert to_alice.get("subscription-state") == "terminated;reason=noresource"
    out = net.send(alice, alice.answer(find([(to_alice.to_bytes(), alice.addr)], "NOTIFY"),
                                       200, "OK"))
    assert find(out, "SIP/2.0 200", UPSTREAM)


def test_interval_too_brief_asks_again_with_min_expires():
    engine, trunk = new_trunk({"TRUNK_EXPIRES": "60"})
    net = Net(engine, lambda text: None)
    up = Upstream()
    register = find(net.tick(10), "REGISTER", UPSTREAM)
    assert parse(register).get("expires") == "60"
    too_brief = up.answer(register, 423, "Interval Too Brief", tag="itsp").replace(
        b"Content-Length", b"Min-Expires: 600\r\nContent-Length")
    register = find(net.send(up, too_brief), "REGISTER", UPSTREAM)
    assert parse(register).get("expires") == "600"
    assert parse(register).cseq()[0] == 2
    net.send(up, up.registered(register, 600))
    assert trunk.state == "registered"


def test_a_stranger_knowing_the_call_id_cannot_hang_up():
    engine, trunk, net, up, alice = registered()
    invite_up = find(net.send(alice, alice.invite("05550100", "s-1")), "INVITE", UPSTREAM)
    ok = find(net.send(up, up.answer(invite_up, 200, "OK", tag="far", sdp=True)),
              "SIP/2.0 200", alice.addr)
    net.send(alice, alice.in_dialog("ACK", ok, 1))
    mallory = Phone("1001", "10.0.0.66")
    out = net.send(mallory, mallory.in_dialog("BYE", ok, 2))
    assert not [d for d, dest in out if dest == UPSTREAM]
    assert find(out, "SIP/2.0 481", mallory.addr)
    evil = up.in_dialog_as_callee("BYE", invite_up, "far", 1)
    out = net.send(Phone("x", "10.0.0.67"), evil)
    assert not [d for d, dest in out if dest == alice.addr]
    assert trunk.status(net.now)["calls"] == 1


def test_late_offer_answer_in_the_ack_crosses():
    """An INVITE without SDP: the upstream's 200 carries the offer, the phone's ACK the
    answer, which goes on in the upstream ACK."""
    engine, trunk, net, up, alice = registered()
    invite = alice.request("INVITE", "sip:05550100@10.0.0.1:5060", "<sip:05550100@10.0.0.1>",
                           "late-1", 1, ["Contact: %s" % alice.contact()])
    invite_up = find(net.send(alice, invite), "INVITE", UPSTREAM)
    assert parse(invite_up).body == b""
    ok = find(net.send(up, up.answer(invite_up, 200, "OK", tag="far", sdp=True)),
              "SIP/2.0 200", alice.addr)
    assert b"m=audio 5000" in ok
    answer = b"v=0\r\nm=audio 4002 RTP/AVP 0\r\n"
    ack = alice.in_dialog("ACK", ok, 1).replace(
        b"Content-Length: 0\r\n\r\n",
        b"Content-Type: application/sdp\r\nContent-Length: %d\r\n\r\n" % len(answer) + answer)
    ack_up = parse(find(net.send(alice, ack), "ACK", UPSTREAM))
    assert ack_up.body == answer and ack_up.get("content-type") == "application/sdp"
    assert ack_up.cseq() == (1, "ACK")


def test_a_host_name_is_resolved_by_the_shell_before_each_register():
    """The core never resolves: it asks (want_resolve), the shell's Resolver answers before
    the next tick; a failed lookup is a failing state and a back-off."""
    from flows import new_engine
    from trunk_flows import Box

    from switchboard.trunk import install

    asked = []
    answers = [OSError("no DNS server"), "10.0.0.100"]

    def resolve(name):
        asked.append(name)
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    engine = new_engine()
    box = Box(engine)
    values = {"TRUNK": "sip:siteA@itsp.example.net", "TRUNK_PASSWORD": "pw-A"}
    trunk = install(box, values.get, resolve)
    resolver = box.services[0]
    net = Net(engine, lambda text: None)
    assert not net.tick(10) and trunk.want_resolve and trunk.server is None
    resolver.poll(net.now)
    assert asked == ["itsp.example.net"]
    assert (trunk.state, trunk.last_reason) == ("failing",
                                                "cannot resolve itsp.example.net: no DNS server")
    assert not net.tick(29000)
    net.tick(1000)
    resolver.poll(net.now)
    register = parse(find(net.tick(10), "REGISTER", UPSTREAM))
    assert register.uri == "sip:itsp.example.net" and asked == ["itsp.example.net"] * 2
    assert not trunk.want_resolve


def test_upstream_options_and_requests_for_ended_calls():
    engine, trunk, net, up, alice = registered()
    options = up.request("OPTIONS", "sip:siteA@10.0.0.1:5060", "<sip:siteA@10.0.0.100>",
                         "ping-1", 1)
    assert find(net.send(up, options), "SIP/2.0 200", UPSTREAM)
    invite_up = find(net.send(alice, alice.invite("05550100", "e-1")), "INVITE", UPSTREAM)
    ok = find(net.send(up, up.answer(invite_up, 200, "OK", tag="far", sdp=True)),
              "SIP/2.0 200", alice.addr)
    net.send(alice, alice.in_dialog("ACK", ok, 1))
    net.send(up, up.in_dialog_as_callee("BYE", invite_up, "far", 1))
    late = up.in_dialog_as_callee("INFO", invite_up, "far", 2)
    out = net.send(up, late)
    assert find(out, "SIP/2.0 481", UPSTREAM)
    assert not [d for d, dest in out if dest == alice.addr]


def test_upstream_requests_are_not_challenged_with_sip_auth_all():
    """SIP_AUTH=all challenges calls from users with a password; the upstream has none of
    our credentials, so its requests pass (known by address) even with such a From user."""
    from flows import new_config, new_engine
    from trunk_flows import SETTINGS, Box

    from switchboard.auth import Auth
    from switchboard.trunk import install

    config = new_config({"SIP_USERS": "1001:secret,1002", "SIP_AUTH": "all"})
    engine = new_engine(config=config, auth=Auth(config, b"0123456789abcdef"))
    install(Box(engine), SETTINGS.get)
    net = Net(engine, lambda text: None)
    bob = Phone("1002", "10.0.0.12")
    net.send(bob, bob.register())
    up = Upstream()
    call = up.request("INVITE", "sip:siteA@10.0.0.1:5060", "<sip:+4930123456@itsp.test>",
                      "auth-in-1", 1, ["Contact: <sip:itsp@10.0.0.100>"], "v=0\r\n")
    call = call.replace(b"From: <sip:itsp@", b"From: <sip:1001@")
    out = net.send(up, call)
    assert find(out, "INVITE sip:1002@", bob.addr)
    stranger = Phone("1001", "10.0.0.99")  # the same From from elsewhere is challenged
    out = net.send(stranger, stranger.invite("1002", "auth-in-2"))
    assert find(out, "SIP/2.0 407", stranger.addr)


def test_groups_of_the_dialplan_are_ours_not_the_trunks():
    """With TRUNK_OUTBOUND = "*", a ring group's number and feature codes stay local; a call
    in for the group (its number in the To) rings it."""
    from switchboard.pbx import install as install_pbx

    engine, trunk, net, up, alice = registered({"TRUNK_OUTBOUND": "*"},
                                               {"SIP_USERS": "1001,1002"})
    values = {"RING_GROUPS": "600=1001,1002"}
    install_pbx(engine, values.get, lambda level, text: None)
    bob = Phone("1002", "10.0.0.12")
    net.send(bob, bob.register())
    out = net.send(alice, alice.invite("600", "g-1"))
    assert not [d for d, dest in out if dest == UPSTREAM]
    assert find(out, "INVITE sip:1002@", bob.addr)
    call = up.request("INVITE", "sip:siteA@10.0.0.1:5060", "<sip:600@itsp.test>", "g-2", 1,
                      ["Contact: <sip:itsp@10.0.0.100>"], "v=0\r\n")
    out = net.send(up, call)
    assert find(out, "INVITE sip:1001@", alice.addr) and find(out, "INVITE sip:1002@", bob.addr)
    out = net.send(alice, alice.invite("*78", "g-3"))  # a feature code (DND on)
    assert not [d for d, dest in out if dest == UPSTREAM]
    finals = [d for d, dest in out if dest == alice.addr and not d.startswith(b"SIP/2.0 1")]
    assert b"Do Not Disturb" in finals[0]  # the dialplan answered it


def test_shift_times_moves_every_stored_time_to_the_new_epoch():
    """A board's clock starts a new epoch every 2**28 ms (boot.epochs): after shift_times the
    refresh and a REGISTER's retransmissions still happen at the same moments. (The engine
    cannot shift its own times yet, so its flood limit, which would see time run backwards,
    is off here.)"""
    engine, trunk, net, up, alice = registered(overrides={"RATE_LIMIT": "0"})
    shift = 1 << 28
    refresh_in = trunk.next_try - net.now
    trunk.shift_times(shift)
    net.now -= shift
    assert not [d for d, dest in net.tick(refresh_in - 20) if dest == UPSTREAM]
    register = find(net.tick(20), "REGISTER", UPSTREAM)  # the refresh, on time
    trunk.shift_times(shift)
    net.now -= shift
    out = net.tick(500)  # Timer E: the unanswered REGISTER again after T1
    assert find(out, "REGISTER", UPSTREAM) == register
    net.send(up, up.registered(register, 120))
    assert trunk.registered(net.now) and trunk.next_try - net.now == 90000


def test_a_board_profile_pays_for_the_trunk_from_its_tables():
    """The board's table limits come from its heap budget less its imports
    (switchboard.profiles): with TRUNK set the trunk's 19 KB come out of the tables."""
    from switchboard.profiles import defaults

    without = defaults("wiznet_w5500_evb_pico2", {}.get)[0]
    with_trunk = defaults("wiznet_w5500_evb_pico2", {"TRUNK": "sip:a@10.0.0.1"}.get)[0]
    assert with_trunk["MAX_BINDINGS"] < without["MAX_BINDINGS"]
    assert with_trunk["MAX_TRANSACTIONS"] < without["MAX_TRANSACTIONS"]
    # an RP2040 (150 KB budget) with digest and a trunk is left with the tables' floors
    tight = defaults("wiznet_w5500_evb_pico", {"TRUNK": "sip:a@10.0.0.1"}.get)[0]
    assert (tight["MAX_BINDINGS"], tight["MAX_TRANSACTIONS"], tight["MAX_CALLS"]) == (8, 4, 2)
