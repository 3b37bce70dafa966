//! [`Encode`] and [`Decode`] for the types that stand for XDR's primitives (the table in the
//! module's documentation).

use bytes::{BufMut, Bytes};
use nom::number::complete::{be_f32, be_f64, be_i32, be_i64, be_u32, be_u64};

use super::parse::{array, fixed_opaque, opaque, optional, string};
use super::{Decode, Encode, XdrError, XdrResult};

/// Encode and decode for a fixed-size number, with the `BufMut` writer and nom reader for it.
macro_rules! number {
    ($($ty:ty: $put:ident, $parse:ident, $len:literal;)+) => {$(
        impl Encode for $ty {
            fn encode<B: BufMut>(&self, dst: &mut B) {
                dst.$put(*self);
            }
            fn encoded_len(&self) -> usize {
                $len
            }
        }
        impl Decode for $ty {
            fn decode(input: &[u8]) -> XdrResult<'_, $ty> {
                $parse(input)
            }
        }
    )+};
}

number! {
    i32: put_i32, be_i32, 4;
    u32: put_u32, be_u32, 4;
    i64: put_i64, be_i64, 8;
    u64: put_u64, be_u64, 8;
    f32: put_f32, be_f32, 4;
    f64: put_f64, be_f64, 8;
}

impl Encode for bool {
    fn encode<B: BufMut>(&self, dst: &mut B) {
        dst.put_u32(u32::from(*self));
    }
    fn encoded_len(&self) -> usize {
        4
    }
}

impl Decode for bool {
    fn decode(input: &[u8]) -> XdrResult<'_, bool> {
        match be_u32(input)? {
            (rest, 0) => Ok((rest, false)),
            (rest, 1) => Ok((rest, true)),
            (_, value) => XdrError::bad_discriminant("bool", value),
        }
    }
}

/// `void`.
impl Encode for () {
    fn encode<B: BufMut>(&self, _: &mut B) {}
    fn encoded_len(&self) -> usize {
        0
    }
}

impl Decode for () {
    fn decode(input: &[u8]) -> XdrResult<'_, ()> {
        Ok((input, ()))
    }
}

/// Writes `data` and zero padding to a multiple of 4.
fn put_padded<B: BufMut>(dst: &mut B, data: &[u8]) {
    dst.put_slice(data);
    dst.put_bytes(0, data.len().next_multiple_of(4) - data.len());
}

/// Writes a variable-length item's length. XDR lengths are 32 bits: a longer item cannot
/// be encoded, and its length is written as `u32::MAX` so that no peer can take it for a
/// shorter one.
fn put_len<B: BufMut>(dst: &mut B, len: usize) {
    dst.put_u32(u32::try_from(len).unwrap_or(u32::MAX));
}

/// `opaque<>`.
impl Encode for [u8] {
    fn encode<B: BufMut>(&self, dst: &mut B) {
        put_len(dst, self.len());
        put_padded(dst, self);
    }
    fn encoded_len(&self) -> usize {
        4 + self.len().next_multiple_of(4)
    }
}

/// `opaque<>`.
impl Encode for Bytes {
    fn encode<B: BufMut>(&self, dst: &mut B) {
        self[..].encode(dst);
    }
    fn encoded_len(&self) -> usize {
        self[..].encoded_len()
    }
}

/// `opaque<>`, bounded by the input; copied (to keep a slice of the message instead, use
/// [`opaque`] and `Bytes::slice_ref`).
impl Decode for Bytes {
    fn decode(input: &[u8]) -> XdrResult<'_, Bytes> {
        let (rest, data) = opaque(u32::MAX)(input)?;
        Ok((rest, Bytes::copy_from_slice(data)))
    }
}

/// `opaque[N]`.
impl<const N: usize> Encode for [u8; N] {
    fn encode<B: BufMut>(&self, dst: &mut B) {
        put_padded(dst, self);
    }
    fn encoded_len(&self) -> usize {
        N.next_multiple_of(4)
    }
}

/// `opaque[N]`.
impl<const N: usize> Decode for [u8; N] {
    fn decode(input: &[u8]) -> XdrResult<'_, [u8; N]> {
        let (rest, data) = fixed_opaque(N)(input)?;
        let mut out = [0; N];
        out.copy_from_slice(data);
        Ok((rest, out))
    }
}

