"""Issue 11's classes of hostile input, in memory: each class, not one packet.

- a response nobody asked for, relayed "back" to an address taken from the message;
- addresses that would need a name lookup or IPv6;
- invalid requests that must not reach a registered phone;
- legal but unusual requests that must still go through;
- REGISTER contact limits applied before any binding changes.

The same classes over UDP against host mode and the board model: tests/integration/
test_hostile_udp.py and tests/integration/test_board_sip.py.
"""

import pytest
from flows import PROXY, Phone, new_engine, status

from switchboard.message import is_ipv4, parse

SOURCE = ("10.0.0.66", 5060)


def valid_dest(dest):
    """What the loop may pass to sendto: an IPv4 string and a port 1..65535."""
    return (isinstance(dest, tuple) and len(dest) == 2 and isinstance(dest[0], str)
            and is_ipv4(dest[0]) and isinstance(dest[1], int) and 0 < dest[1] < 65536)


def receive(engine, data, source, now):
    out = engine.receive(data, source, now)
    for _, dest in out:
        assert valid_dest(dest), dest
    assert engine.counters["internal_errors"] == 0
    return out


@pytest.fixture
def pbx():
    """An engine with 1001 and 1002 registered; returns (engine, alice, bob)."""
    engine = new_engine({"RATE_LIMIT": 0, "MAX_MESSAGE_SIZE": 8192})
    alice, bob = Phone("1001", "10.0.0.11"), Phone("1002", "10.0.0.12")
    for phone in (alice, bob):
        assert [status(d) for d, _ in receive(engine, phone.register(), phone.addr, 1000)] \
            == [200]
    return engine, alice, bob


def forged_response(second_via, code=200, method="INVITE"):
    """A response nobody asked for: our own Via on top, the attacker's choice below it."""
    return ("SIP/2.0 %d OK\r\n"
            "Via: SIP/2.0/UDP %s:%d;branch=z9hG4bKforged.1\r\n"
            "Via: %s\r\n"
            "From: <sip:1001@10.0.0.1>;tag=a\r\n"
            "To: <sip:1002@10.0.0.1>;tag=b\r\n"
            "Call-ID: forged\r\n"
            "CSeq: 1 %s\r\n"
            "Content-Length: 0\r\n\r\n" % (code, PROXY[0], PROXY[1], second_via, method)).encode()


# ---------------------------------------------------------------------------------------------
# a remote crash: addresses taken from a message


@pytest.mark.parametrize("via", [
    "SIP/2.0/UDP 10.0.0.66:5060;branch=z9hG4bKx;rport=99999",
    "SIP/2.0/UDP 10.0.0.66:5060;branch=z9hG4bKx;rport=70000",
    "SIP/2.0/UDP 10.0.0.66:5060;branch=z9hG4bKx;rport=0",
    "SIP/2.0/UDP 10.0.0.66:5060;branch=z9hG4bKx;rport=-1",
    "SIP/2.0/UDP 10.0.0.66:5060;branch=z9hG4bKx;rport=5060x",
    "SIP/2.0/UDP 10.0.0.66:5060;branch=z9hG4bKx;received=\u00e4\u00f6\u00fc",
    "SIP/2.0/UDP 10.0.0.66:5060;branch=z9hG4bKx;received=10.0.0.666",
    "SIP/2.0/UDP 10.0.0.66:5060;branch=z9hG4bKx;received=evil.example.com",
    "SIP/2.0/UDP 10.0.0.66:99999;branch=z9hG4bKx",
    "SIP/2.0/UDP 300.1.1.1:5060;branch=z9hG4bKx",
    "SIP/2.0/UDP ex_ample.com;branch=z9hG4bKx",
])
def test_forged_response_with_invalid_address_is_dropped(pbx, via):
    engine, _, _ = pbx
    dropped = engine.counters["dropped"]
    assert receive(engine, forged_response(via), SOURCE, 2000) == []
    assert engine.counters["dropped"] == dropped + 1


@pytest.mark.parametrize("via", [
    "SIP/2.0/UDP attacker.example.com:5060;branch=z9hG4bKx",  # a name: would be a DNS lookup
    "SIP/2.0/UDP attacker.example.com;branch=z9hG4bKx;rport",
    "SIP/2.0/UDP [2001:db8::1]:5060;branch=z9hG4bKx",  # IPv6: no transport for it
    "SIP/2.0/UDP 10.0.0.66;branch=z9hG4bKx;received=2001:db8::1",
])
def test_forged_response_needing_a_lookup_or_ipv6_is_dropped(pbx, via):
    engine, _, _ = pbx
    assert receive(engine, forged_response(via), SOURCE, 2000) == []


