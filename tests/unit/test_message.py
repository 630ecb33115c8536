"""switchboard.message: parse and serialise SIP messages (RFC 3261 §7, §20, §25; RFC 4475)."""

import pytest

from switchboard.config import Config
from switchboard.engine import Engine
from switchboard.message import (
    URI,
    Message,
    ParseError,
    Via,
    digits,
    param,
    parse,
    parse_name_addr,
    set_param,
    split_commas,
    split_hostport,
)

SOURCE = ("10.0.0.9", 5060)


def crlf(text):
    """Text written with \\n line ends as CRLF bytes."""
    return text.replace("\n", "\r\n").encode()


def request(*headers, body=b"", start="INVITE sip:1002@10.0.0.1 SIP/2.0", length=True):
    """A request with the given header lines; Content-Length appended unless length=False."""
    lines = [start] + list(headers)
    if length:
        lines.append("Content-Length: %d" % len(body))
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


BASIC = (
    "Via: SIP/2.0/UDP 10.0.0.9:5060;branch=z9hG4bK776asdhds",
    "Max-Forwards: 70",
    'To: "Bob" <sip:1002@10.0.0.1>',
    'From: "Alice" <sip:1001@10.0.0.1>;tag=1928301774',
    "Call-ID: a84b4c76e66710@pc33.example.com",
    "CSeq: 314159 INVITE",
    "Contact: <sip:1001@10.0.0.9:5060>",
)


def engine():
    return Engine(Config(overrides={"SIP_ADDRESS": "10.0.0.1"}))


def first_lines(out):
    return [data.split(b"\r\n", 1)[0] for data, _ in out]


# ---------------------------------------------------------------------------
# start line and basic fields


def test_basic_request_fields():
    m = parse(request(*BASIC))
    assert m.method is not None
    assert m.method == "INVITE"
    assert m.uri == "sip:1002@10.0.0.1"
    assert m.status == 0
    assert m.get("call-id") == "a84b4c76e66710@pc33.example.com"
    assert m.get("max-forwards") == "70"
    assert m.cseq() == (314159, "INVITE")
    assert m.get("content-length") == "0"
    assert m.body == b""
    assert m.get("x-missing") is None
    assert m.values("x-missing") == []


def test_basic_response_fields():
    data = crlf("SIP/2.0 180 Ringing\n"
                "Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKx\n"
                "CSeq: 1 INVITE\n"
                "Content-Length: 0\n\n")
    m = parse(data)
    assert m.method is None
    assert m.method is None
    assert m.status == 180
    assert m.reason == "Ringing"
    assert m.cseq() == (1, "INVITE")


def test_reason_phrase_keeps_spaces_and_utf8():
    # RFC 4475 3.1.1.12 "unreason"
    reason = "= 2**3 * 5**2 но сто девяносто девять - простое"
    data = ("SIP/2.0 200 %s\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n" % reason).encode()
    m = parse(data)
    assert m.status == 200
    assert m.reason == reason
    assert m.to_bytes() == data


def test_empty_reason_phrase():
    # RFC 4475 3.1.1.13 "noreason": the SP after the code is there, the phrase is empty
    data = b"SIP/2.0 100 \r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
    m = parse(data)
    assert m.status == 100
    assert m.reason == ""
    assert m.to_bytes() == data


def test_empty_lines_before_start_line_ignored():
    m = parse(b"\r\n" + request(*BASIC))
    assert m.method == "INVITE"


def test_two_empty_lines_before_start_line_ignored():
    m = parse(b"\r\n\r\n" + request(*BASIC))
    assert m.method == "INVITE"


@pytest.mark.parametrize("start, reason", [
    ("INVITE  sip:1002@10.0.0.1 SIP/2.0", "Malformed request line"),  # RFC 4475 lwsstart
    ("INVITE sip:1002@10.0.0.1 SIP/2.0 ", "Malformed request line"),  # RFC 4475 trws
    ("INVITE sip:user@example.com; lr SIP/2.0", "Malformed request line"),  # lwsruri
    ("INVITE sip:1002@10.0.0.1", "Malformed request line"),
    ("INVITE", "Malformed request line"),
    ("INVITE sip:1002@10.0.0.1 HTTP/1.1", "Malformed request line"),
    ("INV@TE sip:1002@10.0.0.1 SIP/2.0", "Malformed method"),
    ("INVITE 1002@10.0.0.1 SIP/2.0", "Malformed Request-URI"),
    ("M" * 70 + " sip:1002@10.0.0.1 SIP/2.0", "Malformed method"),
])
def test_bad_request_line_is_400_with_partial_message(start, reason):
    with pytest.raises(ParseError) as info:
        parse(request(*BASIC, start=start))
    e = info.value
    assert e.reason == reason
    assert e.code == 400
    assert str(e) == reason
    # what parsed is there, so the engine can answer to the Via
    assert e.message is not None
    assert e.message.method is not None
    assert e.message.first_value("via") == BASIC[0][5:]
    assert e.message.get("call-id") == "a84b4c76e66710@pc33.example.com"


@pytest.mark.parametrize("version", ["SIP/7.0", "SIP/2.1", "SIP/1.0"])
def test_unsupported_version_is_505(version):
    # RFC 4475 3.1.2.16 "badvers"
    with pytest.raises(ParseError) as info:
        parse(request(*BASIC, start="OPTIONS sip:t.watson@example.org " + version))
    e = info.value
    assert e.code == 505
    assert e.reason == "Version Not Supported"
    assert e.message.method == "OPTIONS"
    assert Via(e.message.first_value("via")).host == "10.0.0.9"


def test_engine_answers_505_to_the_via():
    e = engine()
    out = e.receive(request(*BASIC, start="INVITE sip:1002@10.0.0.1 SIP/7.0"), SOURCE, 0)
    assert first_lines(out) == [b"SIP/2.0 505 Version Not Supported"]
    assert out[0][1] == SOURCE
    assert b"CSeq: 314159 INVITE" in out[0][0]
    assert e.counters["parse_errors"] == 1
    assert e.counters["internal_errors"] == 0


def test_version_is_case_insensitive():
    m = parse(request(*BASIC, start="INVITE sip:1002@10.0.0.1 sip/2.0"))
    assert m.method == "INVITE"


@pytest.mark.parametrize("start, reason", [
    ("SIP/2.0 4294967301 better not break the receiver", "Malformed status code"),  # bigcode
    ("SIP/2.0 20 OK", "Malformed status code"),
    ("SIP/2.0 2x0 OK", "Malformed status code"),
    ("SIP/2.0 099 Low", "Malformed status code"),
    ("SIP/3.0 200 OK", "Malformed status line"),
    ("SIP/2.0 200", "Malformed status line"),
])
def test_bad_status_line(start, reason):
    data = crlf(start + "\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKq\nContent-Length: 0\n\n")
    with pytest.raises(ParseError) as info:
        parse(data)
    assert info.value.reason == reason
    m = info.value.message
    assert m is not None and m.method is None  # a response: never answered


def test_engine_drops_bad_responses_silently():
    e = engine()
    data = crlf("SIP/2.0 4294967301 better not break the receiver\n"
                "Via: SIP/2.0/UDP 10.0.0.9;branch=z9hG4bK1\nCSeq: 1 INVITE\n"
                "Content-Length: 0\n\n")
    assert e.receive(data, SOURCE, 0) == []
    assert e.counters["parse_errors"] == 1
    assert e.counters["dropped"] == 1


