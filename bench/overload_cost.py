"""CPU time of refusing one new call while overload control sheds, without SIPp.

    .venv/bin/python bench/overload_cost.py [--calls 10000] [--chunk 100] [--rounds 5]
                                            [--lib DIR]

A refused call costs Switchboard three datagrams: the INVITE read, the 503 written, the ACK
to that 503 read and absorbed (overload.py). Past capacity (bench/host_load.py's 2x and 4x
steps) most offered calls are refused, so this cost decides how much of the CPU is left
for the calls let through. Here one App (host mode's loop, with the real UDP endpoint
on a free loopback port) sheds every INVITE; a client socket in the same process writes
`--chunk` INVITEs, App.step() answers them, the client writes an ACK to each 503, and
App.step() absorbs those. Only App.step() is timed (time.process_time(): user and system
CPU, the socket calls included). The client's work is not counted, and no peer waits in
poll(), so waking one is not counted either (host_load.py's figures include it).
Prints the fastest round's microseconds of CPU per refused call, and the same without
sockets: Overload.admit() alone on the INVITE and on its ACK; and what admit() costs the
calls let through while shedding (a new INVITE whose turn of the share is not a refusal,
and a BYE). --lib runs another checkout's lib/ with the same datagrams.
"""

import gc
import socket
import sys
import time

INVITE = (b"INVITE sip:1002@127.0.0.1:%d SIP/2.0\r\n"
          b"Via: SIP/2.0/UDP 127.0.0.3:%d;branch=z9hG4bK-%d-1-0\r\n"
          b"From: sipp <sip:1001@127.0.0.3:%d>;tag=%d\r\n"
          b"To: <sip:1002@127.0.0.1:%d>\r\n"
          b"Call-ID: %d-4242@127.0.0.3\r\n"
          b"CSeq: 1 INVITE\r\n"
          b"Contact: sip:sipp@127.0.0.3:%d\r\n"
          b"Max-Forwards: 70\r\n"
          b"Subject: Performance Test\r\n"
          b"Content-Type: application/sdp\r\n"
          b"Content-Length:   129\r\n\r\n"
          b"v=0\r\no=user1 53655765 2353687637 IN IP4 127.0.0.3\r\ns=-\r\n"
          b"c=IN IP4 127.0.0.3\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n")
# (SIPp's uac scenario writes the same headers)
ACK = (b"ACK sip:1002@127.0.0.1:%d SIP/2.0\r\n"
       b"Via: SIP/2.0/UDP 127.0.0.3:%d;branch=z9hG4bK-%d-1-0\r\n"
       b"From: sipp <sip:1001@127.0.0.3:%d>;tag=%d\r\n"
       b"To: %s\r\n"
       b"Call-ID: %d-4242@127.0.0.3\r\n"
       b"CSeq: 1 ACK\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n")


BYE = (b"BYE sip:1002@127.0.0.2:%d SIP/2.0\r\n"
       b"Via: SIP/2.0/UDP 127.0.0.3:%d;branch=z9hG4bK-%d-2-0;rport\r\n"
       b"Max-Forwards: 70\r\n"
       b"From: <sip:1001@127.0.0.1>;tag=%d\r\n"
       b"To: <sip:1002@127.0.0.1>;tag=callee-%d\r\n"
       b"Call-ID: %d-4242@127.0.0.3\r\n"
       b"CSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n")


def invite(k, port=5060, me=5061):
    """INVITE number k (its own Call-ID, From tag and branch) from 127.0.0.3:me to port."""
    return INVITE % (port, me, k, me, k, port, k, me)


def header(data, name):
    start = data.find(b"\r\n" + name + b": ") + len(name) + 4
    return data[start:data.find(b"\r\n", start)]


class Clock:
    def now(self):
        return int(time.monotonic() * 1000)


def shed_everything(ov):
    """Every new request is refused from now on: the share at 100%, which no lag moves,
    also while the queue is empty (host_load.py's steps refuse with datagrams waiting)."""
    ov.share = 100
    ov.shedding = True
    ov.low = -1  # (a lag is never below this: the share never falls)
    ov.free = 0


