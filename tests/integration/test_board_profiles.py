"""Board profiles: board_main() finds the W5500 on each supported board (the model is wired
to the pins the real board uses, so a wrong pin means no chip), settings override pins,
and an unknown board gets a clear message."""

import importlib.util
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "w5500"))

from harness import ROOT, Board  # noqa: E402


def load_code():
    spec = importlib.util.spec_from_file_location("board_code_under_test",
                                                  os.path.join(ROOT, "code.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_board_defaults_and_pin_settings():
    code = load_code()
    get = code.board_getenv({}.get)
    assert get("HTTP_PORT") == 80 and get("SIP_PORT") is None
    assert get("MAX_MESSAGE_SIZE") == 1472
    assert code.board_getenv({"HTTP_PORT": "8080"}.get)("HTTP_PORT") == "8080"
    assert code.board_profile("wiznet_w5500_evb_pico", {}.get) == (
        "busio", ["W5K_SCK|GP18", "W5K_MOSI|GP19", "W5K_MISO|GP16", "W5K_CS|GP17",
                  "W5K_RST|GP20"])
    assert code.board_profile("adafruit_feather_esp32s3", {"W5500_CS": "D5"}.get) == (
        "board", ["SCK", "MOSI", "MISO", "D5", ""])
    kind, names = code.board_profile("adafruit_feather_rp2040", {"SPI_SCK": "GP2"}.get)
    assert kind == "busio" and names[0] == "GP2"
    with pytest.raises(ValueError, match="SPI_SCK, SPI_MOSI, SPI_MISO"):
        code.board_profile("raspberry_pi_pico", {}.get)


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
