"""PBX wiring: the dialplan as the proxy's routing policy, and its dashboard API.

PbxRouter is the base Router (router.py) with the dialplan (dialplan.py) in its lookup()
and next(): feature codes are answered at once, groups, aliases, forwarding, DND and
intercom become stages the proxy forks, cancels and relays without knowing why. Imported
only when a PBX setting is set (dialplan.configured()).
"""

from switchboard.dialplan import KINDS, Dialplan
from switchboard.message import to_tag
from switchboard.router import Decision, Router, Target, answer


class PbxRouter(Router):
    def __init__(self, config, here, location, dialplan, log=None):
        Router.__init__(self, config, here, location)
        self.dialplan = dialplan
        self.log = log or (lambda level, text: None)

    def contacts(self, now):
        def contacts(user):
            return [(b.uri, b.source) for b in self.bindings(user, now)]

        return contacts

    def may_change(self, caller):
        """May caller's feature codes change caller's settings? With SIP_AUTH=all the From
        user was checked (when it has a password); with register-only auth it was not."""
        cfg = self.config
        if cfg.sip_auth == "register":
            return not cfg.users.get(caller)
        return True

    def lookup(self, user, req, now, caller):
        dp = self.dialplan
        if req.method != "INVITE" or to_tag(req) is not None:
            name = dp.canonical(user)  # MESSAGE, SUBSCRIBE... to an alias reach its phone
            return Router.lookup(self, user if name in dp.groups else name, req, now, caller)
        dp.host = self.here.sent_by  # the intercom Call-Info follows a DHCP address change
        code = dp.feature(user, caller, self.may_change(caller))
        if code is not None:
            self.log("info", "feature %s from %s: %d %s" % (user, caller, code[0], code[1]))
            return answer(code[0], code[1])
        got = dp.start(user, caller, self.contacts(now))
        if got is None:
            return Router.lookup(self, user, req, now, caller)
        return self.decision(got[0], got[1])

    def next(self, plan, best_status, now):
        if plan is None:  # a plain extension routed by Router.lookup: one stage only
            return None
        stage = self.dialplan.next(plan, best_status, self.contacts(now))
        if stage is None:
            return None
        return self.decision(plan, stage)

    def decision(self, plan, stage):
        if stage.status:
            return Decision(stage.status, stage.reason, stage.headers, plan=plan,
                            callee=plan.callee)
        return Decision(targets=[Target(u, d, h) for u, d, h in stage.targets],
                        timeout=stage.timeout, plan=plan, callee=plan.callee)


def install(engine, getenv, log):
    """Build the dialplan from settings and make it the engine's router; returns it. Bad
    settings are console lines, never fatal."""
    config = engine.config
    dp = Dialplan(getenv, config.users, engine.here.sent_by)
    for error in dp.errors:
        log("warning", "settings: " + error)
    router = PbxRouter(config, engine.here, engine.location, dp, log)
    router.reachable = engine.router.reachable  # qualify's filter, when it runs
    engine.router = router
    engine.proxy.router = router
    return dp


# the dashboard's JSON API ---------------------------------------------------------------
def add_routes(dashboard, dp):
    """GET /api/pbx: groups, aliases and every setting; POST /api/pbx?ext=1001&dnd=on
    (or always=/busy=/noanswer= with a number, empty to clear): change one extension's."""
    from adafruit_httpserver import GET, POST, JSONResponse, Route

    engine = dashboard.engine

    def view():
        names = dict(dp.state)  # every extension and group a dashboard row is for
        for name in engine.config.users:
            names[name] = 1
        for name in engine.location.users():
            names[name] = 1
        for name in dp.groups:
            names[name] = 1
        groups = {}
        for name in dp.groups:
            groups[name] = {"kind": "hunt" if dp.groups[name][0] else "ring",
                            "members": dp.groups[name][1]}
        return {"extensions": sorted(names), "settings": dp.view(), "groups": groups,
                "aliases": dp.aliases,
                "intercom": dp.intercom, "hunt_timeout": dp.hunt_timeout // 1000,
                "noanswer_after": dp.noanswer_after // 1000}

    def get(request):
        return dashboard._json(request, view())

    def post(request):
        denied = dashboard.refuse_control(request)  # password, other site
        if denied:
            return denied
        q = request.query_params
        ext = (q.get("ext") or "").strip()
        changes = []
        for kind in range(4):
            value = q.get(KINDS[kind])
            if value is None:
                continue
            value = value.strip()
            if kind == 0:
                if value.lower() not in ("on", "off", "1", "0", "true", "false"):
                    return JSONResponse(request, {"error": "dnd must be on or off"},
                                        status=(400, "Bad Request"))
                value = value.lower() in ("on", "1", "true")
            changes.append((kind, value or None))
        if not ext or not changes:
            return JSONResponse(request, {"error": "give ext and one of dnd, always, busy, "
                                                   "noanswer"}, status=(400, "Bad Request"))
        for kind, value in changes:  # check all first: a refused request changes nothing
            problem = dp.check(ext, kind, value)
            if problem:
                return JSONResponse(request, {"error": problem}, status=(400, "Bad Request"))
        for kind, value in changes:
            dp.set(ext, kind, value)
        dashboard.log("info", "pbx: %s %s (dashboard)" % (ext, ", ".join(
            "%s=%s" % (KINDS[k], v if v is not None else "off") for k, v in changes)))
        return JSONResponse(request, view(), headers={"Cache-Control": "no-store"})

    dashboard.server.add_routes([Route("/api/pbx", GET, get), Route("/api/pbx", POST, post)])

