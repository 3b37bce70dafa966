//! XDR (RFC 4506): the data representation of ONC RPC arguments and results.
//!
//! A type goes on the wire through [`Encode`] (into any [`BufMut`]) and comes off it through
//! [`Decode`], a [nom](https://docs.rs/nom/7) parser over a byte slice. The primitive types are
//! implemented here, as RFC 4506 names them:
//!
//! | XDR | Rust |
//! | --- | --- |
//! | `int`, `unsigned int` | `i32`, `u32` |
//! | `hyper`, `unsigned hyper` | `i64`, `u64` |
//! | `bool` | `bool` |
//! | `enum` | `i32`, or a type made with [`xdr_enum!`](crate::xdr_enum) |
//! | `float`, `double` | `f32`, `f64` |
//! | `opaque[n]` | `[u8; N]` |
//! | `opaque<>` | [`Bytes`] |
//! | `string<>` | `String` (UTF-8, as every peer here writes it) |
//! | `T[n]` | `[T; N]` |
//! | `T<>` | `Vec<T>` |
//! | `T *` (optional-data) | `Option<T>` (`Option<Box<T>>` for linked lists) |
//! | `void` | `()` |
//! | a struct of `A`, `B`, ... | the tuple `(A, B, ...)`, or your struct |
//!
//! Structs and unions are composed from these: encode the fields in order; decode them in
//! order with nom's combinators, or by hand (see [`Decode`]). A variable-length item's length
//! is checked before anything is allocated: against the declared maximum where there is one
//! ([`opaque`], [`string`], [`array()`]), and always against the bytes left in the input (an
//! array counts at least 4 bytes an element), so a length from the wire can never make a
//! decoder allocate more than the message it came in.
//!
//! ```
//! use bytes::{BufMut, Bytes};
//! use rpc_record::xdr::{self, Decode, Encode, XdrResult};
//!
//! /// `struct entry { string name<255>; unsigned int ids<16>; }`
//! #[derive(Debug, PartialEq)]
//! struct Entry {
//!     name: String,
//!     ids: Vec<u32>,
//! }
//!
//! impl Encode for Entry {
//!     fn encode<B: BufMut>(&self, dst: &mut B) {
//!         self.name.encode(dst);
//!         self.ids.encode(dst);
//!     }
//!     fn encoded_len(&self) -> usize {
//!         self.name.encoded_len() + self.ids.encoded_len()
//!     }
//! }
//!
//! impl Decode for Entry {
//!     fn decode(input: &[u8]) -> XdrResult<'_, Entry> {
//!         let (input, name) = xdr::string(255)(input)?;
//!         let (input, ids) = xdr::array(16, u32::decode)(input)?;
//!         Ok((input, Entry { name, ids }))
//!     }
//! }
//!
//! let entry = Entry { name: "eve".into(), ids: vec![7, 8] };
//! let wire = xdr::to_bytes(&entry);
//! assert_eq!(&wire[..], b"\0\0\0\x03eve\0\0\0\0\x02\0\0\0\x07\0\0\0\x08");
//! assert_eq!(xdr::from_bytes::<Entry>(&wire)?, entry);
//! // A name over its limit is refused before it is copied.
//! let long = xdr::to_bytes(&Entry { name: "x".repeat(256), ids: vec![] });
//! assert!(xdr::from_bytes::<Entry>(&long).is_err());
//! # Ok::<(), rpc_record::xdr::XdrError>(())
//! ```

mod error;
mod impls;
mod parse;
mod reader;

use bytes::{BufMut, Bytes, BytesMut};

pub use error::XdrError;
pub use parse::{array, fixed_opaque, opaque, optional, string};
pub(crate) use reader::{XdrReader, put_opaque};

/// What a decoder returns: the input left and the value, or why the input is not one.
pub type XdrResult<'a, T> = nom::IResult<&'a [u8], T, XdrError>;

/// A type with an XDR encoding.
pub trait Encode {
    /// Writes the encoding of `self` into `dst`.
    fn encode<B: BufMut>(&self, dst: &mut B);

    /// The length of the encoding, a multiple of 4.
    fn encoded_len(&self) -> usize;
}

/// A type that can be read from its XDR encoding.
///
/// `decode` is a nom parser: it takes the input and returns what is left after the value.
/// A value cut short is [`XdrError::TooShort`] (as a `nom::Err::Error`: XDR messages
/// arrive whole, so there is nothing to wait for).
pub trait Decode: Sized {
    /// Reads one value from the front of `input`.
    fn decode(input: &[u8]) -> XdrResult<'_, Self>;
}

/// The encoding of `value`.
pub fn to_bytes<T: Encode + ?Sized>(value: &T) -> Bytes {
    let mut dst = BytesMut::with_capacity(value.encoded_len());
    value.encode(&mut dst);
    dst.freeze()
}

/// Reads a `T` that must take all of `input`: bytes left over are
/// [`XdrError::Trailing`].
pub fn from_bytes<T: Decode>(input: &[u8]) -> Result<T, XdrError> {
    let (rest, value) = T::decode(input).map_err(XdrError::from_nom)?;
    if !rest.is_empty() {
        return Err(XdrError::Trailing { bytes: rest.len() });
    }
    Ok(value)
}

/// Defines a C-like enum with an XDR encoding (a signed 32-bit word); a value it does not
/// list is refused with [`XdrError::BadDiscriminant`].
///
/// ```
/// use rpc_record::{xdr, xdr_enum};
///
/// xdr_enum! {
///     /// `enum color { RED = 0, GREEN = 1, BLUE = 2 };`
///     #[derive(Debug, Clone, Copy, PartialEq, Eq)]
///     pub enum Color { Red = 0, Green = 1, Blue = 2 }
/// }
///
/// assert_eq!(&xdr::to_bytes(&Color::Blue)[..], &[0, 0, 0, 2]);
/// assert_eq!(xdr::from_bytes::<Color>(&[0, 0, 0, 1])?, Color::Green);
/// assert!(xdr::from_bytes::<Color>(&[0, 0, 0, 3]).is_err());
/// # Ok::<(), rpc_record::xdr::XdrError>(())
/// ```
#[macro_export]
macro_rules! xdr_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident { $($(#[$vmeta:meta])* $variant:ident = $value:expr),+ $(,)? }
    ) => {
        $(#[$meta])*
        $vis enum $name { $($(#[$vmeta])* $variant = $value),+ }

        impl $crate::xdr::Encode for $name {
            fn encode<B: $crate::__bytes::BufMut>(&self, dst: &mut B) {
                dst.put_i32(match self { $($name::$variant => $value),+ });
            }
            fn encoded_len(&self) -> usize {
                4
            }
        }

        impl $crate::xdr::Decode for $name {
            fn decode(input: &[u8]) -> $crate::xdr::XdrResult<'_, $name> {
                let (rest, value) = <i32 as $crate::xdr::Decode>::decode(input)?;
                $(if value == $value { return Ok((rest, $name::$variant)); })+
                $crate::xdr::XdrError::bad_discriminant(stringify!($name), value as u32)
            }
        }
    };
}