def test_forged_response_with_valid_addresses_still_relayed_statelessly(pbx):
    """The check refuses bad addresses, not the §16.7 step 5 relay of a 2xx retransmission."""
    engine, _, _ = pbx
    via = "SIP/2.0/UDP 10.0.0.11:5060;branch=z9hG4bKx;rport=40000;received=10.0.0.12"
    out = receive(engine, forged_response(via), SOURCE, 2000)
    assert [(status(d), a) for d, a in out] == [(200, ("10.0.0.12", 40000))]


@pytest.mark.parametrize("old, new, reason", [
    (b";rport\r\n", b";rport=99999\r\n", b"Malformed Via rport"),
    (b";rport\r\n", b";rport\r\nVia: SIP/2.0/UDP 10.9.9.9;branch=z9hG4bKy;received=\xc3\xa4\r\n",
     b"Malformed Via received"),
    (b";rport\r\n", b";rport\r\nVia: SIP/2.0/UDP 10.9.9.9:70000;branch=z9hG4bKy\r\n",
     b"Malformed port"),
    (b"Contact: <sip:1001@10.0.0.11:5060>", b"Contact: <sip:1001@10.0.0.11:70000>",
     b"Malformed port"),
    (b"Contact: <sip:1001@10.0.0.11:5060>", b"Contact: <sip:1001@ex_ample.com>",
     b"Malformed host"),
    (b"Contact: <sip:1001@10.0.0.11:5060>", b"Contact: <sip:1001@999.0.0.1>",
     b"Malformed host"),
    (b"Max-Forwards: 70", b"Route: <sip:10.0.0.1:99999;lr>\r\nMax-Forwards: 70",
     b"Malformed port"),
    (b"INVITE sip:1002@10.0.0.1 ", b"INVITE sip:1002@10.0.0.1:0 ", b"Malformed port"),
    (b"INVITE sip:1002@10.0.0.1 ", b"INVITE sip:1002@-bad-.com ", b"Malformed host"),
])
def test_request_with_invalid_address_gets_400_and_never_reaches_the_phone(pbx, old, new,
                                                                            reason):
    engine, alice, bob = pbx
    data = alice.invite("1002", "bad-address")
    assert old in data
    out = receive(engine, data.replace(old, new, 1), alice.addr, 2000)
    assert [d.split(b"\r\n")[0] for d, _ in out] == [b"SIP/2.0 400 " + reason]
    assert [a for _, a in out] == [alice.addr]  # answered at the source, never at bob
    assert engine.calls.active == {}


def test_register_with_invalid_contact_changes_nothing(pbx):
    engine, alice, _ = pbx
    data = alice.register(contact="<sip:1001@10.0.0.11:65536>")
    out = receive(engine, data, alice.addr, 2000)
    assert [d.split(b"\r\n")[0] for d, _ in out] == [b"SIP/2.0 400 Malformed port"]
    assert [b.uri for b in engine.location.lookup("1001", 2000)] == ["sip:1001@10.0.0.11:5060"]


# ---------------------------------------------------------------------------------------------
# name lookups and IPv6: an immediate answer, never a lookup


@pytest.mark.parametrize("old, new", [
    (b"Max-Forwards: 70", b"Route: <sip:[2001:db8::5];lr>\r\nMax-Forwards: 70"),
    (b"INVITE sip:1002@10.0.0.1 ", b"INVITE sip:1002@[2001:db8::5] "),
    (b"INVITE sip:1002@10.0.0.1 ", b"INVITE sip:1002@[2001:db8::5]:5070 "),
])
def test_next_hop_needing_dns_or_ipv6_gets_502_at_once(pbx, old, new):
    engine, alice, _ = pbx
    data = alice.invite("1002", "no-route").replace(old, new, 1)
    out = receive(engine, data, alice.addr, 2000)
    assert [status(d) for d, _ in out] == [100, 502]
    assert all(a == alice.addr for _, a in out)
    # nothing is ever sent towards the target: only the 502 again until alice ACKs (Timer G)
    for now in range(2500, 40000, 500):
        assert [(status(d), a) for d, a in engine.tick(now)] in ([], [(502, alice.addr)])


