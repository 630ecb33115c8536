"""Drive real baresip softphones (Debian `baresip`, 1.0.x) headless on loopback for tests.

Each instance gets its own config directory, its own 127.0.0.x address, audio from an 8 kHz WAV
(`aufile`) and a player that goes nowhere (`aubridge,nil`). baresip's stdio UI needs a terminal, so
it runs on a pseudo-terminal; its output is read from the pty master with bounded waits and
commands (`/dial ...`, `/hangup`, `/quit`) are typed into it. Every instance is stopped by PID.
PtyProcess holds that terminal plumbing, so other console phones (tests/interop) reuse it.
"""

import errno
import math
import os
import pty
import re
import select
import shutil
import signal
import struct
import subprocess
import time
import wave

BARESIP = "/usr/bin/baresip"
MODULE_PATH = "/usr/lib/baresip/modules"
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")

# Minimal module set: terminal UI, G.711, a file source, a bridge player, accounts and the menu
# (dial/hangup/answer). No ALSA/pulse, no stun/turn/ice, no video, no contacts/presence/mwi.
CONFIG = """\
poll_method\t\tepoll
sip_listen\t\t{ip}:{port}
call_local_timeout\t30
call_max_calls\t\t{max_calls}
audio_path\t\t{confdir}
audio_player\t\taubridge,nil
audio_source\t\taufile,{wav}
audio_alert\t\taubridge,nil
audio_level\t\tno
ausrc_format\t\ts16
auplay_format\t\ts16
auenc_format\t\ts16
audec_format\t\ts16
audio_buffer\t\t20-160
rtp_tos\t\t\t0
rtp_ports\t\t{rtp_ports}
rtcp_mux\t\tno
jitter_buffer_delay\t5-10
rtp_stats\t\tno
dns_server\t\t127.0.0.1:53
net_interface\t\t{ip}
module_path\t\t{module_path}
module\t\t\tstdio.so
module\t\t\tg711.so
module\t\t\taufile.so
module\t\t\taubridge.so
module_tmp\t\taccount.so
module_app\t\tmenu.so
ringback_disabled\tyes
statmode_default\toff
"""


