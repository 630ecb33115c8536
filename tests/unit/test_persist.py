"""State that survives a restart (lib/switchboard/persist.py): the record, the stores and
when the Saver writes."""

import os

import pytest

from switchboard.dialplan import Dialplan
from switchboard.location import Binding, Location
from switchboard.persist import (
    MAGIC,
    FileStore,
    NvmStore,
    Saver,
    adler32,
    decode,
    encode,
)

USERS = {"1001": "", "1002": "", "1003": ""}


class Lines:
    def __init__(self):
        self.lines = []

    def __call__(self, level, text):
        self.lines.append((level, text))

    def text(self):
        return "\n".join(t for _, t in self.lines)


class CountingNvm(bytearray):
    """microcontroller.nvm stand-in: fixed size, counts slice writes (flash erases)."""

    def __init__(self, size=4096):
        bytearray.__init__(self, b"\xff" * size)
        self.writes = 0

    def __setitem__(self, index, value):
        if isinstance(index, slice):
            assert len(self[index]) == len(value), "nvm cannot change size"
            self.writes += 1
        bytearray.__setitem__(self, index, value)


def binding(uri, source, expires_at, instance="", q=1000, user_agent="phone"):
    return Binding(uri, source, expires_at, "cid@x", 7, 0, user_agent, instance, q)


def location_with(*entries):
    loc = Location(64, 4)
    for user, b in entries:
        assert loc.add(user, b)
    return loc


def test_adler32_matches_zlib():
    import zlib

    for data in (b"", b"a", b"Wikipedia", bytes(range(256)) * 20):
        assert adler32(data) == zlib.adler32(data).to_bytes(4, "big")


def test_encode_decode_round_trip():
    b1 = binding("sip:1001@10.0.0.1:5060", ("10.0.0.1", 5062), 3600000,
                 '"<urn:uuid:0001>"', 500)
    b2 = binding("sip:1002-x@10.0.0.2;transport=udp", ("10.0.0.2", 5060), 61500)
    rows = {"1001": [True, None, "1002", None], "600": [False, None, None, "1003"]}
    data, dropped = encode([("1001", b1), ("1002", b2)], rows, 1500, 4096)
    assert dropped == 0 and data[:2] == MAGIC and len(data) < 300
    bindings, got_rows = decode(data + b"\xff" * 50)  # what follows the record is ignored
    assert bindings == [
        ("1001", "10.0.0.1", 5062, 3598, 500, "sip:1001@10.0.0.1:5060", '"<urn:uuid:0001>"'),
        ("1002", "10.0.0.2", 5060, 60, 1000, "sip:1002-x@10.0.0.2;transport=udp", ""),
    ]
    assert got_rows == rows


def test_expired_bindings_are_not_written():
    data, _ = encode([("1001", binding("sip:1001@h", ("1.2.3.4", 1), 999))], {}, 1000, 4096)
    assert decode(data) == ([], {})


def test_what_does_not_fit_is_left_out_settings_first():
    bs = [("1001", binding("sip:1001-%02d@10.0.0.1:5060" % i, ("10.0.0.1", 5060 + i), 10 ** 6))
          for i in range(60)]
    rows = {"1001": [True, "1002", None, None]}
    data, dropped = encode(bs, rows, 0, 1024)
    assert len(data) <= 1024 and dropped > 0
    bindings, got = decode(data)
    assert got == rows and len(bindings) == 60 - dropped


@pytest.mark.parametrize("data", [b"", b"\xff" * 4096, b"\x00" * 4096])
def test_empty_store_is_no_record(data):
    assert decode(data) is None


@pytest.mark.parametrize("mangle, reason", [
    (lambda d: b"XX" + d[2:], "not a Switchboard record"),
    (lambda d: b"{\"json\": 1}", "not a Switchboard record"),
    (lambda d: d[:2] + b"\x09" + d[3:], "record version 9"),
    (lambda d: d[:20] + bytes([d[20] ^ 1]) + d[21:], "checksum mismatch"),
    (lambda d: d[:-3], "record cut short"),
])
def test_corrupt_or_foreign_record_is_refused_with_a_reason(mangle, reason):
    data, _ = encode([("1001", binding("sip:1001@h", ("1.2.3.4", 1), 10 ** 6))],
                     {"1001": [True, None, None, None]}, 0, 4096)
    with pytest.raises(ValueError, match=reason):
        decode(mangle(data))


