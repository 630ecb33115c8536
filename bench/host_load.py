"""Host-mode load benchmark: Switchboard against Kamailio, in one run, with SIPp on loopback.

    .venv/bin/python bench/host_load.py                 # calls, then REGISTER, both servers
    .venv/bin/python bench/host_load.py --servers switchboard --skip-register --gc-stats
    .venv/bin/python bench/host_load.py --profile calls --profile-rate 300
    .venv/bin/python bench/host_load.py --skip-register --overload-factors 2,4
    .venv/bin/python bench/host_load.py --skip-calls --skip-register --overload-rates 1800,3600 \
        --zero-failure 900 --split

Calls: a SIPp caller on 127.0.0.3 sends INVITE through the proxy to a SIPp callee on 127.0.0.2
that registered as 2000 first (INVITE, 100, 180, 200, ACK, BYE, 200; bench/sipp/uac_call.xml
and uas_answer.xml). The rate goes up in steps of a fixed time each. A step passes when no
call failed (caller or callee) and 99% of the calls were done at >= 95% of the asked rate
("done/s": 0.99 * calls / the time the 99th percentile call got its 200; a server that falls
behind but is rescued by retransmissions has not kept up). Per step: failures and
why, retransmissions, INVITE-to-200 p50/p99 (sipp -trace_rtt; sipp's clock counts whole
milliseconds), the server's CPU seconds per 1000 calls (utime + stime from /proc/PID/stat;
for Kamailio summed over all its processes), how long the server was runnable but waited
for a CPU ("server waited": /proc/PID/schedstat; the load generator shares the 2 cores), the
CPU time the hypervisor gave elsewhere while this machine wanted it ("steal", /proc/stat, both
CPUs together, as a share of one CPU over the step), the load generator's CPU, datagrams
the kernel dropped at the server's socket and at the sipp sockets (/proc/net/udp; every sipp
asks for a 4 MB buffer, --sipp-buffer), Switchboard's resident memory, and how fast the
machine was just before the step ("engine us/call": engine_speed(), the engine alone, the
same code in every step).

Overload: after the call ramps, each server gets steps past capacity, at multiples of
Switchboard's highest zero-failure rate (--overload-factors, default 2 and 4x; or
--overload-rates), each step on a freshly started server, with bench/sipp/uac_overload.xml:
the caller takes a 503 as an answer (ACKs it, ends the call). Per step: calls completed
(and per second of offered load, and as a share of Switchboard's zero-failure rate), calls
that got no final answer at all, 503s and how long after the INVITE they came (p99, max,
how many after 1 s), retransmissions, CPU per 1000 calls offered and completed, the server's
CPU and run-queue wait, the load generator's CPU, and Switchboard's own counters (shed,
shed_absorbed, overloads, ...) from /api/status. Just before each of Switchboard's overload
steps, its zero-failure rate runs again on a fresh server with the ramp's strict scenario
("zero-failure again": passed or not, its CPU per 1000 calls and share of a core; --no-confirm
leaves it out): the machine's speed moves within minutes (docs/performance.md 4.15), and this
says whether it still carried the rate the step is compared with, seconds before the step.

REGISTER: unique users, one REGISTER each, each step on a freshly started server so every
REGISTER makes a new binding: without authentication through sipp (-inf users CSV), with
digest authentication through bench/digest_load.py (sipp 3.6 cannot answer Switchboard's
SHA-256-first challenge; see there).

The reference is Kamailio from Debian, configured by bench/kamailio/registrar_proxy.cfg as a
plain in-memory registrar (usrloc db_mode 0) and Record-Routing proxy with 2 UDP workers. This
script installs nothing: it says which apt-get line is missing. Traffic stays on 127.0.0.0/8;
every sipp, Switchboard and Kamailio process is stopped by PID, also on Ctrl-C.

--gc-stats times CPython's cyclic garbage collections inside Switchboard (gc.callbacks,
through bench/profile_hook); --switchboard-gc off is an experiment (the collector disabled),
not a way to run it; --profile runs one step with Switchboard under cProfile. --split wraps
the loop's socket reads and sends, Overload.admit() and Engine.receive() in timers (through
bench/profile_hook) and prints, per overload step (and for the ramp's server as a whole), the
microseconds a refused call and a call took and each one's share of the loop's time. The
wrappers cost CPU too (taken off the figures, not off the run): a --split run completes
fewer calls past capacity than a plain one, and its figures are for comparing, not quoting
as capacity.
"""

import argparse
import gc
import json
import os
import pstats
import shutil
import signal
import sys
import tempfile
import time
import urllib.request

import benchlib as bl
import digest_load
from hostmode import HostMode, free_port
from sipp_helpers import udp_bound

CALLER, CALLEE = "1000", "2000"
UAS_IP, UAC_IP, REG_IP = "127.0.0.2", "127.0.0.3", "127.0.0.4"
CALL_RATES = (100, 200, 300, 400, 500, 600, 750, 900, 1050, 1200, 1500, 1800, 2100, 2500, 3000,
              3500, 4000)
REG_RATES = (500, 1000, 2000, 3000, 4000, 5000, 6000, 8000, 10000, 12000, 15000, 18000, 21000,
             24000)
KEEP_UP = 0.95  # a step passes when 99% of its calls were done at >= 95% of the asked rate
FIRST_USER = 100000  # REGISTER users are FIRST_USER, FIRST_USER + 1, ...; password "pw" + user
SETTINGS = {
    "RATE_LIMIT": 0,
    "MAX_TRANSACTIONS": 100000,
    "MAX_CALLS": 10000,
    "MAX_BINDINGS": 100000,
    "LOG_LEVEL": "warning",
    # no OPTIONS pings to the registered callee: sipp is not a phone. Its answering scenario
    # takes a ping (sent 60 s after the callee registered) for a new call and fails it, and
    # with -m it then stops one INVITE short, so every step after the first minute failed
    # one call at both ends. Kamailio's configuration pings no one either.
    "QUALIFY_INTERVAL": 0,
}
KAMAILIO_CFG = os.path.join(bl.BENCH, "kamailio", "registrar_proxy.cfg")
KAMAILIO_APT = "apt-get install -y kamailio"
PROFILE_HOOK = os.path.join(bl.BENCH, "profile_hook")


