"""Routing policy: where a request goes (Kamailio's routing script, not its tm module).

The proxy (proxy.py) owns transactions, forking and the response context; it asks the
router two questions and never decides a destination itself:

- `Router.route(req, now, caller)` for a request it is to forward: a `Decision`;
- `Router.next(plan, best_status, now)` when a stage of a decision is over without a 2xx
  (every branch ended, or the stage's `timeout` fired): the next stage's `Decision`, or
  None to relay the best response.

The base Router does what a plain registrar-proxy does: loose routing by Route (§16.4),
location lookup for our users (§16.5), the Request-URI otherwise, one stage. PBX features
(ring and hunt groups, aliases, forwarding, DND, intercom, feature codes) and a SIP trunk
subclass it (override `lookup()`, `route()` or `next()`) without touching forwarding.

Plugging one in: build the parts it shares with the engine and inject them all,

    here = Here(config)
    location = Location(config.max_bindings, config.max_contacts_per_aor)
    engine = Engine(config, seed, log, auth=auth, here=here, location=location,
                    router=MyRouter(config, here, location))

What the proxy guarantees a router (tests/unit/test_proxy.py shows each with a small
router of two stages):
- route() is called once per request the proxy forwards: initial requests, in-dialog ones
  (`message.to_tag(req)` is not None: follow the Route set, apply no dialplan) and ACKs
  for 2xx (only the first target is used); `caller` is the From user, which digest auth, when
  on, has checked against the credentials;
- a Decision's targets ring in parallel as one stage; Target.headers go on that branch only;
- next() is called when every branch of the stage ended without a 2xx (best_status is the
  best final status, 408 when only timeouts came back) or when the stage's `timeout` fired
  (its pending branches are CANCELled first; best_status 408 unless a final came). It is
  not called after a 6xx, after the caller's CANCEL, or once any branch answered 2xx;
- the answers of a stage's branches compete for the caller's final response only within
  that stage; a late 2xx from an earlier stage still reaches the caller.
"""

from switchboard.message import ParseError, is_ipv4, parse_name_addr, uri


class Target:
    """One branch to fork to: uri is its Request-URI, dest the (ip, port) to send it to,
    headers [(name, value)] extra header lines for this branch only (e.g.
    ("Call-Info", "<sip:x>;answer-after=0") for intercom)."""

    def __init__(self, uri, dest, headers=()):
        self.uri = uri
        self.dest = dest
        self.headers = headers


class Decision:
    """What to do with a request: answer it, or fork it to targets.

    status: non-zero means answer the request with status, reason and headers
      [(name, value)] (a feature code's answer is just that);
    targets: otherwise, the Targets forked in parallel as one stage;
    timeout: ms (0 = none) after which the proxy CANCELs the stage's pending branches and
      calls Router.next() for the next stage;
    plan: the router's private state for next(), kept by the proxy on the response context;
    callee: the callee's name for call records and history ("" = the To user).
    """

    def __init__(self, status=0, reason="", headers=(), targets=(), timeout=0, plan=None,
                 callee=""):
        self.status = status
        self.reason = reason
        self.headers = headers
        self.targets = targets
        self.timeout = timeout
        self.plan = plan
        self.callee = callee


def answer(status, reason, headers=()):
    """A Decision that answers the request with status and reason."""
    return Decision(status, reason, headers)


def is_ip(host):
    """An IP address (IPv4, or an IPv6 reference), as opposed to a host name."""
    return is_ipv4(host) or host.startswith("[")


# A next hop we cannot send to without a name lookup or IPv6 (docs/architecture.md).
UNREACHABLE = (502, "Bad Gateway: no route without DNS or IPv6")


class Here:
    """Our own address as phones reach it, and which URIs are ours; changed by DHCP."""

    def __init__(self, config):
        self.config = config
        self.set(config.sip_address or "127.0.0.1", config.sip_port)

    def set(self, address, port):
        """Our address and port (Via, Record-Route, is_local)."""
        self.address = address
        self.port = port
        self.sent_by = "%s:%d" % (address, port)
        self.record_route = "<sip:%s;lr>" % self.sent_by
        self.hosts = [address.lower(), "localhost"]
        bind = self.config.sip_host
        if bind and bind != "0.0.0.0":
            self.hosts.append(bind.lower())
        self.domain = (self.config.sip_domain or address).lower()

    def is_local(self, uri):
        """Is uri one of ours: our address (and port) or a domain name (we resolve none)?"""
        if uri.scheme not in ("sip", "sips"):
            return False
        host = uri.host
        if host in self.hosts or host == self.domain:
            return uri.port is None or uri.port == self.port
        return not is_ip(host)


