"""switchboard.config: defaults, overrides, validation, SIP_USERS."""

import pytest

from switchboard.config import INTEGERS, STRINGS, Config, parse_users


def env(mapping):
    """A getenv over a dict."""
    return mapping.get


def test_defaults():
    c = Config()
    assert c.errors == []
    assert c.sip_port == 5060
    assert c.http_port == 8080
    assert c.reg_default_expires == 3600
    assert c.reg_min_expires == 60
    assert c.reg_max_expires == 7200
    assert c.timer_c == 180
    assert c.call_idle_timeout == 10800
    assert c.max_message_size == 4096
    assert c.sip_host == "0.0.0.0"
    assert c.sip_address == ""  # 0.0.0.0 is no address to put in a Via
    assert c.sip_domain == ""
    assert c.sip_users == ""
    assert c.users == {}
    assert c.http_host == "0.0.0.0"
    assert c.log_level == "info"


def test_every_setting_has_an_attribute_with_its_default():
    c = Config(getenv=env({}))
    for name, default, low, high in INTEGERS:
        assert getattr(c, name.lower()) == default
        assert low <= default <= high
    for name, default in STRINGS:
        if name != "SIP_AUTH":  # derived from SIP_USERS when unset
            assert getattr(c, name.lower()) == default


def test_limits():
    c = Config(overrides={"MAX_BINDINGS": "10", "MAX_CALLS": 3})
    limits = c.limits()
    expected = {"bindings": 10, "contacts_per_aor": 4, "transactions": 48, "calls": 3,
                "history": 32, "message_size": 4096}
    assert {k: limits[k] for k in expected} == expected


def test_getenv_values_are_used():
    c = Config(getenv=env({"SIP_PORT": "5070", "TIMER_C": "30", "LOG_LEVEL": "debug",
                           "SIP_DOMAIN": "example.org"}))
    assert c.sip_port == 5070
    assert c.timer_c == 30
    assert c.log_level == "debug"
    assert c.sip_domain == "example.org"
    assert c.errors == []


def test_overrides_win_over_getenv():
    c = Config(getenv=env({"SIP_PORT": "5070", "LOG_LEVEL": "debug"}),
               overrides={"SIP_PORT": 5080})
    assert c.sip_port == 5080
    assert c.log_level == "debug"


def test_integers_from_toml_are_ints_already():
    c = Config(getenv=env({"REG_MAX_EXPIRES": 600, "SIP_PORT": " 5099 "}))
    assert c.reg_max_expires == 600
    assert c.sip_port == 5099


def test_empty_values_use_defaults_silently():
    c = Config(getenv=env({"SIP_PORT": "", "TIMER_C": None}))
    assert c.sip_port == 5060
    assert c.timer_c == 180
    assert c.errors == []


@pytest.mark.parametrize("name, value", [
    ("SIP_PORT", "abc"),
    ("SIP_PORT", "50.5"),
    ("TIMER_C", "3m"),
    ("REG_MIN_EXPIRES", "0x10"),
])
def test_bad_integer_uses_default_and_reports(name, value):
    c = Config(overrides={name: value})
    default = [d for n, d, _, _ in INTEGERS if n == name][0]
    assert getattr(c, name.lower()) == default
    assert len(c.errors) == 1
    assert name in c.errors[0]
    assert "not a number" in c.errors[0]
    assert repr(value) in c.errors[0]


@pytest.mark.parametrize("name, value", [
    ("SIP_PORT", "0"),
    ("SIP_PORT", "65536"),
    ("SIP_PORT", "-1"),
    ("TIMER_C", "3601"),
    ("MAX_MESSAGE_SIZE", "100"),
    ("MAX_TRANSACTIONS", "3"),
    ("CALL_IDLE_TIMEOUT", "9"),
])
def test_out_of_range_uses_default_and_reports(name, value):
    c = Config(overrides={name: value})
    default, low, high = [(d, lo, hi) for n, d, lo, hi in INTEGERS if n == name][0]
    assert getattr(c, name.lower()) == default
    assert len(c.errors) == 1
    assert name in c.errors[0]
    assert "outside %d..%d" % (low, high) in c.errors[0]


