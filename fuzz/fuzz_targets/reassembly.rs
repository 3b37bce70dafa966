//! memogram's `Reassembly` fed memos from several honest sources, cut into grams delivered out
//! of order, duplicated or lost, with garbage from other sources and time passing. Every memo
//! handed out for an honest source is the memo sent under that mid, and what is held stays
//! within the bounds.

#![no_main]

use std::collections::HashMap;
use std::time::{Duration, Instant};

use arbitrary::Arbitrary;
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use memogram::{Config, Encoding, Mid, Reassembly, Seed, Shape, Signer, segment};

#[derive(Arbitrary, Debug)]
enum Op {
    /// A memo of `len` bytes from honest source `source % 4`, in grams of about `size`,
    /// delivered rotated by `rotate`, gram `lose` lost, gram `again` sent twice.
    Memo {
        source: u8,
        len: u16,
        size: u8,
        binary: bool,
        signed: bool,
        rotate: u8,
        lose: Option<u8>,
        again: Option<u8>,
    },
    /// Any datagram from garbage source `100 + source % 4`.
    Garbage { source: u8, datagram: Vec<u8> },
    /// A gram of a memo sent before, replayed from a garbage source.
    Replay { memo: u8, gram: u8, source: u8 },
    /// Time passes.
    Wait { secs: u8 },
}

fuzz_target!(|ops: Vec<Op>| {
    let signer = Signer::from_seed(&Seed::new([3; 32]));
    let config = Config {
        timeout: Duration::from_secs(20),
        max_pending_memos: 64,
        max_pending_bytes: 256 * 1024,
        max_source_memos: 16,
        max_source_bytes: 64 * 1024,
        max_early_grams: 8,
        ..Config::default()
    };
    let (max_memos, max_bytes) = (config.max_pending_memos, config.max_pending_bytes);
    let mut r: Reassembly<u8> = Reassembly::new(config.clone());
    let start = Instant::now();
    let mut now = start;
    let mut sent: HashMap<(u8, Mid), Vec<u8>> = HashMap::new();
    let mut grams_sent: Vec<Vec<Bytes>> = Vec::new();
    let mut next_mid = 0u128;
    for op in ops.into_iter().take(256) {
        let mut deliveries: Vec<(Bytes, u8)> = Vec::new();
        match op {
            Op::Memo {
                source,
                len,
                size,
                binary,
                signed,
                rotate,
                lose,
                again,
            } => {
                let source = source % 4;
                next_mid += 1;
                let mid = Mid::new(next_mid.to_be_bytes());
                let memo: Vec<u8> = (0..usize::from(len % 4096))
                    .map(|i| (i as u8) ^ (next_mid as u8))
                    .collect();
                let shape = Shape {
                    size: 40 + usize::from(size) * 4,
                    encoding: if binary {
                        Encoding::Base2
                    } else {
                        Encoding::Base64
                    },
                };
                let Ok(mut grams) = segment(&memo, mid, &shape, signed.then_some(&signer), &config)
                else {
                    continue;
                };
                if grams.is_empty() {
                    continue;
                }
                sent.insert((source, mid), memo);
                grams_sent.push(grams.clone());
                let n = grams.len();
                grams.rotate_left(usize::from(rotate) % n);
                if let Some(again) = again {
                    let copy = grams[usize::from(again) % n].clone();
                    grams.push(copy);
                }
                if let Some(lose) = lose {
                    grams.remove(usize::from(lose) % grams.len());
                }
                deliveries.extend(grams.into_iter().map(|g| (g, source)));
            }
            Op::Garbage { source, datagram } => {
                deliveries.push((Bytes::from(datagram), 100 + source % 4));
            }
            Op::Replay { memo, gram, source } => {
                if let Some(grams) = grams_sent.get(usize::from(memo) % grams_sent.len().max(1)) {
                    let gram = grams[usize::from(gram) % grams.len()].clone();
                    deliveries.push((gram, 100 + source % 4));
                }
            }
            Op::Wait { secs } => {
                now += Duration::from_secs(u64::from(secs % 30));
                r.expire(now);
            }
        }
        for (datagram, source) in deliveries {
            if let Ok(Some(memo)) = r.receive(datagram, source, now) {
                if source < 100 {
                    let expected = sent
                        .get(&(source, memo.mid()))
                        .expect("a memo from an honest source was sent by it");
                    assert_eq!(&memo.body()[..], &expected[..], "the memo sent, whole");
                }
            }
            let pending = r.pending();
            assert!(pending.memos <= max_memos, "{pending:?}");
            assert!(pending.bytes <= max_bytes, "{pending:?}");
        }
    }
});
