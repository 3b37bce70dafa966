//! The golden vectors produced by the real cs.packetstream 20240630 (`bytes(Packet(...))`),
//! asserted byte for byte in both directions.

use bytes::{Bytes, BytesMut};
use packetstream::{Packet, PacketCodec};
use serde_json::Value;
use tokio_util::codec::{Decoder, Encoder};

const VECTORS: &str = include_str!("vectors/packetstream-cs.json");

fn unhex(text: &str) -> Vec<u8> {
    assert!(text.len() % 2 == 0, "odd hex {text}");
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex"))
        .collect()
}

fn vectors() -> Value {
    serde_json::from_str(VECTORS).expect("the vectors parse")
}

fn u64_of(v: &Value, key: &str) -> u64 {
    v[key].as_u64().unwrap_or_else(|| panic!("{key} in {v}"))
}

/// The packet a vector describes, built from its fields, and its payload.
fn packet_of(v: &Value) -> Packet {
    let payload = match v["payload_hex"].as_str().expect("payload_hex") {
        "bytes(range(256))*800" => (0..800).flat_map(|_| 0..=255u8).collect(),
        hex => unhex(hex),
    };
    let (channel, tag, flags) = (
        u64_of(v, "channel"),
        u64_of(v, "tag"),
        u64_of(v, "user_flags"),
    );
    let packet = if v["is_request"].as_bool().expect("is_request") {
        let wire_rq = u64_of(v, "wire_rq_type");
        if wire_rq == 0 {
            assert_eq!(
                tag,
                if v["desc"].as_str().unwrap().starts_with("EOF") {
                    0
                } else {
                    1
                }
            );
            return if tag == 0 { Packet::EOF } else { Packet::ERQ };
        }
        assert_eq!(v["handler_rq_type"].as_u64(), Some(wire_rq - 1));
        Packet::request(channel, tag, wire_rq - 1, flags, Bytes::from(payload))
    } else {
        let ok = v["ok"].as_bool().expect("ok");
        Packet::response(channel, tag, ok, flags, Bytes::from(payload))
    };
    packet.expect("a vector's fields are valid")
}

#[test]
fn every_packet_vector_encodes_and_decodes_byte_for_byte() {
    let all = vectors();
    let packets = all["packets"].as_array().expect("packets");
    assert_eq!(packets.len(), 17);
    let mut codec = PacketCodec::default();
    for v in packets {
        let desc = v["desc"].as_str().unwrap();
        let packet = packet_of(v);
        let mut encoded = BytesMut::new();
        codec.encode(&packet, &mut encoded).unwrap();
        let hex = v["hex"].as_str().unwrap();
        let expected = match hex.strip_suffix("...") {
            // The big vector gives only the frame's start; the payload follows the 3-byte
            // length, the tag and the flagsword.
            Some(prefix) => {
                let start = unhex(prefix);
                assert_eq!(&encoded[..start.len()], &start[..], "{desc}");
                let mut whole = start.clone();
                whole.extend_from_slice(&packet.payload()[start.len() - 5..]);
                whole
            }
            None => unhex(hex),
        };
        // Not assert_eq: a 200 KiB mismatch would flood the output.
        assert!(
            encoded[..] == expected[..],
            "encode: {desc}: {} bytes, expected {}",
            encoded.len(),
            expected.len()
        );

        // And back: the wire bytes decode to the same packet, with the vector's fields.
        let mut wire = BytesMut::from(&expected[..]);
        let decoded = codec.decode(&mut wire).unwrap().expect("a whole frame");
        assert!(wire.is_empty(), "{desc}");
        assert!(decoded == packet, "decode: {desc}");
        assert_eq!(decoded.is_request(), v["is_request"].as_bool().unwrap());
        assert_eq!(decoded.channel(), u64_of(v, "channel"));
        assert_eq!(decoded.tag(), u64_of(v, "tag"));
        assert_eq!(decoded.flags(), u64_of(v, "user_flags"));
        assert_eq!(decoded.wire_rq_type(), v["wire_rq_type"].as_u64());
        assert_eq!(decoded.ok(), v["ok"].as_bool());
    }
}

#[test]
fn the_big_vector_has_cs_length_prefix() {
    let all = vectors();
    let big = all["packets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["desc"].as_str().unwrap().contains("204800"))
        .expect("the 200 KiB vector");
    let packet = packet_of(big);
    assert_eq!(packet.payload().len(), 204_800);
    let mut encoded = BytesMut::new();
    packet.encode(&mut encoded);
    assert_eq!(&encoded[..3], [0x8c, 0xc0, 0x02]);
    assert_eq!(encoded.len(), 3 + 2 + 204_800);
}

#[test]
fn every_bsuint_vector_round_trips() {
    // BSUInts are not public on their own; a request's tag is one, so they go through it.
    let all = vectors();
    for v in all["bsuint"].as_array().expect("bsuint") {
        let value = u64_of(v, "value");
        let bytes = unhex(v["hex"].as_str().unwrap());
        let packet = Packet::response(0, value, true, 0, Bytes::new()).unwrap();
        let mut encoded = BytesMut::new();
        packet.encode(&mut encoded);
        // Frame: length, tag (the vector), flagsword `04`.
        assert_eq!(&encoded[1..1 + bytes.len()], &bytes[..], "{value}");
        assert_eq!(encoded[0] as usize, bytes.len() + 1);
        let mut wire = encoded.clone();
        let decoded = PacketCodec::default().decode(&mut wire).unwrap().unwrap();
        assert_eq!(decoded.tag(), value);
    }
}
