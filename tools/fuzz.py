"""Coverage-guided fuzzing of the engine's datagram entry point with atheris (libFuzzer).

    .venv/bin/python tools/fuzz.py --seconds 600

Seeds are real SIP datagrams (the flows of tests/flows.py and tests/hostile.py). Every input goes
through message.parse() (which may only raise ParseError) and Engine.receive() (which may not
raise, nor log an internal error); timers run every 64 inputs. A failure stops the run with
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
    from switchboard.message import ParseError, parse


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
    return datagrams


class Target:
    def __init__(self):
        settings = {"SIP_ADDRESS": "10.0.0.1", "SIP_USERS": "1001,1002:pw", "RATE_LIMIT": 0}
        self.engine = Engine(Config(overrides=settings), 1, strict_log)
        self.now = 1000
        self.n = 0

    def __call__(self, data):
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
            assert isinstance(datagram, bytes) and isinstance(dest[1], int)
        if self.n % 64 == 0:
            self.now += 5000
            self.engine.tick(self.now)
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
