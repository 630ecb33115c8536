"""Property tests of the parser and the engine (hypothesis).

Valid requests built from random parts parse to those parts; mutated datagrams either parse or
raise ParseError; the engine never raises and never counts an internal error, whatever arrives.
Each test is bounded (EXAMPLES, no deadline); SB_FUZZ_EXAMPLES raises it for a longer local run.
"""

import os
import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from switchboard.config import Config
from switchboard.engine import Engine
from switchboard.message import URI, Message, ParseError, Via, param, parse, parse_name_addr

EXAMPLES = int(os.environ.get("SB_FUZZ_EXAMPLES", "300"))
BOUNDED = settings(max_examples=EXAMPLES, deadline=None,
                   suppress_health_check=[HealthCheck.too_slow])

TOKEN = string.ascii_letters + string.digits + "-.!%*_+`'~"
ALNUM = string.ascii_letters + string.digits
SOURCE = ("10.0.0.9", 5060)

# full name -> compact form (RFC 3261 §7.3.3 and later RFCs)
COMPACT = {"via": "v", "from": "f", "to": "t", "call-id": "i", "contact": "m",
           "content-length": "l", "subject": "s", "content-type": "c"}

methods = st.one_of(
    st.sampled_from(["INVITE", "OPTIONS", "BYE", "CANCEL", "REGISTER", "MESSAGE", "INFO",
                     "NOTIFY", "SUBSCRIBE", "REFER", "UPDATE", "PRACK", "PUBLISH"]),
    st.text(TOKEN, min_size=1, max_size=32),
)
users = st.text(ALNUM, min_size=1, max_size=12)
hostnames = st.lists(st.text(string.ascii_lowercase + string.digits, min_size=1, max_size=8),
                     min_size=1, max_size=3).map(lambda labels: ".".join(labels) + ".test")
ipv4 = st.tuples(*[st.integers(0, 255)] * 4).map(lambda t: "%d.%d.%d.%d" % t)
ipv6 = st.lists(st.integers(0, 0xFFFF), min_size=8, max_size=8).map(
    lambda g: "[" + ":".join("%x" % x for x in g) + "]")
hosts = st.one_of(ipv4, ipv6, hostnames)
ports = st.one_of(st.none(), st.integers(1, 65535))
# display names: anything printable, including quotes, backslashes, commas, <, >, UTF-8
displays = st.text(st.characters(codec="utf-8", exclude_categories=("Cc", "Cs", "Zl", "Zp")),
                   max_size=20)
tags = st.text(ALNUM + "-.", min_size=1, max_size=16)
words = st.text(string.ascii_letters + string.digits + string.punctuation, min_size=1,
                max_size=10)


def hostport(host, port):
    return host if port is None else "%s:%d" % (host, port)


def quote(display):
    return '"' + display.replace("\\", "\\\\").replace('"', '\\"') + '"'


@st.composite
def name_addrs(draw):
    """(header text, expected display as parsed, uri)."""
    display = draw(displays)
    uri = "sip:%s@%s" % (draw(users), hostport(draw(hosts), draw(ports)))
    if draw(st.booleans()):
        uri += ";transport=udp"
    if display or draw(st.booleans()):
        return "%s <%s>" % (quote(display), uri), quote(display)[1:-1], uri
    return "<%s>" % uri, "", uri


