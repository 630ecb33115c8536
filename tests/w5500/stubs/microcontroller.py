"""Stand-in for CircuitPython's `microcontroller` module (tests only).

cpu.uid from STUB_UID (hex), cpu.reset_reason from STUB_RESET_REASON (a ResetReason name),
and a watchdog that records how it is fed (max_gap: longest wait between two feeds, s)."""

import os
import time


class _Reason:
    def __init__(self, name):
        self.name = name

    def __repr__(self):
        return "microcontroller.ResetReason.%s" % self.name

    __str__ = __repr__


class ResetReason:
    pass


for _name in ("POWER_ON", "BROWNOUT", "SOFTWARE", "DEEP_SLEEP_ALARM", "RESET_PIN", "WATCHDOG",
              "UNKNOWN", "RESCUE_DEBUG"):
    setattr(ResetReason, _name, _Reason(_name))


class _CPU:
    uid = bytearray.fromhex(os.environ.get("STUB_UID", "e660583883456d2f"))
    reset_reason = getattr(ResetReason, os.environ.get("STUB_RESET_REASON", "POWER_ON"))
    frequency = 125000000
    temperature = 27.0


cpu = _CPU()


class _WatchDogTimer:
    LONGEST = 8.388  # the RP2040's limit

    def __init__(self):
        self._timeout = None
        self.mode = None
        self.feeds = 0
        self.last = None
        self.max_gap = 0.0

    @property
    def timeout(self):
        return self._timeout

    @timeout.setter
    def timeout(self, value):
        if value > self.LONGEST:
            raise ValueError("timeout exceeds maximum")
        self._timeout = value

    def feed(self):
        if self.mode is None:
            raise ValueError("WatchDogTimer is not active")
        now = time.monotonic()
        if self.last is not None:
            self.max_gap = max(self.max_gap, now - self.last)
        self.last = now
        self.feeds += 1

    def deinit(self):
        self.mode = None

    def stats(self):
        return {"timeout": self._timeout, "mode": self.mode and str(self.mode),
                "feeds": self.feeds, "max_gap": self.max_gap}


watchdog = _WatchDogTimer()


def reset():
    raise SystemExit("microcontroller.reset()")


class _FileNvm(bytearray):
    """microcontroller.nvm kept in the file STUB_NVM (4 KB, erased = 0xFF), so it survives a
    re-run of code.py; every slice write goes to the file at once and is counted."""

    def __init__(self, path, size=4096):
        data = b""
        if os.path.exists(path):
            with open(path, "rb") as f:
                data = f.read(size)
        bytearray.__init__(self, data + b"\xff" * (size - len(data)))
        self.path = path

    def __setitem__(self, index, value):
        if not isinstance(index, slice) or len(self[index]) != len(value):
            raise ValueError("nvm writes are slices of the same length")
        bytearray.__setitem__(self, index, value)
        with open(self.path, "wb") as f:
            f.write(bytes(self))
        with open(self.path + ".writes", "a") as f:
            f.write("1\n")


if os.environ.get("STUB_NVM"):
    nvm = _FileNvm(os.environ["STUB_NVM"])
