"""Host mode itself: settings file and environment, banner, clean stop on SIGTERM and Ctrl-C."""

import os
import signal

from hostmode import HostMode


def test_settings_file_then_environment(tmp_path):
    (tmp_path / "settings.toml").write_text(
        '# comment\nSIP_USERS = "2001,2002"\nREG_MAX_EXPIRES = 600\nSIP_DOMAIN = "office.lan"\n')
    with HostMode({"SIP_DOMAIN": "lab.lan"}, cwd=str(tmp_path)) as host:
        out = host.output()
        assert "Users: 2001, 2002; authentication: off" in out  # from the file
        assert "domain lab.lan" in out  # the environment wins
        assert "point phones at sip:127.0.0.1:%d" % host.sip_port in out
        assert "Dashboard: http://127.0.0.1:%d/" % host.http_port in out


def test_bad_settings_are_reported_not_fatal(tmp_path):
    (tmp_path / "settings.toml").write_text('SIP_USERS = "2001"\nthis is not toml\n')
    with HostMode({"REG_MIN_EXPIRES": "soon"}, cwd=str(tmp_path)) as host:
        out = host.output()
        assert "settings.toml is not valid TOML" in out
        assert "REG_MIN_EXPIRES='soon' is not a number; using 60" in out


def test_sigterm_stops_cleanly():
    host = HostMode()
    assert host.stop() == 0
    assert "Switchboard stopped" in host.output()


def test_ctrl_c_stops_cleanly():
    host = HostMode()
    os.kill(host.proc.pid, signal.SIGINT)
    host.proc.wait(timeout=5)
    assert host.proc.returncode == 0
    assert "Switchboard stopped" in host.output()
    host.stop()


def test_port_in_use_is_a_readable_error():
    with HostMode() as first:
        second = None
        try:
            second = HostMode({"SIP_PORT": first.sip_port})
        except AssertionError as e:
            assert "cannot open SIP port" in str(e)
        else:
            second.stop()
            raise AssertionError("a second server bound the same port")


def test_http_port_zero_turns_the_dashboard_off():
    with HostMode({"HTTP_PORT": 0}) as host:
        assert "Dashboard:" not in host.output()
        assert "Switchboard ready" in host.output()
