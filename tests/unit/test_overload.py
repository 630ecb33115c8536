"""Overload control in memory (lib/switchboard/overload.py): classification from the first
bytes, the cheap 503, the shedding decision with hysteresis."""

from flows import Phone

from switchboard import overload
from switchboard.message import Via, parse, to_tag
from switchboard.overload import ABSORB, DROP, PASS, SHED, STEP_MS, Overload

ALICE = Phone("1001", "10.0.0.11")
SOURCE = ("10.0.0.11", 5060)


def test_method_from_the_first_bytes():
    assert overload.method(b"INVITE sip:1002@x SIP/2.0\r\n") == b"INVITE"
    assert overload.method(b"REGISTER sip:x SIP/2.0\r\n") == b"REGISTER"
    assert overload.method(b"SIP/2.0 200 OK\r\n") == b""
    for junk in (b"", b"\r\n\r\n", b"invite sip:x SIP/2.0", b"\x00\x01 x", b"INV1TE sip:x",
                 b" INVITE sip:x", b"A" * 40 + b" sip:x", b"\xff\xfe", b"SIP/3.0 200 OK"):
        assert overload.method(junk) is None, junk


def test_scan_finds_the_five_headers_long_and_compact():
    fields = overload.scan(Phone("1001", "10.0.0.11").invite("1002", "c1"))
    vias, from_, to, call_id, cseq = fields
    assert vias == [b"SIP/2.0/UDP 10.0.0.11:5060;branch=z9hG4bK10011;rport"]
    assert from_ == b"<sip:1001@10.0.0.1>;tag=t1001"
    assert to == b"<sip:1002@10.0.0.1>" and call_id == b"c1" and cseq == b"1 INVITE"
    compact = (b"INVITE sip:1002@h SIP/2.0\r\nv : SIP/2.0/UDP a:1;branch=z9hG4bKx\r\n"
               b"V: SIP/2.0/UDP b:2;branch=z9hG4bKy\r\nf:<sip:a@h>;tag=9\r\nT: sip:1002@h\r\n"
               b"i:abc\r\nCSEQ: 7 INVITE\r\nl: 0\r\n\r\n")
    vias, from_, to, call_id, cseq = overload.scan(compact)
    assert vias == [b"SIP/2.0/UDP a:1;branch=z9hG4bKx", b"SIP/2.0/UDP b:2;branch=z9hG4bKy"]
    assert (from_, to, call_id, cseq) == (b"<sip:a@h>;tag=9", b"sip:1002@h", b"abc",
                                          b"7 INVITE")
    folded = compact.replace(b"i:abc\r\n", b"i:abc\r\n  def\r\n")
    assert overload.scan(folded)[3] == b"abc def"
    bare_lf = compact.replace(b"\r\n", b"\n")
    assert overload.scan(bare_lf)[3] == b"abc"


def test_scan_gives_none_when_a_header_is_missing_or_for_junk():
    invite = ALICE.invite("1002", "c1")
    for name in (b"Via", b"From", b"To", b"Call-ID", b"CSeq"):
        start = invite.find(b"\r\n" + name + b":")
        end = invite.find(b"\r\n", start + 2)
        assert overload.scan(invite[:start] + invite[end:]) is None, name
    for junk in (b"", b"INVITE", b"\r\n\r\n", b"INVITE sip:x SIP/2.0\r\nVia:\r\n\r\n",
                 bytes(range(256)), b"INVITE x SIP/2.0\r\n:::\r\n\r\n"):
        assert overload.scan(junk) is None
    # the body is never read: a To line in it does not count
    body_only = (b"INVITE sip:x SIP/2.0\r\nVia: SIP/2.0/UDP a;branch=z9hG4bK1\r\nFrom: <sip:a@b>"
                 b";tag=1\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\n\r\nTo: <sip:x@y>\r\n")
    assert overload.scan(body_only) is None