@pytest.mark.parametrize("data", [b"", b"\r\n", b"   \r\n  \r\n"])
def test_empty_message(data):
    with pytest.raises(ParseError) as info:
        parse(data)
    assert info.value.reason == "Empty message"


# ---------------------------------------------------------------------------
# header names


COMPACT_CASES = [
    ("v", "via", "SIP/2.0/UDP 10.0.0.9;branch=z9hG4bK1"),
    ("f", "from", "<sip:1001@10.0.0.1>;tag=1"),
    ("t", "to", "<sip:1002@10.0.0.1>"),
    ("i", "call-id", "compact@host"),
    ("m", "contact", "<sip:1001@10.0.0.9>"),
    ("c", "content-type", "application/sdp"),
    ("k", "supported", "100rel"),
    ("s", "subject", "lunch"),
    ("e", "content-encoding", "gzip"),
    ("o", "event", "presence"),
    ("r", "refer-to", "<sip:1003@10.0.0.1>"),
    ("u", "allow-events", "dialog"),
    ("x", "session-expires", "1800"),
    ("b", "referred-by", "<sip:1001@10.0.0.1>"),
]


@pytest.mark.parametrize("short, full, value", COMPACT_CASES)
@pytest.mark.parametrize("upper", [False, True])
def test_compact_header_names(short, full, value, upper):
    name = short.upper() if upper else short
    m = parse(request("CSeq: 1 INVITE", "%s: %s" % (name, value)))
    assert m.get(full) == value
    assert m.get(short) is None  # stored under the full name only


def test_compact_content_length():
    body = b"hello body"
    m = parse(request("CSeq: 1 INVITE", "l: 4", length=False, body=body))
    assert m.get("content-length") == "4"
    assert m.body == b"hell"


@pytest.mark.parametrize("name", ["CALL-ID", "call-id", "cAlL-iD", "Call-Id"])
def test_header_names_case_insensitive(name):
    m = parse(request("%s: abc@def" % name))
    assert m.get("call-id") == "abc@def"


def test_header_name_keeps_its_original_spelling_on_output():
    data = request("cAlL-iD: abc@def", "VIA: SIP/2.0/UDP h;branch=z9hG4bK1")
    assert parse(data).to_bytes() == data


def test_whitespace_before_colon():
    # RFC 4475 wsinv: "Content-Length   : 150", "TO :"
    m = parse(request("TO :  sip:1002@10.0.0.1", "CSeq  \t:\t1 INVITE"))
    assert m.get("to") == "sip:1002@10.0.0.1"
    assert m.cseq() == (1, "INVITE")


def test_empty_header_value():
    m = parse(request("Subject:", "s :"))
    assert m.values("subject") == ["", ""]


def test_token_characters_in_header_names():
    # RFC 4475 intmeth: extensionHeader-!.%*+_`'~
    m = parse(request("extensionHeader-!.%*+_`'~: \u5927\u505c\u96fb"))
    assert m.get("extensionheader-!.%*+_`'~") == "\u5927\u505c\u96fb"


@pytest.mark.parametrize("line, reason", [
    ("No colon here", "Malformed header line"),
    (": no name", "Malformed header line"),
    ("Bad Name: value", "Malformed header name"),
    ("Bad(Name): value", "Malformed header name"),
    ("B\u00e4d: value", "Malformed header name"),
])
def test_bad_header_lines(line, reason):
    with pytest.raises(ParseError) as info:
        parse(request(*BASIC, line))
    assert info.value.reason == reason
    assert info.value.message.method == "INVITE"
    assert info.value.message.first_value("via").startswith("SIP/2.0/UDP 10.0.0.9")


def test_too_many_headers():
    lines = ["X-H%d: %d" % (i, i) for i in range(100)]
    with pytest.raises(ParseError) as info:
        parse(request(*BASIC, *lines))
    assert info.value.reason == "Too many headers"
    assert info.value.message is not None


def test_eighty_headers_are_fine():
    lines = ["X-H%d: %d" % (i, i) for i in range(79)]  # + Content-Length = 80
    m = parse(request(*lines))
    assert len(m.headers) == 80
    assert m.get("x-h78") == "78"


# ---------------------------------------------------------------------------
# several values, several lines, folding


def test_several_via_values_in_one_line_and_several_lines():
    m = parse(request(
        "Via: SIP/2.0/UDP a.example.com;branch=z9hG4bK1, SIP/2.0/UDP b.example.com;branch=z9hG4bK2",
        "Max-Forwards: 70",
        "v: SIP/2.0/UDP c.example.com;branch=z9hG4bK3 ,SIP/2.0/TCP [2001:db8::1]:5070",
    ))
    vias = m.values("via")
    assert [Via(v).host for v in vias] == [
        "a.example.com", "b.example.com", "c.example.com", "[2001:db8::1]"]
    assert Via(vias[3]).port == 5070
    assert Via(vias[3]).transport == "TCP"
    assert m.first_value("via") == "SIP/2.0/UDP a.example.com;branch=z9hG4bK1"
    # get() gives the whole first line
    assert m.get("via").count("SIP/2.0/UDP") == 2


def test_contact_values_with_commas_in_quotes_and_brackets():
    m = parse(request(
        'Contact: "Doe, John" <sip:jd@10.0.0.5;x=1,2>;q=0.5, <sip:other@10.0.0.6>,'
        ' sip:plain@10.0.0.7;expires=60',
        'm: "a \\"quoted, name\\" <here>" <sip:q@10.0.0.8>',
    ))
    contacts = m.values("contact")
    assert len(contacts) == 4
    assert contacts[0] == '"Doe, John" <sip:jd@10.0.0.5;x=1,2>;q=0.5'
    display, uri, params = parse_name_addr(contacts[0])
    assert (display, uri) == ("Doe, John", "sip:jd@10.0.0.5;x=1,2")
    assert param(params, "q") == "0.5"
    assert parse_name_addr(contacts[1])[1] == "sip:other@10.0.0.6"
    assert parse_name_addr(contacts[2]) == ("", "sip:plain@10.0.0.7", ";expires=60")
    display, uri, _ = parse_name_addr(contacts[3])
    assert uri == "sip:q@10.0.0.8"
    assert "quoted, name" in display


def test_route_and_record_route_lists():
    m = parse(request(
        "Route: <sip:p1.example.com;lr>, <sip:p2.example.com;lr>",
        "Record-Route: <sip:rr1.example.com;lr;x=a,b>,<sip:rr2.example.com;lr>",
        "Route: <sip:p3.example.com;lr>",
    ))
    assert [parse_name_addr(r)[1] for r in m.values("route")] == [
        "sip:p1.example.com;lr", "sip:p2.example.com;lr", "sip:p3.example.com;lr"]
    assert m.values("record-route") == [
        "<sip:rr1.example.com;lr;x=a,b>", "<sip:rr2.example.com;lr>"]


def test_non_list_header_not_split_at_commas():
    m = parse(request("Subject: one, two", "Subject: three", "Allow: INVITE, ACK"))
    assert m.values("subject") == ["one, two", "three"]
    assert m.values("allow") == ["INVITE, ACK"]
    assert m.get("subject") == "one, two"


def test_unbalanced_quotes_in_list_header():
    # split_commas never raises: the rest stays one value, which its own parser refuses
    m = parse(request('Contact: <sip:ok@10.0.0.1>, "Unclosed, <sip:a@10.0.0.1>, <sip:b@c>'))
    contacts = m.values("contact")
    assert contacts == ["<sip:ok@10.0.0.1>", '"Unclosed, <sip:a@10.0.0.1>, <sip:b@c>']
    with pytest.raises(ParseError):
        parse_name_addr(contacts[1])
    assert m.first_value("contact") == "<sip:ok@10.0.0.1>"


