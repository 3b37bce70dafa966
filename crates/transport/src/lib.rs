#![doc = include_str!("../README.md")]

mod error;
mod layer;
mod stack;
mod tls;

pub use error::Error;
pub use layer::{Endpoint, Io, Layer, Layered, Residue, WrapDyn};
pub use stack::Stack;
pub use tls::{Tls, TlsClient, TlsInfo, TlsServer};
