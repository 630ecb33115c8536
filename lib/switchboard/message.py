"""SIP messages: parse one datagram, edit headers, serialise (RFC 3261 §7, §20, §25).

Headers keep their original text (name, separator and value) so that a relayed
message differs from the received one only where the proxy changes it. Folded
continuation lines are joined with one space. Nothing here raises anything but
ParseError for bad input.
"""

import sys

try:
    from micropython import const  # names starting with _ vanish from the .mpy
except ImportError:  # CPython
    const = int

COMPACT = {
    "a": "accept-contact", "b": "referred-by", "c": "content-type", "d": "request-disposition",
    "e": "content-encoding", "f": "from", "i": "call-id", "j": "reject-contact", "k": "supported",
    "l": "content-length", "m": "contact", "n": "identity-info", "o": "event", "r": "refer-to",
    "s": "subject", "t": "to", "u": "allow-events", "v": "via", "x": "session-expires",
    "y": "identity",
}
# Headers whose comma-separated values are split into separate values.
LISTS = ("via", "contact", "route", "record-route")
# Header names seen in every call: known tokens, no need to check them character by character.
KNOWN = frozenset(("via", "from", "to", "call-id", "cseq", "contact", "max-forwards",
                   "content-length", "content-type", "user-agent", "allow", "supported",
                   "record-route", "route", "expires", "server", "authorization",
                   "www-authenticate", "proxy-authorization", "proxy-authenticate", "event",
                   "accept", "subject", "require", "session-expires", "min-se", "date",
                   "allow-events", "refer-to", "referred-by", "p-asserted-identity", "v", "f",
                   "t", "i", "m", "l", "c", "k", "s", "e", "o", "r", "u", "x", "b"))
_MAX_HEADERS = const(80)
_MAX_METHOD = const(64)
# On CPython, the last few results of pure parsing functions, by their input text: a call
# repeats its addresses in every message, and several parts read one message. A board keeps
# none: its heap is the harder limit (the 10-minute board load peaked 2.4 KB higher with 4).
_KEPT = 256 if sys.implementation.name == "cpython" else 0
_HOSTPORTS = {}  # host[:port] -> (host, port)
_ADDRESSES = {}  # From/To/Contact/Route value -> (display, uri, params)
_URIS = {}  # URI text -> URI (uri()): shared, so a URI object is never edited
_NAMES = {}  # a known header name as written ("Via", "i", "CSeq") -> its lower-case full name
TOKEN_EXTRA = "-.!%*_+`'~"


class ParseError(Exception):
    """Bad input. reason is a short phrase for the 400 response; message is what parsed."""

    def __init__(self, reason, message=None, code=400):
        super().__init__(reason)
        self.reason = reason
        self.message = message
        self.code = code


def _memo(kept, text, parse):
    """parse(text) from kept, or computed and kept (failures raise and are not kept)."""
    known = kept.get(text)
    if known is None:
        known = parse(text)
        _remember(kept, text, known, _KEPT)
    return known


def _remember(kept, key, value, most):
    """kept[key] = value in a table of at most most entries, emptied when full (most is 0
    on a board: nothing is kept)."""
    if most:
        if len(kept) >= most:
            kept.clear()
        kept[key] = value


def is_token(text):
    """True for a non-empty RFC 3261 token."""
    if not text:
        return False
    for ch in text:
        if not ("a" <= ch <= "z" or "A" <= ch <= "Z" or "0" <= ch <= "9" or ch in TOKEN_EXTRA):
            return False
    return True


if sys.implementation.name == "cpython":
    def digits(text):
        """True for ASCII digits only (str.isdigit() also takes '²' and other Unicode digits)."""
        return text.isascii() and text.isdigit()

    def fnv_halves(text, hi=0x811C, lo=0x9DC5):
        """FNV-1a as below, with CPython's unbounded ints: the same values, fewer steps."""
        h = hi << 16 | lo
        for b in text.encode():
            h = ((h ^ b) * 0x01000193) & 0xFFFFFFFF
        return h >> 16, h & 0xFFFF
