//! The records rpcbind 1.2.6 and rpcinfo (libtirpc 1.3.3) sent and answered, captured from
//! the real programs (`tests/vectors/rpc-record.json`, copied from the shared vectors).

use bytes::Bytes;
use bytes::BytesMut;
use rpc_record::{
    AuthStat, Call, Config, Error, Record, RecordCodec, Reply, ServerError, encode_record,
};
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
    assert!(matches!(err, Error::Truncated { buffered: 8 }), "{err}");
    assert!(err.to_string().starts_with("EOF within message"));
}

/// The reply summary the capture tool wrote, from a decoded reply: `MSG_ACCEPTED/SUCCESS`.
fn summary(reply: &Reply) -> String {
    match reply.outcome {
        Ok(_) => "MSG_ACCEPTED/SUCCESS".into(),
        Err(ServerError::ProgUnavail) => "MSG_ACCEPTED/PROG_UNAVAIL".into(),
        Err(ServerError::ProgMismatch { .. }) => "MSG_ACCEPTED/PROG_MISMATCH".into(),
        Err(ServerError::ProcUnavail) => "MSG_ACCEPTED/PROC_UNAVAIL".into(),
        Err(ServerError::GarbageArgs) => "MSG_ACCEPTED/GARBAGE_ARGS".into(),
        Err(ServerError::SystemErr) => "MSG_ACCEPTED/SYSTEM_ERR".into(),
        Err(ServerError::RpcMismatch { .. }) => "MSG_DENIED/RPC_MISMATCH".into(),
        Err(ServerError::AuthError(AuthStat::RejectedCred)) => {
            "MSG_DENIED/AUTH_ERROR/AUTH_REJECTEDCRED".into()
        }
        Err(ServerError::AuthError(stat)) => format!("MSG_DENIED/AUTH_ERROR/{}", stat.code()),
    }
}

#[test]
fn rpcbind_replies_decode_as_captured_and_encode_back_byte_for_byte() {
    let mut checked = 0;
    for case in vectors()["rpcbind"].as_array().expect("rpcbind cases") {
        for captured in case["replies"].as_array().into_iter().flatten() {
            let message = hex(captured["reply_hex"].as_str().expect("reply_hex"));
            let reply = Reply::decode(Bytes::from(message.clone())).expect("a reply");
            let expected = &captured["reply"];
            assert_eq!(
                format!("{}", reply.xid.0),
                u32::from_str_radix(&expected["xid"].as_str().unwrap()[2..], 16)
                    .unwrap()
                    .to_string()
            );
            assert_eq!(summary(&reply), expected["reply"].as_str().unwrap());
            if let Some(bytes) = expected["result_bytes"].as_u64() {
                let results = match (&reply.outcome, expected["low_high"].as_array()) {
                    (Ok(results), _) => results.len() as u64,
                    (Err(ServerError::ProgMismatch { low, high }), Some(pair)) => {
                        assert_eq!(
                            (u64::from(*low), u64::from(*high)),
                            (pair[0].as_u64().unwrap(), pair[1].as_u64().unwrap())
                        );
                        8
                    }
                    (Err(_), _) => 0,
                };
                assert_eq!(results, bytes, "{}", case["case"]);
            }
            let mut wire = BytesMut::new();
            reply.encode(&mut wire);
            assert_eq!(&wire[..], &message[..], "{}", case["case"]);
            checked += 1;
        }
    }
    assert!(checked >= 20, "only {checked} replies checked");
}

#[test]
fn calls_sent_to_rpcbind_decode_or_fail_as_rpcbind_took_them() {
    let (mut calls, mut refused) = (0, 0);
    for case in vectors()["rpcbind"].as_array().expect("rpcbind cases") {
        let (Some(sent), Some(name)) = (case["sent_hex"].as_str(), case["case"].as_str()) else {
            continue;
        };
        if sent.contains("...") {
            continue; // abbreviated in the capture
        }
        let messages = match name.starts_with("UDP") {
            // A datagram is one message, no record mark.
            true => vec![Bytes::from(hex(sent))],
            false => (decode_all(&hex(sent)).0.into_iter())
                .map(|record| match record {
                    Record::Accept(message) => message,
                    other => panic!("{name}: {other}"),
                })
                .collect(),
        };
        for message in messages {
            match Call::decode(message.clone()) {
                Ok(call) => {
                    let prog = if name.starts_with("unknown program") {
                        300000
                    } else {
                        100000
                    };
                    assert_eq!(call.prog, prog, "{name}");
                    if name == "credential flavor 99" {
                        assert_eq!(call.cred.flavor(), 99);
                    }
                    let mut again = BytesMut::new();
                    call.encode(&mut again);
                    assert_eq!(&again[..], &message[..], "{name}: encodes back");
                    calls += 1;
                }
                Err(Error::RpcVersion { rpcvers: 3, .. }) => {
                    assert_eq!(name, "rpcvers 3");
                    refused += 1;
                }
                Err(Error::NotACall { msg_type: 1, .. }) => {
                    assert_eq!(name, "message type REPLY sent to server");
                    refused += 1;
                }

                Err(e) => {
                    // Only records rpcbind cut short (first fragment taken alone) are partial.
                    assert!(matches!(e, Error::Malformed { .. }), "{name}: {e}");
                }
            }
        }
    }
    assert!(
        calls >= 15 && refused == 2,
        "{calls} calls, {refused} refused"
    );
}

#[test]
fn a_datagram_with_a_record_mark_is_not_a_call() {
    // rpcbind silently drops such a datagram: its mark reads as the xid, its xid as the
    // msg_type.
    let mut datagram = hex("80000028");
    datagram.extend(hex(vectors()["rpcbind"]
        .as_array()
        .unwrap()
        .iter()
        .find(|case| case["case"] == "UDP NULL v2 (no record mark)")
        .expect("the UDP case")["sent_hex"]
        .as_str()
        .unwrap()));
    assert!(matches!(
        Call::decode(Bytes::from(datagram)),
        Err(Error::NotACall { xid, msg_type: 0x1122_3344 }) if xid.0 == 0x8000_0028
    ));
}

#[test]
fn rpcbinds_dump_lists_its_six_registrations() {
    let case = vectors()["rpcbind"]
        .as_array()
        .unwrap()
        .iter()
        .find(|case| case["case"] == "PMAPPROC_DUMP")
        .cloned()
        .expect("the DUMP case");
    let message = hex(case["replies"][0]["reply_hex"].as_str().unwrap());
    let Ok(results) = Reply::decode(Bytes::from(message)).unwrap().outcome else {
        panic!("SUCCESS")
    };
    let mappings = rpc_record::pmap::Mapping::decode_dump(results).unwrap();
    let lines: Vec<String> = mappings.iter().map(ToString::to_string).collect();
    assert_eq!(
        lines,
        [
            "    100000    4   tcp    111",
            "    100000    3   tcp    111",
            "    100000    2   tcp    111",
            "    100000    4   udp    111",
            "    100000    3   udp    111",
            "    100000    2   udp    111",
        ]
    );
}
