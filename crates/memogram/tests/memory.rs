//! What reassembly holds, measured: a counting global allocator sees every byte this test
//! binary has on the heap, and the layer's own accounting (`Reassembly::pending`) is checked
//! against it. The tests run one at a time (the count is the process's).
//!
//! `cargo test -p memogram --test memory -- --nocapture` prints the figures.

use std::alloc::System;
use std::sync::Mutex;
use std::time::Instant;

use cap::Cap;
use memogram::{Config, Mid, Reassembly};

mod common;
use common::handmade;

#[global_allocator]
static HEAP: Cap<System> = Cap::new(System, usize::MAX);

/// One test at a time: the count is the whole process's.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Floods reassembly from `sources` sources with later grams of fresh memos (each the start
/// of a memo that never completes), `body` bytes each, and returns the heap's peak growth
/// and the most the layer said it held.
fn flood(config: Config, sources: u32, grams: u32, body: usize) -> (usize, usize) {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let mut r: Reassembly<u32> = Reassembly::new(config);
    let now = Instant::now();
    let payload = vec![0x5a; body];
    let before = HEAP.allocated();
    let (mut peak, mut said) = (0, 0);
    for n in 0..grams {
        // The datagram is made here, as a receiver copies each out of its buffer.
        let gram = handmade("bAAB", 1 + n % 3, Mid::fresh(), &payload);
        let _ = r.receive(gram, n % sources, now);
        if n % 64 == 0 {
            peak = peak.max(HEAP.allocated().saturating_sub(before));
            said = said.max(r.pending().bytes);
        }
    }
    peak = peak.max(HEAP.allocated().saturating_sub(before));
    said = said.max(r.pending().bytes);
    drop(r);
    (peak, said)
}

#[test]
fn reassembly_under_a_flood_holds_what_it_says_within_max_pending_bytes() {
    for (sources, body) in [(1, 1000), (50, 1000), (2000, 64), (5000, 0)] {
        let config = Config {
            max_pending_bytes: 8 << 20,
            max_source_bytes: 2 << 20,
            ..Config::default()
        };
        let max = config.max_pending_bytes;
        let (peak, said) = flood(config, sources, 200_000, body);
        println!(
            "{sources} sources, {body}-byte bodies: heap peak {peak} bytes, the layer said \
             {said}, max_pending_bytes {max}"
        );
        assert!(said <= max, "the layer's own count: {said} over {max}");
        // What it counts covers what it holds (within an eighth: the maps' spare room, the
        // allocator's rounding), and is no gross overestimate either.
        assert!(
            peak <= said + said / 8,
            "heap peak {peak} over the {said} counted"
        );
        assert!(said <= 2 * peak, "counted {said} against a heap of {peak}");
        assert!(
            peak <= max + max / 8,
            "heap peak {peak} over {max} and an eighth"
        );
    }
}