def test_tag_and_branch():
    assert overload.tag(b"<sip:1002@h>") is None
    assert overload.tag(b"<sip:1002@h;tag=uri>") is None  # a URI parameter, not the To tag
    assert overload.tag(b"<sip:1002@h>;tag=abc") == b"abc"
    assert overload.tag(b'"B" <sip:1002@h> ; TAG=abc;x=1') == b"abc"
    assert overload.tag(b"sip:1002@h;tag=abc") == b"abc"
    assert overload.branch(b"SIP/2.0/UDP a:1;rport;Branch=z9hG4bKq;x") == b"z9hg4bkq"
    assert overload.branch(b"SIP/2.0/UDP a:1;rport") is None
    assert overload.branch(b"SIP/2.0/UDP a:1;rport, SIP/2.0/UDP b;branch=z9hG4bK2") is None
    assert overload.branch(b"SIP/2.0/UDP a;branch=z9hG4bKA ;x") == b"z9hg4bka"
    assert overload.branch(b"SIP/2.0/UDP a;branch=z9hG4bKB,SIP/2.0/UDP b") == b"z9hg4bkb"
    assert overload.branch(b"SIP/2.0/UDP a:1;branch=z9hG4bK1, SIP/2.0/UDP b;branch=z9hG4bK2") \
        == b"z9hg4bk1"
    invite = Phone("1001", "10.0.0.11").invite("1002", "c1")  # one search finds the same
    assert overload.quick_branch(invite) == overload.branch(overload.scan(invite)[0][0])
    assert overload.quick_branch(b"INVITE sip:x SIP/2.0\r\nVia: SIP/2.0/UDP a\r\n") is None


def test_503_is_a_response_the_parser_accepts_with_the_request_headers():
    invite = ALICE.invite("1002", "c1")
    fields = overload.scan(invite)
    data, dest = overload.answer_503(fields, ("192.0.2.7", 40000), 7, b"Switchboard/x")
    assert dest == ("192.0.2.7", 40000)  # the INVITE's Via asked for rport
    r = parse(data)
    req = parse(invite)
    assert (r.status, r.reason) == (503, "Service Unavailable")
    assert r.get("retry-after") == "7"
    assert r.get("content-length") == "0" and r.body == b""
    assert r.get("server") == "Switchboard/x"
    for name in ("from", "call-id", "cseq"):
        assert r.get(name) == req.get(name)
    via = Via(r.first_value("via"))
    assert via.branch() == Via(req.first_value("via")).branch()
    assert via.param("received") == "192.0.2.7" and via.param("rport") == "40000"
    tag = to_tag(r)
    assert tag.startswith("sbov") and r.get("to").startswith(req.get("to"))
    # a retransmission gets the same tag; another call another one
    assert overload.answer_503(overload.scan(invite), SOURCE)[0] \
        .count(b";tag=" + tag.encode()) == 1
    other = overload.answer_503(overload.scan(ALICE.invite("1002", "c2")), SOURCE)[0]
    assert to_tag(parse(other)) != tag
    # a caller that already read the To value says whether it has a tag
    assert overload.answer_503(fields, SOURCE, tagged=False) == overload.answer_503(fields,
                                                                                    SOURCE)
    tagged = overload.answer_503(fields, SOURCE, tagged=True)[0]
    assert b";tag=sbov" not in tagged and parse(tagged).get("to") == req.get("to")


def test_503_keeps_every_via_in_order_and_an_existing_to_tag():
    compact = (b"REGISTER sip:h SIP/2.0\r\nv: SIP/2.0/UDP a:1;branch=z9hG4bKx;received=9.9.9.9"
               b"\r\nv: SIP/2.0/UDP b:2;branch=z9hG4bKy,SIP/2.0/UDP c;branch=z9hG4bKz\r\n"
               b"f: <sip:a@h>;tag=9\r\nt: <sip:a@h>;tag=old\r\ni: abc\r\nCSeq: 2 REGISTER\r\n"
               b"\r\n")
    data, dest = overload.answer_503(overload.scan(compact), ("10.1.1.1", 5062))
    assert dest == ("10.1.1.1", 1)  # no rport: the top Via's sent-by port
    r = parse(data)
    vias = r.values("via")
    assert [Via(v).branch() for v in vias] == ["z9hG4bKx", "z9hG4bKy", "z9hG4bKz"]
    assert Via(vias[0]).param("received") == "10.1.1.1"  # replaced, not repeated
    assert vias[0].count("received") == 1 and "rport" not in vias[0]
    assert to_tag(r) == "old" and r.get("call-id") == "abc" and r.get("cseq") == "2 REGISTER"


