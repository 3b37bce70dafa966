"""What hio 0.7.20's own gram parser (Memoer.pick) makes of datagrams, one JSON line per
file, for scripts/differential (the Rust side is examples/decode_verdicts.rs gram).

    python hio_gram_verdicts.py FILE...

Each file is one datagram, picked by a fresh Memoer (no keys, authic off, nothing received
before it), as hio's receive loop picks each datagram.
"""

import json
import sys

from hio.core import memo


def verdict(path):
    with open(path, "rb") as f:
        data = f.read()
    gram = bytearray(data)
    try:
        mid, vid, gn, gc = memo.Memoer(name="verdicts").pick(gram)
    except Exception as e:  # hio refuses it (or dies on it: see the documented crashes)
        return {"file": path, "ok": False, "why": f"{type(e).__name__}: {e}"}
    return {"file": path, "ok": True, "mid": mid, "vid": vid or None, "gn": gn, "gc": gc,
            "body": bytes(gram).hex(), "why": ""}


def main(paths):
    for path in paths:
        print(json.dumps(verdict(path)))


if __name__ == "__main__":
    main(sys.argv[1:])
