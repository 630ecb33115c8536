"""Host mode's shortcut for the commonest responses: relayed as bytes, never parsed.

A provisional response (100-199) or a 2xx to a request other than INVITE, coming back on
one of the proxy's own client transactions, needs only its status, its top Via's branch
and its CSeq method to be matched (RFC 3261 §17.1.3), and leaves upstream as the same
bytes less our Via value (§16.7 step 3). When the datagram is plainly written (ASCII,
CRLF line ends, no folding, no spaces at line ends, our Via value first on the first header
line, header names spelled as below, a CSeq, one Content-Length equal to the body's length),
`relay()` does that without building a Message, and the proxy's own code does the rest
(the state machine, the response context, the call's progress): what leaves is what
`message.parse()` and `Message.to_bytes()` would have made of it. Anything else (a 2xx to
an INVITE, whose dialog the call keeps; a final failure, whose ACK copies the To; a
response no transaction of ours waits for; a qualify ping's or the trunk's answer) is
declined, and takes the engine's usual path.

Host only: host.py installs it as `Engine.relay`. A board never imports this module (each
name in it would cost heap), and its engine parses every response as before.
"""

import re

from switchboard.message import _MAX_HEADERS
from switchboard.proxy import CLIENT_KINDS
from switchboard.transaction import event_for

# The status line (a provisional or a 2xx, nothing at its end) and the top Via's start...
_START = re.compile(rb"SIP/2\.0 ([12][0-9][0-9]) [^\r\n]*(?<![ \t])\r\nVia: SIP/2\.0/UDP ")
# ...then, after the Via line, header lines with names spelled as plain responses spell them
# (other spellings, folded lines, bare LFs and spaces at line ends take the usual path), up
# to the empty line
_HEADERS = re.compile(
    rb"(?:(?:Via|From|To|Call-ID|CSeq|Contact|Record-Route|Content-Type|Content-Length|Server|"
    rb"User-Agent|Allow|Supported|Require|Accept|Allow-Events|Session-Expires|Min-SE|Date|"
    rb"Expires|Event|Subject|Warning|P-Asserted-Identity):[^\r\n]*(?<![ \t])\r\n)*\r\n")


class Raw:
    """A response relayed as bytes: what the proxy reads of a provisional or non-INVITE 2xx
    (status, body) and does to it (pop_via, to_bytes)."""

    def __init__(self, status, data, cut, via_end, rest, body):
        self.status = status
        self.body = body
        self.data = data
        self.cut = cut  # where the top Via line starts...
        self.via_end = via_end  # ...and where the line after it starts
        self.rest = rest  # the line's other Via values (b"": none)
        self.popped = False

    def pop_via(self):
        """Our Via off (§16.7 step 3)."""
        self.popped = True

    def to_bytes(self):
        """The datagram as received, less our Via line once pop_via() was called."""
        data = self.data
        if not self.popped:
            return data
        if self.rest:
            return data[:self.cut] + b"Via: " + self.rest + data[self.via_end - 2:]
        return data[:self.cut] + data[self.via_end:]


def relay(engine, data, now, out):
    """Handle data as a plainly written response on one of the proxy's client transactions
    (adding what to send to out) and return True; False (nothing done) for anything else."""
    start = _START.match(data)
    if start is None or engine.gateway is not None \
            or len(data) > engine.config.max_message_size:
        return False
    status = int(start.group(1))
    if status >= 200 and data.find(b" INVITE\r\n") > 0:
        return False  # (most likely) a 2xx to an INVITE: its dialog is the call's, parsed
    branch = start.end()
    sent_by = engine.here.sent_by.encode()
    if not data.startswith(sent_by + b";branch=", branch):
        return False
    branch += len(sent_by) + 8
    via_end = data.find(b"\r\n", branch) + 2
    headers = _HEADERS.match(data, via_end) if via_end > branch else None
    if headers is None:
        return False
    end = headers.end()
    head = data[:end]
    if not head.isascii() or b"\x00" in head or head.count(b"\r\n") > _MAX_HEADERS + 2 \
            or head.count(b"\r\nContent-Length:") != 1:
        return False
    at = head.find(b"\r\nCSeq:")
    if at < 0:
        return False
    cseq = head[at + 7:head.find(b"\r\n", at + 7)].split()
    at = head.find(b"\r\nContent-Length:") + 17
    body = data[end:]
    if len(cseq) != 2 or not cseq[0].isdigit() or len(cseq[0]) > 10 \
            or int(cseq[0]) >= 0x80000000 \
            or head[at:head.find(b"\r\n", at)].strip() != b"%d" % len(body):
        return False
    method = cseq[1].decode()
    if status >= 200 and method == "INVITE":
        return False
    # our value, then maybe the next hops' values after ", " (as SIPp writes them), each
    # written as Message.pop_via() would join them again; our branch is exactly one of ours
    # (no parameter after it), or no transaction has this key
    line = data[branch:via_end - 2]
    comma = line.find(b",")
    rest = b""
    if comma >= 0:
        rest = line[comma + 2:]
        if line[comma:comma + 2] != b", ":
            return False
        for value in rest.split(b", "):  # (a value in quotes or <> is joined back the same)
            if not value or b"," in value or value != value.strip():
                return False
        line = line[:comma]
    ct = engine.txns.get(line.decode() + "|" + method)
    if ct is None or ct.kind not in CLIENT_KINDS or ct.context is None:
        return False
    resp = Raw(status, data, start.end() - 17, via_end, rest, body)
    ctx = ct.context
    engine.proxy._run(ct, ctx, engine.txns.handle(ct, event_for(status), now, status, resp),
                      resp, now, out)
    return True
