"""The trunk (issue 15) against a real Kamailio as the ITSP (tests/kamailio/itsp.cfg).

Kamailio: a registrar with digest in realm "itsp.test" that challenges every initial INVITE,
and the BYE and re-INVITE of trunk accounts. Outside phones are SIPp registered there with
digest; phones at Switchboard are raw-SIP phones that keep everything they got.
"""

import time

import pytest
from hostmode import HostMode
from kamailio.harness import Outside, Phone, api_status, wait_trunk
from kamailio.server import Kamailio
from sipp_helpers import first_line, header_values

TRUNK_PW = "trunk-secret-A"
OUT_PW = "outside-pw"
OUT_NUMBER = "5550100"


@pytest.fixture
def itsp(tmp_path):
    k = Kamailio(str(tmp_path), {"siteA": TRUNK_PW, "siteB": "trunk-secret-B",
                                 OUT_NUMBER: OUT_PW}, trunks=("siteA", "siteB"))
    yield k
    k.stop()


def switchboard(itsp, **settings):
    base = {"SIP_USERS": "1001,1002,600", "TRUNK": "sip:siteA@%s:%d" % itsp.addr,
            "TRUNK_PASSWORD": TRUNK_PW, "TRUNK_INBOUND": "600"}
    base.update(settings)
    return HostMode(base)


@pytest.fixture
def site(itsp):
    sb = switchboard(itsp)
    yield sb
    sb.stop()


@pytest.fixture
def outside(itsp, tmp_path):
    o = Outside(itsp, OUT_NUMBER, OUT_PW, "127.0.0.21", str(tmp_path))
    yield o
    o.stop()


def messages(result, start):
    return [m for m in result.received() if first_line(m).startswith(start)]


def cseq_numbers(result, method):
    return [int(header_values(m, "CSeq")[0].split()[0]) for m in messages(result, method)]


def test_outgoing_call_answered_caller_hangs_up(itsp, site, outside):
    wait_trunk(site, "registered")
    outside.register()
    callee = outside.answer("uas_answer.xml")
    alice = Phone("1001", "127.0.0.11", site)
    try:
        alice.register_here()
        alice.send(alice.invite("05550100", "trunk-out-1"))
        alice.expect("SIP/2.0 180")
        ok = alice.expect("SIP/2.0 200")
        alice.send(alice.in_dialog("ACK", ok, 1))
        time.sleep(0.3)
        alice.send(alice.in_dialog("BYE", ok, 2))
        alice.expect("SIP/2.0 200")
        result = callee.wait()
    finally:
        alice.close()
    assert result.ok, result.report()
    # the phone never saw the upstream's challenges
    assert not [f for f in alice.firsts() if f.startswith(("SIP/2.0 401", "SIP/2.0 407"))]
    invite = messages(result, "INVITE")[0]
    # upstream sees the trunk account as the caller, the dialled number without the 0
    assert "sip:siteA@" in header_values(invite, "From", "f")[0]
    assert "sip:siteA@" in header_values(invite, "P-Asserted-Identity")[0]
    assert first_line(invite).startswith("INVITE sip:5550100@") or \
        "5550100" in header_values(invite, "To", "t")[0]
    # challenged INVITE (1) and BYE (3) answered with credentials: the outside saw 2 and 4
    assert cseq_numbers(result, "INVITE") == [2]
    assert cseq_numbers(result, "BYE") == [4]
    everything = "\n".join(m for _, m in result.messages) + "\n".join(site.lines)
    assert TRUNK_PW not in everything
    assert TRUNK_PW not in str(api_status(site))
