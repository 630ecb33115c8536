"""The PBX dialplan and the state record driven through their cases, printing a transcript.

tests/test_pbx_portable.py runs this under CPython and under the MicroPython VM and requires
identical output: no dict-order dependence, no big ints, nothing CPython-only. Runs with only
lib/ on the path (the VM copies lib/ to /lib).
"""

from switchboard.dialplan import Dialplan
from switchboard.location import Binding, Location
from switchboard.persist import NvmStore, Saver, adler32, decode, encode

USERS = {}
for _n in range(1001, 1009):
    USERS[str(_n)] = ""

SETTINGS = {
    "RING_GROUPS": "600=1001,1002,1003; 610=1004,1005,600",
    "HUNT_GROUPS": "601=1003,1004,1001; 602=1099",
    "HUNT_TIMEOUT": "15",
    "ALIASES": "Reception=600, alice=1001, 9=600, bob=1099",
    "FORWARD_ALWAYS": "1006=1007",
    "FORWARD_BUSY": "1001=1002, 1003=601",
    "FORWARD_NOANSWER": "1002=601, 601=1008",
    "FORWARD_NOANSWER_AFTER": 20,
    "DND": "1005, nobody",
    "INTERCOM": "1001,1002",
}


class Phones:
    def __init__(self, users):
        self.users = users

    def __call__(self, user):
        if user in self.users:
            return [("sip:%s@10.0.0.%s:5060" % (user, user[-1]), ("10.0.0." + user[-1], 5060))]
        return []


def show_stage(out, label, stage):
    if stage is None:
        out("%s: relay best" % label)
    elif stage.status:
        out("%s: %d %s" % (label, stage.status, stage.reason))
    else:
        out("%s: ring %s timeout=%d headers=%s" % (
            label, ",".join(sorted(u for u, d, h in stage.targets)), stage.timeout,
            ";".join("%s: %s" % h for t in stage.targets[:1] for h in t[2])))


def run(out):
    dp = Dialplan(SETTINGS.get, USERS, "10.0.0.99:5060")
    for e in dp.errors:
        out("error: " + e)
    for name in sorted(dp.groups):
        out("group %s: %s %s" % (name, "hunt" if dp.groups[name][0] else "ring",
                                 ",".join(dp.groups[name][1])))
    everyone = Phones(sorted(USERS))
    calls = [("600", ["relay"]), ("reception", []), ("601", [487, 486, 487, 487]),
             ("1002", [487, 487]), ("1001", [486]), ("1003", [600, 487]), ("1005", []),
             ("1006", []), ("*801001", [487]), ("*801003", []), ("bob", []), ("1007", [])]
    for dialled, statuses in calls:
        got = dp.start(dialled, "1008", everyone)
        if got is None:
            out("%s: plain routing" % dialled)
            continue
        plan, stage = got
        show_stage(out, dialled, stage)
        for status in statuses:
            if status == "relay":
                continue
            stage = dp.next(plan, status, everyone)
            show_stage(out, "  after %d" % status, stage)
            if stage is None or stage.status:
                break
        out("  callee=%s hops=%d seen=%s" % (plan.callee, plan.hops, ",".join(plan.seen)))
    some = Phones(["1002", "1004"])
    show_stage(out, "600 with 1002,1004", dp.start("600", "1008", some)[1])
    show_stage(out, "601 with 1002,1004", dp.start("601", "1008", some)[1])
    for code, caller in (("*78", "1001"), ("*721002", "1003"), ("*90alice", "1004"),
                         ("*92600", "1004"), ("*79", "1005"), ("*73", "1006"), ("*55", "1001"),
                         ("*721099", "1001"), ("*78", "600"), ("*72", "1002")):
        out("%s from %s: %s" % (code, caller, dp.feature(code, caller)))
    view = dp.view()
    for name in sorted(view):
        v = view[name]
        out("setting %s: dnd=%s always=%s busy=%s noanswer=%s"
            % (name, v["dnd"], v["always"], v["busy"], v["noanswer"]))
    rows = dp.user_rows()
    out("changed rows: %s" % ",".join(sorted(rows)))
    # the record
    loc = Location(64, 4)
    nvm = bytearray(b"\xff" * 4096)

    def log(level, text):
        out("%s %s" % (level, text))

    saver = Saver(NvmStore(nvm), loc, dp, log, settle_ms=0, budget=4, refill_ms=60000)
    saver.restore(0)
    for i in range(1, 6):
        user = str(1000 + i)
        loc.add(user, Binding("sip:%s@10.0.0.%d:5060" % (user, i), ("10.0.0.%d" % i, 5060 + i),
                              3600000 + i * 1000, "c", 1, 0, "ua", "", 1000 - i))
    saver.poll(1000)
    n = 5 + 4 + ((nvm[3] << 8) | nvm[4])
    out("record %d bytes, %d writes, checksum %s"
        % (n, saver.writes, "".join("%02x" % b for b in adler32(nvm[2:n - 4]))))
    dp2 = Dialplan(SETTINGS.get, USERS, "10.0.0.99:5060")
    loc2 = Location(64, 4)
    Saver(NvmStore(nvm), loc2, dp2, log).restore(500)
    for user in loc2.users():
        for b in loc2.lookup(user, 500):
            out("restored %s %s %s:%d expires=%d q=%d" % (user, b.uri, b.source[0], b.source[1],
                                                          b.expires_at, b.q))
    out("same settings after restore: %s" % (dp2.view() == dp.view()))
    data, dropped = encode([], {}, 0, 4096)
    out("empty record: %s dropped=%d decoded=%s" % ("".join("%02x" % b for b in data), dropped,
                                                     decode(data)))
    nvm[10] ^= 1
    Saver(NvmStore(nvm), Location(64, 4), None, log).restore(0)


if __name__ == "__main__":

    def _print(*args):
        print(" ".join(str(a) for a in args))

    run(_print)
