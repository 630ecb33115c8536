"""The registrar: REGISTER processing (RFC 3261 §10.3).

Validates the whole request first, then applies it, so a refused REGISTER
changes nothing. A binding is keyed by its contact URI; a contact from the same
phone (same +sip.instance, or the same source address and contact user) that
comes back from a new port or address replaces the old one: the binding moves.
"""

from switchboard.location import Binding
from switchboard.message import URI, ParseError, digits, param, parse_name_addr, uri_key

try:
    from micropython import const  # names starting with _ vanish from the .mpy
except ImportError:  # CPython
    const = int

_Q_SCALE = const(1000)  # q-values are kept as integers 0..1000 (q=0.7 -> 700)


def parse_q(text):
    """A q-value (RFC 3261 §20.10: 0, 1 or up to three decimals) as 0..1000, with integer
    arithmetic only (no float: 0.7 must give 700 on every interpreter); None when malformed."""
    text = text.strip()
    dot = text.find(".")
    whole = text if dot < 0 else text[:dot]
    frac = "" if dot < 0 else text[dot + 1:]
    if not digits(whole) or len(whole) > 1 or (frac and not digits(frac)) or len(frac) > 3:
        return None
    value = int(whole) * _Q_SCALE + int((frac + "000")[:3])
    return value if value <= _Q_SCALE else None


class Registrar:
    """REGISTER processing against a Location; config gives the users and expiry limits."""

    def __init__(self, config, location, log):
        self.config = config
        self.location = location
        self.log = log

    def register(self, req, source, now):
        """Handle a REGISTER: (status, reason, [(header, value)])."""
        cfg = self.config
        try:
            to_uri = URI(parse_name_addr(req.get("to"))[1])
        except ParseError as e:
            return 400, e.reason, []
        user = to_uri.user
        if not user:
            return 400, "Missing user in To", []
        if cfg.users and user not in cfg.users:
            return 404, "Not Found", []
        call_id = req.get("call-id")
        cseq = req.cseq()[0]
        expires_header = req.get("expires")
        default = cfg.reg_default_expires
        if expires_header is not None:
            if not digits(expires_header.strip()):
                return 400, "Malformed Expires", []
            default = int(expires_header.strip()[:10])
        contacts = req.values("contact")
        if "*" in contacts:
            if len(contacts) != 1 or expires_header is None or default != 0:
                return 400, "Invalid wildcard Contact", []
            for b in list(self.location.table.get(user, ())):
                if b.call_id != call_id or b.cseq < cseq:
                    self.location.remove(user, b)
                    self.log("info", "unregister %s contact=<%s>" % (user, b.uri))
            return self._ok(user, now)
        if len(contacts) > self.location.max_per_aor:
            # more than one extension may ever hold: retrying cannot help (not 503)
            return 403, "Forbidden: more than %d contacts" % self.location.max_per_aor, []
        # validate everything first
        changes = []
        keys = []
        for value in contacts:
            try:
                _, uri, params = parse_name_addr(value)
            except ParseError as e:
                return 400, e.reason, []
            expires = param(params, "expires")
            if expires is not None:
                if not digits(expires):
                    return 400, "Malformed expires parameter", []
                expires = int(expires[:10])
            else:
                expires = default
            if 0 < expires < cfg.reg_min_expires:
                return 423, "Interval Too Brief", [("Min-Expires", str(cfg.reg_min_expires))]
            expires = min(expires, cfg.reg_max_expires)
            key = uri_key(uri)
            if key in keys:
                continue  # the same contact twice: the first one counts
            keys.append(key)
            old = self._find(user, key)
            if old is not None and old.call_id == call_id and old.cseq >= cseq:
                return 500, "Request Out Of Order", [("Retry-After", "1")]
            instance = param(params, "+sip.instance") or ""
            q = param(params, "q")
            q = parse_q(q) if q else None
            if q is None:
                q = _Q_SCALE
            changes.append((uri, expires, old, instance, q))
        # what each contact replaces, and room for the rest, before anything changes: an
        # existing binding moves to at most one new contact of this request
        bindings = self.location.table.get(user, [])
        claimed = [old for _, _, old, _, _ in changes if old is not None]
        moves = []
        adding = 0
        for uri, expires, old, instance, _ in changes:
            moved = None
            if expires and old is None:
                moved = self._moved(bindings, instance, uri, source, claimed)
                if moved is None:
                    adding += 1
                else:
                    claimed.append(moved)
            moves.append(moved)
        if adding and (self.location.count + adding > self.location.max_bindings
                       or len(bindings) + adding > self.location.max_per_aor):
            return 503, "Service Unavailable", [("Retry-After", "60")]
        user_agent = req.get("user-agent") or ""
        for i in range(len(changes)):
            uri, expires, old, instance, q = changes[i]
            if expires == 0:
                if old is not None:
                    self.location.remove(user, old)
                    self.log("info", "unregister %s contact=<%s>" % (user, uri))
                continue
            if moves[i] is not None:
                self.location.remove(user, moves[i])
                self.log("info", "moved %s contact=<%s> -> <%s>" % (user, moves[i].uri, uri))
            if old is None:
                b = Binding(uri, source, now + expires * 1000, call_id, cseq, now,
                            user_agent, instance, q)
                self.location.add(user, b)
            else:
                b = old
                b.source = source
                b.expires_at = now + expires * 1000
                b.call_id = call_id
                b.cseq = cseq
                if b.user_agent != user_agent:  # a class attribute until it differs
                    b.user_agent = user_agent
                if b.q != q:
                    b.q = q
            self.log("info", "register %s contact=<%s> source=%s:%d expires=%d"
                     % (user, uri, source[0], source[1], expires))
        return self._ok(user, now)

    def _find(self, user, key):
        for b in self.location.table.get(user, ()):
            if uri_key(b.uri) == key:
                return b
        return None

    def _moved(self, bindings, instance, uri, source, claimed):
        """An existing binding of the same phone that this contact replaces, or None; a
        binding in claimed is already kept or replaced by another contact of the request."""
        try:
            contact_user = URI(uri).user
        except ParseError:
            contact_user = ""
        for b in bindings:
            if b in claimed:
                continue
            if instance and b.instance == instance:
                return b
            if not instance and not b.instance and b.source[0] == source[0]:
                try:
                    if URI(b.uri).user == contact_user:
                        return b
                except ParseError:
                    pass
        return None

    def register_again(self, req, now):
        """The Contact headers of the 200 for a retransmitted REGISTER that succeeded: the
        bindings of its To user as they are now (nothing changes)."""
        return self._ok(URI(parse_name_addr(req.get("to"))[1]).user, now)[2]

    def _ok(self, user, now):
        headers = []
        for b in self.location.lookup(user, now):
            left = max(0, (b.expires_at - now) // 1000)
            headers.append(("Contact", "<%s>;expires=%d" % (b.uri, left)))
        return 200, "OK", headers
