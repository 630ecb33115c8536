"""Watch a whole Python process from the inside (used by bench/host_load.py).

Python imports sitecustomize at start-up from any folder on PYTHONPATH; host_load.py puts
this folder there for the Switchboard process it starts. Either variable may be set:

SWITCHBOARD_PROFILE=FILE    the process runs under cProfile; statistics go to FILE at exit.
SWITCHBOARD_GC_STATS=FILE   every cyclic garbage collection is timed; at exit FILE gets one
                            line per collection: "generation start_monotonic seconds".
SWITCHBOARD_GC=MODE         an experiment, not how Switchboard runs: "off" disables the cyclic
                            collector (reference counting still frees everything acyclic);
                            "A,B,C" sets gc.set_threshold(A, B, C).

code.py exits normally on SIGTERM, so the atexit handlers run.
"""

import os

_PROFILE = os.environ.get("SWITCHBOARD_PROFILE")
_GC_STATS = os.environ.get("SWITCHBOARD_GC_STATS")
_GC_MODE = os.environ.get("SWITCHBOARD_GC")

if _GC_MODE:
    import gc

    if _GC_MODE == "off":
        gc.disable()
    else:
        gc.set_threshold(*(int(x) for x in _GC_MODE.split(",")))

if _GC_STATS:
    import atexit
    import gc
    import time

    _events = []
    _started = [0.0]

    def _watch(phase, info):
        if phase == "start":
            _started[0] = time.monotonic()
        else:
            _events.append((info.get("generation", -1), _started[0],
                            time.monotonic() - _started[0]))

    def _dump_gc():
        gc.callbacks.remove(_watch)
        with open(_GC_STATS, "w") as f:
            for generation, start, took in _events:
                f.write("%d %.6f %.6f\n" % (generation, start, took))

    gc.callbacks.append(_watch)
    atexit.register(_dump_gc)

if _PROFILE:
    import atexit
    import cProfile

    _profile = cProfile.Profile()

    def _dump_profile():
        _profile.disable()
        _profile.dump_stats(_PROFILE)

    atexit.register(_dump_profile)
    _profile.enable()
