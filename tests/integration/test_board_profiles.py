"""Board profiles: board_main() finds the W5500 on each supported board (the model is wired
to the pins the real board uses, so a wrong pin means no chip), settings override pins,
and an unknown board gets a clear message."""

import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "w5500"))

from harness import ROOT, Board  # noqa: E402

sys.path.insert(0, os.path.join(ROOT, "lib"))

from switchboard import profiles  # noqa: E402


def test_board_defaults_and_pin_settings():
    get = profiles.board_getenv({}.get, "wiznet_w5500_evb_pico")
    assert get("HTTP_PORT") == 0 and get("SIP_PORT") is None  # RP2040: no room for it
    assert profiles.board_getenv({}.get, "wiznet_w5500_evb_pico2")("HTTP_PORT") == 80
    assert get("MAX_MESSAGE_SIZE") == 1472
    assert profiles.board_getenv({"HTTP_PORT": "8080"}.get)("HTTP_PORT") == "8080"
    assert profiles.board_profile("wiznet_w5500_evb_pico", {}.get) == (
        "busio", ["W5K_SCK|GP18", "W5K_MOSI|GP19", "W5K_MISO|GP16", "W5K_CS|GP17",
                  "W5K_RST|GP20"])
    assert profiles.board_profile("adafruit_feather_esp32s3", {"W5500_CS": "D5"}.get) == (
        "board", ["SCK", "MOSI", "MISO", "D5", ""])
    kind, names = profiles.board_profile("adafruit_feather_rp2040", {"SPI_SCK": "GP2"}.get)
    assert kind == "busio" and names[0] == "GP2"
    with pytest.raises(ValueError, match="SPI_SCK, SPI_MOSI, SPI_MISO"):
        profiles.board_profile("raspberry_pi_pico", {}.get)


def test_table_limits_follow_the_heap_budget():
    pico = profiles.board_getenv({}.get, "wiznet_w5500_evb_pico")
    pico2 = profiles.board_getenv({}.get, "wiznet_w5500_evb_pico2")
    esp = profiles.board_getenv({}.get, "waveshare_esp32_s3_eth")
    for name in ("MAX_BINDINGS", "MAX_TRANSACTIONS", "MAX_CALLS", "CALL_HISTORY", "MAX_SOURCES"):
        assert 0 <= pico(name) < pico2(name) < esp(name), name
    # what each profile's tables may take, at the measured bytes per entry, fits its budget
    for board_id in profiles.BOARDS:
        table, heap_kb, _ = profiles.defaults(board_id, {}.get)
        used = profiles.IMPORTS["base"] + profiles.IMPORTS["digest"] + profiles.WORKING_KB
        if table["HTTP_PORT"]:
            used += profiles.IMPORTS["dashboard"]
        tables = sum(table[profiles.SETTINGS[n]] * profiles.COSTS[n] for n in profiles.COSTS)
        assert used * 1024 + tables <= heap_kb * 1024, board_id
    # a setting wins over the profile
    assert profiles.board_getenv({"MAX_BINDINGS": "7"}.get)("MAX_BINDINGS") == "7"
    # the dashboard's heap comes out of the tables when it is turned on
    with_web = profiles.board_getenv({"HTTP_PORT": "80"}.get, "wiznet_w5500_evb_pico2")
    without = profiles.board_getenv({"HTTP_PORT": "0"}.get, "wiznet_w5500_evb_pico2")
    assert with_web("MAX_TRANSACTIONS") < without("MAX_TRANSACTIONS")
    # and so does digest's hash library
    off = profiles.board_getenv({"SIP_AUTH": "off"}.get, "wiznet_w5500_evb_pico")
    assert off("MAX_TRANSACTIONS") > pico("MAX_TRANSACTIONS")


def test_start_prints_profile_and_limits_and_status_shows_them():
    with Board(board_id="wiznet_w5500_evb_pico") as board:  # the harness sets HTTP_PORT
        out = board.output()
        limits = board.api("/api/status")["limits"]
        line = [x for x in out.splitlines() if x.startswith("Profile: ")]
        assert line, out
        expected = profiles.board_getenv({"HTTP_PORT": "8080"}.get, "wiznet_w5500_evb_pico")
        assert limits["bindings"] == expected("MAX_BINDINGS")
        assert limits["transactions"] == expected("MAX_TRANSACTIONS")
        assert ("%d bindings, %d transactions, %d calls, %d history, %d sources"
                % (limits["bindings"], limits["transactions"], limits["calls"],
                   limits["history"], limits["sources"])) in line[0]
        assert "RP2040, heap budget 150 KB" in line[0]
        # every part that stores times can move them (engine, nvm saver): epochs are on
        assert "Clock: exact ms, a new epoch every 3 days" in out, out


@pytest.mark.parametrize("board_id, settings, wiring", [
    ("wiznet_w5500_evb_pico2", {}, None),
    ("wiznet_w55rp20_evb_pico", {}, None),
    ("waveshare_esp32_s3_eth", {}, None),
    ("adafruit_feather_rp2040", {}, None),
    ("adafruit_feather_rp2040", {"W5500_CS": "D5"}, {"sck": "GPIO18", "cs": "GPIO7"}),
    ("raspberry_pi_pico", {"SPI_SCK": "GP10", "SPI_MOSI": "GP11", "SPI_MISO": "GP12",
                           "W5500_CS": "GP13", "W5500_RST": "GP14"},
     {"sck": "GPIO10", "cs": "GPIO13", "rst": "GPIO14"}),
    ("wiznet_w5500_evb_pico", {"W5500_RST": "none"}, None),  # no reset pin wired
])
def test_board_comes_up(board_id, settings, wiring):
    with Board(settings, board_id=board_id, wiring=wiring) as board:
        out = board.output()
        assert "on %s" % board_id in out
        assert "Network: dhcp %s/" % board.ip in out
        assert board.api("/api/status")["network"]["chip"] == "w5500"


def test_sip_host_on_a_board_does_not_pin_the_address():
    """SIP_HOST is a host-mode setting: on a board Via and Record-Route follow the chip."""
    with Board({"SIP_HOST": "10.9.9.9"}) as board:
        assert board.api("/api/status")["sip"] == "%s:5060" % board.ip


def test_unknown_board_without_pins_says_what_to_set():
    board = Board(board_id="raspberry_pi_pico", ready=None)
    try:
        assert board.proc.wait(timeout=30) == 1
        out = board.output()
        assert "Ethernet: cannot reach the W5500: board raspberry_pi_pico is not one" in out
        assert "SPI_SCK" in out
    finally:
        board.stop()


def test_no_chip_on_the_pins_is_reported():
    # the chip sits on GPIO5 but the settings name GP13: nothing answers on the bus
    settings = {"SPI_SCK": "GP10", "SPI_MOSI": "GP11", "SPI_MISO": "GP12", "W5500_CS": "GP13"}
    board = Board(settings, board_id="raspberry_pi_pico", ready=None,
                  wiring={"sck": "GPIO10", "cs": "GPIO5"})
    try:
        assert board.proc.wait(timeout=30) == 1
        assert "the W5500 does not answer" in board.output()
    finally:
        board.stop()