def test_split_commas_directly():
    assert split_commas(" a , b,,c ") == ["a", "b", "c"]
    assert split_commas('"x,y" <sip:a@b>, <sip:c@d;p=1,2>') == [
        '"x,y" <sip:a@b>', "<sip:c@d;p=1,2>"]
    assert split_commas('"a\\",b" <sip:a@b>') == ['"a\\",b" <sip:a@b>']
    assert split_commas("") == []
    # unbalanced: the rest is one value (never raises)
    assert split_commas("<sip:a@b, sip:c@d") == ["<sip:a@b, sip:c@d"]
    assert split_commas('x, "open, <sip:c@d>') == ["x", '"open, <sip:c@d>']
    assert split_commas('"a\\\\", <sip:b@c>') == ['"a\\\\"', "<sip:b@c>"]


def test_folded_continuation_lines():
    m = parse(crlf(
        "INVITE sip:1002@10.0.0.1 SIP/2.0\n"
        "Subject: first part\n"
        "   second part\n"
        "\tthird part\n"
        "Route:\n"
        " <sip:services.example.com;lr;unknownwith=value;unknown-no-value>\n"
        "NewFangledHeader:   newfangled value\n"
        " continued newfangled value\n"
        "cseq: 0009\n"
        "  INVITE\n"
        "Content-Length: 0\n\n"))
    assert m.get("subject") == "first part second part third part"
    assert m.get("route") == "<sip:services.example.com;lr;unknownwith=value;unknown-no-value>"
    assert m.get("newfangledheader") == "newfangled value continued newfangled value"
    assert m.cseq() == (9, "INVITE")


def test_continuation_without_header():
    with pytest.raises(ParseError) as info:
        parse(crlf("INVITE sip:1002@10.0.0.1 SIP/2.0\n folded\nContent-Length: 0\n\n"))
    assert info.value.reason == "Continuation line without header"


def test_lf_only_line_ends():
    data = ("\n".join(("OPTIONS sip:10.0.0.1 SIP/2.0",) + BASIC) + "\nContent-Length: 3\n\nabc")
    m = parse(data.encode())
    assert m.method == "OPTIONS"
    assert m.get("call-id") == "a84b4c76e66710@pc33.example.com"
    assert m.body == b"abc"


# ---------------------------------------------------------------------------
# addresses and URIs


def test_name_addr_uri_params_and_header_params():
    display, uri, params = parse_name_addr(
        '"Alice Smith" <sip:alice@10.0.0.9:5070;transport=udp;lr>;tag=abc;expires=30')
    assert display == "Alice Smith"
    assert uri == "sip:alice@10.0.0.9:5070;transport=udp;lr"
    assert param(params, "tag") == "abc"
    assert param(params, "expires") == "30"
    assert param(params, "transport") is None
    u = URI(uri)
    assert (u.scheme, u.user, u.host, u.port) == ("sip", "alice", "10.0.0.9", 5070)
    assert u.param("transport") == "udp"
    assert u.param("lr") == ""
    assert u.param("tag") is None


def test_addr_spec_parameters_belong_to_the_header():
    display, uri, params = parse_name_addr("sip:alice@10.0.0.9;tag=xyz;transport=tcp")
    assert display == ""
    assert uri == "sip:alice@10.0.0.9"
    assert param(params, "tag") == "xyz"
    assert URI(uri).params == ""


def test_name_addr_variants():
    assert parse_name_addr("<sip:a@b>") == ("", "sip:a@b", "")
    assert parse_name_addr("Bob <sip:b@c>;tag=1") == ("Bob", "sip:b@c", ";tag=1")
    # RFC 4475 lwsdisp: no LWS between display name and <
    assert parse_name_addr("caller<sip:caller@example.com>;tag=323") == (
        "caller", "sip:caller@example.com", ";tag=323")
    assert parse_name_addr('"Q"<sip:q@r>')[:2] == ("Q", "sip:q@r")
    # RFC 4475 wsinv: escaped quotes and lots of LWS
    display, uri, params = parse_name_addr(
        '"J Rosenberg \\\\\\""       <sip:jdrosen@example.com> ; tag = 98asjd8')
    assert display == 'J Rosenberg \\\\\\"'
    assert uri == "sip:jdrosen@example.com"
    assert param(params, "tag") == "98asjd8"
    _, uri, params = parse_name_addr(
        "sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n")
    assert uri == "sip:vivekg@chair-dnrc.example.com"
    assert param(params, "tag") == "1918181833n"


@pytest.mark.parametrize("value", [
    '"unclosed <sip:a@b>',  # RFC 4475 quotbal
    "<sip:a@b",
    '"Joe" sip:joe@example.org',  # RFC 4475 regbadct-like: display name without <>
    "sip:a@b>",
    "",
    "<>",
    "nocolon",
])
def test_bad_addresses(value):
    with pytest.raises(ParseError):
        parse_name_addr(value)


def test_param_helpers():
    assert param(";a=1;B=2;flag", "b") == "2"
    assert param(";a=1;flag", "flag") == ""
    assert param(";a=1", "c") is None
    assert param("", "a") is None
    assert set_param(";branch=z9hG4bK1;rport", "rport", "5070") == ";branch=z9hG4bK1;rport=5070"
    assert set_param(";branch=z9hG4bK1", "received", "10.0.0.9") == (
        ";branch=z9hG4bK1;received=10.0.0.9")
    assert set_param("", "lr", None) == ";lr"


def test_digits_is_ascii_only():
    assert digits("0123456789")
    assert not digits("")
    assert not digits("12a")
    assert not digits("-1")
    assert not digits("\u00b2")  # str.isdigit() says True, int() refuses it
    assert not digits("\u0663")  # Arabic-Indic three: int() would take it
    assert not digits(" 1")


def test_uri_parts():
    u = URI("sips:alice:secret@Example.COM:5061;transport=tcp;maddr=1.2.3.4?subject=hi&x=y")
    assert u.scheme == "sips"
    assert u.user == "alice"
    assert u.host == "example.com"
    assert u.port == 5061
    assert u.param("maddr") == "1.2.3.4"
    assert u.headers == "?subject=hi&x=y"
    u = URI("SIP:10.0.0.1")
    assert (u.scheme, u.user, u.host, u.port) == ("sip", "", "10.0.0.1", None)
    # RFC 4475 semiuri: ; in the user part
    u = URI("sip:user;par=u%40example.net@example.com")
    assert u.user == "user;par=u%40example.net"
    assert u.host == "example.com"
    # RFC 4475 esc01: escapes are kept as written
    u = URI("sip:sips%3Auser%40example.com@example.net")
    assert u.user == "sips%3Auser%40example.com"
    assert u.host == "example.net"


def test_other_schemes_keep_text():
    u = URI("tel:+1-201-555-0123")
    assert u.scheme == "tel"
    assert u.host == ""
    assert u.text == "tel:+1-201-555-0123"


@pytest.mark.parametrize("text", ["nocolon", ":x", "sip:", "sip:a@", "sip:host:99999",
                                  "sip:host:0", "sip:host:12a", "sip:[::1", "sip:[::1]x",
                                  "sip:ho st"])
def test_bad_uris(text):
    with pytest.raises(ParseError):
        URI(text)


