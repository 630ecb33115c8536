"""Interop suite: real SIP stacks (baresip, linphonec, SIPp) through Switchboard in host mode with
digest authentication on (SIP_USERS with passwords, SIP_AUTH=all).

`lab` gives a test one server and its phones and stops them all by PID afterwards, also when
the test fails; a failed test gets every party's output (server events, phone consoles, SIP
traces) in its report and under its tmp_path/evidence/. A missing tool fails the test.

Each scenario runs once per stack (interop_helpers.STACKS): linphonec authenticates with
SHA-256 against a server that offers SHA-256 first, then MD5 (SIP_AUTH_ALGORITHMS);
baresip 1.0.0 and SIPp 3.6.1 only know MD5 and run against the default, MD5 alone.
"""

import os

import pytest
from interop_helpers import Lab


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.when == "call" and report.failed:
        item.interop_failed = True
    return report


@pytest.fixture
def lab(tmp_path, request):
    lab = Lab(tmp_path)
    try:
        yield lab
        if lab.server is not None and not getattr(request.node, "interop_failed", False):
            problems = lab.server_problems()
            assert not problems, "the server reported errors:\n" + "\n".join(problems)
    finally:
        lab.stop()
        if getattr(request.node, "interop_failed", False):
            folder = tmp_path / "evidence"
            os.makedirs(folder, exist_ok=True)
            for title, text in lab.evidence():
                name = "".join(c if c.isalnum() or c in "-_" else "_" for c in title)
                (folder / (name + ".txt")).write_text(text)
                tail = text if len(text) < 6000 else "...\n" + text[-6000:]
                print("\n===== %s =====\n%s" % (title, tail))
            print("\n(full outputs in %s)" % folder)
