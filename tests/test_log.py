"""Console lines and LOG_LEVEL filtering."""

from switchboard.clock import Clock
from switchboard.log import Log


def test_level_filter_and_uptime_prefix():
    lines = []
    ticks = [0]
    log = Log("warning", Clock(lambda: ticks[0]), lines.append)
    log("info", "quiet")
    log("debug", "quieter")
    ticks[0] = 61_234
    log("warning", "loud")
    log("error", "louder")
    assert lines == ["61.234 WARNING loud", "61.234 ERROR louder"]


def test_unknown_level_means_info():
    lines = []
    log = Log("chatty", None, lines.append)
    log("debug", "no")
    log("info", "yes")
    assert lines == ["INFO yes"]
