"""Digest authentication (RFC 3261 §22, RFC 7616, RFC 8760) with stateless nonces.

Passwords become HA1 values at start and are not kept. A nonce is a timestamp
with an HMAC over it under a per-boot secret, so any nonce we issued can be
checked without a table; nonce counts are remembered (bounded) so a captured
Authorization cannot be replayed. Sources that keep failing are refused for a
while.
"""

from binascii import hexlify

from switchboard.digest import hasher  # the hash backend: native, or one adafruit_hashlib part
from switchboard.message import address_user, same_uri, to_tag
from switchboard.ratelimit import Lockout

try:
    from micropython import const  # names starting with _ vanish from the .mpy
except ImportError:  # CPython
    const = int

_NONCE_LIFETIME = const(300)  # seconds before a nonce is stale
MAX_NONCES = 64  # nonce counts remembered
MAX_FAILING = 32  # sources with recent failures remembered
_FAILURES_BEFORE_BLOCK = const(5)
_BLOCK_MS = const(60000)
HASHES = {"SHA-256": "sha256", "MD5": "md5"}


def hexdigest(make, text):
    """Lower-case hex digest of text (str or bytes) with the hash constructor make."""
    data = text.encode() if isinstance(text, str) else text
    return hexlify(make(data).digest()).decode()


def hmac(make, key, msg):
    """HMAC (RFC 2104) built from the hash alone: boards have no hmac module."""
    if len(key) > 64:
        key = make(key).digest()
    key = key + b"\x00" * (64 - len(key))
    inner = make(bytes([b ^ 0x36 for b in key]) + msg).digest()
    return make(bytes([b ^ 0x5C for b in key]) + inner).digest()


def parse_credentials(value):
    """The parameters of a Digest Authorization header as a dict, or None."""
    value = value.strip()
    if value[:7].lower() != "digest ":
        return None
    out = {}
    rest = value[7:]
    i = 0
    n = len(rest)
    while i < n:
        while i < n and rest[i] in " ,\t":
            i += 1
        eq = rest.find("=", i)
        if eq < 0:
            break
        name = rest[i:eq].strip().lower()
        i = eq + 1
        if i < n and rest[i] == '"':
            end = rest.find('"', i + 1)
            if end < 0:
                return None
            out[name] = rest[i + 1:end]
            i = end + 1
        else:
            end = rest.find(",", i)
            end = n if end < 0 else end
            out[name] = rest[i:end].strip()
            i = end
    return out


