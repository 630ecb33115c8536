"""The interop lab: Switchboard in host mode with digest auth on, and real SIP stacks as phones.

A Lab (the `lab` fixture in conftest.py) starts one server per test and any number of phones,
each extension on its own 127.0.0.x, and stops them all by PID when the test ends. Phones of
every stack offer the same verbs (dial, answer, hangup, hold, resume, transfer, message, dtmf)
and the same checks, which read the phone's own output and SIP trace (what the phone saw), so one
scenario runs unchanged on baresip and on linphonec. SIPp, driven by tests/sipp/interop_*.xml,
plays the phones whose behaviour must be scripted exactly (a registration by hand, a phone that
vanishes). Every wait is bounded.
"""

import json
import os
import re
import time
import urllib.request
import uuid

import pytest
from baresip_helpers import Baresip, require_baresip, wav_8k
from hostmode import HostMode, free_port
from linphone_helpers import Linphone, require_linphone
from sipp_helpers import Sipp, first_line, header_values, run_sipp

PASSWORDS = {"1001": "pw1", "1002": "pw2", "1003": "pw3"}
SIP_USERS = ",".join("%s:%s" % item for item in sorted(PASSWORDS.items()))
# Each extension on its own loopback address (test_baresip.py uses .2/.3, the SIPp tests .5x).
ADDRESSES = {"1001": "127.0.0.31", "1002": "127.0.0.32", "1003": "127.0.0.33"}
SERVER_SETTINGS = {"SIP_USERS": SIP_USERS, "SIP_AUTH": "all", "LOG_LEVEL": "info"}
# Challenges: SHA-256 preferred, then MD5 (RFC 8760), for phones that handle both (linphonec);
# MD5 alone (Switchboard's default) for baresip 1.0.0 and SIPp 3.6.1, which give up on a
# challenge set that includes SHA-256 (baresip: 'Register: Function not implemented'; SIPp:
# 'createAuthHeader: authentication must use MD5 or AKAv1-MD5').
BOTH = {"SIP_AUTH_ALGORITHMS": "SHA-256,MD5"}
# The stacks a two- or three-phone scenario runs on.
STACKS = [
    pytest.param("linphone", id="linphone"),
    pytest.param("baresip", id="baresip"),
]
SCENARIOS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "sipp")


