"""Console log lines with a level filter (LOG_LEVEL): the serial console on a board."""

LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40}


class Log:
    def __init__(self, level="info", clock=None, write=print):
        self.threshold = LEVELS.get(str(level).lower(), 20)
        self.clock = clock
        self.write = write

    def __call__(self, level, text):
        if LEVELS.get(level, 20) < self.threshold:
            return
        if self.clock is not None:
            clock = self.clock
            ms = clock.uptime() if hasattr(clock, "uptime") else clock.now()
            self.write("%d.%03d %s %s" % (ms // 1000, ms % 1000, level.upper(), text))
        else:
            self.write("%s %s" % (level.upper(), text))
