"""Ending a stuck call from the dashboard: a BYE to each phone inside its dialog (RFC 3261
§15.1.1, §12.2.1.1), as Kamailio's dialog module does (dlg_end_dlg).

The call record (calls.py) keeps, for each side, its From/To value with its tag, its Contact,
its address, the Route set towards it and the highest CSeq it sent. The BYE to one phone
comes "from" the other: its From is the other side's value, its To the phone's own, its
CSeq one above the other side's highest. Each BYE runs in a client transaction of its own
(retransmitted until answered, its answer absorbed), like the CANCELs the proxy makes.
Imported only when a call is ended.
"""

from switchboard import VERSION
from switchboard.message import URI, ParseError, parse_name_addr
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
