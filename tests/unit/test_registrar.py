"""REGISTER handling (RFC 3261 §10.3) through the engine."""

from flows import Phone, new_engine, status

from switchboard.message import parse


class Reg:
    def __init__(self, **overrides):
        self.logs = []
        self.engine = new_engine(overrides, log=lambda level, text: self.logs.append(text))
        self.now = 1000

    def send(self, phone, data, source=None):
        self.now += 10
        out = self.engine.receive(data, source or phone.addr, self.now)
        assert len(out) == 1, out
        return parse(out[0][0]), out[0][1]

    def contacts(self, user):
        return [(b.uri, b.source) for b in self.engine.location.lookup(user, self.now)]


def contact_expiries(resp):
    return sorted(resp.values("contact"))


def test_200_lists_every_contact_with_remaining_time():
    r = Reg()
    p = Phone("1001", "10.0.0.11")
    resp, dest = r.send(p, p.register(expires=600))
    assert resp.status == 200 and dest == p.addr
    assert resp.values("contact") == ["<sip:1001@10.0.0.11:5060>;expires=600"]
    second = Phone("1001", "10.0.0.21")
    resp, _ = r.send(second, second.register(expires=900, call_id="other"))
    assert contact_expiries(resp) == ["<sip:1001@10.0.0.11:5060>;expires=599",
                                      "<sip:1001@10.0.0.21:5060>;expires=900"]


def test_contact_expires_parameter_wins_over_header_and_max_is_enforced():
    r = Reg()
    p = Phone("1001", "10.0.0.11")
    data = p.register(expires=600, contact="<sip:1001@10.0.0.11:5060>;expires=120")
    assert r.send(p, data)[0].values("contact") == ["<sip:1001@10.0.0.11:5060>;expires=120"]
    data = p.register(expires=999999, cseq=2)
    assert r.send(p, data)[0].values("contact") == ["<sip:1001@10.0.0.11:5060>;expires=7200"]


def test_default_expiry_when_none_given():
    r = Reg(REG_DEFAULT_EXPIRES=1800)
    p = Phone("1001", "10.0.0.11")
    data = p.register().replace(b"Expires: 3600\r\n", b"")
    assert r.send(p, data)[0].values("contact") == ["<sip:1001@10.0.0.11:5060>;expires=1800"]


def test_interval_too_brief_423_with_min_expires():
    r = Reg(REG_MIN_EXPIRES=120)
    p = Phone("1001", "10.0.0.11")
    resp, _ = r.send(p, p.register(expires=30))
    assert resp.status == 423 and resp.get("min-expires") == "120"
    assert r.contacts("1001") == []


def test_unregister_one_contact_and_wildcard():
    r = Reg()
    a, b = Phone("1001", "10.0.0.11"), Phone("1001", "10.0.0.21")
    r.send(a, a.register(call_id="ca"))
    r.send(b, b.register(call_id="cb"))
    resp, _ = r.send(a, a.register(expires=0, call_id="ca", cseq=2))
    assert resp.values("contact") == ["<sip:1001@10.0.0.21:5060>;expires=3599"]
    assert any(line.startswith("unregister 1001 contact=<sip:1001@10.0.0.11") for line in r.logs)
    r.send(a, a.register(call_id="ca", cseq=3))
    wildcard = a.register(expires=0, call_id="ca", cseq=4, contact="*")
    resp, _ = r.send(a, wildcard)
    assert resp.status == 200 and resp.values("contact") == []
    assert r.contacts("1001") == []


def test_wildcard_needs_expires_zero():
    r = Reg()
    a = Phone("1001", "10.0.0.11")
    resp, _ = r.send(a, a.register(expires=60, contact="*"))
    assert resp.status == 400 and resp.reason == "Invalid wildcard Contact"


def test_register_without_contact_returns_bindings():
    r = Reg()
    a = Phone("1001", "10.0.0.11")
    r.send(a, a.register())
    query = a.request("REGISTER", "sip:10.0.0.1", "<sip:1001@10.0.0.1>", "q", 1)
    resp, _ = r.send(a, query)
    assert resp.status == 200 and len(resp.values("contact")) == 1


def test_out_of_order_cseq_refused():
    r = Reg()
    a = Phone("1001", "10.0.0.11")
    r.send(a, a.register(cseq=5))
    resp, _ = r.send(a, a.register(cseq=4, expires=0))
    assert resp.status == 500
    assert len(r.contacts("1001")) == 1


def test_unknown_user_404_when_users_listed():
    r = Reg()
    x = Phone("4242", "10.0.0.11")
    assert r.send(x, x.register())[0].status == 404
    anyone = Reg(SIP_USERS="")
    assert anyone.send(x, x.register())[0].status == 200