/// `string<>`.
impl Encode for str {
    fn encode<B: BufMut>(&self, dst: &mut B) {
        self.as_bytes().encode(dst);
    }
    fn encoded_len(&self) -> usize {
        self.as_bytes().encoded_len()
    }
}

/// `string<>`.
impl Encode for String {
    fn encode<B: BufMut>(&self, dst: &mut B) {
        self.as_str().encode(dst);
    }
    fn encoded_len(&self) -> usize {
        self.as_str().encoded_len()
    }
}

/// `string<>`, bounded by the input.
impl Decode for String {
    fn decode(input: &[u8]) -> XdrResult<'_, String> {
        string(u32::MAX)(input)
    }
}

/// `T<>`.
impl<T: Encode> Encode for [T] {
    fn encode<B: BufMut>(&self, dst: &mut B) {
        put_len(dst, self.len());
        for item in self {
            item.encode(dst);
        }
    }
    fn encoded_len(&self) -> usize {
        4 + self.iter().map(Encode::encoded_len).sum::<usize>()
    }
}

/// `T<>`.
impl<T: Encode> Encode for Vec<T> {
    fn encode<B: BufMut>(&self, dst: &mut B) {
        self[..].encode(dst);
    }
    fn encoded_len(&self) -> usize {
        self[..].encoded_len()
    }
}

/// `T<>`, bounded by the input (4 bytes an element at least).
impl<T: Decode> Decode for Vec<T> {
    fn decode(input: &[u8]) -> XdrResult<'_, Vec<T>> {
        array(u32::MAX, T::decode)(input)
    }
}

/// `T[N]`.
impl<T: Encode, const N: usize> Encode for [T; N] {
    fn encode<B: BufMut>(&self, dst: &mut B) {
        for item in self {
            item.encode(dst);
        }
    }
    fn encoded_len(&self) -> usize {
        self.iter().map(Encode::encoded_len).sum()
    }
}

/// `T[N]`.
impl<T: Decode, const N: usize> Decode for [T; N] {
    fn decode(mut input: &[u8]) -> XdrResult<'_, [T; N]> {
        let mut items = Vec::with_capacity(N.min(input.len() / 4));
        for _ in 0..N {
            let (rest, item) = T::decode(input)?;
            input = rest;
            items.push(item);
        }
        match items.try_into() {
            Ok(array) => Ok((input, array)),
            // Never: N items were pushed.
            Err(_) => Err(nom::Err::Error(XdrError::TooShort)),
        }
    }
}

/// `T *`: optional-data.
impl<T: Encode> Encode for Option<T> {
    fn encode<B: BufMut>(&self, dst: &mut B) {
        match self {
            None => dst.put_u32(0),
            Some(item) => {
                dst.put_u32(1);
                item.encode(dst);
            }
        }
    }
    fn encoded_len(&self) -> usize {
        4 + self.as_ref().map_or(0, Encode::encoded_len)
    }
}

/// `T *`: optional-data.
impl<T: Decode> Decode for Option<T> {
    fn decode(input: &[u8]) -> XdrResult<'_, Option<T>> {
        optional(T::decode)(input)
    }
}

/// The item itself: for recursive types (`Option<Box<Entry>>`, a list).
impl<T: Encode + ?Sized> Encode for Box<T> {
    fn encode<B: BufMut>(&self, dst: &mut B) {
        (**self).encode(dst);
    }
    fn encoded_len(&self) -> usize {
        (**self).encoded_len()
    }
}

/// The item itself: for recursive types. Each level of a list takes 4 bytes of input at
/// least, so its depth is bounded by the message; decode deep lists iteratively if the
/// stack matters (a 1 MiB message can nest 262 144 levels).
impl<T: Decode> Decode for Box<T> {
    fn decode(input: &[u8]) -> XdrResult<'_, Box<T>> {
        T::decode(input).map(|(rest, item)| (rest, Box::new(item)))
    }
}

impl<T: Encode + ?Sized> Encode for &T {
    fn encode<B: BufMut>(&self, dst: &mut B) {
        (**self).encode(dst);
    }
    fn encoded_len(&self) -> usize {
        (**self).encoded_len()
    }
}

