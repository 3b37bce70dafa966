//! BSUInt: cs.binary's unsigned variable-length integer.
//!
//! Big-endian base-128: the value is split into 7-bit groups, most significant first, and
//! every byte but the last has bit 7 set. It is **not** LEB128: `128` is `81 00`, `300` is
//! `82 2c`. Zero is the single byte `00`; `u64::MAX` takes ten bytes.
//!
//! The decoder accepts non-minimal encodings (leading `80` bytes add nothing), as cs.binary
//! does, and refuses a value that does not fit in a `u64`.

use crate::Error;

/// The most bytes a `u64` takes in its minimal encoding.
pub const MAX_LEN: usize = 10;

/// The number of bytes [`write`] takes for `value`.
#[inline]
pub fn encoded_len(value: u64) -> usize {
    let bits = 64 - value.leading_zeros() as usize;
    bits.div_ceil(7).max(1)
}

/// Each byte's high bit, in a word of eight.
const HIGH_BITS: u64 = 0x8080_8080_8080_8080;

/// Writes `value` in its minimal encoding to the front of `out` and returns how many bytes
/// that took ([`encoded_len`]). `out` must have room for them: [`MAX_LEN`] is always enough.
/// The bytes of `out` after them may be overwritten, up to the eighth.
#[inline]
pub fn write(value: u64, out: &mut [u8]) -> usize {
    if value < 0x80 {
        out[0] = value as u8;
        return 1;
    }
    let len = encoded_len(value);
    if let (true, Some(word)) = (len <= 8, out.first_chunk_mut::<8>()) {
        // Up to 56 bits: spread the 7-bit groups one to a byte in a register, the least
        // significant in the low byte, mark every group but that one as continued, and store
        // the `len` groups most significant first, in one 8-byte write.
        let spread = spread(value) | (HIGH_BITS & (u64::MAX >> (8 * (8 - len))) & !0xff);
        *word = (spread << (8 * (8 - len))).to_be_bytes();
        return len;
    }
    for (i, byte) in out[..len].iter_mut().enumerate() {
        // Truncation to the low seven bits is the point.
        *byte = 0x80 | ((value >> (7 * (len - 1 - i))) & 0x7f) as u8;
    }
    out[len - 1] &= 0x7f;
    len
}

/// The 7-bit groups of `value` (below 2^56), group `k` in byte `k` of the result.
#[inline]
fn spread(value: u64) -> u64 {
    let x = (value & 0x0fff_ffff) | ((value << 4) & 0x0fff_ffff_0000_0000);
    let x = (x & 0x0000_3fff_0000_3fff) | ((x << 2) & 0x3fff_0000_3fff_0000);
    (x & 0x007f_007f_007f_007f) | ((x << 1) & 0x7f00_7f00_7f00_7f00)
}

/// The inverse of [`spread`]: byte `k`'s low seven bits as group `k` of the value.
#[inline]
fn gather(x: u64) -> u64 {
    let x = x & 0x7f7f_7f7f_7f7f_7f7f;
    let x = (x & 0x007f_007f_007f_007f) | ((x >> 1) & 0x3f80_3f80_3f80_3f80);
    let x = (x & 0x0000_3fff_0000_3fff) | ((x >> 2) & 0x0fff_c000_0fff_c000);
    (x & 0x0000_0000_0fff_ffff) | ((x >> 4) & 0x00ff_ffff_f000_0000)
}

