"""Switchboard: a SIP registrar and proxy for CircuitPython W5500 boards and for the desktop."""

VERSION = "0.1.0"
