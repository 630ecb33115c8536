"""Shared parts of the benchmarks: the machine they ran on, CPU time of processes, bounded
child processes stopped by PID, sipp runs and their statistics files, percentiles.

Benchmarks print figures; they never pass or fail. Every process started here is stopped
by its PID, also when the benchmark is interrupted.
"""

import argparse
import datetime
import os
import platform
import shutil
import signal
import subprocess
import sys
import time

BENCH = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH)
TESTS = os.path.join(ROOT, "tests")
SIPP_DIR = os.path.join(BENCH, "sipp")
CLK_TCK = os.sysconf("SC_CLK_TCK")

LIB = os.path.join(ROOT, "lib")

for _path in (LIB, TESTS):
    if _path not in sys.path:
        sys.path.insert(0, _path)


def _run(argv, cwd=ROOT):
    try:
        out = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=20,
                             check=False)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return out.stdout.strip()


def vm_node():
    """The node that runs the MicroPython VM (tests/mpyvm.py); exits saying why when the VM is
    not installed (`bash tools/test` installs it)."""
    from mpyvm import MicroPythonUnavailable, node_path

    try:
        return node_path()
    except MicroPythonUnavailable as e:
        sys.exit(str(e))


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def read_text(path):
    """A small file's text, stripped, or "unknown"."""
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return "unknown"


def load_average():
    try:
        return "%.2f %.2f %.2f" % os.getloadavg()
    except OSError:
        return "unknown"


def git_commit():
    commit = _run(["git", "rev-parse", "--short=12", "HEAD"]) or "unknown"
    dirty = _run(["git", "status", "--porcelain", "--untracked-files=no", "--", "lib", "code.py"])
    return commit + (" + uncommitted changes in lib/ or code.py" if dirty else "")


def machine_lines(extra=()):
    """The facts a figure depends on, one 'name: value' per line."""
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else "?"
    lines = [
        "date: %s" % datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M:%S %Z"),
        "cpu: %s" % cpu_model(),
        "cores: %s (usable by this process: %s)" % (os.cpu_count(), affinity),
        "kernel: %s %s" % (platform.system(), platform.release()),
        "python: %s %s (%s)" % (platform.python_implementation(), platform.python_version(),
                                sys.executable),
        "git commit: %s" % git_commit(),
        "load average at start (1, 5, 15 min): %s" % load_average(),
    ]
    lines.extend(extra)
    return lines


