"""A real Kamailio on loopback as the ITSP of Switchboard's trunk tests (stopped by PID).

Writes tests/kamailio/itsp.cfg with the accounts filled in, runs
`kamailio -f CFG -l udp:IP:PORT -DD -E -n 1 -m 64` in the foreground and waits until it
holds its UDP port.
"""

import glob
import os
import subprocess
import time

from hostmode import free_port, stop_process
from sipp_helpers import udp_bound

HERE = os.path.dirname(os.path.abspath(__file__))
KAMAILIO = "/usr/sbin/kamailio"
MPATH = "/usr/lib/x86_64-linux-gnu/kamailio/modules/"  # as written in itsp.cfg


def modules_dir():
    """Where this machine's Kamailio keeps its modules (the multiarch directory varies)."""
    for path in sorted(glob.glob("/usr/lib/*/kamailio/modules/")) + [
            "/usr/lib/kamailio/modules/", "/usr/local/lib64/kamailio/modules/"]:
        if os.path.exists(os.path.join(path, "tm.so")):
            return path
    return MPATH


class Kamailio:
    """accounts: {name: password}; trunks: the names that are trunk accounts (their BYE and
    re-INVITE are challenged too); sha256: challenge with SHA-256 instead of MD5."""

    def __init__(self, workdir, accounts, trunks=(), ip="127.0.0.1", sha256=False):
        if not os.path.exists(KAMAILIO):
            raise AssertionError("kamailio is not installed (apt-get install kamailio)")
        self.ip = ip
        self.port = free_port(host=ip)
        self.workdir = workdir
        lines = []
        for name in sorted(accounts):
            lines.append('    $sht(pw=>%s) = "%s";' % (name, accounts[name]))
        for name in trunks:
            lines.append("    $sht(trunks=>%s) = 1;" % name)
        with open(os.path.join(HERE, "itsp.cfg")) as f:
            text = f.read().replace("    ACCOUNTS_INIT", "\n".join(lines))
        text = text.replace(MPATH, modules_dir())
        self.cfg = os.path.join(workdir, "itsp.cfg")
        with open(self.cfg, "w") as f:
            f.write(text)
        self.rundir = os.path.join(workdir, "kamailio-run")
        os.makedirs(self.rundir, exist_ok=True)
        self.log_path = os.path.join(workdir, "kamailio.log")
        argv = [KAMAILIO, "-f", self.cfg, "-l", "udp:%s:%d" % (ip, self.port), "-DD", "-E",
                "-n", "1", "-m", "64", "-Y", self.rundir,
                "-P", os.path.join(self.rundir, "kamailio.pid")]
        if sha256:
            argv += ["-A", "WITH_SHA256"]
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self._log,
                                     stderr=subprocess.STDOUT)
        end = time.monotonic() + 10
        while not udp_bound(ip, self.port):
            if self.proc.poll() is not None or time.monotonic() > end:
                self.stop()
                raise AssertionError("kamailio did not start:\n" + self.log())
            time.sleep(0.05)

    @property
    def addr(self):
        return (self.ip, self.port)

    def log(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()[-6000:]

    def stop(self):
        stop_process(self.proc)
        self._log.close()
