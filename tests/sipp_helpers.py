"""Drive SIPp (tests/sipp/*.xml) against Switchboard on loopback.

Every sipp run is bounded: one call (-m 1), a global timeout that counts as failure
(-timeout, -timeout_error), and a wait that kills the process by its PID when sipp
overstays. Logs go to a directory the test owns: the SIP messages (-trace_msg), the
unexpected ones (-trace_err), the final screen and sipp's own output.

A Phone is one extension at one (ip, port): it registers with sipp from that address,
then answers with a UAS sipp bound to the same address, because the proxy sends
requests to the address a REGISTER came from. Phones sit on different 127.0.0.x.
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid

from hostmode import free_port

SCENARIOS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sipp")
TIMEOUT = 5  # seconds a sipp run may take before it counts as failed
EXTRA_WAIT = 5  # seconds past TIMEOUT before the process is killed
SEPARATOR = "-----------------------------------------------"


def sipp_binary():
    """Path of sipp; a missing sipp fails the test (it does not skip it)."""
    path = shutil.which("sipp")
    if not path:
        raise AssertionError("sipp is not installed: apt-get install -y sip-tester")
    return path


def scenario(name):
    path = name if os.path.isabs(name) else os.path.join(SCENARIOS, name)
    if not os.path.isfile(path):
        raise AssertionError("no sipp scenario %s" % path)
    return path


def expect_text(status):
    """uac_expect.xml made to expect status (what uac_STATUS.xml must hold)."""
    with open(scenario("uac_expect.xml")) as f:
        return f.read().replace("__STATUS__", str(int(status)))


def expect_scenario(status, workdir):
    """A caller scenario that expects final status: uac_STATUS.xml, else made from uac_expect."""
    name = "uac_%d.xml" % int(status)
    if os.path.isfile(os.path.join(SCENARIOS, name)):
        return scenario(name)
    path = os.path.join(workdir, name)
    with open(path, "w") as f:
        f.write(expect_text(status))
    return path


def read_text(path):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except FileNotFoundError:
        return ""


def parse_messages(log):
    """[(direction, text)] from a -trace_msg file: 'sent', 'received' or 'unexpected'."""
    out = []
    for block in log.split(SEPARATOR)[1:]:
        lines = block.split("\n")
        # lines[0]: timestamp; lines[1]: "UDP message sent (N bytes):"; lines[2]: blank
        if len(lines) < 4:
            continue
        head = lines[1]
        if head.startswith("Unexpected"):
            direction = "unexpected"  # repeats a received message that the scenario refused
        elif " sent " in head:
            direction = "sent"
        else:
            direction = "received"
        text = "\n".join(lines[3:]).strip("\r\n")
        out.append((direction, text.replace("\r\n", "\n")))
    return out


def first_line(message):
    return message.split("\n", 1)[0].strip()


def header_values(message, name, compact=None):
    """Values of header name (case-insensitive, also its compact form) in message text."""
    names = {name.lower()} | ({compact.lower()} if compact else set())
    values = []
    for line in message.split("\n\n", 1)[0].split("\n")[1:]:
        key, sep, value = line.partition(":")
        if sep and key.strip().lower() in names:
            values.append(value.strip())
    return values


class SippResult:
    """What one sipp run left: exit code and logs."""

    def __init__(self, name, argv, returncode, workdir, killed=False):
        self.name = name
        self.argv = argv
        self.returncode = returncode
        self.killed = killed
        base = os.path.join(workdir, name)
        self.messages_log = read_text(base + "_messages.log")
        self.errors_log = read_text(base + "_errors.log")
        self.screen = read_text(base + "_screen.log")
        self.output = read_text(base + "_output.log")
        self.messages = parse_messages(self.messages_log)

    @property
    def ok(self):
        return self.returncode == 0 and not self.killed

    def received(self):
        return [m for d, m in self.messages if d == "received"]

    def sent(self):
        return [m for d, m in self.messages if d == "sent"]

    def first_lines(self):
        arrows = {"sent": "->", "received": "<-", "unexpected": "!!"}
        return ["%s %s" % (arrows[d], first_line(m)) for d, m in self.messages]

    def report(self):
        tail = "\n".join(self.output.strip().split("\n")[-15:])
        return (
            "=== sipp %s: exit %s%s\n%s\n--- messages (%s):\n%s\n--- errors:\n%s\n"
            "--- output (tail):\n%s\n"
            % (
                self.name,
                self.returncode,
                " (killed)" if self.killed else "",
                " ".join(self.argv),
                " | ".join(self.first_lines()),
                self.messages_log.strip(),
                self.errors_log.strip(),
                tail,
            )
        )


def udp_bound(ip, port):
    """True when some socket holds UDP (ip, port) (read from /proc: probing by bind would race)."""
    want = "%08X:%04X" % (int.from_bytes(socket.inet_aton(ip), sys.byteorder), port)
    for table in ("/proc/net/udp",):
        with open(table) as f:
            next(f)
            for line in f:
                if line.split()[1] == want:
                    return True
    return False


class Sipp:
    """One sipp process (caller or callee) for one call; stopped by PID, also on failure."""

    def __init__(
        self,
        scenario_name,
        workdir,
        name,
        local,
        remote=None,
        service=None,
        keys=None,
        timeout=TIMEOUT,
        pause_ms=None,
        extra=(),
    ):
        self.name = name
        self.workdir = workdir
        self.local = local
        self.timeout = timeout
        base = os.path.join(workdir, name)
        ip, port = local
        argv = [sipp_binary()]
        if remote:
            argv.append("%s:%d" % remote)
        argv += [
            "-sf",
            scenario(scenario_name),
            "-i",
            ip,
            "-p",
            str(port),
            "-bind_local",
            "-mi",
            ip,
            "-mp",
            str(free_port(host=ip)),
            "-m",
            "1",
            "-nostdin",
            # A failed call just ends: no BYE or CANCEL of sipp's own making.
            "-default_behaviors",
            "all,-bye",
            "-timeout",
            "%ds" % timeout,
            "-timeout_error",
            "-trace_msg",
            "-message_file",
            base + "_messages.log",
            "-trace_err",
            "-error_file",
            base + "_errors.log",
            "-trace_screen",
            "-screen_file",
            base + "_screen.log",
        ]
        if service:
            argv += ["-s", service]
        if pause_ms is not None:
            argv += ["-d", str(int(pause_ms))]
        for key, value in (keys or {}).items():
            argv += ["-key", key, str(value)]
        argv += list(extra)
        self.argv = argv
        self.result = None
        self._out = open(base + "_output.log", "w")
        try:
            self.proc = subprocess.Popen(
                argv,
                cwd=workdir,
                stdin=subprocess.DEVNULL,
                stdout=self._out,
                stderr=subprocess.STDOUT,
            )
        except Exception:
            self._out.close()
            raise
        self.started = time.monotonic()

    def wait_bound(self, timeout=5.0):
        """Wait until sipp holds its UDP port (a callee must before the call starts)."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise AssertionError("sipp exited before binding:\n" + self.wait().report())
            if udp_bound(*self.local):
                return self
            time.sleep(0.02)
        self.stop()
        raise AssertionError("sipp never bound %s:%d:\n%s" % (self.local + (self.result.report(),)))

    def wait(self, timeout=None):
        """Wait (bounded) for sipp to end; kill it when it overstays. Returns a SippResult."""
        if self.result is not None:
            return self.result
        limit = max(0.0, self.started + self.timeout + EXTRA_WAIT - time.monotonic())
        timeout = limit if timeout is None else min(timeout, limit)
        killed = False
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            killed = True
            self._kill()
        self._out.close()
        self.result = SippResult(self.name, self.argv, self.proc.returncode, self.workdir, killed)
        return self.result

    def _kill(self):
        if self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=3)
            except ProcessLookupError:
                pass

    def stop(self):
        """End sipp now (by PID) if it still runs; returns its SippResult."""
        if self.result is None:
            if self.proc.poll() is None:
                self._kill()
                self._out.close()
                self.result = SippResult(
                    self.name, self.argv, self.proc.returncode, self.workdir, killed=True
                )
            else:
                self.wait()
        return self.result

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def run_sipp(scenario_name, workdir, name, local, **kwargs):
    """Run one sipp to its end (bounded) and return its SippResult."""
    with Sipp(scenario_name, workdir, name, local, **kwargs) as proc:
        return proc.wait()