def test_request_uri_with_a_name_counts_as_our_domain(pbx):
    """docs/architecture.md: a name in the Request-URI is our domain (we resolve none)."""
    engine, alice, bob = pbx
    data = alice.invite("1002", "by-name").replace(b"INVITE sip:1002@10.0.0.1 ",
                                                   b"INVITE sip:1002@pbx.example.org ", 1)
    out = receive(engine, data, alice.addr, 2000)
    assert [(status(d), a) for d, a in out] == [(100, alice.addr), (0, bob.addr)]


def test_route_naming_a_host_counts_as_ours_and_is_consumed(pbx):
    """A Route whose host is a name is ours as well (docs/architecture.md): it is removed and
    the request goes on by its Request-URI; no lookup, nothing sent to the name."""
    engine, alice, bob = pbx
    data = with_header(alice.invite("1002", "route-name"), b"Route: <sip:proxy.example.net;lr>",
                       b"Contact")
    out = receive(engine, data, alice.addr, 2000)
    assert [(status(d), a) for d, a in out] == [(100, alice.addr), (0, bob.addr)]
    assert parse(out[1][0]).get("route") is None


# ---------------------------------------------------------------------------------------------
# invalid requests addressed to a registered phone


def with_header(data, line, before=b"Content-Length"):
    return data.replace(b"\r\n" + before, b"\r\n" + line + b"\r\n" + before, 1)


DUPLICATES = [
    (b"To: <sip:1002@10.0.0.1>", b"Duplicate To header"),
    (b"From: <sip:6666@10.0.0.1>;tag=x", b"Duplicate From header"),
    (b"Call-ID: another", b"Duplicate Call-ID header"),
    (b"CSeq: 2 INVITE", b"Duplicate CSeq header"),
    (b"Max-Forwards: 10", b"Duplicate Max-Forwards header"),
    (b"i: another", b"Duplicate Call-ID header"),  # compact form counts the same
    (b"Content-Length: 0", b"Duplicate Content-Length"),
    (b"l: 0", b"Duplicate Content-Length"),
]


@pytest.mark.parametrize("line, reason", DUPLICATES)
def test_repeated_single_header_gets_400(pbx, line, reason):
    engine, alice, _ = pbx
    data = with_header(alice.invite("1002", "dup"), line, b"Contact")
    out = receive(engine, data, alice.addr, 2000)
    assert [d.split(b"\r\n")[0] for d, _ in out] == [b"SIP/2.0 400 " + reason]
    assert [a for _, a in out] == [alice.addr]


def test_content_length_larger_than_the_body_gets_400_and_smaller_truncates(pbx):
    engine, alice, bob = pbx
    data = alice.invite("1002", "cl")
    body = data[data.find(b"\r\n\r\n") + 4:]
    longer = data.replace(b"Content-Length: %d" % len(body), b"Content-Length: %d" % (len(body)
                                                                                     + 1))
    out = receive(engine, longer, alice.addr, 2000)
    assert [d.split(b"\r\n")[0] for d, _ in out] == [b"SIP/2.0 400 Content-Length larger than body"]
    shorter = data.replace(b"Content-Length: %d" % len(body), b"Content-Length: 10")
    out = receive(engine, shorter.replace(b"Call-ID: cl", b"Call-ID: cl2"), alice.addr, 2010)
    forwarded = [d for d, a in out if a == bob.addr]
    assert len(forwarded) == 1
    assert parse(forwarded[0]).body == body[:10]  # §18.3: the rest of the datagram is dropped
    assert b"Content-Length: 10\r\n" in forwarded[0]