/// Reads one BSUInt from the front of `bytes`.
///
/// Returns the value and the number of bytes it took, `Ok(None)` when `bytes` ends before
/// the last byte of the integer, or [`Error::VarintOverflow`] when the value needs more than
/// 64 bits.
#[inline]
pub fn get(bytes: &[u8]) -> Result<Option<(u64, usize)>, Error> {
    // Most integers on the wire (tags of small connections, flags words, rq_types, short
    // lengths) are one byte.
    if let Some(&byte) = bytes.first() {
        if byte < 0x80 {
            return Ok(Some((u64::from(byte), 1)));
        }
    }
    if let Some(word) = bytes.first_chunk::<8>() {
        // Eight bytes at once: the first without its high bit ends the integer. One that
        // ends within them holds at most 56 bits, so it cannot overflow.
        let word = u64::from_le_bytes(*word);
        let ends = !word & HIGH_BITS;
        if ends != 0 {
            let len = (ends.trailing_zeros() / 8 + 1) as usize;
            // The integer's bytes with its last in the low byte.
            let groups = word.swap_bytes() >> (8 * (8 - len));
            return Ok(Some((gather(groups), len)));
        }
    }
    let mut value: u64 = 0;
    for (i, &byte) in bytes.iter().enumerate() {
        if value > u64::MAX >> 7 {
            return Err(Error::VarintOverflow);
        }
        value = (value << 7) | u64::from(byte & 0x7f);
        if byte & 0x80 == 0 {
            return Ok(Some((value, i + 1)));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn encode(value: u64) -> Vec<u8> {
        let mut out = [0; MAX_LEN];
        let len = write(value, &mut out);
        out[..len].to_vec()
    }

    #[test]
    fn spec_table() {
        let table: [(u64, &[u8]); 8] = [
            (0, &[0x00]),
            (127, &[0x7f]),
            (128, &[0x81, 0x00]),
            (300, &[0x82, 0x2c]),
            (16384, &[0x81, 0x80, 0x00]),
            (1 << 32, &[0x90, 0x80, 0x80, 0x80, 0x00]),
            (
                1 << 63,
                &[0x81, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00],
            ),
            (
                u64::MAX,
                &[0x81, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f],
            ),
        ];
        for (value, bytes) in table {
            assert_eq!(encode(value), bytes, "{value}");
            assert_eq!(get(bytes).unwrap(), Some((value, bytes.len())), "{value}");
        }
    }

    #[test]
    fn non_minimal_encodings_are_accepted() {
        assert_eq!(get(&[0x80, 0x08]).unwrap(), Some((8, 2)));
        assert_eq!(
            get(&[0x80, 0x80, 0x80, 0x81, 0x00]).unwrap(),
            Some((128, 5))
        );
    }

    #[test]
    fn values_beyond_u64_are_an_error() {
        // 2^64 is `82 80 .. 80 00`.
        let mut too_big = vec![0x82];
        too_big.extend([0x80; 8]);
        too_big.push(0x00);
        assert!(matches!(get(&too_big), Err(Error::VarintOverflow)));
        // Eleven significant bytes overflow however they start.
        assert!(matches!(get(&[0xff; 11]), Err(Error::VarintOverflow)));
    }

    #[test]
    fn truncated_needs_more() {
        assert_eq!(get(&[]).unwrap(), None);
        assert_eq!(get(&[0x81, 0x80]).unwrap(), None);
    }

    /// The byte-at-a-time reading, as the spec gives it: what the word-at-a-time path must
    /// agree with.
    fn get_bytewise(bytes: &[u8]) -> Result<Option<(u64, usize)>, ()> {
        let mut value: u64 = 0;
        for (i, &byte) in bytes.iter().enumerate() {
            if value > u64::MAX >> 7 {
                return Err(());
            }
            value = (value << 7) | u64::from(byte & 0x7f);
            if byte & 0x80 == 0 {
                return Ok(Some((value, i + 1)));
            }
        }
        Ok(None)
    }

    #[test]
    fn every_length_round_trips_with_room_to_spare_and_without() {
        for bits in 0..64 {
            for value in [1u64 << bits, (1u64 << bits) - 1, (1u64 << bits) | 0x55] {
                let len = encoded_len(value);
                // Exactly the room it takes (the byte-at-a-time path), and more (the word).
                for room in [len, len + 8] {
                    let mut out = vec![0xee; room];
                    assert_eq!(write(value, &mut out), len);
                    let mut padded = out[..len].to_vec();
                    padded.extend([0xff; 8]);
                    assert_eq!(get(&out[..len]).unwrap(), Some((value, len)), "{value}");
                    assert_eq!(get(&padded).unwrap(), Some((value, len)), "{value}");
                }
            }
        }
    }

    proptest! {
        #[test]
        fn words_and_bytes_read_alike(bytes: Vec<u8>) {
            prop_assert_eq!(get(&bytes).map_err(|_| ()), get_bytewise(&bytes));
        }

        #[test]
        fn round_trip_below_2_56(value in 0u64..1 << 56, spare in 0usize..10) {
            let mut out = vec![0; encoded_len(value) + spare];
            let len = write(value, &mut out);
            prop_assert_eq!(len, encoded_len(value));
            prop_assert_eq!(get_bytewise(&out[..len]), Ok(Some((value, len))));
            prop_assert_eq!(get(&out).unwrap(), Some((value, len)));
        }

        #[test]
        fn round_trip(value: u64) {
            let bytes = encode(value);
            prop_assert_eq!(bytes.len(), encoded_len(value));
            prop_assert!(bytes.len() <= MAX_LEN);
            prop_assert_eq!(get(&bytes).unwrap(), Some((value, bytes.len())));
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes: Vec<u8>) {
            let _ = get(&bytes);
        }
    }
}