def test_reply_address_follows_rport_else_the_sent_by_port():
    assert overload.reply_address(b"SIP/2.0/UDP a:1;branch=z9hG4bK1;rport", SOURCE) == SOURCE
    assert overload.reply_address(b"SIP/2.0/UDP a:5070;branch=z9hG4bK1", ("9.9.9.9", 1)) \
        == ("9.9.9.9", 5070)
    assert overload.reply_address(b"SIP/2.0/UDP a;branch=z9hG4bK1", ("9.9.9.9", 1)) \
        == ("9.9.9.9", 5060)
    assert overload.reply_address(b"SIP/2.0/UDP [::1]:5071;branch=z9hG4bK1", ("9.9.9.9", 1)) \
        == ("9.9.9.9", 5071)
    assert overload.reply_address(b"SIP/2.0/UDP a:99999;branch=z9hG4bK1", ("9.9.9.9", 1)) \
        == ("9.9.9.9", 5060)
    assert overload.reply_address(b'SIP/2.0/UDP a:5072;x="q;r";RPORT', SOURCE) == SOURCE
    # the same reading stamps the Via (received=, rport= filled in; a quoted value untouched)
    assert overload.stamp_via(b"SIP/2.0/UDP a:5070 ; branch=z9hG4bK1;received=1.1.1.1, "
                              b"SIP/2.0/UDP b", ("9.9.9.9", 7)) \
        == (b"SIP/2.0/UDP a:5070 ; branch=z9hG4bK1;received=9.9.9.9, SIP/2.0/UDP b",
            ("9.9.9.9", 5070))
    assert overload.stamp_via(b"SIP/2.0/UDP a;Rport", ("9.9.9.9", 7)) \
        == (b"SIP/2.0/UDP a;rport=7;received=9.9.9.9", ("9.9.9.9", 7))
    quoted = b'SIP/2.0/UDP a;x="1;2"'
    assert overload.stamp_via(quoted, ("9.9.9.9", 7)) == (quoted, ("9.9.9.9", 5060))


def test_share_follows_the_standing_queue_not_a_spike():
    # times in hundredths of a step (STEP_MS): an update every half step
    def at(t):
        return t * STEP_MS // 100

    ov = Overload(high=100, low=20, depth=50)
    assert not ov.update(0, 0, at(0))
    assert not ov.update(150, 0, at(50))
    assert not ov.update(150, 0, at(100))  # 0 was seen in the step
    assert not ov.update(150, 0, at(150))
    assert ov.update(120, 0, at(200))  # the least over a whole step was 120: more than high
    assert ov.share == 25 and ov.episodes == 1
    ov.update(1000, 0, at(250))  # a spike (a collector pause)...
    ov.update(0, 0, at(300))  # ...after which the queue emptied: the share falls by a quarter
    assert ov.share == 18
    ov.update(60, 0, at(350))
    ov.update(60, 0, at(400))  # a standing queue between low and high: the share holds
    assert ov.share == 18
    ov.update(400, 0, at(450))
    ov.update(450, 0, at(500))  # four times high for a whole step: everything new is shed
    assert ov.share == 100
    shares = []
    t = 500
    while ov.shedding and t < 10000:
        t += 100
        ov.update(5, 0, at(t))
        shares.append(ov.share)
    assert shares[:3] == [75, 56, 42]  # a quarter less each step while the loop keeps up
    assert shares == sorted(shares, reverse=True) and shares[-1] == 0 and len(shares) < 30
    assert ov.episodes == 1
    ov.update(0, 50, at(t + 50))  # depth counts as high...
    assert ov.update(0, 50, at(t + 100)) and ov.share == 25 and ov.episodes == 2  # ...throughout


def test_a_share_is_spread_evenly_over_new_requests():
    phone = Phone("1001", "10.0.0.11")
    ov = Overload(free=0)  # (free=0: as if datagrams always waited)
    ov.share, ov.shedding = 50, True
    verdicts = [ov.admit(phone.invite("1002", "s%d" % i), SOURCE) for i in range(100)]
    assert verdicts.count(SHED) == 50 and verdicts.count(PASS) == 50
    assert SHED not in (verdicts[0], verdicts[2], verdicts[4]) or PASS not in verdicts[:3:2]
    assert all(verdicts[i] != verdicts[i + 1] for i in range(99))  # alternating, not bunched
    ov.share = 75
    verdicts = [ov.admit(phone.invite("1002", "t%d" % i), SOURCE) for i in range(100)]
    assert verdicts.count(SHED) == 75