/// A struct: its fields in order.
macro_rules! tuple {
    ($($name:ident)+) => {
        impl<$($name: Encode),+> Encode for ($($name,)+) {
            #[allow(non_snake_case)]
            fn encode<Buf: BufMut>(&self, dst: &mut Buf) {
                let ($($name,)+) = self;
                $($name.encode(dst);)+
            }
            #[allow(non_snake_case)]
            fn encoded_len(&self) -> usize {
                let ($($name,)+) = self;
                0 $(+ $name.encoded_len())+
            }
        }
        impl<$($name: Decode),+> Decode for ($($name,)+) {
            #[allow(non_snake_case)]
            fn decode(input: &[u8]) -> XdrResult<'_, ($($name,)+)> {
                $(let (input, $name) = $name::decode(input)?;)+
                Ok((input, ($($name,)+)))
            }
        }
    };
}

tuple!(A);
tuple!(A B);
tuple!(A B C);
tuple!(A B C D);
tuple!(A B C D E);
tuple!(A B C D E F);
tuple!(A B C D E F G);
tuple!(A B C D E F G H);

#[cfg(test)]
mod tests {
    use super::super::{from_bytes, to_bytes};
    use super::*;
    use proptest::prelude::*;

    fn round_trip<T: Encode + Decode + PartialEq + std::fmt::Debug>(value: T) {
        let wire = to_bytes(&value);
        assert_eq!(wire.len(), value.encoded_len(), "{value:?}");
        assert_eq!(wire.len() % 4, 0, "{value:?}");
        assert_eq!(from_bytes::<T>(&wire).unwrap(), value);
        for cut in 0..wire.len() {
            assert!(
                from_bytes::<T>(&wire[..cut]).is_err(),
                "{value:?} cut at {cut}"
            );
        }
    }

    #[test]
    fn rfc_4506_encodings() {
        assert_eq!(&to_bytes(&-2i32)[..], &[0xff, 0xff, 0xff, 0xfe]);
        assert_eq!(&to_bytes(&1u64)[..], &[0, 0, 0, 0, 0, 0, 0, 1]);
        assert_eq!(&to_bytes(&true)[..], &[0, 0, 0, 1]);
        assert_eq!(&to_bytes(&1.0f32)[..], &[0x3f, 0x80, 0, 0]);
        assert_eq!(&to_bytes(&[1u8, 2, 3])[..], &[1, 2, 3, 0]);
        assert_eq!(&to_bytes("hello")[..], b"\0\0\0\x05hello\0\0\0");
        assert_eq!(&to_bytes(&[7u32, 8])[..], &[0, 0, 0, 7, 0, 0, 0, 8]);
        assert_eq!(&to_bytes(&Some(3u32))[..], &[0, 0, 0, 1, 0, 0, 0, 3]);
        assert_eq!(&to_bytes(&None::<u32>)[..], &[0, 0, 0, 0]);
        assert_eq!(to_bytes(&()).len(), 0);
        assert_eq!(
            from_bytes::<bool>(&[0, 0, 0, 2]),
            Err(XdrError::BadDiscriminant {
                of: "bool",
                value: 2
            })
        );
        assert_eq!(
            from_bytes::<u32>(&[0, 0, 0, 1, 0]),
            Err(XdrError::Trailing { bytes: 1 })
        );
    }

    /// A linked list as optional-data: `struct node { int value; node *next; }`.
    #[test]
    fn a_list_of_optional_data_round_trips() {
        type Node = (i32, Option<Box<Node2>>);
        type Node2 = (i32, Option<u32>);
        round_trip::<Node>((1, Some(Box::new((2, None)))));
        round_trip::<Node>((1, Some(Box::new((2, Some(3))))));
    }

    proptest! {
        #[test]
        fn primitives_and_compositions_round_trip(
            a in any::<i32>(), b in any::<u64>(), c in any::<bool>(), d in any::<f64>(),
            s in ".{0,40}", o in proptest::collection::vec(any::<u8>(), 0..40),
            v in proptest::collection::vec(any::<(u32, i64)>(), 0..6),
            f in any::<[u8; 5]>(), n in any::<Option<i32>>(),
        ) {
            prop_assume!(!d.is_nan());
            round_trip(a);
            round_trip(b);
            round_trip(c);
            round_trip(d);
            round_trip(s.clone());
            round_trip(Bytes::from(o.clone()));
            round_trip(v.clone());
            round_trip(f);
            round_trip(n);
            round_trip((a, s, Bytes::from(o), v, [c, !c], n));
        }

        #[test]
        fn decoding_any_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = from_bytes::<(String, Vec<Bytes>, Option<Box<(u32, Vec<u64>)>>)>(&bytes);
            let _ = from_bytes::<([u8; 7], [i32; 3], bool, f32)>(&bytes);
        }
    }
}