def test_source_address_with_rport_is_remembered_and_reregister_moves_binding():
    r = Reg()
    a = Phone("1001", "10.0.0.11", 5070)
    r.send(a, a.register(call_id="first"), source=("10.0.0.11", 40000))  # behind NAT
    assert r.contacts("1001") == [("sip:1001@10.0.0.11:5070", ("10.0.0.11", 40000))]
    moved = Phone("1001", "10.0.0.11", 5080)  # same phone, new port, new Call-ID (a restart)
    resp, _ = r.send(moved, moved.register(call_id="second"))
    assert r.contacts("1001") == [("sip:1001@10.0.0.11:5080", ("10.0.0.11", 5080))]
    assert resp.values("contact") == ["<sip:1001@10.0.0.11:5080>;expires=3600"]


def test_same_instance_moves_binding_across_addresses():
    r = Reg()
    inst = ';+sip.instance="<urn:uuid:00000000-0000-1000-8000-000A95A0E128>"'
    a = Phone("1001", "10.0.0.11")
    r.send(a, a.register(contact="<sip:1001@10.0.0.11:5060>" + inst))
    b = Phone("1001", "10.0.0.99")
    r.send(b, b.register(contact="<sip:1001@10.0.0.99:5060>" + inst, call_id="new"))
    assert r.contacts("1001") == [("sip:1001@10.0.0.99:5060", ("10.0.0.99", 5060))]


def test_table_full_503_with_retry_after_and_nothing_lost():
    r = Reg(MAX_BINDINGS=2, SIP_USERS="")
    for i in range(2):
        p = Phone("20%02d" % i, "10.0.1.%d" % i)
        assert r.send(p, p.register())[0].status == 200
    p = Phone("2099", "10.0.1.99")
    resp, _ = r.send(p, p.register())
    assert resp.status == 503 and resp.get("retry-after")
    assert r.engine.location.count == 2
    # refreshing an existing binding still works when full
    p = Phone("2000", "10.0.1.0")
    assert r.send(p, p.register(cseq=2))[0].status == 200


def test_contacts_per_aor_limit():
    r = Reg(MAX_CONTACTS_PER_AOR=1)
    a, b = Phone("1001", "10.0.0.11"), Phone("1001", "10.0.0.21")
    assert r.send(a, a.register(call_id="a"))[0].status == 200
    assert r.send(b, b.register(call_id="b"))[0].status == 503


def test_expired_bindings_purged_by_timer():
    r = Reg()
    a = Phone("1001", "10.0.0.11")
    r.send(a, a.register(expires=60))
    r.engine.tick(r.now + 59000)
    assert r.engine.location.count == 1
    r.engine.tick(r.now + 61000)
    assert r.engine.location.count == 0
    assert any(line.startswith("expired 1001") for line in r.logs)


def test_register_for_foreign_ip_domain_is_forbidden():
    r = Reg()
    a = Phone("1001", "10.0.0.11")
    data = a.register().replace(b"REGISTER sip:10.0.0.1 ", b"REGISTER sip:10.9.9.9 ", 1)
    assert r.send(a, data)[0].status == 403


def test_retransmitted_register_answered_from_transaction():
    # the finished transaction keeps no bytes: the 200 is rebuilt from the retransmission,
    # with the same tag and the bindings as they are now (nothing changes)
    r = Reg()
    a = Phone("1001", "10.0.0.11")
    data = a.register()
    first, _ = r.send(a, data)
    r.now += 20000  # within Timer J (32 s)
    again, dest = r.send(a, data)
    assert status(again.to_bytes()) == 200 and dest == a.addr
    assert again.get("to") == first.get("to") and ";tag=sb" in again.get("to")
    assert again.values("via") == first.values("via")
    assert contact_expiries(first) == ["<sip:1001@10.0.0.11:5060>;expires=3600"]
    assert contact_expiries(again) == ["<sip:1001@10.0.0.11:5060>;expires=3579"]
    assert r.engine.counters["retransmitted"] == 1
    assert len(r.engine.location.lookup("1001", r.now)) == 1
    r.now += 20000  # Timer J is over: the same request again is a new one, out of order
    r.engine.tick(r.now)
    late, _ = r.send(a, data)
    assert late.status == 500 and r.engine.counters["retransmitted"] == 1


def test_q_values_with_integer_arithmetic():
    from switchboard.registrar import parse_q

    assert parse_q("0.7") == 700  # int(float("0.7") * 1000) would give 699 on some VMs
    assert [parse_q(t) for t in ("1", "1.0", "1.000", "0", "0.", "0.5", "0.05", "0.001")] == \
        [1000, 1000, 1000, 0, 0, 500, 50, 1]
    for bad in ("1.5", "2", "0.0001", "abc", "", ".5", "-0.5", "0.x", "10"):
        assert parse_q(bad) is None, bad


def test_contact_q_orders_the_forks_and_bad_q_counts_as_1():
    r = Reg()
    p = Phone("1001", "10.0.0.11")
    contacts = "<sip:a@10.0.0.11:5060>;q=0.7, <sip:b@10.0.0.11:5062>;q=0.9, " \
               "<sip:c@10.0.0.11:5064>;q=x"
    resp, _ = r.send(p, p.register(contact=contacts))
    assert resp.status == 200
    got = r.engine.location.lookup("1001", r.now)
    assert [(b.uri[-4:], b.q) for b in got] == [("5064", 1000), ("5062", 900), ("5060", 700)]