@st.composite
def requests(draw):
    """(datagram bytes, dict of expected fields)."""
    method = draw(methods)
    ruri = "sip:%s@%s" % (draw(users), hostport(draw(hosts), draw(ports)))
    vias = []
    for _ in range(draw(st.integers(1, 3))):
        host, port = draw(hosts), draw(ports)
        branch = "z9hG4bK" + draw(st.text(ALNUM, min_size=1, max_size=10))
        vias.append((host, port, branch))
    from_text, from_display, from_uri = draw(name_addrs())
    from_tag = draw(tags)
    to_text, _, to_uri = draw(name_addrs())
    contacts = draw(st.lists(name_addrs(), min_size=0, max_size=3))
    call_id = draw(st.text(ALNUM + "-.!%*_+`'~()<>:\\\"/[]?{}@", min_size=1, max_size=24))
    cseq = draw(st.integers(0, 2**31 - 1))
    subject = draw(st.lists(words, min_size=1, max_size=5))
    body = draw(st.binary(max_size=64))
    with_length = draw(st.booleans())
    trailing = draw(st.binary(max_size=8)) if with_length else b""

    def fold(parts):
        """Join parts with a space or, sometimes, a folded line break."""
        out = parts[0]
        for p in parts[1:]:
            out += draw(st.sampled_from([" ", " ", "\r\n ", "\r\n\t", "\r\n   "])) + p
        return out

    via_texts = ["SIP/2.0/UDP %s;branch=%s" % (hostport(h, p), b) for h, p, b in vias]
    headers = []  # (full name, value)
    if draw(st.booleans()):
        headers.append(("via", ", ".join(via_texts)))
    else:
        headers.extend(("via", v) for v in via_texts)
    headers.append(("from", fold([from_text, ";tag=" + from_tag])))
    headers.append(("to", to_text))
    headers.append(("call-id", call_id))
    headers.append(("cseq", fold([str(cseq), method])))
    headers.append(("max-forwards", "70"))
    headers.append(("subject", fold(subject)))
    if contacts:
        if draw(st.booleans()):
            headers.append(("contact", ", ".join(c[0] for c in contacts)))
        else:
            headers.extend(("contact", c[0]) for c in contacts)
    headers.append(("x-unknown-" + draw(st.text(ALNUM, min_size=1, max_size=5)), "a, b"))
    if with_length:
        headers.append(("content-length", str(len(body))))
    # random order, but lines of the same name keep theirs (their values are one list)
    order = draw(st.permutations(range(len(headers))))
    queues = {}
    for name, value in headers:
        queues.setdefault(name, []).append(value)
    headers = [(headers[i][0], queues[headers[i][0]].pop(0)) for i in order]

    lines = [method + " " + ruri + " SIP/2.0"]
    for name, value in headers:
        if name in COMPACT and draw(st.booleans()):
            name = COMPACT[name]
        name = "".join(c.upper() if draw(st.booleans()) else c for c in name)
        sep = draw(st.sampled_from([": ", ":", " : ", "\t:\t", ":   "]))
        lines.append(name + sep + value)
    data = ("\r\n".join(lines) + "\r\n\r\n").encode() + body + trailing
    expected = {
        "method": method, "uri": ruri, "vias": vias, "from": (from_display, from_uri),
        "from_tag": from_tag, "to": to_uri, "call_id": call_id, "cseq": (cseq, method),
        "subject": " ".join(subject), "contacts": [(c[1], c[2]) for c in contacts],
        "body": body,
    }
    return data, expected


@BOUNDED
@given(requests())
def test_valid_requests_parse_to_their_parts(case):
    data, want = case
    m = parse(data)
    assert m.method == want["method"]
    assert m.uri == want["uri"]
    assert m.get("call-id") == want["call_id"]
    assert m.cseq() == want["cseq"]
    assert m.get("subject") == want["subject"]
    assert m.body == want["body"]
    display, uri, params = parse_name_addr(m.get("from"))
    assert (display, uri) == want["from"]
    assert param(params, "tag") == want["from_tag"]
    assert parse_name_addr(m.get("to"))[1] == want["to"]
    vias = [Via(v) for v in m.values("via")]
    assert [(v.host, v.port, v.branch()) for v in vias] == [
        (h.lower(), p, b) for h, p, b in want["vias"]]
    assert [parse_name_addr(c)[:2] for c in m.values("contact")] == want["contacts"]
    assert URI(m.uri).user == want["uri"][4:want["uri"].index("@")]
    # serialising and parsing again gives the same message
    again = parse(m.to_bytes())
    if m.get("content-length") is not None:
        assert again.headers == m.headers
    else:  # to_bytes adds the Content-Length the datagram left out
        length = str(len(m.body))
        assert again.headers == m.headers + [["content-length", "Content-Length: ", length]]
    assert again.body == m.body
    assert (again.method, again.uri) == (m.method, m.uri)


