//! rpc-record's record decoder fed any stream, in any pieces, under an admission rule that
//! answers anything at each header: nothing panics, an accepted record is within
//! `max_record`, the decoder never holds more than a record, and it stays in step after the
//! errors it reports (they are about one record).

#![no_main]

use arbitrary::Arbitrary;
use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use rpc_record::{Config, Fragment, Record, RecordDecoder, Rule, ServerError};

#[derive(Arbitrary, Debug)]
struct Input {
    /// The rule for each header asked, in turn.
    rules: Vec<u8>,
    /// The stream, as it arrives, read by read.
    reads: Vec<Vec<u8>>,
    max_record: u16,
    max_fragments: u8,
}

fn rule(pick: u8) -> Rule {
    match pick % 6 {
        0 | 1 => Rule::Accept,
        2 => Rule::Deny,
        3 => Rule::Drop,
        4 => Rule::Reject,
        _ => Rule::RejectWith(ServerError::GarbageArgs),
    }
}

fuzz_target!(|input: Input| {
    let config = Config {
        max_record: usize::from(input.max_record),
        max_fragments: u32::from(input.max_fragments),
        ..Config::default()
    };
    let max = config.max_record;
    let mut decoder = RecordDecoder::new(&config);
    let mut asked = 0usize;
    let rules = input.rules;
    let mut admission = |f: &Fragment| {
        assert!(f.so_far >= u64::from(f.len));
        asked += 1;
        rules
            .get(asked % rules.len().max(1))
            .map_or(Rule::Accept, |&p| rule(p))
    };
    let mut buf = BytesMut::new();
    let reads = input.reads.len();
    for (i, read) in input.reads.into_iter().enumerate() {
        buf.extend_from_slice(&read);
        loop {
            let last = i + 1 == reads;
            let decoded = match last {
                false => decoder.decode(&mut buf, &mut admission),
                true => decoder.decode_eof(&mut buf, &mut admission),
            };
            assert!(
                decoder.held() <= max + 4,
                "held {} over {max}",
                decoder.held()
            );
            match decoded {
                Ok(Some(Record::Accept(record))) => assert!(record.len() <= max),
                Ok(Some(_)) => {}
                Ok(None) => break,
                // One record's error; decoding goes on with what follows.
                Err(_) if !last => continue,
                Err(_) => break,
            }
        }
    }
});
