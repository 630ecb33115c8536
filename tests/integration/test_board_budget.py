"""Heap budgets of the board (issue 13), measured on the 32-bit MicroPython VM the tests use
(gc.mem_alloc() after a collection; tests/w5500/budget.py, bench/vm_board_probe.py).

- What the reference board (W5500-EVB-Pico, RP2040) imports by default must stay within
  125 KB of live heap. With the dashboard that is impossible (adafruit_httpserver alone is
  over 60 KB: bench/vm_board.py prints the floor), so the RP2040 profile's default is SIP and
  digest without the dashboard, and that default is what is checked here; the full set is
  checked against the RP2350 profile's budget.
- The simulated load (32 phones with digest, re-registering every 60 s, 8 calls a second
  for 10 minutes, every lingering transaction kept) must peak within 150 KB and not grow
  (more than 1 KB) from the second minute to the last.
- The import lists measured here are the modules a running board really has loaded.
"""

import os
import sys
import tempfile

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "w5500"))

import budget  # noqa: E402
from harness import ROOT, Board  # noqa: E402

sys.path.insert(0, os.path.join(ROOT, "lib"))

from switchboard import profiles  # noqa: E402


@pytest.fixture(scope="module")
def lib():
    with tempfile.TemporaryDirectory(prefix="budget-") as work:
        yield budget.make_lib(work)


def feature_set(label):
    return dict(budget.FEATURE_SETS)[label]


def test_reference_board_default_imports_within_125_kb(lib):
    table, heap_kb, _ = profiles.defaults("wiznet_w5500_evb_pico", {}.get)
    assert table["HTTP_PORT"] == 0  # the default that fits: SIP and digest
    total, steps, modules = budget.measure_imports(lib, feature_set("SIP + digest"))
    assert total <= budget.IMPORT_BUDGET, "board imports %d B > %d B: %s" % (
        total, budget.IMPORT_BUDGET, steps)
    # what the settings leave out is not there
    assert "adafruit_httpserver" not in modules and "adafruit_hashlib" not in modules
    assert "switchboard.boot" not in modules and "switchboard.profiles" not in modules
    assert "_md5" in modules  # MD5 from adafruit_hashlib's one module, not the package
    # the profile's import figures are not below what was measured
    assert total <= (profiles.IMPORTS["base"] + profiles.IMPORTS["digest"]) * 1024


def test_full_feature_set_fits_the_boards_that_get_it_by_default(lib):
    full = budget.measure_imports(lib, feature_set("SIP + digest + dashboard"))[0]
    assert full > budget.IMPORT_BUDGET  # why the RP2040 leaves the dashboard out
    assert full <= sum(profiles.IMPORTS.values()) * 1024
    sip = budget.measure_imports(lib, feature_set("SIP"))[0]
    assert sip <= profiles.IMPORTS["base"] * 1024
    for board_id in ("wiznet_w5500_evb_pico2", "waveshare_esp32_s3_eth"):
        table, heap_kb, _ = profiles.defaults(board_id, {}.get)
        assert table["HTTP_PORT"] == 80
        tables = sum(table[profiles.SETTINGS[name]] * profiles.COSTS[name]
                     for name in profiles.COSTS)
        assert full + tables <= heap_kb * 1024, board_id


def board_modules(settings, tmp_path):
    # a board has microcontroller.nvm, so it keeps its registrations there (STATE_NVM)
    with Board(settings, stub={"nvm": str(tmp_path / "nvm")}) as board:
        board.wait_for("Switchboard ready")
        return set(board.control("modules"))


def vm_modules(lib, label):
    names = budget.measure_imports(lib, feature_set(label))[2]
    return set(n for n in names if n.startswith(("switchboard", "adafruit_", "_md5", "_sha")))


def comparable(names):
    # CPython has md5 and sha256 built in (the VM and CircuitPython load _md5); the runner
    # itself imports the socket pool to patch its OSError
    return set(n for n in names if not n.startswith(("_md5", "_sha")) and n != (
        "adafruit_wiznet5k.adafruit_wiznet5k_socketpool"))


def test_measured_imports_are_what_a_running_board_loads(lib, tmp_path):
    full = board_modules({"SIP_USERS": "1001:pw"}, tmp_path)  # the harness sets HTTP_PORT
    assert comparable(full) == comparable(vm_modules(lib, "SIP + digest + dashboard"))
    bare = board_modules({"SIP_AUTH": "off", "HTTP_PORT": "0"}, tmp_path)
    assert comparable(bare) == comparable(vm_modules(lib, "SIP"))
    assert not [n for n in bare if n.startswith(("adafruit_httpserver", "switchboard.auth",
                                                 "switchboard.digest", "switchboard.http",
                                                 "adafruit_hashlib"))], bare


def test_simulated_load_peak_within_150_kb_and_flat(lib):
    got = budget.measure_load(lib)
    counts = got["counts"]
    report = "%r" % got
    minutes = budget.LOAD["minutes"]
    calls = counts["calls"]
    assert calls >= (minutes * 60 - 6) * budget.LOAD["calls_per_s"], report
    assert counts["answered"] == calls and counts["call_failed"] == 0, report
    assert counts["ended"] >= calls - 2 * budget.LOAD["calls_per_s"], report  # last BYEs
    assert counts["reg_failed"] == 0 and counts["other"] == 0, report
    assert counts["registered"] >= budget.LOAD["phones"] * minutes, report
    assert len(got["minutes"]) == minutes
    assert got["peak"] <= budget.LOAD_BUDGET, "peak %d B > %d B: %s" % (
        got["peak"], budget.LOAD_BUDGET, report)
    # growth: the second minute against the last (the first holds the start: every phone
    # registering, the first calls, no re-registration lingering yet)
    first, last = got["minutes"][1][0], got["minutes"][-1][0]
    assert last <= first + 1024, "grew from %d B to %d B: %s" % (first, last, report)


def test_load_uses_the_reference_boards_defaults_beyond_its_table_sizes():
    table = profiles.defaults("wiznet_w5500_evb_pico", {}.get)[0]
    for name in ("CALL_HISTORY", "QUALIFY_INTERVAL", "OVERLOAD"):
        assert budget.LOAD["settings"][name] == table[name], name


def test_reference_board_under_that_load_stays_within_150_kb(lib):
    """The same load against the W5500-EVB-Pico's default limits: what does not fit the
    tables is refused with an answer (503, 403), never by running out of heap; the whole
    program (the board's imports, the engine, its tables) peaks within 150 KB."""
    got = budget.measure_load(lib, budget.profile_load("wiznet_w5500_evb_pico", 2))
    counts = got["counts"]
    assert got["peak"] <= budget.LOAD_BUDGET, "peak %d B: %r" % (got["peak"], got)
    assert got["imports"] <= budget.IMPORT_BUDGET, got
    assert counts["unanswered"] == 0 and counts["other"] == 0, got
    assert counts["answered"] > 100 and counts["registered"] > 32, got
    assert got["tables"]["bindings"][0] == got["tables"]["bindings"][1], got  # full, held
