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

/// Writes `value` in its minimal encoding to the front of `out` and returns how many bytes
/// that took ([`encoded_len`]). `out` must have room for them: [`MAX_LEN`] is always enough.
#[inline]
pub fn write(value: u64, out: &mut [u8]) -> usize {
    if value < 0x80 {
        out[0] = value as u8;
        return 1;
    }
    let len = encoded_len(value);
    for (i, byte) in out[..len].iter_mut().enumerate() {
        // Truncation to the low seven bits is the point.
        *byte = 0x80 | ((value >> (7 * (len - 1 - i))) & 0x7f) as u8;
    }
    out[len - 1] &= 0x7f;
    len
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

    proptest! {
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
