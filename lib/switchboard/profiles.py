"""Board profiles: where the W5500 is wired, how much heap the program may use, and the
table limits and feature defaults that follow from it. Imported on a board only.

A profile's `heap` is the live heap (KB, gc.mem_alloc() after a collection) the whole
program may reach at its peak: about 150 of the RP2040's ~192 KB after boot, because a
fragmented heap cannot hand out its last 40 KB in one piece (issue 13). From it, the
program's imports (IMPORTS, measured by bench/vm_board.py on the 32-bit VM) are taken away;
what is left pays for the tables at the measured bytes per entry (COSTS). Settings still win:
MAX_BINDINGS = 200 in settings.toml is used as given.
"""

# board_id -> (how to reach the SPI bus, SCK, MOSI, MISO, CS, RST, heap KB, chip label).
# "A|B": the first of these names the board module has; "": not wired.
BOARDS = {
    "wiznet_w5500_evb_pico": ("busio", "W5K_SCK|GP18", "W5K_MOSI|GP19", "W5K_MISO|GP16",
                              "W5K_CS|GP17", "W5K_RST|GP20", 150, "RP2040"),
    "wiznet_w5500_evb_pico2": ("busio", "W5K_SCK|GP18", "W5K_MOSI|GP19", "W5K_MISO|GP16",
                               "W5K_CS|GP17", "W5K_RST|GP20", 300, "RP2350"),
    "wiznet_w55rp20_evb_pico": ("pio", "W5K_SCK|GP21", "W5K_MOSI|GP23", "W5K_MISO|GP22",
                                "W5K_CS|GP20", "W5K_RST|GP25", 150, "RP2040"),
    "waveshare_esp32_s3_eth": ("busio", "ETH_CLK", "ETH_MOSI", "ETH_MISO", "ETH_CS", "ETH_RST",
                               1024, "ESP32-S3"),
}
# Ethernet / PoE FeatherWing on any Feather: the smallest Feather heap (RP2040 class) counts.
FEATHERWING = ("board", "SCK", "MOSI", "MISO", "D10", "", 150, "Feather")
UNKNOWN = ("busio", "", "", "", "", "", 150, "unknown")

# Live heap (KB) of the imports after start, by feature, from bench/vm_board.py (rounded
# up), deployed as .mpy (circup's libraries, deploy --mpy; from .py an RP2040 does not fit):
# the base is SIP on the W5500 (core, app, netif, w5500udp, persist for nvm,
# adafruit_wiznet5k without its DHCP and DNS modules, adafruit_ticks, adafruit_bus_device,
# board.py); digest adds
# auth.py, MD5 and auth's table of 64 nonce counts (about 3 KB when full); the dashboard adds
# adafruit_httpserver, the socket pool, http.py, and views.py, stats.py, trace.py, endcall.py
# (issue 16: 80 KB with them, measured with tests/w5500/budget.py as the board loads them).
IMPORTS = {"base": 108, "digest": 13, "dashboard": 80, "overload": 6}
# Bytes per table entry on the 32-bit VM, rounded up: a binding with its rate-limit source
# (265 + 74 B, bench/vm_tables.py and bench/vm_memory.py), a transaction in progress with
# its request (a ringing call's two: about 1.7 KB each; finished, a transaction is one small
# integer of about 9 B, at most 64 of them per slot: docs/performance.md), a call (330 B
# answered) and a call in the history (343 B).
COSTS = {"bindings": 350, "transactions": 1800, "calls": 350, "history": 350}
# With the dashboard an active call also keeps what ending it from the page needs (tags,
# contacts, Route sets: 388 B by bench/dash_memory.py), rounded up.
DASHBOARD_CALL = 450
# Share of the table heap each table may take (per cent): phones first. A ringing call
# holds two transactions in progress (ours and the callee's); an answered one none.
SHARES = {"bindings": 60, "transactions": 30, "calls": 6, "history": 4}
FLOORS = {"bindings": 8, "transactions": 4, "calls": 2, "history": 4}
WORKING_KB = 10  # the objects built at start (engine: 6.5 KB, driver, sockets' buffers)


def profile(board_id):
    """The profile tuple for a board id (FeatherWing for any Feather, UNKNOWN otherwise)."""
    found = BOARDS.get(board_id)
    if found is None:
        found = FEATHERWING if "feather" in board_id else UNKNOWN
    return found


def features(heap_kb):
    """Default features for a heap budget: the dashboard only where it fits beside SIP and
    digest with 25 KB left for the tables (32 phones)."""
    need = IMPORTS["base"] + IMPORTS["digest"] + IMPORTS["dashboard"] + WORKING_KB + 25
    # overload control (switchboard.overload: 5.6 KB as .mpy) likewise: off on RP2040 boards
    spare = IMPORTS["base"] + IMPORTS["digest"] + IMPORTS["overload"] + WORKING_KB + 25
    return {"dashboard": heap_kb >= need, "overload": heap_kb >= spare}