else:
    def digits(text):
        """True for ASCII digits only (a board's str.isdigit() is not documented as such)."""
        if not text:
            return False
        for ch in text:
            if ch < "0" or ch > "9":
                return False
        return True

    def fnv_halves(text, hi=0x811C, lo=0x9DC5):
        """FNV-1a over text's UTF-8 bytes, 32 bits, as (high 16 bits, low 16 bits); hi and lo
        are the offset basis (FNV's own by default; another gives an independent hash).

        The product by the FNV prime 0x01000193 (2**24 + 403) is done in 16-bit halves so that
        no intermediate value reaches 2**30: every step stays a small int on a 32-bit VM, where
        the plain formula would allocate a long int per byte.
        """
        for b in text.encode():
            lo ^= b
            low = lo * 403  # < 2**25
            hi = (hi * 403 + ((lo & 0xFF) << 8) + (low >> 16)) & 0xFFFF  # < 2**26 before the mask
            lo = low & 0xFFFF
        return hi, lo


def fnv(text, mix=0):
    """FNV-1a (32 bits) of text as 8 hex digits, the same on every interpreter (unlike hash()).

    mix (< 65536) is XORed into the low half first: `fnv(t, m)` is "%08x" % (FNV(t) ^ m).
    """
    hi, lo = fnv_halves(text)
    return "%04x%04x" % (hi, lo ^ mix)


