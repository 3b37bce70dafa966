//! Gram codes (`bAAA` to `bAAH`) and the two header encodings.

use std::fmt;

use crate::Error;

/// How a gram's header is written: text (qb64) or binary (qb2, hio's "curt" mode). The body
/// is the same raw bytes either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encoding {
    /// Base64url text: code `bAAA`, 4-character neck, 24-character mid, and so on.
    Base64,
    /// Binary: every header field is the base64 decoding of its text, 3/4 of its size.
    Base2,
}

impl Encoding {
    /// What a gram's first byte says its header is (hio's `wiff`): `0x60..=0x63` is text,
    /// `0x6c..=0x6f` binary; anything else is not a gram.
    pub fn sniff(first: u8) -> Result<Encoding, Error> {
        match first >> 2 {
            0o30 => Ok(Encoding::Base64),
            0o33 => Ok(Encoding::Base2),
            _ => Err(Error::NotAGram { first }),
        }
    }

    /// The size in this encoding of a field of `chars` base64 characters.
    pub const fn size(self, chars: usize) -> usize {
        match self {
            Encoding::Base64 => chars,
            Encoding::Base2 => chars / 4 * 3,
        }
    }
}

/// A gram code: whether the gram is a memo's first (it carries the gram count) or a later
/// one (it carries its number), and whether it is signed.
///
/// `bAAE` to `bAAH` are hio's "sure" codes: no acknowledgement exists behind them, so they
/// read exactly as `bAAA` to `bAAD`. The reserved ack codes `bAAI` and `bAAJ` (on which hio's
/// receiver crashes) and every other code are errors here.
///
/// ```
/// use memogram::{Code, Encoding};
///
/// let code = Code::read(Encoding::Base2, &[0x6c, 0x00, 0x02])?;
/// assert_eq!(code, Code::AuthZero);
/// assert_eq!((code.later(), code.overhead(Encoding::Base64)), (Code::AuthLater, 164));
/// assert!(Code::read(Encoding::Base64, b"bAAI").is_err());
/// # Ok::<(), memogram::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Code {
    /// `bAAA`: first gram, unsigned.
    Zero,
    /// `bAAB`: later gram, unsigned.
    Later,
    /// `bAAC`: first gram, signed; carries the vid.
    AuthZero,
    /// `bAAD`: later gram, signed.
    AuthLater,
    /// `bAAE`: "sure" first gram, unsigned.
    SureZero,
    /// `bAAF`: "sure" later gram, unsigned.
    SureLater,
    /// `bAAG`: "sure" first gram, signed.
    SureAuthZero,
    /// `bAAH`: "sure" later gram, signed.
    SureAuthLater,
}

/// Field sizes in base64 characters.
const CODE: usize = 4;
const NECK: usize = 4;
const MID: usize = 24;
const VID: usize = 44;
const SIG: usize = 88;

impl Code {
    const ALL: [Code; 8] = [
        Code::Zero,
        Code::Later,
        Code::AuthZero,
        Code::AuthLater,
        Code::SureZero,
        Code::SureLater,
        Code::SureAuthZero,
        Code::SureAuthLater,
    ];

    /// The code's number: the value of its last three characters (`bAAC` is 2).
    pub fn number(self) -> u8 {
        match self {
            Code::Zero => 0,
            Code::Later => 1,
            Code::AuthZero => 2,
            Code::AuthLater => 3,
            Code::SureZero => 4,
            Code::SureLater => 5,
            Code::SureAuthZero => 6,
            Code::SureAuthLater => 7,
        }
    }

    /// The code of a memo's first gram, unsigned or signed.
    pub fn zero(signed: bool) -> Code {
        if signed { Code::AuthZero } else { Code::Zero }
    }

    /// The code of the grams after the first, for a memo whose first gram has this code.
    pub fn later(self) -> Code {
        Code::ALL[usize::from(self.number() | 1)]
    }

    /// Whether it is a memo's first gram (its neck is the gram count).
    pub fn is_zero(self) -> bool {
        self.number() & 1 == 0
    }

    /// Whether the gram is signed.
    pub fn is_signed(self) -> bool {
        self.number() & 2 != 0
    }

