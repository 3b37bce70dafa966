//! The reader the RPC headers (call, reply, credentials, portmapper results) are decoded
//! with: the public parsers, over a message kept as `Bytes` so that opaque fields and the
//! arguments are slices of it (no copy), with errors that name the message and the field.

use bytes::{Buf, Bytes, BytesMut};

use super::{Decode, Encode, XdrError, opaque};
use crate::Error;

/// Reads XDR items from the front of a message, each a slice of it (no copy).
#[derive(Debug)]
pub(crate) struct XdrReader {
    rest: Bytes,
    /// What is being read, for the error: `call header`, `reply`, `PMAPPROC_DUMP result`.
    what: &'static str,
}

impl XdrReader {
    pub fn new(message: Bytes, what: &'static str) -> XdrReader {
        XdrReader {
            rest: message,
            what,
        }
    }

    /// The error for `field`, in the terms of the message it is in.
    fn error(&self, field: &'static str, err: nom::Err<XdrError>) -> Error {
        match XdrError::from_nom(err) {
            XdrError::TooLong { len, max } => Error::FieldTooLong {
                what: self.what,
                field,
                len,
                max,
            },
            XdrError::BadDiscriminant { value, .. } => Error::BadValue {
                what: self.what,
                field,
                value,
            },
            XdrError::TooShort => Error::Malformed {
                what: self.what,
                field,
            },
            other => Error::Xdr {
                what: self.what,
                field,
                error: other,
            },
        }
    }

    /// One value of `T`, copied out.
    pub fn item<T: Decode>(&mut self, field: &'static str) -> Result<T, Error> {
        self.item_with(field, T::decode)
    }

    /// One item read by `parser` (one of [`crate::xdr`]'s, with its limit).
    pub fn item_with<T>(
        &mut self,
        field: &'static str,
        parser: impl Fn(&[u8]) -> super::XdrResult<'_, T>,
    ) -> Result<T, Error> {
        match parser(&self.rest) {
            Ok((rest, value)) => {
                let used = self.rest.len() - rest.len();
                self.rest.advance(used);
                Ok(value)
            }
            Err(e) => Err(self.error(field, e)),
        }
    }

    /// One unsigned 32-bit word.
    pub fn u32(&mut self, field: &'static str) -> Result<u32, Error> {
        self.item(field)
    }

    /// Variable-length opaque data of at most `max` bytes, and its padding, as a slice of
    /// the message.
    pub fn opaque(&mut self, field: &'static str, max: u32) -> Result<Bytes, Error> {
        match opaque(max)(&self.rest) {
            Ok((rest, data)) => {
                let data = self.rest.slice_ref(data);
                let used = self.rest.len() - rest.len();
                self.rest.advance(used);
                Ok(data)
            }
            Err(e) => Err(self.error(field, e)),
        }
    }

    /// Whatever is left (a procedure's arguments or results).
    pub fn rest(self) -> Bytes {
        self.rest
    }
}

/// Writes variable-length opaque data: its length, the bytes, zero padding to 4.
pub(crate) fn put_opaque(dst: &mut BytesMut, data: &[u8]) {
    data.encode(dst);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opaque_data_is_padded_and_bounded() {
        let mut wire = BytesMut::new();
        put_opaque(&mut wire, b"tcp");
        assert_eq!(&wire[..], b"\0\0\0\x03tcp\0");
        let mut reader = XdrReader::new(wire.clone().freeze(), "test");
        assert_eq!(&reader.opaque("netid", 3).unwrap()[..], b"tcp");
        assert!(reader.rest().is_empty());
        let mut reader = XdrReader::new(wire.freeze(), "test");
        assert_eq!(
            reader.opaque("netid", 2).unwrap_err().to_string(),
            "test: netid is 3 bytes long, the limit is 2"
        );
        // A length that runs past the end is an error, not a panic.
        let mut reader = XdrReader::new(Bytes::from_static(b"\xff\xff\xff\xf0ab"), "test");
        assert!(matches!(
            reader.opaque("body", u32::MAX),
            Err(Error::Malformed { field: "body", .. })
        ));
        let mut reader = XdrReader::new(Bytes::from_static(b"\0\0\0\x05ab"), "test");
        assert!(matches!(
            reader.opaque("body", 400),
            Err(Error::Malformed { field: "body", .. })
        ));
    }
}
