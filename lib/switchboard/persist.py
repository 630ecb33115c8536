"""State that survives a restart: registrations and the DND/forwarding users set.

Pure encode/decode of one compact record, a Saver that decides when to write it, and two
small stores: NvmStore over microcontroller.nvm (flash: 4 KB on an RP2040) and FileStore
over a file written atomically (host mode, through injected open/replace: no os here).

The record: b"SB", a version byte, a 2-byte big-endian payload length, the payload (UTF-8
lines, tab-separated fields), then an Adler-32 of version, length and payload (4 bytes,
computed with small ints only). A binding line is B, user, ip, port, seconds left, q, URI,
+sip.instance; a settings line is S, name, dnd (0/1), forward always, busy, no answer ("" for
none). Expiry is kept as the seconds left at the write: after a restart a binding lives
that long again (a board has no clock that survives a reset).

Written only when a binding's contact (URI, source, instance, q) or a user setting changes,
never on a plain refresh, after the change has settled, and within a write budget (a token
bucket) that protects the flash. A corrupt or foreign record is ignored with a console line.
"""

from switchboard.location import Binding

try:
    from micropython import const  # names starting with _ vanish from the .mpy
except ImportError:  # CPython
    const = int

MAGIC = b"SB"
VERSION = 1
HEAD = 5  # magic, version, length
_CHECK_MS = const(2000)  # how often the Saver compares what it would write with what it wrote


def adler32(data):
    a, b = 1, 0
    for byte in data:
        a = (a + byte) % 65521
        b = (b + a) % 65521
    return bytes((b >> 8, b & 255, a >> 8, a & 255))


def _clean(fields):
    for f in fields:
        if isinstance(f, str) and ("\t" in f or "\n" in f):
            return False
    return True


def encode(bindings, rows, now, size):
    """(record bytes, bindings left out) for [(user, Binding)] and {name: row} that fits size.
    Settings go first: they are what a user set by hand."""
    payload = bytearray()
    for name in sorted(rows):
        r = rows[name]
        fields = (name, "1" if r[0] else "0", r[1] or "", r[2] or "", r[3] or "")
        if _clean(fields):
            payload += ("S\t%s\t%s\t%s\t%s\t%s\n" % fields).encode()
    room = size - HEAD - 4
    dropped = 0
    for user, b in bindings:
        left = (b.expires_at - now) // 1000
        if left <= 0:
            continue
        fields = (user, b.source[0], b.source[1], left, b.q, b.uri, b.instance)
        line = ("B\t%s\t%s\t%d\t%d\t%d\t%s\t%s\n" % fields).encode()
        if not _clean(fields) or len(payload) + len(line) > room:
            dropped += 1
            continue
        payload += line
    if payload:
        payload = payload[:-1]  # no newline after the last line
    body = bytes((VERSION, len(payload) >> 8, len(payload) & 255)) + payload
    return MAGIC + body + adler32(body), dropped


def decode(data):
    """(bindings [(user, ip, port, left_s, q, uri, instance)], rows {name: row}), None for an
    empty store, or ValueError with the reason for a record that is not ours or is broken."""
    if len(data) < HEAD or data[:2] != MAGIC:
        if not data or data[:HEAD] in (b"\xff" * HEAD, b"\x00" * HEAD):
            return None
        raise ValueError("not a Switchboard record")
    if data[2] != VERSION:
        raise ValueError("record version %d, expected %d" % (data[2], VERSION))
    length = data[3] << 8 | data[4]
    end = HEAD + length
    if len(data) < end + 4:
        raise ValueError("record cut short")
    if adler32(data[2:end]) != bytes(data[end:end + 4]):
        raise ValueError("checksum mismatch")
    bindings = []
    rows = {}
    try:
        for line in bytes(data[HEAD:end]).decode().split("\n"):
            f = line.split("\t")
            if f[0] == "S" and len(f) == 6:
                rows[f[1]] = [f[2] == "1", f[3] or None, f[4] or None, f[5] or None]
            elif f[0] == "B" and len(f) == 8:
                bindings.append((f[1], f[2], int(f[3]), int(f[4]), int(f[5]), f[6], f[7]))
            elif line:
                raise ValueError("unknown line %r" % line[:20])
    except (UnicodeError, IndexError) as e:
        raise ValueError("unreadable payload (%r)" % (e,)) from None
    return bindings, rows


class NvmStore:
    """The record at the start of microcontroller.nvm (a bytearray-like of fixed size)."""

    def __init__(self, nvm):
        self.nvm = nvm
        self.size = len(nvm)
        self.name = "nvm"

    def read(self):
        head = bytes(self.nvm[0:HEAD])
        if head[:2] != MAGIC:
            return head
        end = min(self.size, HEAD + (head[3] << 8 | head[4]) + 4)
        return bytes(self.nvm[0:end])

    def write(self, data):
        self.nvm[0:len(data)] = data


