"""Hostile datagrams: each gets 400 (or another error) or a silent drop; bindings survive."""

import pytest
from flows import Phone, new_engine, status
from hostile import corpus


@pytest.mark.parametrize("size", [4096, 65535])
def test_hostile_corpus_never_hurts(size):
    logs = []
    engine = new_engine({"MAX_MESSAGE_SIZE": size, "RATE_LIMIT": 0},
                        log=lambda level, text: logs.append(text))
    alice, bob = Phone("1001", "10.0.0.11"), Phone("1002", "10.0.0.12")
    engine.receive(alice.register(), alice.addr, 1000)
    engine.receive(bob.register(), bob.addr, 1000)
    now = 2000
    for label, data in corpus():
        now += 10
        out = engine.receive(data, ("10.0.0.66", 5060), now)
        codes = [status(d) for d, _ in out]
        forwarded = [d for d, a in out if a in (alice.addr, bob.addr)]
        assert not forwarded, label
        assert all(400 <= c < 600 for c in codes), (label, codes)
        assert len(out) <= 1, label
        for data_out, _ in out:
            assert len(data_out) < 1500, label  # answers stay small whatever came in
    assert engine.counters["internal_errors"] == 0, logs
    assert engine.location.count == 2
    out = engine.receive(alice.invite("1002", "after"), alice.addr, now + 10)
    assert [a for _, a in out] == [alice.addr, bob.addr]  # still routing calls


def test_crlf_injection_cannot_add_a_contact():
    engine = new_engine({"RATE_LIMIT": 0})
    mallory = Phone("1001", "10.0.0.66")
    data = mallory.register().replace(
        b"To: <sip:1001@10.0.0.1>", b'To: "x\r\nContact: <sip:evil@6.6.6.6>" <sip:1001@10.0.0.1>')
    out = engine.receive(data, mallory.addr, 1000)
    assert [status(d) for d, _ in out] == [400]
    assert engine.location.count == 0


def test_too_many_vias_refused():
    engine = new_engine({"MAX_MESSAGE_SIZE": 65535, "RATE_LIMIT": 0})
    alice = Phone("1001", "10.0.0.11")
    vias = ", ".join("SIP/2.0/UDP 10.9.0.%d;branch=z9hG4bK%d" % (i % 250, i) for i in range(80))
    data = alice.register().replace(b"\r\nMax-Forwards", ("\r\nVia: %s\r\nMax-Forwards"
                                                         % vias).encode(), 1)
    out = engine.receive(data, alice.addr, 1000)
    assert [d.split(b"\r\n")[0] for d, _ in out] == [b"SIP/2.0 400 Too many Via values"]


def test_request_that_would_grow_past_the_limit_gets_513():
    engine = new_engine({"MAX_MESSAGE_SIZE": 1024, "RATE_LIMIT": 0})
    alice, bob = Phone("1001", "10.0.0.11"), Phone("1002", "10.0.0.12")
    engine.receive(bob.register(), bob.addr, 1000)
    invite = alice.invite("1002", "big")
    pad = 1024 - len(invite) - 12  # fits as received; our Via and Record-Route push it over
    data = invite.replace(b"\r\nContent-Type", b"\r\nX-Pad: " + b"p" * pad + b"\r\nContent-Type")
    assert len(data) <= 1024
    out = engine.receive(data, alice.addr, 1010)
    assert [status(d) for d, _ in out] == [100, 513]


def test_host_mode_survives_the_corpus_over_udp():
    import json
    import socket
    import urllib.request

    from hostmode import HostMode
    from udpphone import UdpPhone

    with HostMode({"SIP_USERS": "1001,1002", "RATE_LIMIT": 0}) as host:
        alice = UdpPhone("1001", "127.0.0.1", host)
        alice.send(alice.register())
        alice.expect("SIP/2.0 200")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.66", 0))
            for _, data in corpus():
                if len(data) <= 65507:
                    s.sendto(data, host.sip_addr)
        alice.send(alice.request("OPTIONS", "sip:%s" % alice.domain, "<sip:%s>" % alice.domain,
                                 "alive", 1))
        alice.expect("SIP/2.0 200")
        url = "http://127.0.0.1:%d/api/status" % host.http_port
        with urllib.request.urlopen(url, timeout=5) as r:
            st = json.loads(r.read())
        assert st["counters"]["internal_errors"] == 0
        assert st["counters"]["parse_errors"] >= 20
        assert st["tables"]["bindings"]["use"] == 1
        alice.close()
