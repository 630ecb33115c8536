"""Stand-in for the W55RP20 port's `wiznet` module (tests only): PIO_SPI behaves as busio.SPI."""

from busio import SPI


class PIO_SPI(SPI):  # noqa: N801 (CircuitPython's name)
    def __init__(self, clock, *, MOSI=None, MISO=None, half_duplex=False):  # noqa: N803
        SPI.__init__(self, clock, MOSI=MOSI, MISO=MISO)