class Lab:
    """One server and its phones for one test; stop() ends every process by PID."""

    def __init__(self, workdir):
        self.workdir = str(workdir)
        self.server = None
        self.phones = []
        self.sipps = []
        self._wav = None

    # the server ---------------------------------------------------------------------------
    def start_server(self, md5_only=False, **settings):
        merged = dict(SERVER_SETTINGS)
        if not md5_only:
            merged.update(BOTH)
        merged.update({k: str(v) for k, v in settings.items()})
        self.server = HostMode(merged)
        return self.server

    @property
    def proxy(self):
        return "%s:%d" % (self.server.host, self.server.sip_port)

    def api(self, path):
        url = "http://%s:%d%s" % (self.server.host, self.server.http_port, path)
        with urllib.request.urlopen(url, timeout=5) as answer:
            return json.loads(answer.read())

    def wait_api(self, path, check, timeout=10.0, what=None):
        """Poll the JSON API until check(answer) is true; return that answer."""
        end = time.monotonic() + timeout
        seen = None
        while True:
            seen = self.api(path)
            if check(seen):
                return seen
            if time.monotonic() >= end:
                raise AssertionError(
                    "%s never showed %s within %.0fs; last answer: %r"
                    % (path, what or "the expected state", timeout, seen)
                )
            time.sleep(0.2)

    def wait_event(self, regex, timeout=10.0):
        """Wait for a server event line matching regex; return the match."""
        pattern = re.compile(regex)
        end = time.monotonic() + timeout
        while True:
            for line in self.server.output().split("\n"):
                match = pattern.search(line)
                if match:
                    return match
            if time.monotonic() >= end or self.server.proc.poll() is not None:
                raise AssertionError(
                    "the server never printed a line matching %r within %.0fs" % (regex, timeout)
                )
            self.server.read_available(0.2)

    def events(self, regex):
        pattern = re.compile(regex)
        return [line for line in self.server.output().split("\n") if pattern.search(line)]

    # phones -------------------------------------------------------------------------------
    def wav(self):
        if self._wav is None:
            # baresip hangs up when its audio file ends: longer than any call here
            self._wav = wav_8k(os.path.join(self.workdir, "tone-8k.wav"), seconds=60.0)
        return self._wav

    def phone(self, stack, ext, **options):
        """Start a phone of stack ('baresip' or 'linphone') for extension ext; wait until it
        has registered (with digest auth) unless register_wait=False."""
        wait = options.pop("register_wait", True)
        kind = {"baresip": BaresipPhone, "linphone": LinphonePhone}[stack]
        phone = kind(self, str(ext), **options)
        self.phones.append(phone)
        phone.start()
        if wait:
            phone.wait_registered()
        return phone

    def sipp_phone(self, ext, **options):
        phone = SippPhone(self, str(ext), **options)
        self.sipps.append(phone)
        return phone

    def server_problems(self):
        """Internal errors the server counted or printed (none are expected, whatever phones
        send)."""
        problems = [
            line
            for line in self.server.output().split("\n")
            if " ERROR " in line or "internal error" in line or "Traceback" in line
        ]
        if self.server.proc.poll() is None:
            counters = self.api("/api/status")["counters"]
            if counters["internal_errors"]:
                problems.append("internal_errors counter: %d" % counters["internal_errors"])
        return problems

    def stop(self):
        """Stop every phone, every SIPp and the server, each by PID, even if one stop fails."""
        errors = []
        parties = list(reversed(self.phones)) + list(reversed(self.sipps))
        if self.server is not None:
            parties.append(self.server)
        for party in parties:
            try:
                party.stop()
            except Exception as e:  # keep stopping the others; report the first failure
                errors.append(e)
        if errors:
            raise errors[0]

    def evidence(self):
        """Everything each party printed, for a failed test's report."""
        parts = []
        if self.server is not None:
            parts.append(("switchboard", self.server.output()))
        for phone in self.phones:
            if phone.proc is None:
                continue
            parts.append((phone.name + " console", phone.proc.output()))
            if isinstance(phone, LinphonePhone):
                messages = phone.proc.sip_messages()
                trace = "\n\n".join("%s %s\n%s" % m for m in messages)
                parts.append((phone.name + " SIP (from its log)", trace))
        for phone in self.sipps:
            for run in phone.results():
                parts.append((phone.name + " sipp " + run.name, run.report()))
        return parts


class Mark:
    """A point in a phone's output and SIP trace: checks look only at what came after it."""

    def __init__(self, console, trace):
        self.console = console
        self.trace = trace