def lib_parser(doc, rounds=5):
    """The argument parser of a bench that runs in --rounds and can run another checkout's
    lib/ (--lib; see use_lib())."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=rounds)
    parser.add_argument("--lib", help="another checkout's lib/ directory")
    return parser


def use_lib(lib):
    """Put another checkout's lib/ before this one's (None: keep this one's) and return the
    line for print_machine() saying which lib/ `import switchboard` loads."""
    if lib:
        sys.path.insert(0, os.path.abspath(lib))
    import switchboard

    return "lib: %s" % os.path.dirname(os.path.dirname(os.path.abspath(switchboard.__file__)))


def print_machine(title, extra=()):
    print("== %s" % title)
    for line in machine_lines(extra):
        print("   " + line)
    print(flush=True)


# --- CPU time --------------------------------------------------------------------------------
def proc_stat(pid):
    """(ppid, utime + stime in seconds) of a live process, or None."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            text = f.read()
    except OSError:
        return None
    fields = text[text.rfind(")") + 2:].split()
    # after the command: state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt
    # utime stime ...
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / CLK_TCK


def process_cpu(pid):
    """utime + stime (seconds) of one process, None when it is gone."""
    stat = proc_stat(pid)
    return None if stat is None else stat[1]


def steal_seconds():
    """CPU seconds the hypervisor gave to others while this virtual machine's CPUs wanted to
    run (the "steal" column of /proc/stat's cpu line, all CPUs together), or None."""
    try:
        with open("/proc/stat") as f:
            fields = f.readline().split()
        return int(fields[8]) / CLK_TCK
    except (OSError, IndexError, ValueError):
        return None


def run_queue_wait(pid):
    """Seconds a process (its main thread) has spent runnable but waiting for a CPU
    (/proc/PID/schedstat, kernel scheduler statistics), or None."""
    try:
        with open("/proc/%d/schedstat" % pid) as f:
            return int(f.read().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return None


def rss_mb(pid):
    """Resident memory of a process in MB, or None."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


def descendants(pid):
    """pid and every live process below it (from /proc ppid links)."""
    children = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        stat = proc_stat(int(name))
        if stat is not None:
            children.setdefault(stat[0], []).append(int(name))
    out = [pid]
    i = 0
    while i < len(out):
        out.extend(children.get(out[i], ()))
        i += 1
    return out


def udp_drops(ip, port):
    """Datagrams the kernel dropped for the UDP socket bound to (ip, port), or None."""
    want = "%08X:%04X" % (int.from_bytes(bytes(int(x) for x in ip.split(".")), "little"), port)
    try:
        with open("/proc/net/udp") as f:
            next(f)
            for line in f:
                fields = line.split()
                if len(fields) > 12 and fields[1] == want:
                    return int(fields[12])
    except OSError:
        pass
    return None


# --- processes ---------------------------------------------------------------------------------
class Child:
    """A child process with output to a file, waited for with a bound, stopped by PID.

    finish() reaps it with os.wait4, so its own CPU time (user + system) is known afterwards.
    """

    def __init__(self, argv, cwd, log_path, env=None):
        self.argv = argv
        self.log_path = log_path
        self._log = open(log_path, "wb")
        try:
            self.proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                                         stdout=self._log, stderr=subprocess.STDOUT)
        except Exception:
            self._log.close()
            raise
        self.pid = self.proc.pid
        self.started = time.monotonic()
        self.returncode = None
        self.cpu = None
        self.killed = False

    def poll(self):
        if self.returncode is None:
            pid, status, usage = os.wait4(self.pid, os.WNOHANG)
            if pid:
                self._reaped(status, usage)
        return self.returncode

    def _reaped(self, status, usage):
        self.returncode = os.waitstatus_to_exitcode(status)
        self.proc.returncode = self.returncode
        self.cpu = usage.ru_utime + usage.ru_stime
        self.elapsed = time.monotonic() - self.started
        self._log.close()

    def finish(self, timeout, tick=None, period=0.25):
        """Wait up to timeout seconds, then stop it; returns the exit code. tick(), when
        given, is called about every period seconds while it runs."""
        end = time.monotonic() + timeout
        due = 0.0
        while self.poll() is None and time.monotonic() < end:
            if tick is not None and time.monotonic() >= due:
                tick()
                due = time.monotonic() + period
            time.sleep(0.02)
        if self.returncode is None:
            self.stop()
        return self.returncode

    def stop(self):
        """SIGTERM, then SIGKILL, by PID; reaps it."""
        if self.returncode is not None:
            return self.returncode
        self.killed = True
        for sig, grace in ((signal.SIGTERM, 3.0), (signal.SIGKILL, 5.0)):
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass
            end = time.monotonic() + grace
            while self.poll() is None and time.monotonic() < end:
                time.sleep(0.02)
            if self.returncode is not None:
                break
        return self.returncode

    def output(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""


# --- sipp --------------------------------------------------------------------------------------
def sipp_path():
    path = shutil.which("sipp")
    if not path:
        sys.exit("sipp is not installed: apt-get install -y sip-tester")
    return path


def sipp_version():
    out = subprocess.run([sipp_path(), "-v"], capture_output=True, text=True, check=False)
    for line in (out.stdout + out.stderr).splitlines():
        if "SIPp v" in line:
            return line.strip()
    return "unknown"


def read_stat(path):
    """The last row of a sipp -trace_stat file as {column: value}, {} when there is none."""
    try:
        with open(path, errors="replace") as f:
            rows = [line.rstrip("\r\n") for line in f if line.strip()]
    except OSError:
        return {}
    if len(rows) < 2:
        return {}
    names = rows[0].split(";")
    values = rows[-1].split(";")
    return dict(zip(names, values))


def stat_int(stat, name):
    try:
        return int(stat.get(name, "0"))
    except ValueError:
        return 0


def failures(stat):
    """{reason: count} of the cumulative Failed* columns that are not zero."""
    out = {}
    for name, value in stat.items():
        if name.startswith("Failed") and name.endswith("(C)") and name != "FailedCall(C)":
            try:
                count = int(value)
            except ValueError:
                continue
            if count:
                out[name[len("Failed"):-3]] = count
    return out


def read_rtt(folder, rtd="invite"):
    """(response times in ms, when each was taken in ms since sipp started), both sorted, of
    the named rtd from the *_rtt.csv that -trace_rtt wrote."""
    times = []
    stamps = []
    for name in os.listdir(folder):
        if not name.endswith("_rtt.csv"):
            continue
        with open(os.path.join(folder, name), errors="replace") as f:
            for line in f:
                parts = line.strip().split(";")
                if len(parts) == 3 and parts[2] == rtd:
                    try:
                        stamps.append(float(parts[0]))
                        times.append(float(parts[1]))
                    except ValueError:
                        pass
    times.sort()
    stamps.sort()
    return times, stamps


def percentile(sorted_values, p):
    """Nearest-rank percentile of already sorted values; None when empty."""
    if not sorted_values:
        return None
    rank = max(1, min(len(sorted_values), -(-len(sorted_values) * p // 100)))
    return sorted_values[int(rank) - 1]


def fmt(value, spec="%.2f", none="-"):
    return none if value is None else spec % value


def table(rows, header):
    """Rows of strings as an aligned text table."""
    widths = [len(h) for h in header]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    lines = ["  ".join(h.ljust(widths[i]) for i, h in enumerate(header)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    for row in rows:
        lines.append("  ".join(c.rjust(widths[i]) if i else c.ljust(widths[i])
                               for i, c in enumerate(row)).rstrip())
    return "\n".join(lines)
