"""The dashboard's views and controls beyond the basic status (issue 16).

Read: extensions with their state (/api/extensions, also inside /api/state), charts of the
last 10 minutes (/api/charts), the ladder of one call (/api/ladder?call_id=...), call
history as CSV (/api/history.csv). Controls (POST, behind the dashboard password, refused
when sent from another site): end a call (/api/calls/end?call_id=...), remove a contact
(/api/contacts/remove?user=...&uri=...). DND and forwarding are the PBX's /api/pbx
(pbx.py), present when the PBX is configured. Plain data in, plain data out: the routes
are added to the Dashboard (http.py) by add_routes().
"""

from switchboard.stats import Stats

STATES = ("in_call", "ringing", "offline", "unreachable", "dnd", "forwarded", "idle")
PAGE_ROWS = 3  # extensions rendered into the page itself (16 KB at most); the script shows all
STATE_WORDS = {"in_call": "in a call", "ringing": "ringing", "offline": "offline",
               "unreachable": "not answering", "dnd": "do not disturb",
               "forwarded": "forwarded", "idle": "idle"}


def _dialplan(engine):
    return getattr(engine.router, "dialplan", None)


def _call_of(engine, now):
    """{name: (state, other party)} for every party of an active call."""
    busy = {}
    calls = [engine.calls.active[k] for k in sorted(engine.calls.active)]
    calls.sort(key=lambda c: c.started)
    for c in calls:
        state = "in_call" if c.answered is not None else "ringing"
        for me, other in ((c.caller, c.callee), (c.callee, c.caller)):
            if me and (me not in busy or state == "in_call"):
                busy[me] = (state, other)
    return busy


def extensions(engine, now):
    """Every configured or registered extension with its state and contacts; groups, aliases
    (with the PBX) and the trunk (when the engine has one)."""
    location = engine.location
    qualify = engine.qualify
    dp = _dialplan(engine)
    names = {}
    for name in engine.config.users:
        names[name] = True
    for name in location.users():
        names[name] = True
    busy = _call_of(engine, now)
    settings = dp.view() if dp is not None else {}
    out = []
    for name in sorted(names):
        contacts = []
        up = 0
        for b in location.lookup(name, now):
            reachable, rtt = qualify.state(b) if qualify is not None else (None, None)
            if reachable is not False:
                up += 1
            contacts.append({
                "uri": b.uri, "address": "%s:%d" % (b.source[0], b.source[1]),
                "user_agent": b.user_agent, "registered_for": (now - b.since) // 1000,
                "expires_in": (b.expires_at - now) // 1000, "reachable": reachable,
                "rtt_ms": rtt,
            })
        s = settings.get(name) or {}
        forward = s.get("always")
        state, other = busy.get(name, (None, None))
        if state is None:
            if not contacts:
                state = "offline"
            elif not up:
                state = "unreachable"
            elif s.get("dnd"):
                state = "dnd"
            elif forward:
                state = "forwarded"
            else:
                state = "idle"
        out.append({"name": name, "state": state, "with": other, "dnd": bool(s.get("dnd")),
                    "forward": forward, "forward_busy": s.get("busy"),
                    "forward_noanswer": s.get("noanswer"),
                    "configured": name in engine.config.users, "contacts": contacts})
    view = {"extensions": out, "groups": [], "aliases": [], "pbx": dp is not None,
            "qualify": qualify.stats() if qualify is not None else None, "trunk": None}
    if dp is not None:
        for name in sorted(dp.groups):
            hunt, members = dp.groups[name]
            state, other = busy.get(name, ("idle", None))
            view["groups"].append({"name": name, "kind": "hunt" if hunt else "ring",
                                   "members": members, "state": state, "with": other,
                                   "forward": (settings.get(name) or {}).get("always")})
        for alias in sorted(dp.aliases):
            view["aliases"].append({"name": alias, "target": dp.aliases[alias]})
    trunk = getattr(engine, "gateway", None)  # the trunk (trunk.py), when TRUNK is set
    if trunk is not None:
        view["trunk"] = trunk.status(now)
    return view


def ladder(engine, call_id):
    """The messages of one call kept in the trace ring, with each peer named."""
    trace = engine.trace
    if trace is None:
        return {"call_id": call_id, "kept": 0, "messages": [], "peers": []}
    entries = trace.messages(call_id)
    names = {}
    location = engine.location
    for user in location.users():
        for b in location.table.get(user, ()):
            names["%s:%d" % (b.source[0], b.source[1])] = user
    peers = []
    messages = []
    start = entries[0][0] if entries else 0
    for when, inbound, peer, line, _ in entries:
        if peer not in peers:
            peers.append(peer)
        messages.append({"ms": when - start, "inbound": inbound, "peer": peer, "line": line})
    return {"call_id": call_id, "kept": trace.size, "messages": messages,
            "peers": [{"address": p, "name": names.get(p)} for p in peers]}


