"""Watch a whole Python process from the inside (used by bench/host_load.py).

Python imports sitecustomize at start-up from any folder on PYTHONPATH; host_load.py puts
this folder there for the Switchboard process it starts. Either variable may be set:

SWITCHBOARD_PROFILE=FILE    the process runs under cProfile; statistics go to FILE at exit.
SWITCHBOARD_GC_STATS=FILE   every cyclic garbage collection is timed; at exit FILE gets one
                            line per collection: "generation start_monotonic seconds".
SWITCHBOARD_GC=MODE         an experiment, not how Switchboard runs: "off" disables the cyclic
                            collector (reference counting still frees everything acyclic);
                            "A,B,C" sets gc.set_threshold(A, B, C).
SWITCHBOARD_SPLIT=FILE      where the loop's time goes, by what each datagram was: the socket
                            reads, Overload.admit(), the sends and Engine.receive() are
                            wrapped and timed (perf_counter_ns; the wrappers' own cost,
                            measured at start, is taken off each call); at exit FILE gets the
                            totals as JSON (bench/host_load.py --split prints them).

code.py exits normally on SIGTERM, so the atexit handlers run.
"""

import os

_PROFILE = os.environ.get("SWITCHBOARD_PROFILE")
_GC_STATS = os.environ.get("SWITCHBOARD_GC_STATS")
_GC_MODE = os.environ.get("SWITCHBOARD_GC")
_SPLIT = os.environ.get("SWITCHBOARD_SPLIT")

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

if _SPLIT:
    import atexit
    import json
    import sys
    import time

    sys.path.append(os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__)))), "lib"))
    from switchboard.app import App
    from switchboard.engine import Engine
    from switchboard.overload import ABSORB, PASS, SHED, SHED_TAG, Overload
    from switchboard.udp import UDPEndpoint

    _clock = time.perf_counter_ns
    # ns and calls: "read" buckets hold a datagram's socket read and its admit() together,
    # by the verdict admit() gave; "engine" by message kind; "sent" by 503 or not
    _split = {"read": {}, "engine": {}, "sent": {}, "step": [0, 0], "tick": [0, 0],
              "step_max": 0, "step_over_10ms": 0}  # whether the loop ever stalls
    _last_read = [0]

    def _add(bucket, key, ns):
        entry = bucket.get(key)
        if entry is None:
            entry = bucket[key] = [0, 0]
        entry[0] += ns
        entry[1] += 1

    def _kind(data):
        """INVITE, ACK, ... for a request; '180 INVITE', '200 BYE', ... for a response."""
        first = data[:data.find(b" ")]
        if first != b"SIP/2.0":
            return first.decode("ascii", "replace")
        at = data.find(b"\nCSeq:")
        method = data[at + 7:data.find(b"\r", at + 7)].split()[-1:] if at > 0 else [b"?"]
        return (data[8:11] + b" " + method[0]).decode("ascii", "replace")

    def _wrap_timed(original, after):
        """original, timed: after(args, result, ns) gets the ns it took, less the clock's own
        cost; every wrapped call is counted and its after() timed, so that an enclosing one
        can take off what the wrappers inside it added."""
        def timed(*args):
            before = _nested[0]
            spent = _spent[0]
            start = _clock()
            result = original(*args)
            end = _clock()
            ns = end - start - _bias[0] - (_nested[0] - before) * _extra[0] - (_spent[0] - spent)
            _nested[0] += 1
            after(args, result, ns)
            _spent[0] += _clock() - end
            return result
        return timed

    def _after_recv(args, got, ns):
        _last_read[0] = ns if got is not None else 0

    def _after_admit(args, verdict, ns):
        name = {PASS: "pass", SHED: "shed", ABSORB: "absorb"}.get(verdict, "drop")
        _add(_split["read"], name, ns + _last_read[0])
        _last_read[0] = 0

    def _after_send(args, result, ns):
        data = args[1]
        refused = data.startswith(b"SIP/2.0 503 ") and (b"tag=" + SHED_TAG) in data
        _add(_split["sent"], "503" if refused else "other", ns)

    def _after_receive(args, out, ns):
        _add(_split["engine"], _kind(args[1]), ns)

    def _after_total(name):
        def after(args, result, ns):
            _split[name][0] += ns
            _split[name][1] += 1
        return after

    _step_total = _after_total("step")

    def _after_step(args, result, ns):
        _step_total(args, result, ns)
        if ns > _split["step_max"]:
            _split["step_max"] = ns
        if ns > 10000000:
            _split["step_over_10ms"] += 1

    def _calibrate(rounds=200000):
        """(ns between two clock reads, ns a wrapper adds to the call it wraps), the least
        of five rounds each."""
        def nothing(*args):
            return None
        wrapped = _wrap_timed(nothing, lambda args, result, ns: None)
        bias = extra = None
        for _ in range(5):
            start = _clock()
            for _ in range(rounds):
                _clock()
            one = (_clock() - start) // rounds
            bias = one if bias is None or one < bias else bias
            start = _clock()
            for _ in range(rounds):
                nothing(1, 2)
            plain = _clock() - start
            start = _clock()
            for _ in range(rounds):
                wrapped(1, 2)
            more = (_clock() - start - plain) // rounds
            extra = more if extra is None or more < extra else extra
        return bias, extra

    _nested = [0]
    _spent = [0]  # ns the after() calls took
    _bias = [0]
    _extra = [0]
    _bias[0], _extra[0] = _split["clock_ns"], _split["wrapper_ns"] = _calibrate()
    UDPEndpoint.recv = _wrap_timed(UDPEndpoint.recv, _after_recv)
    UDPEndpoint.send = _wrap_timed(UDPEndpoint.send, _after_send)
    Overload.admit = _wrap_timed(Overload.admit, _after_admit)
    Engine.receive = _wrap_timed(Engine.receive, _after_receive)
    Engine.tick = _wrap_timed(Engine.tick, _after_total("tick"))
    App.step = _wrap_timed(App.step, _after_step)

    def _dump_split():
        with open(_SPLIT, "w") as f:
            json.dump(_split, f)

    atexit.register(_dump_split)
