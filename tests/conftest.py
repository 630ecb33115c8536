"""Shared pytest setup: a skipped test is a failed test here.

Interop tests (sipp, baresip, Chromium, the MicroPython VM) must fail when their tool is
missing, never skip quietly; `bash tools/test` installs every tool they need. xfail is left alone.
"""

import pytest

SKIP_IS_FAILURE = "skipped tests count as failures in this project (see tests/conftest.py)"


def _reason(longrepr):
    # A skip's longrepr is (path, lineno, reason).
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return "%s:%s: %s" % longrepr
    return str(longrepr)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = "%s\n%s" % (SKIP_IS_FAILURE, _reason(report.longrepr))
    return report


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector):
    report = yield
    if report.skipped:
        report.outcome = "failed"
        report.longrepr = "%s (whole module skipped)\n%s" % (
            SKIP_IS_FAILURE,
            _reason(report.longrepr),
        )
    return report
