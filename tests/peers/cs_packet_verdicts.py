"""What cs.packetstream's own parser makes of byte streams, one JSON line per file, for
scripts/differential (the Rust side is examples/decode_verdicts.rs).

    python cs_packet_verdicts.py FILE...

Each file is a fuzz input of the packet_codec target: its first byte is skipped, the rest is
the stream. Frames are cut with cs.binary's BSData, as PacketConnection's receive loop reads
them, and each frame is parsed with Packet.parse.
"""

import json
import sys

from cs.binary import BSData
from cs.buffer import CornuCopyBuffer
from cs.packetstream import Packet


def verdict(path):
    with open(path, "rb") as f:
        stream = f.read()[1:]
    bfr = CornuCopyBuffer([stream])
    packets = []
    end, why = "end", ""
    while not bfr.at_eof():
        start = bfr.offset
        try:
            BSData.parse_value(bfr)
        except EOFError:
            end = "short"
            break
        frame = stream[start:bfr.offset]
        try:
            p = Packet.parse(CornuCopyBuffer([frame]))
        except Exception as e:  # the frame's body does not parse
            end, why = "error", f"{type(e).__name__}: {e}"
            break
        packets.append({
            "req": bool(p.is_request),
            "tag": p.tag,
            "channel": p.channel,
            "F": p.flags,
            "rq": p.rq_type if p.is_request else None,
            "payload": bytes(p.payload).hex(),
        })
    return {"file": path, "packets": packets, "end": end, "why": why}


def main(paths):
    for path in paths:
        print(json.dumps(verdict(path)))


if __name__ == "__main__":
    main(sys.argv[1:])