def test_admit_sheds_only_new_work():
    bob = Phone("1002", "10.0.0.12")
    ov = Overload(high=100, low=20, free=0)
    kept = ALICE.invite("1002", "kept")
    assert ov.admit(kept, SOURCE) == PASS  # not shedding: everything passes...
    ov.update(500, 0, 0)
    ov.update(500, 0, 100)
    assert ov.shedding and ov.share == 100
    invite = ALICE.invite("1002", "new")
    assert ov.admit(invite, SOURCE) == SHED
    assert parse(ov.answer).status == 503 and ov.reply_to == SOURCE
    assert ov.admit(ALICE.register(), SOURCE) == SHED
    assert ov.admit(ALICE.request("OPTIONS", "sip:1002@h", "<sip:1002@h>", "o", 1), SOURCE) \
        == SHED
    # ...and while shedding: a retransmission of an INVITE let through is absorbed
    assert ov.admit(kept, SOURCE) == ABSORB
    # the ACK to our 503 is absorbed; any other ACK, CANCEL, in-dialog requests, responses pass
    assert ov.admit(invite, SOURCE) == SHED  # its retransmission: the same answer again
    assert ov.admit(ALICE.ack(invite, ov.answer), SOURCE) == ABSORB
    ok = bob.answer(kept, 200, "OK", sdp=True)
    assert ov.admit(ok, SOURCE) == PASS
    assert ov.admit(ALICE.in_dialog("ACK", ok, 1), SOURCE) == PASS
    assert ov.admit(ALICE.in_dialog("BYE", ok, 2), SOURCE) == PASS
    assert ov.admit(ALICE.cancel(kept), SOURCE) == PASS
    assert ov.admit(bob.answer(kept, 180, "Ringing"), SOURCE) == PASS
    assert ov.admit(b"\r\n\r\n", SOURCE) == PASS  # keepalives and junk: the engine's
    assert ov.admit(b"\x00garbage", SOURCE) == PASS
    # new work whose headers cannot be found gets nothing
    assert ov.admit(b"INVITE sip:x SIP/2.0\r\nTo: <sip:x@y>\r\n\r\n", SOURCE) == DROP
    shed = ov.answer
    ov.share, ov.shedding = 0, False
    assert ov.admit(invite, SOURCE) == PASS
    assert ov.admit(ALICE.ack(invite, shed), SOURCE) == ABSORB  # even after shedding stopped


def test_memory_of_branches_is_bounded():
    ov = Overload(memory=4, free=0)
    invites = [ALICE.invite("1002", "m%d" % i) for i in range(10)]
    for invite in invites:
        assert ov.admit(invite, SOURCE) == PASS
    assert len(ov.seen) == 4
    ov.share, ov.shedding = 100, True
    assert ov.admit(invites[-1], SOURCE) == ABSORB  # remembered
    assert ov.admit(invites[0], SOURCE) == SHED  # forgotten: answered as new


def test_new_work_goes_through_while_the_queue_is_nearly_empty_whatever_the_share():
    ov = Overload(high=100, low=20, free=4)
    ov.update(500, 10, 0)
    ov.update(500, 10, 100)
    assert ov.shedding and ov.share == 100
    invites = [ALICE.invite("1002", "f%d" % i) for i in range(8)]
    verdicts = []
    for waiting, invite in enumerate(invites):  # each one let through waits in the queue
        ov.update(500, waiting, 100)
        verdicts.append(ov.admit(invite, SOURCE))
    assert verdicts == [PASS] * 4 + [SHED] * 4
    assert ov.share == 100 and ov.admit(invites[0], SOURCE) == ABSORB  # remembered
    ov.update(500, 0, 100)  # the loop ran dry: the next new request goes through again
    assert ov.admit(ALICE.register(), SOURCE) == PASS


def _request(to_line, extra=b"", method=b"INVITE"):
    return (method + b" sip:1002@h SIP/2.0\r\nVia: SIP/2.0/UDP a:1;branch=z9hG4bKq1\r\n"
            b"From: <sip:1001@h>;tag=f1\r\n" + to_line + b"\r\n" + extra +
            b"Call-ID: q1\r\nCSeq: 1 " + method + b"\r\nContent-Length: 0\r\n\r\n")