mutations = st.lists(st.one_of(
    st.tuples(st.just("flip"), st.integers(0, 4096), st.integers(0, 255)),
    st.tuples(st.just("delete"), st.integers(0, 4096), st.integers(1, 8)),
    st.tuples(st.just("insert"), st.integers(0, 4096), st.sampled_from(
        [b"\r", b"\n", b"\r\n", b"\r\n\r\n", b"\x00", b'"', b"<", b">", b",", b";", b":",
         b" ", b"\t", b"\\", b"\xff", b"\xc3", b"\r\n ", b"[", b"]", b"%", b"@", b"/"])),
    st.tuples(st.just("truncate"), st.integers(0, 4096), st.just(0)),
), min_size=1, max_size=6)


def mutate(data, ops):
    data = bytearray(data)
    for kind, pos, arg in ops:
        pos = pos % (len(data) + 1)
        if kind == "flip" and pos < len(data):
            data[pos] = arg
        elif kind == "delete":
            del data[pos:pos + arg]
        elif kind == "insert":
            data[pos:pos] = arg
        elif kind == "truncate":
            del data[pos:]
    return bytes(data)


@BOUNDED
@given(requests(), mutations)
def test_mutated_datagrams_parse_or_raise_parse_error(case, ops):
    data = mutate(case[0], ops)
    try:
        m = parse(data)
    except ParseError as e:
        assert isinstance(e.reason, str) and e.reason
        assert e.code in (400, 505)
        assert e.message is None or isinstance(e.message, Message)
        return
    assert isinstance(m, Message)
    assert isinstance(m.body, bytes)
    assert m.method is not None or 100 <= m.status <= 999


def new_engine():
    return Engine(Config(overrides={"SIP_ADDRESS": "10.0.0.1"}))


def check_out(out):
    assert isinstance(out, list)
    for item in out:
        assert isinstance(item, tuple) and len(item) == 2
        data, dest = item
        assert isinstance(data, bytes)
        assert isinstance(dest, tuple) and len(dest) == 2
        assert isinstance(dest[0], str) and isinstance(dest[1], int)


def register(engine, user, ip, port, now):
    data = ("REGISTER sip:10.0.0.1 SIP/2.0\r\n"
            "Via: SIP/2.0/UDP %s:%d;branch=z9hG4bKreg%s;rport\r\n"
            "From: <sip:%s@10.0.0.1>;tag=r%s\r\nTo: <sip:%s@10.0.0.1>\r\n"
            "Call-ID: reg-%s\r\nCSeq: 1 REGISTER\r\nContact: <sip:%s@%s:%d>\r\n"
            "Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
            % (ip, port, user, user, user, user, user, user, ip, port)).encode()
    out = engine.receive(data, (ip, port), now)
    assert out and out[0][0].startswith(b"SIP/2.0 200 OK")


def call_request(method, to_user="1002", branch="z9hG4bKcall1"):
    body = (b"v=0\r\no=- 1 1 IN IP4 10.0.0.9\r\ns=-\r\nc=IN IP4 10.0.0.9\r\nt=0 0\r\n"
            b"m=audio 4000 RTP/AVP 0 8\r\n") if method == "INVITE" else b""
    return ("%s sip:%s@10.0.0.1 SIP/2.0\r\n"
            "Via: SIP/2.0/UDP 10.0.0.9:5060;branch=%s;rport\r\n"
            'From: "Alice, A." <sip:1001@10.0.0.1>;tag=a1\r\nTo: <sip:%s@10.0.0.1>\r\n'
            "Call-ID: fuzz-call\r\nCSeq: 1 %s\r\nContact: <sip:1001@10.0.0.9:5060>\r\n"
            "Max-Forwards: 70\r\nContent-Type: application/sdp\r\nContent-Length: %d\r\n\r\n"
            % (method, to_user, branch, to_user, method, len(body))).encode() + body


