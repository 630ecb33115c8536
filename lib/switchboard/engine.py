"""The engine: the sans-I/O entry point of Switchboard.

`receive(datagram, source, now)` and `tick(now)` return the datagrams to send as
[(bytes, (ip, port))]; `now` is integer milliseconds from the caller's clock. Each entry
point makes its own output list and hands it down (no shared output state), so any other
entry point returns its datagrams the same way (the dashboard's "end call", endcall.py).

Optional parts, each imported only when configured: the reachability pings (qualify.py,
QUALIFY_INTERVAL; its tick runs in tick(), the answers to its pings are taken before the
proxy sees them, the router leaves unreachable contacts out) and the call-message ring for
the dashboard's ladders (trace.py, set by views.py; every entry point shows it what came in
and what goes out).

The path of a datagram: size and keepalive checks, parse (message.py), then a response
goes to the proxy's client transactions; a request is validated (RFC 3261 §8.2, §16.3),
matched to its server transaction (transaction.py) or given a new one, checked by the auth
hook, and answered here (REGISTER through the registrar, OPTIONS and errors to us) or
handed to the proxy (proxy.py), which asks the router (router.py) where it goes. Nothing
raises out of receive() or tick(); a MemoryError is answered 503 when it can be, collected,
counted and logged.
"""

import gc

from switchboard.calls import Calls
from switchboard.location import Location
from switchboard.message import (
    ParseError,
    Via,
    check_request,
    digits,
    parse,
    set_param,
    to_tag,
    uri,
)
from switchboard.proxy import SERVER, Proxy, reply_address  # noqa: F401 (SERVER: for app.py)
from switchboard.ratelimit import RateLimit
from switchboard.registrar import Registrar
from switchboard.router import Here, Router
from switchboard.transaction import (
    ANSWER,
    ASK,
    INVITE_SERVER,
    NON_INVITE_SERVER,
    REQUEST,
    ServerTransaction,
    TransactionTable,
    server_key,
    sibling_key,
)

try:
    from micropython import const  # names starting with _ vanish from the .mpy
except ImportError:  # CPython
    const = int

ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS, REGISTER, PRACK, UPDATE, INFO, MESSAGE, " \
        "SUBSCRIBE, NOTIFY, REFER, PUBLISH"
COUNTERS = ("received", "sent", "requests", "responses", "parse_errors", "dropped", "oversize",
            "retransmitted", "answered_4xx", "answered_5xx", "internal_errors", "keepalives",
            "rate_limited", "memory_errors")
_MAX_VIAS = const(70)  # no request passed more proxies than Max-Forwards allows
MAX_ID = 256  # longest Call-ID or tag we keep (RFC 3261 sets none; real ones are < 100)
REQUIRED = (("from", "From"), ("to", "To"), ("call-id", "Call-ID"), ("cseq", "CSeq"))
_HOUSEKEEPING_MS = const(1000)  # how often lingering transactions, bindings and idle calls expire
RETRY_AFTER_FULL = "5"  # seconds, in the 503 for a full transaction table or no memory
# reason phrases of answers rebuilt for a retransmitted request (others go without one)
REASONS = {200: "OK", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
           407: "Proxy Authentication Required", 481: "Call/Transaction Does Not Exist"}


def _quiet(level, text):
    pass


def _options(req, name):
    """The option tags of every Proxy-Require or Require line of req."""
    out = []
    for value in req.values(name):
        for tag in value.split(","):
            tag = tag.strip()
            if tag and tag not in out:
                out.append(tag)
    return out


