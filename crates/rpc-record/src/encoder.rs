//! [`encode_record`]: one record, as fragments of a bounded size.

use bytes::{BufMut, BytesMut};

use crate::Mark;

/// Appends `payload` to `dst` as one record in fragments of at most `fragment_size` bytes
/// (at least 1; values over [`MAX_FRAGMENT_LEN`](crate::MAX_FRAGMENT_LEN) are clamped), the
/// last one marked last. An empty record is the single mark `80000000`; no empty fragment
/// is ever written otherwise.
///
/// ```
/// use bytes::BytesMut;
/// use rpc_record::encode_record;
///
/// let mut wire = BytesMut::new();
/// encode_record(b"abcde", 2, &mut wire);
/// assert_eq!(&wire[..], b"\0\0\0\x02ab\0\0\0\x02cd\x80\0\0\x01e");
/// ```
pub fn encode_record(payload: &[u8], fragment_size: u32, dst: &mut BytesMut) {
    let size = fragment_size.clamp(1, crate::MAX_FRAGMENT_LEN) as usize;
    let fragments = payload.len().div_ceil(size).max(1);
    dst.reserve(payload.len() + 4 * fragments);
    let mut chunks = payload.chunks(size).peekable();
    if chunks.peek().is_none() {
        dst.put_slice(&last_mark(0));
        return;
    }
    while let Some(chunk) = chunks.next() {
        // A chunk is at most `size`, which is at most MAX_FRAGMENT_LEN.
        let len = chunk.len() as u32;
        let mark = match chunks.peek() {
            Some(_) => Mark::new(len, false),
            None => Mark::new(len, true),
        };
        dst.put_slice(&mark.map_or([0; 4], Mark::to_bytes));
        dst.put_slice(chunk);
    }
}

fn last_mark(len: u32) -> [u8; 4] {
    Mark::new(len, true).map_or([0; 4], Mark::to_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_fragment_by_default_and_an_empty_record_is_one_empty_last_fragment() {
        let mut wire = BytesMut::new();
        encode_record(b"ping", crate::MAX_FRAGMENT_LEN, &mut wire);
        assert_eq!(&wire[..], b"\x80\0\0\x04ping");
        wire.clear();
        encode_record(b"", 8, &mut wire);
        assert_eq!(&wire[..], b"\x80\0\0\0");
        wire.clear();
        encode_record(b"abcd", 2, &mut wire);
        assert_eq!(&wire[..], b"\0\0\0\x02ab\x80\0\0\x02cd");
        wire.clear();
        encode_record(b"ab", 0, &mut wire);
        assert_eq!(&wire[..], b"\0\0\0\x01a\x80\0\0\x01b");
    }
}
