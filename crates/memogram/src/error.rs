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
    /// A memo has more grams than the limit.
    #[error("too many grams: a count of {count}, the limit is {max}")]
    TooManyGrams {
        /// The count gram 0 gave.
        count: u32,
        /// The limit that applied ([`Config::max_gram_count`](crate::Config::max_gram_count)).
        max: u32,
    },
    /// A gram numbered at or past its memo's gram count (hio dies on these), or a later gram
    /// numbered 0.
    #[error(
        "gram number {number} out of range: the memo has {count} grams, later grams count from 1"
    )]
    GramNumber {
        /// The gram's number.
        number: u32,
        /// The memo's gram count (0 when not known yet).
        count: u32,
    },
    /// A signed later gram came before its memo's first gram when the memo already holds
    /// as many such grams as it may (they cannot be checked until the first gram names the
    /// signer).
    #[error("signed gram before its memo's first gram: the memo holds {max} such grams already")]
    TooEarly {
        /// The limit that applied ([`Config::max_early_grams`](crate::Config::max_early_grams)).
        max: usize,
    },
    /// An unsigned gram where only signed ones are accepted.
    #[error("unsigned gram refused: {why}")]
    Unsigned {
        /// Why a signature was required.
        why: &'static str,
    },
    /// A signed gram whose vid names no key this receiver holds.
    #[error("unknown signer {vid}: D and E vids need their key in the key store")]
    UnknownVid {
        /// The vid.
        vid: crate::Vid,
    },
    /// A signed memo from a vid that is not on the allow-list.
    #[error("signer {vid} is not on the allow-list")]
    NotAllowed {
        /// The vid.
        vid: crate::Vid,
    },
    /// A memo asked for as text is not UTF-8 (hio dies on these).
    #[error("memo is not UTF-8: invalid bytes at offset {valid_up_to}")]
    NotText {
        /// How many bytes from the start are valid UTF-8.
        valid_up_to: usize,
    },
    /// The socket failed.
    #[error("socket error ({kind:?}): {text}")]
    Io {
        /// Its kind.
        kind: std::io::ErrorKind,
        /// The system's message.
        text: String,
    },
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Io {
            kind: e.kind(),
            text: e.to_string(),
        }
    }
}
