"""Stand-in for CircuitPython's digitalio (tests only): writes reach the pin's hook."""


class Direction:
    INPUT = "digitalio.Direction.INPUT"
    OUTPUT = "digitalio.Direction.OUTPUT"


class Pull:
    UP = "digitalio.Pull.UP"
    DOWN = "digitalio.Pull.DOWN"


class DriveMode:
    PUSH_PULL = "digitalio.DriveMode.PUSH_PULL"
    OPEN_DRAIN = "digitalio.DriveMode.OPEN_DRAIN"


_claimed = set()


class DigitalInOut:
    def __init__(self, pin):
        if id(pin) in _claimed:
            raise ValueError("%r in use" % (pin,))
        _claimed.add(id(pin))
        self.pin = pin
        self._value = False
        self._direction = Direction.INPUT
        self.pull = None
        self.drive_mode = DriveMode.PUSH_PULL

    @property
    def direction(self):
        return self._direction

    @direction.setter
    def direction(self, value):
        self._direction = value

    def switch_to_output(self, value=False, drive_mode=DriveMode.PUSH_PULL):
        self._direction = Direction.OUTPUT
        self.drive_mode = drive_mode
        self.value = value

    def switch_to_input(self, pull=None):
        self._direction = Direction.INPUT
        self.pull = pull

    @property
    def value(self):
        return self._value

    @value.setter
    def value(self, v):
        self._value = bool(v)
        hook = getattr(self.pin, "hook", None)
        if hook is not None:
            hook(self._value)

    def deinit(self):
        _claimed.discard(id(self.pin))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.deinit()