class Auth:
    """The engine's auth hook: None to let a request through, or the answer to send."""

    def __init__(self, config, secret):
        self.mode = config.sip_auth
        self.realm = config.sip_domain or config.sip_address or "switchboard"
        self.secret = secret  # bytes, per boot
        self.algorithms = []  # offered, in SIP_AUTH_ALGORITHMS order (RFC 8760: preferred first)
        for label in config.auth_algorithms:
            make = hasher(HASHES[label])
            if make is not None:
                self.algorithms.append((label, make))
        # HA1s without a tuple, a string and a table slot per user and algorithm (94 B a user
        # on the board): users with a password -> their row; one bytes object per algorithm
        # (self.algorithms' order) holds every user's raw HA1 digest, row after row.
        self.ha1 = {}
        rows = [bytearray() for _ in self.algorithms]
        for user in config.users:
            password = config.users[user]
            if password and self.algorithms:
                self.ha1[user] = len(self.ha1)
                text = ("%s:%s:%s" % (user, self.realm, password)).encode()
                for k in range(len(rows)):
                    rows[k] += self.algorithms[k][1](text).digest()
            config.users[user] = ""  # the password itself is not kept
        config.sip_users = ""  # nor the SIP_USERS text it came in (read once, by Config)
        self.digests = [bytes(row) for row in rows]
        self.counts = {}  # nonce serial -> highest nc seen (MAX_NONCES; the oldest serial goes)
        self.failing = Lockout(_FAILURES_BEFORE_BLOCK, _BLOCK_MS, MAX_FAILING)
        self.stats = {"challenged": 0, "accepted": 0, "rejected": 0, "replayed": 0,
                      "blocked": 0}
        self.key_hash = hasher("sha256") or hasher("md5")  # for the nonce MAC
        self.serial = 0

    def shift_times(self, ms):
        """The board clock started a new epoch: the password lockouts move back by ms."""
        self.failing.shift_times(ms)

    def limits(self):
        """Use and limit of auth's bounded tables: {name: (use, limit)}."""
        return {"nonces": (len(self.counts), MAX_NONCES),
                "failing_sources": (len(self.failing), MAX_FAILING)}

    # the hook ------------------------------------------------------------
    def __call__(self, engine, req, source, now):
        answer = self._hook(req, source, now)
        if answer is None and req.get("proxy-authorization") is not None:
            self._consume(req)  # also in-dialog requests, which phones send with credentials
        return answer

    def _hook(self, req, source, now):
        if self.mode == "off" or not self.ha1 or self.key_hash is None:
            return None
        method = req.method
        if method == "REGISTER":
            user = address_user(req.get("to"))
            header, challenge, code = "authorization", "WWW-Authenticate", 401
        elif self.mode == "all" and method not in ("ACK", "CANCEL", "BYE", "PRACK") \
                and to_tag(req) is None:
            user = address_user(req.get("from"))
            header, challenge, code = "proxy-authorization", "Proxy-Authenticate", 407
        else:
            return None
        if user not in self.ha1:
            return None  # users without a password, or strangers (the registrar says 404)
        ip = source[0]
        if self.failing.blocked(ip, now):
            self.stats["blocked"] += 1
            return 403, "Forbidden (too many failed attempts)", []
        result = self.check(req, header, user, now)
        if result == "ok":
            self.stats["accepted"] += 1
            self.failing.succeeded(ip)
            return None
        if result in ("wrong", "replay"):
            self.stats["rejected"] += 1
            self.failing.failed(ip, now)
        reason = "Unauthorized" if code == 401 else "Proxy Authentication Required"
        self.stats["challenged"] += 1
        return code, reason, self.challenges(challenge, now, result == "stale")

    def _consume(self, req):
        """Credentials for our realm stop here (RFC 3261 §22.3): the callee never sees them."""
        realm = self.realm

        def other_realm(value):
            c = parse_credentials(value)
            return c is not None and c.get("realm") != realm

        req.remove("proxy-authorization", unless=other_realm)

    def challenges(self, header, now, stale):
        """One challenge header per offered algorithm, sharing a fresh nonce."""
        nonce = self.nonce(now)
        out = []
        for label, _ in self.algorithms:
            value = 'Digest realm="%s", nonce="%s", algorithm=%s, qop="auth"' % (
                self.realm, nonce, label)
            if stale:
                value += ", stale=true"
            out.append((header, value))
        return out

    def nonce(self, now, serial=None):
        """issued-second.serial.MAC: unique per challenge, checkable without a table."""
        if serial is None:
            self.serial = (self.serial + 1) & 0x3FFFFFFF  # a small int on the board
            serial = self.serial
        stamp = "%x.%x" % (now // 1000, serial)
        mac = hmac(self.key_hash, self.secret, stamp.encode())
        return stamp + "." + hexlify(mac[:12]).decode()

    def issued(self, nonce):
        """(second issued, serial) of a nonce we issued, or None."""
        parts = nonce.split(".")
        if len(parts) != 3 or len(parts[0]) > 10 or len(parts[1]) > 10:
            return None
        try:
            issued = int(parts[0], 16)
            serial = int(parts[1], 16)
        except ValueError:
            return None
        if self.nonce(issued * 1000, serial) != nonce:
            return None
        return issued, serial

    def check(self, req, header, user, now):
        """ok, none (no credentials), stale, wrong or replay."""
        creds = None
        for value in req.values(header):
            c = parse_credentials(value)
            if c is not None and c.get("realm") == self.realm:
                creds = c
                break
        if creds is None:
            return "none"
        label = creds.get("algorithm", "MD5").upper()
        make = None
        for i in range(len(self.algorithms)):
            if self.algorithms[i][0] == label:
                k, make = i, self.algorithms[i][1]
        if make is None or creds.get("username") != user:
            return "wrong"
        nonce = creds.get("nonce", "")
        issued = self.issued(nonce)
        if issued is None:
            return "stale"  # not ours (an old boot's): ask again
        age = now // 1000 - issued[0]
        if age > _NONCE_LIFETIME or age < 0:
            return "stale"
        if not same_uri(creds.get("uri", ""), req.uri):
            return "wrong"
        row = self.digests[k]
        size = len(row) // len(self.ha1)
        at = self.ha1[user] * size
        ha1 = hexlify(row[at:at + size]).decode()
        ha2 = hexdigest(make, "%s:%s" % (req.method, creds.get("uri", "")))
        qop = creds.get("qop")
        if qop:
            if qop != "auth":
                return "wrong"
            nc = creds.get("nc", "")
            cnonce = creds.get("cnonce", "")
            try:
                count = int(nc, 16)
            except ValueError:
                return "wrong"
            expected = hexdigest(make, "%s:%s:%s:%s:%s:%s" % (ha1, nonce, nc, cnonce, qop, ha2))
        else:
            count = None
            expected = hexdigest(make, "%s:%s:%s" % (ha1, nonce, ha2))
        if creds.get("response", "").lower() != expected:
            return "wrong"
        serial = issued[1]  # the MAC makes it ours: it names the nonce
        counts = self.counts
        seen = counts.get(serial)
        if seen is not None and (count is None or count <= seen):
            self.stats["replayed"] += 1
            return "replay"
        if seen is None and len(counts) >= MAX_NONCES:
            del counts[min(counts)]  # forget the oldest nonce remembered
        counts[serial] = count or 0
        return "ok"