def response_to(forwarded, status, reason):
    """A response from the callee to a request the engine forwarded."""
    m = parse(forwarded)
    lines = ["SIP/2.0 %d %s" % (status, reason)]
    for h in m.headers:
        if h[0] in ("via", "from", "call-id", "cseq", "record-route"):
            lines.append(h[1] + h[2])
        elif h[0] == "to":
            lines.append(h[1] + h[2] + ";tag=b1")
    lines.append("Contact: <sip:1002@10.0.0.8:5060>")
    lines.append("Content-Length: 0")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


@BOUNDED
@given(requests(), mutations, st.integers(0, 2**40))
def test_engine_never_raises_on_mutated_requests(case, ops, now):
    engine = new_engine()
    register(engine, "1002", "10.0.0.8", 5060, now)
    data = mutate(case[0], ops)
    out = engine.receive(data, SOURCE, now + 1)
    check_out(out)
    check_out(engine.tick(now + 40_000))
    assert engine.counters["internal_errors"] == 0


@BOUNDED
@given(st.sampled_from(["INVITE", "BYE", "OPTIONS", "MESSAGE", "CANCEL", "ACK", "REGISTER"]),
       mutations, st.sampled_from([(180, "Ringing"), (200, "OK"), (486, "Busy Here"),
                                   (100, "Trying"), (603, "Decline")]), mutations,
       st.integers(0, 2**40))
def test_engine_never_raises_in_a_mutated_call(method, ops, answer, answer_ops, now):
    """A call set up through the proxy, with a mutated request and a mutated answer."""
    engine = new_engine()
    register(engine, "1002", "10.0.0.8", 5060, now)
    invite = call_request("INVITE")
    out = engine.receive(invite, SOURCE, now)
    check_out(out)
    forwarded = [d for d, dest in out if dest == ("10.0.0.8", 5060)]
    assert len(forwarded) == 1 and forwarded[0].startswith(b"INVITE sip:1002@10.0.0.8")
    # the callee answers, mutated
    response = mutate(response_to(forwarded[0], *answer), answer_ops)
    check_out(engine.receive(response, ("10.0.0.8", 5060), now + 10))
    # the caller sends something else, mutated
    request = call_request(method, branch="z9hG4bKcall1" if method in ("CANCEL", "ACK")
                           else "z9hG4bKcall2")
    request = mutate(request, ops)
    check_out(engine.receive(request, SOURCE, now + 20))
    for step in range(1, 6):
        check_out(engine.tick(now + step * 20_000))
    assert engine.counters["internal_errors"] == 0


@BOUNDED
@given(st.binary(max_size=200), st.integers(0, 2**40))
def test_engine_never_raises_on_random_bytes(data, now):
    engine = new_engine()
    out = engine.receive(data, SOURCE, now)
    check_out(out)
    assert engine.counters["internal_errors"] == 0
    assert engine.counters["received"] == 1


