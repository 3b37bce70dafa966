//! The decoder's behaviour: admission, limits, lenient framing, and one regression test per
//! Ocamlnet 4.1.9 defect (spec §2.8), named after it.

use bytes::{BufMut, BytesMut};
use proptest::prelude::*;

use crate::{Config, Error, Fragment, Record, RecordDecoder, Rule, ServerError, Xid};

fn mark(len: u32, last: bool) -> [u8; 4] {
    (len | if last { 0x8000_0000 } else { 0 }).to_be_bytes()
}

/// A record of `payload` cut into fragments of the given lengths.
fn fragments(payload: &[u8], lens: &[usize]) -> BytesMut {
    let mut wire = BytesMut::new();
    let mut at = 0;
    for (i, &len) in lens.iter().enumerate() {
        wire.put_slice(&mark(len as u32, i + 1 == lens.len()));
        wire.put_slice(&payload[at..at + len]);
        at += len;
    }
    assert_eq!(at, payload.len(), "the lengths cover the payload");
    wire
}

fn accept(_: &Fragment) -> Rule {
    Rule::Accept
}

fn decoder() -> RecordDecoder {
    RecordDecoder::new(&Config::default())
}

#[test]
fn admission_sees_the_length_so_far_and_the_first_refusal_sticks() {
    let mut seen = Vec::new();
    let mut wire = fragments(&[7; 20], &[12, 8]);
    let record = decoder()
        .decode(&mut wire, &mut |f: &Fragment| {
            seen.push((f.index, f.len, f.last, f.so_far));
            Rule::Accept
        })
        .unwrap();
    assert_eq!(record, Some(Record::Accept(vec![7; 20].into())));
    assert_eq!(seen, [(0, 12, false, 12), (1, 8, true, 20)]);

    // A Drop at the first header is never asked again.
    let mut asked = 0;
    let mut wire = fragments(&[7; 20], &[12, 4, 4]);
    let record = decoder()
        .decode(&mut wire, &mut |_: &Fragment| {
            asked += 1;
            Rule::Drop
        })
        .unwrap();
    assert_eq!((record, asked), (Some(Record::Drop), 1));
}

#[test]
fn a_single_fragment_record_is_a_slice_of_the_input() {
    let mut wire = fragments(b"zero copy", &[9]);
    let start = wire.as_ptr() as usize;
    let Some(Record::Accept(payload)) = decoder().decode(&mut wire, &mut accept).unwrap() else {
        panic!("accepted");
    };
    assert_eq!(&payload[..], b"zero copy");
    assert_eq!(
        payload.as_ptr() as usize,
        start + 4,
        "shares the input buffer"
    );
}

#[test]
fn header_ffffffff_under_a_1_mib_limit_fails_before_allocating() {
    let mut wire = BytesMut::from(&b"\xff\xff\xff\xff\x11\x22\x33\x44"[..]);
    let capacity = wire.capacity();
    let mut decoder = decoder();
    let err = decoder.decode(&mut wire, &mut accept).unwrap_err();
    assert!(
        matches!(
            err,
            Error::RecordTooLarge {
                size: 0x7fff_ffff,
                max: 1_052_672
            }
        ),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        "record too large: 2147483647 bytes declared so far, the limit is 1052672"
    );
    assert!(wire.capacity() <= capacity, "the input buffer did not grow");
    assert_eq!(decoder.held(), 0);
    // Going on anyway discards the rest of that record.
    assert_eq!(decoder.decode(&mut wire, &mut accept).unwrap(), None);
    assert!(wire.is_empty() && decoder.held() == 0);
}

#[test]
fn the_limit_applies_to_the_running_total_of_fragments() {
    let config = Config {
        max_record: 16,
        ..Config::default()
    };
    let mut wire = fragments(&[1; 24], &[8, 8, 8]);
    let err = RecordDecoder::new(&config)
        .decode(&mut wire, &mut accept)
        .unwrap_err();
    assert!(
        matches!(err, Error::RecordTooLarge { size: 24, max: 16 }),
        "{err}"
    );
}

