//! The limits of segmentation and reassembly.

/// Limits, with hio 0.7.20's values as defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The longest memo sent or accepted, in bytes (hio's MaxMemoSize, (2^30 − 1)·4 + 8).
    pub max_memo_size: u64,
    /// The most grams one memo may take (hio's MaxGramCount, 2^24 − 1: the neck's range).
    pub max_gram_count: u32,
    /// The largest datagram the transport carries: a gram size is clamped to it (65507 for
    /// UDP over IPv4, 65535 for Unix datagram sockets; this default is UDP's).
    pub max_gram_size: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_memo_size: ((1 << 30) - 1) * 4 + 8,
            max_gram_count: crate::int24::MAX,
            max_gram_size: 65507,
        }
    }
}
