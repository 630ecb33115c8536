"""Start and stop Switchboard in host mode for tests (loopback only, stopped by PID)."""

import os
import select
import signal
import socket
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
READY = "Switchboard ready"


def free_port(kind=socket.SOCK_DGRAM, host="127.0.0.1"):
    """A port that is free for both UDP and TCP on host right now."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, kind) as s:
            s.bind((host, 0))
            port = s.getsockname()[1]
        other = socket.SOCK_STREAM if kind == socket.SOCK_DGRAM else socket.SOCK_DGRAM
        try:
            with socket.socket(socket.AF_INET, other) as s:
                s.bind((host, port))
        except OSError:
            continue
        return port
    raise RuntimeError("no free port")


def stop_process(proc):
    """Stop a process a test started, by its PID: SIGTERM, then SIGKILL after 5 s."""
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)


def _as_at_a_terminal():
    """In the child: Ctrl-C (SIGINT) as a terminal leaves it. A suite started in the
    background of a shell (`bash .ci/run &`) passes SIGINT on ignored, and host mode keeps
    a SIGINT its caller chose to ignore."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class HostMode:
    """A running `python3 code.py` on 127.0.0.1 with the given settings as environment."""

    def __init__(self, settings=None, host="127.0.0.1", cwd=ROOT, script=None):
        self.host = host
        self.sip_port = free_port()
        self.http_port = free_port(socket.SOCK_STREAM)
        env = dict(os.environ)
        env.update({
            "SIP_HOST": host,
            "SIP_PORT": str(self.sip_port),
            "HTTP_HOST": host,
            "HTTP_PORT": str(self.http_port),
            "PYTHONUNBUFFERED": "1",
        })
        for key, value in (settings or {}).items():
            env[key] = str(value)
        self.lines = []
        self.proc = subprocess.Popen(
            [sys.executable, script or os.path.join(ROOT, "code.py")],
            cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, bufsize=0,
            preexec_fn=_as_at_a_terminal,
        )
        self._partial = b""
        try:
            self.wait_for(READY, timeout=15)
        except Exception:
            self.stop()
            raise

    @property
    def sip_addr(self):
        return (self.host, self.sip_port)

    def read_available(self, timeout=0.0):
        """Collect output lines that arrive within timeout seconds (raw reads: no buffering)."""
        end = time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        while True:
            left = max(0.0, end - time.monotonic())
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                return
            chunk = os.read(fd, 65536)
            if not chunk:
                return
            data = self._partial + chunk
            *lines, self._partial = data.split(b"\n")
            self.lines.extend(line.decode(errors="replace").rstrip("\r") for line in lines)
            if time.monotonic() >= end:
                return

    def wait_for(self, text, timeout=10.0):
        """Wait until a line containing text has been printed; return that line."""
        end = time.monotonic() + timeout
        seen = 0
        while True:
            for line in self.lines[seen:]:
                if text in line:
                    return line
            seen = len(self.lines)
            left = end - time.monotonic()
            if left <= 0 or self.proc.poll() is not None:
                self.read_available(0)
                for line in self.lines[seen:]:
                    if text in line:
                        return line
                raise AssertionError(
                    "host mode never printed %r; output:\n%s" % (text, "\n".join(self.lines))
                )
            self.read_available(min(left, 0.2))

    def output(self):
        self.read_available(0)
        return "\n".join(self.lines)

    def stop(self):
        stop_process(self.proc)
        self.read_available(0)
        return self.proc.returncode

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