ODD_VALUES = [
    "", " ", "0", "-1", "00000000000000000068", "4294967296", "99999999999999999999", "1.5",
    "0x10", "nan", "\u00b2", "\u0663", "<", ">", '"', "<sip:>", "sip:", "<sip:a@[::1>", ";;;",
    ",,,", "*", "SIP/2.0/UDP", "SIP/2.0/UDP [::1]:0", "SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK",
    "SIP/2.0/UDP 10.0.0.9;rport=99999", "1 INVITE", "1 REGISTER", "2147483647 INVITE",
    "<sip:1002@10.0.0.1>;expires=0", "<sip:x@10.0.0.8>;q=2", "<sip:x@10.0.0.8>;q=abc",
    "<sip:x@10.0.0.8>;expires=abc", "<sip:x@10.0.0.8>;expires=\u00b2", "<sip:x@10.0.0.8>;q=",
    "<sip:10.0.0.1;lr>", "<sip:10.0.0.1:5060;lr>", "<sip:1002@10.0.0.8>;+sip.instance",
    "<tel:123>", "<sips:1002@10.0.0.1>", "<sip:@10.0.0.1>", "sip:1002@10.0.0.1;tag=",
    "<sip:1002@10.0.0.1>;tag=" + "x" * 300, "x" * 1500,
]
odd_values = st.one_of(
    st.sampled_from(ODD_VALUES),
    st.text(st.characters(codec="utf-8", exclude_characters="\r\n\x00"), max_size=30),
    st.lists(st.sampled_from(ODD_VALUES), min_size=2, max_size=4).map(", ".join),
    st.lists(st.sampled_from(ODD_VALUES + ["<sip:1002@10.0.0.8>", "SIP/2.0/UDP 10.0.0.9"]),
             min_size=2, max_size=4).map("".join),
)
HEADER_NAMES = ["Via", "From", "To", "Call-ID", "CSeq", "Contact", "Expires", "Max-Forwards",
                "Content-Length", "Route", "Record-Route", "User-Agent", "Authorization",
                "Require", "Proxy-Require", "Content-Type"]


def edit_header(data, name, value, add):
    """Replace the first line of header name (or add a line before it) in a datagram."""
    lines = data.split(b"\r\n")
    line = (name + ": " + value).encode()
    for i in range(1, len(lines)):
        if lines[i].lower().startswith(name.lower().encode() + b":"):
            if add:
                lines.insert(i, line)
            else:
                lines[i] = line
            break
    else:
        lines.insert(1, line)
    return b"\r\n".join(lines)


REGISTER_AGAIN = (b"REGISTER sip:10.0.0.1 SIP/2.0\r\n"
                  b"Via: SIP/2.0/UDP 10.0.0.8:5060;branch=z9hG4bKr2;rport\r\n"
                  b"From: <sip:1002@10.0.0.1>;tag=r\r\nTo: <sip:1002@10.0.0.1>\r\n"
                  b"Call-ID: reg-1002\r\nCSeq: 2 REGISTER\r\nContact: <sip:1002@10.0.0.8:5060>\r\n"
                  b"Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n")


@BOUNDED
@given(st.sampled_from(["REGISTER", "INVITE", "BYE", "OPTIONS", "CANCEL", "ACK", "response"]),
       st.lists(st.tuples(st.sampled_from(HEADER_NAMES), odd_values, st.booleans()),
                min_size=1, max_size=3),
       st.sampled_from([(180, "Ringing"), (200, "OK"), (486, "Busy Here"), (100, "Trying")]))
def test_engine_never_raises_on_odd_header_values(kind, edits, answer):
    """Well-framed messages in a call, with odd values in the headers the engine reads."""
    engine = new_engine()
    register(engine, "1002", "10.0.0.8", 5060, 0)
    out = engine.receive(call_request("INVITE"), SOURCE, 0)
    forwarded = [d for d, dest in out if dest == ("10.0.0.8", 5060)][0]
    source = ("10.0.0.8", 5060)
    if kind == "REGISTER":
        data = REGISTER_AGAIN
    elif kind == "response":
        data = response_to(forwarded, *answer)
    else:
        data = call_request(kind, branch="z9hG4bKcall1" if kind in ("CANCEL", "ACK")
                            else "z9hG4bKcall2")
        source = SOURCE
    for name, value, add in edits:
        data = edit_header(data, name, value, add)
    check_out(engine.receive(data, source, 10))
    for now in (20_000, 40_000, 200_000, 400_000):
        check_out(engine.tick(now))
    assert engine.counters["internal_errors"] == 0


