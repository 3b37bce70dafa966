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
    let mut cutter = Cutter::new(memo, mid, shape, signer, config)?;
    Ok(cutter.next_grams(usize::MAX))
}

/// A memo being cut, a batch of grams at a time: what [`segment`] does at once, for a
/// sender that sends each batch before it cuts (and signs) the next, so that a large memo
/// is never built whole in memory, nor in one poll.
#[derive(Debug)]
pub(crate) struct Cutter<'a> {
    memo: &'a [u8],
    mid: Mid,
    encoding: Encoding,
    signer: Option<&'a Signer>,
    cut: Cut,
    /// The next gram's number, and where its body starts.
    number: u32,
    at: usize,
}

impl<'a> Cutter<'a> {
    /// Ready to cut `memo` (see [`segment`]); an error if it is too large to.
    pub(crate) fn new(
        memo: &'a [u8],
        mid: Mid,
        shape: &Shape,
        signer: Option<&'a Signer>,
        config: &Config,
    ) -> Result<Cutter<'a>, Error> {
        let cut = match memo.is_empty() {
            // An empty memo: no gram at all, as in hio.
            true => Cut {
                first: 0,
                later: 0,
                count: 0,
            },
            false => cut(memo.len(), shape, signer.is_some(), config)?,
        };
        Ok(Cutter {
            memo,
            mid,
            encoding: shape.encoding,
            signer,
            cut,
            number: 0,
            at: 0,
        })
    }

    /// Whether every gram has been cut.
    pub(crate) fn is_done(&self) -> bool {
        self.number >= self.cut.count
    }

    /// The next `most` grams (fewer at the end), each a slice of one buffer.
    pub(crate) fn next_grams(&mut self, most: usize) -> Vec<Bytes> {
        let Cut {
            first,
            later,
            count,
        } = self.cut;
        let signed = self.signer.is_some();
        let zero = Code::zero(signed);
        let encoding = self.encoding;
        let take = (count - self.number.min(count)).min(u32::try_from(most).unwrap_or(u32::MAX));
        if take == 0 {
            return Vec::new();
        }
        // One buffer for the batch, so that cutting costs one allocation, not one a gram.
        let overheads = zero.overhead(encoding) + take as usize * zero.later().overhead(encoding);
        let bodies = (take as usize * first.max(later)).min(self.memo.len() - self.at);
        let mut buffer = BytesMut::with_capacity(overheads + bodies);
        let mut grams = Vec::with_capacity(take as usize);
        for number in self.number..self.number + take {
            let (code, neck, body_len) = match number {
                0 => (zero, count, first),
                n => (zero.later(), n, later),
            };
            let body = &self.memo[self.at..self.memo.len().min(self.at + body_len)];
            self.at += body.len();
            let vid = self.signer.filter(|_| code.has_vid()).map(Signer::vid);
            put_header(code, encoding, neck, &self.mid, vid.as_ref(), &mut buffer);
            buffer.extend_from_slice(body);
            if let Some(signer) = self.signer {
                let signature = signer.sign(&buffer);
                put_signature(&signature, encoding, &mut buffer);
            }
            grams.push(buffer.split().freeze());
        }
        self.number += take;
        grams
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(size: usize, encoding: Encoding) -> Shape {
        Shape { size, encoding }
    }

    #[test]
    fn cutting_a_batch_at_a_time_gives_the_same_grams_as_at_once() {
        let config = Config::default();
        let signer = Signer::from_seed(&crate::Seed::new([4; 32]));
        let memo: Vec<u8> = (0..5000u32).map(|i| (i * 7) as u8).collect();
        let mid = Mid::new([9; 16]);
        for encoding in [Encoding::Base64, Encoding::Base2] {
            for signer in [None, Some(&signer)] {
                let shape = shape(300, encoding);
                let whole = segment(&memo, mid, &shape, signer, &config).unwrap();
                for batch in [1, 3, 7, 1000] {
                    let mut cutter = Cutter::new(&memo, mid, &shape, signer, &config).unwrap();
                    let mut grams = Vec::new();
                    while !cutter.is_done() {
                        let next = cutter.next_grams(batch);
                        assert!(!next.is_empty() && next.len() <= batch);
                        grams.extend(next);
                    }
                    assert_eq!(grams, whole, "{encoding:?}, batch {batch}");
                }
            }
        }
        let mut empty =
            Cutter::new(b"", mid, &shape(300, Encoding::Base64), None, &config).unwrap();
        assert!(empty.is_done());
        assert!(empty.next_grams(10).is_empty());
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