@pytest.mark.parametrize("old, new, reason", [
    # RFC 4475 §3.1.2.1 badinv01: extraneous separators
    (b";rport\r\n", b";rport;;,;,,\r\n", b"Empty list element"),
    (b"z9hG4bK1001", b";z9hG4bK1001", b"Malformed parameter"),
    (b"Contact: <sip:1001@10.0.0.11:5060>", b'Contact: "Joe" <sip:1001@10.0.0.11:5060>;;;;',
     b"Malformed parameter"),
    (b"Contact: <sip:1001@10.0.0.11:5060>",
     b"Contact: <sip:1001@10.0.0.11:5060>,,<sip:x@10.0.0.11>", b"Empty list element"),
    (b";tag=t1001", b";;tag=t1001", b"Malformed parameter"),
    (b";tag=t1001", b";tag=t1001;", b"Malformed parameter"),
    (b";tag=t1001", b";tag=", b"Malformed parameter"),
    (b"Max-Forwards: 70", b"Route: <sip:10.0.0.1;lr>,,\r\nMax-Forwards: 70",
     b"Empty list element"),
    # RFC 4475 §3.1.2.15 baddn: an unquoted display name is tokens only
    (b"From: <sip:1001", b"From: Bell, Alexander <sip:1001", b"Malformed display name"),
    (b"From: <sip:1001", b"From: a@b <sip:1001", b"Malformed display name"),
    (b"From: <sip:1001", b'From: "Bell" Alexander <sip:1001', b"Malformed display name"),
    (b"To: <sip:1002@10.0.0.1>", b"To: <sip:1002@10.0.0.1> junk", b"Malformed address"),
    (b"To: <sip:1002@10.0.0.1>", b"To: <sip:1002@10.0.0.1>, <sip:1003@10.0.0.1>",
     b"Malformed address"),
])
def test_malformed_lists_params_and_names_get_400(pbx, old, new, reason):
    engine, alice, _ = pbx
    data = alice.invite("1002", "syntax")
    assert old in data
    out = receive(engine, data.replace(old, new, 1), alice.addr, 2000)
    assert [d.split(b"\r\n")[0] for d, _ in out] == [b"SIP/2.0 400 " + reason]
    assert [a for _, a in out] == [alice.addr]


def test_unsupported_proxy_require_gets_420_with_unsupported(pbx):
    """§16.3 step 5: a proxy that does not support an option in Proxy-Require refuses it."""
    engine, alice, _ = pbx
    data = with_header(alice.invite("1002", "preq"), b"Proxy-Require: foo, sec-agree",
                       b"Contact")
    out = receive(engine, data, alice.addr, 2000)
    assert [status(d) for d, _ in out] == [100, 420]
    assert all(a == alice.addr for _, a in out)
    assert parse(out[1][0]).get("unsupported") == "foo, sec-agree"
    assert parse(out[1][0]).reason == "Bad Extension"


def test_require_on_register_gets_420(pbx):
    engine, alice, _ = pbx
    data = with_header(alice.register(cseq=2), b"Require: pref")
    out = receive(engine, data, alice.addr, 2000)
    assert [status(d) for d, _ in out] == [420]
    assert parse(out[0][0]).get("unsupported") == "pref"


def test_require_alone_is_passed_on_to_the_phone(pbx):
    """Require is for the UAS (§8.2.2.3): a proxy forwards it."""
    engine, alice, bob = pbx
    data = with_header(alice.invite("1002", "req"), b"Require: 100rel", b"Contact")
    out = receive(engine, data, alice.addr, 2000)
    assert [a for _, a in out] == [alice.addr, bob.addr]


# ---------------------------------------------------------------------------------------------
# legal but unusual requests still go through

INTMETH = (
    b"!interesting-Method0123456789_*+`.%indeed'~ sip:1_unusual.URI~(to-be!sure)&isn't+it$/"
    b"crazy?,/;;*:&it+has=1,weird!*pas$wo~d_too.(doesn't-it)@example.com SIP/2.0\r\n"
    b"Via: SIP/2.0/TCP host1.example.com;branch=z9hG4bK-.!%66*_+`'~\r\n"
    b'To: "BEL:\\\x07 NUL:\\\x00 DEL:\\\x7f" <sip:1_unusual.URI~(to-be!sure)&isn\'t+it$/crazy?,/;;'
    b"*@example.com>\r\n"
    b"From: token1~` token2'+_ token3*%!.- <sip:mundane@example.com>;fromParam''~+*_!.-%=\""
    b"\xd1\x80\xd0\xb0\xd0\xb1\xd0\xbe\xd1\x82\xd0\xb0\xd1\x8e\xd1\x89\xd0\xb8\xd0\xb9\";"
    b"tag=_token~1'+`*%!-.\r\n"
    b"Call-ID: intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{\r\n"
    b"CSeq: 139122385 !interesting-Method0123456789_*+`.%indeed'~\r\n"
    b"Max-Forwards: 255\r\n"
    b"extensionHeader-!.%*+_`'~:\xef\xbb\xbf\xe5\xa4\xa7\xe5\x81\x9c\xe9\x9b\xbb\r\n"
    b"Content-Length: 0\r\n\r\n")


