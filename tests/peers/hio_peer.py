#!/usr/bin/env python3
"""A memo peer built on the real hio 0.7.20 PeerMemoer, for Strata's interop tests.

    hio_peer.py recv (--udp PORT | --uxd PATH) [--authic] [--keep VID=QVK]... [--count N]
                     [--timeout S]
        prints "LISTENING <port or path>", then one JSON line per memo
        {"memo": ..., "src": ..., "vid": ...}; exits 0 after N memos, 2 on timeout
    hio_peer.py send (--udp PORT | --uxd PATH) [--bind PATH] [--size N] [--curt]
                     [--seed HEX [--vid VID]] MEMO...
        sends each MEMO (an argument, or @LEN for LEN bytes of a known pattern) and exits
        once every gram has gone out
    hio_peer.py pattern LEN
        prints the @LEN pattern, so a test can compare what arrived
    hio_peer.py bench (--udp | --uxd DIR) --count N --length LEN [--size N] [--window W]
        hio to hio in this one process: a sender and a receiver on loopback (or Unix
        sockets in DIR), N memos of LEN bytes, at most W (256) given to the sender and not
        yet out of the receiver, each side serviced in turn with no sleep;
        prints the seconds from the first memo given to hio to the last one out, or exits 2
        if they do not all arrive within 50 seconds

Loopback (127.0.0.1) and Unix sockets only. Every mode gives up by itself after 60
seconds (SIGALRM), so a broken peer can never hang a test run.
"""

import argparse
import json
import os
import signal
import sys
import time

import pysodium
from hio.core.memo.memoing import Keyage, Memoer, MemoDex
from hio.core.udp import peermemoing as udp_memoing
from hio.core.uxd import peermemoing as uxd_memoing


class FlatUxdPeer(uxd_memoing.PeerMemoer):
    """A UXD PeerMemoer whose socket lives exactly at headDirPath/NAME.uxd."""

    TailDirPath = ""
    CleanTailDirPath = ""
    AltTailDirPath = ""
    AltCleanTailDirPath = ""