# --- the servers ---------------------------------------------------------------------------
class Switchboard:
    label = "Switchboard"

    def __init__(self, workdir, users=0, profile=None, gc_stats=None, gc_mode=None, split=None):
        settings = dict(SETTINGS)
        cwd = bl.ROOT
        if users:
            # SIP_USERS with passwords is too long for one environment variable: settings.toml
            cwd = tempfile.mkdtemp(prefix="sb-", dir=workdir)
            names = ",".join("%d:pw%d" % (u, u) for u in range(FIRST_USER, FIRST_USER + users))
            with open(os.path.join(cwd, "settings.toml"), "w") as f:
                f.write('SIP_USERS = "%s"\n' % names)
        if profile or gc_stats or gc_mode or split:
            settings["PYTHONPATH"] = PROFILE_HOOK
        if split:
            settings["SWITCHBOARD_SPLIT"] = split
        self.split = split
        if gc_mode:
            settings["SWITCHBOARD_GC"] = gc_mode
            self.label = "Switchboard (gc %s)" % gc_mode
        if profile:
            settings["SWITCHBOARD_PROFILE"] = profile
        if gc_stats:
            settings["SWITCHBOARD_GC_STATS"] = gc_stats
        self.gc_stats = gc_stats
        self.hm = HostMode(settings, cwd=cwd)
        self.addr = self.hm.sip_addr
        self.pid = self.hm.proc.pid
        self.dashboard = any("Dashboard:" in line for line in self.hm.lines)

    def cpu(self):
        self.hm.read_available(0)  # keep its output pipe drained
        return bl.process_cpu(self.pid)

    def waited(self):
        return bl.run_queue_wait(self.pid)

    def counters(self):
        """The counters of /api/status ({} without a dashboard)."""
        try:
            url = "http://%s:%d/api/status" % (self.hm.host, self.hm.http_port)
            with urllib.request.urlopen(url, timeout=5) as r:
                return json.loads(r.read())["counters"]
        except (OSError, ValueError, KeyError):
            return {}

    def problems(self):
        out = self.hm.output().splitlines()
        return [line for line in out if " WARNING " in line or " ERROR " in line]

    def stop(self):
        self.hm.stop()


class Kamailio:
    label = "Kamailio"

    def __init__(self, workdir, auth=False, children=2):
        self.port = free_port()
        self.addr = ("127.0.0.1", self.port)
        self.rundir = tempfile.mkdtemp(prefix="kam-", dir=workdir)
        argv = [shutil.which("kamailio"), "-f", KAMAILIO_CFG, "-l", "udp:127.0.0.1:%d" % self.port,
                "-n", str(children), "-DD", "-E", "-Y", self.rundir, "-w", self.rundir,
                "-m", "512", "-M", "32"]
        if auth:
            argv += ["-A", "WITH_AUTH"]
        self.child = bl.Child(argv, self.rundir, os.path.join(self.rundir, "kamailio.log"))
        self.pids = [self.child.pid]
        try:
            end = time.monotonic() + 15
            while not udp_bound("127.0.0.1", self.port):
                if self.child.poll() is not None or time.monotonic() > end:
                    raise RuntimeError("Kamailio did not start:\n" + self.child.output()[-3000:])
                time.sleep(0.05)
            time.sleep(0.5)  # workers fork after the socket is bound
            self.pids = bl.descendants(self.child.pid)
        except BaseException:
            self.stop()
            raise
        self.pid = self.child.pid
        self.gc_stats = None
        self.split = None

    def _sum(self, read):
        """read(pid) summed over Kamailio's processes (those gone count nothing)."""
        return sum(value for value in map(read, self.pids) if value is not None)

    def cpu(self):
        return self._sum(bl.process_cpu)

    def waited(self):
        return self._sum(bl.run_queue_wait)

    def problems(self):
        return [line for line in self.child.output().splitlines() if "ERROR" in line]

    def stop(self):
        self.child.stop()
        for pid in self.pids[1:]:  # its workers, should any outlive the main process
            try:
                with open("/proc/%d/cmdline" % pid, "rb") as f:
                    if b"kamailio" not in f.read():
                        continue
                os.kill(pid, signal.SIGKILL)
            except (OSError, ProcessLookupError):
                pass


# --- sipp ----------------------------------------------------------------------------------
# Each sipp socket's send and receive buffer (-buff_size; Linux doubles it, up to
# net.core.rmem_max). sipp's own default, 64 KB, let its caller drop the 503s of a burst
# past capacity (section 4.15 of docs/performance.md): the load generator must not be what
# drops. The servers get what they ask for (Switchboard 4 MB, Kamailio its default).
# --sipp-buffer 0 leaves sipp its default (how the runs before 4.15 were made).
SIPP_BUFFER = 4 << 20
sipp_buffer = SIPP_BUFFER  # what sipp_argv() gives (--sipp-buffer)


def sipp_argv(scenario, local, remote=None, rate=None, calls=1, timeout=30, extra=()):
    ip, port = local
    argv = [bl.sipp_path()]
    if remote:
        argv.append("%s:%d" % remote)
    argv += [
        "-sf", os.path.join(bl.SIPP_DIR, scenario),
        "-i", ip, "-p", str(port), "-bind_local",
        "-mi", ip, "-mp", str(free_port(host=ip)),
        "-m", str(calls),
        "-nostdin",
        "-default_behaviors", "all,-bye,-abortunexp",
        "-timeout", "%ds" % timeout, "-timeout_error",
        "-recv_timeout", "10000",
        "-trace_stat", "-stf", "stat.csv",
        "-trace_err", "-error_file", "errors.log",
    ]
    if sipp_buffer:
        argv += ["-buff_size", str(sipp_buffer)]
    if rate:
        argv += ["-r", str(rate), "-l", str(max(100, rate * 20))]
    argv += list(extra)
    return argv