def one_round(app, client, port, calls, chunk, first):
    shed_everything(app.overload)
    app.shedding = True
    me = client.getsockname()[1]
    dest = ("127.0.0.1", port)
    spent = 0.0
    for start in range(first, first + calls, chunk):
        for k in range(start, start + chunk):
            client.sendto(invite(k, port, me), dest)
        t = time.process_time()
        app.step()
        spent += time.process_time() - t
        answered = 0
        for _ in range(chunk):
            try:
                got = client.recv(4096)
            except BlockingIOError:
                break
            if not got.startswith(b"SIP/2.0 503 "):
                sys.exit("expected a 503, got: %r" % got[:60])
            answered += 1
            k = int(header(got, b"Call-ID").split(b"-")[0])
            client.sendto(ACK % (port, me, k, me, k, header(got, b"To"), k), dest)
        if answered != chunk:
            sys.exit("%d of %d INVITEs answered" % (answered, chunk))
        t = time.process_time()
        app.step()
        spent += time.process_time() - t
    return spent


def admit_only(overload_class, calls):
    """Microseconds per Overload.admit() of a refused INVITE, of its ACK, and, while
    shedding, of a new INVITE let through and of a BYE (both passed to the engine)."""
    ov = overload_class()
    shed_everything(ov)
    source = ("127.0.0.3", 5061)
    invites = [invite(k) for k in range(calls)]
    acks = [ACK % (5060, 5061, k, 5061, k, b"<sip:1002@127.0.0.1>;tag=sbov000001", k)
            for k in range(calls)]
    byes = [BYE % (5060, 5061, k, 5061, k, k) for k in range(calls)]
    out = []
    for batch in (invites, acks, None, byes):
        if batch is None:  # while shedding, the share's turn not a refusal: let through
            ov = overload_class(memory=calls)
            shed_everything(ov)
            ov.share = 1
            batch = [invite(k) for k in range(calls, 2 * calls)]
        t = time.process_time()
        for data in batch:
            ov.admit(data, source)
        out.append((time.process_time() - t) / calls * 1e6)
    return out


def main():
    import benchlib as bl  # puts this checkout's lib/ and tests/ on sys.path

    parser = bl.lib_parser(__doc__)
    parser.add_argument("--calls", type=int, default=10000)
    parser.add_argument("--chunk", type=int, default=100)
    args = parser.parse_args()
    lib_line = bl.use_lib(args.lib)
    from switchboard.app import App
    from switchboard.config import Config
    from switchboard.overload import Overload

    bl.print_machine("bench/overload_cost.py", [
        lib_line,
        "refused calls: %d a round, %d a step, %d rounds" % (args.calls, args.chunk,
                                                             args.rounds)])
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    config = Config(overrides={"SIP_ADDRESS": "127.0.0.1", "SIP_HOST": "127.0.0.1",
                               "SIP_PORT": port, "SIP_USERS": "1001,1002", "RATE_LIMIT": 0,
                               "LOG_LEVEL": "warning"})
    app = App(config, socket, Clock(), lambda level, text: None, b"x" * 16)
    client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        client.bind(("127.0.0.3", 0))
        client.setblocking(False)
        client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        best = None
        for r in range(args.rounds):
            gc.collect()
            spent = one_round(app, client, port, args.calls, args.chunk, r * args.calls)
            print("   round: %.1f us per refused call" % (spent / args.calls * 1e6), flush=True)
            best = spent if best is None else min(best, spent)
        c = app.engine.counters
        expected = args.calls * args.rounds
        if c["shed"] != expected or c["shed_absorbed"] != expected:
            sys.exit("counters: shed=%d shed_absorbed=%d, expected %d each"
                     % (c["shed"], c["shed_absorbed"], expected))
    finally:
        client.close()
        app.sip.close()
    admits = [admit_only(Overload, args.calls) for _ in range(args.rounds)]
    print()
    print("fastest round, microseconds of CPU per refused call:")
    print(bl.table([
        ["App.step(): INVITE read, 503 sent, ACK read", "%.1f" % (best / args.calls * 1e6)],
        ["Overload.admit() of the INVITE alone", "%.1f" % min(a[0] for a in admits)],
        ["Overload.admit() of its ACK alone", "%.1f" % min(a[1] for a in admits)],
        ["while shedding, Overload.admit() of an INVITE let through",
         "%.1f" % min(a[2] for a in admits)],
        ["while shedding, Overload.admit() of a BYE", "%.1f" % min(a[3] for a in admits)],
    ], ["what", "us"]))


if __name__ == "__main__":
    main()
