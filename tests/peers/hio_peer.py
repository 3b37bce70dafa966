#!/usr/bin/env python3
"""A memo peer built on the real hio 0.7.20 PeerMemoer, for Strata's interop tests.

    hio_peer.py recv (--udp PORT | --uxd PATH) [--authic] [--count N] [--timeout S]
        prints "LISTENING <port or path>", then one JSON line per memo
        {"memo": ..., "src": ..., "vid": ...}; exits 0 after N memos, 2 on timeout
    hio_peer.py send (--udp PORT | --uxd PATH) [--bind PATH] [--size N] [--curt]
                     [--seed HEX] MEMO...
        sends each MEMO (an argument, or @LEN for LEN bytes of a known pattern) and exits
        once every gram has gone out
    hio_peer.py pattern LEN
        prints the @LEN pattern, so a test can compare what arrived

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
    peer = make_peer(args, authic=args.authic)
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
        vid = Memoer._encodeVID(verkey, "B")
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
            p.add_argument("--count", type=int)
            p.add_argument("--timeout", type=float, default=30)
        else:
            p.add_argument("--bind")
            p.add_argument("--size", type=int)
            p.add_argument("--curt", action="store_true")
            p.add_argument("--seed")
            p.add_argument("memos", nargs="+")
    p = sub.add_parser("pattern")
    p.add_argument("length", type=int)
    args = parser.parse_args()
    if args.mode == "pattern":
        sys.stdout.write(pattern(args.length))
    elif args.mode == "recv":
        recv(args)
    else:
        if args.uxd is not None and not args.bind:
            parser.error("send --uxd needs --bind PATH (hio binds its socket)")
        send(args)


if __name__ == "__main__":
    main()
