"""A summary of an SDP body (RFC 4566): connection address, media port, codecs, direction."""

from switchboard.message import digits

try:
    from micropython import const  # names starting with _ vanish from the .mpy
except ImportError:  # CPython
    const = int

STATIC = {"0": "PCMU", "3": "GSM", "4": "G723", "8": "PCMA", "9": "G722", "18": "G729"}
DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")
_MAX_CODECS = const(8)


def summary(body):
    """dict(address, port, codecs, direction) of the first audio (or any) stream; None if no SDP."""
    return expand(compact(body))


def expand(text):
    """The dict summary() gives, from what compact() gave (None stays None) or from the
    SDP body itself (bytes: host mode keeps those)."""
    if isinstance(text, bytes):
        text = compact(text)
    if text is None:
        return None
    parts = text.split(" ")
    return {"address": parts[0], "port": int(parts[1]), "codecs": parts[3:],
            "direction": DIRECTIONS[int(parts[2])]}


def compact(body):
    """summary() as one string, "address port direction-index codec ...", or None: what a call
    record keeps (on the board one string costs 64-80 B; the dict with its list and strings
    about 200). Every part is a whitespace-free token of the SDP, so the spaces split it back."""
    if not body or not body.startswith(b"v="):
        return None
    try:
        text = body.decode()
    except UnicodeError:
        return None
    address = ""
    port = 0
    payloads = []
    names = {}
    direction = "sendrecv"
    in_media = False
    for line in text.split("\n"):
        line = line.strip()
        if line.startswith("c=") and (not in_media or not address or port):
            parts = line[2:].split()
            if len(parts) == 3:
                address = parts[2].split("/")[0]
        elif line.startswith("m="):
            if in_media:
                break  # only the first media stream
            in_media = True
            parts = line[2:].split()
            if len(parts) >= 3 and digits(parts[1].split("/")[0]) and len(parts[1]) < 12:
                port = int(parts[1].split("/")[0])
                payloads = parts[3:3 + _MAX_CODECS]
        elif line.startswith("a=rtpmap:"):
            rest = line[9:].split()
            if len(rest) == 2:
                names[rest[0]] = rest[1].split("/")[0]
        elif line.startswith("a=") and line[2:] in DIRECTIONS:
            direction = line[2:]
    codecs = [names.get(p, STATIC.get(p, p)) for p in payloads]
    return " ".join([address, str(port), str(DIRECTIONS.index(direction))] + codecs)
