//! The records rpcbind 1.2.6 and rpcinfo (libtirpc 1.3.3) sent and answered, captured from
//! the real programs (`tests/vectors/rpc-record.json`, copied from the shared vectors).

use bytes::BytesMut;
use rpc_record::{Config, Error, Record, RecordCodec, encode_record};
use serde_json::Value;
use tokio_util::codec::Decoder;

fn vectors() -> Value {
    let text = include_str!("vectors/rpc-record.json");
    serde_json::from_str(text).expect("the vectors are JSON")
}

fn hex(text: &str) -> Vec<u8> {
    let digits: String = text.split_whitespace().collect();
    (0..digits.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&digits[i..i + 2], 16).expect("hex"))
        .collect()
}

/// The payload bytes of `wire`, its record marks taken out: a reference independent of the
/// decoder (it assumes the marks are consistent with the bytes).
fn strip_marks(wire: &[u8]) -> Vec<u8> {
    let (mut out, mut at) = (Vec::new(), 0);
    while at + 4 <= wire.len() {
        let len = (u32::from_be_bytes([wire[at], wire[at + 1], wire[at + 2], wire[at + 3]])
            & 0x7fff_ffff) as usize;
        out.extend_from_slice(&wire[at + 4..at + 4 + len]);
        at += 4 + len;
    }
    assert_eq!(at, wire.len(), "whole fragments");
    out
}

/// Every record `wire` holds, accepted, and whether it ended cleanly.
fn decode_all(wire: &[u8]) -> (Vec<Record>, Result<(), Error>) {
    let mut codec = RecordCodec::new(&Config::default());
    let mut src = BytesMut::from(wire);
    let mut records = Vec::new();
    loop {
        match codec.decode_eof(&mut src) {
            Ok(Some(record)) => records.push(record),
            Ok(None) => return (records, Ok(())),
            Err(e) => return (records, Err(e)),
        }
    }
}

#[test]
fn rpcbind_replies_are_one_fragment_and_encode_byte_for_byte() {
    let mut checked = 0;
    for case in vectors()["rpcbind"].as_array().expect("rpcbind cases") {
        for reply in case["replies"].as_array().into_iter().flatten() {
            let payload = hex(reply["reply_hex"].as_str().expect("reply_hex"));
            let Some(fragments) = reply["fragments"].as_array() else {
                continue; // UDP: no record mark
            };
            assert_eq!(fragments.len(), 1, "rpcbind answers in one fragment");
            let mut wire = BytesMut::new();
            encode_record(&payload, Config::default().fragment_size, &mut wire);
            let mark = fragments[0][0].as_str().expect("mark");
            assert_eq!(&wire[..4], &hex(mark)[..], "{}", case["case"]);
            let (records, end) = decode_all(&wire);
            assert!(end.is_ok());
            assert_eq!(records, [Record::Accept(payload.into())]);
            checked += 1;
        }
    }
    assert!(checked >= 15, "only {checked} replies checked");
}

#[test]
fn calls_sent_to_rpcbind_decode_as_the_framing_says() {
    let mut checked = 0;
    for case in vectors()["rpcbind"].as_array().expect("rpcbind cases") {
        let (Some(sent), Some(name)) = (case["sent_hex"].as_str(), case["case"].as_str()) else {
            continue;
        };
        if sent.contains("...") || name.starts_with("UDP") {
            continue; // abbreviated in the capture, or a datagram
        }
        let wire = hex(sent);
        let (records, end) = decode_all(&wire);
        let mut decoded = Vec::new();
        for record in records {
            match record {
                Record::Accept(bytes) => decoded.extend_from_slice(&bytes),
                other => panic!("{name}: {other}"),
            }
        }
        match name {
            // The one case whose mark declares more than was sent.
            "header 0xffffffff" => assert!(end.is_err(), "{name}"),
            _ => {
                assert!(end.is_ok(), "{name}: {end:?}");
                assert_eq!(decoded, strip_marks(&wire), "{name}");
            }
        }
        checked += 1;
    }
    assert!(checked >= 15, "only {checked} calls checked");
}

#[test]
fn the_empty_non_last_fragment_rpcbind_resets_on_is_accepted_here() {
    let wire = hex(
        "00000000 80000028 11223344 00000000 00000002 000186a0 00000002 00000000 00000000 00000000 00000000 00000000",
    );
    let (records, end) = decode_all(&wire);
    assert!(end.is_ok());
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].to_string(), "accept len=40");
}

#[test]
fn a_truncated_record_is_eof_within_message() {
    let wire = hex("80000028 11223344 00000000");
    let (records, end) = decode_all(&wire);
    assert!(records.is_empty());
    let err = end.unwrap_err();
    assert!(
        matches!(err, Error::EofWithinMessage { buffered: 8 }),
        "{err}"
    );
    assert!(err.to_string().starts_with("EOF within message"));
}
