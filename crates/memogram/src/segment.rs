//! Cutting a memo into grams exactly as hio 0.7.20's `rend` does (spec §1.6), so that the
//! same memo, mid and key give the same datagrams byte for byte.

use bytes::{Bytes, BytesMut};

use crate::gram::{put_header, put_signature};
use crate::{Code, Config, Encoding, Error, Mid, Signer};

/// How to cut a memo: the gram size asked for and the header encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    /// The gram size asked for (hio's `size`). It is clamped up so that every gram carries
    /// at least one body byte, and down to [`Config::max_gram_size`].
    pub size: usize,
    /// Text or binary headers (hio's `curt` is [`Encoding::Base2`]).
    pub encoding: Encoding,
}

impl Shape {
    /// The size grams are cut to, clamped as [`size`](Shape::size) says.
    pub fn clamped_size(&self, signed: bool, config: &Config) -> usize {
        let zero = Code::zero(signed);
        // hio clamps up to the first gram's overhead + 1. Later grams are sized with the text
        // overhead whatever the encoding (hio's quirk, kept for identical output), so the
        // size also has to leave them a byte: hio itself crashes there.
        let least =
            (zero.overhead(self.encoding) + 1).max(zero.later().overhead(Encoding::Base64) + 1);
        self.size.max(least).min(config.max_gram_size.max(least))
    }
}

/// The sizes of one memo's cut: bodies of the first and of later grams, and the count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Cut {
    first: usize,
    later: usize,
    count: u32,
}

fn cut(len: usize, shape: &Shape, signed: bool, config: &Config) -> Result<Cut, Error> {
    let size = shape.clamped_size(signed, config);
    let zero = Code::zero(signed);
    let first = size - zero.overhead(shape.encoding);
    // hio's quirk: later bodies are sized with the text overhead in both encodings.
    let later = size - zero.later().overhead(Encoding::Base64);
    let most = first as u64 + later as u64 * u64::from(config.max_gram_count.saturating_sub(1));
    let max = config.max_memo_size.min(most);
    if len as u64 > max {
        return Err(Error::MemoTooLarge {
            len: len as u64,
            max,
        });
    }
    // hio computes ceil((len + later − first) / later), which is 0 for binary unsigned memos
    // of 8 bytes or less; the true count is never less than 1.
    let rest = len.saturating_sub(first);
    let count = 1 + rest.div_ceil(later);
    // At most max_gram_count, by the size check above.
    let count = u32::try_from(count).map_err(|_| Error::MemoTooLarge {
        len: len as u64,
        max,
    })?;
    Ok(Cut {
        first,
        later,
        count,
    })
}

/// Cuts `memo` into grams of memo id `mid`, signed by `signer` when there is one (codes
/// `bAAC`/`bAAD`, else `bAAA`/`bAAB`).
///
/// An empty memo gives no grams at all, as in hio. Memos are cut at byte offsets, so a
/// multi-byte UTF-8 character may be split across grams; the receiver joins the bytes first.
///
/// ```
/// use memogram::{Config, Encoding, Mid, Shape, segment};
///
/// let mid = Mid::from_qb64(b"0AD5s502N14R8bWw8qyvRW-S")?;
/// let shape = Shape { size: 38, encoding: Encoding::Base64 };
/// let grams = segment(b"See ya later alligator!", mid, &shape, None, &Config::default())?;
/// assert_eq!(grams.iter().map(|g| g.len()).collect::<Vec<_>>(), [38, 38, 38, 37]);
/// assert_eq!(&grams[1][..8], b"bAABAAAB");
/// # Ok::<(), memogram::Error>(())
/// ```
pub fn segment(
    memo: &[u8],
    mid: Mid,
    shape: &Shape,
    signer: Option<&Signer>,
    config: &Config,
) -> Result<Vec<Bytes>, Error> {
    if memo.is_empty() {
        return Ok(Vec::new());
    }
    let signed = signer.is_some();
    let Cut {
        first,
        later,
        count,
    } = cut(memo.len(), shape, signed, config)?;
    let zero = Code::zero(signed);
    let encoding = shape.encoding;
    // One buffer for the whole memo, so that cutting costs one allocation, not one a gram;
    // each gram is a slice of it.
    let overheads =
        zero.overhead(encoding) + (count as usize - 1) * zero.later().overhead(encoding);
    let mut buffer = BytesMut::with_capacity(overheads + memo.len());
    let mut grams = Vec::with_capacity(count as usize);
    let mut at = 0;
    for number in 0..count {
        let (code, neck, body_len) = match number {
            0 => (zero, count, first),
            n => (zero.later(), n, later),
        };
        let body = &memo[at..memo.len().min(at + body_len)];
        at += body.len();
        let vid = signer.filter(|_| code.has_vid()).map(Signer::vid);
        put_header(code, encoding, neck, &mid, vid.as_ref(), &mut buffer);
        buffer.extend_from_slice(body);
        if let Some(signer) = signer {
            let signature = signer.sign(&buffer);
            put_signature(&signature, encoding, &mut buffer);
        }
        grams.push(buffer.split().freeze());
    }
    Ok(grams)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(size: usize, encoding: Encoding) -> Shape {
        Shape { size, encoding }
    }

    #[test]
    fn binary_unsigned_memos_of_8_bytes_or_less_count_1_not_0() {
        let config = Config::default();
        for len in 1..=8 {
            let c = cut(len, &shape(65535, Encoding::Base2), false, &config).unwrap();
            assert_eq!(c.count, 1, "len {len}");
        }
    }

    #[test]
    fn sizes_clamp_up_and_down() {
        let config = Config::default();
        assert_eq!(shape(1, Encoding::Base64).clamped_size(false, &config), 33);
        assert_eq!(shape(1, Encoding::Base64).clamped_size(true, &config), 165);
        // Binary later grams are sized with the text overhead: at least one body byte.
        assert_eq!(shape(1, Encoding::Base2).clamped_size(false, &config), 33);
        assert_eq!(shape(1, Encoding::Base2).clamped_size(true, &config), 124);
        // Down to max_gram_size (262 140 by default, hio's Unix receive buffer).
        assert_eq!(
            shape(1 << 20, Encoding::Base64).clamped_size(false, &config),
            262_140
        );
        let udp = Config {
            max_gram_size: 65507,
            ..Config::default()
        };
        assert_eq!(
            shape(1 << 20, Encoding::Base64).clamped_size(false, &udp),
            65507
        );
    }

    #[test]
    fn the_memo_limits_give_clear_errors() {
        let config = Config {
            max_memo_size: 100,
            ..Config::default()
        };
        let err = cut(101, &shape(1240, Encoding::Base64), false, &config).unwrap_err();
        assert_eq!(err, Error::MemoTooLarge { len: 101, max: 100 });
        let config = Config {
            max_gram_count: 3,
            ..Config::default()
        };
        // Size 40: 8 body bytes a gram, so 3 grams carry 24.
        assert!(cut(24, &shape(40, Encoding::Base64), false, &config).is_ok());
        let err = cut(25, &shape(40, Encoding::Base64), false, &config).unwrap_err();
        assert_eq!(err, Error::MemoTooLarge { len: 25, max: 24 });
    }

    #[test]
    fn an_empty_memo_sends_nothing() {
        let mid = Mid::new([1; 16]);
        let grams = segment(
            b"",
            mid,
            &shape(1240, Encoding::Base64),
            None,
            &Config::default(),
        );
        assert_eq!(grams.unwrap(), Vec::<Bytes>::new());
    }
}