def test_nvm_store_reads_only_the_record():
    nvm = CountingNvm()
    store = NvmStore(nvm)
    assert store.size == 4096 and decode(store.read()) is None
    data, _ = encode([], {"1001": [True, None, None, None]}, 0, store.size)
    store.write(data)
    assert nvm.writes == 1 and store.read() == data


def test_file_store_writes_atomically_through_a_temporary_file(tmp_path):
    path = str(tmp_path / "state.sb")
    calls = []

    def replace(a, b):
        calls.append((a, b))
        assert open(a, "rb").read() == b"new"  # whole before it takes the name
        os.replace(a, b)

    store = FileStore(path, open, replace)
    assert store.read() == b""
    with open(path, "wb") as f:
        f.write(b"old")
    store.write(b"new")
    assert calls == [(path + ".tmp", path)] and open(path, "rb").read() == b"new"
    assert not os.path.exists(path + ".tmp")


def test_file_store_unreadable_path_reads_empty(tmp_path):
    assert FileStore(str(tmp_path), open, os.replace).read() == b""  # a directory


# the saver -----------------------------------------------------------------------------
def saver_on(nvm, loc=None, dp=None, log=None, **kw):
    return Saver(NvmStore(nvm), loc or Location(64, 4), dp, log or Lines(), **kw)


def test_saver_writes_on_a_contact_change_not_on_a_refresh():
    nvm = CountingNvm()
    loc = Location(64, 4)
    s = saver_on(nvm, loc, settle_ms=0)
    s.restore(0)
    s.poll(0)
    assert nvm.writes == 0  # nothing changed
    b = binding("sip:1001@10.0.0.1", ("10.0.0.1", 5060), 3600000)
    loc.add("1001", b)
    s.poll(2000)
    assert nvm.writes == 1
    b.expires_at = 7200000  # a refresh: only the expiry moves
    b.cseq += 1
    b.user_agent = "other"
    s.poll(4000)
    assert nvm.writes == 1
    b.source = ("10.0.0.1", 5099)  # the phone came back from a new port
    s.poll(6000)
    assert nvm.writes == 2
    loc.remove("1001", b)  # unregistered (or expired)
    s.poll(8000)
    assert nvm.writes == 3 and decode(bytes(nvm)) == ([], {})


def test_saver_checks_at_most_every_two_seconds_and_waits_for_the_change_to_settle():
    nvm = CountingNvm()
    loc = Location(64, 4)
    s = saver_on(nvm, loc, settle_ms=5000)
    s.restore(0)
    loc.add("1001", binding("sip:1001@a", ("10.0.0.1", 5060), 10 ** 7))
    s.poll(2000)  # change seen
    loc.add("1002", binding("sip:1002@a", ("10.0.0.2", 5060), 10 ** 7))
    s.poll(3000)  # too early to check again
    s.poll(4000)
    s.poll(6000)
    assert nvm.writes == 0
    s.poll(8000)
    assert nvm.writes == 1  # both phones in one write
    assert len(decode(bytes(nvm))[0]) == 2


def test_saver_times_move_with_the_clocks_epoch():
    # the board clock restarts its epoch (2**28 ms back) while a change settles and while
    # the write budget refills: both still count from before the shift
    nvm = CountingNvm()
    loc = Location(64, 4)
    s = saver_on(nvm, loc, settle_ms=5000, budget=1, refill_ms=60000)
    s.restore(0)
    loc.add("1001", binding("sip:1001@a", ("10.0.0.1", 5060), 10 ** 7))
    s.poll(2000)
    s.poll(8000)
    assert nvm.writes == 1  # the budget's one write, at 8 s
    loc.add("1002", binding("sip:1002@a", ("10.0.0.2", 5060), 10 ** 7))
    s.poll(10000)  # change seen
    shift = 1 << 28
    s.shift_times(shift)
    s.poll(14000 - shift)
    assert s.dirty_since == 10000 - shift  # settling since 10 s
    s.poll(66000 - shift)
    assert nvm.writes == 1  # the budget refills a minute after the first write...
    s.poll(68000 - shift)
    assert nvm.writes == 2  # ...at 68 s, counted across the epoch


def test_write_budget_protects_the_flash():
    nvm = CountingNvm()
    loc = Location(64, 4)
    log = Lines()
    s = saver_on(nvm, loc, log=log, settle_ms=0, budget=3, refill_ms=60000)
    s.restore(0)
    now = 0
    for i in range(6):
        now += 2000
        loc.add("1001", binding("sip:1001-%d@a" % i, ("10.0.0.1", 5060 + i), 10 ** 8))
        if len(loc.table["1001"]) > 3:
            loc.remove("1001", loc.table["1001"][0])
        s.poll(now)
    assert nvm.writes == 3
    assert sum("write budget used up" in t for _, t in log.lines) == 1  # said once
    s.poll(now + 30000)
    assert nvm.writes == 3
    s.poll(2000 + 60000)  # one token back a refill period after the first write
    assert nvm.writes == 4
    assert len(decode(bytes(nvm))[0]) == 3  # the latest state


