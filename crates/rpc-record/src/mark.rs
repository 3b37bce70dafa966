//! [`Mark`]: the 4-byte record mark that starts every fragment.

use std::fmt;

/// The longest fragment a record mark can declare: 2^31 − 1 bytes.
pub const MAX_FRAGMENT_LEN: u32 = 0x7fff_ffff;

const LAST: u32 = 0x8000_0000;

/// A record mark (RFC 5531 §11): a big-endian u32 whose top bit says "last fragment of the
/// record" and whose other 31 bits are the fragment's length.
///
/// Every 4 bytes are a valid mark, so decoding cannot fail; a length over
/// [`MAX_FRAGMENT_LEN`] cannot be built.
///
/// ```
/// use rpc_record::Mark;
///
/// let mark = Mark::from_bytes([0x80, 0x00, 0x00, 0x28]);
/// assert_eq!((mark.len(), mark.is_last()), (40, true));
/// assert_eq!(mark.to_string(), "mark last len=40");
/// assert_eq!(Mark::new(40, true), Some(mark));
/// assert_eq!(Mark::new(1 << 31, true), None);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Mark(u32);

impl Mark {
    /// The mark of a fragment of `len` bytes; `None` when `len` is over [`MAX_FRAGMENT_LEN`].
    pub fn new(len: u32, last: bool) -> Option<Mark> {
        (len <= MAX_FRAGMENT_LEN).then_some(Mark(len | if last { LAST } else { 0 }))
    }

    /// The mark these 4 wire bytes carry.
    #[inline]
    pub fn from_bytes(bytes: [u8; 4]) -> Mark {
        Mark(u32::from_be_bytes(bytes))
    }

    /// The 4 wire bytes.
    pub fn to_bytes(self) -> [u8; 4] {
        self.0.to_be_bytes()
    }

    /// The fragment's length in bytes.
    #[inline]
    pub fn len(self) -> u32 {
        self.0 & MAX_FRAGMENT_LEN
    }

    /// Whether the fragment is empty (legal, and accepted on receipt).
    pub fn is_empty(self) -> bool {
        self.len() == 0
    }

    /// Whether this is the last fragment of its record.
    #[inline]
    pub fn is_last(self) -> bool {
        self.0 & LAST != 0
    }
}

impl fmt::Display for Mark {
    /// One line: `mark last len=40` or `mark more len=8`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = if self.is_last() { "last" } else { "more" };
        write!(f, "mark {kind} len={}", self.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_top_bit_is_last_and_the_rest_is_the_length() {
        let mark = Mark::from_bytes([0xff, 0xff, 0xff, 0xff]);
        assert_eq!((mark.len(), mark.is_last()), (MAX_FRAGMENT_LEN, true));
        let mark = Mark::from_bytes([0, 0, 0, 8]);
        assert_eq!((mark.len(), mark.is_last()), (8, false));
        assert_eq!(mark.to_string(), "mark more len=8");
        assert!(Mark::from_bytes([0x80, 0, 0, 0]).is_empty());
        assert_eq!(Mark::new(8, false).map(Mark::to_bytes), Some([0, 0, 0, 8]));
    }
}