def sipp(argv, folder, name="sipp"):
    os.makedirs(folder, exist_ok=True)
    return bl.Child(argv, folder, os.path.join(folder, name + ".log"))


def rtt_freq(n):
    for freq in (100, 50, 20, 10, 5, 2):
        if n % freq == 0:
            return str(freq)
    return "1"


def register_callee(server, workdir):
    """Register CALLEE from a free port on UAS_IP; returns that (ip, port)."""
    local = (UAS_IP, free_port(host=UAS_IP))
    folder = os.path.join(workdir, "%s-register-callee" % server.label)
    os.makedirs(folder, exist_ok=True)
    users = os.path.join(folder, "callee.csv")
    with open(users, "w") as f:
        f.write("SEQUENTIAL\n%s;pw%s\n" % (CALLEE, CALLEE))
    for _ in range(3):
        proc = sipp(sipp_argv("register.xml", local, server.addr, timeout=10,
                              extra=["-inf", users]), folder)
        if proc.finish(20) == 0:
            return local
        time.sleep(1)
    raise RuntimeError("%s: the callee could not register:\n%s" % (server.label, proc.output()))


class Step:
    """One fixed-rate step: what sipp and /proc said."""

    def __init__(self, kind, rate, n):
        self.kind = kind
        self.rate = rate
        self.n = n
        self.ok = False
        self.done = 0
        self.failed = 0
        self.reasons = {}
        self.retrans = 0
        self.achieved = 0.0
        self.p50 = self.p99 = None
        self.mean = None
        self.cpu = 0.0
        self.waited = None  # seconds the server was runnable but had no CPU
        self.steal = None  # seconds of CPU the hypervisor took from this machine (both CPUs)
        self.wall = 0.0
        self.sipp_cpu = 0.0
        self.drops = None
        self.client_drops = None  # dropped at the sipp sockets (caller and callee)
        self.speed = None  # engine_speed() just before a call step (us per call)
        self.rss = None
        self.t0 = self.t1 = 0.0
        self.gc_events = []
        self.note = ""
        self.folder = None

    @property
    def cpu_per_1000(self):
        return 1000.0 * self.cpu / self.done if self.done else None

    def row(self):
        reasons = ",".join("%s=%d" % kv for kv in sorted(self.reasons.items()))
        return [
            str(self.rate), "%.0f" % self.achieved, "%d/%d" % (self.done, self.n),
            str(self.failed) + (" (%s)" % reasons if reasons else ""), str(self.retrans),
            bl.fmt(self.p50, "%.1f"), bl.fmt(self.p99, "%.1f"),
            bl.fmt(self.cpu_per_1000, "%.3f"), of_wall(self.cpu, self.wall),
            of_wall(self.waited, self.wall), of_wall(self.steal, self.wall),
            of_wall(self.sipp_cpu, self.wall), bl.fmt(self.drops, "%d"),
            bl.fmt(self.client_drops, "%d"), bl.fmt(self.speed, "%.0f"),
            bl.fmt(self.rss, "%.0f"),
            "ok" if self.ok else "FAIL" + (" " + self.note if self.note else ""),
        ]


HEADER = ["rate/s", "done/s", "done", "failed", "retrans", "p50 ms", "p99 ms", "cpu s/1000",
          "server cpu", "server waited", "steal", "client cpu", "server drops", "client drops",
          "engine us/call", "rss MB", "result"]


def of_wall(seconds, wall):
    """Seconds of CPU or of waiting over a step as a share of its wall time ("-" when
    unknown)."""
    return "-" if seconds is None else "%.0f%%" % (100 * seconds / max(wall, 0.001))


def delta(before, after):
    """after - before, or None when either reading failed."""
    return None if before is None or after is None else after - before


def begin_measure(server, step):
    """Server CPU, run-queue wait and socket drops at the start of a step (step.t0 set)."""
    step.t0 = time.monotonic()
    return server.cpu(), bl.udp_drops(*server.addr), server.waited(), bl.steal_seconds()


def end_measure(server, step, before):
    """Fill step's wall time, server CPU, run-queue wait, steal, drops and RSS since
    begin_measure()."""
    cpu0, drops0, waited0, steal0 = before
    step.steal = delta(steal0, bl.steal_seconds())
    cpu1 = server.cpu()
    step.waited = delta(waited0, server.waited())
    step.drops = delta(drops0, bl.udp_drops(*server.addr))
    step.t1 = time.monotonic()
    step.wall = step.t1 - step.t0
    if isinstance(server, Switchboard):
        step.rss = bl.rss_mb(server.pid)
    step.cpu = (cpu1 or 0.0) - (cpu0 or 0.0)


