"""Digest authentication (RFC 3261 §22, RFC 7616, RFC 8760) through the engine."""

import hashlib

from flows import Phone, new_config, new_engine

from switchboard.auth import Auth, hmac, parse_credentials
from switchboard.message import parse

SECRET = b"0123456789abcdef"


class Box:
    def __init__(self, **overrides):
        settings = {"SIP_USERS": "1001:secret1,1002:secret2,1003",
                    "SIP_AUTH_ALGORITHMS": "SHA-256,MD5"}
        settings.update(overrides)
        config = new_config(settings)
        self.auth = Auth(config, SECRET)
        self.engine = new_engine(config=config, auth=self.auth)
        self.now = 1_000_000

    def send(self, phone, data, advance=10, source=None):
        self.now += advance
        out = self.engine.receive(data, source or phone.addr, self.now)
        return [parse(d) for d, _ in out]


def challenges(resp, header="www-authenticate"):
    out = {}
    for value in resp.values(header) if header in ("",) else [h[2] for h in resp.headers
                                                              if h[0] == header]:
        c = parse_credentials(value)
        out[c["algorithm"]] = c
    return out


def digest(algorithm, user, password, realm, method, uri, nonce, nc="00000001", cnonce="abc"):
    h = {"MD5": hashlib.md5, "SHA-256": hashlib.sha256}[algorithm]

    def hx(s):
        return h(s.encode()).hexdigest()

    ha1 = hx("%s:%s:%s" % (user, realm, password))
    ha2 = hx("%s:%s" % (method, uri))
    response = hx("%s:%s:%s:%s:auth:%s" % (ha1, nonce, nc, cnonce, ha2))
    return ('Digest username="%s", realm="%s", nonce="%s", uri="%s", response="%s", '
            'algorithm=%s, qop=auth, nc=%s, cnonce="%s"'
            % (user, realm, nonce, uri, response, algorithm, nc, cnonce))


def with_header(data, header):
    return data.replace(b"\r\nContent-Length", ("\r\n%s\r\nContent-Length" % header).encode(), 1)


def register_with(box, phone, password, algorithm="MD5", cseq=2, uri=None, user=None, nc=1):
    first = box.send(phone, phone.register(cseq=cseq))[0]
    assert first.status == 401
    c = challenges(first)[algorithm]
    header = "Authorization: " + digest(algorithm, user or phone.user, password, c["realm"],
                                        "REGISTER", uri or "sip:10.0.0.1", c["nonce"],
                                        nc="%08x" % nc)
    data = with_header(phone.register(cseq=cseq + 1), header)
    return box.send(phone, data)[0], data


def test_challenge_offers_sha256_and_md5_with_qop_auth():
    box = Box()
    alice = Phone("1001", "10.0.0.11")
    resp = box.send(alice, alice.register())[0]
    assert resp.status == 401
    offered = challenges(resp)
    assert set(offered) == {"SHA-256", "MD5"}
    assert [h[2].split("algorithm=")[1].split(",")[0] for h in resp.headers
            if h[0] == "www-authenticate"] == ["SHA-256", "MD5"]
    for c in offered.values():
        assert c["qop"] == "auth" and c["realm"] == "10.0.0.1"
    assert box.engine.location.count == 0


def test_md5_and_sha256_registration_succeed():
    for algorithm in ("MD5", "SHA-256"):
        box = Box()
        alice = Phone("1001", "10.0.0.11")
        resp, _ = register_with(box, alice, "secret1", algorithm)
        assert resp.status == 200, algorithm
        assert box.engine.location.count == 1


def test_wrong_password_and_wrong_user_are_refused():
    box = Box()
    alice = Phone("1001", "10.0.0.11")
    resp, _ = register_with(box, alice, "nope")
    assert resp.status == 401 and box.engine.location.count == 0
    # 1002's valid credentials do not register 1001
    resp, _ = register_with(box, alice, "secret2", user="1002")
    assert resp.status == 401 and box.engine.location.count == 0


def test_digest_uri_must_match_request():
    box = Box()
    alice = Phone("1001", "10.0.0.11")
    resp, _ = register_with(box, alice, "secret1", uri="sip:10.0.0.99")
    assert resp.status == 401


