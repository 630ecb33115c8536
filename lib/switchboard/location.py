"""The location service: address-of-record to contact bindings (RFC 3261 §10.3).

Each binding remembers where the REGISTER came from (honouring rport), so the
proxy reaches a phone at the address it really sends from. Size-limited: a full
table refuses new bindings instead of growing.
"""


class Binding:
    """One contact of an address-of-record: where to reach it and until when.

    The fields most phones leave empty stay class attributes, set on the instance only when
    they differ (on the board each attribute an instance holds costs heap: 6 take 64 B, 9
    take 96 B)."""

    user_agent = ""
    instance = ""  # +sip.instance
    q = 1000  # registrar.Q_SCALE: q=1

    def __init__(self, uri, source, expires_at, call_id, cseq, since, user_agent, instance, q):
        self.uri = uri  # the contact URI, as the phone wrote it (the 200 OK lists it)
        self.source = source  # (ip, port) the REGISTER came from
        self.expires_at = expires_at  # ms
        self.call_id = call_id
        self.cseq = cseq
        self.since = since  # ms
        if user_agent:
            self.user_agent = user_agent
        if instance:
            self.instance = instance
        if q != 1000:
            self.q = q


class Location:
    """user -> [Binding], bounded by max_bindings in all and max_per_aor per user."""

    def __init__(self, max_bindings, max_per_aor):
        self.max_bindings = max_bindings
        self.max_per_aor = max_per_aor
        self.table = {}  # user -> [Binding]
        self.count = 0

    def lookup(self, user, now):
        """Live bindings of user, best q first (stable)."""
        live = [b for b in self.table.get(user, ()) if b.expires_at > now]
        if len(live) > 1:
            # MicroPython's sort is not stable: the position breaks ties explicitly
            order = [(-live[i].q, i) for i in range(len(live))]
            order.sort()
            live = [live[i] for _, i in order]
        return live

    def users(self):
        """Every user with bindings, sorted."""
        return sorted(self.table)

    def find_uri(self, uri):
        """The binding whose contact URI is uri (to reach a phone behind NAT), or None;
        when two users share it, the first user in sorted order wins (never dict order)."""
        found = None
        found_user = None
        for user in self.table:
            for b in self.table[user]:
                if b.uri == uri:
                    if found_user is None or user < found_user:
                        found, found_user = b, user
                    break
        return found

    def remove(self, user, binding):
        """Drop one binding of user (nothing when it is not there)."""
        bindings = self.table.get(user)
        if bindings and binding in bindings:
            bindings.remove(binding)
            self.count -= 1
            if not bindings:
                del self.table[user]

    def add(self, user, binding):
        """Add a binding; False when a limit is reached."""
        bindings = self.table.get(user)
        if bindings is None:
            bindings = []
        if self.count >= self.max_bindings or len(bindings) >= self.max_per_aor:
            return False
        bindings.append(binding)
        self.table[user] = bindings
        self.count += 1
        return True

    def shift_times(self, ms):
        """The board clock started a new epoch: the stored times move back by ms."""
        for bindings in self.table.values():
            for b in bindings:
                b.expires_at -= ms
                b.since -= ms

    def purge(self, now):
        """Drop expired bindings; return [(user, binding)] removed."""
        gone = []
        for user in sorted(self.table):
            for b in list(self.table[user]):
                if b.expires_at <= now:
                    gone.append((user, b))
                    self.remove(user, b)
        return gone