class Phone:
    """Common parts of a phone under test: the extension, its address, the proxy."""

    stack = "?"

    def __init__(self, lab, ext, answer=False, expires=600, message_to=None, max_calls=4):
        self.lab = lab
        self.ext = ext
        self.ip = ADDRESSES[ext]
        self.port = free_port(host=self.ip)
        self.password = PASSWORDS[ext]
        self.auto_answer = answer
        self.expires = expires
        self.message_to = message_to
        self.max_calls = max_calls
        self.name = "%s-%s" % (self.stack, ext)
        self.proc = None

    def uri(self, ext):
        return "sip:%s@%s" % (ext, self.lab.proxy)

    def stop(self):
        if self.proc is not None:
            self.proc.stop()

    def kill(self):
        """Vanish: SIGKILL, no BYE, no unregistration."""
        self.proc.kill()

    # SIP trace checks (common) -------------------------------------------------------------
    def received(self, start, since=None):
        """Texts of SIP messages received since the mark whose first line starts with start."""
        offset = since.trace if since else 0
        return [
            text
            for direction, _, text in self.sip_messages(offset)
            if direction == "received" and text.startswith(start)
        ]

    def sent(self, start, since=None):
        offset = since.trace if since else 0
        return [
            text
            for direction, _, text in self.sip_messages(offset)
            if direction == "sent" and text.startswith(start)
        ]

    def wait_received(self, start, contains=(), timeout=10.0, since=None):
        """Wait until a SIP message starting with start (and holding every string in contains)
        has arrived at the phone; return its text."""
        end = time.monotonic() + timeout
        while True:
            for text in self.received(start, since):
                if all(item in text for item in contains):
                    return text
            if time.monotonic() >= end:
                seen = [first_line(t) for _, _, t in self.sip_messages(since.trace if since else 0)]
                raise AssertionError(
                    "%s never received %r with %r within %.0fs; its SIP since then: %s"
                    % (self.name, start, list(contains), timeout, seen)
                )
            self.proc.read_available(0.1)

    def wait_reinvite_sendrecv(self, since, timeout=10.0):
        """A re-INVITE arrived whose audio is sendrecv again (a=sendrecv, or no direction at
        all, which means the same)."""
        text = self.wait_received("INVITE ", ("m=audio",), timeout, since)
        for held in ("a=sendonly", "a=inactive", "a=recvonly"):
            assert held not in text, text
        return text

    def wait_bye_done(self, call_id, since=None, timeout=10.0):
        """The dialog call_id was closed at this phone, whichever side sent the BYE: a BYE went
        one way and its 200 OK the other (the phone's own SIP trace)."""
        end = time.monotonic() + timeout
        offset = since.trace if since else 0
        while True:
            flows = {"sent": [], "received": []}
            for direction, _, text in self.sip_messages(offset):
                if call_id in text and re.search(r"(?m)^CSeq: *\d+ BYE$", text):
                    flows[direction].append(first_line(text))
            for out, back in (("sent", "received"), ("received", "sent")):
                if any(t.startswith("BYE ") for t in flows[out]) and any(
                    t.startswith("SIP/2.0 200") for t in flows[back]
                ):
                    return out
            if time.monotonic() >= end:
                raise AssertionError(
                    "%s: the dialog %s was never closed with BYE and 200: %r"
                    % (self.name, call_id, flows)
                )
            self.proc.read_available(0.1)

    def peers(self):
        """Every address this phone exchanged SIP with."""
        return {peer for _, peer, _ in self.sip_messages(0)}

    def assert_only_proxy(self):
        """Every SIP message went to or came from Switchboard, never phone to phone."""
        peers = self.peers()
        assert peers == {self.lab.proxy}, "%s exchanged SIP with %s" % (self.name, peers)