def measure(server, step, uac_argv, folder, extra_procs=(), seconds=10, watch=()):
    """Run the caller sipp to its end while measuring the server; fill step. watch: the
    sipp sockets' (ip, port) whose kernel drops are summed into step.client_drops (read
    while sipp runs: a socket's counter goes with it)."""
    before = begin_measure(server, step)
    uac = sipp(uac_argv, os.path.join(folder, "uac"))
    drops = {}

    def read_drops():
        for addr in watch:
            seen = bl.udp_drops(*addr)
            if seen is not None:
                drops[addr] = max(seen, drops.get(addr, 0))

    try:
        uac.finish(seconds + 45, read_drops if watch else None)
    finally:
        uac.stop()
    if watch:
        step.client_drops = sum(drops.values())
    end_measure(server, step, before)
    for proc in extra_procs:
        proc.finish(15)
    step.sipp_cpu = (uac.cpu or 0.0) + sum(p.cpu or 0.0 for p in extra_procs)
    stat = bl.read_stat(os.path.join(folder, "uac", "stat.csv"))
    step.done = bl.stat_int(stat, "SuccessfulCall(C)")
    step.failed = bl.stat_int(stat, "FailedCall(C)")
    step.reasons = bl.failures(stat)
    step.retrans = bl.stat_int(stat, "Retransmissions(C)")
    step.achieved = step.done / max(0.001, uac.elapsed)  # replaced below when sipp timed it
    times, stamps = bl.read_rtt(os.path.join(folder, "uac"), step.kind)
    step.p50 = bl.percentile(times, 50)
    step.p99 = bl.percentile(times, 99)
    done99 = bl.percentile(stamps, 99)
    if done99:
        step.achieved = 0.99 * step.n / (done99 / 1000.0)
    step.ok = uac.returncode == 0 and step.failed == 0 and step.done == step.n
    keep_up(step)
    if not stat:
        step.note = "no statistics (sipp: %s)" % uac.output().strip()[-200:]
    return uac


SPEED_CALLS = 300  # calls of the engine alone in each of engine_speed()'s three rounds


def engine_speed():
    """Microseconds of CPU per call of the engine alone (bench/engine_calls.py's calls, the
    middle of three rounds of SPEED_CALLS, in this process, collector off), measured just
    before a call step: how fast the machine was then. On a shared virtual machine this
    moves by a quarter within minutes (docs/performance.md 4.15), and the overload targets
    compare steps measured minutes apart."""
    import engine_calls
    from flows import Phone

    from switchboard.config import Config
    from switchboard.engine import Engine
    from switchboard.trace import Trace

    relay = engine_calls.host_relay()
    rounds = []
    gc.disable()
    try:
        for _ in range(3):
            spent = engine_calls.one_round(Engine, Config, Trace, Phone, SPEED_CALLS, 50, relay)
            rounds.append(1e6 * sum(spent.values()) / SPEED_CALLS)
    finally:
        gc.enable()
    return sorted(rounds)[1]


def call_step(server, callee, rate, seconds, workdir, hold_ms, scenario="uac_call.xml"):
    n = rate * seconds
    step = Step("invite", rate, n)
    step.speed = engine_speed()
    folder = os.path.join(workdir, "%s-%s-%d" % (server.label, scenario[:-4], rate))
    step.folder = folder
    uas = sipp(sipp_argv("uas_answer.xml", callee, calls=n, timeout=seconds + 45,
                         extra=["-key", "user", CALLEE]), os.path.join(folder, "uas"))
    try:
        end = time.monotonic() + 5
        while not udp_bound(*callee):
            if uas.poll() is not None or time.monotonic() > end:
                raise RuntimeError("callee sipp did not start:\n" + uas.output())
            time.sleep(0.02)
        local = (UAC_IP, free_port(host=UAC_IP))
        argv = sipp_argv(scenario, local, server.addr, rate, n, seconds + 30,
                         ["-s", CALLEE, "-key", "user", CALLER, "-d", str(hold_ms),
                          "-trace_rtt", "-rtt_freq", rtt_freq(n)])
        measure(server, step, argv, folder, [uas], seconds, (local, callee))
    finally:
        uas.stop()
    uas_stat = bl.read_stat(os.path.join(folder, "uas", "stat.csv"))
    uas_failed = bl.stat_int(uas_stat, "FailedCall(C)")
    if uas_failed or uas.returncode != 0:
        step.ok = False
        step.note = "callee: %d failed%s" % (uas_failed, " (killed)" if uas.killed else "")
        step.reasons.update({"callee_" + k: v for k, v in bl.failures(uas_stat).items()})
    return step


class OverloadStep:
    """One fixed-rate step past capacity (bench/sipp/uac_overload.xml): a call completes or
    gets a 503; what sipp and /proc said."""

    def __init__(self, server, step, factor):
        self.server = server
        self.factor = factor
        self.rate = step.rate
        self.n = step.n
        stat = bl.read_stat(os.path.join(step.folder, "uac", "stat.csv"))
        shed_times, _ = bl.read_rtt(os.path.join(step.folder, "uac"), "shed")
        self.shed = len(shed_times)
        # sipp counts a call ended by stop_call (after its 503) as successful
        self.completed = max(0, step.done - self.shed)
        self.shed_p99 = bl.percentile(shed_times, 99)
        self.shed_max = shed_times[-1] if shed_times else None
        self.shed_late = sum(1 for t in shed_times if t > 1000)
        # neither completed nor answered 503 (timeouts, unexpected answers)
        self.failed = max(0, self.n - self.completed - self.shed)
        self.reasons = {k: v for k, v in bl.failures(stat).items() if k != "CallRejected"}
        self.callee = {k[len("callee_"):]: v for k, v in step.reasons.items()
                       if k.startswith("callee_")}
        self.retrans = step.retrans
        self.cpu = step.cpu
        self.waited = step.waited
        self.steal = step.steal
        self.sipp_cpu = step.sipp_cpu
        self.wall = step.wall
        self.drops = step.drops
        self.client_drops = step.client_drops
        self.speed = step.speed
        # completed calls per second of offered load (the n calls took n / rate seconds)
        self.goodput = self.completed * self.rate / float(self.n)
        self.counters = {}
        self.split = None
        self.again = None  # confirm_step() just before this step (Step), or None

    def row(self, zero_failure):
        reasons = ",".join("%s=%d" % kv for kv in sorted(self.reasons.items()))
        callee = ",".join("%s=%d" % kv for kv in sorted(self.callee.items()))
        share = "-" if not zero_failure else "%.0f%%" % (100.0 * self.goodput / zero_failure)
        return [
            self.server, "%d (%sx)" % (self.rate, self.factor), "%d/%d" % (self.completed, self.n),
            "%.0f" % self.goodput, share,
            str(self.failed) + (" (%s)" % reasons if reasons else ""), str(self.shed),
            bl.fmt(self.shed_p99, "%.0f"), bl.fmt(self.shed_max, "%.0f"), str(self.shed_late),
            str(self.retrans), bl.fmt(1000.0 * self.cpu / self.n, "%.3f"),
            bl.fmt(1000.0 * self.cpu / self.completed if self.completed else None, "%.3f"),
            of_wall(self.cpu, self.wall), of_wall(self.waited, self.wall),
            of_wall(self.steal, self.wall), of_wall(self.sipp_cpu, self.wall),
            bl.fmt(self.drops, "%d"),
            bl.fmt(self.client_drops, "%d"), bl.fmt(self.speed, "%.0f"),
            callee or "0",
        ] + again_cells(self.again)


