//! Parsers for the variable-length items whose limit a type declares (`opaque<N>`,
//! `string<N>`, `T<N>`), for fixed opaque data, and for optional-data: the pieces a
//! [`Decode`](super::Decode) of a user's struct or union is made of.

use nom::bytes::complete::take;
use nom::number::complete::be_u32;

use super::{XdrError, XdrResult};

/// The length a variable-length item declares, refused before anything is taken when it is
/// over `max` ([`XdrError::TooLong`]), or over what the bytes left could hold at `unit` bytes
/// an element ([`XdrError::TooShort`]).
fn length(input: &[u8], max: u32, unit: usize) -> XdrResult<'_, usize> {
    let (rest, len) = be_u32(input)?;
    if len > max {
        return Err(nom::Err::Error(XdrError::TooLong { len, max }));
    }
    if len as usize > rest.len() / unit {
        return Err(nom::Err::Error(XdrError::TooShort));
    }
    Ok((rest, len as usize))
}

/// `len` bytes and the padding after them to a multiple of 4.
fn padded(input: &[u8], len: usize) -> XdrResult<'_, &[u8]> {
    let (rest, data) = take(len)(input)?;
    let (rest, _) = take(len.next_multiple_of(4) - len)(rest)?;
    Ok((rest, data))
}

/// `opaque data<max>`: variable-length opaque data of at most `max` bytes, as a slice of the
/// input (copy it with `Bytes::copy_from_slice`, or slice the message it came in).
pub fn opaque(max: u32) -> impl Fn(&[u8]) -> XdrResult<'_, &[u8]> {
    move |input| {
        let (rest, len) = length(input, max, 1)?;
        padded(rest, len)
    }
}

/// `opaque data[len]`: fixed-length opaque data, as a slice of the input.
pub fn fixed_opaque(len: usize) -> impl Fn(&[u8]) -> XdrResult<'_, &[u8]> {
    move |input| padded(input, len)
}

/// `string name<max>`: a string of at most `max` bytes, which must be UTF-8.
pub fn string(max: u32) -> impl Fn(&[u8]) -> XdrResult<'_, String> {
    move |input| {
        let (rest, bytes) = opaque(max)(input)?;
        match std::str::from_utf8(bytes) {
            Ok(text) => Ok((rest, text.to_owned())),
            Err(_) => Err(nom::Err::Error(XdrError::NotUtf8)),
        }
    }
}

/// `T items<max>`: a variable-length array of at most `max` elements, each read by
/// `element`. The count is checked against `max` and against the input left (4 bytes an
/// element at least) before the vector is made.
pub fn array<T, F>(max: u32, element: F) -> impl Fn(&[u8]) -> XdrResult<'_, Vec<T>>
where
    F: Fn(&[u8]) -> XdrResult<'_, T>,
{
    move |input| {
        let (mut rest, count) = length(input, max, 4)?;
        let mut items = Vec::with_capacity(count);
        for _ in 0..count {
            let (after, item) = element(rest)?;
            rest = after;
            items.push(item);
        }
        Ok((rest, items))
    }
}

/// `T *item`: optional-data, a flag word (0 or 1) and, after a 1, the item.
pub fn optional<T, F>(element: F) -> impl Fn(&[u8]) -> XdrResult<'_, Option<T>>
where
    F: Fn(&[u8]) -> XdrResult<'_, T>,
{
    move |input| {
        let (rest, follows) = be_u32(input)?;
        match follows {
            0 => Ok((rest, None)),
            1 => element(rest).map(|(rest, item)| (rest, Some(item))),
            value => XdrError::bad_discriminant("optional-data", value),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xdr::Decode;

    #[test]
    fn a_length_over_its_limit_or_over_the_input_is_refused_before_it_is_taken() {
        let declared = |len: u32| {
            let mut wire = len.to_be_bytes().to_vec();
            wire.extend_from_slice(b"abcdefgh");
            wire
        };
        assert_eq!(opaque(8)(&declared(3)).unwrap().1, b"abc");
        assert_eq!(
            opaque(2)(&declared(3)).unwrap_err(),
            nom::Err::Error(XdrError::TooLong { len: 3, max: 2 })
        );
        assert_eq!(
            opaque(u32::MAX)(&declared(u32::MAX)).unwrap_err(),
            nom::Err::Error(XdrError::TooShort)
        );
        // Two elements fit in 8 bytes; a billion do not, and nothing is reserved for them.
        assert_eq!(array(10, u32::decode)(&declared(2)).unwrap().1.len(), 2);
        assert_eq!(
            array(u32::MAX, u32::decode)(&declared(1 << 30)).unwrap_err(),
            nom::Err::Error(XdrError::TooShort)
        );
        // Padding is part of the item: cut inside it is a truncation.
        assert_eq!(
            opaque(8)(&declared(3)[..7]).unwrap_err(),
            nom::Err::Error(XdrError::TooShort)
        );
    }

    #[test]
    fn optional_data_takes_zero_or_one_and_nothing_else() {
        let p = optional(u32::decode);
        assert_eq!(p(&[0, 0, 0, 0]).unwrap().1, None);
        assert_eq!(p(&[0, 0, 0, 1, 0, 0, 0, 9]).unwrap().1, Some(9));
        assert_eq!(
            p(&[0, 0, 0, 2]).unwrap_err(),
            nom::Err::Error(XdrError::BadDiscriminant {
                of: "optional-data",
                value: 2
            })
        );
        assert_eq!(
            string(10)(&[0, 0, 0, 2, 0xff, 0xfe, 0, 0]).unwrap_err(),
            nom::Err::Error(XdrError::NotUtf8)
        );
    }
}
