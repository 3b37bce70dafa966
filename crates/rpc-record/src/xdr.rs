//! The little XDR (RFC 4506) the RPC headers need: big-endian words and opaque data padded
//! to 4 bytes, read with bounds checked against what is there and what the field allows.

use bytes::{BufMut, Bytes, BytesMut};

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

    fn short(&self, field: &'static str) -> Error {
        Error::Truncated {
            what: self.what,
            field,
        }
    }

    /// One unsigned 32-bit word.
    pub fn u32(&mut self, field: &'static str) -> Result<u32, Error> {
        let Some(word) = self.rest.get(..4) else {
            return Err(self.short(field));
        };
        let value = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
        bytes::Buf::advance(&mut self.rest, 4);
        Ok(value)
    }

    /// Variable-length opaque data of at most `max` bytes, and its padding.
    pub fn opaque(&mut self, field: &'static str, max: u32) -> Result<Bytes, Error> {
        let len = self.u32(field)?;
        if len > max {
            return Err(Error::FieldTooLong {
                what: self.what,
                field,
                len,
                max,
            });
        }
        let padded = (len as usize).checked_next_multiple_of(4);
        let Some(padded) = padded.filter(|&padded| padded <= self.rest.len()) else {
            return Err(self.short(field));
        };
        let data = self.rest.slice(..len as usize);
        bytes::Buf::advance(&mut self.rest, padded);
        Ok(data)
    }

    /// Whatever is left (a procedure's arguments or results).
    pub fn rest(self) -> Bytes {
        self.rest
    }
}

/// Writes variable-length opaque data: its length, the bytes, zero padding to 4.
pub(crate) fn put_opaque(dst: &mut BytesMut, data: &[u8]) {
    // Callers only pass data whose length was checked to fit the field.
    dst.put_u32(data.len() as u32);
    dst.put_slice(data);
    dst.put_bytes(0, data.len().next_multiple_of(4) - data.len());
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
            Err(Error::Truncated { field: "body", .. })
        ));
    }
}
