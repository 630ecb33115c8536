"""The stateful proxy (RFC 3261 §16, §17; RFC 3581).

Routes a request (loose routing by Route, location lookup for our users, the
Request-URI otherwise), forwards it on one client transaction per target
(parallel forking), and runs the response context: provisional responses are
relayed at once, the first 2xx wins and cancels the other branches, otherwise
the best final response is relayed when every branch has finished.
"""

from switchboard.message import (
    URI,
    Message,
    ParseError,
    Via,
    address_user,
    is_ipv4,
    parse_name_addr,
    split_commas,
    to_tag,
)
from switchboard.transaction import (
    COMPLETED,
    CONFIRMED,
    LINGER,
    PROCEEDING,
    T2,
    T4,
    TRYING,
    ClientTransaction,
    ServerTransaction,
)

# Methods that create a dialog: the proxy records its route in them.
DIALOG_METHODS = ("INVITE", "SUBSCRIBE", "REFER", "NOTIFY")


def fnv(text):
    """FNV-1a, 32 bits: the same on every interpreter (unlike hash())."""
    h = 0x811C9DC5
    for b in text.encode():
        h = ((h ^ b) * 0x01000193) & 0xFFFFFFFF
    return h


# A next hop we cannot send to without a name lookup or IPv6 (docs/architecture.md).
UNREACHABLE = (502, "Bad Gateway: no route without DNS or IPv6", [])


def class_rank(status):
    """Lower ranks win (§16.7 step 6): 6xx, then 3xx, 4xx, 5xx."""
    if status >= 600:
        return 0
    return status // 100