def test_question_mark_in_user_part():
    u = URI("sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*@example.com")
    assert u.host == "example.com"
    assert u.user == "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*"


def test_ipv6_references():
    assert split_hostport("[2001:db8::1]:5060") == ("[2001:db8::1]", 5060)
    assert split_hostport("[2001:DB8::1]") == ("[2001:db8::1]", None)
    u = URI("sip:alice@[2001:db8::1]:5070;transport=udp")
    assert (u.user, u.host, u.port, u.params) == ("alice", "[2001:db8::1]", 5070,
                                                  ";transport=udp")
    v = Via("SIP/2.0/UDP [2001:db8::1]:5060;branch=z9hG4bK1;received=[2001:db8::9]")
    assert (v.host, v.port, v.transport) == ("[2001:db8::1]", 5060, "UDP")
    assert v.param("received") == "[2001:db8::9]"
    assert v.text() == "SIP/2.0/UDP [2001:db8::1]:5060;branch=z9hG4bK1;received=[2001:db8::9]"
    m = parse(request("Via: SIP/2.0/UDP [2001:db8::1]:5060;branch=z9hG4bK1",
                      start="OPTIONS sip:[2001:db8::2]:5060 SIP/2.0"))
    assert Via(m.first_value("via")).host == "[2001:db8::1]"
    assert URI(m.uri).host == "[2001:db8::2]"


def test_via_parts():
    v = Via("SIP/2.0/udp pc33.example.com:5066;branch=z9hG4bKnashds8;rport;x = 1")
    assert v.protocol == "SIP/2.0/udp"
    assert v.transport == "UDP"
    assert (v.host, v.port) == ("pc33.example.com", 5066)
    assert v.branch() == "z9hG4bKnashds8"
    assert v.param("rport") == ""
    assert v.param("x") == "1"
    assert v.param("received") is None
    assert Via("SIP/2.0/UDP h").branch() == ""
    # RFC 4475 wsinv: LWS around the first slash, folded
    v = Via("SIP  /   2.0 /UDP 192.0.2.2;rport;branch=390skdjuw")
    assert (v.transport, v.host, v.branch()) == ("UDP", "192.0.2.2", "390skdjuw")
    assert v.text() == "SIP/2.0/UDP 192.0.2.2;rport;branch=390skdjuw"
    # RFC 4475 transports: unknown transports are kept
    assert Via("SIP/2.0/TLS-SCTP sip2.example.com").transport == "TLS-SCTP"


def test_via_with_spaces_around_every_slash():
    v = Via("SIP  / 2.0  / TCP     spindle.example.com   ;  branch  =   z9hG4bK9ikj8")
    assert v.transport == "TCP"
    assert v.host == "spindle.example.com"
    assert v.branch() == "z9hG4bK9ikj8"


@pytest.mark.parametrize("value", ["", "SIP/2.0/UDP", "SIP/2.0 host", "HTTP/1.1/TCP host",
                                   "SIP/2.0/UDP ho st", "SIP/2.0/UDP host:port",
                                   "SIP/2.0/UDP [::1"])
def test_bad_vias(value):
    with pytest.raises(ParseError):
        Via(value)


# ---------------------------------------------------------------------------
# Content-Length and body


SDP = crlf("v=0\no=- 1 1 IN IP4 10.0.0.9\ns=-\nc=IN IP4 10.0.0.9\nt=0 0\n"
           "m=audio 4000 RTP/AVP 0\n")


def test_body_with_content_length():
    m = parse(request(*BASIC, "Content-Type: application/sdp", body=SDP))
    assert m.body == SDP


def test_missing_content_length_rest_is_body():
    data = request(*BASIC, length=False, body=SDP)
    m = parse(data)
    assert m.get("content-length") is None
    assert m.body == SDP
    # serialising adds the header with the real length
    out = m.to_bytes()
    assert b"\r\nContent-Length: %d\r\n\r\n" % len(SDP) in out
    assert parse(out).body == SDP


def test_content_length_smaller_than_body_truncates():
    data = request(*BASIC, "Content-Length: 5", length=False, body=b"0123456789")
    m = parse(data)
    assert m.body == b"01234"


def test_content_length_larger_than_body():
    # RFC 4475 3.1.2.2 "clerr"
    data = request(*BASIC, "Content-Length: 9999", length=False, body=SDP)
    with pytest.raises(ParseError) as info:
        parse(data)
    assert info.value.reason == "Content-Length larger than body"
    assert info.value.code == 400
    assert info.value.message.method == "INVITE"
    assert info.value.message.first_value("via") is not None


def test_engine_answers_400_to_clerr():
    e = engine()
    out = e.receive(request(*BASIC, "Content-Length: 9999", length=False, body=SDP), SOURCE, 0)
    assert first_lines(out) == [b"SIP/2.0 400 Content-Length larger than body"]
    assert out[0][1] == SOURCE
    assert e.counters["internal_errors"] == 0


@pytest.mark.parametrize("value", ["-999", "abc", "1.5", "12345678901", "0x10", "+5"])
def test_malformed_content_length(value):
    # RFC 4475 3.1.2.3 "ncl" (negative) and friends
    data = request(*BASIC, "Content-Length: " + value, length=False, body=b"x" * 20)
    with pytest.raises(ParseError) as info:
        parse(data)
    assert info.value.reason == "Malformed Content-Length"
    assert info.value.message.method == "INVITE"


def test_content_length_with_spaces():
    m = parse(request(*BASIC, "Content-Length:   3  ", length=False, body=b"abcdef"))
    assert m.body == b"abc"


def test_unicode_digit_content_length_is_a_parse_error():
    data = request(*BASIC, "Content-Length: \u00b2", length=False, body=b"abc")
    with pytest.raises(ParseError):
        parse(data)


@pytest.mark.parametrize("old, new, answers", [
    ("CSeq: 314159 INVITE", "CSeq: \u00b2 INVITE", 1),  # 400
    ("10.0.0.9:5060;", "10.0.0.9:\u00b2;", 1),  # Via unreadable: 400 to the source
])
def test_engine_unicode_digits_rejected(old, new, answers):
    e = engine()
    data = request(*BASIC).replace(old.encode(), new.encode())
    out = e.receive(data, SOURCE, 0)
    assert e.counters["internal_errors"] == 0
    assert len(out) == answers
    assert all(line.startswith(b"SIP/2.0 400") for line in first_lines(out))


def test_dblreq_trailing_octets_ignored():
    # RFC 4475 3.1.1.8 "dblreq": a REGISTER with Content-Length 0 followed by an INVITE
    register = crlf(
        "REGISTER sip:example.com SIP/2.0\n"
        "To: sip:j.user@example.com\n"
        "From: sip:j.user@example.com;tag=43251j3j324\n"
        "Max-Forwards: 8\n"
        "I: dblreq.0ha0isndaksdj99sdfafnl3lk233412\n"
        "Contact: sip:j.user@host.example.com\n"
        "CSeq: 8 REGISTER\n"
        "Via: SIP/2.0/UDP 192.0.2.125;branch=z9hG4bKkdjuw23492\n"
        "Content-Length: 0\n\n")
    invite = crlf(
        "INVITE sip:joe@example.com SIP/2.0\n"
        "t: sip:joe@example.com\n"
        "From: sip:caller@example.net;tag=141334\n"
        "Max-Forwards: 8\n"
        "Call-ID: dblreq.0ha0isnda977644900765@192.0.2.15\n"
        "CSeq: 8 INVITE\n"
        "Via: SIP/2.0/UDP 192.0.2.15;branch=z9hG4bKkdjuw380234\n"
        "Content-Type: application/sdp\n"
        "Content-Length: 0\n\n")
    m = parse(register + invite)
    assert m.method == "REGISTER"
    assert m.get("call-id") == "dblreq.0ha0isndaksdj99sdfafnl3lk233412"
    assert m.body == b""
    assert m.to_bytes() == register


