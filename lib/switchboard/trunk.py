"""A SIP trunk to a bigger server (an ITSP, Kamailio, Asterisk, a FRITZ!Box).

- Outbound registration (RFC 3261 §10.2) with digest (§22.2; MD5 and SHA-256, qop=auth,
  RFC 7616, RFC 8760), refreshed before expiry, back-off 30 s doubling to 10 min on failure,
  again at once when our address changes.
- Outgoing calls (TRUNK_OUTBOUND) through a signalling-only back-to-back user agent: the
  phone's dialog ends here (we are its UAS) and a new dialog starts towards the upstream
  (we are its UAC, §12, §13, §15) with its own Call-ID, tags, CSeq and the trunk account as
  From and P-Asserted-Identity. Upstream 401/407 challenges are answered with the trunk
  credentials on that leg only, so the phone never sees them and neither leg's CSeq jumps.
  In-dialog requests (re-INVITE, UPDATE, INFO, REFER, NOTIFY, BYE) are re-originated on the
  other leg; CANCEL and ACK are the hop's own.
- Incoming calls: an initial request from the trunk's address only (ip and port) gets its
  Request-URI rewritten to the DID's target and is then routed and proxied like any other
  (the Router: extensions, and groups or aliases when a dialplan is installed).

Sans-I/O like the engine: the engine hands this module the requests, ACKs, CANCELs and
responses that are its own (Engine.gateway) and runs tick(); host names are resolved by the
shell (Resolver, with the shell's resolve function), never here. Imported only when TRUNK is
set (install()).
"""

from switchboard import VERSION
from switchboard.auth import HASHES, hasher, hexdigest, parse_credentials
from switchboard.message import (
    URI,
    Message,
    ParseError,
    address_user,
    digits,
    param,
    parse_name_addr,
    to_tag,
)
from switchboard.router import is_ip
from switchboard.transaction import (
    CANCEL,
    DELIVER,
    LINGER,
    SEND,
    SEND_CANCEL,
    STRAY_2XX,
    T1,
    T2,
    TIMEOUT,
    ClientTransaction,
    TransactionTable,
    event_for,
    hop_request,
    sibling_key,
)

SERVER = "Switchboard/" + VERSION
BACKOFF_FIRST = 30000  # ms before the first retry of a failed registration
BACKOFF_MAX = 600000  # doubling up to this
MAX_AUTH_TRIES = 2  # challenges answered for one request before giving up
REFRESH_MARGIN = 30  # seconds before expiry the registration is refreshed (at least)
# headers an in-dialog request or a response keeps when it crosses to the other leg
COPIED = (("content-type", "Content-Type"), ("refer-to", "Refer-To"),
          ("referred-by", "Referred-By"), ("event", "Event"),
          ("subscription-state", "Subscription-State"))
TARGET_REFRESH = ("INVITE", "UPDATE", "SUBSCRIBE", "NOTIFY", "REFER")
REGISTERING = "registering"
REGISTERED = "registered"
FAILING = "failing"


class Settings:
    """TRUNK, TRUNK_PASSWORD, TRUNK_AUTH_USER, TRUNK_EXPIRES, TRUNK_OUTBOUND, TRUNK_STRIP,
    TRUNK_INBOUND, TRUNK_DIDS from getenv (the same one Config reads); bad values in errors,
    ok False when the trunk cannot run at all."""

    def __init__(self, getenv):
        self.errors = []

        def get(name):
            value = getenv(name)
            return "" if value is None else str(value).strip()

        def number(name, default, low, high):
            text = get(name)
            if not text:
                return default
            if not digits(text) or not low <= int(text) <= high:
                self.errors.append("%s=%r is not a number %d..%d; using %d"
                                   % (name, text, low, high, default))
                return default
            return int(text)

        text = get("TRUNK")
        self.ok = True
        self.user = self.host = ""
        self.port = 5060
        self.domain = ""  # host[:port] as written: the upstream's own name for itself
        try:
            uri = URI(text)
            if uri.scheme != "sip" or not uri.user or not uri.host or "@" not in text:
                raise ParseError("no user")
            self.user = uri.user
            self.host = uri.host
            self.port = uri.port or 5060
            self.domain = uri.host if uri.port is None else "%s:%d" % (uri.host, uri.port)
        except ParseError:
            self.ok = False
            self.errors.append("TRUNK=%r is not sip:USER@HOST[:PORT]; trunk off" % text)
        self.password = get("TRUNK_PASSWORD")
        self.auth_user = get("TRUNK_AUTH_USER") or self.user
        self.expires = number("TRUNK_EXPIRES", 300, 60, 86400)
        self.outbound = get("TRUNK_OUTBOUND") or "0"
        prefix = self.outbound
        if prefix != "*" and not _dialable(prefix):
            self.errors.append("TRUNK_OUTBOUND=%r is not a dial prefix or *; using 0" % prefix)
            self.outbound = prefix = "0"
        self.strip = number("TRUNK_STRIP", 0 if prefix == "*" else len(prefix), 0, 16)
        self.inbound = get("TRUNK_INBOUND")
        self.dids = {}
        for item in get("TRUNK_DIDS").split(","):
            item = item.strip()
            if not item:
                continue
            eq = item.find("=")
            if eq <= 0 or not item[eq + 1:].strip():
                self.errors.append("TRUNK_DIDS: %r is not NUMBER=TARGET" % item)
                continue
            self.dids[item[:eq].strip()] = item[eq + 1:].strip()