def again_cells(step):
    """The overload table's cells for confirm_step(): passed or not, CPU per 1000 calls,
    server CPU."""
    if step is None:
        return ["-", "-", "-"]
    return [step.row()[-1], bl.fmt(step.cpu_per_1000, "%.3f"), of_wall(step.cpu, step.wall)]


OVERLOAD_HEADER = ["server", "offered/s", "completed", "completed/s", "of zero-failure",
                   "failed (no answer)", "503s", "503 p99 ms", "503 max ms", "503 > 1 s",
                   "retrans", "cpu s/1000 offered", "cpu s/1000 completed", "server cpu",
                   "server waited", "steal", "client cpu", "server drops", "client drops",
                   "engine us/call", "callee failed", "zero-failure again",
                   "again cpu s/1000", "again server cpu"]


OVERLOAD_COUNTERS = ("received", "shed", "shed_absorbed", "overloads", "retransmitted",
                     "answered_5xx", "dropped", "internal_errors")


def confirm_step(make, zero, seconds, workdir):
    """The zero-failure rate again, with the ramp's strict scenario, on a fresh server, just
    before an overload step: whether the machine still carried it then (Step)."""
    server = make()
    try:
        callee = register_callee(server, workdir)
        step = call_step(server, callee, zero, seconds, workdir, 0)
    finally:
        server.stop()
    print("   zero-failure rate again: " + "  ".join(step.row()), flush=True)
    time.sleep(1)
    return step


def overload_steps(make, label, rates, seconds, workdir, factors, confirm=None):
    """Each rate on a fresh server (nothing left over from a ramp): [OverloadStep]. confirm:
    a zero-failure rate to run again (confirm_step()) just before each step."""
    out = []
    for rate, factor in zip(rates, factors):
        again = confirm_step(make, confirm, seconds, workdir) if confirm else None
        server = make()
        try:
            callee = register_callee(server, workdir)
            step = call_step(server, callee, rate, seconds, workdir, 0, "uac_overload.xml")
            result = OverloadStep(label, step, factor)
            result.again = again
            if isinstance(server, Switchboard):
                result.counters = server.counters()
            out.append(result)
            print("   " + "  ".join(result.row(None)), flush=True)
            if result.counters:
                print("   server counters: %s" % " ".join(
                    "%s=%s" % (k, result.counters.get(k)) for k in OVERLOAD_COUNTERS), flush=True)
        finally:
            server.stop()
        if server.split and out:
            out[-1].split = read_split(server.split)
        time.sleep(1)
    return out


def overload_table(results, zero_failure):
    """The overload comparison: offered, completed, failed, 503s, retransmissions, CPU."""
    rows = []
    for label in results:
        for step in results[label]:
            rows.append(step.row(zero_failure))
    print("== overload: calls offered past capacity, each rate on a fresh server "
          "(503 times from the INVITE; 'of zero-failure' = completed/s over Switchboard's "
          "highest zero-failure rate, %s/s)" % bl.fmt(zero_failure, "%d"))
    print(bl.table(rows, OVERLOAD_HEADER))
    print(flush=True)


def write_users(path, count):
    with open(path, "w") as f:
        f.write("SEQUENTIAL\n")
        for u in range(FIRST_USER, FIRST_USER + count):
            f.write("%d;pw%d\n" % (u, u))


def register_step(make_server, auth, rate, seconds, workdir, users_csv):
    n = rate * seconds
    step = Step("reg", rate, n)
    server = make_server(auth, n)
    try:
        if auth:
            digest_step(server, step, seconds)
        else:
            folder = os.path.join(workdir, "%s-register-%d" % (server.label, rate))
            local = (REG_IP, free_port(host=REG_IP))
            argv = sipp_argv("register.xml", local, server.addr, rate, n, seconds + 30,
                             ["-inf", users_csv, "-trace_rtt", "-rtt_freq", rtt_freq(n)])
            measure(server, step, argv, folder, (), seconds, (local,))
        problems = server.problems()
        if problems:
            step.note = problems[-1][-120:]
    finally:
        server.stop()
    if server.gc_stats:
        step.gc_events = read_gc(server.gc_stats)
    return step


def read_split(path):
    """What the profile hook wrote (SWITCHBOARD_SPLIT), or None."""
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def _ns(bucket, key):
    return bucket.get(key, [0, 0])[0]


def _per(total_ns, n):
    return bl.fmt(total_ns / 1000.0 / n if n else None, "%.1f")


def _share(part, whole):
    return bl.fmt(100.0 * part / whole if whole else None, "%.1f%%")


def split_row(name, split):
    """One step's row of split_table()."""
    read, engine, sent = split["read"], split["engine"], split["sent"]
    refused = read.get("shed", [0, 0])[1]
    refusing = _ns(read, "shed") + _ns(sent, "503") + _ns(read, "absorb")
    calls = engine.get("INVITE", [0, 0])[1]
    handling = sum(v[0] for v in engine.values())
    calling = handling + _ns(read, "pass") + _ns(sent, "other")
    step = split["step"][0]
    return [name, str(refused), _per(_ns(read, "shed"), refused), _per(_ns(sent, "503"), refused),
            _per(_ns(read, "absorb"), refused), _per(refusing, refused), str(calls),
            _per(handling, calls), _per(_ns(read, "pass"), calls),
            _per(_ns(sent, "other"), calls), _per(calling, calls), _share(refusing, step),
            _share(calling, step), _share(split["tick"][0], step),
            _share(step - refusing - calling - split["tick"][0], step),
            bl.fmt(split.get("step_max", 0) / 1e6 if "step_max" in split else None, "%.1f"),
            bl.fmt(split.get("step_over_10ms"), "%d")]