def test_binary_body_with_nul_and_invalid_utf8():
    body = b"\x00\xff\xfe\r\n\r\n\x80binary"
    m = parse(request(*BASIC, "Content-Type: application/octet-stream", body=body))
    assert m.body == body


def test_mpart01_multipart_body_kept_byte_for_byte():
    # RFC 4475 3.1.1.11 "mpart01" (the binary part shortened)
    body = (b"--boundary42\r\n"
            b"Content-Type: application/sdp\r\n\r\n"
            b"v=0\r\no=mhandley 29739 7272939 IN IP4 192.0.2.155\r\ns=-\r\n"
            b"c=IN IP4 192.0.2.155\r\nt=0 0\r\nm=audio 49217 RTP/AVP 0 12\r\n"
            b"m=video 3227 RTP/AVP 31\r\na=rtpmap:31 LPC\r\n\r\n"
            b"--boundary42\r\n"
            b"Content-Type: application/octet-stream\r\n"
            b"Content-Transfer-Encoding: binary\r\n\r\n"
            b"\x30\x82\x01\x52\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x07\x02\xa0\x00\r\n"
            b"--boundary42--\r\n")
    data = crlf("MESSAGE sip:kumiko@example.org SIP/2.0\n"
                "Via: SIP/2.0/UDP 127.0.0.1:5070"
                ";branch=z9hG4bK-d87543-4dade06d0bdb11ee-1--d87543-;rport\n"
                "Max-Forwards: 70\n"
                "Route: <sip:127.0.0.1:5080>\n"
                "Identity: r5mwreLuyDRYBi/0TiPwEsY3rEVsk/G2WxhgTV1PF7hHuLIK0YWVKZhKv9Mj8UeXqkMVbnVq37CD+813gvYjcBUaZngQmXc9WNZSDNGCzA+fWl9MEUHWIZo1CeJebdY/XlgKeTa0Olvq0rt70Q5jiSfbqMJmQFteeivUhkMWYUA=\n"  # noqa: E501
                "Contact: <sip:fluffy@127.0.0.1:5070>\n"
                "To: <sip:kumiko@example.org>\n"
                "From: <sip:fluffy@example.com>;tag=2fb0dcc9\n"
                "Call-ID: 3d9485ad0c49859b@Zmx1ZmZ5LW1hYy0xNi5sb2NhbA..\n"
                "CSeq: 1 MESSAGE\n"
                "Content-Transfer-Encoding: binary\n"
                "Content-Type: multipart/mixed;boundary=boundary42\n"
                "Content-Length: %d\n\n" % len(body)) + body
    m = parse(data)
    assert m.method == "MESSAGE"
    assert m.get("content-type") == "multipart/mixed;boundary=boundary42"
    assert m.body == body
    assert m.to_bytes() == data


# ---------------------------------------------------------------------------
# bad bytes


def test_nul_byte_in_headers():
    data = request(*BASIC, "Subject: a\x00b")
    with pytest.raises(ParseError) as info:
        parse(data)
    assert info.value.reason == "NUL byte in headers"
    assert info.value.message.get("call-id")  # partial message: the engine can answer 400


def test_invalid_utf8_in_headers_keeps_partial_message():
    data = request(*BASIC, "Subject: caf").replace(b"caf", b"caf\xe9\xff")
    with pytest.raises(ParseError) as info:
        parse(data)
    e = info.value
    assert e.reason == "Invalid UTF-8"
    assert e.message is not None
    assert e.message.method == "INVITE"
    assert e.message.get("subject") == "caf??"
    assert Via(e.message.first_value("via")).host == "10.0.0.9"


def test_engine_answers_400_to_invalid_utf8():
    e = engine()
    data = request(*BASIC, "Subject: caf").replace(b"caf", b"caf\xe9")
    out = e.receive(data, SOURCE, 0)
    assert first_lines(out) == [b"SIP/2.0 400 Invalid UTF-8"]
    assert e.counters["parse_errors"] == 1


def test_valid_utf8_in_headers():
    m = parse(request(*BASIC, "Subject: caf\u00e9 \u5927\u505c\u96fb"))
    assert m.get("subject") == "caf\u00e9 \u5927\u505c\u96fb"


# ---------------------------------------------------------------------------
# serialising and editing


def test_round_trip_request_byte_for_byte():
    data = request(*BASIC, "X-Unknown:  two  spaces", "Content-Type: application/sdp",
                   "Allow: INVITE,ACK ,BYE", "s:compact-no-space", body=SDP)
    m = parse(data)
    assert m.to_bytes() == data


def test_round_trip_response_byte_for_byte():
    data = crlf("SIP/2.0 200 OK\n"
                "Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKx, SIP/2.0/UDP 10.0.0.9\n"
                "Record-Route: <sip:10.0.0.1:5060;lr>\n"
                "From: <sip:1001@10.0.0.1>;tag=a\n"
                "To: <sip:1002@10.0.0.1>;tag=b\n"
                "Call-ID: rt@x\n"
                "CSeq: 1 INVITE\n"
                "Contact: <sip:1002@10.0.0.8>\n"
                "Content-Type: application/sdp\n"
                "Content-Length: %d\n\n" % len(SDP)) + SDP
    assert parse(data).to_bytes() == data


def test_copy_is_independent():
    m = parse(request(*BASIC))
    c = m.copy()
    c.set("Max-Forwards", "69")
    c.set_first_value("via", None)
    assert m.get("max-forwards") == "70"
    assert m.first_value("via") is not None
    assert c.first_value("via") is None
    assert m.to_bytes() == request(*BASIC)


def test_proxy_style_via_edit_keeps_everything_else():
    lines = ("Via: SIP/2.0/UDP 10.0.0.9:5060;branch=z9hG4bK1;rport, SIP/2.0/UDP 10.0.0.50",
             "X-First: 1", "Max-Forwards: 70", "P-Unknown-Header: ;;,,;;,;",
             "Via: SIP/2.0/UDP 10.0.0.51;branch=z9hG4bK0", "To: <sip:1002@10.0.0.1>",
             "From: <sip:1001@10.0.0.1>;tag=x", "Call-ID: edit@x", "CSeq: 2 INVITE")
    data = request(*lines)
    m = parse(data)
    via = Via(m.first_value("via"))
    via.params = set_param(set_param(via.params, "received", "10.0.0.9"), "rport", "5060")
    m.set_first_value("via", via.text())
    out = m.to_bytes().split(b"\r\n")
    old = data.split(b"\r\n")
    assert len(out) == len(old)
    assert out[1] == (b"Via: SIP/2.0/UDP 10.0.0.9:5060;branch=z9hG4bK1;rport=5060;"
                      b"received=10.0.0.9, SIP/2.0/UDP 10.0.0.50")
    assert [x for i, x in enumerate(out) if i != 1] == [x for i, x in enumerate(old) if i != 1]
    # the proxy's own Via on top, then taken off again
    m.add("Via", "SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKp", first=True)
    assert m.headers[0][2] == "SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKp"
    assert Via(m.first_value("via")).host == "10.0.0.1"
    m.set_first_value("via", None)
    assert Via(m.first_value("via")).port == 5060
    m.set_first_value("via", None)  # the first line now holds only the second value
    assert m.values("via") == ["SIP/2.0/UDP 10.0.0.50", "SIP/2.0/UDP 10.0.0.51;branch=z9hG4bK0"]
    assert [h[0] for h in m.headers][:3] == ["via", "x-first", "max-forwards"]
    m.set_first_value("via", None)
    assert [h[0] for h in m.headers][:3] == ["x-first", "max-forwards", "p-unknown-header"]
    assert m.values("via") == ["SIP/2.0/UDP 10.0.0.51;branch=z9hG4bK0"]