#[test]
fn empty_fragments_and_empty_records_are_accepted() {
    // An empty non-last fragment, then the data; data then an empty last fragment; an
    // empty record.
    let mut wire = BytesMut::new();
    wire.put_slice(&mark(0, false));
    wire.put_slice(&mark(4, true));
    wire.put_slice(b"abcd");
    wire.put_slice(&mark(2, false));
    wire.put_slice(b"ef");
    wire.put_slice(&mark(0, true));
    wire.put_slice(&mark(0, true));
    let mut decoder = decoder();
    let mut next = || decoder.decode(&mut wire, &mut accept).unwrap();
    assert_eq!(next(), Some(Record::Accept("abcd".into())));
    assert_eq!(next(), Some(Record::Accept("ef".into())));
    assert_eq!(next(), Some(Record::Accept("".into())));
    assert_eq!(next(), None);
}

#[test]
fn a_record_trickling_in_one_byte_at_a_time_decodes() {
    let wire = fragments(b"one byte at a time", &[5, 13]);
    let mut decoder = decoder();
    let mut src = BytesMut::new();
    let mut records = Vec::new();
    for &byte in &wire[..] {
        src.put_u8(byte);
        records.extend(decoder.decode(&mut src, &mut accept).unwrap());
    }
    assert_eq!(records, [Record::Accept("one byte at a time".into())]);
    assert!(decoder.is_idle());
}

#[test]
fn reject_gathers_the_xid_from_fragments_of_one_to_three_bytes() {
    let payload = [0x11, 0x22, 0x33, 0x44, 0, 0, 0, 0, 0xee];
    let mut wire = fragments(&payload, &[1, 2, 0, 3, 3]);
    let mut decoder = decoder();
    let mut src = BytesMut::new();
    let mut records = Vec::new();
    for &byte in &wire.split()[..] {
        src.put_u8(byte);
        records.extend(
            decoder
                .decode(&mut src, &mut |_: &Fragment| Rule::Reject)
                .unwrap(),
        );
        assert!(decoder.held() <= 4, "only the xid is held");
    }
    assert_eq!(
        records,
        [Record::Reject {
            xid: Xid(0x1122_3344)
        }]
    );
}

#[test]
fn reject_with_carries_the_error() {
    let mut wire = fragments(&[0, 0, 0, 9, 1, 2], &[6]);
    let error = ServerError::ProgMismatch { low: 2, high: 3 };
    let record = decoder()
        .decode(&mut wire, &mut |_: &Fragment| Rule::RejectWith(error))
        .unwrap();
    assert_eq!(record, Some(Record::RejectWith { xid: Xid(9), error }));
}

#[test]
fn a_reject_decided_late_still_finds_the_xid_in_accepted_fragments() {
    let mut wire = fragments(&[0xab, 0xcd, 0, 1, 5, 5, 5, 5], &[4, 4]);
    let mut decoder = decoder();
    let mut rule = |f: &Fragment| {
        if f.index == 0 {
            Rule::Accept
        } else {
            Rule::Reject
        }
    };
    let record = decoder.decode(&mut wire, &mut rule).unwrap();
    assert_eq!(
        record,
        Some(Record::Reject {
            xid: Xid(0xabcd_0001)
        })
    );
    assert_eq!(decoder.held(), 0);
}

#[test]
fn a_record_too_short_to_reject_is_an_error_and_the_stream_stays_in_step() {
    let mut wire = fragments(&[1, 2, 3], &[3]);
    wire.extend_from_slice(&fragments(b"next", &[4]));
    let mut decoder = decoder();
    let err = decoder
        .decode(&mut wire, &mut |f: &Fragment| {
            if f.len == 3 {
                Rule::Reject
            } else {
                Rule::Accept
            }
        })
        .unwrap_err();
    assert!(matches!(err, Error::ShortRecord { len: 3 }), "{err}");
    let record = decoder.decode(&mut wire, &mut accept).unwrap();
    assert_eq!(record, Some(Record::Accept("next".into())));
}

#[test]
fn deny_is_reported_at_once_and_the_rest_of_the_record_is_skipped() {
    let mut wire = BytesMut::new();
    wire.put_slice(&mark(1 << 30, true));
    let mut decoder = decoder();
    let record = decoder
        .decode(&mut wire, &mut |_: &Fragment| Rule::Deny)
        .unwrap();
    assert_eq!(record, Some(Record::Deny), "before any payload arrived");
}