@pytest.mark.parametrize("q", ["inf", "-inf", "1e400"])
def test_register_with_infinite_q(q):
    engine = new_engine()
    data = REGISTER_AGAIN.replace(b"<sip:1002@10.0.0.8:5060>",
                                  b"<sip:1002@10.0.0.8:5060>;q=" + q.encode())
    out = engine.receive(data, ("10.0.0.8", 5060), 0)
    assert engine.counters["internal_errors"] == 0
    assert len(out) == 1
    assert not out[0][0].startswith(b"SIP/2.0 5")


@pytest.mark.parametrize("data", [
    b"SIP/2.0 200 OK\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n",
    b"SIP/2.0 180 Ringing\r\nVia:\r\nCSeq: 1 INVITE\r\n\r\n",
    b"SIP/2.0 180 Ringing\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=\"z\r\nCSeq: 1 INVITE\r\n\r\n",
])
def test_response_without_usable_via_dropped(data):
    """Found by the fuzzer: a response without a Via was an internal error."""
    engine = new_engine()
    out = engine.receive(data, ("10.0.0.8", 5060), 0)
    assert out == []
    assert engine.counters["internal_errors"] == 0
    assert engine.counters["dropped"] == 1


@pytest.mark.parametrize("method, line, answer", [
    ("OPTIONS", "Via: SIP/2.0/UDP 10.0.0.9<:5060;branch=z9hG4bK1", None),
    ("OPTIONS", 'Via: SIP/2.0/UDP 10.0.0.9:5060;branch="z9hG4bK1', None),
    ("OPTIONS", 'Via: "SIP/2.0/UDP 10.0.0.9:5060;branch=z9hG4bK1', None),
    ("INVITE", "Route: <sip:10.0.0.1;lr", b"SIP/2.0 400"),
    ("REGISTER", 'Contact: "x <sip:1002@10.0.0.9>', b"SIP/2.0 400"),
])
def test_unbalanced_list_header(method, line, answer):
    """Found by the fuzzer: an unbalanced quote or < in a list header was an internal error."""
    engine = new_engine()
    register(engine, "1002", "10.0.0.8", 5060, 0)
    via = "" if line.startswith("Via") else "Via: SIP/2.0/UDP 10.0.0.9:5060;branch=z9hG4bK1\r\n"
    data = ("%s sip:1002@10.0.0.1 SIP/2.0\r\n%s%s\r\nFrom: <sip:1002@10.0.0.1>;tag=a\r\n"
            "To: <sip:1002@10.0.0.1>\r\nCall-ID: c1\r\nCSeq: 1 %s\r\nMax-Forwards: 70\r\n"
            "Content-Length: 0\r\n\r\n" % (method, via, line, method)).encode()
    out = engine.receive(data, SOURCE, 1)
    check_out(out)
    assert engine.counters["internal_errors"] == 0
    if answer is not None:
        finals = [d for d, _ in out if not d.startswith(b"SIP/2.0 100")]
        assert len(finals) == 1 and finals[0].startswith(answer)


def test_unmutated_call_works():
    """The fixture the fuzz tests mutate is itself a working call (or they test nothing)."""
    engine = new_engine()
    register(engine, "1002", "10.0.0.8", 5060, 0)
    out = engine.receive(call_request("INVITE"), SOURCE, 0)
    assert [d.split(b"\r\n", 1)[0] for d, _ in out] == [
        b"SIP/2.0 100 Trying", b"INVITE sip:1002@10.0.0.8:5060 SIP/2.0"]
    forwarded = out[1][0]
    out = engine.receive(response_to(forwarded, 200, "OK"), ("10.0.0.8", 5060), 10)
    assert [(d.split(b"\r\n", 1)[0], dest) for d, dest in out] == [(b"SIP/2.0 200 OK", SOURCE)]
    assert engine.calls.active["fuzz-call"].state == "answered"
    assert engine.counters["internal_errors"] == 0
