"""The dashboard's views as plain data (views.py): extension states from calls, bindings,
pings and the PBX settings; groups; the ladder's peers; the CSV; the page's first rows."""

from flows import Phone, new_engine, status

from switchboard import views
from switchboard.dialplan import ALWAYS, DND
from switchboard.pbx import install


def pbx_engine(**settings):
    engine = new_engine({"QUALIFY_INTERVAL": 0})
    dp = install(engine, lambda name: settings.get(name), lambda level, text: None)
    return engine, dp


def states(engine, now):
    return dict((e["name"], (e["state"], e["with"])) for e in
                views.extensions(engine, now)["extensions"])


def test_states_offline_idle_dnd_forwarded_ringing_in_call():
    engine, dp = pbx_engine(RING_GROUPS="sales=1001,1002")
    alice, bob = Phone("1001", "10.0.0.11"), Phone("1002", "10.0.0.12")
    now = 1000
    assert states(engine, now) == {"1001": ("offline", None), "1002": ("offline", None),
                                   "1003": ("offline", None)}
    engine.receive(alice.register(), alice.addr, now)
    engine.receive(bob.register(), bob.addr, now)
    dp.set("1002", DND, True)
    dp.set("1001", ALWAYS, "1003")
    got = states(engine, now)
    assert got["1002"] == ("dnd", None) and got["1001"] == ("forwarded", None)
    view = views.extensions(engine, now)
    assert view["extensions"][0]["forward"] == "1003" and view["extensions"][1]["dnd"]
    assert view["groups"] == [{"name": "sales", "kind": "ring", "members": ["1001", "1002"],
                               "state": "idle", "with": None, "forward": None}]
    dp.set("1002", DND, False)
    dp.set("1001", ALWAYS, None)
    out = engine.receive(alice.invite("1002", "v1"), alice.addr, now + 10)
    fwd = [d for d, a in out if a == bob.addr][0]
    engine.receive(bob.answer(fwd, 180, "Ringing"), bob.addr, now + 20)
    got = states(engine, now + 20)
    assert got["1001"] == ("ringing", "1002") and got["1002"] == ("ringing", "1001")
    ok = [d for d, _ in engine.receive(bob.answer(fwd, 200, "OK", sdp=True), bob.addr,
                                       now + 30) if status(d) == 200][0]
    engine.receive(alice.in_dialog("ACK", ok, 1), alice.addr, now + 40)
    got = states(engine, now + 40)
    assert got["1001"] == ("in_call", "1002") and got["1002"] == ("in_call", "1001")
    # a call to the group: the group rings
    carol = Phone("1003", "10.0.0.13")
    engine.receive(carol.register(), carol.addr, now + 50)
    engine.receive(carol.invite("sales", "v2"), carol.addr, now + 60)
    group = views.extensions(engine, now + 60)["groups"][0]
    assert (group["state"], group["with"]) == ("ringing", "1003")


def test_unreachable_when_every_contact_stopped_answering():
    engine = new_engine({"QUALIFY_INTERVAL": 2})
    alice = Phone("1001", "10.0.0.11")
    engine.receive(alice.register(), alice.addr, 1000)
    b = engine.location.lookup("1001", 1000)[0]
    engine.qualify.tick(1000, [])
    entry = engine.qualify.entries[b]
    entry[3], entry[4] = 12, False  # answered once (12 ms), then stopped
    view = views.extensions(engine, 2000)
    ext = view["extensions"][0]
    assert ext["state"] == "unreachable"
    assert ext["contacts"][0]["reachable"] is False and ext["contacts"][0]["rtt_ms"] == 12
    assert view["pbx"] is False and view["groups"] == [] and view["qualify"]["interval"] == 2


def test_ladder_names_peers_and_csv_quotes_what_phones_send():
    from switchboard.trace import Trace

    engine = new_engine()
    engine.trace = Trace(32)
    alice, bob = Phone("1001", "10.0.0.11"), Phone("1002", "10.0.0.12")
    for p in (alice, bob):
        engine.receive(p.register(), p.addr, 1000)
    call_id = '=HYPERLINK("x"),1'
    out = engine.receive(alice.invite("1002", call_id), alice.addr, 1010)
    fwd = [d for d, a in out if a == bob.addr][0]
    engine.receive(bob.answer(fwd, 486, "Busy Here"), bob.addr, 1500)
    ladder = views.ladder(engine, call_id)
    assert ladder["peers"] == [{"address": "10.0.0.11:5060", "name": "1001"},
                               {"address": "10.0.0.12:5060", "name": "1002"}]
    assert [m["ms"] for m in ladder["messages"]][-1] == 490
    assert views.ladder(engine, "nope")["messages"] == []
    csv = views.history_csv(engine, 2000).split("\r\n")
    assert csv[1].startswith('"\'=HYPERLINK(""x""),1",1001,1002,failed,486,')


def test_page_rows_are_capped():
    engine = new_engine({"SIP_USERS": ",".join(str(2000 + i) for i in range(20))})
    html = views.render_extensions(views.extensions(engine, 0))
    assert html.count("<tr>") == views.PAGE_ROWS  # the script shows the rest


def test_page_with_worst_case_rows_stays_within_16_kb():
    import os

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    with open(os.path.join(root, "web", "index.html"), "rb") as f:
        template = f.read()
    names = ",".join('"&<>' * 4 + str(i) for i in range(10))  # escaping makes them longest
    engine = new_engine({"SIP_USERS": names})
    rows = views.render_extensions(views.extensions(engine, 0)).encode()
    assert len(template.replace(b"<!--@extensions-->", rows)) <= 16 * 1024


def test_trunk_state_when_the_engine_has_one():
    class Trunk:  # the shape of trunk.Trunk.status() on branch trunk
        def status(self, now):
            return {"account": "sip:100@itsp.example", "server": "192.0.2.1:5060",
                    "state": "registered", "last_status": 200, "last_reason": "OK",
                    "next_try": 0, "expires_in": 3000, "calls": 0}

    engine = new_engine()
    assert views.extensions(engine, 0)["trunk"] is None
    engine.trunk = Trunk()
    assert views.extensions(engine, 0)["trunk"]["state"] == "registered"
