"""Coverage-guided fuzzing of the engine's datagram entry point with atheris (libFuzzer).

    .venv/bin/python tools/fuzz.py --seconds 600

Seeds are real SIP datagrams (the flows of tests/flows.py and tests/hostile.py) and poisoned
responses. Every input goes through message.parse() (which may only raise ParseError) and
Engine.receive() (which may not raise, nor log an internal error), twice: as it is, and
response-shaped, behind a status line and the engine's own Via, so that the fuzzer's bytes
reach the response path and the relay of a response to the next Via. Every datagram the
engine returns must go to a valid address: an IPv4 string and a port 1..65535 (what sendto
accepts without a name lookup). Timers run every 64 inputs. A failure stops the run with
libFuzzer's crash report and the input saved as crash-*. tests/test_fuzz.py runs it briefly.
"""

import argparse
import os
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [os.path.join(ROOT, "lib"), os.path.join(ROOT, "tests")]

import atheris  # noqa: E402

with atheris.instrument_imports():
    from switchboard.config import Config
    from switchboard.engine import Engine
    from switchboard.message import ParseError, is_ipv4, parse

ADDRESS = "10.0.0.1"
# the response-shaped form: a status line and our own Via, then the fuzzer's bytes
RESPONSE = b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP %s:5060;branch=z9hG4bKfuzz.1\r\n" % (
    ADDRESS.encode())
POISONED_VIAS = (b"rport=99999", b"rport=70000", b"rport", b"received=\xc3\xa4",
                 b"received=evil.example.com", b"received=2001:db8::1")


def strict_log(level, text):
    if level == "error":
        raise AssertionError(text)


def seeds():
    import flows
    from hostile import corpus

    datagrams = []
    engine = flows.new_engine()
    original = engine.receive

    def capture(data, source, now):
        datagrams.append(data)
        return original(data, source, now)

    engine.receive = capture
    lines = []
    flows.run(lines.append)
    for chunk in "\n".join(lines).split("\n-> "):
        body = chunk.split("\n", 1)[-1]
        if body.startswith(("SIP/2.0", "INVITE", "ACK", "BYE", "CANCEL", "REGISTER")):
            datagrams.append(body.replace("\n", "\r\n").encode())
    datagrams.extend(d for _, d in corpus() if len(d) < 8192)
    for i, extra in enumerate(POISONED_VIAS):
        datagrams.append(b"Via: SIP/2.0/UDP 10.0.0.%d:5060;branch=z9hG4bKp%d;%s\r\n"
                         b"From: <sip:1001@10.0.0.1>;tag=a\r\nTo: <sip:1002@10.0.0.1>;tag=b\r\n"
                         b"Call-ID: poisoned-%d\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
                         % (i + 2, i, extra, i))
    return datagrams


def valid_dest(dest):
    return (isinstance(dest, tuple) and len(dest) == 2 and isinstance(dest[0], str)
            and is_ipv4(dest[0]) and isinstance(dest[1], int) and 0 < dest[1] < 65536)


class Target:
    def __init__(self):
        settings = {"SIP_ADDRESS": ADDRESS, "SIP_USERS": "1001,1002:pw", "RATE_LIMIT": 0}
        self.engine = Engine(Config(overrides=settings), 1, strict_log)
        self.now = 1000
        self.n = 0

    def __call__(self, data):
        self.feed(data)
        if not data.startswith(b"SIP/"):
            self.feed(RESPONSE + data)

    def feed(self, data):
        try:
            parse(data)
        except ParseError:
            pass
        self.now += 7
        self.n += 1
        source = ("10.0.0.%d" % (self.n % 4 + 1), 5060)
        out = self.engine.receive(data, source, self.now)
        assert isinstance(out, list)
        for datagram, dest in out:
            assert isinstance(datagram, bytes), datagram
            assert valid_dest(dest), dest
        if self.n % 64 == 0:
            self.now += 5000
            for _, dest in self.engine.tick(self.now):
                assert valid_dest(dest), dest
        assert self.engine.counters["internal_errors"] == 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--corpus", help="a folder to keep the corpus in (default: a temp one)")
    args, rest = parser.parse_known_args()
    corpus_dir = args.corpus or tempfile.mkdtemp(prefix="switchboard-fuzz-")
    os.makedirs(corpus_dir, exist_ok=True)
    for i, data in enumerate(seeds()):
        with open(os.path.join(corpus_dir, "seed-%03d" % i), "wb") as f:
            f.write(data)
    print("fuzzing Engine.receive for %d s, corpus in %s" % (args.seconds, corpus_dir), flush=True)
    argv = [sys.argv[0], "-max_total_time=%d" % args.seconds, "-max_len=4096", "-timeout=10",
            "-print_final_stats=1", "-artifact_prefix=%s/" % corpus_dir] + rest + [corpus_dir]
    atheris.Setup(argv, Target())
    atheris.Fuzz()


if __name__ == "__main__":
    main()
