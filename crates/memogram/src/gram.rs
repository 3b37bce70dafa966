//! [`Gram`]: one datagram of a memo, read and checked field by field.

use std::fmt;

use bytes::{BufMut, Bytes};

use crate::{Code, Encoding, Error, Mid, Signature, Vid, int24};

/// One gram, as read from a datagram: code ‖ neck ‖ mid ‖ \[vid\] ‖ body ‖ \[signature\].
///
/// A `Gram` exists only once every field has been read: the code is one of `bAAA` to
/// `bAAH`, the datagram is long enough for its code, the vid and signature are well formed.
/// Whether the signature verifies is a separate question ([`verify`](crate::verify)), because
/// a later gram's signer is named only by the memo's first gram.
///
/// ```
/// use bytes::Bytes;
/// use memogram::{Code, Encoding, Gram};
///
/// let gram = Gram::decode(Bytes::from_static(b"bAAAAAAB0AD5s502N14R8bWw8qyvRW-SHello There"))?;
/// assert_eq!((gram.code(), gram.encoding()), (Code::Zero, Encoding::Base64));
/// assert_eq!(gram.count(), Some(1));
/// assert_eq!(&gram.body()[..], b"Hello There");
/// assert_eq!(gram.to_string(), "Gram bAAA b64 mid=0AD5s502N14R8bWw8qyvRW-S gc=1 len=11");
/// # Ok::<(), memogram::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gram {
    code: Code,
    encoding: Encoding,
    neck: u32,
    mid: Mid,
    vid: Option<Vid>,
    signature: Option<Signature>,
    body: Bytes,
    wire: Bytes,
}

impl Gram {
    /// Reads a gram from one datagram. The body shares the datagram's memory.
    pub fn decode(wire: Bytes) -> Result<Gram, Error> {
        let first = *wire.first().ok_or(Error::BadField {
            field: "gram",
            why: "empty datagram",
        })?;
        let encoding = Encoding::sniff(first)?;
        let code = Code::read(encoding, &wire)?;
        let min = code.overhead(encoding);
        if wire.len() < min {
            return Err(Error::TooShort {
                len: wire.len(),
                code,
                min,
            });
        }
        let (code_len, neck_len, mid_len) = (
            encoding.size(4),
            encoding.size(4),
            encoding.size(Mid::QB64_LEN),
        );
        let neck_at = code_len;
        let mid_at = neck_at + neck_len;
        let vid_at = mid_at + mid_len;
        let neck_bytes = wire.get(neck_at..mid_at);
        let mid_bytes = &wire[mid_at..vid_at];
        let (neck, mid) = match encoding {
            Encoding::Base64 => (
                int24::read_b64(neck_bytes, "neck")?,
                Mid::from_qb64(mid_bytes)?,
            ),
            Encoding::Base2 => (
                int24::read_b2(neck_bytes, "neck")?,
                Mid::from_qb2(mid_bytes)?,
            ),
        };
        let header_len = code.header_len(encoding);
        let vid = match code.has_vid() {
            false => None,
            true => {
                let bytes = &wire[vid_at..header_len];
                Some(match encoding {
                    Encoding::Base64 => Vid::from_qb64(bytes)?,
                    Encoding::Base2 => Vid::from_qb2(bytes)?,
                })
            }
        };
        let body_end = wire.len() - code.signature_len(encoding);
        let signature = match code.is_signed() {
            false => None,
            true => {
                let bytes = &wire[body_end..];
                Some(match encoding {
                    Encoding::Base64 => Signature::from_qb64(bytes)?,
                    Encoding::Base2 => Signature::from_qb2(bytes)?,
                })
            }
        };
        Ok(Gram {
            code,
            encoding,
            neck,
            mid,
            vid,
            signature,
            body: wire.slice(header_len..body_end),
            wire,
        })
    }

    /// The datagram it was read from, given back.
    pub(crate) fn into_wire(self) -> Bytes {
        self.wire
    }

    /// Its code.
    pub fn code(&self) -> Code {
        self.code
    }

    /// How its header was written.
    pub fn encoding(&self) -> Encoding {
        self.encoding
    }

    /// The memo it belongs to.
    pub fn mid(&self) -> Mid {
        self.mid
    }

    /// For a memo's first gram, how many grams the memo has (0 from hio's base2 bug for
    /// memos of 8 bytes or less); `None` for later grams.
    pub fn count(&self) -> Option<u32> {
        self.code.is_zero().then_some(self.neck)
    }

    /// Its number in the memo: 0 for the first gram, the neck for later ones.
    pub fn number(&self) -> u32 {
        if self.code.is_zero() { 0 } else { self.neck }
    }

    /// The signer's vid, carried by a signed first gram only.
    pub fn vid(&self) -> Option<Vid> {
        self.vid
    }

    /// The signature of a signed gram.
    pub fn signature(&self) -> Option<&Signature> {
        self.signature.as_ref()
    }

    /// Its slice of the memo.
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// What the signature covers: every byte of the datagram before it.
    pub fn signed_bytes(&self) -> &[u8] {
        &self.wire[..self.wire.len() - self.code.signature_len(self.encoding)]
    }

    /// The whole datagram.
    pub fn wire(&self) -> &Bytes {
        &self.wire
    }
}

impl fmt::Display for Gram {
    /// One line: `Gram bAAC b2 mid=0AD5… gc=2 vid=BG-R… len=6 signed`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let encoding = match self.encoding {
            Encoding::Base64 => "b64",
            Encoding::Base2 => "b2",
        };
        write!(f, "Gram {} {encoding} mid={}", self.code, self.mid)?;
        match self.count() {
            Some(gc) => write!(f, " gc={gc}")?,
            None => write!(f, " gn={}", self.neck)?,
        }
        if let Some(vid) = &self.vid {
            write!(f, " vid={vid}")?;
        }
        write!(f, " len={}", self.body.len())?;
        if self.signature.is_some() {
            f.write_str(" signed")?;
        }
        Ok(())
    }
}

/// Writes a gram's header: code, neck, mid, and the vid for a signed first gram.
pub(crate) fn put_header(
    code: Code,
    encoding: Encoding,
    neck: u32,
    mid: &Mid,
    vid: Option<&Vid>,
    buf: &mut impl BufMut,
) {
    match encoding {
        Encoding::Base64 => {
            buf.put_slice(&code.to_qb64());
            int24::put_b64(neck, buf);
            buf.put_slice(&mid.qb64_array());
            if let Some(vid) = vid {
                buf.put_slice(vid.to_qb64().as_bytes());
            }
        }
        Encoding::Base2 => {
            buf.put_slice(&code.to_qb2());
            int24::put_b2(neck, buf);
            buf.put_slice(&mid.to_qb2());
            if let Some(vid) = vid {
                buf.put_slice(&vid.to_qb2());
            }
        }
    }
}

/// Writes a signature in `encoding`.
pub(crate) fn put_signature(signature: &Signature, encoding: Encoding, buf: &mut impl BufMut) {
    match encoding {
        Encoding::Base64 => buf.put_slice(signature.to_qb64().as_bytes()),
        Encoding::Base2 => buf.put_slice(&signature.to_qb2()),
    }
}