class Engine:
    """Switchboard's SIP core: registrar, stateful proxy and call records, sans I/O.

    config: a Config; seed: per-boot randomness for tags and branches; log(level, text);
    auth: the auth hook, auth(engine, request, source, now) -> None to let the request
    through, or (status, reason, [(header, value)]) to answer it (auth.Auth); location,
    calls, router, here: injected for sharing or testing, made from config when None.
    """

    def __init__(self, config, seed=0, log=None, auth=None, location=None, calls=None,
                 router=None, here=None):
        self.config = config
        self.log = log or _quiet
        self.counters = {}
        for name in COUNTERS:
            self.counters[name] = 0
        self.here = here or Here(config)
        self.location = location or Location(config.max_bindings, config.max_contacts_per_aor)
        self.registrar = Registrar(config, self.location, self.log)
        self.calls = calls or Calls(config.max_calls, config.call_history,
                                    config.call_idle_timeout * 1000, self.log)
        self.txns = TransactionTable(config.max_transactions, config.timer_c * 1000)
        self.ratelimit = None
        if config.rate_limit:
            self.ratelimit = RateLimit(config.rate_limit, config.rate_burst,
                                       config.rate_block * 1000, config.max_sources)
        self.router = router or Router(config, self.here, self.location)
        self.auth = auth
        self.proxy = Proxy(config, self.here, self.txns, self.router, self.calls,
                           self.counters, seed)
        self.housekeeping = 0
        self.qualify = None  # OPTIONS pings (qualify.py), only when QUALIFY_INTERVAL is set
        if config.qualify_interval:
            from switchboard.qualify import Qualify

            self.qualify = Qualify(self.here, self.location, config.qualify_interval, seed)
            self.router.reachable = self.qualify.reachable
        self.trace = None  # call-message ring (trace.py): the dashboard sets it (views.py)
        # the SIP trunk (trunk.Trunk, set only when TRUNK is), our gateway to a bigger server:
        # a plug-in that takes some dialogs itself: response(), ack(), cancel(), request()
        # return True for what they took; tick(), next_due() like the proxy's. (Named with a
        # word the board has interned anyway: each new name costs heap for good.)
        self.gateway = None
        # host mode's byte-level shortcut for plain provisional and non-INVITE 2xx responses
        # (hostrelay.relay, set by host.py; None on a board: every response is parsed)
        self.relay = None

    def set_address(self, address, port):
        """Our address as phones reach it (Via, Record-Route); called again when DHCP changes it."""
        self.here.set(address, port)

    @property
    def address(self):
        """Our IP address as phones reach it."""
        return self.here.address

    @property
    def port(self):
        """Our SIP port."""
        return self.here.port

    @property
    def sent_by(self):
        """host:port in our Via and Record-Route."""
        return self.here.sent_by

    @property
    def domain(self):
        """The SIP domain of our users (SIP_DOMAIN, else our address)."""
        return self.here.domain

    def shift_times(self, ms):
        """The board clock started a new epoch (clock.py, boot.epochs): every time the
        engine stored moves back by ms (transactions, stage timeouts, bindings, calls,
        flood and password lockouts, pings), each part moving its own. Nonces carry
        their second of issue and are not moved."""
        self.housekeeping -= ms
        for part in (self.txns, self.proxy, self.location, self.calls, self.ratelimit,
                     self.auth, self.qualify):
            if part is not None and hasattr(part, "shift_times"):  # the auth hook may not
                part.shift_times(ms)

    # entry points --------------------------------------------------------
    def receive(self, data, source, now):
        """Handle one datagram from source; return [(bytes, (ip, port))] to send."""
        out = []
        self.counters["received"] += 1
        if self.ratelimit is not None and not self.ratelimit.allow(source[0], now):
            self.counters["rate_limited"] += 1
            return out
        msg = None
        try:
            if self.relay is not None and self.relay(self, data, now, out):
                self.counters["responses"] += 1
            else:
                msg = self._parse(data, source, out)
                if msg is not None:
                    self._handle(msg, source, now, out)
        except MemoryError:
            self._out_of_memory("datagram from %s:%s" % (source[0], source[1]), msg, source,
                                now, out)
        except Exception as e:  # never raise out of the engine: count and drop
            self.counters["internal_errors"] += 1
            self.log("error", "internal error on datagram from %s:%s: %r"
                     % (source[0], source[1], e))
            txn = self._unanswered(msg)
            if txn is not None:
                self.txns.drop(txn)  # it would hold a place in the table for ever
        self._done(out, now, data, source)
        return out

    def _done(self, out, now, data=None, source=None):
        """Count what an entry point sends; the trace sees it (and what came in)."""
        self.counters["sent"] += len(out)
        trace = self.trace
        if trace is not None:
            try:
                if data is not None:
                    trace.add(data, source, True, now)
                for sent in out:
                    trace.add(sent[0], sent[1], False, now)
            except MemoryError:
                gc.collect()
                self.counters["memory_errors"] += 1

    def tick(self, now):
        """Run the timers that are due; return [(bytes, (ip, port))] to send."""
        out = []
        try:
            self.proxy.tick(now, out)
            if self.qualify is not None:
                self.qualify.tick(now, out)
            if self.gateway is not None:
                self.gateway.tick(now, out)
            if now >= self.housekeeping:
                self.housekeeping = now + _HOUSEKEEPING_MS
                self.txns.expire(now)
                for user, b in self.location.purge(now):
                    self.log("info", "expired %s contact=<%s>" % (user, b.uri))
                self.calls.expire(now)
        except MemoryError:
            self._out_of_memory("timers", None, None, now, out)
        except Exception as e:
            self.counters["internal_errors"] += 1
            self.log("error", "internal error in timers: %r" % (e,))
        self._done(out, now)
        return out

    def next_due(self, now):
        """Milliseconds until tick() has work (for the loop's idle wait)."""
        due = self.housekeeping
        for other in (self.txns.next_due, self.proxy.next_due(),
                      self.qualify.next_due() if self.qualify is not None else None,
                      self.gateway.next_due() if self.gateway is not None else None):
            if other is not None and other < due:
                due = other
        return max(0, due - now)

    def _out_of_memory(self, where, msg, source, now, out):
        """Never silent: collect, count, log, and answer the request 503 if we can (on its
        transaction when one was made for it, so that the transaction ends too)."""
        gc.collect()
        self.counters["memory_errors"] += 1
        self.log("error", "out of memory handling %s" % where)
        if msg is None or msg.method in (None, "ACK"):
            return
        try:
            retry = [("Retry-After", RETRY_AFTER_FULL)]
            txn = self._unanswered(msg)
            via = msg.top_via()
            if txn is not None:
                self.proxy.answer(out, msg, 503, "Service Unavailable", retry, txn, now=now)
            elif via is not None:
                self.proxy.answer(out, msg, 503, "Service Unavailable", retry,
                                  dest=reply_address(via, source))
        except MemoryError:
            gc.collect()

    def _unanswered(self, msg):
        """The server transaction made for request msg and not answered yet, or None."""
        if msg is None or msg.method in (None, "ACK", "CANCEL"):
            return None
        via = msg.top_via()
        if via is None:
            return None
        try:
            txn = self.txns.get(server_key(msg, via))
        except Exception:  # a request too broken to have a key never got a transaction
            return None
        if txn is None or txn.kind < INVITE_SERVER or txn.status or txn.request is not msg:
            return None
        return txn

    # requests ------------------------------------------------------------
    def _parse(self, data, source, out):
        """The Message in data, or None when it was handled already (dropped, a keepalive,
        or answered 400 because it does not parse)."""
        if len(data) > self.config.max_message_size:
            self.counters["oversize"] += 1
            self.counters["dropped"] += 1
            self.log("debug", "dropped %d-byte datagram from %s" % (len(data), source[0]))
            return None
        if not data.strip(b"\r\n"):
            self.counters["keepalives"] += 1
            if data == b"\r\n\r\n":
                out.append((b"\r\n", source))  # RFC 5626 §4.4.1 keepalive pong
            return None
        try:
            return parse(data)
        except ParseError as e:
            self.counters["parse_errors"] += 1
            m = e.message
            if m is not None and m.method is not None and m.method != "ACK":
                self._answer_bad_request(m, source, e.code, e.reason, out)
            else:
                self.counters["dropped"] += 1
            self.log("debug", "bad message from %s: %s" % (source[0], e.reason))
            return None

    def _handle(self, msg, source, now, out):
        if msg.method is None:
            self.counters["responses"] += 1
            if self.qualify is not None and self.qualify.response(msg, now):
                return
            if self.gateway is None or not self.gateway.response(msg, now, out):
                self.proxy.response(msg, now, out)
            return
        self.counters["requests"] += 1
        self._request(msg, source, now, out)

    def _answer_bad_request(self, req, source, status, reason, out):
        """Answer a request that failed validation, statelessly. It goes where the top Via
        says (RFC 3581: the source address), or straight back to the source when that Via is
        itself invalid; a request without any Via is dropped."""
        if not req.first_value("via"):
            self.counters["dropped"] += 1
            return
        via = req.top_via()
        dest = source if via is None else reply_address(via, source)
        req.keep_top_via_only()  # only our neighbour's Via: the answer must not grow with junk
        self.proxy.answer(out, req, status, reason, dest=dest)

    def _request(self, req, source, now, out):
        value = req.first_value("via")
        if value is None:
            self.counters["dropped"] += 1
            return
        try:
            via = Via(value)
            ruri = self._validate(req, via)
        except ParseError as e:
            # a bad Via too: the answer goes to the source (see _answer_bad_request)
            if req.method != "ACK":
                self.counters["parse_errors"] += 1
                self._answer_bad_request(req, source, 400, e.reason, out)
            else:
                self.counters["dropped"] += 1
            return
        # RFC 3261 §18.2.1 and RFC 3581: where it really came from
        params = set_param(via.params, "received", source[0])
        if via.param("rport") is not None:
            params = set_param(params, "rport", str(source[1]))
        via.params = params
        req.replace_top_via(via)
        key = server_key(req, via)
        reply_to = reply_address(via, source)
        gateway = self.gateway
        if req.method == "ACK":
            if gateway is None or not gateway.ack(req, key, source, now, out):
                self.proxy.ack(req, via, key, now, out)
            return
        if req.method == "CANCEL":
            key = sibling_key(key, "INVITE")
            if gateway is None or not gateway.cancel(req, key, reply_to, now, out):
                self.proxy.cancel(req, key, reply_to, now, out)
            return
        txn = self.txns.get(key)
        if txn is not None:
            self.counters["retransmitted"] += 1
            if txn.kind in (INVITE_SERVER, NON_INVITE_SERVER):
                for action in self.txns.handle(txn, REQUEST, now):
                    out.append((action[1], action[2]))
            return
        kept = self.txns.finished(key)
        if kept is not None:
            self.counters["retransmitted"] += 1
            if kept[0] >= ANSWER:
                self._answer_again(req, kept[0], kept[1], reply_to, now, out)
            return
        txn = ServerTransaction(key, req, reply_to, now)
        if not self.txns.add(txn):
            self.proxy.answer(out, req, 503, "Service Unavailable",
                              [("Retry-After", RETRY_AFTER_FULL)], dest=reply_to)
            return
        if req.method == "INVITE":
            self.proxy.answer(out, req, 100, "Trying", (), txn, now=now)
        if self.auth is not None:
            answer = self.auth(self, req, source, now)
            if answer:
                self.proxy.answer(out, req, answer[0], answer[1], answer[2], txn, now=now,
                                  ask=answer[0] in (401, 407) and hasattr(self.auth, "challenges"))
                return
        self._dispatch(txn, req, ruri, source, now, out)

    def _answer_again(self, req, what, status, reply_to, now, out):
        """The answer of a finished transaction, rebuilt for its retransmitted request: the
        same status and To tag; for ASK, the registrar's bindings as they are now or a fresh
        challenge (the first answer's headers are not kept)."""
        headers = ()
        if what == ASK:
            if status == 200:
                headers = self.registrar.register_again(req, now)
            else:
                headers = self.auth.challenges(
                    "WWW-Authenticate" if status == 401 else "Proxy-Authenticate", now, False)
        self.proxy.again(req, status, REASONS.get(status, ""), headers, reply_to, out)

    def _validate(self, req, via):
        """The parsed Request-URI of req (whose top Via is via); ParseError (reason for the
        400) when req cannot be processed. Normalises Max-Forwards (at most 255)."""
        for lname, name in REQUIRED:
            if not (req.get(lname) or "").strip():
                raise ParseError("Missing " + name)
        problem = check_request(req, via)  # From and To parse too
        if problem:
            raise ParseError(problem)
        number, method = req.cseq()
        ruri = uri(req.uri)
        if method != req.method:
            raise ParseError("CSeq method does not match")
        if "<" in req.uri or ">" in req.uri or (ruri.scheme in ("sip", "sips")
                                                and not ruri.host):
            raise ParseError("Malformed Request-URI")
        if req.via_count() > _MAX_VIAS:
            raise ParseError("Too many Via values")
        if len(req.get("call-id")) > MAX_ID:
            raise ParseError("Call-ID too long")
        for lname, name in (("from", "From"), ("to", "To")):
            if len(req.get(lname)) <= MAX_ID:
                continue  # (its tag is shorter still: most requests read no tag here)
            tag = to_tag(req, lname)  # (check_request parsed both: no ParseError is hidden)
            if tag is not None and len(tag) > MAX_ID:
                raise ParseError(name + " tag too long")
        hops = req.get("max-forwards")
        if hops is not None:
            hops = hops.strip()
            if not digits(hops) or len(hops) > 10:
                raise ParseError("Malformed Max-Forwards")
            value = str(min(int(hops), 255))
            if value != hops:  # (most requests: "70" stays; set() rewrites the header list)
                req.set("Max-Forwards", value)
        return ruri

    def _dispatch(self, txn, req, ruri, source, now, out):
        """REGISTER to the registrar, OPTIONS and other requests to us answered here, the
        rest to the proxy."""
        if self.gateway is not None and self.gateway.request(txn, req, ruri, source, now, out):
            return
        method = req.method
        local = self.here.is_local(ruri)
        # §16.3 step 5: we support no extension a proxy must understand; as the registrar
        # (and for requests to the server itself) we are the UAS, so Require counts too (§8.2.2.3)
        unsupported = _options(req, "proxy-require")
        if local and not req.values("route") and (method == "REGISTER" or not ruri.user):
            unsupported += _options(req, "require")
        if unsupported:
            self.proxy.answer(out, req, 420, "Bad Extension",
                              [("Unsupported", ", ".join(unsupported))], txn, now=now)
            return
        if method == "REGISTER" and (local or not req.values("route")):
            if not local:
                self.proxy.answer(out, req, 403, "Forbidden: not our domain", (), txn, now=now)
                return
            status, reason, headers = self.registrar.register(req, source, now)
            self.proxy.answer(out, req, status, reason, headers, txn, now=now,
                              ask=status == 200)
            return
        if not ruri.user and local and not req.values("route"):
            if method == "OPTIONS":
                self.proxy.answer(out, req, 200, "OK",
                                  [("Allow", ALLOW), ("Accept", "application/sdp")], txn,
                                  now=now)
            elif to_tag(req) is not None:
                self.proxy.answer(out, req, 481, "Call/Transaction Does Not Exist", (), txn,
                                  now=now)
            else:
                self.proxy.answer(out, req, 405, "Method Not Allowed", [("Allow", ALLOW)],
                                  txn, now=now)
            return
        self.proxy.request(txn, req, now, out)

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
        calls = list(self.calls.active.values())
        calls.sort(key=lambda c: (c.started, c.call_id))  # no stable sort on MicroPython
        return [c.as_dict(now) for c in calls]

    def call_history(self, now):
        """Finished calls, newest first."""
        return [c.as_dict(now) for c in reversed(self.calls.history)]

    def table_use(self):
        """How many entries each bounded table holds now."""
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
        """Source addresses the flood limit blocks now, with the seconds left."""
        if self.ratelimit is None:
            return []
        return [{"address": ip, "seconds_left": left} for ip, left in self.ratelimit.blocked(now)]