def test_replayed_authorization_is_refused():
    box = Box()
    alice = Phone("1001", "10.0.0.11")
    resp, data = register_with(box, alice, "secret1")
    assert resp.status == 200
    # the same bytes again are a retransmission, answered from the transaction
    assert box.send(alice, data)[0].status == 200
    # a captured Authorization in a new request (new branch, same nc) is a replay
    replay = data.replace(b"branch=z9hG4bK", b"branch=z9hG4bKreplay", 1)
    replay = replay.replace(b"CSeq: 3 REGISTER", b"CSeq: 9 REGISTER")
    assert box.send(alice, replay)[0].status == 401
    assert box.auth.stats["replayed"] == 1


def test_stale_nonce_gets_stale_true():
    box = Box()
    alice = Phone("1001", "10.0.0.11")
    first = box.send(alice, alice.register())[0]
    c = challenges(first)["MD5"]
    box.now += 301_000
    header = "Authorization: " + digest("MD5", "1001", "secret1", c["realm"], "REGISTER",
                                        "sip:10.0.0.1", c["nonce"])
    resp = box.send(alice, with_header(alice.register(cseq=2), header))[0]
    assert resp.status == 401
    assert all(x.get("stale") == "true" for x in challenges(resp).values())


def test_forged_nonce_is_not_accepted():
    box = Box()
    alice = Phone("1001", "10.0.0.11")
    nonce = "%x.1.%s" % (box.now // 1000, "0" * 24)
    header = "Authorization: " + digest("MD5", "1001", "secret1", "10.0.0.1", "REGISTER",
                                        "sip:10.0.0.1", nonce)
    assert box.send(alice, with_header(alice.register(), header))[0].status == 401


def test_repeated_failures_throttled_then_released():
    box = Box()
    alice = Phone("1001", "10.0.0.11")
    for _ in range(5):
        register_with(box, alice, "bad")
    assert box.send(alice, alice.register(cseq=50))[0].status == 403
    other = Phone("1002", "10.0.0.12")  # another source is not affected
    assert register_with(box, other, "secret2")[0].status == 200
    box.now += 61_000
    assert register_with(box, alice, "secret1", cseq=60)[0].status == 200


def test_users_without_password_register_freely_and_passwords_not_kept():
    box = Box()
    carol = Phone("1003", "10.0.0.13")
    assert box.send(carol, carol.register())[0].status == 200
    assert "secret1" not in repr(box.engine.config.users)
    assert "secret1" not in repr(box.auth.__dict__)


def test_mode_all_challenges_invite_with_407():
    box = Box(SIP_AUTH="all")
    alice, bob = Phone("1001", "10.0.0.11"), Phone("1002", "10.0.0.12")
    assert register_with(box, bob, "secret2")[0].status == 200
    out = box.send(alice, alice.invite("1002", "a1"))
    assert [r.status for r in out] == [100, 407]
    c = challenges(out[1], "proxy-authenticate")["SHA-256"]
    header = "Proxy-Authorization: " + digest("SHA-256", "1001", "secret1", c["realm"], "INVITE",
                                              "sip:1002@10.0.0.1", c["nonce"])
    out = box.send(alice, with_header(alice.invite("1002", "a1", cseq=2), header))
    assert out[0].status == 100 and out[1].method == "INVITE"


def test_mode_register_lets_invite_through():
    box = Box()
    alice, bob = Phone("1001", "10.0.0.11"), Phone("1002", "10.0.0.12")
    register_with(box, bob, "secret2")
    out = box.send(alice, alice.invite("1002", "a1"))
    assert out[1].method == "INVITE"


def test_hmac_matches_rfc_4231_case_2():
    mac = hmac(hashlib.sha256, b"Jefe", b"what do ya want for nothing?")
    assert mac.hex() == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"


def test_default_mode_from_settings():
    assert new_engine({"SIP_USERS": "1001:x"}).config.sip_auth == "register"
    assert new_engine({"SIP_USERS": "1001"}).config.sip_auth == "off"
    cfg = new_engine({"SIP_USERS": "1001:x", "SIP_AUTH": "bogus"}).config
    assert cfg.sip_auth == "register" and cfg.errors


def test_nonce_and_failure_tables_are_bounded():
    from switchboard.auth import MAX_FAILING, MAX_NONCES

    box = Box(RATE_LIMIT=0)
    alice = Phone("1001", "10.0.0.11")
    sent = []
    for i in range(MAX_NONCES + 20):
        resp, data = register_with(box, alice, "secret1", cseq=10 * i + 1)
        assert resp.status == 200
        sent.append((i, data))
    assert len(box.auth.counts) == MAX_NONCES
    # the table keeps the newest MAX_NONCES nonces: each one's nc replayed in a new request
    # is refused, from the oldest kept to the newest
    for i, data in (sent[20], sent[50], sent[-2], sent[-1]):
        replay = data.replace(b"branch=z9hG4bK", b"branch=z9hG4bKreplay", 1)
        replay = replay.replace(b"CSeq: %d REGISTER" % (10 * i + 2),
                                b"CSeq: %d REGISTER" % (10 * i + 5))
        assert box.send(alice, replay)[0].status == 401
    assert box.auth.stats["replayed"] == 4
    for i in range(MAX_FAILING + 20):
        mallory = Phone("1001", "10.1.%d.%d" % (i // 200, i % 200))
        register_with(box, mallory, "wrong")
    assert len(box.auth.failing) == MAX_FAILING
    tables = box.engine.tables()
    assert tables["nonces"] == {"use": MAX_NONCES, "limit": MAX_NONCES}
    assert tables["failing_sources"]["use"] == MAX_FAILING


def test_default_offers_md5_only():
    """baresip 1.0, SIPp and sipsak give up on a challenge set that includes SHA-256."""
    box = Box(SIP_AUTH_ALGORITHMS="MD5")
    alice = Phone("1001", "10.0.0.11")
    resp = box.send(alice, alice.register())[0]
    assert list(challenges(resp)) == ["MD5"]
    assert new_engine({"SIP_USERS": "1001:x"}).config.auth_algorithms == ["MD5"]
    # credentials in an algorithm we did not offer are refused
    c = challenges(resp)["MD5"]
    header = "Authorization: " + digest("SHA-256", "1001", "secret1", c["realm"], "REGISTER",
                                        "sip:10.0.0.1", c["nonce"])
    assert box.send(alice, with_header(alice.register(cseq=2), header))[0].status == 401
    assert register_with(box, alice, "secret1", "MD5", cseq=5)[0].status == 200


def test_algorithm_setting_order_and_errors():
    cfg = new_engine({"SIP_AUTH_ALGORITHMS": "sha-256, md5"}).config
    assert cfg.auth_algorithms == ["SHA-256", "MD5"]
    cfg = new_engine({"SIP_AUTH_ALGORITHMS": "SHA-1"}).config
    assert cfg.auth_algorithms == ["MD5"] and "SHA-1" in cfg.errors[0]


def test_proxy_credentials_for_our_realm_are_not_forwarded():
    box = Box(SIP_AUTH="all")
    alice, bob = Phone("1001", "10.0.0.11"), Phone("1002", "10.0.0.12")
    register_with(box, bob, "secret2")
    out = box.send(alice, alice.invite("1002", "cred"))
    c = challenges(out[1], "proxy-authenticate")["MD5"]
    mine = "Proxy-Authorization: " + digest("MD5", "1001", "secret1", c["realm"], "INVITE",
                                            "sip:1002@10.0.0.1", c["nonce"])
    other = 'Proxy-Authorization: Digest realm="elsewhere", username="x", response="y"'
    data = with_header(with_header(alice.invite("1002", "cred", cseq=2), mine), other)
    out = box.send(alice, data)
    fwd = out[1]
    assert fwd.method == "INVITE"
    assert fwd.values("proxy-authorization") == [other.split(": ", 1)[1]]


def test_in_dialog_request_credentials_are_not_forwarded_either():
    box = Box(SIP_AUTH="all")
    alice, bob = Phone("1001", "10.0.0.11"), Phone("1002", "10.0.0.12")
    register_with(box, bob, "secret2")
    creds = 'Proxy-Authorization: Digest realm="10.0.0.1", username="1001", response="00"'
    bye = alice.request("BYE", "sip:1002@10.0.0.12:5060", "<sip:1002@10.0.0.1>;tag=b", "dlg", 3,
                        ["Route: <sip:10.0.0.1:5060;lr>", creds])
    out = box.send(alice, bye)
    assert out[0].method == "BYE" and out[0].get("proxy-authorization") is None


def test_passwords_are_not_kept():
    """Only HA1 digests stay: neither the users' table nor the SIP_USERS text keeps a password."""
    box = Box()
    config = box.engine.config
    assert config.users == {"1001": "", "1002": "", "1003": ""}
    for password in ("secret1", "secret2"):
        assert password not in repr(vars(config)) and password not in repr(vars(box.auth))
