"""Stand-in for CircuitPython's `supervisor` module (tests only).

ticks_ms() starts 20 s before its 2**29 wrap, as CircuitPython's does, and the test can move
it forward (advance()) to act out days of uptime in seconds."""

import time

_PERIOD = 1 << 29
_base = _PERIOD - 20000 - int(time.monotonic() * 1000)
_offset = 0


def ticks_ms():
    return (int(time.monotonic() * 1000) + _base + _offset) % _PERIOD


def advance(ms):
    global _offset
    _offset += ms


def offset():
    return _offset


class RunReason:
    STARTUP = "supervisor.RunReason.STARTUP"
    AUTO_RELOAD = "supervisor.RunReason.AUTO_RELOAD"
    SUPERVISOR_RELOAD = "supervisor.RunReason.SUPERVISOR_RELOAD"
    REPL_RELOAD = "supervisor.RunReason.REPL_RELOAD"


class _Runtime:
    run_reason = RunReason.STARTUP
    serial_connected = True


runtime = _Runtime()


def reload():
    raise SystemExit("supervisor.reload()")
