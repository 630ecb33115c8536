"""bench/vm_tables.py's additions to bench/vm_board_probe.py (appended to it, MODE "load").

Kept out of vm_board_probe.py on purpose: every name a script adds is interned in the VM's
table of names, which grows by a whole new pool (about 9 KB) when full, so more names in the
probe itself move where that happens and with it the budget tests' import figures.

LOAD["fresh_sources"]: every datagram comes with its own (ip, port) tuple and ip string, as
the board's socket makes them (the load otherwise passes each phone's one tuple).
LOAD["held"]: after the load, the engine's tables are emptied one at a time (HELD's order),
then the empty engine is taken apart part by part; each step prints "held NAME RECORDS
BYTES", the live heap it gave back. An object two tables share counts in the later step:
transactions go first (they refer to call records and messages), then history, active calls,
qualify's state, bindings, nonces, HA1s.
"""

BOARDS = []  # the Board the load built
_board_init = Board.__init__  # noqa: F821 (defined by vm_board_probe.py, in front of this)
_board_receive = Board.receive  # noqa: F821


def _init(self, settings):
    _board_init(self, settings)
    BOARDS.append(self)


def _receive(self, data, source, now):
    if LOAD.get("fresh_sources"):  # noqa: F821
        source = (".".join(source[0].split(".")), source[1])
    return _board_receive(self, data, source, now)


Board.__init__ = _init  # noqa: F821
Board.receive = _receive  # noqa: F821


def emptied(obj, names):
    """Each attribute in names that obj has, replaced by an empty value of its type."""
    for name in names:
        value = getattr(obj, name, None)
        if isinstance(value, (dict, list, tuple, set, str, bytes, bytearray)):
            setattr(obj, name, type(value)())


def dropped(pairs):
    """Each (object, attribute) set to None."""
    for obj, name in pairs:
        setattr(obj, name, None)


def free(board, name):
    """Empty one table of the loaded board, or drop one part of its (emptied) engine."""
    e = board.engine
    if name == "transactions":
        emptied(e.txns, ("all", "active", "lingering", "gens"))
        emptied(e.proxy, ("staged",))
    elif name == "calls_history":
        emptied(e.calls, ("history",))
    elif name == "calls_active":
        emptied(e.calls, ("active",))
    elif name == "bindings":
        emptied(e.location, ("table",))
    elif name == "qualify":
        emptied(e.qualify, ("entries", "pending", "order"))
    elif name == "nonces":
        emptied(e.auth, ("counts", "order"))
    elif name == "ha1":
        emptied(e.auth, ("ha1", "protected", "digests"))
    elif name == "empty:config":
        dropped(((e, "config"), (board.app, "config")))
    elif name == "empty:engine_rest":
        dropped(((board.app, "engine"), (board, "engine")))
    elif name == "empty:app_rest":
        dropped(((board, "app"),))
    else:  # "empty:PART": the engine's attribute PART
        dropped(((e, name[6:]),))


HELD = ("transactions", "calls_history", "calls_active", "qualify", "bindings", "nonces",
        "ha1", "empty:auth", "empty:proxy", "empty:txns", "empty:calls", "empty:registrar",
        "empty:router", "empty:qualify", "empty:location", "empty:here", "empty:counters",
        "empty:config", "empty:engine_rest", "empty:app_rest")


def held_records(board):
    """How many records each table holds. (A plain function: a generator's frame would keep
    the objects it touched alive in its stale stack slots, which the GC scans.)"""
    e = board.engine
    txns = e.txns
    return {"transactions": len(txns.all) + getattr(txns, "kept", 0),
            "calls_history": len(e.calls.history),
            "calls_active": len(e.calls.active), "bindings": e.location.count,
            "qualify": len(e.qualify.entries) if e.qualify is not None else 0,
            "nonces": e.auth.limits()["nonces"][0], "ha1": len(e.auth.ha1)}


def held_steps(board):
    records = held_records(board)
    last = yield from heap()  # noqa: F821
    for name in HELD:
        free(board, name)
        h = yield from heap()  # noqa: F821
        out("held", name, records.get(name, 1), last - h)  # noqa: F821
        last = h


_load_steps = load_steps  # noqa: F821


def load_steps():  # noqa: F811
    yield from _load_steps()
    if LOAD.get("held"):  # noqa: F821
        yield from held_steps(BOARDS.pop())