class Router:
    """The base routing policy: Route set, then our users' bindings, then the Request-URI.

    config: users (a known user without a binding gets 480, a stranger 404);
    here: our address (Here); location: the registrar's bindings (Location).
    """

    def __init__(self, config, here, location):
        self.config = config
        self.here = here
        self.location = location
        self.reachable = None  # binding -> False when it stopped answering pings (qualify.py)

    def bindings(self, user, now):
        """user's live bindings, best q first, without those known to be unreachable."""
        bindings = self.location.lookup(user, now)
        if self.reachable is not None:
            bindings = [b for b in bindings if self.reachable(b)]
        return bindings

    def route(self, req, now, caller):
        """A Decision for req, which the proxy is to forward (initial or in-dialog).

        Follows the Route set first (loose routing; a strict router's Request-URI is
        restored, our own top Route removed: req is edited in place, §16.4); with no Route
        left, a Request-URI of ours goes to lookup(), any other to its host. caller is the
        authenticated user when digest auth ran, else the From user (or "").
        """
        routes = req.values("route")
        try:
            ruri = uri(req.uri)
        except ParseError:
            return answer(400, "Malformed Request-URI")
        if routes and not ruri.user and self.here.is_local(ruri):
            # the previous hop is a strict router: our URI stands in the Request-URI (§16.4)
            try:
                last = parse_name_addr(routes[-1])[1]
                ruri = uri(last)
            except ParseError:
                return answer(400, "Malformed Route")
            req.uri = last
            req.drop_last_route()
            routes = routes[:-1]
        if routes:
            try:
                top = uri(parse_name_addr(routes[0])[1])
            except ParseError:
                return answer(400, "Malformed Route")
            if self.here.is_local(top):
                req.set_first_value("route", None)
                routes = routes[1:]
        if routes:
            try:
                hop = uri(parse_name_addr(routes[0])[1])
            except ParseError:
                return answer(400, "Malformed Route")
            dest = self.reach(hop, routes[0])
            if dest is None:
                return answer(UNREACHABLE[0], UNREACHABLE[1])
            return Decision(targets=[Target(req.uri, dest)])
        if self.here.is_local(ruri):
            return self.lookup(ruri.user, req, now, caller)
        dest = self.reach(ruri, req.uri)
        if dest is None:
            return answer(UNREACHABLE[0], UNREACHABLE[1])
        return Decision(targets=[Target(req.uri, dest)])

    def lookup(self, user, req, now, caller):
        """A Decision for a Request-URI of ours naming user: every live binding, best q
        first, forked in parallel (unreachable ones left out); 480 for a known user with none
        (or none reachable), 404 for a stranger.
        The hook a dialplan overrides."""
        bindings = self.bindings(user, now)
        if not bindings:
            users = self.config.users
            if (users and user in users) or self.location.lookup(user, now):
                return answer(480, "Temporarily Unavailable")
            return answer(404, "Not Found")
        return Decision(targets=[Target(b.uri, b.source) for b in bindings])

    def next(self, plan, best_status, now):
        """The next stage after one ended without a 2xx (best_status: the best final status
        so far, 408 when none came): a Decision, or None to relay the best response. The
        base router has one stage only."""
        return None

    def reach(self, uri, text):
        """Where to send a request for uri (text as written): a registered phone's real
        address (behind NAT), else the URI's own IPv4 address. None for a host name (we resolve
        no names: a lookup would block the loop) or an IPv6 reference (we have no IPv6
        transport)."""
        b = self.location.find_uri(text if text.startswith("sip") else uri.text)
        if b is None:
            b = self.location.find_uri(uri.text)
        if b is not None:
            return b.source
        if uri.scheme not in ("sip", "sips") or not is_ipv4(uri.host):
            return None
        return (uri.host, uri.port or 5060)