def test_add_first_goes_before_same_name_or_at_top():
    m = parse(request("X-A: 1", "Record-Route: <sip:old;lr>"))
    m.add("Record-Route", "<sip:new;lr>", first=True)
    m.add("Top", "t", first=True)
    m.add("Tail", "z")
    assert [h[0] for h in m.headers] == [
        "top", "x-a", "record-route", "record-route", "content-length", "tail"]
    assert m.values("record-route") == ["<sip:new;lr>", "<sip:old;lr>"]


def test_set_replaces_first_and_drops_others():
    m = parse(request("X-A: 1", "Max-Forwards: 70", "X-B: 2", "Max-Forwards: 10"))
    m.set("Max-Forwards", "69")
    assert m.values("max-forwards") == ["69"]
    assert [h[0] for h in m.headers] == ["x-a", "max-forwards", "x-b", "content-length"]
    m.set("New-Header", "v")
    assert m.get("new-header") == "v"
    m.remove("x-a")
    assert m.get("x-a") is None


def test_to_bytes_recomputes_content_length_and_drops_duplicates():
    m = parse(request("Content-Length: 3", "X: y", length=False, body=b"abc"))
    m.body = b"longer body"
    m.add("Content-Length", "3")
    out = m.to_bytes()
    assert out.count(b"Content-Length") == 1
    assert b"Content-Length: 11\r\n" in out
    assert parse(out).body == b"longer body"


def test_new_message_serialises():
    m = Message()
    m.status = 404
    m.reason = "Not Found"
    m.add("Via", "SIP/2.0/UDP h;branch=z9hG4bK1")
    assert m.to_bytes() == (b"SIP/2.0 404 Not Found\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n"
                            b"Content-Length: 0\r\n\r\n")


# ---------------------------------------------------------------------------
# CSeq


@pytest.mark.parametrize("value, reason", [
    ("1", "Malformed CSeq"),
    ("INVITE 1", "Malformed CSeq"),
    ("-1 INVITE", "Malformed CSeq"),
    ("1 INVITE extra", "Malformed CSeq"),
    ("36893488147419103232 REGISTER", "Malformed CSeq"),  # RFC 4475 scalar02
    ("2147483648 INVITE", "CSeq out of range"),
])
def test_bad_cseq(value, reason):
    m = parse(request("CSeq: " + value))
    with pytest.raises(ParseError) as info:
        m.cseq()
    assert info.value.reason == reason


def test_cseq_limits():
    assert parse(request("CSeq: 2147483647 INVITE")).cseq() == (2147483647, "INVITE")
    assert parse(request("CSeq: 0 ACK")).cseq() == (0, "ACK")
    with pytest.raises(ParseError) as info:
        parse(request("X: y")).cseq()
    assert info.value.reason == "Missing CSeq"


# ---------------------------------------------------------------------------
# RFC 4475 torture messages (reconstructed)

WSINV_BODY = crlf("v=0\no=mhandley 29739 7272939 IN IP4 192.0.2.3\ns=-\nc=IN IP4 192.0.2.4\n"
                  "t=0 0\nm=audio 49217 RTP/AVP 0 12\nm=video 3227 RTP/AVP 31\n"
                  "a=rtpmap:31 LPC\n")
WSINV = crlf(
    "INVITE sip:vivekg@chair-dnrc.example.com;unknownparam SIP/2.0\n"
    "TO :\n"
    " sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n\n"
    'from   : "J Rosenberg \\\\\\""       <sip:jdrosen@example.com>\n'
    "  ;\n"
    "  tag = 98asjd8\n"
    "MaX-fOrWaRdS: 0068\n"
    "Call-ID: wsinv.ndaksdj@192.0.2.1\n"
    "Content-Length   : 150\n"
    "cseq: 0009\n"
    "  INVITE\n"
    "Via  : SIP  /   2.0\n"
    " /UDP\n"
    "    192.0.2.2;rport;branch=390skdjuw\n"
    "s :\n"
    "NewFangledHeader:   newfangled value\n"
    " continued newfangled value\n"
    "UnknownHeaderWithUnusualValue: ;;,,;;,;\n"
    "Content-Type: application/sdp\n"
    "Route:\n"
    " <sip:services.example.com;lr;unknownwith=value;unknown-no-value>\n"
    "v:  SIP  / 2.0  / TCP     spindle.example.com   ;\n"
    "  branch  =   z9hG4bK9ikj8  ,\n"
    " SIP  /    2.0   / UDP  192.168.255.111   ; branch=\n"
    " z9hG4bK30239\n"
    'm:"Quoted string \\"\\"" <sip:jdrosen@example.com> ; newparam =\n'
    "      newvalue ;\n"
    "  secondparam ; q = 0.33\n\n") + WSINV_BODY


def test_wsinv():
    assert len(WSINV_BODY) == 150
    m = parse(WSINV)
    assert m.method == "INVITE"
    assert m.uri == "sip:vivekg@chair-dnrc.example.com;unknownparam"
    assert m.body == WSINV_BODY
    assert m.cseq() == (9, "INVITE")
    assert m.get("max-forwards") == "0068"
    assert m.get("subject") == ""
    assert m.get("unknownheaderwithunusualvalue") == ";;,,;;,;"
    _, uri, params = parse_name_addr(m.get("to"))
    assert uri == "sip:vivekg@chair-dnrc.example.com"
    assert param(params, "tag") == "1918181833n"
    _, uri, params = parse_name_addr(m.get("from"))
    assert uri == "sip:jdrosen@example.com"
    assert param(params, "tag") == "98asjd8"
    vias = m.values("via")
    assert len(vias) == 3
    top = Via(vias[0])
    assert (top.transport, top.host, top.branch()) == ("UDP", "192.0.2.2", "390skdjuw")
    contacts = m.values("contact")
    assert len(contacts) == 1
    display, uri, params = parse_name_addr(contacts[0])
    assert display == 'Quoted string \\"\\"'
    assert uri == "sip:jdrosen@example.com"
    assert param(params, "q") == "0.33"
    assert param(params, "newparam") == "newvalue"
    assert param(params, "secondparam") == ""
    assert parse_name_addr(m.get("route"))[1] == (
        "sip:services.example.com;lr;unknownwith=value;unknown-no-value")


def test_engine_accepts_wsinv_max_forwards():
    # Max-Forwards = 1*DIGIT: "0068" is 68, not a 400
    e = engine()
    out = e.receive(WSINV, ("192.0.2.2", 5060), 0)
    assert out
    assert all(b" 400 " not in line for line in first_lines(out))
    assert e.counters["internal_errors"] == 0