class Message:
    """A request (method set) or a response (status set), with its headers in received order.

    Other modules read and edit headers only through these methods (get, values, add, set,
    remove, top_via, pop_via, push_via, max_forwards, ...); the list layout is private here.
    """

    def __init__(self):
        self.method = None
        self.uri = ""
        self.status = 0
        self.reason = ""
        self.headers = []  # private: [lower-case full name, "Name: " as received, value]
        self.body = b""

    # On CPython (where _KEPT is not 0), get() answers from a table of each name's first line,
    # made at its first call (a request is read ten times or more) and dropped by each edit
    # that adds or removes a line. A board scans the list: the table would cost heap (and a
    # class attribute, not one per instance, keeps None there).
    first = None

    # header access -------------------------------------------------------
    def get(self, name):
        """The first line's value of a header, or None."""
        if _KEPT:
            first = self.first
            if first is None:
                first = self.first = {}
                for h in reversed(self.headers):
                    first[h[0]] = h
            h = first.get(name)
            return None if h is None else h[2]
        for h in self.headers:
            if h[0] == name:
                return h[2]
        return None

    def values(self, name):
        """Every value of a header, across lines; list headers split at commas."""
        out = []
        for h in self.headers:
            if h[0] == name:
                if name in LISTS:
                    out.extend(split_commas(h[2]))
                else:
                    out.append(h[2])
        return out

    def names(self):
        """The lower-case full names of the header lines, in order."""
        return [h[0] for h in self.headers]

    def add(self, name, value, first=False):
        """Add a header line; first=True puts it above the lines of the same name (or on top)."""
        entry = [name.lower(), name + ": ", value]
        if self.first is not None:
            self.first = None
        if first:
            # before the first header of the same name, or at the very top
            for i, h in enumerate(self.headers):
                if h[0] == entry[0]:
                    self.headers.insert(i, entry)
                    return
            self.headers.insert(0, entry)
        else:
            self.headers.append(entry)

    def set(self, name, value):
        """Replace the first line of a header (keeping its place), drop the others."""
        lname = name.lower()
        found = False
        kept = []
        for h in self.headers:
            if h[0] == lname:
                if found:
                    continue
                found = True
                h[2] = value
            kept.append(h)
        self.headers = kept
        if self.first is not None:
            self.first = None
        if not found:
            self.add(name, value)

    def remove(self, name, unless=None):
        """Drop every line of header name (lower case); unless(value) True keeps a line."""
        self.headers = [h for h in self.headers
                        if h[0] != name or (unless is not None and unless(h[2]))]
        if self.first is not None:
            self.first = None

    def set_first_value(self, name, value):
        """Replace (value) or remove (None) the first value of a list header."""
        for i, h in enumerate(self.headers):
            if h[0] == name:
                parts = split_commas(h[2])
                if value is None:
                    parts = parts[1:]
                else:
                    parts[0] = value
                if parts:
                    h[2] = ", ".join(parts)
                else:
                    del self.headers[i]
                    if self.first is not None:
                        self.first = None
                return

    def first_value(self, name):
        """The first value of a (list) header, or None."""
        for h in self.headers:
            if h[0] == name:
                parts = split_commas(h[2])
                return parts[0] if parts else None
        return None

    def cseq(self):
        """(number, method) from CSeq; ParseError when malformed."""
        value = self.get("cseq")
        if value is None:
            raise ParseError("Missing CSeq")
        parts = value.split()
        if len(parts) != 2 or not digits(parts[0]) or len(parts[0]) > 10:
            raise ParseError("Malformed CSeq")
        number = int(parts[0])
        if number >= 0x80000000:
            raise ParseError("CSeq out of range")
        return number, parts[1]

    # Via, Max-Forwards, Route ---------------------------------------------
    def top_via(self):
        """The top Via value parsed, or None when there is none or it does not parse."""
        value = self.first_value("via")
        if value is None:
            return None
        try:
            return Via(value)
        except ParseError:
            return None

    def push_via(self, value):
        """Put a Via value on top (a proxy's own hop, §16.6 step 8)."""
        self.add("Via", value, first=True)

    def pop_via(self):
        """Remove the top Via value (our own, from a response going upstream, §16.7 step 3)."""
        self.set_first_value("via", None)

    def replace_top_via(self, via):
        """Write an edited Via back as the top value (received/rport, §18.2.1)."""
        self.set_first_value("via", via.text())

    def keep_top_via_only(self):
        """Drop every Via value but the top one (an answer to junk must not grow with it)."""
        kept = []
        seen = False
        for h in self.headers:
            if h[0] == "via":
                if seen:
                    continue
                seen = True
                h[2] = split_commas(h[2])[0] if split_commas(h[2]) else h[2]
            kept.append(h)
        self.headers = kept
        if self.first is not None:
            self.first = None

    def via_count(self):
        """How many Via values the message carries."""
        return len(self.values("via"))

    def max_forwards(self, default=70):
        """Max-Forwards as an int (the engine has validated it), default when absent."""
        value = self.get("max-forwards")
        return default if value is None else int(value)

    def drop_last_route(self):
        """Remove the last Route value (a strict router's former Request-URI, §16.4)."""
        for i in range(len(self.headers) - 1, -1, -1):
            h = self.headers[i]
            if h[0] == "route":
                parts = split_commas(h[2])[:-1]
                if parts:
                    h[2] = ", ".join(parts)
                else:
                    del self.headers[i]
                    if self.first is not None:
                        self.first = None
                return

    def response(self, status, reason, headers=(), tag=None, server=None):
        """A response to this request (§8.2.6): Via, From, Call-ID, CSeq copied, To with tag
        (added on non-100 answers when the To has none), then headers and Server."""
        r = Message()
        r.status = status
        r.reason = reason
        for h in self.headers:
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
        if server:
            r.add("Server", server)
        return r

    def copy(self):
        """An independent copy (headers are copied, the body bytes shared)."""
        m = Message()
        m.method = self.method
        m.uri = self.uri
        m.status = self.status
        m.reason = self.reason
        m.headers = [list(h) for h in self.headers]
        m.body = self.body
        return m

    def to_bytes(self):
        """Serialise, with a Content-Length that matches the body."""
        if self.method is not None:
            lines = [self.method + " " + self.uri + " SIP/2.0"]
        else:
            lines = ["SIP/2.0 %d %s" % (self.status, self.reason)]
        has_length = False
        for h in self.headers:
            if h[0] == "content-length":
                if has_length:
                    continue
                has_length = True
                lines.append(h[1] + str(len(self.body)))
            else:
                lines.append(h[1] + h[2])
        if not has_length:
            lines.append("Content-Length: %d" % len(self.body))
        lines.append("")
        lines.append("")
        return "\r\n".join(lines).encode() + self.body