class Proxy:
    def __init__(self, engine):
        self.engine = engine
        self.txns = engine.txns
        self.calls = engine.calls

    # requests ------------------------------------------------------------
    def route(self, server, req, now):
        """Route a new request that is not addressed to the registrar or to us."""
        eng = self.engine
        method = req.method
        in_dialog = to_tag(req) is not None
        targets = self.targets(req, now)
        if isinstance(targets, tuple):
            if method == "INVITE" and not in_dialog:
                self._start_call(server, req, now)
            eng.reply(server, targets[0], targets[1], targets[2], now)
            return
        if method == "INVITE" and not in_dialog:
            if self.calls.full():
                eng.reply(server, 503, "Service Unavailable", [("Retry-After", "30")], now)
                return
            self._start_call(server, req, now)
        elif in_dialog:
            self.calls.in_dialog(req.get("call-id"), method, req.body, now)
        record = method in DIALOG_METHODS and not in_dialog
        self.forward(server, req, targets, record, now)

    def _start_call(self, server, req, now):
        caller = address_user(req.get("from"))
        callee = address_user(req.get("to")) or req.ruri.user
        server.call = self.calls.start(req.get("call-id"), caller, callee, req.body, now)

    def targets(self, req, now):
        """[(uri, dest)] to forward req to, or (status, reason, headers) to answer with."""
        eng = self.engine
        routes = req.values("route")
        ruri = req.ruri
        if routes and not ruri.user and eng.is_local(ruri):
            # the previous hop is a strict router: our URI stands in the Request-URI (§16.4)
            try:
                last = parse_name_addr(routes[-1])[1]
                req.ruri = ruri = URI(last)
            except ParseError:
                return 400, "Malformed Route", []
            req.uri = last
            _drop_last_route(req)
            routes = routes[:-1]
        if routes:
            try:
                top = URI(parse_name_addr(routes[0])[1])
            except ParseError:
                return 400, "Malformed Route", []
            if eng.is_local(top):
                req.set_first_value("route", None)
                routes = routes[1:]
        if routes:
            try:
                hop = URI(parse_name_addr(routes[0])[1])
            except ParseError:
                return 400, "Malformed Route", []
            dest = self._reach(hop, routes[0])
            if dest is None:
                return UNREACHABLE
            return [(req.uri, dest)]
        if eng.is_local(ruri):
            user = ruri.user
            bindings = eng.location.lookup(user, now)
            if not bindings:
                users = eng.config.users
                if users and user in users:
                    return 480, "Temporarily Unavailable", []
                return 404, "Not Found", []
            return [(b.uri, b.source) for b in bindings]
        dest = self._reach(ruri, req.uri)
        if dest is None:
            return UNREACHABLE
        return [(req.uri, dest)]

    def _reach(self, uri, text):
        """Where to send a request for uri: a registered phone's real address, else the URI's
        own IPv4 address. None for a host name (we resolve no names: a lookup would block the
        loop) or an IPv6 reference (we have no IPv6 transport)."""
        b = self.engine.location.find_uri(text if text.startswith("sip") else uri.text)
        if b is None:
            b = self.engine.location.find_uri(uri.text)
        if b is not None:
            return b.source
        if uri.scheme not in ("sip", "sips") or not is_ipv4(uri.host):
            return None
        return (uri.host, uri.port or 5060)

    def forward(self, server, req, targets, record, now):
        """Send req to each target on its own client transaction (§16.6)."""
        eng = self.engine
        hops = req.get("max-forwards")
        hops = 70 if hops is None else int(hops)
        if hops <= 0:
            eng.reply(server, 483, "Too Many Hops", [], now)
            return
        prefix = "z9hG4bK%08x" % self.loop_hash(req)
        if self._looped(req, prefix):
            eng.reply(server, 482, "Loop Detected", [], now)
            return
        method = req.method
        for uri, dest in targets:
            fwd = req.copy()
            fwd.uri = uri
            fwd.set("Max-Forwards", str(hops - 1))
            if record:
                fwd.add("Record-Route", eng.record_route, first=True)
            branch = prefix + "." + eng.new_id()
            fwd.add("Via", "SIP/2.0/UDP %s;branch=%s" % (eng.sent_by, branch), first=True)
            data = fwd.to_bytes()
            if len(data) > eng.config.max_message_size:
                eng.reply(server, 513, "Message Too Large", [], now)  # we have no TCP (§18.1.1)
                return
            ct = ClientTransaction(branch + "|" + method, method, fwd, data, dest, server, now)
            if method == "INVITE":
                ct.timer_c = now + eng.config.timer_c * 1000
            if not self.txns.add(ct):
                break
            server.branches.append(ct)
            eng.send(data, dest)
        if not server.branches:
            eng.reply(server, 503, "Service Unavailable", [("Retry-After", "5")], now)

    def loop_hash(self, req):
        """Hash of what a loop would repeat (§16.6 step 8): URI, tags, Call-ID, CSeq, Route."""
        return fnv("%s|%s|%s|%s|%s|%s" % (
            req.uri, req.get("from"), req.get("to"), req.get("call-id"),
            req.get("cseq").split()[0], ",".join(req.values("route"))))

    def _looped(self, req, prefix):
        sent_by = self.engine.sent_by
        for value in req.values("via"):
            if sent_by in value and ("branch=" + prefix) in value:
                return True
        return False

    def ack(self, req, via, key, now):
        """ACK: absorbed by the INVITE transaction it ends, otherwise relayed statelessly."""
        eng = self.engine
        server = self.txns.get(key)
        if isinstance(server, ServerTransaction) and server.status >= 300:
            if server.state == COMPLETED:
                server.state = CONFIRMED
                self.txns.finish(server, now, T4)
            return
        targets = self.targets(req, now)
        if isinstance(targets, tuple):
            eng.count("dropped")
            return
        hops = req.get("max-forwards")
        hops = 70 if hops is None else int(hops)
        if hops <= 0:
            eng.count("dropped")
            return
        self.calls.in_dialog(req.get("call-id"), "ACK", b"", now)
        uri, dest = targets[0]
        req.uri = uri
        req.set("Max-Forwards", str(hops - 1))
        branch = "z9hG4bK%08x.a" % fnv(via.branch() or key)
        req.add("Via", "SIP/2.0/UDP %s;branch=%s" % (eng.sent_by, branch), first=True)
        eng.send(req.to_bytes(), dest)

    def cancel(self, req, key, reply_to, now):
        """CANCEL: 200 to it, CANCEL to every branch still pending (§16.10)."""
        eng = self.engine
        server = self.txns.get(key)
        if not isinstance(server, ServerTransaction):
            eng.stateless_reply(req, 481, "Call/Transaction Does Not Exist", reply_to)
            return
        eng.stateless_reply(req, 200, "OK", reply_to)
        if server.status or server.cancelled:
            return
        server.cancelled = True
        if not server.branches:
            eng.reply(server, 487, "Request Terminated", [], now)
            return
        for ct in server.branches:
            self.cancel_branch(ct, now)

    def cancel_branch(self, ct, now):
        if ct.method != "INVITE":
            return  # only INVITE is cancelled (§9.1); other requests end by themselves
        if ct.state == TRYING:
            ct.cancel = 1  # sent when a provisional response arrives (§9.1)
        elif ct.state == PROCEEDING and ct.cancel != 2:
            ct.cancel = 2
            data = hop_request(ct.request, "CANCEL", ct.request.get("to"))
            key = ct.key[:ct.key.rfind("|")] + "|CANCEL"
            cancel = ClientTransaction(key, "CANCEL", None, data, ct.dest, None, now)
            if self.txns.get(key) is None:
                self.txns.add(cancel)
            self.engine.send(data, ct.dest)

    # responses -----------------------------------------------------------
    def response(self, resp, now):
        """A response from downstream: match its client transaction (§17.1.3)."""
        eng = self.engine
        value = resp.first_value("via")
        if value is None:
            eng.count("dropped")
            return
        try:
            via = Via(value)
            method = resp.cseq()[1]
        except ParseError:
            eng.count("dropped")
            return
        if "%s:%s" % (via.host, via.port) != eng.sent_by:
            eng.count("dropped")
            return
        ct = self.txns.get(via.branch() + "|" + method)
        if ct is None or not isinstance(ct, ClientTransaction):
            if method == "INVITE" and 200 <= resp.status < 300:
                self._stateless_relay(resp)  # a retransmitted 2xx (§16.7 step 5)
            else:
                eng.count("dropped")
            return
        status = resp.status
        if ct.method == "CANCEL":
            if status >= 200:
                ct.state = COMPLETED
                self.txns.finish(ct, now, T4)
            return
        if ct.state >= COMPLETED:
            if ct.method == "INVITE":
                if status >= 300:
                    self._ack(ct, resp)
                elif status >= 200:
                    self._stateless_relay(resp)
            return
        if status < 200:
            if ct.state == TRYING:
                ct.state = PROCEEDING
                if ct.method != "INVITE":
                    ct.interval = T2
                    ct.due = now + T2
            if ct.method == "INVITE":
                if status > 100:
                    ct.timer_c = now + eng.config.timer_c * 1000
                ct.due = ct.timer_c
            self.txns.wake(ct.due)
            if ct.cancel == 1:
                self.cancel_branch(ct, now)
            if status > 100 and ct.server is not None and not ct.server.status:
                self.relay(ct.server, resp, now)
            return
        ct.status = status
        ct.state = COMPLETED
        if ct.method == "INVITE" and status >= 300:
            self._ack(ct, resp)
        self.txns.finish(ct, now, LINGER if ct.method == "INVITE" else T4)
        self.branch_done(ct, resp, now)

    def branch_done(self, ct, resp, now):
        """A branch's final response (or its timeout, resp None): the response context."""
        server = ct.server
        if server is None:
            return
        status = ct.status
        if 200 <= status < 300 and (ct.method == "INVITE" or not server.status):
            # every 2xx to an INVITE goes upstream (§16.7 step 5); other requests get one answer
            self.relay(server, resp, now)
            for other in server.branches:
                if other is not ct:
                    self.cancel_branch(other, now)
            return
        if server.status:
            return  # already answered
        if status >= 600:
            for other in server.branches:
                if other is not ct:
                    self.cancel_branch(other, now)
        best = server.best
        if resp is not None and (best is None or class_rank(status) < class_rank(best.status)):
            server.best = resp
        elif resp is None and best is None:
            server.best = 408
        for other in server.branches:
            if other.state < COMPLETED:
                return
        best = server.best
        if best == 408 or best is None:
            self.engine.reply(server, 408, "Request Timeout", [], now)
        else:
            if best.status == 503:
                best.status, best.reason = 500, "Server Internal Error"  # §16.7 step 6
            self.relay(server, best, now)

    def relay(self, server, resp, now):
        """Send a downstream response upstream: our Via off, then as our own answer."""
        resp.set_first_value("via", None)
        self.engine.respond(server, resp, now)

    def _stateless_relay(self, resp):
        eng = self.engine
        resp.set_first_value("via", None)
        value = resp.first_value("via")
        if value is None:
            eng.count("dropped")
            return
        try:
            dest = response_address(Via(value))
        except ParseError:
            dest = None
        if dest is None:
            eng.count("dropped")
            return
        eng.send(resp.to_bytes(), dest)

    def _ack(self, ct, resp):
        """ACK for a non-2xx final response: hop by hop, on the INVITE's branch (§17.1.1.3)."""
        if ct.ack is None:
            ct.ack = hop_request(ct.request, "ACK", resp.get("to") or ct.request.get("to"))
        self.engine.send(ct.ack, ct.dest)

    # timers --------------------------------------------------------------
    def timer(self, txn, now):
        eng = self.engine
        if isinstance(txn, ServerTransaction):
            # Timer G until ACK, Timer H gives up (§17.2.1)
            if now >= txn.give_up:
                self.txns.finish(txn, now, 0)
                return
            eng.send(txn.last, txn.source)
            txn.interval = min(txn.interval * 2, T2)
            txn.due = min(now + txn.interval, txn.give_up)
            self.txns.wake(txn.due)
            return
        invite = txn.method == "INVITE"
        if txn.state == PROCEEDING and invite:
            # Timer C (§16.8): give up on the branch, CANCEL it
            self.cancel_branch(txn, now)
            self._timeout(txn, now)
            return
        if now >= txn.give_up:
            self._timeout(txn, now)  # Timer B or F
            return
        eng.send(txn.data, txn.dest)
        eng.count("retransmitted")
        if invite:
            txn.interval *= 2
        elif txn.state == PROCEEDING:
            txn.interval = T2
        else:
            txn.interval = min(txn.interval * 2, T2)
        txn.due = min(now + txn.interval, txn.give_up)
        self.txns.wake(txn.due)

    def _timeout(self, ct, now):
        ct.status = 408
        ct.state = COMPLETED
        self.branch_done(ct, None, now)  # first: finishing may release the link to the server
        self.txns.finish(ct, now, LINGER if ct.method == "INVITE" else 0)


