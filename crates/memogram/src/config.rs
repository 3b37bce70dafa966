//! The limits of segmentation and reassembly, and whom a receiver trusts.

use std::collections::HashSet;
use std::time::Duration;

use crate::{Keys, Vid};

/// Limits and trust, with hio 0.7.20's values as defaults where hio has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The longest memo sent or accepted, in bytes (hio's MaxMemoSize, (2^30 − 1)·4 + 8).
    pub max_memo_size: u64,
    /// The most grams one memo may take (hio's MaxGramCount, 2^24 − 1: the neck's range).
    pub max_gram_count: u32,
    /// The largest datagram the transport carries: a gram size is clamped to it (65507 for
    /// UDP over IPv4, 65535 for Unix datagram sockets; this default is UDP's).
    pub max_gram_size: usize,
    /// How long an incomplete memo is kept after its first gram arrived (hio: forever).
    pub timeout: Duration,
    /// The most incomplete memos kept at once; past it the oldest is dropped (hio: no limit).
    pub max_pending_memos: usize,
    /// The most bytes incomplete memos may hold at once, each gram counted as its datagram's
    /// length plus [`GRAM_COST`](crate::GRAM_COST); past it the oldest memo is dropped.
    pub max_pending_bytes: usize,
    /// Accept signed grams only (hio's `authic`).
    pub authic: bool,
    /// Beyond hio: when set, signed memos are accepted only from these vids.
    pub allowed: Option<HashSet<Vid>>,
    /// The keys behind `D` and `E` vids (`B` vids need none).
    pub keys: Keys,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_memo_size: ((1 << 30) - 1) * 4 + 8,
            max_gram_count: crate::int24::MAX,
            max_gram_size: 65507,
            timeout: Duration::from_secs(30),
            max_pending_memos: 4096,
            max_pending_bytes: 64 << 20,
            authic: false,
            allowed: None,
            keys: Keys::default(),
        }
    }
}