class BaresipPhone(Phone):
    """baresip 1.0.0: menu commands on its terminal, SIP trace (-s) in the same output."""

    stack = "baresip"
    REGISTERED = r"\{\d+/UDP/v4\} 200 [^\n]*\[\d+ bindings?\]"
    REG_FAILED = r"reg: [^\n]*: [^\n]+|\{\d+/UDP/v4\} [3-6]\d\d [^\n]*"
    TRACE = re.compile(r"^UDP (\S+) -> (\S+)\n", re.MULTILINE)

    def start(self):
        require_baresip()
        proxy = self.lab.proxy
        line = '<sip:%s@%s;transport=udp>;auth_pass=%s;outbound="sip:%s;transport=udp"' % (
            self.ext,
            proxy,
            self.password,
            proxy,
        )
        line += ";regint=%d;mwi=no" % self.expires
        if self.auto_answer:
            line += ";answermode=auto"
        extra = ""
        contacts = ()
        if self.message_to:
            # /message writes to the current contact: the only one in the contacts file
            extra = "module\t\t\tcontact.so\n"
            contacts = ['"%s" <%s>' % (self.message_to, self.uri(self.message_to))]
        self.proc = Baresip(
            self.name,
            self.ip,
            self.port,
            line,
            self.lab.workdir,
            wav=self.lab.wav(),
            extra_config=extra,
            contacts=contacts,
            max_calls=self.max_calls,
        )
        self.proc.start()

    def mark(self):
        n = self.proc.mark()
        return Mark(n, n)

    def sip_messages(self, offset=0):
        """[(direction, peer, text)] from baresip's SIP trace (-s)."""
        text = self.proc.output()
        out = []
        me = "%s:%d" % (self.ip, self.port)
        for match in self.TRACE.finditer(text, offset):
            start = match.end()
            stop = text.find("\n#\n", start)
            body = text[start : stop if stop >= 0 else len(text)]
            src, dst = match.group(1), match.group(2)
            if src == me:
                out.append(("sent", dst, body))
            else:
                out.append(("received", src, body))
        return out

    def wait_registered(self, timeout=10.0, since=None):
        self.proc.wait_for(
            self.REGISTERED, timeout, since=since.console if since else 0, fail=self.REG_FAILED
        )

    # verbs
    def dial(self, ext):
        self.proc.send("/dial " + self.uri(ext))

    def answer(self):
        self.proc.send("/accept")

    def hangup(self):
        self.proc.send("/hangup")

    def reject(self):
        self.proc.send("/hangup")  # an unanswered incoming call: 486

    def hold(self):
        self.proc.send("/hold")

    def resume(self):
        self.proc.send("/resume")

    def transfer(self, ext):
        self.proc.send("/transfer " + self.uri(ext))

    def message(self, ext, text):
        assert ext == self.message_to, "baresip sends /message to its one contact"
        self.proc.send("/message " + text)

    def dtmf_info(self, digits):
        raise AssertionError("baresip 1.0.0 sends DTMF only as RTP telephone-events, not INFO")

    def unregister(self):
        """/quit: baresip unregisters (REGISTER with expires=0) before it exits."""
        self.proc.stop()

    def list_calls(self):
        since = self.proc.mark()
        self.proc.send("/listcalls")
        self.proc.wait_for(r"Active calls \(\d+\)", 5, since=since)
        time.sleep(0.3)
        return self.proc.output()[since:]

    def count_calls(self):
        text = self.list_calls()
        return int(re.search(r"Active calls \((\d+)\)", text).group(1))

    # checks on baresip's own output
    def _wait(self, pattern, timeout, since):
        return self.proc.wait_for(pattern, timeout, since=since.console if since else 0)

    def wait_incoming(self, caller, since=None, timeout=10.0):
        pattern = r"Incoming call from: [^\n]*sip:%s@|answering call on line \d+ from sip:%s@"
        return self._wait(pattern % (caller, caller), timeout, since)

    def wait_ringing(self, since=None, timeout=10.0):
        return self._wait(r"SIP Progress: 18\d ", timeout, since)

    def wait_established(self, since=None, timeout=10.0):
        return self._wait(r"Call established: ", timeout, since)

    def wait_hung_up(self, since=None, timeout=10.0):
        """This phone ended the call itself and its BYE got 200 OK."""
        self._wait(r"call: terminate call '", timeout, since)
        self.wait_received("SIP/2.0 200", ("BYE\n",), timeout, since)

    def wait_remote_ended(self, since=None, timeout=10.0):
        """The other side ended the call (BYE or CANCEL) and this phone closed it."""
        return self._wait(r"session closed|Call with [^\n]* terminated", timeout, since)

    def wait_failed(self, code, since=None, timeout=15.0):
        """The call this phone made failed with final status code."""
        self.wait_received("SIP/2.0 %d " % code, ("INVITE\n",), timeout, since)
        return self._wait(r"session closed: %d " % code, timeout, since)

    def wait_cancelled(self, since=None, timeout=10.0):
        """An incoming call that rang here was cancelled before it was answered."""
        self.wait_received("CANCEL ", (), timeout, since)
        return self._wait(r"session closed|terminated", timeout, since)

    def wait_held(self, since=None, timeout=10.0):
        """The other side put the call on hold: a re-INVITE with sendonly or inactive."""
        self._wait(r"got re-INVITE", timeout, since)
        text = self.wait_received("INVITE ", ("m=audio",), timeout, since)
        assert "a=sendonly" in text or "a=inactive" in text, text
        return text

    def wait_resumed(self, since=None, timeout=10.0):
        self._wait(r"got re-INVITE", timeout, since)
        return self.wait_reinvite_sendrecv(since, timeout)


    def wait_message(self, sender, text, since=None, timeout=10.0):
        return self._wait(r'sip:%s@[^\n]*: "%s"' % (sender, re.escape(text)), timeout, since)

    def wait_dtmf(self, digit, since=None, timeout=10.0):
        return self._wait(r"received DTMF: '%s'" % re.escape(digit), timeout, since)

    def wait_transferred(self, since=None, timeout=10.0):
        """This phone (the transferor) saw its REFER accepted and the transfer succeed."""
        self.wait_received("SIP/2.0 202", ("REFER\n",), timeout, since)
        return self.wait_received("NOTIFY ", ("SIP/2.0 200",), timeout, since)