def test_esc01():
    body = crlf("v=0\no=mhandley 29739 7272939 IN IP4 192.0.2.1\ns=-\nc=IN IP4 192.0.2.1\n"
                "t=0 0\nm=audio 49217 RTP/AVP 0 12\nm=video 3227 RTP/AVP 31\n"
                "a=rtpmap:31 LPC\n")
    data = crlf(
        "INVITE sip:sips%3Auser%40example.com@example.net SIP/2.0\n"
        "To: sip:%75se%72@example.com\n"
        "From: <sip:I%20have%20spaces@example.net>;tag=938\n"
        "Max-Forwards: 87\n"
        "i: esc01.239409asdfakjkn23onasd0-3234\n"
        "CSeq: 234234 INVITE\n"
        "Via: SIP/2.0/UDP host5.example.net;branch=z9hG4bKkdjuw\n"
        "C: application/sdp\n"
        "Contact:\n"
        "  <sip:cal%6Cer@host5.example.net;%6C%72;n%61me=v%61lue%25%34%31>\n"
        "Content-Length: " + str(len(body)) + "\n\n") + body
    m = parse(data)
    assert URI(m.uri).user == "sips%3Auser%40example.com"
    assert URI(m.uri).host == "example.net"
    assert m.get("call-id") == "esc01.239409asdfakjkn23onasd0-3234"
    assert m.get("content-type") == "application/sdp"
    _, uri, _ = parse_name_addr(m.values("contact")[0])
    u = URI(uri)
    assert u.user == "cal%6Cer"
    assert u.param("n%61me") == "v%61lue%25%34%31"
    assert URI(parse_name_addr(m.get("from"))[1]).user == "I%20have%20spaces"
    assert m.body == body


def test_lwsdisp_answered_by_the_engine():
    data = crlf("OPTIONS sip:10.0.0.1 SIP/2.0\n"
                "To: sip:10.0.0.1\n"
                "From: caller<sip:caller@example.com>;tag=323\n"
                "Max-Forwards: 70\n"
                "Call-ID: lwsdisp.1234abcd@funky.example.com\n"
                "CSeq: 60 OPTIONS\n"
                "Via: SIP/2.0/UDP 10.0.0.9;branch=z9hG4bKkdjuw\n"
                "l: 0\n\n")
    m = parse(data)
    assert parse_name_addr(m.get("from"))[0] == "caller"
    e = engine()
    out = e.receive(data, SOURCE, 0)
    assert first_lines(out) == [b"SIP/2.0 200 OK"]
    assert b"Allow: " in out[0][0]


def test_longreq_scaled_down():
    long = "x" * 500
    vias = ["Via: SIP/2.0/TCP sip%d.example.com;branch=z9hG4bK%s" % (i, long[:50])
            for i in range(25)]
    data = request(
        'To: "I have a user name of %s" <sip:%s@example.com>' % (long, long[:100]),
        "From: sip:caller@example.net;tag=%s" % long,
        "Call-ID: longreq.%s" % long,
        "CSeq: 1 INVITE",
        "Unknown-LongHeader-%s: %s" % ("a" * 100, ",".join([long] * 10)),
        *vias,
        "Contact: <sip:amazinglylongcallername%s@host5.example.net>" % long,
        body=b"v=0\r\n" + b"a=x\r\n" * 200)
    m = parse(data)
    assert len(m.values("via")) == 25
    assert Via(m.values("via")[24]).host == "sip24.example.com"
    assert parse_name_addr(m.get("to"))[0] == "I have a user name of " + long
    assert param(parse_name_addr(m.get("from"))[2], "tag") == long
    assert m.get("unknown-longheader-" + "a" * 100) == ",".join([long] * 10)
    assert len(m.body) == 5 + 5 * 200
    assert m.to_bytes() == data


def test_badinv01_extra_separators_parse_leniently_then_get_400():
    # RFC 4475 3.1.2.1: ;;,;,, in Via and ;;;; in Contact. The parser is lenient, so the top
    # Via stays readable and the 400 can be sent; the engine refuses the request.
    data = request("To: sip:j.user@example.com",
                   "From: sip:caller@example.net;tag=134161461246",
                   "Max-Forwards: 7",
                   "Call-ID: badinv01.0ha0isndaksdjasdf3234nas",
                   "CSeq: 8 INVITE",
                   "Via: SIP/2.0/UDP 192.0.2.15;;,;,,",
                   'Contact: "Joe" <sip:joe@example.org>;;;;',
                   start="INVITE sip:user@example.com SIP/2.0")
    m = parse(data)
    assert Via(m.first_value("via")).host == "192.0.2.15"
    assert parse_name_addr(m.values("contact")[0])[1] == "sip:joe@example.org"
    e = engine()
    out = e.receive(data, ("192.0.2.15", 5060), 0)
    assert first_lines(out) == [b"SIP/2.0 400 Empty list element"]
    assert all(dest == ("192.0.2.15", 5060) for _, dest in out)
    assert e.counters["internal_errors"] == 0


def test_scalar02_overlarge_values():
    data = crlf("REGISTER sip:10.0.0.1 SIP/2.0\n"
                "Via: SIP/2.0/TCP host129.example.com;branch=z9hG4bK342sdfoi3\n"
                "To: <sip:user@10.0.0.1>\n"
                "From: <sip:user@10.0.0.1>;tag=239232jh3\n"
                "CSeq: 36893488147419103232 REGISTER\n"
                "Call-ID: scalar02.23o0pd9vanlq3wnrlnewofjas9ui32\n"
                "Max-Forwards: 300\n"
                "Expires: 1000000000000000000000000000000000000000000000000000000000\n"
                "Contact: <sip:user@host129.example.com>\n"
                "  ;expires=280297596632815\n"
                "Content-Length: 0\n\n")
    m = parse(data)
    with pytest.raises(ParseError):
        m.cseq()
    e = engine()
    out = e.receive(data, SOURCE, 0)
    assert first_lines(out) == [b"SIP/2.0 400 Malformed CSeq"]
    assert e.location.count == 0


def test_insuf_missing_headers():
    data = crlf("INVITE sip:user@10.0.0.1 SIP/2.0\n"
                "CSeq: 193942 INVITE\n"
                "Via: SIP/2.0/UDP 192.0.2.95;branch=z9hG4bKkdj.insuf\n"
                "Content-Type: application/sdp\n"
                "l: 0\n\n")
    m = parse(data)
    assert m.get("from") is None and m.get("call-id") is None
    e = engine()
    out = e.receive(data, ("192.0.2.95", 5060), 0)
    assert first_lines(out) == [b"SIP/2.0 400 Missing From"]
    assert out[0][1] == ("192.0.2.95", 5060)


def test_bcast_response_dropped():
    data = crlf("SIP/2.0 200 OK\n"
                "Via: SIP/2.0/UDP 192.0.2.198;branch=z9hG4bK1324923\n"
                "Via: SIP/2.0/UDP 255.255.255.255;branch=z9hG4bK1saber23\n"
                "Call-ID: bcast.0384840201234ksdfak3j2erwedfsASdf\n"
                "CSeq: 35 INVITE\n"
                "From: sip:user@example.com;tag=11141343\n"
                "To: sip:user@example.edu;tag=2229\n"
                "Content-Type: application/sdp\n"
                "Contact: <sip:user@host28.example.com>\n"
                "Content-Length: 0\n\n")
    m = parse(data)
    assert m.status == 200
    assert Via(m.values("via")[1]).host == "255.255.255.255"
    e = engine()
    assert e.receive(data, SOURCE, 0) == []
    assert e.counters["dropped"] == 1


def test_intmeth_long_method():
    method = "!interesting-Method0123456789_*+`.%indeed'~"
    m = parse(request("CSeq: 139122385 " + method, start=method + " sip:1002@10.0.0.1 SIP/2.0"))
    assert m.method == method


