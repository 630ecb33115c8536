"""The board path keeps registrations and DND in microcontroller.nvm: code.py's board_main()
on the W5500 model, run twice over the same nvm (a file behind the microcontroller stand-in,
tests/w5500/stubs), with SIPp phones. The second run answers calls to a phone that registered
with the first, without the phone registering again."""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "w5500"))

from harness import Board  # noqa: E402
from sipp_helpers import Phone, expect_scenario  # noqa: E402

SETTINGS = {"SIP_USERS": "2001,2002,2003", "INTERCOM": "2002", "LOG_LEVEL": "info"}


def evidence(board, *results):
    return "\n".join(r.report() for r in results) + "\n=== board output:\n" + board.output()


def writes(nvm):
    try:
        with open(nvm + ".writes") as f:
            return len(f.readlines())
    except FileNotFoundError:
        return 0


def test_registrations_and_dnd_survive_a_restart_in_nvm(tmp_path):
    work = str(tmp_path)
    nvm = str(tmp_path / "nvm.bin")
    phones = []
    with Board(SETTINGS, stub={"nvm": nvm}) as board:
        assert "Clock: exact ms, a new epoch every 3 days" in board.output()  # the dialplan too
        server = (board.ip, 5060)
        a = Phone(server, "2001", "127.0.0.101", work)
        b = Phone(server, "2002", "127.0.0.102", work)
        phones += [a, b]
        for p in (a, b):
            result = p.register()
            assert result.ok, evidence(board, result)
        result = a.call("*78", expect_scenario(480, work))
        assert result.ok, evidence(board, result)
        board.wait_for("state: saved 2 registrations and 1 user settings to nvm", timeout=15)
        assert writes(nvm) == 1
        result = b.register()  # a refresh: same contact, nothing to write
        assert result.ok, evidence(board, result)
        board.read_available(4.5)
        assert writes(nvm) == 1, board.output()
    with Board(SETTINGS, stub={"nvm": nvm}) as board:
        board.wait_for("state: restored 2 registrations and 1 user settings from nvm",
                       timeout=5)
        server = (board.ip, 5060)
        for p in phones:
            p.server = server
        c = Phone(server, "2003", "127.0.0.103", work)
        phones.append(c)
        try:
            result = c.register()
            assert result.ok, evidence(board, result)
            answering = phones[1].answer()
            made = c.call("2002")
            answered = answering.wait(None if made.ok else 1.0)
            assert made.ok and answered.ok, evidence(board, made, answered)
            busy = c.call("2001", expect_scenario(486, work))
            assert busy.ok, evidence(board, busy)  # DND came back too
        finally:
            for p in phones:
                p.stop()


def test_a_foreign_record_in_nvm_is_ignored_with_a_console_line(tmp_path):
    nvm = str(tmp_path / "nvm.bin")
    with open(nvm, "wb") as f:
        f.write(b"settings of another program" + b"\x00" * 100)
    with Board(SETTINGS, stub={"nvm": nvm}) as board:
        board.wait_for("state: nvm holds no usable record (not a Switchboard record); "
                       "starting empty", timeout=5)
        assert writes(nvm) == 0
