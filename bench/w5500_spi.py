"""SPI cost of SIP on a board: frames and bytes per message and per call through the W5500.

    .venv/bin/python bench/w5500_spi.py [--calls 10]

Runs code.py's board_main() under CPython on the register-level W5500 model of tests/w5500
(the real adafruit_wiznet5k driver behind a fake SPI bus; tests/w5500/harness.Board), with
bench/w5500_runner.py counting SPI frames (chip selects) and bytes for every receive and send
of the SIP endpoint the board uses (switchboard.w5500udp.W5500UDP). SIPp phones on loopback
register and make calls (tests/sipp scenarios: INVITE, 100, 180, 200, ACK, BYE, 200), one
call at a time.

Frames and bytes per message depend on the driver and the endpoint, not on the machine.
How often the loop polls an idle socket does depend on the machine (CPython here is far
faster than a board), so idle polls are counted per poll, not per second.
"""

import argparse
import os
import shutil
import sys
import tempfile
import time

import benchlib as bl

sys.path.insert(0, os.path.join(bl.TESTS, "w5500"))

import harness  # noqa: E402
from sipp_helpers import Phone  # noqa: E402

RUNNER = os.path.join(bl.BENCH, "w5500_runner.py")
TARGET_FRAMES = 20  # per relayed message (one receive and one send)


def delta(after, before):
    """path counters of after minus before: {kind: [calls, frames, out, in]}."""
    out = {}
    for kind, values in after.get("path", {}).items():
        old = before.get("path", {}).get(kind, [0, 0, 0, 0])
        diff = [a - b for a, b in zip(values, old)]
        if diff[0]:
            out[kind] = diff
    return out


def totals(path, direction):
    calls = frames = out = inn = 0
    for kind, (c, f, o, i) in path.items():
        if kind.startswith(direction) and kind != "recv idle":
            calls += c
            frames += f
            out += o
            inn += i
    return calls, frames, out, inn


def per(value, count):
    return "%.1f" % (value / count) if count else "-"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=10)
    parser.add_argument("--idle-seconds", type=float, default=2.0)
    args = parser.parse_args()
    bl.sipp_path()
    bl.print_machine("bench/w5500_spi.py", [
        "model: tests/w5500 (adafruit_wiznet5k driver on the register-level W5500 model)",
        "calls: %d, one at a time; phones: SIPp on 127.0.0.61 and 127.0.0.62" % args.calls,
    ])
    harness.RUNNER = RUNNER  # the harness starts this instead of tests/w5500/runner.py
    workdir = tempfile.mkdtemp(prefix="bench-w5500-")
    try:
        with harness.Board({"LOG_LEVEL": "warning"}) as board:
            server = (board.ip, 5060)
            caller = Phone(server, "1001", "127.0.0.61", workdir)
            callee = Phone(server, "1002", "127.0.0.62", workdir)
            try:
                s0 = board.stats()["stats"]
                if "path" not in s0:
                    sys.exit("the board did not start through bench/w5500_runner.py")
                time.sleep(args.idle_seconds)
                s1 = board.stats()["stats"]
                for phone in (callee, caller):
                    result = phone.register()
                    if not result.ok:
                        sys.exit("REGISTER failed:\n" + result.report() + board.output())
                s2 = board.stats()["stats"]
                done = 0
                for _ in range(args.calls):
                    answering = callee.answer()
                    made = caller.call("1002", pause_ms=100)
                    answered = answering.wait()
                    if made.ok and answered.ok:
                        done += 1
                    else:
                        print("a call failed:\n" + made.report() + answered.report())
                s3 = board.stats()["stats"]
            finally:
                caller.stop()
                callee.stop()
            report(s0, s1, s2, s3, done, args)
            problems = [line for line in board.output().splitlines()
                        if " WARNING " in line or " ERROR " in line]
            if problems:
                print("board warnings/errors: %d, last: %s" % (len(problems), problems[-1]))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print("load average at end (1, 5, 15 min): %s" % bl.load_average())


SOCKET_REGS = {0x00: "Sn_MR", 0x01: "Sn_CR", 0x02: "Sn_IR", 0x03: "Sn_SR", 0x04: "Sn_PORT",
               0x0C: "Sn_DIPR", 0x10: "Sn_DPORT", 0x20: "Sn_TX_FSR", 0x22: "Sn_TX_RD",
               0x24: "Sn_TX_WR", 0x26: "Sn_RX_RSR", 0x28: "Sn_RX_RD", 0x2A: "Sn_RX_WR"}