def split_commas(value, strict=False):
    """Split a header value at commas outside quoted strings and <...>. Empty elements are
    skipped, or with strict make a ParseError (RFC 4475 §3.1.2.1: ",," is not a list)."""
    if "," not in value:  # most values: one element
        value = value.strip()
        if value:
            return [value]
        if strict:
            raise ParseError("Empty list element")
        return []
    if '"' not in value and "<" not in value:
        parts = value.split(",")
    else:
        parts = []
        quoted = False
        angle = False
        start = 0
        i = 0
        n = len(value)
        while i < n:
            ch = value[i]
            if quoted:
                if ch == "\\":
                    i += 1
                elif ch == '"':
                    quoted = False
            elif ch == '"':
                quoted = True
            elif ch == "<":
                angle = True
            elif ch == ">":
                angle = False
            elif ch == "," and not angle:
                parts.append(value[start:i])
                start = i + 1
            i += 1
        # an unbalanced quote or bracket leaves the rest as one value: its parser refuses it
        parts.append(value[start:])
    parts = [p.strip() for p in parts]
    if strict and "" in parts:
        raise ParseError("Empty list element")
    return [p for p in parts if p]


def check_params(params):
    """ParseError unless params is ";name[=value]" items with token names and no empty item
    (RFC 3261 §25.1 generic-param; RFC 4475 §3.1.2.1 ";;")."""
    if not params:
        return
    if '"' in params:
        items = []
        quoted = False
        start = 0
        for i in range(len(params)):
            ch = params[i]
            if ch == '"' and (i == 0 or params[i - 1] != "\\"):
                quoted = not quoted
            elif ch == ";" and not quoted:
                items.append(params[start:i])
                start = i + 1
        items.append(params[start:])
    else:
        items = params.split(";")
    if items[0].strip():
        raise ParseError("Malformed parameters")
    for item in items[1:]:
        eq = item.find("=")
        name = (item if eq < 0 else item[:eq]).strip()
        if not is_token(name) or (eq >= 0 and not item[eq + 1:].strip()):
            raise ParseError("Malformed parameter")


# Headers a request carries once (RFC 3261 §7.3.1: only list headers may repeat).
SINGLE = {"from": "From", "to": "To", "call-id": "Call-ID", "cseq": "CSeq",
          "max-forwards": "Max-Forwards"}


def check_request(req, top=None):
    """Why req must not be processed or passed on (a 400 reason phrase), or None: a repeated
    single header, an empty list element or parameter, a malformed address or Via in any
    From, To, Contact, Route, Record-Route or Via value. top: the top Via, parsed already."""
    seen = []
    try:
        for h in req.headers:
            name = h[0]
            if name in SINGLE:
                if name in seen:
                    return "Duplicate %s header" % SINGLE[name]
                seen.append(name)
                items = (h[2],) if name == "from" or name == "to" else ()
            elif name in LISTS:
                items = split_commas(h[2], True)
            else:
                continue
            for item in items:
                if name == "via":
                    check_params((top or Via(item)).params)
                    top = None
                elif item != "*" or name != "contact":
                    # an address: its URI (host, port) and its header parameters
                    _, text, params = parse_name_addr(item)
                    uri(text)
                    check_params(params)
    except ParseError as e:
        return e.reason
    return None


def param(params, name):
    """Value of ;name=value in a parameter string; "" for a flag; None when absent."""
    if not params or (name not in params and name not in params.lower()):
        return None
    for item in params.split(";"):
        eq = item.find("=")
        key = (item if eq < 0 else item[:eq]).strip().lower()
        if key == name:
            return "" if eq < 0 else item[eq + 1:].strip()
    return None


def set_param(params, name, value):
    """Return params with ;name=value set (value None makes a flag), replacing an old one."""
    items = [i for i in params.split(";") if i.strip()]
    new = name if value is None else name + "=" + value
    for k, item in enumerate(items):
        eq = item.find("=")
        if (item if eq < 0 else item[:eq]).strip().lower() == name:
            items[k] = new
            break
    else:
        items.append(new)
    return ";" + ";".join(items)


def parse_name_addr(value):
    """(display, uri, params) from a name-addr or addr-spec header value."""
    return _memo(_ADDRESSES, value, _parse_name_addr)