class Phone:
    """One extension at (ip, port) that registers, calls and answers with sipp.

    All REGISTERs of a phone share one Call-ID with a rising CSeq (RFC 3261 section 10.2.4),
    and name the same Contact URI (sip:USER@IP:PORT of the first port), so a REGISTER sent
    from another port refreshes the same binding from a new source address.
    """

    def __init__(self, server, user, ip, workdir, port=None):
        self.server = server  # (ip, port) of Switchboard
        self.user = str(user)
        self.ip = ip
        self.port = port or free_port(host=ip)
        self.workdir = workdir
        self.contact = "%s:%d" % (ip, self.port)
        self.call_id = "reg-%s-%s@%s" % (self.user, uuid.uuid4().hex[:12], ip)
        self.cseq = 0
        self.runs = 0
        self.processes = []

    def _name(self, what):
        self.runs += 1
        return "%s_%d_%s" % (self.user, self.runs, what)

    def register(self, expires=3600, port=None):
        """REGISTER from (ip, port), port defaulting to the phone's; the phone then uses it."""
        if port is not None:
            self.port = port
        self.cseq += 1
        return run_sipp(
            "register.xml",
            self.workdir,
            self._name("register"),
            (self.ip, self.port),
            remote=self.server,
            keys={
                "user": self.user,
                "contact": self.contact,
                "expires": expires,
                "reg_cseq": self.cseq,
            },
            extra=["-cid_str", self.call_id],
        )

    def unregister(self):
        self.cseq += 1
        return run_sipp(
            "unregister.xml",
            self.workdir,
            self._name("unregister"),
            (self.ip, self.port),
            remote=self.server,
            keys={"user": self.user, "contact": self.contact, "reg_cseq": self.cseq},
            extra=["-cid_str", self.call_id],
        )

    def options(self):
        return run_sipp(
            "options.xml",
            self.workdir,
            self._name("options"),
            (self.ip, self.port),
            remote=self.server,
            keys={"user": self.user},
        )

    def answer(self, scenario_name="uas_answer.xml", timeout=TIMEOUT):
        """Start a callee sipp on (ip, port); returns the running Sipp (stop it, or use with)."""
        proc = Sipp(
            scenario_name,
            self.workdir,
            self._name(scenario_name[:-4]),
            (self.ip, self.port),
            keys={"user": self.user},
            timeout=timeout,
        )
        self.processes.append(proc)
        try:
            return proc.wait_bound()
        except Exception:
            proc.stop()
            raise

    def start_call(self, callee, scenario_name="uac_call.xml", pause_ms=200, timeout=TIMEOUT):
        proc = Sipp(
            scenario_name,
            self.workdir,
            self._name(os.path.basename(scenario_name)[:-4]),
            (self.ip, self.port),
            remote=self.server,
            service=str(callee),
            keys={"user": self.user},
            pause_ms=pause_ms,
            timeout=timeout,
        )
        self.processes.append(proc)
        return proc

    def call(self, callee, scenario_name="uac_call.xml", pause_ms=200, timeout=TIMEOUT):
        """Call callee through the server with a caller scenario; returns its SippResult."""
        with self.start_call(callee, scenario_name, pause_ms, timeout) as proc:
            return proc.wait()

    def stop(self):
        """Stop every sipp this phone started (by PID)."""
        for proc in self.processes:
            proc.stop()
        self.processes = []
