#!/usr/bin/env python3
"""A TCP peer built on the real cs.packetstream 20240630, for Strata's interop tests.

    cs_packetstream_peer.py server PORT [--once]   prints "LISTENING <port>", serves the table
    cs_packetstream_peer.py client PORT            calls the table; one JSON line per call

Loopback only. Both modes use packet_grace=0 and TCP_NODELAY, and give up by themselves
after 60 seconds (SIGALRM), so a broken peer can never hang a test run.
"""

import json
import signal
import socket
import sys
import time

from cs.packetstream import PacketConnection

HELLO = "h\u00e9llo"
# Our lines go to the real stdout; cs's progress and task lines (it prints them to stdout)
# go to stderr with the rest of the library's chatter.
OUT = sys.stdout
sys.stdout = sys.stderr


def handler(rq_type, flags, payload):
    """The handler table of specs/packetstream.md section 4.4, keyed by handler rq_type."""
    payload = bytes(payload)
    if rq_type == 0:
        return flags, payload
    if rq_type == 1:
        return 0x11, payload[::-1]
    if rq_type == 2:
        return None
    if rq_type == 3:
        return flags + 1
    if rq_type == 4:
        return HELLO
    if rq_type == 6:
        time.sleep(int(payload) / 1000)
        return flags, payload
    raise ValueError("rq_type %d fails on purpose" % rq_type)


def expected(rq_type, flags, payload):
    """What the table answers, as (ok, flags, payload)."""
    if rq_type in (0, 6):
        return True, flags, payload
    if rq_type == 1:
        return True, 0x11, payload[::-1]
    if rq_type == 2:
        return True, 0, b""
    if rq_type == 3:
        return True, flags + 1, b""
    if rq_type == 4:
        return True, 0, HELLO.encode("utf-8")
    return False, 0, b"exception during handler"


BIG = bytes(range(256)) * 800  # 200 KiB
SEQUENTIAL = [
    (0, 0, b"echo"),
    (0, 1 << 40, b"flags up to 2^40"),
    (1, 0, b"abc"),
    (2, 5, b"ignored"),
    (3, 41, b""),
    (4, 0, b""),
    (5, 0, b""),
    (300, 0, b""),
    (0, 3, BIG),
]
# Pipelined: the first sleeps longest, so a server that runs handlers at once answers them
# out of order.
PIPELINED = [(6, 1, b"60"), (6, 2, b"30"), (6, 3, b"0")]


def short(data):
    return data[:32].hex() + ("...%d" % len(data) if len(data) > 32 else "")


def connect(sock, name, **kw):
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return PacketConnection((sock.fileno(), sock.fileno()), name, packet_grace=0, **kw)


def serve(port, once):
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(8)
    print("LISTENING %d" % listener.getsockname()[1], file=OUT, flush=True)
    while True:
        sock, _ = listener.accept()
        conn = connect(sock, "server", request_handler=handler)
        with conn:
            conn.join_recv()
        sock.close()
        if once:
            return 0


def call(port):
    sock = socket.create_connection(("127.0.0.1", port))
    conn = connect(sock, "client")
    ok_all = True

    def report(rq_type, flags, payload, got):
        nonlocal ok_all
        want = expected(rq_type, flags, payload)
        match = (got[0], got[1], bytes(got[2])) == want
        ok_all = ok_all and match
        print(json.dumps({
            "call": [rq_type, flags, short(payload)],
            "got": [got[0], got[1], short(bytes(got[2]))],
            "match": match,
        }), file=OUT, flush=True)

    with conn:
        for rq_type, flags, payload in SEQUENTIAL:
            report(rq_type, flags, payload, conn(rq_type, payload, flags))
        results = [conn.submit(rq_type, flags, payload) for rq_type, flags, payload in PIPELINED]
        for (rq_type, flags, payload), result in zip(PIPELINED, results):
            report(rq_type, flags, payload, result())
    sock.close()
    return 0 if ok_all else 1


def main(argv):
    signal.alarm(60)
    if len(argv) >= 3 and argv[1] == "server":
        return serve(int(argv[2]), "--once" in argv[3:])
    if len(argv) == 3 and argv[1] == "client":
        return call(int(argv[2]))
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
