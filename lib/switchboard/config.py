"""Settings: names, defaults and limits in one place, read through an injected getenv.

On a board getenv is os.getenv (CircuitPython reads settings.toml itself); in host
mode code.py passes one that looks in the environment, then settings.toml.
"""

# (name, default, minimum, maximum) for integer settings; strings follow.
INTEGERS = (
    ("SIP_PORT", 5060, 1, 65535),
    ("HTTP_PORT", 8080, 0, 65535),
    ("REG_DEFAULT_EXPIRES", 3600, 1, 86400),
    ("REG_MIN_EXPIRES", 60, 1, 86400),
    ("REG_MAX_EXPIRES", 7200, 1, 604800),
    ("MAX_BINDINGS", 64, 1, 100000),
    ("MAX_CONTACTS_PER_AOR", 4, 1, 32),
    ("MAX_TRANSACTIONS", 48, 4, 100000),
    ("MAX_CALLS", 16, 1, 10000),
    ("CALL_HISTORY", 32, 0, 10000),
    ("TIMER_C", 180, 1, 3600),
    ("CALL_IDLE_TIMEOUT", 10800, 10, 604800),
    ("MAX_MESSAGE_SIZE", 4096, 512, 65535),
    ("RATE_LIMIT", 50, 0, 1000000),
    ("RATE_BURST", 100, 1, 1000000),
    ("RATE_BLOCK", 60, 1, 86400),
    ("MAX_SOURCES", 64, 4, 100000),
    ("QUALIFY_INTERVAL", 60, 0, 3600),
    ("MESSAGE_TRACE", 32, 0, 10000),
    ("OVERLOAD", 1, 0, 1),  # overload control (switchboard.overload); boards: from the profile
)
# Settings that turn the PBX dialplan on (switchboard.dialplan.NAMES; that module and
# switchboard.pbx are imported only when one of these is set).
PBX_SETTINGS = ("RING_GROUPS", "HUNT_GROUPS", "HUNT_TIMEOUT", "ALIASES", "FORWARD_ALWAYS",
                "FORWARD_BUSY", "FORWARD_NOANSWER", "FORWARD_NOANSWER_AFTER", "DND", "INTERCOM")
STRINGS = (
    ("SIP_HOST", "0.0.0.0"),
    ("SIP_ADDRESS", ""),
    ("SIP_DOMAIN", ""),
    ("SIP_USERS", ""),
    ("HTTP_HOST", "0.0.0.0"),
    ("LOG_LEVEL", "info"),
    ("DASHBOARD_PASSWORD", ""),
    ("SIP_AUTH", ""),
    ("SIP_AUTH_ALGORITHMS", "MD5"),
)


class Config:
    """Attribute per setting, lower-case name (SIP_PORT -> sip_port)."""

    def __init__(self, getenv=None, overrides=None):
        self.errors = []
        for name, default, low, high in INTEGERS:
            value = _get(getenv, overrides, name)
            if value is None or value == "":
                value = default
            else:
                try:
                    value = int(value)
                except (TypeError, ValueError):
                    self.errors.append("%s=%r is not a number; using %d" % (name, value, default))
                    value = default
                if not low <= value <= high:
                    self.errors.append("%s=%d is outside %d..%d; using %d"
                                       % (name, value, low, high, default))
                    value = default
            setattr(self, name.lower(), value)
        for name, default in STRINGS:
            value = _get(getenv, overrides, name)
            setattr(self, name.lower(), default if value is None else str(value).strip())
        if self.reg_min_expires > self.reg_max_expires:
            self.errors.append("REG_MIN_EXPIRES is above REG_MAX_EXPIRES; using defaults")
            self.reg_min_expires, self.reg_max_expires = 60, 7200
        self.users = parse_users(self.sip_users)
        auth = self.sip_auth.lower()
        if auth not in ("", "off", "register", "all"):
            self.errors.append("SIP_AUTH=%r is not off, register or all" % self.sip_auth)
            auth = ""
        if not auth:
            auth = "register" if any(self.users.values()) else "off"
        self.sip_auth = auth
        algorithms = []
        for name in self.sip_auth_algorithms.upper().replace(" ", "").split(","):
            if name in ("MD5", "SHA-256") and name not in algorithms:
                algorithms.append(name)
            elif name:
                self.errors.append("SIP_AUTH_ALGORITHMS: %r is not MD5 or SHA-256" % name)
        self.auth_algorithms = algorithms or ["MD5"]
        if not self.sip_address and self.sip_host not in ("", "0.0.0.0"):
            self.sip_address = self.sip_host

    def limits(self):
        return {
            "bindings": self.max_bindings, "contacts_per_aor": self.max_contacts_per_aor,
            "transactions": self.max_transactions, "calls": self.max_calls,
            "history": self.call_history, "message_size": self.max_message_size,
            "sources": self.max_sources, "message_trace": self.message_trace,
        }


def _get(getenv, overrides, name):
    if overrides and name in overrides:
        return overrides[name]
    if getenv is None:
        return None
    return getenv(name)


def parse_users(text):
    """{"1001": "secret" or ""} from "1001:secret,1002" (empty text: anyone may register)."""
    users = {}
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        colon = item.find(":")
        if colon < 0:
            users[item] = ""
        else:
            users[item[:colon].strip()] = item[colon + 1:]
    return users