def _parse_name_addr(value):
    value = value.strip()
    display = ""
    rest = value
    if value.startswith('"'):
        i = 1
        while i < len(value):
            if value[i] == "\\":
                i += 2
                continue
            if value[i] == '"':
                break
            i += 1
        if i >= len(value):
            raise ParseError("Unbalanced quotes")
        display = value[1:i]
        rest = value[i + 1:]
    lt = rest.find("<")
    if lt >= 0:
        gt = rest.find(">", lt)
        if gt < 0:
            raise ParseError("Unbalanced angle brackets")
        before = rest[:lt].strip()
        if value.startswith('"'):
            if before:
                raise ParseError("Malformed display name")
        elif before:
            # display-name = *(token LWS) / quoted-string (§25.1; RFC 4475 §3.1.2.15 "baddn")
            for word in before.split():
                if not is_token(word):
                    raise ParseError("Malformed display name")
            display = before
        uri = rest[lt + 1:gt].strip()
        params = rest[gt + 1:].strip()
        if params and params[0] != ";":
            raise ParseError("Malformed address")
    elif display or ">" in rest:
        raise ParseError("Malformed address")
    else:
        semi = rest.find(";")
        uri = rest if semi < 0 else rest[:semi]
        params = "" if semi < 0 else rest[semi:]
        uri = uri.strip()
    if not uri or ":" not in uri:
        raise ParseError("Malformed address")
    return display, uri, params


def uri(text):
    """URI(text), kept by text on CPython (the object is shared: read it, never edit it)."""
    return _memo(_URIS, text, URI)


def address_user(value):
    """The user part of the URI in a From/To/Contact value; "" when there is none or it is bad."""
    try:
        return uri(parse_name_addr(value)[1]).user
    except (ParseError, TypeError):
        return ""


def to_tag(msg, name="to"):
    """The To tag of msg (None outside a dialog, or when To does not parse); name="from":
    the From tag the same way."""
    value = msg.get(name)
    if value is None:
        return None
    try:
        return param(parse_name_addr(value)[2], "tag")
    except ParseError:
        return None


def uri_key(text):
    """Comparison key of a URI (§19.1.4, simplified: scheme, user, host, port with 5060 for
    none); the text itself when it does not parse."""
    try:
        u = URI(text)
    except ParseError:
        return text
    return "%s:%s@%s:%s" % (u.scheme, u.user, u.host, u.port or 5060)


def same_uri(a, b):
    """Are URIs a and b equivalent (§19.1.4 as uri_key sees it)? Unparsable ones only if equal."""
    if a == b:
        return True
    try:
        URI(a)
        URI(b)
    except ParseError:
        return False
    return uri_key(a) == uri_key(b)


class URI:
    """A sip:/sips: URI split into parts; other schemes keep only scheme and text."""

    def __init__(self, text):
        self.text = text
        colon = text.find(":")
        if colon <= 0:
            raise ParseError("Malformed URI")
        self.scheme = text[:colon].lower()
        rest = text[colon + 1:]
        self.user = ""
        self.host = ""
        self.port = None
        self.params = ""
        self.headers = ""
        if self.scheme not in ("sip", "sips"):
            return
        at = rest.find("@")  # the user part may hold '?' but never an unescaped '@'
        if at >= 0:
            self.user = rest[:at]
            pw = self.user.find(":")
            if pw >= 0:
                self.user = self.user[:pw]
            rest = rest[at + 1:]
        q = rest.find("?")
        if q >= 0:
            self.headers = rest[q:]
            rest = rest[:q]
        semi = rest.find(";")
        if semi >= 0:
            self.params = rest[semi:]
            rest = rest[:semi]
        self.host, self.port = split_hostport(rest)

    def param(self, name):
        """A URI parameter's value ("" for a flag, None when absent)."""
        return param(self.params, name)


def split_hostport(text):
    """("host", port or None) from host[:port], IPv6 references in brackets."""
    return _memo(_HOSTPORTS, text, _split_hostport)


def _split_hostport(text):
    text = text.strip()
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise ParseError("Malformed IPv6 reference")
        host = text[:end + 1]
        rest = text[end + 1:]
        if rest and not rest.startswith(":"):
            raise ParseError("Malformed host")
        port = rest[1:] if rest else ""
    else:
        colon = text.find(":")
        host = text if colon < 0 else text[:colon]
        port = "" if colon < 0 else text[colon + 1:]
    if not valid_host(host):
        raise ParseError("Malformed host")
    if port:
        if not valid_port(port):
            raise ParseError("Malformed port")
        return (host.lower(), int(port))
    return (host.lower(), None)


