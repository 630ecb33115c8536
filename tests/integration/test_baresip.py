"""End to end with two real baresip softphones (Debian `baresip`) on loopback.

A (1001 on 127.0.0.2) and B (1002 on 127.0.0.3) register with Switchboard in host mode on
127.0.0.1 (outbound proxy and registrar), A calls B through it, B answers automatically, A hangs
up after about two seconds. Fails, not skips, when baresip is missing. Every process is stopped by
PID, also on failure; every wait is bounded.
"""

import contextlib
import re
import time

import pytest
from baresip_helpers import Baresip, require_baresip, wav_8k
from hostmode import HostMode, free_port

A_IP = "127.0.0.2"
B_IP = "127.0.0.3"
# baresip 1.0.0 prints e.g. "1001@127.0.0.1: {0/UDP/v4} 200 OK (Switchboard) [1 binding]"
REGISTERED = r"\{\d+/UDP/v4\} 200 [^\n]*\[\d+ bindings?\]"
ALL_REGISTERED = r"useragents? registered successfully"
ANSWERING = r"call: answering call on line \d+ from sip:1001@"
ESTABLISHED = r"Call established: "
# The hanging-up side logs the local termination, then receives 200 OK for its BYE; the other
# side logs "session closed" on the BYE. ("Call with X terminated (duration: N secs)" is printed
# only when N > 0, so it is not waited for.)
HUNG_UP = r"call: terminate call '"
BYE_OK = r"\nSIP/2\.0 200 [^\n]*\n(?:[^\n]+\n)*?CSeq: \d+ BYE\n"
CLOSED = r"session closed"
TRACE_LINE = re.compile(r"^UDP (\S+) -> (\S+)$", re.MULTILINE)


def account(user, proxy_host, proxy_port, auto_answer=False):
    """An accounts line: registrar and outbound proxy are Switchboard, UDP, no password."""
    proxy = f"{proxy_host}:{proxy_port}"
    line = f'<sip:{user}@{proxy};transport=udp>;outbound="sip:{proxy};transport=udp"'
    line += ";regint=600;mwi=no"
    if auto_answer:
        line += ";answermode=auto"
    return line


def sip_hops(phone):
    """(source, destination) address pairs of every SIP message in the phone's sip trace."""
    return TRACE_LINE.findall(phone.output())


@contextlib.contextmanager
def evidence(*parties):
    """Re-raise an assertion with every party's output attached."""
    try:
        yield
    except AssertionError as exc:
        parts = [str(exc)]
        for party in parties:
            name = getattr(party, "name", "switchboard")
            parts.append(f"\n===== {name} output =====\n{party.output()[-20000:]}")
        raise AssertionError("\n".join(parts)) from None


@pytest.fixture
def phones(tmp_path):
    """Make Baresip instances that are stopped (by PID) when the test ends, whatever happens."""
    require_baresip()
    wav = wav_8k(str(tmp_path / "tone-8k.wav"), seconds=10.0)
    made = []

    def make(name, ip, account_line):
        phone = Baresip(name, ip, free_port(host=ip), account_line, tmp_path, wav=wav)
        made.append(phone)
        return phone.start()

    yield make
    for phone in reversed(made):
        phone.stop()


def test_baresip_direct_call(phones):
    """The harness itself, without Switchboard: A calls B directly."""
    a = phones("a", A_IP, f"<sip:1001@{A_IP}>;regint=0")
    b = phones("b", B_IP, f"<sip:1002@{B_IP}>;regint=0;answermode=auto")
    with evidence(a, b):
        a.send(f"/dial sip:1002@{B_IP}:{b.port}")
        b.wait_for(ANSWERING, 10)
        a.wait_for(ESTABLISHED, 10)
        b.wait_for(ESTABLISHED, 10)
        a.send("/hangup")
        a.wait_for(HUNG_UP, 10)
        a.wait_for(BYE_OK, 10)
        b.wait_for(CLOSED, 10)


def test_call_through_host_mode(phones):
    with HostMode({"SIP_USERS": "1001,1002"}) as server:
        host, port = server.host, server.sip_port
        proxy = f"{host}:{port}"
        a = phones("a", A_IP, account("1001", host, port))
        b = phones("b", B_IP, account("1002", host, port, auto_answer=True))
        with evidence(server, a, b):
            # Both register with Switchboard: baresip sees 200, the server logs the binding.
            a.wait_for(REGISTERED, 10)
            a.wait_for(ALL_REGISTERED, 10)
            b.wait_for(REGISTERED, 10)
            b.wait_for(ALL_REGISTERED, 10)
            reg_a = server.wait_for("register 1001 ", 10)
            reg_b = server.wait_for("register 1002 ", 10)
            assert f"source={A_IP}:{a.port}" in reg_a, reg_a
            assert f"source={B_IP}:{b.port}" in reg_b, reg_b

            # A calls B by extension at the server; B answers by itself.
            since_a, since_b = a.mark(), b.mark()
            a.send(f"/dial sip:1002@{proxy}")
            b.wait_for(ANSWERING, 10, since=since_b)
            a.wait_for(ESTABLISHED, 10, since=since_a)
            b.wait_for(ESTABLISHED, 10, since=since_b)
            answered = server.wait_for("1001 -> 1002 answered", 10)
            call_id = re.search(r"call (\S+) 1001 -> 1002 answered", answered)
            assert call_id, answered
            call_id = call_id.group(1)
            invite = re.search(
                r"\nINVITE sip:1002@[^\n]*\n(?:[^\n]+\n)*?Call-ID: (\S+)\n", a.output()[since_a:]
            )
            assert invite, "A's trace shows no INVITE"
            assert invite.group(1) == call_id, (invite.group(1), answered)

            # B got the INVITE from the proxy, Record-Routed through it; no SIP went A <-> B.
            assert f"Record-Route: <sip:{proxy};lr>" in b.output()[since_b:], "no Record-Route"
            for phone in (a, b):
                for src, dst in sip_hops(phone):
                    assert proxy in (src, dst), f"{phone.name}: SIP not via proxy: {src} -> {dst}"

            time.sleep(2)
            since_a, since_b = a.mark(), b.mark()
            a.send("/hangup")
            a.wait_for(HUNG_UP, 10, since=since_a)
            a.wait_for(BYE_OK, 10, since=since_a)
            b.wait_for(CLOSED, 10, since=since_b)
            ended = server.wait_for("1001 -> 1002 ended", 10)
            assert f"call {call_id} " in ended, (call_id, ended)

            # /quit unregisters (REGISTER with Expires: 0) while the server is still up.
            a.stop()
            b.stop()
            server.wait_for("unregister 1001 ", 10)
            server.wait_for("unregister 1002 ", 10)
