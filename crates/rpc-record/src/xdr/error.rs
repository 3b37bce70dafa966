//! [`XdrError`]: why bytes are not the XDR encoding of a value.

use nom::error::{ErrorKind, ParseError};

/// Why bytes are not the encoding of the value asked for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum XdrError {
    /// The input is too short: it ends inside a value.
    #[error("XDR input too short: it ends inside a value")]
    TooShort,
    /// A variable-length item declared more than its limit: the declared maximum, or what
    /// the bytes left could hold.
    #[error("XDR item of length {len} over its limit of {max}")]
    TooLong {
        /// The length on the wire (bytes, or elements of an array).
        len: u32,
        /// The limit that applied.
        max: u32,
    },
    /// A bool, an optional-data flag, an enum or a union's discriminant held a value its
    /// type does not define.
    #[error("{of}: {value} is not a value it defines")]
    BadDiscriminant {
        /// The type: `bool`, `optional-data`, or the enum's or union's name.
        of: &'static str,
        /// The value found.
        value: u32,
    },
    /// A string was not UTF-8.
    #[error("XDR string is not UTF-8")]
    NotUtf8,
    /// Bytes were left after the value.
    #[error("{bytes} bytes left after the XDR value")]
    Trailing {
        /// How many.
        bytes: usize,
    },
    /// A combinator of the caller's refused the input.
    #[error("XDR decoder refused the input ({0:?})")]
    Refused(ErrorKind),
}

impl XdrError {
    /// A `nom` error for a discriminant `of` does not define: what union and enum decoders
    /// return.
    pub fn bad_discriminant<T>(of: &'static str, value: u32) -> Result<T, nom::Err<XdrError>> {
        Err(nom::Err::Error(XdrError::BadDiscriminant { of, value }))
    }

    /// The error inside a `nom::Err` (there is no `Incomplete`: XDR input comes whole).
    pub fn from_nom(err: nom::Err<XdrError>) -> XdrError {
        match err {
            nom::Err::Error(e) | nom::Err::Failure(e) => e,
            nom::Err::Incomplete(_) => XdrError::TooShort,
        }
    }
}

impl ParseError<&[u8]> for XdrError {
    fn from_error_kind(input: &[u8], kind: ErrorKind) -> Self {
        match kind {
            // nom's byte parsers report a short input so.
            ErrorKind::Eof | ErrorKind::Complete => XdrError::TooShort,
            _ if input.is_empty() => XdrError::TooShort,
            kind => XdrError::Refused(kind),
        }
    }

    fn append(_: &[u8], _: ErrorKind, other: Self) -> Self {
        other
    }
}
