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
    /// The largest datagram sent or received: a gram size is clamped to it, and a
    /// [`Receiver`](crate::Receiver)'s buffer is this long (plus one byte, to tell a longer
    /// datagram, which is dropped and counted in [`Stats::oversize`](crate::Stats::oversize)).
    /// A [`Sender`](crate::Sender) or [`Receiver`](crate::Receiver) clamps it to its link's
    /// limit: 65507 for UDP over IPv4, 262 140 for Unix datagram sockets (hio's receive
    /// buffer there: hio does not clamp its gram size, so a hio peer may send grams this
    /// long). Default 262 140.
    pub max_gram_size: usize,
    /// How long an incomplete memo is kept after its first gram arrived (hio: forever).
    /// `Duration::MAX` keeps it until a bound evicts it; `Duration::ZERO` lets no incomplete
    /// memo outlive the next call (a memo expires at its deadline, which is then the instant
    /// it started), so only memos of one gram are delivered.
    pub timeout: Duration,
    /// The most incomplete memos kept at once. Past it a memo is dropped: the oldest of a
    /// source holding more than the average, else the oldest (hio: no limit).
    pub max_pending_memos: usize,
    /// The most bytes incomplete memos may hold at once, each gram counted as its datagram's
    /// length plus [`GRAM_COST`](crate::GRAM_COST), each memo as
    /// [`MEMO_COST`](crate::MEMO_COST) and each source as
    /// [`SOURCE_COST`](crate::SOURCE_COST); past it memos are dropped as for
    /// `max_pending_memos`.
    pub max_pending_bytes: usize,
    /// The most incomplete memos one source may have: past it, that source's oldest is
    /// dropped, so that a flood from one source evicts only its own memos. Default 1024, a
    /// quarter of `max_pending_memos`.
    pub max_source_memos: usize,
    /// The most bytes one source's incomplete memos may hold (counted as for
    /// `max_pending_bytes`); past it, that source's oldest memo is dropped. It is also the
    /// largest memo a source can send in more than one gram. Default 16 MiB, a quarter of
    /// `max_pending_bytes`.
    pub max_source_bytes: usize,
    /// The most signed grams a memo holds before its first gram, which names the signer,
    /// has come: they are checked when it comes. A forged copy of such a gram is held beside
    /// the real one (within this count), so that it cannot take the real one's place.
    /// Default 64.
    pub max_early_grams: usize,
    /// How many completed memos a receiver remembers, by source and mid, so that a replayed
    /// or duplicated memo is counted ([`Stats::replayed`](crate::Stats::replayed)) and
    /// traced, not delivered twice. hio delivers it again; 0 does as hio does. The oldest is
    /// forgotten first. Default 4096.
    pub replay_window: usize,
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
            max_gram_size: crate::link::UXD_BUFFER,
            timeout: Duration::from_secs(30),
            max_pending_memos: 4096,
            max_pending_bytes: 64 << 20,
            max_source_memos: 1024,
            max_source_bytes: 16 << 20,
            max_early_grams: 64,
            replay_window: 4096,
            authic: false,
            allowed: None,
            keys: Keys::default(),
        }
    }
}