def split_table(title, splits):
    """Where Switchboard's loop spent its time (bench/profile_hook, SWITCHBOARD_SPLIT): per
    refused call (its INVITE read and refused, its 503 sent, the ACK to it read and
    absorbed), per call the engine took (every datagram of it read, handled and sent, per
    INVITE), the timers (Engine.tick()) and the rest of App.step() (the dashboard, the loop's
    own bookkeeping); and the longest App.step() and how many took over 10 ms: whether the
    loop ever stalled."""
    splits = [(name, split) for name, split in splits if split]
    if not splits:
        return
    print("== where the loop's time went: %s (bench/profile_hook SWITCHBOARD_SPLIT; "
          "microseconds of wall time in App.step(), the wrappers' own cost taken off)" % title)
    print(bl.table([split_row(name, split) for name, split in splits],
                   ["step", "refused", "INVITE read+refused", "503 sent", "ACK read+absorbed",
                    "us per refused call", "calls (INVITEs)", "engine", "read", "sent",
                    "us per call", "refusing", "calls", "timers", "rest of step()",
                    "longest step() ms", "step() > 10 ms"]))
    kinds = [(name, {k: v[0] / 1000.0 / v[1] for k, v in split["engine"].items() if v[1]})
             for name, split in splits]
    names = sorted({k for _, by in kinds for k in by}, key=lambda k: (k[:1].isdigit(), k))
    print("   Engine.receive(), microseconds per message:")
    print(bl.table([[name] + [bl.fmt(by.get(k), "%.1f") for k in names] for name, by in kinds],
                   ["step"] + names))
    print(flush=True)


def read_gc(path):
    """[(generation, start, seconds)] that the profile hook wrote (SWITCHBOARD_GC_STATS)."""
    events = []
    try:
        with open(path) as f:
            for line in f:
                parts = line.split()
                if len(parts) == 3:
                    events.append((int(parts[0]), float(parts[1]), float(parts[2])))
    except OSError:
        pass
    return events


def gc_table(title, steps, events=None):
    """CPython's cyclic garbage collections in the server during each step."""
    rows = []
    for step in steps:
        source = step.gc_events if events is None else events
        mine = [e for e in source if step.t0 <= e[1] <= step.t1]
        counts = [0, 0, 0]
        worst = [0.0, 0.0, 0.0]
        for generation, _, took in mine:
            if 0 <= generation <= 2:
                counts[generation] += 1
                worst[generation] = max(worst[generation], took)
        total = sum(e[2] for e in mine)
        rows.append([str(step.rate), "%d/%d/%d" % tuple(counts), "%.0f" % (1000 * total),
                     "%.1f%%" % (100 * total / max(step.wall, 0.001)),
                     "%.1f" % (1000 * worst[0]), "%.1f" % (1000 * worst[1]),
                     "%.1f" % (1000 * worst[2])])
    print("-- %s: cyclic garbage collections in the server (gc.callbacks)" % title)
    print(bl.table(rows, ["rate/s", "collections gen0/1/2", "total ms", "of the step",
                          "longest gen0 ms", "gen1 ms", "gen2 ms"]))
    print(flush=True)


def digest_step(server, step, seconds):
    """REGISTER with digest authentication through bench/digest_load.py (sipp cannot: see there)."""
    users = [(str(u), "pw%d" % u) for u in range(FIRST_USER, FIRST_USER + step.n)]
    before = begin_measure(server, step)
    result = digest_load.run(server.addr, REG_IP, users, step.rate, seconds + 30)
    end_measure(server, step, before)
    step.sipp_cpu = result.cpu
    step.done = result.done
    step.failed = result.failed
    step.reasons = dict(result.reasons)
    step.retrans = result.retrans
    done99 = bl.percentile(result.finished, 99)
    step.achieved = 0.99 * step.n / max(0.001, done99 or result.elapsed)
    step.p50 = bl.percentile(result.latencies, 50)
    step.p99 = bl.percentile(result.latencies, 99)
    step.ok = step.failed == 0 and step.done == step.n
    keep_up(step)


def keep_up(step):
    """A step passes only if 99% of the work was done at (almost) the asked rate: a server
    that answers late but never loses a call (retransmissions rescue it) has fallen behind."""
    if step.ok and step.achieved < KEEP_UP * step.rate:
        step.ok = False
        step.note = "behind: %.0f/s" % step.achieved


def ramp(title, rates, run_step, patience):
    """Steps at rising rates until `patience` steps in a row fail; returns [Step]."""
    print("-- %s (load average %s)" % (title, bl.load_average()), flush=True)
    steps = []
    bad = 0
    for rate in rates:
        step = run_step(rate)
        steps.append(step)
        print("   " + "  ".join(step.row()), flush=True)
        bad = 0 if step.ok else bad + 1
        if bad >= patience:
            break
        time.sleep(1)
    print(bl.table([s.row() for s in steps], HEADER))
    print(flush=True)
    return steps


def best(steps):
    """The highest rate with zero failed calls, below the first failing step."""
    top = None
    for step in steps:
        if not step.ok:
            break
        top = step
    return top


def at_rate(steps, rate):
    for step in steps:
        if step.rate == rate and step.ok:
            return step
    return None


def ratio(a, b):
    if a is None or b is None or not b:
        return "-"
    return "%.2f" % (a / b)


