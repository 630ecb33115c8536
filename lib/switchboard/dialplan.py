"""The PBX dialplan: ring and hunt groups, aliases, forwarding, do-not-disturb, intercom
and the feature codes phones dial to change their own settings.

Pure logic, sans-I/O: settings come through a getenv callable, the registered contacts
through a callable contacts(user) -> [(uri, dest)], time as integer ms. It decides only
where a call goes, stage by stage; the router turns a Stage into the proxy's decision and
the proxy forks, cancels and relays (RFC 3261 §16). Imported only when a PBX setting is set.

A call resolves to a Stage: either an answer (status, reason) or targets forked at once,
with an optional timeout after which the ringing branches are cancelled and next() gives
the following stage (next hunt group member, no-answer or busy forward), or None: relay the
best response. Loops are cut with 482 and at most MAX_HOPS forwards are followed.
"""

MAX_HOPS = 5  # forwards followed for one call
MAX_NAME = 32  # longest extension, group or alias name
BUSY = (486, 600, 603)  # a final status that means "busy" (or refused) rather than "no answer"
NAMES = ("RING_GROUPS", "HUNT_GROUPS", "HUNT_TIMEOUT", "ALIASES", "FORWARD_ALWAYS",
         "FORWARD_BUSY", "FORWARD_NOANSWER", "FORWARD_NOANSWER_AFTER", "DND", "INTERCOM")
# index of each per-extension setting in a state row [dnd, always, busy, noanswer]
DND, ALWAYS, ON_BUSY, NO_ANSWER = 0, 1, 2, 3
KINDS = ("dnd", "always", "busy", "noanswer")


def configured(getenv):
    """True when any PBX setting has a value (the router imports this module only then)."""
    for name in NAMES:
        value = getenv(name)
        if value is not None and str(value).strip() != "":
            return True
    return False


def valid_name(name):
    """An extension, group or alias name: letters, digits and . _ - + only."""
    if not name or len(name) > MAX_NAME:
        return False
    for c in name:
        if not (c.isalpha() or c.isdigit() or c in "._-+"):
            return False
    return True


def _pairs(text, sep):
    """[(left, right)] from "a=b<sep>c=d"; items without '=' come back with right None."""
    out = []
    for item in text.split(sep):
        item = item.strip()
        if not item:
            continue
        eq = item.find("=")
        if eq < 0:
            out.append((item, None))
        else:
            out.append((item[:eq].strip(), item[eq + 1:].strip()))
    return out


def _names(text):
    return [n.strip() for n in text.replace(";", ",").split(",") if n.strip()]


class Stage:
    """What to do now: answer (status > 0) or fork to targets [(uri, dest, headers)]."""

    def __init__(self, status=0, reason="", targets=None, timeout=0, headers=None):
        self.status = status
        self.reason = reason
        self.headers = headers or []
        self.targets = targets or []
        self.timeout = timeout  # ms; 0: ring until answered or Timer C


class Plan:
    """Where a call has got to (kept by the proxy between stages)."""

    def __init__(self, callee, caller, intercom):
        self.callee = callee  # the name dialled
        self.caller = caller
        self.intercom = intercom  # extra headers for every branch, or None
        self.seen = []  # names reached so far (loop cut)
        self.hops = 0
        self.name = None  # the extension or group ringing now
        self.hunt = -1  # next member index when name is a hunt group
        self.rung = 0  # stages that rang somebody