    /// Whether the gram carries the signer's vid (a signed first gram).
    pub fn has_vid(self) -> bool {
        self.is_zero() && self.is_signed()
    }

    /// The header's size (code, neck, mid, and the vid when there is one) in `encoding`.
    pub fn header_len(self, encoding: Encoding) -> usize {
        let vid = if self.has_vid() { VID } else { 0 };
        encoding.size(CODE + NECK + MID + vid)
    }

    /// The signature's size in `encoding`, 0 for an unsigned gram.
    pub fn signature_len(self, encoding: Encoding) -> usize {
        if self.is_signed() {
            encoding.size(SIG)
        } else {
            0
        }
    }

    /// Everything in a gram but its body: 32, 164 or 120 bytes as text; 24, 123 or 90 in
    /// binary.
    pub fn overhead(self, encoding: Encoding) -> usize {
        self.header_len(encoding) + self.signature_len(encoding)
    }

    /// The code's text.
    pub fn to_qb64(self) -> [u8; 4] {
        [b'b', b'A', b'A', b"ABCDEFGH"[usize::from(self.number())]]
    }

    /// The code's binary form.
    pub fn to_qb2(self) -> [u8; 3] {
        [0x6c, 0x00, self.number()]
    }

    /// Reads a code from the first 4 characters (text) or 3 bytes (binary) of a gram.
    pub fn read(encoding: Encoding, bytes: &[u8]) -> Result<Code, Error> {
        let value = match encoding {
            Encoding::Base64 => crate::int24::read_b64(bytes.get(..CODE), "code")?,
            Encoding::Base2 => crate::int24::read_b2(bytes.get(..3), "code")?,
        };
        // `b` is 27: the top 6 of the 24 bits.
        if value >> 18 != 27 {
            return Err(Error::UnknownCode { value });
        }
        match value & 0x3_ffff {
            n @ 0..=7 => Ok(Code::ALL[n as usize]),
            8 | 9 => Err(Error::AckCode { value }),
            _ => Err(Error::UnknownCode { value }),
        }
    }
}

impl fmt::Display for Code {
    /// The code's text, `bAAC`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(std::str::from_utf8(&self.to_qb64()).map_err(|_| fmt::Error)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overheads_as_the_spec_has_them() {
        use Encoding::*;
        let table = [
            (Code::Zero, 32, 24),
            (Code::Later, 32, 24),
            (Code::AuthZero, 164, 123),
            (Code::AuthLater, 120, 90),
            (Code::SureAuthZero, 164, 123),
            (Code::SureAuthLater, 120, 90),
        ];
        for (code, b64, b2) in table {
            assert_eq!(
                (code.overhead(Base64), code.overhead(Base2)),
                (b64, b2),
                "{code}"
            );
        }
        assert_eq!(Code::AuthZero.later(), Code::AuthLater);
        assert_eq!(Code::SureZero.later(), Code::SureLater);
    }

    #[test]
    fn every_code_reads_back_and_the_rest_are_errors() {
        for code in Code::ALL {
            assert_eq!(Code::read(Encoding::Base64, &code.to_qb64()).unwrap(), code);
            assert_eq!(Code::read(Encoding::Base2, &code.to_qb2()).unwrap(), code);
        }
        assert!(matches!(
            Code::read(Encoding::Base64, b"bAAI"),
            Err(Error::AckCode { .. })
        ));
        assert!(matches!(
            Code::read(Encoding::Base2, &[0x6c, 0, 9]),
            Err(Error::AckCode { .. })
        ));
        assert!(matches!(
            Code::read(Encoding::Base64, b"bAAK"),
            Err(Error::UnknownCode { .. })
        ));
        assert!(matches!(
            Code::read(Encoding::Base64, b"bAB"),
            Err(Error::BadField { .. })
        ));
        assert!(matches!(
            Code::read(Encoding::Base64, b"b==A"),
            Err(Error::BadField { .. })
        ));
        assert!(matches!(
            Encoding::sniff(b'0'),
            Err(Error::NotAGram { first: b'0' })
        ));
        assert_eq!(Encoding::sniff(0x6c).unwrap(), Encoding::Base2);
        assert_eq!(Encoding::sniff(b'b').unwrap(), Encoding::Base64);
    }
}
