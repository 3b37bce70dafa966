//! The crate's one error type.

/// What went wrong with a gram, a memo or a signature. Every message says what was wrong and
/// the limit that applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The first byte is neither a text (`0x60..=0x63`) nor a binary (`0x6c..=0x6f`) header.
    #[error("not a gram: first byte {first:#04x} starts neither a text nor a binary header")]
    NotAGram {
        /// The first byte.
        first: u8,
    },
    /// A code that starts with `b` but is none of `bAAA` to `bAAH` (hio dies on these).
    #[error("unknown gram code {value:#08x}: only bAAA to bAAH are grams")]
    UnknownCode {
        /// The code's 24 bits.
        value: u32,
    },
    /// The reserved ack codes `bAAI` and `bAAJ`, which nothing implements (hio dies on these).
    #[error("ack gram code {value:#08x} (bAAI/bAAJ): reserved, not implemented by hio")]
    AckCode {
        /// The code's 24 bits.
        value: u32,
    },
    /// A header field or primitive that cannot be read.
    #[error("bad {field}: {why}")]
    BadField {
        /// Which field.
        field: &'static str,
        /// What was wrong with it.
        why: &'static str,
    },
    /// A gram shorter than the header and signature its code calls for.
    #[error("gram too short: {len} bytes, a {code} gram needs at least {min}")]
    TooShort {
        /// The gram's length.
        len: usize,
        /// Its code.
        code: crate::Code,
        /// The overhead of that code in that encoding.
        min: usize,
    },
    /// The signature does not verify over the gram (or the vid is not a valid key).
    #[error("bad signature: {why}")]
    BadSignature {
        /// Why it failed.
        why: &'static str,
    },
    /// A memo longer than the limit (hio's MaxMemoSize, or what MaxGramCount grams can carry).
    #[error("memo too large: {len} bytes, the limit is {max}")]
    MemoTooLarge {
        /// The memo's length.
        len: u64,
        /// The limit that applied.
        max: u64,
    },
}