class LinphonePhone(Phone):
    """linphonec 5.x: console commands and events; full SIP messages in its log file."""

    stack = "linphone"
    incoming_id = ""
    REGISTERED = r"to \[LinphoneRegistrationOk\]"
    REG_FAILED = r"to \[LinphoneRegistrationFailed\]"

    def start(self):
        require_linphone()
        self.proc = Linphone(
            self.name,
            self.ip,
            self.port,
            self.ext,
            self.password,
            self.lab.proxy,
            self.lab.workdir,
            expires=self.expires,
            max_calls=self.max_calls,
        )
        self.proc.start()
        if self.auto_answer:
            since = self.proc.mark()
            self.proc.send("autoanswer enable")
            self.proc.wait_for(r"Auto answer enabled", 10, since=since)

    def mark(self):
        return Mark(self.proc.mark(), self.proc.log_mark())

    def sip_messages(self, offset=0):
        return self.proc.sip_messages(offset)

    def wait_registered(self, timeout=10.0, since=None):
        start = since.trace if since else 0
        end = time.monotonic() + timeout
        while True:
            log = self.proc.log()
            if re.search(self.REGISTERED, log[start:]):
                return
            failed = re.search(self.REG_FAILED, log[start:])
            if failed or time.monotonic() >= end:
                seen = [first_line(t) for _, _, t in self.sip_messages(start)]
                raise AssertionError(
                    "linphonec %s never registered within %.0fs%s; its SIP: %s"
                    % (self.name, timeout, " (registration failed)" if failed else "", seen)
                )
            self.proc.read_available(0.1)

    def status_register(self):
        since = self.proc.mark()
        self.proc.send("status register")
        return self.proc.wait_for(r"registered[^\n]*", 5, since=since).group(0)

    # verbs
    def dial(self, ext):
        self.proc.send("call " + self.uri(ext))

    def answer(self):
        # with another call up, linphonec wants the id of the incoming one
        self.proc.send("answer %s" % self.incoming_id)

    def hangup(self):
        self.proc.send("terminate")

    def reject(self):
        self.proc.send("terminate")  # an unanswered incoming call: 603 Decline

    def hold(self):
        self.proc.send("pause")

    def resume(self):
        self.proc.send("resume")

    def transfer(self, ext):
        self.proc.send("transfer " + self.uri(ext))

    def message(self, ext, text):
        self.proc.send("chat %s %s" % (self.uri(ext), text))

    def dtmf_info(self, digits):
        # a line holding one DTMF character is sent as a tone; use_info=1 makes it a SIP INFO
        for digit in digits:
            self.proc.send(digit)
            time.sleep(0.3)

    def unregister(self):
        self.proc.send("unregister")

    def count_calls(self):
        since = self.proc.mark()
        self.proc.send("calls")
        self.proc.wait_for(r"\n\d+ +\|", 5, since=since)
        time.sleep(0.3)
        text = self.proc.output()[since:]
        return len(re.findall(r"^\d+ +\| ", text, re.MULTILINE))

    # checks on linphonec's console
    def _wait(self, pattern, timeout, since):
        return self.proc.wait_for(pattern, timeout, since=since.console if since else 0)

    def wait_incoming(self, caller, since=None, timeout=10.0):
        pattern = r"Receiving new incoming call from [^\n]*sip:%s@[^\n]*assigned id (\d+)" % caller
        match = self._wait(pattern, timeout, since)
        self.incoming_id = match.group(1)
        return match

    def wait_ringing(self, since=None, timeout=10.0):
        return self._wait(r"Call \d+ to [^\n]* ringing\.", timeout, since)

    def wait_established(self, since=None, timeout=10.0):
        return self._wait(r"Call \d+ with [^\n]* connected\.", timeout, since)

    def wait_hung_up(self, since=None, timeout=10.0):
        self._wait(r"Call \d+ with [^\n]* ended \(", timeout, since)
        self.wait_received("SIP/2.0 200", ("BYE\n",), timeout, since)

    def wait_remote_ended(self, since=None, timeout=10.0):
        return self._wait(r"Call \d+ with [^\n]* ended \(", timeout, since)

    def wait_failed(self, code, since=None, timeout=15.0):
        self.wait_received("SIP/2.0 %d " % code, ("INVITE\n",), timeout, since)
        return self._wait(r"Call \d+ with [^\n]* (error|ended \([^)\n]*\))\.", timeout, since)

    def wait_cancelled(self, since=None, timeout=10.0):
        self.wait_received("CANCEL ", (), timeout, since)
        return self._wait(r"Call \d+ with [^\n]* ended \(", timeout, since)

    def wait_held(self, since=None, timeout=10.0):
        self._wait(r"Call \d+ has been paused by ", timeout, since)
        text = self.wait_received("INVITE ", ("m=audio",), timeout, since)
        assert "a=sendonly" in text or "a=inactive" in text, text
        return text

    def wait_resumed(self, since=None, timeout=10.0):
        text = self.wait_reinvite_sendrecv(since, timeout)
        self._wait(r"Media streams established with ", timeout, since)
        return text


    def wait_message(self, sender, text, since=None, timeout=10.0):
        pattern = r"Message received from sip:%s@\S*: %s" % (sender, re.escape(text))
        return self._wait(pattern, timeout, since)

    def wait_dtmf(self, digit, since=None, timeout=10.0):
        return self._wait(r"Receiving tone %s from " % re.escape(digit), timeout, since)

    def wait_transferred(self, since=None, timeout=10.0):
        self.wait_received("SIP/2.0 202", ("REFER\n",), timeout, since)
        self._wait(r"has been transfered", timeout, since)


