"""Ending a stuck call from the dashboard: a BYE to each phone inside its dialog (RFC 3261
§15.1.1, §12.2.1.1), as Kamailio's dialog module does (dlg_end_dlg).

The call record (calls.py) keeps, for each side, its From/To value with its tag, its Contact,
its address, the Route set towards it and the highest CSeq it sent. The BYE to one phone
comes "from" the other: its From is the other side's value, its To the phone's own, its
CSeq one above the other side's highest. Each BYE runs in a client transaction of its own
(retransmitted until answered, its answer absorbed), like the CANCELs the proxy makes.
Imported by the dashboard (views.py), which hands this module to the call records
(Calls.legs) so that the proxy keeps each answered call's legs from then on; without the
dashboard nothing is kept and nothing is imported.
"""

from switchboard import VERSION
from switchboard.message import URI, ParseError, param, parse_name_addr
from switchboard.transaction import ClientTransaction

REASON = 'SIP;cause=200;text="Ended from the Switchboard dashboard"'  # RFC 3326


def bye(to_leg, from_leg, call_id, via, cseq):
    """The BYE to the phone of to_leg, and where to send it, or None."""
    routes = to_leg[4]
    dest = to_leg[3]
    if routes:
        try:
            hop = URI(parse_name_addr(routes[0])[1])
        except ParseError:
            return None
        dest = (hop.host.strip("[]"), hop.port or 5060)
    lines = ["BYE %s SIP/2.0" % to_leg[2], "Via: " + via, "Max-Forwards: 70"]
    for r in routes:
        lines.append("Route: " + r)
    lines += ["From: " + from_leg[0], "To: " + to_leg[0], "Call-ID: " + call_id,
              "CSeq: %d BYE" % cseq, "Reason: " + REASON,
              "User-Agent: Switchboard/" + VERSION, "Content-Length: 0", "", ""]
    return "\r\n".join(lines).encode(), dest


def end(engine, call_id, now):
    """The dashboard's "end call", an entry point of its own: (None or why not, the
    [(bytes, (ip, port))] to send); the engine counts and traces them."""
    out = []
    try:
        problem = end_call(engine, call_id, now, out)
    except MemoryError:
        engine._out_of_memory("end call", None, None, now, out)
        problem = "out of memory"
    engine._done(out, now)
    return problem, out


def end_call(engine, call_id, now, out):
    """BYE both phones of an answered call and close its record. Returns None when done,
    else why not (no such call, not answered, what a BYE needs is missing)."""
    calls = engine.calls
    call = calls.active.get(call_id)
    if call is None:
        return "no such call"
    a, b = call.leg_a, call.leg_b
    if call.answered is None:
        return "the call is not answered yet"
    if a is None or b is None:
        return "what a BYE needs was not kept for this call (it began before the dashboard)"
    proxy = engine.proxy
    sent = 0
    for to_leg, from_leg in ((a, b), (b, a)):
        branch = "z9hG4bK" + proxy.new_id() + "e"
        made = bye(to_leg, from_leg, call_id,
                   "SIP/2.0/UDP %s;branch=%s;rport" % (engine.here.sent_by, branch),
                   from_leg[5] + 1)
        if made is None:
            continue
        data, dest = made
        engine.txns.add(ClientTransaction(branch + "|BYE", "BYE", None, data, dest, None, now))
        out.append((data, dest))
        sent += 1
    call.reason = "ended from the dashboard"
    calls._finish(call, "ended", now)
    return None if sent else "no BYE could be addressed"


def caller_leg(call, req, source):
    """Keep what a BYE to the caller needs from the initial INVITE (source: its address;
    the Record-Route it came with leads back to it, nearest first)."""
    contact = req.values("contact")
    if not contact:
        return
    value = req.get("from")
    try:
        call.leg_a = [value, _tag(value), parse_name_addr(contact[0])[1], source,
                      tuple(req.values("record-route")), req.cseq()[0]]
    except ParseError:
        pass


def callee_leg(call, resp, dest, ours):
    """Keep what a BYE to the callee needs from the 2xx that answered (dest: where its
    INVITE went; ours: our Record-Route value; the ones above it lead to the callee)."""
    contact = resp.values("contact")
    if call.leg_a is None or call.leg_b is not None or not contact:
        return
    value = resp.get("to")
    routes = resp.values("record-route")
    below = ()
    for i in range(len(routes)):
        if routes[i].strip() == ours:
            below = tuple(reversed(routes[:i]))
            break
    try:
        call.leg_b = [value, _tag(value), parse_name_addr(contact[0])[1], dest, below, 0]
    except ParseError:
        pass


def track(call, req):
    """An in-dialog request passed through: keep its side's highest CSeq."""
    tag = _tag(req.get("from"))
    cseq = req.cseq()[0]
    for leg in (call.leg_a, call.leg_b):
        if leg is not None and tag == leg[1] and cseq > leg[5]:
            leg[5] = cseq


def _tag(value):
    try:
        return param(parse_name_addr(value or "")[2], "tag")
    except ParseError:
        return None