COMMON_REGS = {0x2E: "PHYCFGR", 0x39: "VERSIONR", 0x0F: "SIPR"}


def frame_name(block, addr):
    if block.endswith(" reg"):
        base = max((a for a in SOCKET_REGS if a <= addr), default=0)
        name = SOCKET_REGS.get(base, "0x%02x" % addr)
        return "%s %s%s" % (block[:-4], name, "" if base == addr else "+%d" % (addr - base))
    if block == "common":
        return "common " + COMMON_REGS.get(addr, "0x%02x" % addr)
    return "%s buffer" % block


def print_trace(stats, kind):
    """Every SPI frame of one call, grouped: how many frames touch which register."""
    trace = stats.get("trace", {}).get(kind)
    if not trace:
        return
    groups = []
    for block, addr, rw, size in trace:
        name = "%s %s" % (frame_name(block, addr), "read" if rw == "r" else "write")
        if groups and groups[-1][0] == name:
            groups[-1][1] += 1
            groups[-1][2] += size
        else:
            groups.append([name, 1, size])
    print("-- the %d SPI frames of one '%s', in order (repeats merged)" % (len(trace), kind))
    print(bl.table([[n, str(c), str(b)] for n, c, b in groups],
                   ["register or buffer", "frames", "data bytes"]))
    print()


def report(s0, s1, s2, s3, calls, args):
    idle = delta(s1, s0).get("recv idle", [0, 0, 0, 0])
    print("== Idle: %d polls of the SIP socket in %.0f s: %s frames, %s bytes out, %s bytes in "
          "per poll" % (idle[0], args.idle_seconds, per(idle[1], idle[0]), per(idle[2], idle[0]),
                        per(idle[3], idle[0])))
    print()
    both = delta(s3, s1)
    rows = []
    for kind in sorted(both, key=lambda k: (not k.startswith("recv"), k)):
        if kind == "recv idle":
            continue
        c, f, o, i = both[kind]
        rows.append([kind, str(c), per(f, c), per(o, c), per(i, c)])
    print("== Per message (2 REGISTERs, then %d calls: INVITE/100/180/200/ACK/BYE/200)" % calls)
    print(bl.table(rows, ["message", "count", "frames", "bytes out", "bytes in"]))
    r_calls, r_frames, r_out, r_in = totals(both, "recv")
    s_calls, s_frames, s_out, s_in = totals(both, "send")
    print("received: %s frames, %s bytes per message (%d messages)"
          % (per(r_frames, r_calls), per(r_out + r_in, r_calls), r_calls))
    print("sent: %s frames, %s bytes per message (%d messages)"
          % (per(s_frames, s_calls), per(s_out + s_in, s_calls), s_calls))
    relayed = r_frames / r_calls + s_frames / s_calls if r_calls and s_calls else None
    print("a relayed message (one receive + one send): %s frames; target <= %d: %s"
          % (bl.fmt(relayed, "%.1f"), TARGET_FRAMES,
             "-" if relayed is None else ("meets" if relayed <= TARGET_FRAMES
                                          else "MISSED by %.1f" % (relayed - TARGET_FRAMES))))
    print()
    for kind in ("recv idle", "recv INVITE", "send INVITE"):
        print_trace(s3, kind)
    call_path = delta(s3, s2)
    c_recv = totals(call_path, "recv")
    c_send = totals(call_path, "send")
    c_idle = call_path.get("recv idle", [0, 0, 0, 0])
    all_frames = s3["frames"] - s2["frames"]
    all_bytes = (s3["spi_out"] - s2["spi_out"]) + (s3["spi_in"] - s2["spi_in"])
    if calls:
        print("== Per complete call (%d calls)" % calls)
        print(bl.table([
            ["SIP messages received", per(c_recv[0], calls), per(c_recv[1], calls),
             per(c_recv[2] + c_recv[3], calls)],
            ["SIP messages sent", per(c_send[0], calls), per(c_send[1], calls),
             per(c_send[2] + c_send[3], calls)],
            ["messages in + out", per(c_recv[0] + c_send[0], calls),
             per(c_recv[1] + c_send[1], calls),
             per(c_recv[2] + c_recv[3] + c_send[2] + c_send[3], calls)],
            ["idle polls meanwhile (machine-dependent)", per(c_idle[0], calls),
             per(c_idle[1], calls), per(c_idle[2] + c_idle[3], calls)],
            ["everything on the bus (also dashboard, DHCP, checks)", "",
             per(all_frames, calls), per(all_bytes, calls)],
        ], ["", "count", "frames", "bytes"]))
        print()


if __name__ == "__main__":
    main()