def valid_port(text):
    """A port number 1..65535 written in ASCII digits."""
    return digits(text) and len(text) <= 5 and 0 < int(text) < 65536


def is_ipv4(host):
    """A dotted-quad IPv4 address (four decimal octets, each 0..255)."""
    parts = host.split(".")
    if len(parts) != 4:
        return False
    for p in parts:
        if not digits(p) or len(p) > 3 or int(p) > 255:
            return False
    return True


def is_ipv6(text):
    """IPv6 address characters, brackets optional (we send nothing to IPv6; only syntax)."""
    if text.startswith("["):
        if not text.endswith("]"):
            return False
        text = text[1:-1]
    if ":" not in text:
        return False
    for ch in text:
        if not ("0" <= ch <= "9" or "a" <= ch <= "f" or "A" <= ch <= "F" or ch in ":."):
            return False
    return True


def valid_host(host):
    """hostname, IPv4address or IPv6reference (RFC 3261 §25.1): labels of letters, digits and
    inner hyphens, the top label starting with a letter; anything numeric must be an IPv4
    address with octets up to 255."""
    if not host:
        return False
    if host[0] == "[":
        return is_ipv6(host)
    if is_ipv4(host):
        return True
    name = host[:-1] if host[-1] == "." else host
    if not name:
        return False
    labels = name.split(".")
    for label in labels:
        if not label or label[0] == "-" or label[-1] == "-":
            return False
        for ch in label:
            if not ("a" <= ch <= "z" or "A" <= ch <= "Z" or "0" <= ch <= "9" or ch == "-"):
                return False
    top = labels[-1][0]
    return "a" <= top <= "z" or "A" <= top <= "Z"


class Via:
    """One Via value: transport, sent-by host and port, parameter string."""

    def __init__(self, value):
        # sent-protocol = name SLASH version SLASH transport, LWS allowed around each slash
        parts = value.strip().split("/", 2)
        if len(parts) != 3 or parts[0].strip().upper() != "SIP":
            raise ParseError("Malformed Via")
        rest = parts[2].strip()
        i = 0
        while i < len(rest) and rest[i] not in " \t;":
            i += 1
        raw_transport = rest[:i]
        self.transport = raw_transport.upper()
        rest = rest[i:].strip()
        if not self.transport or not rest or rest[0] == ";":
            raise ParseError("Malformed Via")
        semi = rest.find(";")
        sent_by = rest if semi < 0 else rest[:semi]
        self.params = "" if semi < 0 else rest[semi:].replace(" ", "").replace("\t", "")
        self.host, self.port = split_hostport(sent_by)
        self.protocol = "%s/%s/%s" % (parts[0].strip(), parts[1].strip(), raw_transport)
        if self.params:
            # addresses a response may be sent to: validated here, used without a second look
            received = param(self.params, "received")
            if received is not None and not (is_ipv4(received) or is_ipv6(received)):
                raise ParseError("Malformed Via received")
            rport = param(self.params, "rport")
            if rport and not valid_port(rport):
                raise ParseError("Malformed Via rport")

    def param(self, name):
        """A Via parameter's value ("" for a flag, None when absent)."""
        return param(self.params, name)

    def branch(self):
        """The branch parameter, "" when there is none."""
        return param(self.params, "branch") or ""

    def text(self):
        """The Via value written back."""
        host = self.host if self.port is None else "%s:%d" % (self.host, self.port)
        return "%s %s%s" % (self.protocol, host, self.params)