def test_restore_after_a_restart_puts_bindings_and_settings_back():
    nvm = CountingNvm()
    env = {"DND": "1003", "FORWARD_BUSY": "1001=1002"}.get
    loc = Location(64, 4)
    dp = Dialplan(env, USERS)
    s = saver_on(nvm, loc, dp, settle_ms=0)
    s.restore(0)
    loc.add("1001", binding("sip:1001@10.0.0.1:5060", ("10.0.0.1", 5062), 3600000,
                            '"<urn:uuid:1>"', 700))
    dp.feature("*78", "1001")
    dp.feature("*79", "1003")  # cleared against the DND setting
    s.poll(10000)
    assert nvm.writes == 1
    # the restart: new objects, the clock starts again
    loc2 = Location(64, 4)
    dp2 = Dialplan(env, USERS)
    log = Lines()
    s2 = saver_on(nvm, loc2, dp2, log)
    assert s2.restore(500) == 1
    b = loc2.lookup("1001", 500)[0]
    assert (b.uri, b.source, b.instance, b.q) == ("sip:1001@10.0.0.1:5060", ("10.0.0.1", 5062),
                                                 '"<urn:uuid:1>"', 700)
    assert b.expires_at == 500 + 3590 * 1000
    assert dp2.view()["1001"]["dnd"] is True and dp2.view()["1003"]["dnd"] is False
    assert dp2.view()["1001"]["busy"] == "1002"
    assert "restored 1 registrations and 2 user settings from nvm" in log.text()
    s2.poll(3000)
    assert nvm.writes == 1  # restoring is not a change


@pytest.mark.parametrize("content, says", [
    (b"XXgarbage" + b"\xff" * 100, "not a Switchboard record"),
    (None, "checksum mismatch"),
])
def test_corrupt_nvm_is_ignored_with_a_console_line(content, says):
    nvm = CountingNvm()
    if content is None:
        data, _ = encode([("1001", binding("sip:1001@h", ("1.2.3.4", 1), 10 ** 6))], {}, 0, 4096)
        content = data[:-1] + bytes([data[-1] ^ 0xFF])
    nvm[0:len(content)] = content
    log = Lines()
    loc = Location(64, 4)
    assert saver_on(nvm, loc, log=log).restore(0) == 0
    assert loc.count == 0
    assert ("warning", "state: nvm holds no usable record (%s); starting empty" % says) \
        in log.lines


def test_settings_for_names_that_went_away_are_reported():
    nvm = CountingNvm()
    data, _ = encode([], {"1001": [True, None, None, None], "1009": [True, None, None, None]},
                     0, 4096)
    nvm[0:len(data)] = data
    log = Lines()
    dp = Dialplan({"DND": "1002"}.get, USERS)
    saver_on(nvm, None, dp, log).restore(0)
    assert dp.view()["1001"]["dnd"] is True and "1009" not in dp.view()
    assert "state: settings of 1009 ignored" in log.text()


def test_write_failure_is_a_console_line_not_a_crash():
    class Broken:
        name = "nvm"
        size = 4096

        def read(self):
            return b""

        def write(self, data):
            raise OSError(5, "EIO")

    loc = Location(64, 4)
    log = Lines()
    s = Saver(Broken(), loc, None, log, settle_ms=0)
    s.restore(0)
    loc.add("1001", binding("sip:1001@a", ("10.0.0.1", 5060), 10 ** 7))
    s.poll(0)
    assert s.failures == 1 and "state: cannot write nvm" in log.text()


def test_flush_writes_a_settling_change_at_a_clean_stop():
    nvm = CountingNvm()
    loc = Location(64, 4)
    log = Lines()
    s = saver_on(nvm, loc, log=log, settle_ms=60000)
    s.restore(0)
    assert s.flush(10) is False and nvm.writes == 0  # nothing changed
    loc.add("1001", binding("sip:1001@a", ("10.0.0.1", 5060), 10 ** 7))
    s.poll(2000)
    assert nvm.writes == 0  # still settling
    assert s.flush(3000) is True and nvm.writes == 1
    assert "state: saved 1 registrations and 0 user settings to nvm" in log.text()
    assert s.flush(4000) is False and nvm.writes == 1
