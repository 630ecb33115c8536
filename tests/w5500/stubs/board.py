"""Stand-in for CircuitPython's `board` module (tests only): pins of the board named by
STUB_BOARD_ID, with the names CircuitPython gives them. A Pin carries the test's wiring:
`device` (an SPI peripheral on a clock pin) and `hook` (called with each level written)."""

import os

board_id = os.environ.get("STUB_BOARD_ID", "wiznet_w5500_evb_pico")


class Pin:
    def __init__(self, name):
        self.name = name
        self.hook = None
        self.device = None

    def __repr__(self):
        return "board.%s" % self.name


_RP2040 = {"GP%d" % i: "GPIO%d" % i for i in range(30)}
_ALIASES = {
    "wiznet_w5500_evb_pico": {"W5K_SCK": "GPIO18", "W5K_MOSI": "GPIO19", "W5K_MISO": "GPIO16",
                              "W5K_CS": "GPIO17", "W5K_RST": "GPIO20", "W5K_INT": "GPIO21",
                              "LED": "GPIO25"},
    "wiznet_w55rp20_evb_pico": {"W5K_SCK": "GPIO21", "W5K_MOSI": "GPIO23", "W5K_MISO": "GPIO22",
                                "W5K_CS": "GPIO20", "W5K_RST": "GPIO25", "W5K_INT": "GPIO24",
                                "LED": "GPIO19"},
    "waveshare_esp32_s3_eth": {"ETH_CLK": "GPIO13", "ETH_MOSI": "GPIO11", "ETH_MISO": "GPIO12",
                               "ETH_CS": "GPIO14", "ETH_RST": "GPIO9", "ETH_INT": "GPIO10"},
    "adafruit_feather_rp2040": {"SCK": "GPIO18", "MOSI": "GPIO19", "MISO": "GPIO20",
                                "D5": "GPIO7", "D6": "GPIO8", "D9": "GPIO9", "D10": "GPIO10",
                                "D11": "GPIO11", "D12": "GPIO12", "D13": "GPIO13"},
}
_ALIASES["wiznet_w5500_evb_pico2"] = _ALIASES["wiznet_w5500_evb_pico"]

_pins = {}


def _pin(gpio):
    if gpio not in _pins:
        _pins[gpio] = Pin(gpio)
    return _pins[gpio]


if board_id.startswith("waveshare_esp32"):
    _names = {"IO%d" % i: "GPIO%d" % i for i in range(49)}
else:
    _names = dict(_RP2040)
_names.update(_ALIASES.get(board_id, {}))
for _name, _gpio in _names.items():
    globals()[_name] = _pin(_gpio)

_spi = None
if "SCK" in _names:

    def SPI():  # noqa: N802 (CircuitPython's name)
        global _spi
        import busio

        if _spi is None:
            _spi = busio.SPI(globals()["SCK"], MOSI=globals()["MOSI"], MISO=globals()["MISO"])
        return _spi


def pin_named(name):
    """The Pin object for a GPIO or board name (the test's side of the wiring)."""
    return _pins[name] if name in _pins else globals()[name]