#[test]
fn a_record_with_too_many_fragments_is_an_error() {
    let config = Config {
        max_fragments: 3,
        ..Config::default()
    };
    let mut wire = BytesMut::new();
    for _ in 0..4 {
        wire.put_slice(&mark(0, false));
    }
    let err = RecordDecoder::new(&config)
        .decode(&mut wire, &mut |_: &Fragment| Rule::Drop)
        .unwrap_err();
    assert!(matches!(err, Error::TooManyFragments { max: 3 }), "{err}");
}

#[test]
fn dropping_a_100_mib_multi_fragment_record_streams_with_bounded_memory() {
    const FRAGMENT: usize = 1 << 20;
    const CHUNK: usize = 64 * 1024;
    let mut decoder = decoder();
    let mut src = BytesMut::with_capacity(CHUNK + 64);
    let mut records = Vec::new();
    let mut feed = |bytes: &[u8], decoder: &mut RecordDecoder, src: &mut BytesMut| {
        src.extend_from_slice(bytes);
        records.extend(decoder.decode(src, &mut |_: &Fragment| Rule::Drop).unwrap());
        assert!(src.capacity() <= CHUNK + 64, "the input buffer never grows");
        assert_eq!(decoder.held(), 0);
    };
    let zeros = vec![0u8; CHUNK];
    for i in 0..100 {
        feed(&mark(FRAGMENT as u32, i == 99), &mut decoder, &mut src);
        for _ in 0..FRAGMENT / CHUNK {
            feed(&zeros, &mut decoder, &mut src);
            assert!(src.is_empty(), "every byte is discarded as it arrives");
        }
    }
    assert_eq!(records, [Record::Drop]);
    let mut next = fragments(b"after", &[5]);
    assert_eq!(
        decoder.decode(&mut next, &mut accept).unwrap(),
        Some(Record::Accept("after".into()))
    );
}

// Ocamlnet 4.1.9's defects (spec §2.8), one test each.

#[test]
fn defect_1_drop_or_deny_of_a_multi_fragment_record_does_not_spin() {
    for rule in [Rule::Drop, Rule::Deny] {
        let mut wire = fragments(&[9; 244], &[122, 122]);
        wire.extend_from_slice(&fragments(b"call", &[4]));
        let mut decoder = decoder();
        let mut records = Vec::new();
        // Each call consumes input or ends a record, so three calls are plenty.
        for _ in 0..3 {
            let mut rule = |f: &Fragment| if f.so_far > 100 { rule } else { Rule::Accept };
            records.extend(decoder.decode(&mut wire, &mut rule).unwrap());
        }
        let expected = if rule == Rule::Drop {
            Record::Drop
        } else {
            Record::Deny
        };
        assert_eq!(records, [expected, Record::Accept("call".into())]);
        assert!(wire.is_empty());
    }
}

#[test]
fn defect_2_no_phantom_empty_record_after_a_drop() {
    let mut wire = fragments(&[9; 16], &[16]);
    let mut decoder = decoder();
    let mut rule = |f: &Fragment| {
        if f.len == 16 {
            Rule::Drop
        } else {
            Rule::Accept
        }
    };
    assert_eq!(
        decoder.decode(&mut wire, &mut rule).unwrap(),
        Some(Record::Drop)
    );
    assert_eq!(
        decoder.decode(&mut wire, &mut rule).unwrap(),
        None,
        "nothing more came"
    );
    wire.extend_from_slice(&fragments(b"real", &[4]));
    assert_eq!(
        decoder.decode(&mut wire, &mut rule).unwrap(),
        Some(Record::Accept("real".into()))
    );
}

#[test]
fn defect_3_reject_keeps_only_the_xid() {
    for len in [16usize, 20, 4096] {
        let mut payload = vec![0u8; len];
        payload[..4].copy_from_slice(&[0, 0, 0, 0x51]);
        let mut decoder = decoder();
        let mut src = BytesMut::new();
        let mut records = Vec::new();
        for piece in fragments(&payload, &[len]).chunks(3) {
            src.extend_from_slice(piece);
            records.extend(
                decoder
                    .decode(&mut src, &mut |_: &Fragment| Rule::Reject)
                    .unwrap(),
            );
            assert!(
                decoder.held() <= 4 && src.len() < 4,
                "held {}",
                decoder.held()
            );
        }
        assert_eq!(records, [Record::Reject { xid: Xid(0x51) }]);
    }
}