class FileStore:
    """The record in a file, replaced atomically: written to PATH.tmp, then renamed."""

    def __init__(self, path, opener, replace, size=65536):
        self.path = path
        self.opener = opener  # open()
        self.replace = replace  # os.replace (an atomic rename)
        self.size = size
        self.name = path

    def read(self):
        try:
            with self.opener(self.path, "rb") as f:
                return f.read(self.size + HEAD + 4)
        except OSError:  # missing (FileNotFoundError is one) or unreadable: start empty
            return b""

    def write(self, data):
        tmp = self.path + ".tmp"
        with self.opener(tmp, "wb") as f:
            f.write(data)
            f.flush()
        self.replace(tmp, self.path)


class Saver:
    """Restores the record at start and writes it again when what it holds changes.

    settle_ms: wait this long after a change before writing (several phones registering at
    once make one write). budget/refill_ms: at most budget writes in a burst, then one more
    per refill_ms (None: no budget, for a file)."""

    def __init__(self, store, location, dialplan, log, settle_ms=1000, budget=None,
                 refill_ms=3600000):
        self.store = store
        self.location = location
        self.dialplan = dialplan
        self.log = log
        self.settle_ms = settle_ms
        self.budget = budget
        self.tokens = budget
        self.refill_ms = refill_ms
        self.refilled = 0
        self.saved = None  # what the last write (or the restore) held
        self.dirty_since = None
        self.checked = 0
        self.writes = 0
        self.failures = 0
        self.held = False  # a write waits for the budget (said once on the console)

    def shift_times(self, ms):
        """The board clock started a new epoch (boot.epochs): the stored times move back by ms."""
        self.refilled -= ms
        self.checked -= ms
        if self.dirty_since is not None:
            self.dirty_since -= ms

    def restore(self, now):
        """Load the record into the location service and the dialplan; returns the number
        of bindings restored. A broken record is ignored with a console line."""
        self.refilled = now
        self.saved = self.key()  # nothing to write until something changes
        try:
            got = decode(self.store.read())
        except ValueError as e:
            self.log("warning", "state: %s holds no usable record (%s); starting empty"
                     % (self.store.name, e))
            return 0
        except OSError as e:
            self.log("warning", "state: cannot read %s (%r); starting empty" % (self.store.name, e))
            return 0
        if got is None:
            return 0
        bindings, rows = got
        count = 0
        for user, ip, port, left, q, uri, instance in bindings:
            b = Binding(uri, (ip, port), now + left * 1000, "", 0, now, "restored", instance, q)
            if self.location.add(user, b):
                count += 1
        skipped = []
        if rows and self.dialplan is None:
            skipped = sorted(rows)
        elif rows:
            skipped = self.dialplan.load_rows(rows)
        self.log("info", "state: restored %d registrations and %d user settings from %s"
                 % (count, len(rows) - len(skipped), self.store.name))
        if skipped:
            self.log("warning", "state: settings of %s ignored (no such extension or group, or "
                     "no PBX settings)" % ", ".join(skipped))
        self.saved = self.key()
        return count

    def key(self):
        """What a write depends on: contacts (not expiries) and the user settings."""
        table = self.location.table
        out = []
        for user in sorted(table):
            for b in table[user]:
                out.append((user, b.uri, b.source, b.instance, b.q))
        if self.dialplan is not None:
            out.append(self.dialplan.changes)
        return out

    def poll(self, now):
        if now < self.checked:
            return
        self.checked = now + _CHECK_MS
        if self.budget is not None and self.tokens < self.budget:
            while now - self.refilled >= self.refill_ms and self.tokens < self.budget:
                self.tokens += 1
                self.refilled += self.refill_ms
        key = self.key()
        if key == self.saved:
            self.dirty_since = None
            return
        if self.dirty_since is None:
            self.dirty_since = now
        if now - self.dirty_since < self.settle_ms:
            return
        if self.budget is not None and self.tokens <= 0:
            if not self.held:
                self.held = True
                self.log("warning", "state: write budget used up (%d per %d min); the next save "
                         "waits" % (self.budget, self.refill_ms // 60000))
            return
        self.save(now, key)

    def save(self, now, key=None):
        key = self.key() if key is None else key
        bindings = []
        table = self.location.table
        for user in sorted(table):
            for b in table[user]:
                bindings.append((user, b))
        rows = self.dialplan.user_rows() if self.dialplan is not None else {}
        data, dropped = encode(bindings, rows, now, self.store.size)
        try:
            self.store.write(data)
        except (OSError, ValueError) as e:
            self.failures += 1
            self.log("error", "state: cannot write %s (%r)" % (self.store.name, e))
            self.saved = key  # do not retry every check; the next change tries again
            return False
        if self.budget is not None:
            if self.tokens == self.budget:
                self.refilled = now
            self.tokens -= 1
        self.held = False
        self.writes += 1
        self.saved = key
        self.dirty_since = None
        self.log("info", "state: saved %d registrations and %d user settings to %s (%d bytes)"
                 % (len(bindings) - dropped, len(rows), self.store.name, len(data)))
        if dropped:
            self.log("warning", "state: %d registrations did not fit in %s (%d bytes)"
                     % (dropped, self.store.name, self.store.size))
        return True

    def flush(self, now):
        """Write a change that is still settling (at a clean stop); True when written."""
        key = self.key()
        if key == self.saved:
            return False
        if self.budget is not None and self.tokens <= 0:
            return False
        return self.save(now, key)
