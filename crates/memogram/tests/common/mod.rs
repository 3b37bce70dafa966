//! What memogram's test files share: grams made by hand.

use bytes::Bytes;
use memogram::Mid;

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// A text gram made by hand: `code`, a neck of `neck`, the mid, the body. Allocated at its
/// exact length, as a receiver copies each datagram out of its buffer.
pub fn handmade(code: &str, neck: u32, mid: Mid, body: &[u8]) -> Bytes {
    let mut gram = code.as_bytes().to_vec();
    gram.extend((0..4).rev().map(|i| B64[(neck >> (6 * i)) as usize & 63]));
    gram.extend_from_slice(mid.to_qb64().as_bytes());
    gram.extend_from_slice(body);
    Bytes::copy_from_slice(&gram)
}