#[test]
fn defect_4_drop_discards_a_fragment_as_it_arrives_not_once_whole() {
    let mut src = BytesMut::new();
    src.put_slice(&mark(1 << 20, true));
    src.put_slice(&[0; 1000]);
    let mut decoder = decoder();
    assert_eq!(
        decoder
            .decode(&mut src, &mut |_: &Fragment| Rule::Drop)
            .unwrap(),
        None
    );
    assert!(
        src.is_empty(),
        "the partial fragment was discarded, not kept"
    );
    assert_eq!(decoder.held(), 0);
}

#[test]
fn defect_5_an_empty_last_fragment_at_the_end_of_input_completes_at_once() {
    let mut wire = BytesMut::new();
    wire.put_slice(&mark(4, false));
    wire.put_slice(b"null");
    wire.put_slice(&mark(0, true));
    let record = decoder().decode(&mut wire, &mut accept).unwrap();
    assert_eq!(record, Some(Record::Accept("null".into())));
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic_and_stay_bounded(
        data in proptest::collection::vec(any::<u8>(), 0..512),
        cut in 0usize..512,
        choice in 0u8..5,
    ) {
        let config = Config { max_record: 64, max_fragments: 8, ..Config::default() };
        let mut decoder = RecordDecoder::new(&config);
        let rule = match choice {
            0 => Rule::Accept,
            1 => Rule::Deny,
            2 => Rule::Drop,
            3 => Rule::Reject,
            _ => Rule::RejectWith(ServerError::GarbageArgs),
        };
        let mut rule = |_: &Fragment| rule;
        let cut = cut.min(data.len());
        let mut src = BytesMut::new();
        for piece in [&data[..cut], &data[cut..]] {
            src.extend_from_slice(piece);
            // Every error is about one record; decoding goes on until the input runs out.
            while !matches!(decoder.decode(&mut src, &mut rule), Ok(None)) {}
            prop_assert!(decoder.held() <= 64 + 4);
        }
    }
}

/// Every outcome of decoding `wire` handed over `step` bytes at a time, errors as text.
fn outcomes(wire: &[u8], step: usize, config: &Config, salt: u64) -> Vec<String> {
    let mut decoder = RecordDecoder::new(config);
    // A rule that depends only on the header it sees (and the salt), so that both ways ask
    // the same.
    let mut rule = |f: &Fragment| match (f.so_far + u64::from(f.index) + salt) % 7 {
        0 => Rule::Deny,
        1 => Rule::Drop,
        2 => Rule::Reject,
        3 => Rule::RejectWith(ServerError::GarbageArgs),
        _ => Rule::Accept,
    };
    let (mut src, mut seen) = (BytesMut::new(), Vec::new());
    for piece in wire.chunks(step.max(1)) {
        src.extend_from_slice(piece);
        loop {
            match decoder.decode(&mut src, &mut rule) {
                Ok(None) => break,
                Ok(Some(record)) => seen.push(format!("{record:?}")),
                Err(e) => seen.push(e.to_string()),
            }
        }
    }
    seen
}

proptest! {
    /// Whole records in the buffer take the one-step path; the same bytes a byte at a time
    /// take the fragment-by-fragment one. Both must decide alike, errors included.
    #[test]
    fn records_decode_alike_whole_or_a_byte_at_a_time(
        records in proptest::collection::vec(
            (proptest::collection::vec(any::<u8>(), 0..24), proptest::collection::vec(0usize..10, 0..4)),
            0..12,
        ),
        salt in 0u64..7,
    ) {
        let mut wire = BytesMut::new();
        for (payload, cuts) in &records {
            // Fragment lengths from the cuts, the last taking what is left.
            let mut lens = Vec::new();
            let mut left = payload.len();
            for &cut in cuts {
                let len = cut.min(left);
                lens.push(len);
                left -= len;
            }
            lens.push(left);
            wire.extend_from_slice(&fragments(payload, &lens));
        }
        let config = Config { max_record: 16, max_fragments: 3, ..Config::default() };
        let whole = outcomes(&wire, wire.len(), &config, salt);
        prop_assert_eq!(&whole, &outcomes(&wire, 1, &config, salt));
        prop_assert_eq!(&whole, &outcomes(&wire, 5, &config, salt));
    }
}