def summarize(title, results, unit):
    """Print the comparison table for one kind of load: {label: [Step]}."""
    labels = list(results)
    tops = {label: best(results[label]) for label in labels}
    common = None
    if len(labels) == 2 and all(tops.values()):
        common = min(tops[label].rate for label in labels)
    rows = []

    def row(name, values, spec):
        cells = [bl.fmt(v, spec) for v in values]
        if len(values) == 2:
            cells.append(ratio(values[0], values[1]))
        rows.append([name] + cells)

    row("highest zero-failure rate (%s/s)" % unit,
        [tops[label].rate if tops[label] else None for label in labels], "%d")
    for label_name, pick in (("at its own highest rate", lambda label: tops[label]),
                             ("at %s/s (both)" % common, lambda label: at_rate(results[label],
                                                                             common))):
        if pick is None or (common is None and "both" in label_name):
            continue
        steps = [pick(label) for label in labels]
        row("p50 ms, %s" % label_name, [s.p50 if s else None for s in steps], "%.1f")
        row("p99 ms, %s" % label_name, [s.p99 if s else None for s in steps], "%.1f")
        row("CPU s per 1000 %s, %s" % (unit, label_name),
            [s.cpu_per_1000 if s else None for s in steps], "%.3f")
    header = ["", *labels] + (["ratio %s/%s" % tuple(labels)] if len(labels) == 2 else [])
    print("== %s" % title)
    print(bl.table(rows, header))
    for label in labels:
        steps = results[label]
        if steps and steps[-1].ok:
            print("note: %s had no failing step up to %d/s, the end of the ramp: its limit is "
                  "higher" % (label, steps[-1].rate))
    print(flush=True)


def print_profile(path, limit):
    stats = pstats.Stats(path)
    stats.strip_dirs()
    total = stats.total_tt
    print("== cProfile of the server process (total %.2f s; profiling slows it, compare shares)"
          % total)
    stats.sort_stats("tottime").print_stats(limit)
    stats.sort_stats("cumulative").print_stats(limit)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--servers", default="switchboard,kamailio",
                        help="comma-separated: switchboard, kamailio")
    parser.add_argument("--call-rates", default=",".join(map(str, CALL_RATES)))
    parser.add_argument("--reg-rates", default=",".join(map(str, REG_RATES)))
    parser.add_argument("--call-seconds", type=int, default=10, help="length of a call step")
    parser.add_argument("--reg-seconds", type=int, default=5, help="length of a REGISTER step")
    parser.add_argument("--hold-ms", type=int, default=0, help="talk time between ACK and BYE")
    parser.add_argument("--patience", type=int, default=2,
                        help="failing steps in a row that end a ramp")
    parser.add_argument("--skip-calls", action="store_true")
    parser.add_argument("--skip-register", action="store_true")
    parser.add_argument("--skip-overload", action="store_true")
    parser.add_argument("--overload-factors", default="2,4",
                        help="overload steps at these multiples of Switchboard's highest "
                             "zero-failure call rate from the ramp")
    parser.add_argument("--overload-rates",
                        help="overload steps at these call rates instead (no ramp needed)")
    parser.add_argument("--zero-failure", type=int,
                        help="with --overload-rates: the zero-failure rate to compare with")
    parser.add_argument("--no-confirm", dest="confirm", action="store_false",
                        help="do not run Switchboard's zero-failure rate again (strict "
                             "scenario, fresh server) just before each of its overload steps")
    parser.add_argument("--skip-auth", action="store_true")
    parser.add_argument("--profile", choices=("calls", "register", "register-auth"),
                        help="instead: one step against Switchboard under cProfile")
    parser.add_argument("--profile-rate", type=int, default=300)
    parser.add_argument("--profile-lines", type=int, default=30)
    parser.add_argument("--gc-stats", action="store_true",
                        help="time CPython's garbage collections in Switchboard (gc.callbacks)")
    parser.add_argument("--switchboard-gc", metavar="MODE",
                        help="experiment: run Switchboard with its cyclic GC 'off' or with "
                             "thresholds 'A,B,C' (bench/profile_hook)")
    parser.add_argument("--split", action="store_true",
                        help="time Switchboard's loop by what each datagram was (refused call, "
                             "call) through bench/profile_hook, and print where the time went")
    parser.add_argument("--keep", action="store_true", help="keep the sipp logs (path printed)")
    parser.add_argument("--sipp-buffer", type=int, default=SIPP_BUFFER, metavar="BYTES",
                        help="each sipp socket's buffer (-buff_size); 0: sipp's default")
    args = parser.parse_args()
    servers = [s.strip().lower() for s in args.servers.split(",") if s.strip()]
    if args.profile:
        servers = ["switchboard"]
    for name in servers:
        if name not in ("switchboard", "kamailio"):
            parser.error("unknown server %r" % name)
    bl.sipp_path()
    if "kamailio" in servers and not shutil.which("kamailio"):
        sys.exit("kamailio is not installed (the comparison needs it): %s\n"
                 "or run with --servers switchboard" % KAMAILIO_APT)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    extra = ["sipp: %s" % bl.sipp_version()]
    if "kamailio" in servers:
        extra.append("kamailio: %s (%s, 2 UDP workers)"
                     % (bl._run(["kamailio", "-v"]).splitlines()[0],
                        os.path.relpath(KAMAILIO_CFG, bl.ROOT)))
    global sipp_buffer
    sipp_buffer = args.sipp_buffer
    extra.append("net.core.rmem_max: %s (caps every socket's buffer); sipp -buff_size: %s"
                 % (bl.read_text("/proc/sys/net/core/rmem_max"),
                    sipp_buffer or "not given (sipp's default)"))
    extra.append("switchboard settings: %s" % " ".join("%s=%s" % kv for kv in SETTINGS.items()))
    extra.append("call steps %d s, hold %d ms; REGISTER steps %d s (fresh server each)"
                 % (args.call_seconds, args.hold_ms, args.reg_seconds))
    bl.print_machine("bench/host_load.py", extra)

    workdir = tempfile.mkdtemp(prefix="bench-host-")
    try:
        if args.profile:
            run_profile(args, workdir)
        else:
            run_all(args, servers, workdir)
    finally:
        print("load average at end (1, 5, 15 min): %s" % bl.load_average())
        if args.keep:
            print("logs kept in %s" % workdir)
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def make_factory(name, workdir, gc_stats=False, gc_mode=None, split=False):
    def make(auth=False, users=0):
        if name == "kamailio":
            return Kamailio(workdir, auth=auth)
        def new_file(prefix, suffix):
            fd, path = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=workdir)
            os.close(fd)
            return path

        return Switchboard(workdir, users=users if auth else 0,
                           gc_stats=new_file("gc-", ".txt") if gc_stats else None,
                           gc_mode=gc_mode,
                           split=new_file("split-", ".json") if split else None)

    return make


