"""The engine: the sans-I/O entry point of Switchboard.

`receive(datagram, source, now)` and `tick(now)` return the datagrams to send as
[(bytes, (ip, port))]; `now` is integer milliseconds from the caller's clock.
Validation of requests (RFC 3261 §8.2, §16.3), the server side of transactions
(§17.2) and the local answers (REGISTER, OPTIONS) live here; routing and the
response context live in proxy.py. Nothing raises out of receive() or tick().
"""

from switchboard import VERSION
from switchboard.calls import Calls
from switchboard.location import Location
from switchboard.message import (
    URI,
    Message,
    ParseError,
    Via,
    check_request,
    digits,
    param,
    parse,
    parse_name_addr,
    set_param,
    to_tag,
)
from switchboard.proxy import Proxy, fnv, is_ip, reply_address
from switchboard.ratelimit import RateLimit
from switchboard.registrar import Registrar
from switchboard.transaction import (
    COMPLETED,
    LINGER,
    T1,
    ServerTransaction,
    TransactionTable,
    server_key,
)

ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS, REGISTER, PRACK, UPDATE, INFO, MESSAGE, " \
        "SUBSCRIBE, NOTIFY, REFER, PUBLISH"
SERVER = "Switchboard/" + VERSION
COUNTERS = ("received", "sent", "requests", "responses", "parse_errors", "dropped", "oversize",
            "retransmitted", "answered_4xx", "answered_5xx", "internal_errors", "keepalives",
            "rate_limited")
MAX_VIAS = 70  # no request passed more proxies than Max-Forwards allows
MAX_ID = 256  # longest Call-ID or tag we keep (RFC 3261 sets none; real ones are < 100)
REQUIRED = (("from", "From"), ("to", "To"), ("call-id", "Call-ID"), ("cseq", "CSeq"))


def _quiet(level, text):
    pass


def _options(req, name):
    """The option tags of every Proxy-Require or Require line of req."""
    out = []
    for h in req.headers:
        if h[0] == name:
            for tag in h[2].split(","):
                tag = tag.strip()
                if tag and tag not in out:
                    out.append(tag)
    return out