def _csv(value):
    text = "" if value is None else str(value)
    if text[:1] in ("=", "+", "-", "@"):
        text = "'" + text  # a spreadsheet must not run it as a formula
    if "," in text or '"' in text or "\n" in text or "\r" in text:
        text = '"' + text.replace('"', '""') + '"'
    return text


def history_csv(engine, now):
    rows = ["call_id,caller,callee,result,status,reason,started_s,talked_s,ended_s_ago"]
    for c in reversed(engine.calls.history):
        rows.append(",".join(_csv(v) for v in (
            c.call_id, c.caller, c.callee, c.state, c.status or "", c.reason,
            c.started // 1000, c.duration(now),
            "" if c.ended is None else (now - c.ended) // 1000)))
    return "\r\n".join(rows) + "\r\n"


class Sampler:
    """A loop service: feeds the chart ring (stats.py) from the engine's totals."""

    def __init__(self, engine, heap_free):
        self.engine = engine
        self.heap_free = heap_free
        self.stats = Stats()

    def totals(self):
        eng = self.engine
        return (eng.counters["received"] + eng.counters["sent"], eng.calls.answered,
                eng.calls.failed)

    def poll(self, now):
        t = self.totals()
        self.stats.sample(now, t[0], t[1], t[2], self.heap_free())

    def view(self, now):
        t = self.totals()
        return self.stats.view(now, t[0], t[1], t[2])


def add_routes(dashboard, heap_free):
    """Add the routes above to dashboard (http.Dashboard) and the chart sampler to its app."""
    from adafruit_httpserver import GET, POST, JSONResponse, Response, Route

    engine = dashboard.engine
    clock = dashboard.clock
    if engine.trace is None and engine.config.message_trace:
        from switchboard.trace import Trace  # only with the dashboard: its ladders need it

        engine.trace = Trace(engine.config.message_trace)
    from switchboard import endcall

    engine.calls.legs = endcall  # what "end call" needs, kept per call from now on
    sampler = Sampler(engine, heap_free)
    dashboard.app.services.append(sampler)
    headers = {"Cache-Control": "no-store"}

    def error(request, status, text):
        return JSONResponse(request, {"error": text}, status=status, headers=headers)

    control = dashboard.refuse_control  # None when a POST may go on, else its refusal

    def get_extensions(request):
        return dashboard._json(request, extensions(engine, clock.now()))

    def get_charts(request):
        return dashboard._json(request, sampler.view(clock.now()))

    def get_ladder(request):
        call_id = request.query_params.get("call_id") or ""
        return dashboard._json(request, ladder(engine, call_id))

    def get_csv(request):
        denied = dashboard._denied(request)
        if denied:
            return denied
        return Response(request, history_csv(engine, clock.now()),
                        content_type="text/csv; charset=utf-8",
                        headers={"Cache-Control": "no-store",
                                 "Content-Disposition": 'attachment; filename="calls.csv"'})

    def post_end(request):
        refused = control(request)
        if refused:
            return refused
        call_id = request.query_params.get("call_id") or ""
        problem, out = endcall.end(engine, call_id, clock.now())
        for data, dest in out:
            dashboard.app.sip.send(data, dest)
        if problem:
            return error(request, (404, "Not Found") if problem == "no such call" else
                         (409, "Conflict"), problem)
        dashboard.log("info", "call %s ended from the dashboard (BYE to both phones)"
                      % call_id)
        return JSONResponse(request, {"ended": call_id, "byes": len(out)}, headers=headers)

    def post_remove(request):
        refused = control(request)
        if refused:
            return refused
        q = request.query_params
        user = q.get("user") or ""
        uri = q.get("uri") or ""
        for b in list(engine.location.table.get(user, ())):
            if b.uri == uri:
                engine.location.remove(user, b)
                dashboard.log("info", "unregister %s contact=<%s> (dashboard)" % (user, uri))
                return JSONResponse(request, {"removed": uri, "user": user}, headers=headers)
        return error(request, (404, "Not Found"), "no such contact")

    dashboard.server.add_routes([
        Route("/api/extensions", GET, get_extensions),
        Route("/api/charts", GET, get_charts),
        Route("/api/ladder", GET, get_ladder),
        Route("/api/history.csv", GET, get_csv),
        Route("/api/calls/end", POST, post_end),
        Route("/api/contacts/remove", POST, post_remove),
    ])
    return sampler


def render_extensions(view):
    """Server-side rows for the page before its script runs (and without script)."""
    from switchboard.http import escape

    rows = []
    shown = view["extensions"][:PAGE_ROWS]
    for e in shown:
        rows.append("<tr><td>%s</td><td>%s</td></tr>" % (
            escape(e["name"][:8]), STATE_WORDS.get(e["state"], "")))
    return "".join(rows) or "<tr><td>No extension</td></tr>"
