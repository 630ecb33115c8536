"""tests/w5500/runner.py (code.py's board_main on the W5500 model) with SPI accounting.

bench/w5500_spi.py starts this instead of the test runner (through tests/w5500/harness.Board).
It counts, in the chip model's stats (read with the model's "stats" control command):

  spi_out, spi_in             bytes clocked out to and in from the chip, over the whole run;
  path[KIND] = [calls, frames, bytes out, bytes in]
                              for each call of the SIP endpoint code.py uses on a board
                              (switchboard.w5500udp.W5500UDP): "recv <first line>" for a
                              datagram received, "recv idle" for a poll that found nothing,
                              "send <first line>" for a datagram sent;
  trace[KIND] = [[block, address, "r" or "w", data bytes], ...]
                              every SPI frame of the first call of each KIND.

Everything else is the test runner's own main(): same stubs, same model, same board_main().
"""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
W5500_TESTS = os.path.join(os.path.dirname(HERE), "tests", "w5500")
sys.path.insert(0, W5500_TESTS)

import runner  # noqa: E402  (puts the stubs and lib/ on sys.path)
from model import W5500  # noqa: E402

CHIPS = []


def _init(original):
    def init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        self.stats["spi_out"] = 0
        self.stats["spi_in"] = 0
        self.stats["path"] = {}
        self.stats["trace"] = {}
        self.tracing = None
        self.frame_out = self.frame_in = 0
        CHIPS.append(self)

    return init


def _set_cs(original):
    def set_cs(self, high):
        if high and self.selected and self.tracing is not None and len(self.frame) >= 3:
            addr = self.frame[0] << 8 | self.frame[1]
            block = self.frame[2] >> 3
            name = "common" if block == 0 else "s%d %s" % ((block - 1) // 4,
                                                          ("reg", "tx", "rx", "?")[(block - 1) % 4])
            rw = "w" if self.frame[2] & 0x04 else "r"
            data = self.stats["spi_out"] - self.frame_out if rw == "w" else \
                self.stats["spi_in"] - self.frame_in
            if rw == "w":
                data -= 3  # the address and control bytes
            self.tracing.append([name, addr, rw, data])
        if not high:
            self.frame_out = self.stats["spi_out"]
            self.frame_in = self.stats["spi_in"]
        return original(self, high)

    return set_cs


def _spi_write(original):
    def spi_write(self, data):
        if self.selected and not self.in_reset:
            self.stats["spi_out"] += len(data)
        return original(self, data)

    return spi_write


def _spi_read(original):
    def spi_read(self, n):
        if self.selected and not self.in_reset:
            self.stats["spi_in"] += n
        return original(self, n)

    return spi_read


def kind_of(data):
    end = data.find(b"\r\n")
    line = bytes(data[:end if end >= 0 else 40]).decode("ascii", "replace")
    if line.startswith("SIP/2.0"):
        return " ".join(line.split(" ")[:2])
    return line.split(" ")[0]


def _counted(original, direction):
    def wrapper(self, *args):
        chip = CHIPS[-1] if CHIPS else None
        if chip is None:
            return original(self, *args)
        stats = chip.stats
        frames, out, inn = stats["frames"], stats["spi_out"], stats["spi_in"]
        chip.tracing = []
        try:
            result = original(self, *args)
        finally:
            trace, chip.tracing = chip.tracing, None
        if direction == "send":
            kind = "send " + kind_of(args[0])
        elif result is None:
            kind = "recv idle"
        else:
            kind = "recv " + kind_of(result[0])
        if kind not in stats["trace"]:
            stats["trace"][kind] = trace
        entry = stats["path"].setdefault(kind, [0, 0, 0, 0])
        entry[0] += 1
        entry[1] += stats["frames"] - frames
        entry[2] += stats["spi_out"] - out
        entry[3] += stats["spi_in"] - inn
        return result

    return wrapper


def install():
    W5500.__init__ = _init(W5500.__init__)
    W5500.set_cs = _set_cs(W5500.set_cs)
    W5500.spi_write = _spi_write(W5500.spi_write)
    W5500.spi_read = _spi_read(W5500.spi_read)
    from switchboard.w5500udp import W5500UDP

    W5500UDP.recv = _counted(W5500UDP.recv, "recv")
    W5500UDP.send = _counted(W5500UDP.send, "send")


if __name__ == "__main__":
    install()
    sys.exit(runner.main() or 0)
