"""The PBX modules (dialplan, persist) behave the same under the MicroPython VM (32-bit, dicts
not insertion-ordered) as under CPython: tests/pbx_flows.py gives the same transcript."""

import os

from mpyvm import run_micropython

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_pbx_flows_same_under_micropython(tmp_path):
    import pbx_flows

    lines = []
    pbx_flows.run(lines.append)
    expected = "\n".join(lines) + "\n"
    script = tmp_path / "run_pbx_flows.py"
    with open(os.path.join(ROOT, "tests", "pbx_flows.py")) as f:
        script.write_text(f.read().replace('if __name__ == "__main__":', "if True:"))
    got = run_micropython(str(script))
    # the transcript covers what it should: a hunt, a loop-free busy chain, intercom, codes,
    # a record written and restored, a corrupt record refused
    for text in ("after 486: ring sip:1001", "Call-Info: <sip:10.0.0.99:5060>;answer-after=0",
                 "403 Intercom Not Allowed", "(480, 'Do Not Disturb On')",
                 "restored 5 registrations and 5 user settings",
                 "same settings after restore: True",
                 "(checksum mismatch); starting empty"):
        assert text in expected, text
    assert got == expected