def _dialable(text):
    """Digits with an optional leading +, or * and # (what a keypad dials)."""
    if not text:
        return False
    for ch in text.lstrip("+"):
        if not ("0" <= ch <= "9" or ch in "*#"):
            return False
    return True


def credentials(challenge, method, uri, user, password, cnonce, nc=1):
    """The Authorization value answering one WWW-/Proxy-Authenticate value (RFC 7616 §3.4,
    RFC 8760), or None for an algorithm or qop we cannot do. The realm is the challenge's."""
    c = parse_credentials(challenge)
    if c is None or "nonce" not in c:
        return None
    label = c.get("algorithm", "MD5").upper()
    name = HASHES.get(label)
    make = hasher(name) if name else None
    if make is None:
        return None
    realm = c.get("realm", "")
    nonce = c["nonce"]
    ha1 = hexdigest(make, "%s:%s:%s" % (user, realm, password))
    ha2 = hexdigest(make, "%s:%s" % (method, uri))
    parts = ['Digest username="%s"' % user, 'realm="%s"' % realm, 'nonce="%s"' % nonce,
             'uri="%s"' % uri]
    qops = [q.strip() for q in c.get("qop", "").split(",") if q.strip()]
    if qops:
        if "auth" not in qops:
            return None
        count = "%08x" % nc
        parts.append('response="%s"' % hexdigest(make, "%s:%s:%s:%s:auth:%s" % (
            ha1, nonce, count, cnonce, ha2)))
        parts.append('cnonce="%s", qop=auth, nc=%s' % (cnonce, count))
    else:
        parts.append('response="%s"' % hexdigest(make, "%s:%s:%s" % (ha1, nonce, ha2)))
    parts.append("algorithm=%s" % label)
    if "opaque" in c:
        parts.append('opaque="%s"' % c["opaque"])
    return ", ".join(parts)


class Leg:
    """One side of a trunk call as our user agent sees it (§12): the dialog's Call-ID, the
    From we send (our tag), the To we send (the peer's tag once known), the remote target,
    the route set and where requests go (dest: None means the trunk server)."""

    def __init__(self, call_id, local, remote, target, dest, upstream):
        self.call_id = call_id
        self.local = local
        self.remote = remote
        self.target = target
        self.dest = dest
        self.upstream = upstream
        self.route = []
        self.cseq = 0  # our last CSeq on this leg
        self.invite_cseq = 0  # CSeq of our last INVITE on it (its ACK has the same)
        self.ack = None  # (bytes, dest) of the last ACK we sent, again for a 2xx resent
        self.other = None

    def tag(self):
        return param(parse_name_addr(self.local)[2], "tag")


class TrunkCall:
    """A call through the trunk: the phone's leg and the upstream leg."""

    def __init__(self, phone, up, server, record, now):
        self.phone = phone
        self.up = up
        phone.other = up
        up.other = phone
        self.server = server  # the phone's INVITE server transaction until answered
        self.invite = None  # the upstream INVITE's client transaction (latest try)
        self.record = record  # the calls.Call the dashboard shows
        self.answered = False
        self.cancelled = False
        self.ended = False
        self.ack_from = None  # the leg that owes us an ACK for the 2xx we relayed to it
        self.last = now

    def leg(self, call_id):
        return self.phone if call_id == self.phone.call_id else self.up


class Pending:
    """A request we sent on a leg (or a REGISTER: call and leg None), kept to send again
    with credentials; origin is the other leg's server transaction it answers."""

    def __init__(self, call, leg, msg, origin):
        self.call = call
        self.leg = leg
        self.msg = msg  # without Via
        self.origin = origin
        self.tries = 0