def limits(heap_kb, dashboard, digest=True, gateway=False):
    """Table limits (bindings, transactions, calls, history, sources) from a heap budget."""
    used = IMPORTS["base"] + WORKING_KB
    if digest:
        used += IMPORTS["digest"]
    if gateway:  # the trunk: trunk.py from .mpy (17.1 KB) and the Trunk (0.8 KB), and MD5
        # for an MD5 upstream when SIP_AUTH is off (6.1 KB; digest has it otherwise):
        # bench/trunk_memory.py
        # (numbers, not named constants: every name a board loads is interned for good)
        used += 19 + (0 if digest else 7)
    if dashboard:
        used += IMPORTS["dashboard"]
    tables = max(0, heap_kb - used) * 1024
    costs = dict(COSTS)
    if dashboard:
        costs["calls"] += DASHBOARD_CALL
    out = {}
    for name in SHARES:
        out[name] = max(FLOORS[name], tables * SHARES[name] // 100 // costs[name])
    if not dashboard:
        out["history"] = 0  # only the dashboard shows finished calls
    over = sum(out[name] * costs[name] for name in out) - tables
    if over > 0:  # the floors took more than their shares: fewer phones
        out["bindings"] = max(FLOORS["bindings"],
                              out["bindings"] - (over + costs["bindings"] - 1) // costs["bindings"])
    out["sources"] = max(4, out["bindings"] + 16)
    return out


# limit name -> the setting that overrides it
SETTINGS = {"bindings": "MAX_BINDINGS", "transactions": "MAX_TRANSACTIONS",
            "calls": "MAX_CALLS", "history": "CALL_HISTORY", "sources": "MAX_SOURCES"}


def defaults(board_id, getenv):
    """The settings a board uses when settings.toml leaves them out: HTTP_PORT (80, or 0 on a
    board whose heap has no room for the dashboard), MAX_MESSAGE_SIZE 1472 (the W5500 does not
    fragment), QUALIFY_INTERVAL (60, or 0 where the dashboard has no room either), and the
    table limits of the profile. Returns (defaults, heap KB, label)."""
    p = profile(board_id)
    heap_kb = p[6]
    port = getenv("HTTP_PORT")
    if port is None or port == "":  # not set: the profile decides
        dashboard = features(heap_kb)["dashboard"]
    else:
        try:
            dashboard = int(port) != 0
        except (TypeError, ValueError):
            dashboard = False
    auth = getenv("SIP_AUTH")
    digest = not (auth is not None and str(auth).strip().lower() == "off")
    out = {"HTTP_PORT": 80 if features(heap_kb)["dashboard"] else 0, "MAX_MESSAGE_SIZE": 1472,
           # reachability pings (qualify.py: 4 KB and 73 B per contact) where the heap has
           # room for the dashboard too; the RP2040's 150 KB has none
           "QUALIFY_INTERVAL": 60 if features(heap_kb)["dashboard"] else 0,
           "OVERLOAD": 1 if features(heap_kb)["overload"] else 0}
    table = limits(heap_kb, dashboard, digest, bool(str(getenv("TRUNK") or "").strip()))
    for name in table:
        out[SETTINGS[name]] = table[name]
    return out, heap_kb, p[7]


def board_getenv(getenv, board_id="wiznet_w5500_evb_pico"):
    """Settings on a board: os.getenv, falling back to the profile's defaults."""
    table = defaults(board_id, getenv)[0]

    def get(name):
        value = getenv(name)
        if value is None or value == "":
            return table.get(name)
        return value

    return get


def board_profile(board_id, getenv):
    """(kind, [sck, mosi, miso, cs, rst]) pin names for this board, settings applied."""
    known = board_id in BOARDS or "feather" in board_id
    p = profile(board_id)
    overrides = [getenv(k) for k in ("SPI_SCK", "SPI_MOSI", "SPI_MISO", "W5500_CS", "W5500_RST")]
    if not known and not (overrides[0] and overrides[1] and overrides[2] and overrides[3]):
        raise ValueError(
            "board %s is not one Switchboard knows: set SPI_SCK, SPI_MOSI, SPI_MISO and "
            "W5500_CS (and W5500_RST if wired) in settings.toml to the board's pin names"
            % board_id)
    kind = p[0]
    if kind == "board" and (overrides[0] or overrides[1] or overrides[2]):
        kind = "busio"
    names = list(p[1:6])
    for i in range(5):
        if overrides[i] is not None and str(overrides[i]).strip() != "":
            names[i] = str(overrides[i]).strip()
    return kind, names


def board_pin(board, names, setting=None):
    """The board's pin object for a setting value or the first existing name of names."""
    if setting is not None and str(setting).strip() != "":
        names = str(setting).strip()
    if names and names.lower() == "none":
        return None  # W5500_RST = "none": no reset pin wired
    for name in names.split("|"):
        if name and hasattr(board, name):
            return getattr(board, name)
    if names:
        raise ValueError("this board has no pin %s" % " or ".join(names.split("|")))
    return None