def pattern(length):
    """LEN bytes of printable ASCII that never repeat within a gram."""
    return "".join(chr(0x21 + (i * 7 + i // 94) % 94) for i in range(length))


def memo_text(arg):
    return pattern(int(arg[1:])) if arg.startswith("@") else arg


def make_peer(args, **kwa):
    if args.udp is not None:
        # The receiver binds the port; a sender binds any free one.
        port = args.udp if args.mode == "recv" else 0
        peer = udp_memoing.PeerMemoer(
            name="strata-interop", host="127.0.0.1", port=port, **kwa)
    else:
        path = args.bind if args.mode == "send" else args.uxd
        head, name = os.path.split(path)
        if name.endswith(".uxd"):
            name = name[: -len(".uxd")]
        peer = FlatUxdPeer(name=name, headDirPath=head, temp=False, clear=False, **kwa)
    if not peer.reopen():
        sys.exit("cannot open the socket")
    return peer


def recv(args):
    # hio's keep: any vid to any verifying key (qvk qb64), no signing seed.
    keep = {}
    for entry in args.keep or []:
        vid, qvk = entry.split("=", 1)
        keep[vid] = Keyage(qvk=qvk, qss=None)
    peer = make_peer(args, authic=args.authic, keep=keep)
    where = peer.ls.getsockname()[1] if args.udp is not None else peer.path
    print("LISTENING", where, flush=True)
    deadline = time.monotonic() + args.timeout
    seen = 0
    try:
        while args.count is None or seen < args.count:
            if time.monotonic() > deadline:
                sys.exit(2)
            peer.service()
            while peer.inbox:
                memo, src, vid = peer.inbox.popleft()
                if isinstance(src, tuple):
                    src = "%s:%d" % src
                print(json.dumps({"memo": memo, "src": src, "vid": vid}), flush=True)
                seen += 1
            time.sleep(0.001)
    finally:
        peer.close()


def send(args):
    kwa = {"curt": args.curt}
    if args.size:
        kwa["size"] = args.size
    if args.seed:
        seed = bytes.fromhex(args.seed)
        verkey, _sigkey = pysodium.crypto_sign_seed_keypair(seed)
        # Signed under the seed's B vid, or under any vid given (hio's keep allows it).
        vid = args.vid or Memoer._encodeVID(verkey, "B")
        keyage = Keyage(qvk=Memoer._encodeQVK(verkey, "B"), qss=Memoer._encodeQSS(seed))
        kwa.update(code=MemoDex.GramAuthZero, vid=vid, keep={vid: keyage})
    peer = make_peer(args, **kwa)
    dst = ("127.0.0.1", args.udp) if args.udp is not None else args.uxd
    try:
        for memo in args.memos:
            peer.memoit(memo_text(memo), dst)
        while peer.txms or peer.txgs or peer.txbs[1] is not None:
            peer.service()
            time.sleep(0.0005)
    finally:
        peer.close()


def bench(args):
    """Times hio sending to hio, as the issue's reference figures were measured."""
    if args.uxd is None:
        rx = udp_memoing.PeerMemoer(name="strata-bench-rx", host="127.0.0.1", port=0)
        tx_kwa = dict(name="strata-bench-tx", host="127.0.0.1", port=0)
    else:
        rx = FlatUxdPeer(name="rx", headDirPath=args.uxd, temp=False, clear=False)
        tx_kwa = dict(name="tx", headDirPath=args.uxd, temp=False, clear=False)
    if args.size:
        tx_kwa["size"] = args.size
    tx = (udp_memoing.PeerMemoer if args.uxd is None else FlatUxdPeer)(**tx_kwa)
    if not (rx.reopen() and tx.reopen()):
        sys.exit("cannot open the sockets")
    dst = ("127.0.0.1", rx.ls.getsockname()[1]) if args.uxd is None else rx.path
    memo = pattern(args.length)
    try:
        start = time.monotonic()
        deadline = start + 50
        sent = seen = 0
        while seen < args.count:
            if time.monotonic() > deadline:
                sys.exit(2)
            # hio has no flow control: past the receive buffer, grams are lost for good.
            while sent < args.count and sent - seen < args.window:
                tx.memoit(memo, dst)
                sent += 1
            tx.service()
            rx.service()
            while rx.inbox:
                got, _src, _vid = rx.inbox.popleft()
                if len(got) != args.length:
                    sys.exit("a memo of %d bytes arrived, not %d" % (len(got), args.length))
                seen += 1
        print("%.6f" % (time.monotonic() - start), flush=True)
    finally:
        tx.close()
        rx.close()


def main():
    signal.alarm(60)
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="mode", required=True)
    for name in ("recv", "send"):
        p = sub.add_parser(name)
        where = p.add_mutually_exclusive_group(required=True)
        where.add_argument("--udp", type=int)
        where.add_argument("--uxd")
        if name == "recv":
            p.add_argument("--authic", action="store_true")
            p.add_argument("--keep", action="append")
            p.add_argument("--count", type=int)
            p.add_argument("--timeout", type=float, default=30)
        else:
            p.add_argument("--bind")
            p.add_argument("--size", type=int)
            p.add_argument("--curt", action="store_true")
            p.add_argument("--seed")
            p.add_argument("--vid")
            p.add_argument("memos", nargs="+")
    p = sub.add_parser("bench")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--udp", action="store_true")
    where.add_argument("--uxd")
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--length", type=int, required=True)
    p.add_argument("--size", type=int)
    p.add_argument("--window", type=int, default=256)
    p = sub.add_parser("pattern")
    p.add_argument("length", type=int)
    args = parser.parse_args()
    if args.mode == "pattern":
        sys.stdout.write(pattern(args.length))
    elif args.mode == "recv":
        recv(args)
    elif args.mode == "bench":
        bench(args)
    else:
        if args.uxd is not None and not args.bind:
            parser.error("send --uxd needs --bind PATH (hio binds its socket)")
        send(args)


if __name__ == "__main__":
    main()