class SippPhone:
    """An extension played by SIPp from one (ip, port): REGISTER with digest auth
    (tests/sipp/interop_register.xml), then scenarios bound to the same address."""

    def __init__(self, lab, ext):
        self.lab = lab
        self.ext = ext
        self.ip = ADDRESSES[ext]
        self.port = free_port(host=self.ip)
        self.name = "sipp-%s" % ext
        self.call_id = "reg-%s-%s@%s" % (ext, uuid.uuid4().hex[:12], self.ip)
        self.cseq = 0
        self.runs = []
        self.procs = []

    def _run_name(self, what):
        return "%s_%d_%s" % (self.name, len(self.runs) + len(self.procs) + 1, what)

    def register(self, expires=600, password=None):
        """One registration (401, then REGISTER with MD5 credentials, then 200)."""
        self.cseq += 2  # the challenged REGISTER and the one with credentials
        result = run_sipp(
            os.path.join(SCENARIOS, "interop_register.xml"),
            self.lab.workdir,
            self._run_name("register"),
            (self.ip, self.port),
            remote=(self.lab.server.host, self.lab.server.sip_port),
            keys={
                "user": self.ext,
                "expires": expires,
                "reg_cseq": self.cseq - 1,
                "auth_cseq": self.cseq,
            },
            extra=[
                "-cid_str",
                self.call_id,
                "-au",
                self.ext,
                "-ap",
                password or PASSWORDS[self.ext],
            ],
        )
        self.runs.append(result)
        return result

    def start(self, scenario_name, timeout=30):
        """Run a callee scenario on the phone's address (stop it, or wait for it)."""
        proc = Sipp(
            os.path.join(SCENARIOS, scenario_name),
            self.lab.workdir,
            self._run_name(scenario_name[:-4]),
            (self.ip, self.port),
            keys={"user": self.ext},
            timeout=timeout,
        )
        self.procs.append(proc)
        try:
            return proc.wait_bound()
        except Exception:
            proc.stop()
            raise

    def results(self):
        return self.runs + [p.stop() for p in self.procs]

    def stop(self):
        for proc in self.procs:
            proc.stop()


def contact_expires(response, host_port):
    """The expires parameter of the Contact for host_port in a REGISTER's 200, or None."""
    for value in header_values(response, "Contact", "m"):
        if host_port in value:
            match = re.search(r";\s*expires\s*=\s*(\d+)", value)
            return int(match.group(1)) if match else None
    return None
