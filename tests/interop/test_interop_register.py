"""Scenario 1: register with digest auth (SHA-256 where the phone supports it, MD5), re-register
(the phone refreshes its binding before it runs out), unregister.

Each phone's own trace shows the challenge, its credentials and the 200; the server's event
lines and /api/registrations show the binding come and go.
"""

import re

import pytest
from interop_helpers import contact_expires, header_values


def authorization(register):
    """(algorithm, response) of the Authorization header in a REGISTER's text."""
    values = header_values(register, "Authorization")
    assert values, "REGISTER without credentials:\n" + register
    value = values[0]
    algorithm = re.search(r"algorithm=\"?([\w-]+)", value)
    response = re.search(r"response=\"([0-9a-f]+)\"", value)
    assert response, value
    return (algorithm.group(1).upper() if algorithm else "MD5"), response.group(1)


def registered_users(lab):
    return {r["user"]: r["contacts"] for r in lab.api("/api/registrations")}


def register_cycle(lab, phone, algorithm):
    """The phone registered with algorithm; check, wait for a refresh, then unregister."""
    contact = "%s:%d" % (phone.ip, phone.port)
    # the phone's trace: 401 with a challenge, REGISTER with credentials, 200 listing its contact
    challenge = phone.wait_received("SIP/2.0 401", ("REGISTER\n",))
    assert "algorithm=" + algorithm in challenge, challenge
    ok = phone.wait_received("SIP/2.0 200", ("REGISTER\n",))
    assert contact_expires(ok, contact) is not None, ok
    credentials = [authorization(r) for r in phone.sent("REGISTER ") if "Authorization:" in r]
    assert credentials, "the phone never sent credentials"
    used, response = credentials[0]
    assert used == algorithm, credentials
    assert len(response) == (64 if algorithm == "SHA-256" else 32), response
    lab.wait_event(r"register %s contact=<sip:%s[^>]*@%s[;>]" % (phone.ext, phone.ext, contact))
    assert registered_users(lab)[phone.ext][0]["source"] == contact

    # re-register: the phone refreshes before its 4-second binding runs out
    mark = phone.mark()
    phone.wait_received("SIP/2.0 200", ("REGISTER\n",), timeout=10, since=mark)
    refresh = [r for r in phone.sent("REGISTER ", since=mark) if "Authorization:" in r]
    assert refresh and authorization(refresh[-1])[0] == algorithm, refresh
    assert len(lab.events(r"\bregister %s " % phone.ext)) >= 2
    assert registered_users(lab)[phone.ext][0]["expires_in"] <= 4

    # unregister
    mark = phone.mark()
    phone.unregister()
    gone = phone.wait_received("SIP/2.0 200", ("REGISTER\n",), timeout=10, since=mark)
    removal = [r for r in phone.sent("REGISTER ", since=mark) if "Authorization:" in r]
    assert removal, "no authenticated REGISTER to unregister"
    assert re.search(r"(?im)^Expires: *0\s*$|;expires=0\b", removal[-1]), removal[-1]
    assert contact_expires(gone, contact) is None, gone
    lab.wait_event(r"unregister %s contact=" % phone.ext)
    lab.wait_api("/api/registrations", lambda regs: not regs, what="no registrations")


def test_register_sha256_reregister_unregister_linphone(lab):
    lab.start_server(REG_MIN_EXPIRES=1)
    phone = lab.phone("linphone", "1001", expires=4)
    assert phone.status_register().startswith("registered,")
    register_cycle(lab, phone, "SHA-256")
    assert phone.status_register() == "registered=0"
    phone.assert_only_proxy()


@pytest.mark.parametrize("stack", ["linphone", "baresip"])
def test_register_md5_reregister_unregister(lab, stack):
    lab.start_server(md5_only=True, REG_MIN_EXPIRES=1)
    phone = lab.phone(stack, "1001", expires=4)
    register_cycle(lab, phone, "MD5")
    phone.assert_only_proxy()


def test_register_md5_reregister_unregister_sipp(lab):
    lab.start_server(md5_only=True)
    phone = lab.sipp_phone("1001")
    contact = "%s:%d" % (phone.ip, phone.port)
    for attempt in (1, 2):  # register, then re-register (same Call-ID, higher CSeq)
        run = phone.register(expires=600)
        assert run.ok, run.report()
        challenge = run.received()[0]
        assert challenge.startswith("SIP/2.0 401"), run.report()
        assert 'algorithm=MD5' in challenge and "SHA-256" not in challenge, challenge
        algorithm, response = authorization(run.sent()[1])
        assert (algorithm, len(response)) == ("MD5", 32)
        assert contact_expires(run.received()[-1], contact) == 600, run.report()
        assert len(lab.events(r"\bregister 1001 contact=<sip:1001@%s>" % contact)) == attempt
    assert lab.api("/api/registrations")[0]["contacts"][0]["source"] == contact
    run = phone.register(expires=0)
    assert run.ok, run.report()
    assert contact_expires(run.received()[-1], contact) is None, run.report()
    lab.wait_event(r"unregister 1001 contact=<sip:1001@%s>" % contact)
    assert lab.api("/api/registrations") == []
