"""A corpus of hostile datagrams (shared by the engine test and the host-mode test)."""

BASE = [
    "INVITE sip:1002@10.0.0.1 SIP/2.0",
    "Via: SIP/2.0/UDP 10.0.0.66:5060;branch=z9hG4bKhostile",
    "Max-Forwards: 70",
    "From: \"Mallory\" <sip:6666@10.0.0.1>;tag=m1",
    "To: <sip:1002@10.0.0.1>",
    "Call-ID: hostile-1",
    "CSeq: 1 INVITE",
    "Content-Length: 0",
]


def build(lines, body=b""):
    return "\r\n".join(lines).encode() + b"\r\n\r\n" + body


def replace(name, value):
    out = []
    for line in BASE:
        if line.lower().startswith(name.lower() + ":"):
            if value is not None:
                out.append("%s: %s" % (name, value))
        else:
            out.append(line)
    return out


def corpus():
    """[(label, datagram)]: each must get a 4xx/5xx or nothing, never a crash."""
    items = [
        ("enormous header", build(BASE[:-1] + ["X-Big: " + "A" * 70000, BASE[-1]])),
        ("10,000 Via values", build(
            ["INVITE sip:1002@10.0.0.1 SIP/2.0",
             "Via: " + ", ".join("SIP/2.0/UDP 10.0.%d.%d;branch=z9hG4bK%d" % (i // 250, i % 250, i)
                                 for i in range(10000))] + BASE[2:])),
        ("2,000 Via values within the size limit", build(
            ["INVITE sip:1002@10.0.0.1 SIP/2.0",
             "Via: " + ",".join("SIP/2.0/UDP a;branch=z9hG4bK%d" % i for i in range(2000))]
            + BASE[2:])),
        ("unbalanced quote", build(replace("From", "\"Mallory <sip:6666@10.0.0.1>;tag=m1"))),
        ("unbalanced angle", build(replace("To", "<sip:1002@10.0.0.1"))),
        ("stray closing angle", build(replace("To", "sip:1002@10.0.0.1>"))),
        ("NUL byte", build(replace("From", "\"Mal\x00lory\" <sip:6666@10.0.0.1>;tag=m1"))),
        ("invalid UTF-8", build(BASE).replace(b"Mallory", b"Mal\xff\xfelory")),
        ("negative Content-Length", build(replace("Content-Length", "-5"))),
        ("huge Content-Length", build(replace("Content-Length", "99999999999999999999"))),
        ("Content-Length beyond body", build(replace("Content-Length", "500"), b"v=0\r\n")),
        ("CRLF injection in display name", build(replace(
            "From", "\"Mallory\r\nContact: <sip:evil@6.6.6.6>\" <sip:6666@10.0.0.1>;tag=m1"))),
        ("1 kB From tag", build(replace("From", "<sip:6666@10.0.0.1>;tag=" + "t" * 1024))),
        ("600-character method", build(["X" * 600 + " sip:1002@10.0.0.1 SIP/2.0"] + BASE[1:])),
        ("empty request line", build([""] + BASE[1:])),
        ("only CRLFs", b"\r\n" * 40),
        ("binary junk", bytes(range(256)) * 4),
        ("response with garbage", b"SIP/2.0 999999 What\r\nVia: ???\r\n\r\n"),
        ("bad Max-Forwards", build(replace("Max-Forwards", "-1"))),
        ("bad CSeq", build(replace("CSeq", "one INVITE"))),
        ("huge CSeq", build(replace("CSeq", "99999999999 INVITE"))),
        ("bad Request-URI", build(["INVITE nonsense SIP/2.0"] + BASE[1:])),
        ("IPv6 garbage host", build(["INVITE sip:1002@[::1 SIP/2.0"] + BASE[1:])),
        ("bad port", build(["INVITE sip:1002@10.0.0.1:99999 SIP/2.0"] + BASE[1:])),
        ("folded line at top", build([BASE[0], " continuation"] + BASE[1:])),
        ("header without colon", build(BASE[:-1] + ["NoColonHere", BASE[-1]])),
    ]
    # issue 11: invalid requests that once reached a registered phone
    for name, value in (("Content-Length", "0"), ("l", "0"), ("To", "<sip:1002@10.0.0.1>"),
                        ("From", "<sip:6666@10.0.0.1>;tag=m2"), ("Call-ID", "hostile-2"),
                        ("CSeq", "2 INVITE"), ("Max-Forwards", "69")):
        items.append(("second %s" % name, build(BASE[:-1] + ["%s: %s" % (name, value),
                                                             BASE[-1]])))
    items.append(("empty list elements in Via", build(replace(
        "Via", "SIP/2.0/UDP 10.0.0.66:5060;branch=z9hG4bKhostile;;,;,,"))))
    items.append(("empty parameter in From", build(replace(
        "From", "<sip:6666@10.0.0.1>;;tag=m1"))))
    items.append(("comma in an unquoted display name", build(replace(
        "From", "Bell, Alexander <sip:6666@10.0.0.1>;tag=m1"))))
    items.append(("Via rport out of range", build(replace(
        "Via", "SIP/2.0/UDP 10.0.0.66:5060;branch=z9hG4bKhostile;rport=99999"))))
    items.append(("Route port out of range", build(BASE[:-1] + ["Route: <sip:10.0.0.1:70000;lr>",
                                                                 BASE[-1]])))
    # issue 11: responses nobody asked for, poisoned below the proxy's own Via
    for label, via in (("rport 99999", "10.0.0.66;branch=z9hG4bKr;rport=99999"),
                       ("non-ASCII received", "10.0.0.66;branch=z9hG4bKr;received=\u00e4"),
                       ("name-only Via", "attacker.example.com;branch=z9hG4bKr"),
                       ("IPv6 Via", "[2001:db8::1];branch=z9hG4bKr")):
        items.append(("forged 200 with %s" % label, build(
            ["SIP/2.0 200 OK", "Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKforged",
             "Via: SIP/2.0/UDP " + via] + BASE[3:])))
    every_empty = [BASE[0]] + [line.split(":")[0] + ":" for line in BASE[1:]]
    items.append(("every header empty", build(every_empty)))
    for name in ("Via", "From", "To", "Call-ID", "CSeq"):
        items.append(("%s missing" % name, build(replace(name, None))))
        items.append(("%s empty" % name, build(replace(name, ""))))
    return items