def wav_8k(path, seconds=10.0, freq=440.0):
    """Write an 8 kHz mono 16-bit PCM WAV with a sine tone; return path."""
    rate = 8000
    count = int(rate * seconds)
    frames = bytearray()
    for i in range(count):
        value = int(8000 * math.sin(2 * math.pi * freq * i / rate))
        frames += struct.pack("<h", value)
    with wave.open(path, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(bytes(frames))
    return path


def require_baresip():
    """Fail (not skip) when baresip or its modules are missing."""
    if not (os.path.exists(BARESIP) or shutil.which("baresip")):
        raise AssertionError("baresip is not installed (apt-get install -y baresip)")
    for module in ("stdio.so", "g711.so", "aufile.so", "aubridge.so", "account.so", "menu.so"):
        if not os.path.exists(os.path.join(MODULE_PATH, module)):
            raise AssertionError(f"baresip module missing: {MODULE_PATH}/{module}")


class PtyProcess:
    """A program run on a pseudo-terminal: bounded reads of its output, typed commands, stop by PID.

    A subclass names its program (label), calls spawn() from its start(), and may set
    quit_command: stop() types it first (a graceful exit), then sends SIGTERM, then SIGKILL.
    """

    label = "process"
    quit_command = None

    def __init__(self, name):
        self.name = name
        self.proc = None
        self.master = None
        self.raw = bytearray()

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def spawn(self, argv, cwd, env):
        """Start argv with stdin, stdout and stderr on a new pseudo-terminal."""
        master, slave = pty.openpty()
        try:
            self.proc = subprocess.Popen(
                argv,
                cwd=cwd,
                stdin=slave,
                stdout=slave,
                stderr=slave,
                start_new_session=True,
                close_fds=True,
                env=env,
            )
        except Exception:
            os.close(master)
            raise
        finally:
            os.close(slave)
        self.master = master

    def read_available(self, timeout=0.0):
        """Append whatever output arrives within timeout seconds; False once the pty is closed."""
        if self.master is None:
            return False
        end = time.monotonic() + timeout
        while True:
            left = max(0.0, end - time.monotonic())
            ready, _, _ = select.select([self.master], [], [], left)
            if not ready:
                return True
            try:
                data = os.read(self.master, 65536)
            except OSError as e:
                if e.errno == errno.EIO:  # slave side closed: the process is gone
                    return False
                raise
            if not data:
                return False
            self.raw += data
            if time.monotonic() >= end:
                return True

    def output(self):
        """All output so far, without colour codes and carriage returns."""
        self.read_available(0)
        return ANSI.sub("", self.raw.decode("utf-8", "replace")).replace("\r", "")

    def mark(self):
        """A position in output(); pass it as since= to wait only for later output."""
        return len(self.output())

    def wait_for(self, pattern, timeout=10.0, since=0, fail=None):
        """Wait until regex pattern occurs in output()[since:]; return the match.

        fail: a regex that, when it shows up in output()[since:] first, ends the wait at once
        with an AssertionError (an error the program reported: no point waiting longer).
        """
        regex = re.compile(pattern)
        bad = re.compile(fail) if fail else None
        end = time.monotonic() + timeout
        while True:
            text = self.output()
            match = regex.search(text, since)
            if match:
                return match
            failed = bad.search(text, since) if bad else None
            left = end - time.monotonic()
            alive = self.proc is not None and self.proc.poll() is None
            if failed or left <= 0 or not alive:
                self.read_available(0.2)
                text = self.output()
                match = regex.search(text, since)
                if match:
                    return match
                exited = "" if alive else f" (exited with {self.proc.returncode})"
                why = f"; it printed {failed.group(0)!r} instead" if failed else ""
                raise AssertionError(
                    f"{self.label} {self.name} ({self.where()}) never printed {pattern!r} within "
                    f"{timeout:.0f}s{exited}{why}; last output:\n{self.tail()}"
                )
            self.read_available(min(left, 0.2))

    def where(self):
        return ""

    def tail(self, chars=4000):
        text = self.output()
        return text if len(text) <= chars else "...\n" + text[-chars:]

    def send(self, command):
        """Type a command followed by Enter."""
        if self.master is None:
            raise AssertionError(f"{self.label} {self.name} is not running")
        data = (command.rstrip("\n") + "\n").encode()
        end = time.monotonic() + 5
        while data:
            _, ready, _ = select.select([], [self.master], [], max(0.0, end - time.monotonic()))
            if not ready:
                raise AssertionError(f"{self.label} {self.name}: terminal not writable")
            sent = os.write(self.master, data)
            data = data[sent:]

    def kill(self):
        """SIGKILL by PID at once (a phone that vanishes); the pty stays open for reading."""
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(timeout=10)

    def stop(self, timeout=5.0):
        """quit_command, then SIGTERM, then SIGKILL, all by PID; close the pty. Returns the exit
        code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None and self.quit_command:
            try:
                self.send(self.quit_command)
            except (OSError, AssertionError):
                pass
            self._wait(timeout)
        for sig, wait in ((signal.SIGTERM, 1.0), (signal.SIGTERM, 2.0), (signal.SIGKILL, 5.0)):
            if self.proc.poll() is not None:
                break
            try:
                os.kill(self.proc.pid, sig)
            except ProcessLookupError:
                break
            self._wait(wait)
        if self.proc.poll() is None:
            self.proc.wait(timeout=timeout)
        if self.master is not None:
            self.read_available(0)
            os.close(self.master)
            self.master = None
        return self.proc.returncode

    def _wait(self, timeout):
        end = time.monotonic() + timeout
        while self.proc.poll() is None and time.monotonic() < end:
            self.read_available(0.1)  # keep draining so the program never blocks on a full pty

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


class Baresip(PtyProcess):
    """One baresip process with its own config dir under tmpdir/name.

    account_line is one line of baresip's `accounts` file, e.g.
    '<sip:1001@127.0.0.1:5060;transport=udp>;outbound="sip:127.0.0.1:5060;transport=udp"'.
    extra_config: more lines for `config` (e.g. 'module\t\t\tcontact.so\n'); contacts: lines
    for the `contacts` file (the first is the current contact, which /message writes to);
    max_calls: calls at once (baresip refuses more with 486).
    """

    label = "baresip"
    # /quit unregisters first and waits for the answer (up to SIP's 32 s transaction timeout
    # when the registrar is gone). baresip's first SIGTERM only repeats that graceful stop; a
    # second one makes it exit at once; SIGKILL is the last resort.
    quit_command = "/quit"

    def __init__(
        self,
        name,
        ip,
        port,
        account_line,
        tmpdir,
        wav=None,
        rtp_ports=None,
        sip_trace=True,
        extra_config="",
        contacts=(),
        max_calls=4,
    ):
        require_baresip()
        super().__init__(name)
        self.ip = ip
        self.port = port
        self.account_line = account_line
        self.confdir = os.path.join(str(tmpdir), name)
        self.wav = wav or os.path.join(self.confdir, "audio.wav")
        # RTP/RTCP sockets bind 0.0.0.0 (not ip); baresip picks free ports at random in the
        # range, so instances and parallel runs share it without colliding.
        self.rtp_ports = rtp_ports or "10000-10049"
        self.sip_trace = sip_trace
        self.extra_config = extra_config
        self.contacts = list(contacts)
        self.max_calls = max_calls

    def where(self):
        return self.ip

    def write_config(self):
        os.makedirs(self.confdir, exist_ok=True)
        if not os.path.exists(self.wav):
            wav_8k(self.wav, 10.0)
        with open(os.path.join(self.confdir, "config"), "w") as f:
            f.write(
                CONFIG.format(
                    ip=self.ip,
                    port=self.port,
                    confdir=self.confdir,
                    wav=self.wav,
                    rtp_ports=self.rtp_ports,
                    module_path=MODULE_PATH,
                    max_calls=self.max_calls,
                )
            )
            f.write(self.extra_config)
        with open(os.path.join(self.confdir, "accounts"), "w") as f:
            f.write(self.account_line + "\n")
        if self.contacts:
            with open(os.path.join(self.confdir, "contacts"), "w") as f:
                f.write("".join(line + "\n" for line in self.contacts))

    def start(self, ready_timeout=10.0):
        """Start baresip on a pseudo-terminal and wait for 'baresip is ready'."""
        self.write_config()
        argv = [BARESIP, "-f", self.confdir]
        if self.sip_trace:
            argv.append("-s")
        self.spawn(argv, self.confdir, dict(os.environ, TERM="dumb", HOME=self.confdir))
        try:
            self.wait_for(r"baresip is ready", ready_timeout)
        except Exception:
            self.stop()
            raise
        return self