class Engine:
    def __init__(self, config, seed=0, log=None):
        self.config = config
        self.log = log or _quiet
        self.seed = "%06x" % (seed & 0xFFFFFF)
        self.serial = 0
        self.counters = {}
        for name in COUNTERS:
            self.counters[name] = 0
        self.location = Location(config.max_bindings, config.max_contacts_per_aor)
        self.registrar = Registrar(config, self.location, self.log)
        self.calls = Calls(config.max_calls, config.call_history, config.call_idle_timeout * 1000,
                           self.log)
        self.txns = TransactionTable(config.max_transactions)
        self.ratelimit = None
        if config.rate_limit:
            self.ratelimit = RateLimit(config.rate_limit, config.rate_burst,
                                       config.rate_block * 1000, config.max_sources)
        self.proxy = Proxy(self)
        self.auth = None  # hook: auth(engine, request, source, now) -> None or (code, reason, hdrs)
        self.out = []
        self.housekeeping = 0
        self.set_address(config.sip_address or "127.0.0.1", config.sip_port)

    def set_address(self, address, port):
        """Our address as phones reach it (Via, Record-Route); called again when DHCP changes it."""
        self.address = address
        self.port = port
        self.sent_by = "%s:%d" % (address, port)
        self.record_route = "<sip:%s;lr>" % self.sent_by
        self.hosts = [address.lower(), "localhost"]
        bind = self.config.sip_host
        if bind and bind != "0.0.0.0":
            self.hosts.append(bind.lower())
        self.domain = (self.config.sip_domain or address).lower()

    def new_id(self):
        self.serial += 1
        return "%s%x" % (self.seed, self.serial)

    def count(self, name):
        self.counters[name] += 1

    def send(self, data, dest):
        self.out.append((data, dest))
        self.counters["sent"] += 1

    def is_local(self, uri):
        """Is uri one of ours: our address (and port) or a domain name (we resolve no names)?"""
        if uri.scheme not in ("sip", "sips"):
            return False
        host = uri.host
        if host in self.hosts or host == self.domain:
            return uri.port is None or uri.port == self.port
        return not is_ip(host)

    # entry points --------------------------------------------------------
    def receive(self, data, source, now):
        out = self.out = []
        self.counters["received"] += 1
        if self.ratelimit is not None and not self.ratelimit.allow(source[0], now):
            self.counters["rate_limited"] += 1
            return out
        try:
            self._receive(data, source, now)
        except Exception as e:  # never raise out of the engine: count and drop
            self.counters["internal_errors"] += 1
            self.log("error", "internal error on datagram from %s:%s: %r"
                     % (source[0], source[1], e))
        self.out = []
        return out

    def tick(self, now):
        out = self.out = []
        try:
            for txn in self.txns.due(now):
                self.proxy.timer(txn, now)
            if now >= self.housekeeping:
                self.housekeeping = now + 1000
                self.txns.expire(now)
                for user, b in self.location.purge(now):
                    self.log("info", "expired %s contact=<%s>" % (user, b.uri))
                self.calls.expire(now)
        except Exception as e:
            self.counters["internal_errors"] += 1
            self.log("error", "internal error in timers: %r" % (e,))
        self.out = []
        return out

    def next_due(self, now):
        """Milliseconds until tick() has work (for the loop's idle wait)."""
        due = self.housekeeping
        if self.txns.next_due is not None and self.txns.next_due < due:
            due = self.txns.next_due
        return max(0, due - now)

    # requests ------------------------------------------------------------
    def _receive(self, data, source, now):
        if len(data) > self.config.max_message_size:
            self.counters["oversize"] += 1
            self.counters["dropped"] += 1
            self.log("debug", "dropped %d-byte datagram from %s" % (len(data), source[0]))
            return
        if not data.strip(b"\r\n"):
            self.counters["keepalives"] += 1
            if data == b"\r\n\r\n":
                self.send(b"\r\n", source)  # RFC 5626 §4.4.1 keepalive pong
            return
        try:
            msg = parse(data)
        except ParseError as e:
            self.counters["parse_errors"] += 1
            m = e.message
            if m is not None and m.method is not None and m.method != "ACK":
                self._reject(m, source, e.code, e.reason)
            else:
                self.counters["dropped"] += 1
            self.log("debug", "bad message from %s: %s" % (source[0], e.reason))
            return
        if msg.method is None:
            self.counters["responses"] += 1
            self.proxy.response(msg, now)
            return
        self.counters["requests"] += 1
        self._request(msg, source, now)

    def _reject(self, req, source, code, reason):
        """Answer a request that failed validation, statelessly. It goes where the top Via
        says (RFC 3581: the source address), or straight back to the source when that Via is
        itself invalid; a request without any Via is dropped."""
        value = req.first_value("via")
        if not value:
            self.counters["dropped"] += 1
            return
        try:
            dest = reply_address(Via(value), source)
        except ParseError:
            dest = source
        # only our neighbour's Via: an answer to junk must not grow with the junk
        first = [h for h in req.headers if h[0] == "via"][:1]
        if first:
            first[0][2] = req.first_value("via")
        req.headers = [h for h in req.headers if h[0] != "via" or h is first[0]]
        self.stateless_reply(req, code, reason, dest)

    def _request(self, req, source, now):
        value = req.first_value("via")
        if value is None:
            self.counters["dropped"] += 1
            return
        try:
            via = Via(value)
            problem = self._check(req)
        except ParseError as e:
            via = None
            problem = e.reason
        if via is None:  # an address we cannot answer by: the answer goes to the source
            if req.method != "ACK":
                self.counters["parse_errors"] += 1
                self._reject(req, source, 400, problem)
            else:
                self.counters["dropped"] += 1
            return
        if problem:
            if req.method != "ACK":
                self.counters["parse_errors"] += 1
                self._reject(req, source, 400, problem)
            else:
                self.counters["dropped"] += 1
            return
        # RFC 3261 §18.2.1 and RFC 3581: where it really came from
        params = set_param(via.params, "received", source[0])
        if via.param("rport") is not None:
            params = set_param(params, "rport", str(source[1]))
        via.params = params
        req.set_first_value("via", via.text())
        key = server_key(req, via)
        reply_to = reply_address(via, source)
        if req.method == "ACK":
            self.proxy.ack(req, via, key, now)
            return
        if req.method == "CANCEL":
            self.proxy.cancel(req, key[:key.rfind("|")] + "|INVITE", reply_to, now)
            return
        txn = self.txns.get(key)
        if txn is not None:
            self.counters["retransmitted"] += 1
            if isinstance(txn, ServerTransaction) and txn.last is not None:
                self.send(txn.last, txn.source)
            return
        txn = ServerTransaction(key, req, reply_to, now)
        if not self.txns.add(txn):
            self.stateless_reply(req, 503, "Service Unavailable", reply_to, [("Retry-After", "5")])
            return
        if req.method == "INVITE":
            self.respond(txn, self._response(req, 100, "Trying"), now)
        if self.auth is not None:
            answer = self.auth(self, req, source, now)
            if answer:
                self.reply(txn, answer[0], answer[1], answer[2], now)
                return
        self._dispatch(txn, req, source, now)

    def _check(self, req):
        """Why req cannot be processed (a 400 reason phrase), or None."""
        for lname, name in REQUIRED:
            if not (req.get(lname) or "").strip():
                return "Missing " + name
        problem = check_request(req)
        if problem:
            return problem
        try:
            for lname in ("from", "to"):
                parse_name_addr(req.get(lname))
            number, method = req.cseq()
            req.ruri = URI(req.uri)
        except ParseError as e:
            return e.reason
        if method != req.method:
            return "CSeq method does not match"
        if "<" in req.uri or ">" in req.uri or (req.ruri.scheme in ("sip", "sips")
                                                and not req.ruri.host):
            return "Malformed Request-URI"
        if len(req.values("via")) > MAX_VIAS:
            return "Too many Via values"
        if len(req.get("call-id")) > MAX_ID:
            return "Call-ID too long"
        for lname, name in (("from", "From"), ("to", "To")):
            tag = param(parse_name_addr(req.get(lname))[2], "tag")
            if tag is not None and len(tag) > MAX_ID:
                return name + " tag too long"
        hops = req.get("max-forwards")
        if hops is not None:
            hops = hops.strip()
            if not digits(hops) or len(hops) > 10:
                return "Malformed Max-Forwards"
            req.set("Max-Forwards", str(min(int(hops), 255)))
        return None

    def _dispatch(self, txn, req, source, now):
        ruri = req.ruri
        method = req.method
        # §16.3 step 5: we support no extension a proxy must understand; as the registrar
        # (and for requests to the server itself) we are the UAS, so Require counts too (§8.2.2.3)
        local = self.is_local(ruri) and not req.values("route") and (
            method == "REGISTER" or not ruri.user)
        unsupported = _options(req, "proxy-require")
        if local:
            unsupported += _options(req, "require")
        if unsupported:
            self.reply(txn, 420, "Bad Extension", [("Unsupported", ", ".join(unsupported))], now)
            return
        if method == "REGISTER" and (self.is_local(ruri) or not req.values("route")):
            if not self.is_local(ruri):
                self.reply(txn, 403, "Forbidden: not our domain", [], now)
                return
            status, reason, headers = self.registrar.register(req, source, now)
            self.reply(txn, status, reason, headers, now)
            return
        if not ruri.user and self.is_local(ruri) and not req.values("route"):
            if method == "OPTIONS":
                self.reply(txn, 200, "OK", [("Allow", ALLOW), ("Accept", "application/sdp")],
                           now)
            elif to_tag(req) is not None:
                self.reply(txn, 481, "Call/Transaction Does Not Exist", [], now)
            else:
                self.reply(txn, 405, "Method Not Allowed", [("Allow", ALLOW)], now)
            return
        self.proxy.route(txn, req, now)

    # responses we make -----------------------------------------------------
    def _response(self, req, status, reason, headers=(), tag=None):
        """A response to req (§8.2.6): Via, From, To (with our tag), Call-ID, CSeq copied."""
        r = Message()
        r.status = status
        r.reason = reason
        for h in req.headers:
            name = h[0]
            if name in ("via", "from", "call-id", "cseq"):
                r.headers.append(list(h))
            elif name == "to":
                value = h[2]
                if status > 100 and tag and ";tag=" not in value.replace(" ", "").lower():
                    value = value + ";tag=" + tag
                r.headers.append([name, h[1], value])
        for name, value in headers:
            r.add(name, value)
        r.add("Server", SERVER)
        return r

    def reply(self, txn, status, reason, headers, now):
        """Answer txn's request ourselves."""
        r = self._response(txn.request, status, reason, headers, "sb" + self.new_id())
        self.respond(txn, r, now)

    def respond(self, txn, resp, now):
        """Send resp on server transaction txn; a final one finishes the transaction."""
        status = resp.status
        data = resp.to_bytes()
        txn.last = data
        self.send(data, txn.source)
        if txn.call is not None:
            self.calls.progress(txn.call, status, resp.body, now)
        if status < 200 or txn.status:
            return  # provisional, or a further 2xx of a forked INVITE
        txn.status = status
        txn.request = None
        txn.best = None
        self._count_answer(status)
        if txn.method == "INVITE" and status >= 300:
            txn.state = COMPLETED  # Timer G retransmits until the ACK, Timer H gives up
            txn.interval = T1
            txn.due = now + T1
            txn.give_up = now + LINGER
            self.txns.wake(txn.due)
        else:
            txn.state = COMPLETED
            self.txns.finish(txn, now)

    def stateless_reply(self, req, status, reason, dest, headers=()):
        tag = "sb%08x" % (fnv(req.get("call-id") or "") ^ status)
        self.send(self._response(req, status, reason, headers, tag).to_bytes(), dest)
        self._count_answer(status)

    def _count_answer(self, status):
        if status >= 500:
            self.counters["answered_5xx"] += 1
        elif status >= 400:
            self.counters["answered_4xx"] += 1

    # state for the dashboard -----------------------------------------------
    def registrations(self, now):
        """Every address-of-record with its live contacts, as plain data."""
        out = []
        for user in self.location.users():
            contacts = []
            for b in self.location.lookup(user, now):
                contacts.append({
                    "uri": b.uri, "source": "%s:%d" % (b.source[0], b.source[1]),
                    "user_agent": b.user_agent, "expires_in": (b.expires_at - now) // 1000,
                    "registered_for": (now - b.since) // 1000,
                })
            if contacts:
                out.append({"aor": "sip:%s@%s" % (user, self.domain), "user": user,
                            "contacts": contacts})
        return out

    def active_calls(self, now):
        """Calls in progress, oldest first."""
        calls = [self.calls.active[k] for k in sorted(self.calls.active)]
        calls.sort(key=lambda c: c.started)
        return [c.as_dict(now) for c in calls]

    def call_history(self, now):
        """Finished calls, newest first."""
        return [c.as_dict(now) for c in reversed(self.calls.history)]

    def table_use(self):
        use = {"bindings": self.location.count, "transactions": self.txns.busy(),
               "calls": len(self.calls.active), "history": len(self.calls.history)}
        if self.ratelimit is not None:
            use["sources"] = len(self.ratelimit.sources)
        return use

    def tables(self):
        """Every bounded table: {name: {"use": n, "limit": n}}."""
        limits = self.config.limits()
        out = {}
        use = self.table_use()
        for name in use:
            out[name] = {"use": use[name], "limit": limits[name]}
        if self.auth is not None and hasattr(self.auth, "limits"):
            extra = self.auth.limits()
            for name in extra:
                out[name] = {"use": extra[name][0], "limit": extra[name][1]}
        return out

    def blocked_sources(self, now):
        if self.ratelimit is None:
            return []
        return [{"address": ip, "seconds_left": left} for ip, left in self.ratelimit.blocked(now)]

    def snapshot(self, now):
        """Registrations, calls, history, counters and limits as plain data (read-only copy)."""
        counters = {}
        for name in COUNTERS:
            counters[name] = self.counters[name]
        return {"registrations": self.registrations(now), "calls": self.active_calls(now),
                "history": self.call_history(now), "counters": counters,
                "limits": self.config.limits(), "use": self.table_use(),
                "address": self.sent_by, "domain": self.domain}