class Dialplan:
    def shift_times(self, ms):
        """The board clock started a new epoch: nothing to move (the dialplan keeps no times;
        a stage's timeout is the proxy's, which the engine moves)."""

    def __init__(self, getenv, users=None, host="127.0.0.1"):
        self.errors = []
        self.users = users or {}  # SIP_USERS: when empty anyone may register
        self.host = host  # our address, for the intercom Call-Info URI
        self.changes = 0  # bumped whenever a user setting changes (the state saver watches)
        g = self._get(getenv)
        self.hunt_timeout = self._int(g, "HUNT_TIMEOUT", 15) * 1000
        self.noanswer_after = self._int(g, "FORWARD_NOANSWER_AFTER", 20) * 1000
        self.groups = {}  # name -> (is_hunt, [members])
        raw = {}
        for setting, hunt in (("RING_GROUPS", False), ("HUNT_GROUPS", True)):
            for name, members in _pairs(g(setting), ";"):
                if not valid_name(name) or name in raw or name in self.users:
                    self.errors.append("%s: %r is not a new group name; ignored" % (setting, name))
                elif members is None or not _names(members):
                    self.errors.append("%s: group %s has no members; ignored" % (setting, name))
                else:
                    raw[name] = (hunt, _names(members), setting)
        for name in sorted(raw):
            members = self._flatten(raw, name, [name])
            if members:
                self.groups[name] = (raw[name][0], members)
            else:
                self.errors.append("%s: group %s has no valid member; ignored"
                                   % (raw[name][2], name))
        self.aliases = {}  # lower-case name -> extension or group
        for name, target in _pairs(g("ALIASES"), ","):
            key = name.lower()
            if target is None:
                self.errors.append("ALIASES: %r is not NAME=TARGET; ignored" % name)
            elif not valid_name(name) or key in self.groups or key in self.users:
                self.errors.append("ALIASES: %r is not a new name; ignored" % name)
            elif not self.known(target or ""):
                self.errors.append("ALIASES: %s=%s: no such extension or group; ignored"
                                   % (name, target))
            else:
                self.aliases[key] = target
        self.state = {}  # name -> [dnd, always, busy, noanswer]
        for kind, setting in ((ALWAYS, "FORWARD_ALWAYS"), (ON_BUSY, "FORWARD_BUSY"),
                              (NO_ANSWER, "FORWARD_NOANSWER")):
            for name, target in _pairs(g(setting), ","):
                if target is None:
                    self.errors.append("%s: %r is not EXTENSION=TARGET; ignored"
                                       % (setting, name))
                    continue
                name = self.canonical(name)
                target = self.canonical(target)
                if not self.known(name) or not self.known(target):
                    self.errors.append("%s: %s=%s: no such extension or group; ignored"
                                       % (setting, name, target))
                elif name == target:
                    self.errors.append("%s: %s forwards to itself; ignored" % (setting, name))
                else:
                    self.row(name)[kind] = target
        for name in _names(g("DND")):
            if self.is_user(name):
                self.row(name)[DND] = True
            else:
                self.errors.append("DND: %s is not an extension; ignored" % name)
        self.defaults = {}  # the rows as the settings give them (to tell user changes apart)
        for name in self.state:
            self.defaults[name] = list(self.state[name])
        self.intercom = None  # None: every extension accepts intercom calls
        text = g("INTERCOM")
        if text:
            self.intercom = []
            for name in _names(text):
                if self.is_user(name):
                    self.intercom.append(name)
                else:
                    self.errors.append("INTERCOM: %s is not an extension; ignored" % name)

    @staticmethod
    def _get(getenv):
        def g(name):
            value = getenv(name)
            return "" if value is None else str(value).strip()
        return g

    def _int(self, g, name, default):
        text = g(name)
        if not text:
            return default
        try:
            value = int(text)
        except ValueError:
            value = 0
        if not 1 <= value <= 3600:
            self.errors.append("%s=%r is not a number of seconds in 1..3600; using %d"
                               % (name, text, default))
            return default
        return value

    def _flatten(self, raw, name, path):
        """Members of group name with member groups expanded; cycles reported and dropped."""
        setting = raw[name][2]
        out = []
        for m in raw[name][1]:
            if m in path:
                self.errors.append("%s: group %s is inside itself (through %s); %s ignored"
                                   % (setting, path[0], "->".join(path + [m]), m))
            elif m in raw:
                for x in self._flatten(raw, m, path + [m]):
                    if x not in out:
                        out.append(x)
            elif not self.is_user(m):
                self.errors.append("%s: %s in group %s is not an extension; ignored"
                                   % (setting, m, name))
            elif m not in out:
                out.append(m)
        return out

    # names -------------------------------------------------------------------
    def is_user(self, name):
        """An extension (one of SIP_USERS, or any valid non-group name when that is empty)."""
        if self.users:
            return name in self.users
        return valid_name(name) and name not in self.groups and name[0] != "*"

    def known(self, name):
        return name in self.groups or self.is_user(name)

    def canonical(self, name):
        """An alias's extension or group (names case-insensitive), else name itself."""
        return self.aliases.get(name.lower(), name)

    def row(self, name):
        r = self.state.get(name)
        if r is None:
            r = self.state[name] = [False, None, None, None]
        return r

    def setting(self, name, kind):
        r = self.state.get(name)
        return None if r is None else r[kind]

    def check(self, name, kind, value):
        """Why extension or group name cannot have setting kind = value, or None."""
        if not self.known(name):
            return "no such extension or group: %s" % name
        if kind == DND:
            return None if self.is_user(name) else "DND is for extensions, not groups"
        if value:
            target = self.canonical(value)
            if not self.known(target):
                return "no such extension or group: %s" % value
            if target == name:
                return "%s cannot forward to itself" % name
        return None

    def set(self, name, kind, value):
        """Set (or clear with None/False) one setting of extension or group name; returns an
        error text (and changes nothing) or None. The dashboard and feature codes use it."""
        problem = self.check(name, kind, value)
        if problem:
            return problem
        if kind == DND:
            value = bool(value)
        else:
            value = self.canonical(value) if value else None
        r = self.row(name)
        if r[kind] != value:
            r[kind] = value
            self.changes += 1
        return None

    def user_rows(self):
        """{name: row} for the rows that differ from the settings (what the state file keeps)."""
        out = {}
        for name in self.state:
            r = self.state[name]
            d = self.defaults.get(name, [False, None, None, None])
            if r != d:
                out[name] = list(r)
        return out

    def load_rows(self, rows):
        """Rows saved before a restart; names that no longer exist are skipped (returned)."""
        skipped = []
        for name in sorted(rows):
            values = rows[name]
            if not self.known(name):
                skipped.append(name)
                continue
            r = self.row(name)
            r[DND] = bool(values[DND]) and self.is_user(name)
            for kind in (ALWAYS, ON_BUSY, NO_ANSWER):
                t = values[kind]
                r[kind] = t if t and self.known(t) and t != name else None
        return skipped

    def view(self):
        """Every extension or group with a setting, as plain data for the dashboard."""
        out = {}
        for name in sorted(self.state):
            r = self.state[name]
            out[name] = {"dnd": r[DND], "always": r[ALWAYS], "busy": r[ON_BUSY],
                         "noanswer": r[NO_ANSWER]}
        return out

    # feature codes -------------------------------------------------------------
    def feature(self, dialled, caller, allowed=True):
        """A feature code dialled by caller: (status, reason) to answer with, or None when
        dialled is no feature code. *80<ext> (intercom) is routed by start(), not here.
        allowed is False when auth is on and caller did not authenticate."""
        if len(dialled) < 3 or dialled[0] != "*" or dialled[:3] == "*80":
            return None
        code, arg = dialled[:3], dialled[3:]
        kinds = {"*72": ALWAYS, "*73": ALWAYS, "*90": ON_BUSY, "*91": ON_BUSY,
                 "*92": NO_ANSWER, "*93": NO_ANSWER, "*78": DND, "*79": DND}
        kind = kinds.get(code)
        if kind is None:
            return 404, "Unknown Feature Code"
        if not allowed:
            return 403, "Sign In First"
        if not self.is_user(caller):
            return 403, "Not An Extension"
        on = code in ("*72", "*90", "*92", "*78")
        if kind == DND:
            if arg:
                return 484, "Address Incomplete"
            self.set(caller, DND, on)
            return 480, "Do Not Disturb On" if on else "Do Not Disturb Off"
        label = ("", "Forward", "Busy Forward", "No-Answer Forward")[kind]
        if not on:
            if arg:
                return 484, "Address Incomplete"
            self.set(caller, kind, None)
            return 480, label + " Off"
        if not arg:
            return 484, "Address Incomplete"
        target = self.canonical(arg)
        if not self.known(target):
            return 404, "No Such Number " + arg if valid_name(arg) else "Not Found"
        if target == caller:
            return 482, "Cannot Forward To Yourself"
        self.set(caller, kind, target)
        return 480, "%s To %s On" % (label, arg)

    # routing -----------------------------------------------------------------
    def start(self, dialled, caller, contacts):
        """(plan, stage) for a call to dialled from caller; None when dialled is not ours
        (the plain router handles it: unknown numbers get its 404)."""
        intercom = None
        if dialled[:3] == "*80":
            target = self.canonical(dialled[3:])
            if not self.is_user(target):
                plan = Plan(dialled, caller, None)
                return plan, Stage(404, "No Such Extension")
            if self.intercom is not None and target not in self.intercom:
                return Plan(dialled, caller, None), Stage(403, "Intercom Not Allowed")
            intercom = [("Call-Info", "<sip:%s>;answer-after=0" % self.host),
                        ("Alert-Info", "<http://127.0.0.1>;info=alert-autoanswer")]
            plan = Plan(target, caller, intercom)
            plan.seen.append(target)
            return plan, self._ring(plan, target, contacts, False)
        name = self.canonical(dialled)
        if not self.known(name) or (name == dialled and name not in self.state
                                    and name not in self.groups):
            return None  # a plain extension without settings: ordinary routing
        plan = Plan(dialled, caller, None)
        return plan, self._reach(plan, name, contacts)

    def next(self, plan, best, contacts):
        """The stage after one that ended without 2xx (best: its best final status, 408 or
        487 when its timeout fired), or None to relay the best response."""
        name = plan.name
        if name is None:
            return None
        if plan.hunt >= 0:
            stage = self._hunt(plan, contacts)
            if stage is not None:
                return stage
        if plan.intercom is not None:
            return None
        target = self.setting(name, ON_BUSY if best in BUSY else NO_ANSWER)
        if target is None:
            return None
        return self._forward(plan, target, contacts)

    def _forward(self, plan, target, contacts):
        plan.hops += 1
        plan.hunt = -1
        plan.name = None
        if plan.hops > MAX_HOPS:
            return Stage(482, "Too Many Forwards")
        return self._reach(plan, target, contacts)

    def _reach(self, plan, name, contacts):
        if name in plan.seen:
            return Stage(482, "Loop Detected")
        plan.seen.append(name)
        target = self.setting(name, ALWAYS)
        if target is not None:
            return self._forward(plan, target, contacts)
        group = self.groups.get(name)
        plan.name = name
        if group is None:
            if self.setting(name, DND):
                busy = self.setting(name, ON_BUSY)
                if busy is not None:
                    return self._forward(plan, busy, contacts)
                return Stage(486, "Busy Here")
            stage = self._ring(plan, name, contacts, True)
        elif group[0]:
            plan.hunt = 0
            stage = self._hunt(plan, contacts)
            if stage is None:
                stage = Stage(480, "Temporarily Unavailable")
        else:
            targets = []
            for m in group[1]:
                if self._member(plan, m):
                    for uri, dest in contacts(m):
                        targets.append((uri, dest, []))
            stage = self._stage(plan, targets, name)
        if stage.status == 480 and self.setting(name, NO_ANSWER) is not None:
            return self._forward(plan, self.setting(name, NO_ANSWER), contacts)
        return stage

    def _ring(self, plan, name, contacts, forwards):
        """Ring every contact of one extension."""
        plan.name = name
        targets = [(uri, dest, plan.intercom or []) for uri, dest in contacts(name)]
        if plan.intercom is not None and self.setting(name, DND):
            return Stage(486, "Busy Here")
        return self._stage(plan, targets, name if forwards else None)

    def _stage(self, plan, targets, name):
        if not targets:
            return Stage(480, "Temporarily Unavailable")
        plan.rung += 1
        timeout = 0
        if name is not None and self.setting(name, NO_ANSWER) is not None:
            timeout = self.noanswer_after
        return Stage(targets=targets, timeout=timeout)

    def _member(self, plan, m):
        """May group member m ring for this call: not on DND, not the caller, not reached
        already (a busy 1001 forwarded to a group with 1001 in it)?"""
        return not self.setting(m, DND) and m != plan.caller and m not in plan.seen

    def _hunt(self, plan, contacts):
        """The next hunt group member that can ring, as a stage; None after the last."""
        members = self.groups[plan.name][1]
        while plan.hunt < len(members):
            m = members[plan.hunt]
            plan.hunt += 1
            if not self._member(plan, m):
                continue
            targets = [(uri, dest, []) for uri, dest in contacts(m)]
            if targets:
                plan.rung += 1
                last = plan.hunt >= len(members)
                group_forward = self.setting(plan.name, NO_ANSWER) is not None
                timeout = self.hunt_timeout
                if last and not group_forward:
                    timeout = 0  # the last member rings on until Timer C
                return Stage(targets=targets, timeout=timeout)
        plan.hunt = len(members)
        return None
