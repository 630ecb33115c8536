"""Drive linphonec (Debian `linphone-cli`, liblinphone 5.x) headless on loopback for tests.

Each instance has its own config file (`-c`), HOME (for its databases), SIP port on its own
127.0.0.x (`bind_address`), random RTP ports and no sound card (`soundcard use files`). Its
console (event lines such as "Call 1 with ... connected.") is read from a pseudo-terminal; its
SIP messages, in full, from the log file that `-d 6 -l FILE` writes. Stopped by PID.
"""

import os
import re
import shutil
import time

from baresip_helpers import PtyProcess

LINPHONEC = "/usr/bin/linphonec"
LOG_LINE = re.compile(r"\n\d{4}-\d\d-\d\d \d\d:\d\d:\d\d:\d{3} ")

CONFIG = """\
[sip]
sip_port={port}
sip_tcp_port=-1
sip_tls_port=-1
bind_address={ip}
use_info={use_info}
use_rfc2833={use_rfc2833}
inc_timeout=120
default_proxy=0
register_only_when_network_is_up=0
[net]
firewall_policy=0
[misc]
max_calls={max_calls}
[rtp]
audio_rtp_port=-1
video_rtp_port=-1
nortp_timeout=300
[sound]
echocancellation=0
[video]
enabled=0
automatically_initiate=0
automatically_accept=0
[proxy_0]
reg_proxy=<sip:{proxy};transport=udp>
reg_route=<sip:{proxy};transport=udp;lr>
reg_identity="{user}" <sip:{user}@{domain}>
reg_expires={expires}
reg_sendregister=1
publish=0
dial_escape_plus=0
[auth_info_0]
username={user}
passwd={password}
"""


def require_linphone():
    """Fail (not skip) when linphonec is missing."""
    if not (os.path.exists(LINPHONEC) or shutil.which("linphonec")):
        raise AssertionError("linphonec is not installed (apt-get install -y linphone-cli)")


class Linphone(PtyProcess):
    """One linphonec with account user:password at Switchboard proxy ("host:port")."""

    label = "linphonec"
    quit_command = "quit"

    def __init__(
        self,
        name,
        ip,
        port,
        user,
        password,
        proxy,
        tmpdir,
        domain=None,
        expires=600,
        use_info=True,
        max_calls=4,
    ):
        require_linphone()
        super().__init__(name)
        self.ip = ip
        self.port = port
        self.user = str(user)
        self.password = password
        self.proxy = proxy
        self.domain = domain or proxy
        self.expires = expires
        self.use_info = use_info
        self.max_calls = max_calls
        self.confdir = os.path.join(str(tmpdir), name)
        self.home = os.path.join(self.confdir, "home")
        self.rc = os.path.join(self.confdir, "linphonerc")
        self.logfile = os.path.join(self.confdir, "linphone.log")

    def where(self):
        return self.ip

    def write_config(self):
        # liblinphone keeps its databases under $HOME/.local/share/linphone
        os.makedirs(os.path.join(self.home, ".local", "share", "linphone"), exist_ok=True)
        with open(self.rc, "w") as f:
            f.write(
                CONFIG.format(
                    ip=self.ip,
                    port=self.port,
                    use_info=1 if self.use_info else 0,
                    use_rfc2833=0 if self.use_info else 1,
                    max_calls=self.max_calls,
                    proxy=self.proxy,
                    domain=self.domain,
                    user=self.user,
                    password=self.password,
                    expires=self.expires,
                )
            )

    def start(self, ready_timeout=20.0):
        """Start linphonec, switch it to files for sound, wait until its console answers."""
        self.write_config()
        argv = [LINPHONEC, "-c", self.rc, "-d", "6", "-l", self.logfile]
        env = dict(os.environ, TERM="dumb", HOME=self.home)
        self.spawn(argv, self.confdir, env)
        try:
            self.wait_for(r"linphonec> ", ready_timeout)
            since = self.mark()
            self.send("soundcard use files")
            self.send("autoanswer disable")
            self.wait_for(r"Auto answer disabled", ready_timeout, since=since)
        except Exception:
            self.stop()
            raise
        return self

    # the SIP log ----------------------------------------------------------------------------
    def log(self):
        """Everything liblinphone logged so far (the SIP messages sent and received in full)."""
        self.read_available(0)
        try:
            with open(self.logfile, errors="replace") as f:
                return f.read().replace("\r", "")
        except FileNotFoundError:
            return ""

    def log_mark(self):
        return len(self.log())

    def wait_log(self, pattern, timeout=10.0, since=0):
        """Wait until regex pattern occurs in log()[since:]; return the match."""
        regex = re.compile(pattern)
        end = time.monotonic() + timeout
        while True:
            text = self.log()
            match = regex.search(text, since)
            if match:
                return match
            if time.monotonic() >= end or self.proc is None or self.proc.poll() is not None:
                raise AssertionError(
                    f"linphonec {self.name} ({self.ip}) never logged {pattern!r} within "
                    f"{timeout:.0f}s; console:\n{self.tail(3000)}"
                )
            self.read_available(0.1)

    def sip_messages(self, since=0):
        """[(direction, peer, text)] of SIP messages in the log: 'sent' or 'received'."""
        out = []
        text = self.log()[since:]
        head = re.compile(
            r"message sent to \[UDP://([^\]]+)\], size: \[\d+\] bytes\n"
            r"|received \[\d+\] new bytes from \[UDP://([^\]]+)\]:\n"
        )
        for match in head.finditer(text):
            start = match.end()
            stop = LOG_LINE.search(text, start)  # the message runs until the next log line
            body_end = stop.start() if stop else len(text)
            direction = "sent" if match.group(1) else "received"
            message = text[start:body_end].strip("\n")
            out.append((direction, match.group(1) or match.group(2), message))
        return out