def test_transports_unknown_transport_types():
    data = request("Via: SIP/2.0/UDP t1.example.com;branch=z9hG4bKkdjuw",
                   "Via: SIP/2.0/SCTP t2.example.com;branch=z9hG4bKklasjdhf",
                   "Via: SIP/2.0/TLS t3.example.com;branch=z9hG4bK2980unddj",
                   "Via: SIP/2.0/UNKNOWN t4.example.com;branch=z9hG4bKasd0f3en",
                   "Via: SIP/2.0/TCP t5.example.com;branch=z9hG4bK0a9idfnee",
                   start="OPTIONS sip:user@example.com SIP/2.0")
    m = parse(data)
    assert [Via(v).transport for v in m.values("via")] == ["UDP", "SCTP", "TLS", "UNKNOWN", "TCP"]


# one hash, one URI equivalence, the header API ------------------------------------------
def test_fnv_known_answers_and_mix():
    from switchboard.message import fnv, fnv_halves

    # FNV-1a 32-bit test vectors (draft-eastlake-fnv)
    assert fnv("") == "811c9dc5" and fnv("a") == "e40c292c" and fnv("foobar") == "bf9cf968"
    assert fnv_halves("foobar") == (0xBF9C, 0xF968)
    assert fnv("foobar", 486) == "%08x" % (0xBF9CF968 ^ 486)
    assert fnv("é€") == "%04x%04x" % fnv_halves("é€")  # UTF-8 bytes, not characters


def test_fnv_matches_the_plain_formula():
    from switchboard.message import fnv

    def plain(text):
        h = 0x811C9DC5
        for b in text.encode():
            h = ((h ^ b) * 0x01000193) & 0xFFFFFFFF
        return h

    seed = [5]

    def below(n):  # a small LCG: the same strings on every interpreter (MicroPython has no
        seed[0] = (seed[0] * 1103 + 12345) % 65521  # random.Random)
        return seed[0] % n

    for _ in range(300):
        text = "".join(chr(1 + below(0x7FF)) for _ in range(below(40)))
        mix = below(1024)
        assert fnv(text, mix) == "%08x" % (plain(text) ^ mix), text


def test_uri_equivalence():
    from switchboard.message import same_uri, uri_key

    assert same_uri("sip:1001@10.0.0.1", "SIP:1001@10.0.0.1:5060")
    assert same_uri("sip:1001@EXAMPLE.com;transport=udp", "sip:1001@example.com")
    assert not same_uri("sip:1001@10.0.0.1", "sip:1002@10.0.0.1")
    assert not same_uri("sip:1001@10.0.0.1:5070", "sip:1001@10.0.0.1")
    assert not same_uri("sip:", "sip:1001@10.0.0.1") and same_uri("junk", "junk")
    assert uri_key("sip:a@h") == "sip:a@h:5060" and uri_key("junk") == "junk"


def test_via_helpers():
    m = parse(request("Via: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKa, SIP/2.0/UDP 10.0.0.2",
                      "Via: SIP/2.0/UDP 10.0.0.3;branch=z9hG4bKc",
                      *BASIC[1:]))
    assert m.top_via().host == "10.0.0.1" and m.via_count() == 3
    m.push_via("SIP/2.0/UDP 10.0.0.9;branch=z9hG4bKp")
    assert m.values("via")[:2] == ["SIP/2.0/UDP 10.0.0.9;branch=z9hG4bKp",
                                   "SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKa"]
    m.pop_via()
    m.pop_via()
    assert m.values("via") == ["SIP/2.0/UDP 10.0.0.2", "SIP/2.0/UDP 10.0.0.3;branch=z9hG4bKc"]
    via = m.top_via()
    via.params = ";received=10.0.0.7"
    m.replace_top_via(via)
    assert m.first_value("via") == "SIP/2.0/UDP 10.0.0.2;received=10.0.0.7"
    m.keep_top_via_only()
    assert m.values("via") == ["SIP/2.0/UDP 10.0.0.2;received=10.0.0.7"]
    assert m.names()[0] == "via"  # kept in its place
    m.remove("via")
    assert m.top_via() is None
    m.add("Via", "SIP/2.0/UDP bad host")
    assert m.top_via() is None  # unreadable: None, never an exception


def test_max_forwards_route_and_remove_unless():
    m = parse(request(*BASIC))
    assert m.max_forwards() == 70
    m.remove("max-forwards")
    assert m.max_forwards() == 70 and m.max_forwards(5) == 5
    m.add("Route", "<sip:a;lr>, <sip:b;lr>")
    m.add("Route", "<sip:c>")
    m.drop_last_route()
    assert m.values("route") == ["<sip:a;lr>", "<sip:b;lr>"]
    m.drop_last_route()
    assert m.values("route") == ["<sip:a;lr>"]
    m.add("X-A", "keep me")
    m.add("X-A", "drop me")
    m.remove("x-a", unless=lambda value: value.startswith("keep"))
    assert m.values("x-a") == ["keep me"]


def test_response_copies_the_dialog_headers_and_tags_to():
    m = parse(request(*BASIC))
    r = m.response(486, "Busy Here", [("Retry-After", "5")], "t1", "Test/1")
    assert (r.status, r.reason) == (486, "Busy Here")
    assert r.names() == ["via", "to", "from", "call-id", "cseq", "retry-after", "server"]
    assert r.get("to") == '"Bob" <sip:1002@10.0.0.1>;tag=t1'
    assert m.response(100, "Trying", (), "t1").get("to") == '"Bob" <sip:1002@10.0.0.1>'
    tagged = parse(request(*[h if not h.startswith("To:") else h + ";tag=x" for h in BASIC]))
    assert tagged.response(200, "OK", (), "t2").get("to").endswith(";tag=x")


def test_get_follows_every_edit_of_the_header_list():
    m = parse(b"INVITE sip:b@x SIP/2.0\r\nVia: SIP/2.0/UDP a;branch=z9hG4bK1\r\n"
              b"Route: <sip:r1;lr>\r\nMax-Forwards: 70\r\nFrom: <sip:a@x>;tag=1\r\n"
              b"To: <sip:b@x>\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\n\r\n")
    assert m.get("max-forwards") == "70"  # (on CPython: the table of first lines is made)
    m.set("Max-Forwards", "69")
    assert m.get("max-forwards") == "69"
    m.add("Record-Route", "<sip:p;lr>", first=True)
    assert m.get("record-route") == "<sip:p;lr>"
    m.push_via("SIP/2.0/UDP p;branch=z9hG4bK2")
    assert m.get("via") == "SIP/2.0/UDP p;branch=z9hG4bK2"
    m.pop_via()
    assert m.get("via") == "SIP/2.0/UDP a;branch=z9hG4bK1"
    m.set_first_value("route", None)
    assert m.get("route") is None
    m.add("Route", "<sip:r2;lr>")
    m.drop_last_route()
    assert m.get("route") is None
    m.remove("record-route")
    assert m.get("record-route") is None
    m.add("Via", "SIP/2.0/UDP q;branch=z9hG4bK3")
    m.keep_top_via_only()
    assert m.values("via") == ["SIP/2.0/UDP a;branch=z9hG4bK1"]
    c = m.copy()
    c.set("Call-ID", "d")
    assert (m.get("call-id"), c.get("call-id")) == ("c", "d")
    assert m.response(200, "OK", [("Contact", "<sip:b@y>")]).get("contact") == "<sip:b@y>"