def hop_request(r, method, to):
    """CANCEL or non-2xx ACK for the request r we forwarded: its Request-URI, our Via (same
    branch), its Route set, From, Call-ID and CSeq number (§9.1, §17.1.1.3)."""
    m = Message()
    m.method = method
    m.uri = r.uri
    m.add("Via", r.first_value("via"))
    for value in r.values("route"):
        m.add("Route", value)
    m.add("Max-Forwards", "70")
    m.add("From", r.get("from"))
    m.add("To", to)
    m.add("Call-ID", r.get("call-id"))
    m.add("CSeq", "%s %s" % (r.get("cseq").split()[0], method))
    return m.to_bytes()


def _drop_last_route(req):
    for i in range(len(req.headers) - 1, -1, -1):
        h = req.headers[i]
        if h[0] == "route":
            parts = split_commas(h[2])[:-1]
            if parts:
                h[2] = ", ".join(parts)
            else:
                del req.headers[i]
            return


def is_ip(host):
    """An IP address (IPv4, or an IPv6 reference), as opposed to a host name."""
    return is_ipv4(host) or host.startswith("[")


def response_address(via):
    """Where a response to this Via goes (§18.2.2, RFC 3581 §4), or None when that needs a
    name lookup or IPv6 (the Via's received/rport were validated when it was parsed)."""
    host = via.param("received") or via.host
    if not is_ipv4(host):
        return None
    rport = via.param("rport")
    return (host, int(rport) if rport else (via.port or 5060))


def reply_address(via, source):
    """Where our responses to a request go: its source IP, the port by RFC 3581."""
    if via.param("rport") is not None:
        return source
    return (source[0], via.port or 5060)