class Trunk:
    """The trunk: registration, the B2BUA for outgoing calls, the door for incoming ones.

    settings: Settings; engine: the Engine it plugs into (engine.gateway = this).
    """

    def __init__(self, settings, engine):
        self.s = settings
        self.engine = engine
        self.here = engine.here
        self.log = engine.log
        config = engine.config
        self.max_calls = config.max_calls
        self.idle = config.call_idle_timeout * 1000
        self.txns = TransactionTable(max(8, config.max_calls * 4), config.timer_c * 1000,
                                     compact=False)  # its 2xx re-ACKs need the branch
        self.calls = {}  # Call-ID of either leg -> TrunkCall
        self.servers = {}  # the phone's INVITE server key -> TrunkCall, until answered
        self.resend = []  # [call, bytes, dest, due, interval, give_up]: 2xx until ACKed
        self.housekeeping = 0
        # registration
        self.server = None  # (ip, port) of the upstream; set by set_server() for a name
        self.by_name = not is_ip(settings.host)
        self.fresh = False  # the name was resolved for the REGISTER due now
        self.want_resolve = False  # the shell's Resolver should resolve the name now
        self.state = REGISTERING
        self.last_status = 0
        self.last_reason = ""
        self.next_try = 0  # ms: the next REGISTER (a refresh when registered)
        self.expires_at = 0
        self.backoff = BACKOFF_FIRST
        self.registering = None  # the REGISTER in flight (a ClientTransaction)
        self.registered_as = None  # our host:port in the Contact last registered
        self.reg_call_id = engine.proxy.new_id() + "@" + self.here.address
        self.reg_tag = "tk" + engine.proxy.new_id()
        self.reg_cseq = 0
        self.nc = 0
        if not self.by_name:
            self.server = (settings.host, settings.port)

    # settings helpers ------------------------------------------------------------------
    def from_trunk(self, source):
        """Is source the upstream server (its address and port)?"""
        return self.server is not None and source[0] == self.server[0] and \
            source[1] == self.server[1]

    def registered(self, now):
        return self.state == REGISTERED and now < self.expires_at

    def guard(self, hook):
        """The engine's auth hook, without challenges for the upstream server (it has no
        credentials of ours; it is known by its address)."""
        def checked(engine, req, source, now):
            if self.from_trunk(source):
                return None
            return hook(engine, req, source, now)
        return checked

    def new_id(self):
        return self.engine.proxy.new_id()

    def status(self, now):
        """The trunk for /api/status: account (no password), server, state, the last
        failure, seconds to the next try or refresh, live calls."""
        return {
            "account": "sip:%s@%s" % (self.s.user, self.s.domain),
            "server": None if self.server is None else "%s:%d" % self.server,
            "state": self.state if self.state != REGISTERED or self.registered(now)
            else FAILING,
            "last_status": self.last_status, "last_reason": self.last_reason,
            "next_try": max(0, (self.next_try - now) // 1000),
            "expires_in": max(0, (self.expires_at - now) // 1000) if self.registered(now)
            else None,
            "calls": len(self.calls) // 2,
        }

    def shift_times(self, ms):
        """The clock started a new epoch (board.Running.shift_times): every time stored
        here, and in the trunk's transactions, moves back by ms."""
        self.next_try -= ms
        self.expires_at -= ms
        self.housekeeping -= ms
        for r in self.resend:
            r[3] -= ms
            r[5] -= ms
        for call in self.calls.values():
            call.last -= ms
        self.txns.shift_times(ms)

    # name resolution (the shell calls these) -------------------------------------------
    def set_server(self, ip, now):
        """The shell resolved the trunk's host name to ip."""
        self.server = (ip, self.s.port)
        self.fresh = True
        self.want_resolve = False
        self.next_try = min(self.next_try, now)

    def register_now(self, now):
        """Register at the next tick (the link came back: NAT bindings may be gone)."""
        if self.registering is None:
            self.next_try = now
            self.backoff = BACKOFF_FIRST

    def resolve_failed(self, why, now):
        self.want_resolve = False
        self._failed(0, "cannot resolve %s: %s" % (self.s.host, why), now)

    # registration ---------------------------------------------------------------------
    def _register(self, now, out):
        s = self.s
        here = self.here
        self.reg_cseq += 1
        m = Message()
        m.method = "REGISTER"
        m.uri = "sip:" + s.domain
        m.add("Max-Forwards", "70")
        m.add("From", "<sip:%s@%s>;tag=%s" % (s.user, s.domain, self.reg_tag))
        m.add("To", "<sip:%s@%s>" % (s.user, s.domain))
        m.add("Call-ID", self.reg_call_id)
        m.add("CSeq", "%d REGISTER" % self.reg_cseq)
        m.add("Contact", "<sip:%s@%s>" % (s.user, here.sent_by))
        m.add("Expires", str(s.expires))
        m.add("User-Agent", SERVER)
        self.registered_as = here.sent_by
        self.registering = self._send(Pending(None, None, m, None), self.server, now, out)

    def _registered(self, resp, now):
        mine = "sip:%s@%s" % (self.s.user, self.registered_as)
        expires = None
        for value in resp.values("contact"):
            try:
                _, uri, params = parse_name_addr(value)
            except ParseError:
                continue
            if uri == mine and digits(param(params, "expires") or ""):
                expires = int(param(params, "expires"))
        if expires is None:
            text = (resp.get("expires") or "").strip()
            expires = int(text) if digits(text) and len(text) < 8 else self.s.expires
        expires = max(expires, 1)
        refresh = max(expires // 2, expires - REFRESH_MARGIN) if expires > 2 else 1
        was = self.state
        self.state = REGISTERED
        self.last_status = resp.status
        self.last_reason = resp.reason
        self.expires_at = now + expires * 1000
        self.next_try = now + refresh * 1000
        self.backoff = BACKOFF_FIRST
        if was != REGISTERED:
            self.log("info", "trunk registered as sip:%s@%s at %s:%d (expires %d s)"
                     % (self.s.user, self.s.domain, self.server[0], self.server[1], expires))

    def _failed(self, status, reason, now):
        self.state = FAILING
        self.last_status = status
        self.last_reason = reason
        self.expires_at = 0
        self.next_try = now + self.backoff
        self.log("warning", "trunk sip:%s@%s not registered: %s%s; next try in %d s"
                 % (self.s.user, self.s.domain, "%d " % status if status else "", reason,
                    self.backoff // 1000))
        self.backoff = min(self.backoff * 2, BACKOFF_MAX)

    # the engine's hooks ----------------------------------------------------------------
    def request(self, txn, req, ruri, source, now, out):
        """A request the engine is about to dispatch: True when the trunk took it (an
        in-dialog request of a trunk call, a call out, a request from the upstream that is
        ours to answer); False leaves it to the engine (an incoming call, its Request-URI
        rewritten for the router)."""
        call = self.calls.get(req.get("call-id"))
        tagged = to_tag(req) is not None
        if call is not None and tagged and self._peer(call, req, source):
            self._in_dialog(call, call.leg(req.get("call-id")), txn, req, now, out)
            return True
        if self.from_trunk(source):
            return self._incoming(txn, req, ruri, tagged, now, out)
        if tagged or req.method != "INVITE" or not self.here.is_local(ruri):
            return False
        number = self._outside(ruri.user or "", now)
        if number is None:
            return False
        self._call_out(txn, req, number, source, now, out)
        return True

    def ack(self, req, key, source, now, out):
        """An ACK: True when it is a trunk call's ACK for a 2xx we relayed (it goes on to the
        other leg) or a stray one of ours; False leaves it to the engine (non-2xx ACKs end
        their server transactions there)."""
        call = self.calls.get(req.get("call-id"))
        if call is None or not self._peer(call, req, source):
            return False
        server = self.engine.txns.get(key)
        if server is not None and server.status >= 300:
            return False
        leg = call.leg(req.get("call-id"))
        if call.ack_from is leg:
            call.ack_from = None
            self.resend = [r for r in self.resend if r[0] is not call]
            other = leg.other
            m = self._dialog_request(other, "ACK", other.invite_cseq)
            _copy(req, m)
            dest = self._dest(other)
            data = self._stamp(m, "z9hG4bKtk" + self.new_id())
            other.ack = (data, dest)
            out.append((data, dest))
        call.last = now
        return True

    def _peer(self, call, req, source):
        """Does source belong to the leg whose Call-ID req carries? The phone's leg takes
        requests from the phone's address only, the upstream leg from the trunk server or
        the next hop of its dialog: knowing a Call-ID is not enough to hang up a call."""
        leg = call.leg(req.get("call-id"))
        if not leg.upstream:
            return source[0] == leg.dest[0]
        dest = self._dest(leg)
        return self.from_trunk(source) or (dest is not None and source[0] == dest[0])

    def cancel(self, req, key, reply_to, now, out):
        """A CANCEL for the phone's INVITE of a call out: 200, 487 to the INVITE, CANCEL
        upstream. False when the INVITE is not ours."""
        call = self.servers.get(key)
        if call is None:
            return False
        self.engine.proxy.answer(out, req, 200, "OK", dest=reply_to)
        if not call.answered and not call.cancelled:
            call.cancelled = True
            self._relay(call, call.phone, call.server, 487, "Request Terminated", None, now,
                        out)
            ct = call.invite
            if ct is not None and ct.pending():
                self._run(ct, ct.context, self.txns.handle(ct, CANCEL, now), None, now, out)
            self._forget(call)
        return True

    def response(self, resp, now, out):
        """A response: True when it answers one of our requests (by its Via branch)."""
        via = resp.top_via()
        if via is None or "%s:%s" % (via.host, via.port) != self.here.sent_by:
            return False
        branch = via.branch()
        if not branch.startswith("z9hG4bKtk"):
            return False
        try:
            method = resp.cseq()[1]
        except ParseError:
            return True
        ct = self.txns.get(branch + "|" + method)
        if ct is not None:
            ctx = ct.context
            self._run(ct, ctx, self.txns.handle(ct, event_for(resp.status), now, resp.status,
                                                resp), resp, now, out)
        return True

    def tick(self, now, out):
        """Retransmissions and timeouts, 2xx resent until ACKed, registration refresh."""
        for ct in self.txns.due(now):
            if ct.due is None or ct.due > now:
                continue
            ctx = ct.context
            self._run(ct, ctx, self.txns.fire(ct, now), None, now, out)
        if self.resend:
            self._resend(now, out)
        if self.registering is None and now >= self.next_try:
            if self.by_name and not self.fresh:
                self.want_resolve = True  # the shell's Resolver, before our next tick
            elif self.server is not None:
                self.fresh = False
                self._register(now, out)
        elif self.registering is None and self.state == REGISTERED and \
                self.registered_as != self.here.sent_by:
            self.log("info", "trunk: our address is now %s; registering again"
                     % self.here.sent_by)
            self._register(now, out)
        if now >= self.housekeeping:
            self.housekeeping = now + 1000
            self.txns.expire(now)
            for call_id in list(self.calls):
                call = self.calls.get(call_id)
                if call is not None and now - call.last > self.idle:
                    self._forget(call)

    def next_due(self):
        due = self.txns.next_due
        for other in (self.next_try if self.registering is None else None,
                      self.resend[0][3] if self.resend else None):
            if other is not None and (due is None or other < due):
                due = other
        return due

    # calls out ------------------------------------------------------------------------
    def _outside(self, user, now):
        """The number to dial upstream for a dialled user, or None when it is not for the
        trunk (TRUNK_OUTBOUND's prefix, or * for any number that is not ours)."""
        prefix = self.s.outbound
        if prefix == "*":
            # a number: digits, maybe +; never a feature code (*78) or anything of ours
            if not digits(user.lstrip("+")) or self._ours(user, now):
                return None
        elif not user.startswith(prefix) or len(user) <= len(prefix) or \
                not _dialable(user):
            return None
        return user[self.s.strip:] or None

    def _ours(self, user, now):
        """A user, binding, group or alias of ours (then never the trunk's)."""
        engine = self.engine
        if user in engine.config.users or engine.location.lookup(user, now):
            return True
        dp = getattr(engine.router, "dialplan", None)
        return dp is not None and (user in dp.groups or dp.canonical(user) != user)

    def _call_out(self, txn, req, number, source, now, out):
        engine = self.engine
        caller = address_user(req.get("from"))
        if not self.registered(now):
            self._answer(txn, 503, "Service Unavailable (trunk not registered)", now, out)
            return
        mine = False
        for b in engine.location.lookup(caller, now):
            mine = mine or b.source[0] == source[0]
        if not mine:
            self._answer(txn, 403, "Forbidden (register to call out)", now, out)
            return
        if len(self.calls) >= 2 * self.max_calls or engine.calls.full():
            self._answer(txn, 503, "Service Unavailable", now, out)
            return
        s = self.s
        try:
            target = parse_name_addr(req.get("contact") or req.get("from"))[1]
        except ParseError:
            target = parse_name_addr(req.get("from"))[1]
        phone = Leg(req.get("call-id"), "%s;tag=tk%s" % (req.get("to"), self.new_id()),
                    req.get("from"), target, source, False)
        phone.route = req.values("record-route")
        up = Leg(self.new_id() + "@" + self.here.address,
                 '"%s" <sip:%s@%s>;tag=tk%s' % (caller, s.user, s.domain, self.new_id()),
                 "<sip:%s@%s>" % (number, s.domain), "sip:%s@%s" % (number, s.domain), None,
                 True)
        record = engine.calls.start(phone.call_id, caller, address_user(req.get("to")) or
                                    number, req.body, now)
        call = TrunkCall(phone, up, txn, record, now)
        self.calls[phone.call_id] = call
        self.calls[up.call_id] = call
        self.servers[txn.key] = call
        m = self._dialog_request(up, "INVITE")
        m.add("P-Asserted-Identity", "<sip:%s@%s>" % (s.user, s.domain))
        _copy(req, m)
        up.invite_cseq = up.cseq
        self.log("info", "trunk call %s -> %s from %s" % (phone.call_id, number, caller))
        call.invite = self._send(Pending(call, up, m, txn), self._dest(up), now, out)

    # in-dialog -------------------------------------------------------------------------
    def _in_dialog(self, call, leg, txn, req, now, out):
        """A request inside a trunk call on leg: BYE is answered here and ends both legs;
        anything else goes to the other leg as our own request and its answer comes back."""
        call.last = now
        method = req.method
        if method in TARGET_REFRESH and req.get("contact"):
            try:
                leg.target = parse_name_addr(req.get("contact"))[1]
            except ParseError:
                pass
        if method == "BYE":
            self._answer(txn, 200, "OK", now, out)
            self._end(call, leg.other, now, out)
            return
        if call.record is not None:  # the dashboard's record stays alive, shows new media
            self.engine.calls.in_dialog(call.record.call_id, method, req.body, now)
        other = leg.other
        m = self._dialog_request(other, method)
        _copy(req, m)
        if method == "INVITE":
            other.invite_cseq = other.cseq
        self._send(Pending(call, other, m, txn), self._dest(other), now, out)

    def _end(self, call, leg, now, out):
        """The call is over: BYE on leg (None: on both), record ended, forgotten."""
        for each in ((leg,) if leg is not None else (call.phone, call.up)):
            m = self._dialog_request(each, "BYE")
            self._send(Pending(call, each, m, None), self._dest(each), now, out)
        call.ended = True
        if call.record is not None:
            self.engine.calls.in_dialog(call.record.call_id, "BYE", b"", now)
        self._forget(call)

    def _forget(self, call):
        self.calls.pop(call.phone.call_id, None)
        self.calls.pop(call.up.call_id, None)
        if call.server is not None:
            self.servers.pop(call.server.key, None)
        self.resend = [r for r in self.resend if r[0] is not call]

    # incoming --------------------------------------------------------------------------
    def _incoming(self, txn, req, ruri, tagged, now, out):
        """From the upstream: OPTIONS answered, an in-dialog request of a call we forgot
        481, an initial request readdressed to its DID's target (then False: the router
        routes it). The number is the Request-URI user unless that is the trunk account
        (a registrar's lookup puts our Contact there), else the To user."""
        if tagged:
            if ruri.user == self.s.user:
                self._answer(txn, 481, "Call/Transaction Does Not Exist", now, out)
                return True
            return False  # a proxied incoming call's in-dialog request
        if req.method == "OPTIONS":
            self._answer(txn, 200, "OK", now, out)
            return True
        number = ruri.user
        if not number or number == self.s.user:
            number = address_user(req.get("to"))
        target = self.s.dids.get(number)
        if target is None and number and self._ours(number, now):
            target = number
        if target is None:
            target = self.s.inbound
        if not target:
            self._answer(txn, 404, "Not Found", now, out)
            return True
        req.uri = "sip:%s@%s" % (target, self.here.domain)
        self.log("info", "trunk call in for %s -> %s" % (number, target))
        return False

    # sending ---------------------------------------------------------------------------
    def _dialog_request(self, leg, method, cseq=None):
        """A request inside leg's dialog (§12.2.1.1), no Via yet."""
        m = Message()
        m.method = method
        m.uri = leg.target
        m.add("Max-Forwards", "70")
        for value in leg.route:
            m.add("Route", value)
        m.add("From", leg.local)
        m.add("To", leg.remote)
        m.add("Call-ID", leg.call_id)
        if cseq is None:
            leg.cseq += 1
            cseq = leg.cseq
        m.add("CSeq", "%d %s" % (cseq, method))
        if method in TARGET_REFRESH:
            m.add("Contact", self._contact(leg))
        return m

    def _contact(self, leg):
        if leg.upstream:
            return "<sip:%s@%s>" % (self.s.user, self.here.sent_by)
        return "<sip:%s>" % self.here.sent_by

    def _dest(self, leg):
        """Where leg's requests go: the phone's address; upstream the first Route hop or the
        remote target when it is an IP address, else the trunk server (we resolve no
        names here)."""
        if not leg.upstream:
            return leg.dest
        text = leg.route[0] if leg.route else leg.target
        try:
            uri = URI(parse_name_addr(text)[1])
            if is_ip(uri.host) and not uri.host.startswith("["):
                return (uri.host, uri.port or 5060)
        except ParseError:
            pass
        return self.server

    def _stamp(self, m, branch):
        m.push_via("SIP/2.0/UDP %s;branch=%s;rport" % (self.here.sent_by, branch))
        data = m.to_bytes()
        m.pop_via()
        return data

    def _send(self, pending, dest, now, out):
        """Send pending's request on a new client transaction; returns it (None when our
        table is full: the request is lost like a datagram, and its timeout answers)."""
        m = pending.msg
        branch = "z9hG4bKtk" + self.new_id()
        data = self._stamp(m, branch)
        sent = m.copy()
        sent.push_via("SIP/2.0/UDP %s;branch=%s;rport" % (self.here.sent_by, branch))
        timer_c = self.txns.timer_c if m.method == "INVITE" else 0
        ct = ClientTransaction(branch + "|" + m.method, m.method, sent, data, dest, pending,
                               now, timer_c)
        if not self.txns.add(ct):
            if pending.origin is not None:
                self._answer(pending.origin, 503, "Service Unavailable", now, out)
            return None
        out.append((data, dest))
        return ct

    def _answer(self, txn, status, reason, now, out):
        """Our own answer to a request on server transaction txn."""
        if txn.request is None:
            return
        tag = "tk" + self.new_id() if status > 100 else None
        resp = txn.request.response(status, reason, (), tag, SERVER)
        for action in self.engine.txns.send_response(txn, status, resp.to_bytes(), now):
            out.append((action[1], action[2]))
        call = self.servers.get(txn.key)
        if call is not None and status >= 200:
            self.servers.pop(txn.key, None)

    def _relay(self, call, leg, txn, status, reason, resp, now, out):
        """Answer a request of leg's peer (server transaction txn) with status and what resp
        (from the other leg) carried: body, Content-Type; a 2xx to an INVITE is sent again
        until its ACK comes."""
        if txn is None or txn.request is None:
            return
        headers = []
        body = b""
        if resp is not None:
            body = resp.body
            for lname, name in COPIED:
                value = resp.get(lname)
                if value is not None:
                    headers.append((name, value))
        if txn.method in TARGET_REFRESH and 100 < status < 300:
            headers.append(("Contact", self._contact(leg)))
        r = txn.request.response(status, reason, headers, leg.tag(), SERVER)
        r.body = body
        data = r.to_bytes()
        for action in self.engine.txns.send_response(txn, status, data, now):
            out.append((action[1], action[2]))
        if txn is call.server:
            if call.record is not None:
                self.engine.calls.progress(call.record, status, body, now)
            if status >= 200:
                self.servers.pop(txn.key, None)
                call.server = None
        if txn.method == "INVITE" and 200 <= status < 300:
            call.ack_from = leg
            self.resend.append([call, data, txn.source, now + T1, T1, now + LINGER])

    def _resend(self, now, out):
        keep = []
        for r in self.resend:
            if now >= r[5]:
                self.log("warning", "trunk call %s: no ACK for the 2xx; hanging up"
                         % r[0].phone.call_id)
                if not r[0].ended:
                    self._end(r[0], None, now, out)
                continue
            if now >= r[3]:
                out.append((r[1], r[2]))
                r[4] = min(r[4] * 2, T2)
                r[3] = now + r[4]
            keep.append(r)
        self.resend = [r for r in keep if not r[0].ended]
        self.resend.sort(key=lambda r: r[3])

    # responses -------------------------------------------------------------------------
    def _run(self, ct, pending, actions, resp, now, out):
        for action in actions:
            what = action[0]
            if what == SEND:
                out.append((action[1], action[2]))
            elif what == SEND_CANCEL:
                req = ct.request
                if req is not None:
                    data = hop_request(req, "CANCEL", req.get("to"))
                    key = sibling_key(ct.key, "CANCEL")
                    if self.txns.get(key) is None:
                        self.txns.add(ClientTransaction(key, "CANCEL", None, data, ct.dest,
                                                        None, now))
                    out.append((data, ct.dest))
            elif what == STRAY_2XX:
                leg = pending.leg if pending is not None else None
                if leg is not None and leg.ack is not None:
                    out.append(leg.ack)  # our ACK again for a 2xx sent again
            elif pending is None:
                continue  # a CANCEL's own transaction
            elif what == DELIVER:
                self._answered(ct, pending, resp, now, out)
            elif what == TIMEOUT:
                self._answered(ct, pending, None, now, out)

    def _answered(self, ct, pending, resp, now, out):
        """A response (None: no answer in time) to a request we sent."""
        status = resp.status if resp is not None else 408
        reason = resp.reason if resp is not None else "Request Timeout"
        if status in (401, 407) and resp is not None and pending.tries < MAX_AUTH_TRIES and \
                (pending.leg is None or pending.leg.upstream) and \
                not (pending.call is not None and pending.call.cancelled):
            if self._authenticate(ct, pending, resp, now, out):
                return
        if pending.call is None:
            if status < 200:
                return
            self.registering = None
            least = (resp.get("min-expires") or "").strip() if resp is not None else ""
            if status == 423 and digits(least) and len(least) < 6 and \
                    self.s.expires < int(least) and pending.tries < MAX_AUTH_TRIES:
                self.s.expires = int(least)  # Interval Too Brief (§10.2.8): ask for more
                self.log("info", "trunk: the server wants at least %s s; asking for that"
                         % least)
                self._register(now, out)
                return
            if status < 300:
                self._registered(resp, now)
            else:
                self._failed(status, reason, now)
            return
        call = pending.call
        leg = pending.leg
        call.last = now
        if status < 200:
            if pending.origin is not None and status > 100:
                self._relay(call, leg.other, pending.origin, status, reason, resp, now, out)
            return
        if ct.method == "INVITE" and status < 300:
            self._confirmed(call, leg, pending, resp, now, out)
            return
        if status in (401, 407):
            status, reason = 403, "Forbidden (the trunk refused our credentials)"
        if pending.origin is not None:
            self._relay(call, leg.other, pending.origin, status, reason, resp, now, out)
        if pending.origin is call.server and ct.method == "INVITE" and not call.answered:
            self._forget(call)  # the call out failed

    def _confirmed(self, call, leg, pending, resp, now, out):
        """A 2xx to our INVITE on leg: the dialog's remote tag, target and route set; the
        2xx goes to the other leg, whose ACK is passed on (or ACK and BYE when the call
        was cancelled or has ended meanwhile)."""
        leg.remote = resp.get("to")
        try:
            leg.target = parse_name_addr(resp.get("contact"))[1]
        except (ParseError, AttributeError):
            pass
        if pending.origin is call.server or not call.answered:
            routes = resp.values("record-route")
            routes.reverse()
            leg.route = routes
        if call.cancelled or call.ended:
            m = self._dialog_request(leg, "ACK", leg.invite_cseq)
            dest = self._dest(leg)
            data = self._stamp(m, "z9hG4bKtk" + self.new_id())
            leg.ack = (data, dest)
            out.append((data, dest))
            if not call.ended:
                call.ended = True
                self._send(Pending(call, leg, self._dialog_request(leg, "BYE"), None),
                           dest, now, out)
            return
        call.answered = True
        self._relay(call, leg.other, pending.origin, resp.status, resp.reason, resp, now, out)

    def _authenticate(self, ct, pending, resp, now, out):
        """Send pending's request again with the trunk credentials for resp's challenge,
        with the next CSeq of its dialog; False when no challenge is one we can answer."""
        s = self.s
        if resp.status == 401:
            header, name = "www-authenticate", "Authorization"
        else:
            header, name = "proxy-authenticate", "Proxy-Authorization"
        m = pending.msg
        best = None
        self.nc += 1
        cnonce = "%s%04x" % (self.new_id(), self.nc & 0xFFFF)
        for challenge in resp.values(header):
            value = credentials(challenge, m.method, m.uri, s.auth_user, s.password, cnonce)
            if value is not None and (best is None or "algorithm=SHA-256" in value):
                best = value
        if best is None:
            return False
        pending.tries += 1
        m.remove("authorization")
        m.remove("proxy-authorization")
        m.add(name, best)
        if pending.leg is None:
            self.reg_cseq += 1
            number = self.reg_cseq
        else:
            leg = pending.leg
            leg.cseq += 1
            number = leg.cseq
            if m.method == "INVITE":
                leg.invite_cseq = number
        m.set("CSeq", "%d %s" % (number, m.method))
        sent = self._send(pending, ct.dest, now, out)
        if pending.leg is None:
            self.registering = sent
        elif pending.call is not None and pending.call.invite is ct:
            pending.call.invite = sent
        return sent is not None


def _copy(src, dst):
    """The headers of COPIED and the body of src onto dst (a request crossing legs)."""
    for lname, name in COPIED:
        value = src.get(lname)
        if value is not None:
            dst.add(name, value)
    dst.body = src.body


class Resolver:
    """The shell's side of the trunk's host name (a service in App.services): resolved when
    the trunk asks (before each REGISTER), with the shell's resolve(host) -> ip, which may
    block and so is never called from the message path. once=True (a board: the W5500
    driver's DNS at start only) keeps the first address."""

    def __init__(self, trunk, resolve, once=False):
        self.trunk = trunk
        self.resolve = resolve
        self.once = once
        self.address = None

    def poll(self, now):
        trunk = self.trunk
        if not trunk.want_resolve:
            return
        if self.once and self.address is not None:
            trunk.set_server(self.address, now)
            return
        try:
            ip = self.resolve(trunk.s.host)
        except Exception as e:  # any resolver failure is a console line and a back-off
            trunk.resolve_failed(str(e) or type(e).__name__, now)
            return
        if not ip:
            trunk.resolve_failed("no address", now)
            return
        self.address = ip
        trunk.set_server(ip, now)


class LinkWatch:
    """Board shell (a service in App.services): registers the trunk again when the Ethernet
    link comes back up. net: the board's NetIf (its link and link_changes)."""

    def __init__(self, trunk, net):
        self.trunk = trunk
        self.net = net
        self.seen = net.link_changes

    def poll(self, now):
        net = self.net
        if net.link_changes != self.seen:
            self.seen = net.link_changes
            if net.link:
                self.trunk.log("info", "trunk: link up; registering again")
                self.trunk.register_now(now)


def install(app, getenv, resolve=None, once=False):
    """Build the trunk from settings and plug it into app's engine (and app.services for a
    host name); returns the Trunk, or None when TRUNK is not usable (console lines say why)."""
    settings = Settings(getenv)
    log = app.engine.log
    for error in settings.errors:
        log("warning", "settings: " + error)
    if not settings.ok:
        return None
    engine = app.engine
    if resolve is None and not is_ip(settings.host):
        log("warning", "trunk off: %s is a name and nothing here resolves names; set TRUNK "
            "to an IP address" % settings.host)
        return None
    trunk = Trunk(settings, engine)
    engine.gateway = trunk
    if engine.auth is not None:
        engine.auth = trunk.guard(engine.auth)
    if trunk.by_name:
        resolver = Resolver(trunk, resolve, once)
        app.services.append(resolver)
        if once:  # a board resolves at start only
            trunk.want_resolve = True
            resolver.poll(0)
    log("info", "trunk sip:%s@%s, outbound %s%s, inbound %s"
        % (settings.user, settings.domain, settings.outbound,
           " (strip %d)" % settings.strip if settings.strip else "",
           settings.inbound or "by DID only"))
    return trunk


def start(app, getenv, net):
    """The trunk on a board (boot.start): host names resolved with the driver's DNS, at
    start only (it blocks); registered again on link up. The Trunk, or None."""

    def resolve(name):
        return net.eth.pretty_ip(net.eth.get_host_by_name(name))

    trunk = install(app, getenv, resolve, once=True)
    if trunk is not None:
        app.services.append(LinkWatch(trunk, net))
    return trunk