def test_rfc4475_intmeth_is_valid_and_answered_not_400():
    """§3.1.1.2: escaped NUL, BEL and DEL in a quoted display name, token display names,
    odd methods and URIs are all legal. No such user here: 404, not 400."""
    engine = new_engine({"RATE_LIMIT": 0})
    m = parse(INTMETH)
    assert m.method == "!interesting-Method0123456789_*+`.%indeed'~"
    out = receive(engine, INTMETH, ("192.0.2.5", 5070), 1000)
    assert [status(d) for d, _ in out] == [404]
    assert out[0][1] == ("192.0.2.5", 5060)  # no rport: the source IP and the Via's port


def test_escaped_nul_in_display_name_reaches_the_phone_byte_for_byte(pbx):
    engine, alice, bob = pbx
    to = b'To: "\\\\\\\x00 Bob" <sip:1002@10.0.0.1>'
    data = alice.invite("1002", "nul").replace(b"To: <sip:1002@10.0.0.1>", to)
    out = receive(engine, data, alice.addr, 2000)
    forwarded = [d for d, a in out if a == bob.addr]
    assert len(forwarded) == 1 and to in forwarded[0]


@pytest.mark.parametrize("header", [
    b'To: "Bob" <sip:1002@10.0.0.1>',
    b"To: Bob Smith <sip:1002@10.0.0.1>",
    b"To: sip:1002@10.0.0.1",
    b"To: <sip:1002@10.0.0.1>;x-param;y=\"a;b\"",
])
def test_legal_display_names_and_params_still_forwarded(pbx, header):
    engine, alice, bob = pbx
    data = alice.invite("1002", "legal").replace(b"To: <sip:1002@10.0.0.1>", header)
    out = receive(engine, data, alice.addr, 2000)
    assert [a for _, a in out] == [alice.addr, bob.addr]


def test_stray_nul_outside_a_quoted_string_still_400(pbx):
    engine, alice, _ = pbx
    data = alice.invite("1002", "nul2").replace(b"To: <sip:1002@10.0.0.1>",
                                                b'To: "Bob"\x00 <sip:1002@10.0.0.1>')
    out = receive(engine, data, alice.addr, 2000)
    assert [d.split(b"\r\n")[0] for d, _ in out] == [b"SIP/2.0 400 NUL byte in headers"]


# ---------------------------------------------------------------------------------------------
# registration limits, before any binding changes


def contacts_register(phone, n, cseq=2, port0=6000):
    contacts = ", ".join("<sip:%s@%s:%d>" % (phone.user, phone.ip, port0 + i) for i in range(n))
    return phone.register(cseq=cseq, contact=contacts)


@pytest.mark.parametrize("n", [5, 100])
def test_more_contacts_than_the_per_aor_limit_get_403_and_change_nothing(pbx, n):
    engine, alice, _ = pbx
    before = [(b.uri, b.source, b.expires_at) for b in engine.location.lookup("1001", 2000)]
    out = receive(engine, contacts_register(alice, n), alice.addr, 2000)
    assert [d.split(b"\r\n")[0] for d, _ in out] == [b"SIP/2.0 403 Forbidden: more than 4 "
                                                     b"contacts"]
    after = [(b.uri, b.source, b.expires_at) for b in engine.location.lookup("1001", 2000)]
    assert after == before
    assert engine.location.count == 2


def test_several_contacts_of_one_request_do_not_move_each_other(pbx):
    engine, alice, _ = pbx
    out = receive(engine, contacts_register(alice, 3), alice.addr, 2000)
    assert [status(d) for d, _ in out] == [200]
    uris = sorted(b.uri for b in engine.location.lookup("1001", 2000))
    # the first new contact moved the phone's old binding (same source, same user); the
    # other two are bindings of their own
    assert uris == ["sip:1001@10.0.0.11:6000", "sip:1001@10.0.0.11:6001",
                    "sip:1001@10.0.0.11:6002"]
    assert len(parse(out[0][0]).values("contact")) == 3


def test_contacts_that_would_pass_the_limit_get_503_and_change_nothing(pbx):
    engine, alice, _ = pbx
    assert [status(d) for d, _ in receive(engine, contacts_register(alice, 3), alice.addr,
                                          2000)] == [200]
    other = Phone("1001", "10.0.0.21")
    before = sorted(b.uri for b in engine.location.lookup("1001", 2000))
    out = receive(engine, contacts_register(other, 2, cseq=1, port0=7000), other.addr, 2010)
    assert [status(d) for d, _ in out] == [503]
    assert parse(out[0][0]).get("retry-after") == "60"
    assert sorted(b.uri for b in engine.location.lookup("1001", 2010)) == before
