"""Stand-in for `__future__` under the MicroPython VM (CircuitPython has it built in; the
adafruit libraries import `annotations` from it). Imported before any heap is measured."""

annotations = None
