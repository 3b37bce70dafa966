//! 24-bit big-endian integers, as 4 base64url characters (text headers) or 3 bytes (binary
//! headers): a gram's code and its neck (gram count or gram number).

use bytes::BufMut;

use crate::Error;

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// The largest value: 2^24 − 1.
pub const MAX: u32 = (1 << 24) - 1;

fn sextet(c: u8) -> Option<u32> {
    let v = match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'-' => 62,
        b'_' => 63,
        _ => return None,
    };
    Some(u32::from(v))
}

/// Reads 4 base64url characters; `None` (the gram ended) or a character outside the
/// alphabet is an error naming `field`.
pub fn read_b64(chars: Option<&[u8]>, field: &'static str) -> Result<u32, Error> {
    let chars = chars.ok_or(Error::BadField {
        field,
        why: "cut short",
    })?;
    chars.iter().try_fold(0u32, |value, &c| {
        let v = sextet(c).ok_or(Error::BadField {
            field,
            why: "a character outside base64url",
        })?;
        Ok(value << 6 | v)
    })
}

/// Reads 3 bytes, big-endian.
pub fn read_b2(bytes: Option<&[u8]>, field: &'static str) -> Result<u32, Error> {
    match bytes {
        Some(&[a, b, c]) => Ok(u32::from_be_bytes([0, a, b, c])),
        _ => Err(Error::BadField {
            field,
            why: "cut short",
        }),
    }
}

/// Writes `value` (at most [`MAX`]) as 4 base64url characters.
pub fn put_b64(value: u32, buf: &mut impl BufMut) {
    for shift in [18, 12, 6, 0] {
        buf.put_u8(ALPHABET[(value >> shift & 0x3f) as usize]);
    }
}

/// Writes `value` (at most [`MAX`]) as 3 bytes, big-endian.
pub fn put_b2(value: u32, buf: &mut impl BufMut) {
    buf.put_slice(&value.to_be_bytes()[1..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn necks_as_hio_writes_them() {
        let mut text = Vec::new();
        put_b64(4, &mut text);
        assert_eq!(text, b"AAAE");
        let mut bin = Vec::new();
        put_b2(1, &mut bin);
        assert_eq!(bin, [0, 0, 1]);
        for value in [0, 1, 63, 64, 4095, MAX] {
            let (mut t, mut b) = (Vec::new(), Vec::new());
            put_b64(value, &mut t);
            put_b2(value, &mut b);
            assert_eq!(read_b64(Some(&t), "neck").unwrap(), value);
            assert_eq!(read_b2(Some(&b), "neck").unwrap(), value);
        }
        assert!(read_b64(Some(b"===="), "neck").is_err());
        assert!(read_b64(None, "neck").is_err());
        assert!(read_b2(Some(&[1, 2]), "neck").is_err());
    }
}