def run_all(args, servers, workdir):
    call_rates = [int(r) for r in args.call_rates.split(",")]
    reg_rates = [int(r) for r in args.reg_rates.split(",")]
    labels = {"switchboard": "Switchboard", "kamailio": "Kamailio"}
    if args.switchboard_gc:
        labels["switchboard"] = "Switchboard (gc %s)" % args.switchboard_gc
    if not args.skip_calls:
        results = {}
        for name in servers:
            server = make_factory(name, workdir, args.gc_stats, args.switchboard_gc,
                                  args.split)()
            try:
                if name == "switchboard":
                    print("Switchboard dashboard %s" % ("on" if server.dashboard else "off"))
                callee = register_callee(server, workdir)
                results[labels[name]] = ramp(
                    "%s: calls, %d s a step" % (labels[name], args.call_seconds), call_rates,
                    lambda rate, s=server, c=callee: call_step(s, c, rate, args.call_seconds,
                                                               workdir, args.hold_ms),
                    args.patience)
                problems = server.problems()
                if problems:
                    print("   %s printed %d warnings/errors, last: %s"
                          % (labels[name], len(problems), problems[-1]))
            finally:
                server.stop()
            if server.gc_stats:
                gc_table("%s: calls" % labels[name], results[labels[name]],
                         read_gc(server.gc_stats))
            if server.split:
                split_table("%s: the call ramp (one server, every step)" % labels[name],
                            [("ramp", read_split(server.split))])
        summarize("calls (INVITE/100/180/200/ACK/BYE/200)", results, "calls")
    if not args.skip_overload:
        zero = args.zero_failure
        if not args.skip_calls and labels["switchboard"] in results:
            top = best(results[labels["switchboard"]])
            zero = top.rate if top else None
        if args.overload_rates:
            rates = [int(r) for r in args.overload_rates.split(",")]
            factors = ["%.1f" % (r / float(zero)) if zero else "-" for r in rates]
        elif zero:
            factors = [f.strip() for f in args.overload_factors.split(",")]
            rates = [int(zero * float(f)) for f in factors]
        else:
            rates = []
            print("overload steps skipped: no zero-failure rate (give --overload-rates)")
        if rates:
            found = {}
            for name in servers:
                print("-- %s: overload, %d s a step (load average %s)"
                      % (labels[name], args.call_seconds, bl.load_average()), flush=True)
                found[labels[name]] = overload_steps(
                    make_factory(name, workdir, False, args.switchboard_gc, args.split),
                    labels[name], rates, args.call_seconds, workdir, factors,
                    zero if args.confirm and zero and name == "switchboard" else None)
            overload_table(found, zero)
            if args.split:
                split_table("Switchboard: overload steps", [
                    ("%d (%sx)" % (step.rate, step.factor), step.split)
                    for steps in found.values() for step in steps if step.split])
    if not args.skip_register:
        users_csv = os.path.join(workdir, "users.csv")
        write_users(users_csv, max(reg_rates) * args.reg_seconds)
        for auth in (False, True):
            if auth and args.skip_auth:
                continue
            results = {}
            for name in servers:
                make = make_factory(name, workdir, args.gc_stats, args.switchboard_gc)
                results[labels[name]] = ramp(
                    "%s: REGISTER%s, unique users, %d s a step"
                    % (labels[name], " with digest auth" if auth else "", args.reg_seconds),
                    reg_rates,
                    lambda rate, m=make, a=auth: register_step(m, a, rate, args.reg_seconds,
                                                               workdir, users_csv),
                    args.patience)
                if args.gc_stats and name == "switchboard":
                    gc_table("Switchboard: REGISTER%s" % (" with digest auth" if auth else ""),
                             results[labels[name]])
            summarize("REGISTER%s" % (" with digest authentication" if auth else ""),
                      results, "registrations")


def run_profile(args, workdir):
    out = os.path.join(workdir, "switchboard.prof")
    gc_path = os.path.join(workdir, "gc.txt")
    rate = args.profile_rate
    title = "Switchboard under cProfile: %s" % args.profile
    if args.profile == "calls":
        server = Switchboard(workdir, profile=out, gc_stats=gc_path)
        try:
            callee = register_callee(server, workdir)
            steps = ramp(title, [rate], lambda r: call_step(server, callee, r, args.call_seconds,
                                                             workdir, args.hold_ms), 1)
        finally:
            server.stop()
        gc_table(title, steps, read_gc(gc_path))
    else:
        auth = args.profile == "register-auth"
        users_csv = os.path.join(workdir, "users.csv")
        n = rate * args.reg_seconds
        write_users(users_csv, n)
        steps = ramp(title, [rate], lambda r: register_step(
            lambda a, u: Switchboard(workdir, users=u if a else 0, profile=out, gc_stats=gc_path),
            auth, r, args.reg_seconds, workdir, users_csv), 1)
        gc_table(title, steps)
    if not os.path.exists(out):
        sys.exit("no profile was written (%s)" % out)
    print_profile(out, args.profile_lines)


if __name__ == "__main__":
    main()