def test_plainly_untagged_says_new_work_only_when_scan_would_find_no_to_tag():
    names = (b"To:", b"TO:", b"to: ", b"To :", b"t:", b"T: ", b"tO:")
    values = (b"<sip:1002@h>", b"sip:1002@h", b"<sip:1002@h>;tag=b7", b"<sip:1002@h>;TAG=b7",
              b"<sip:1002@h;tag=uri>", b"\"tagger\" <sip:tagger@h>", b"<sip:1002@h> ; tag = 9")
    plain = 0
    for name in names:
        for value in values:
            for extra, folded in ((b"", False), (b"To: <sip:x@h>\r\n", False),
                                  (b"t: <sip:x@h>;tag=2\r\n", False), (b"", True)):
                line = name + value
                if folded:  # the value's end on a continuation line
                    line = name + value[:4] + b"\r\n " + value[4:]
                data = _request(line, extra)
                fields = overload.scan(data)
                untagged = fields is not None and overload.tag(fields[2]) is None
                if overload.plainly_untagged(data):
                    plain += 1
                    assert untagged, data  # never new work when scan() finds a To tag
    # and the plain cases are told without scan(): "To:" in any case (To:, TO:, to:, tO:),
    # one To, one line, no "tag" anywhere in it (<sip:1002@h> and sip:1002@h): 4 x 2
    assert plain == 8
    assert overload.plainly_untagged(_request(b"To: <sip:1002@h>"))
    assert overload.plainly_untagged(_request(b"TO: sip:1002@h"))
    assert not overload.plainly_untagged(_request(b"To: <sip:1002@h>").replace(b"\r\n", b"\n"))
    assert not overload.plainly_untagged(b"INVITE sip:x SIP/2.0\r\nTo: <sip:x@h>\r\n")
    # the To line last, ended by a bare LF just before the empty line: nothing after it
    last = (b"INVITE sip:1002@h SIP/2.0\r\nVia: SIP/2.0/UDP a:1;branch=z9hG4bKq2\r\n"
            b"From: <sip:1001@h>;tag=f1\r\nCall-ID: q2\r\nCSeq: 1 INVITE\r\n"
            b"To: <sip:1002@h>\n\r\n\r\n")
    assert overload.plainly_untagged(last)
    assert not overload.plainly_untagged(last.replace(b">\n", b">;tag=9\n"))
    ov = Overload(free=0)
    ov.share, ov.shedding = 50, True
    assert [ov.admit(last, SOURCE), ov.admit(last.replace(b"q2", b"q3"), SOURCE)] == [PASS, SHED]


def test_bye_is_always_served_even_without_a_to_tag():
    ov = Overload(free=0)
    ov.share, ov.shedding = 100, True
    assert ov.admit(_request(b"To: <sip:1002@h>", method=b"BYE"), SOURCE) == PASS
    assert ov.admit(_request(b"To: <sip:1002@h>"), SOURCE) == SHED


def test_turns_of_the_share_go_to_new_work_only_however_it_is_written():
    """While shedding half: every other new request is refused, whether it is told new from
    its plain To line or after a scan (compact name), and in-dialog requests between them
    (a re-INVITE, an INFO) pass without taking a turn."""
    bob = Phone("1002", "10.0.0.12")
    kept = ALICE.invite("1002", "d1")
    ok = bob.answer(kept, 200, "OK", sdp=True)
    ov = Overload(free=0)
    ov.share, ov.shedding = 50, True
    verdicts = []
    for i in range(40):
        new = ALICE.invite("1002", "n%d" % i)
        if i % 3 == 1:  # the To line written compact: scan() decides
            new = new.replace(b"\r\nTo: ", b"\r\nt: ")
        verdicts.append(ov.admit(new, SOURCE))
        assert ov.admit(ALICE.in_dialog("INVITE", ok, 2 * i + 2), SOURCE) == PASS
        assert ov.admit(ALICE.in_dialog("INFO", ok, 2 * i + 3), SOURCE) == PASS
    assert verdicts == [PASS, SHED] * 20


def test_a_retransmission_let_through_is_absorbed_however_its_branch_is_written():
    """An INVITE let through while shedding is remembered by its branch, also when the
    parameter's name is in capitals (read by scan() then), so that its retransmission is
    absorbed and not refused."""
    ov = Overload(free=0)
    ov.share, ov.shedding = 50, True
    loud = ALICE.invite("1002", "u1").replace(b";branch=", b";BRANCH=")
    assert ov.admit(loud, SOURCE) == PASS  # the share's turn: let through, remembered
    assert ov.admit(ALICE.invite("1002", "u2"), SOURCE) == SHED
    ov.share = 100
    assert ov.admit(loud, SOURCE) == ABSORB


def test_missing_lines_are_dropped_only_where_they_are_read():
    """Let through on its plain To line, a request without a Call-ID goes to the engine
    (which answers it); one whose To is written compact is scanned, and dropped; refused,
    it is dropped too (there is nothing to build the 503 from)."""
    no_call_id = _request(b"To: <sip:1002@h>").replace(b"Call-ID: q1\r\n", b"")
    ov = Overload(free=0)
    ov.share, ov.shedding = 50, True
    assert ov.admit(no_call_id, SOURCE) == PASS  # the share's turn is not a refusal
    assert ov.admit(no_call_id, SOURCE) == DROP  # it is: the 503 needs the Call-ID
    compact = no_call_id.replace(b"\r\nTo: ", b"\r\nt: ")
    assert ov.admit(compact, SOURCE) == DROP  # a pass turn, but scanned to tell it new