def parse(data):
    """Parse one datagram into a Message; ParseError (with what parsed) when malformed."""
    data = data.lstrip(b"\r\n")  # §7.5: empty lines before the start line are ignored
    end = data.find(b"\r\n\r\n")
    skip = 4
    if end < 0:
        end = data.find(b"\n\n")
        skip = 2
        if end < 0:
            end = len(data)
            skip = 0
    head = data[:end]
    body = data[end + skip:]
    if b"\x00" in head and not _nul_quoted(head):
        try:
            msg = _parse_head(bytes([b if 0 < b < 128 else 63 for b in head]).decode())
        except ParseError:
            msg = None
        raise ParseError("NUL byte in headers", msg)
    try:
        text = head.decode()
    except UnicodeError:
        text = bytes([b if b < 128 else 63 for b in head]).decode()
        msg = _parse_head(text)
        raise ParseError("Invalid UTF-8", msg) from None
    msg = _parse_head(text)
    length = msg.get("content-length")
    if length is not None:
        if len([h for h in msg.headers if h[0] == "content-length"]) > 1:
            raise ParseError("Duplicate Content-Length", msg)  # which one frames the body?
        length = length.strip()
        if not digits(length) or len(length) > 9:
            raise ParseError("Malformed Content-Length", msg)
        n = int(length)
        if n > len(body):
            raise ParseError("Content-Length larger than body", msg)
        body = body[:n]
    msg.body = body
    return msg


def _nul_quoted(head):
    """True when every NUL in head is a quoted-pair inside a quoted string (RFC 3261 §25.1
    allows %x00 there: RFC 4475 §3.1.1.2 "intmeth" escapes one in a display name)."""
    quoted = False
    escaped = False
    for b in head:
        if escaped:
            escaped = False
        elif b == 10:  # a quoted string ends with its line
            quoted = False
        elif quoted:
            if b == 92:  # backslash
                escaped = True
            elif b == 34:
                quoted = False
            elif b == 0:
                return False
        elif b == 34:
            quoted = True
        elif b == 0:
            return False
    return True


def _parse_head(text):
    lines = text.split("\n")
    i = 0
    while i < len(lines) and not lines[i].strip():
        i += 1  # RFC 3261 §7.5: ignore empty lines before the start line
    if i >= len(lines):
        raise ParseError("Empty message")
    msg = Message()
    bad_start = _parse_start(msg, lines[i].rstrip("\r"))
    headers = msg.headers
    names = _NAMES
    many = len(lines) - i > _MAX_HEADERS  # (fewer lines cannot hold too many headers)
    for line in lines[i + 1:]:
        line = line.rstrip("\r")
        if not line:
            continue
        if line[0] in " \t":
            if not headers:
                raise ParseError("Continuation line without header", msg)
            headers[-1][2] = (headers[-1][2] + " " + line.strip()).strip()
            continue
        colon = line.find(":")  # (str.partition is left out of small CircuitPython builds)
        if colon <= 0:
            raise ParseError("Malformed header line", msg)
        raw = line[:colon]
        lname = names.get(raw)
        if lname is None:
            name = raw.strip()
            lname = name.lower()
            if lname in KNOWN:
                lname = COMPACT.get(lname, lname)
                _remember(names, raw, lname, 3 * _KEPT)
            elif not is_token(name):
                raise ParseError("Malformed header name", msg)
        if many and len(headers) >= _MAX_HEADERS:
            raise ParseError("Too many headers", msg)
        value = line[colon + 1:].lstrip(" \t")
        headers.append([lname, line[:len(line) - len(value)], value.rstrip()])
    if bad_start:
        raise ParseError(bad_start[0], msg, bad_start[1])
    return msg


def _parse_start(msg, line):
    """Fill the start line into msg; return (reason, code) when it is malformed."""
    parts = line.split(" ")
    if parts[0].upper().startswith("SIP/"):
        msg.status = 999  # a response, even a broken one: never answered
        if parts[0].upper() != "SIP/2.0" or len(parts) < 3:
            return "Malformed status line", 400
        code = parts[1]
        if len(code) != 3 or not digits(code) or code[0] == "0":
            return "Malformed status code", 400
        msg.status = int(code)
        msg.reason = line[len(parts[0]) + len(code) + 2:]
        return None
    msg.method = "?"
    if len(parts) != 3:
        return "Malformed request line", 400
    method, uri, version = parts
    if len(method) > _MAX_METHOD or not is_token(method):
        return "Malformed method", 400
    msg.method = method
    msg.uri = uri
    if not version.upper().startswith("SIP/"):
        return "Malformed request line", 400
    if version.upper() != "SIP/2.0":  # §7.1: the version is case-insensitive
        return "Version Not Supported", 505
    if ":" not in uri:
        return "Malformed Request-URI", 400
    return None