@pytest.mark.parametrize("name, value", [("SIP_PORT", "1"), ("SIP_PORT", "65535"),
                                         ("HTTP_PORT", "0"), ("CALL_HISTORY", "0")])
def test_range_limits_are_inclusive(name, value):
    c = Config(overrides={name: value})
    assert getattr(c, name.lower()) == int(value)
    assert c.errors == []


def test_several_errors_collected():
    c = Config(overrides={"SIP_PORT": "x", "TIMER_C": "0", "HTTP_PORT": "99999"})
    assert len(c.errors) == 3
    assert (c.sip_port, c.timer_c, c.http_port) == (5060, 180, 8080)


def test_min_above_max_expires_falls_back():
    c = Config(overrides={"REG_MIN_EXPIRES": "5000", "REG_MAX_EXPIRES": "4000"})
    assert (c.reg_min_expires, c.reg_max_expires) == (60, 7200)
    assert any("REG_MIN_EXPIRES" in e for e in c.errors)


def test_strings_are_stripped():
    c = Config(overrides={"SIP_DOMAIN": "  example.org ", "LOG_LEVEL": "warning\n"})
    assert c.sip_domain == "example.org"
    assert c.log_level == "warning"


def test_sip_address_from_sip_host():
    c = Config(overrides={"SIP_HOST": "192.168.1.50"})
    assert c.sip_address == "192.168.1.50"
    c = Config(overrides={"SIP_HOST": "0.0.0.0"})
    assert c.sip_address == ""
    c = Config(overrides={"SIP_HOST": ""})
    assert c.sip_address == ""


def test_explicit_sip_address_wins():
    c = Config(overrides={"SIP_HOST": "0.0.0.0", "SIP_ADDRESS": "10.0.0.1"})
    assert c.sip_address == "10.0.0.1"
    c = Config(overrides={"SIP_HOST": "127.0.0.1", "SIP_ADDRESS": "203.0.113.5"})
    assert c.sip_address == "203.0.113.5"


def test_sip_users_with_passwords():
    c = Config(overrides={"SIP_USERS": "1001:secret1,1002:secret2"})
    assert c.users == {"1001": "secret1", "1002": "secret2"}


def test_sip_users_without_passwords():
    c = Config(overrides={"SIP_USERS": "1001,1002,1003"})
    assert c.users == {"1001": "", "1002": "", "1003": ""}


def test_sip_users_spaces_and_empty_items():
    assert parse_users(" 1001:pw1 , 1002,, ,1003: ") == {"1001": "pw1", "1002": "",
                                                         "1003": ""}
    assert list(parse_users("1001 : pw")) == ["1001"]
    assert parse_users("") == {}
    assert parse_users(" , ") == {}


def test_sip_users_password_may_contain_colon():
    assert parse_users("1001:a:b") == {"1001": "a:b"}


def test_sip_users_mixed():
    c = Config(getenv=env({"SIP_USERS": "alice:pw, bob"}))
    assert c.users == {"alice": "pw", "bob": ""}
    assert list(c.users) == ["alice", "bob"]


def test_sip_auth_follows_passwords_unless_set():
    assert Config().sip_auth == "off"
    assert Config(overrides={"SIP_USERS": "1001,1002"}).sip_auth == "off"
    assert Config(overrides={"SIP_USERS": "1001:pw,1002"}).sip_auth == "register"
    c = Config(overrides={"SIP_USERS": "1001:pw", "SIP_AUTH": " ALL "})
    assert c.sip_auth == "all"
    assert c.errors == []


def test_bad_sip_auth_reported():
    c = Config(overrides={"SIP_USERS": "1001:pw", "SIP_AUTH": "sometimes"})
    assert c.sip_auth == "register"
    assert len(c.errors) == 1 and "SIP_AUTH" in c.errors[0]


def test_settings_toml_documents_every_key():
    """The example settings.toml names every setting the code reads."""
    import os

    from switchboard.config import INTEGERS, STRINGS

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with open(os.path.join(root, "settings.toml")) as f:
        text = f.read()
    for name in [i[0] for i in INTEGERS] + [s[0] for s in STRINGS]:
        assert "# %s = " % name in text, name
