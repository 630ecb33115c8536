"""Stand-in for CircuitPython's busio.SPI (tests only): the bytes go to the `device` the test
wired to the clock pin (tests/w5500/model.py), framed by its chip-select pin."""


class SPI:
    def __init__(self, clock, MOSI=None, MISO=None, half_duplex=False):  # noqa: N803
        self.clock = clock
        self.device = getattr(clock, "device", None)
        self._locked = False
        self.frequency = 100000

    def try_lock(self):
        if self._locked:
            return False
        self._locked = True
        return True

    def unlock(self):
        self._locked = False

    def configure(self, *, baudrate=100000, polarity=0, phase=0, bits=8):
        self.frequency = baudrate

    def write(self, buffer, *, start=0, end=None):
        if self.device is not None:
            self.device.spi_write(bytes(buffer[start:end]))

    def readinto(self, buffer, *, start=0, end=None, write_value=0):
        end = len(buffer) if end is None else end
        n = end - start
        data = self.device.spi_read(n) if self.device is not None else bytes(n)
        buffer[start:end] = data

    def write_readinto(self, out_buffer, in_buffer, *, out_start=0, out_end=None, in_start=0,
                       in_end=None):
        out = bytes(out_buffer[out_start:out_end])
        in_end = len(in_buffer) if in_end is None else in_end
        if self.device is not None:
            data = self.device.spi_read(len(out))
        else:
            data = bytes(len(out))
        in_buffer[in_start:in_end] = data[:in_end - in_start]

    def deinit(self):
        self.device = None
