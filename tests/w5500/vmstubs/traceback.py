"""Stand-in for CircuitPython's built-in `traceback` under the MicroPython VM (imported by
adafruit_httpserver and adafruit_wiznet5k). Imported before any heap is measured."""


def print_exception(*args, **kwargs):
    pass


def format_exception(*args, **kwargs):
    return []
