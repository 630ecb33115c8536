"""switchboard.location: bindings of addresses-of-record to contacts (RFC 3261 §10.3)."""

from switchboard.location import Binding, Location


def binding(uri, expires_at=10_000, q=1000, source=("10.0.0.9", 5060), instance=""):
    return Binding(uri, source, expires_at, "cid@x", 1, 0, "UA/1", instance, q)


def test_add_and_lookup():
    loc = Location(10, 4)
    b = binding("sip:1001@10.0.0.9:5060")
    assert loc.add("1001", b) is True
    assert loc.count == 1
    assert loc.lookup("1001", 0) == [b]
    assert loc.lookup("1002", 0) == []
    assert loc.users() == ["1001"]


def test_lookup_hides_expired_bindings():
    loc = Location(10, 4)
    old = binding("sip:1001@10.0.0.9:5060", expires_at=1000)
    new = binding("sip:1001@10.0.0.10:5060", expires_at=5000)
    loc.add("1001", old)
    loc.add("1001", new)
    assert loc.lookup("1001", 999) == [old, new]
    assert loc.lookup("1001", 1000) == [new]  # expires_at is exclusive
    assert loc.lookup("1001", 5000) == []
    assert loc.count == 2  # lookup does not remove


def test_q_ordering_best_first_and_stable():
    loc = Location(10, 8)
    a = binding("sip:a@10.0.0.1", q=500)
    b = binding("sip:b@10.0.0.2", q=1000)
    c = binding("sip:c@10.0.0.3", q=500)
    d = binding("sip:d@10.0.0.4", q=1000)
    e = binding("sip:e@10.0.0.5", q=100)
    for x in (a, b, c, d, e):
        loc.add("u", x)
    assert loc.lookup("u", 0) == [b, d, a, c, e]
    assert loc.table["u"] == [a, b, c, d, e]  # the stored order is untouched


def test_per_aor_limit():
    loc = Location(10, 2)
    assert loc.add("1001", binding("sip:1@h"))
    assert loc.add("1001", binding("sip:2@h"))
    assert loc.add("1001", binding("sip:3@h")) is False
    assert loc.count == 2
    assert len(loc.table["1001"]) == 2
    assert loc.add("1002", binding("sip:4@h"))  # another AOR still has room


def test_total_limit():
    loc = Location(3, 4)
    assert loc.add("a", binding("sip:1@h"))
    assert loc.add("b", binding("sip:2@h"))
    assert loc.add("c", binding("sip:3@h"))
    assert loc.add("d", binding("sip:4@h")) is False
    assert "d" not in loc.table  # a refused first binding leaves no empty entry
    assert loc.users() == ["a", "b", "c"]
    assert loc.count == 3


def test_remove_frees_room():
    loc = Location(2, 4)
    x = binding("sip:1@h")
    loc.add("a", x)
    loc.add("a", binding("sip:2@h"))
    assert not loc.add("b", binding("sip:3@h"))
    loc.remove("a", x)
    assert loc.count == 1
    assert loc.add("b", binding("sip:3@h"))
    loc.remove("a", x)  # not there any more: nothing happens
    loc.remove("zzz", x)
    assert loc.count == 2


def test_remove_last_binding_drops_user():
    loc = Location(10, 4)
    x = binding("sip:1@h")
    loc.add("a", x)
    loc.remove("a", x)
    assert loc.users() == []
    assert loc.count == 0


def test_purge():
    loc = Location(10, 4)
    a1 = binding("sip:a1@h", expires_at=100)
    a2 = binding("sip:a2@h", expires_at=300)
    b1 = binding("sip:b1@h", expires_at=200)
    loc.add("b", b1)
    loc.add("a", a1)
    loc.add("a", a2)
    assert loc.purge(99) == []
    assert loc.purge(200) == [("a", a1), ("b", b1)]  # sorted by user
    assert loc.count == 1
    assert loc.users() == ["a"]
    assert loc.lookup("a", 0) == [a2]
    assert loc.purge(1000) == [("a", a2)]
    assert loc.count == 0
    assert loc.table == {}


def test_find_uri():
    loc = Location(10, 4)
    a = binding("sip:1001@192.168.1.20:5062;transport=udp")
    b = binding("sip:1002@192.168.1.21:5060")
    loc.add("1001", a)
    loc.add("1002", b)
    assert loc.find_uri("sip:1001@192.168.1.20:5062;transport=udp") is a
    assert loc.find_uri("sip:1002@192.168.1.21:5060") is b
    assert loc.find_uri("sip:1002@192.168.1.21") is None  # exact text only
    assert loc.find_uri("sip:nobody@h") is None


def test_find_uri_includes_expired_until_purged():
    loc = Location(10, 4)
    a = binding("sip:x@h", expires_at=10)
    loc.add("x", a)
    assert loc.find_uri("sip:x@h") is a
    loc.purge(10)
    assert loc.find_uri("sip:x@h") is None


def test_find_uri_first_match_never_depends_on_insertion_order():
    for users in (("b", "a", "c"), ("c", "b", "a")):
        loc = Location(10, 4)
        made = {}
        for user in users:
            made[user] = binding("sip:shared@10.0.0.9")
            loc.add(user, made[user])
        assert loc.find_uri("sip:shared@10.0.0.9") is made["a"]


def test_lookup_equal_q_keeps_registration_order():
    loc = Location(10, 8)
    made = [binding("sip:%d@h" % i) for i in range(6)]
    for b in made:
        loc.add("a", b)
    assert loc.lookup("a", 0) == made
