#![doc = include_str!("../README.md")]

mod code;
mod config;
mod error;
mod gram;
mod int24;
mod primitive;
mod segment;
mod sign;

pub use code::{Code, Encoding};
pub use config::Config;
pub use error::Error;
pub use gram::Gram;
pub use primitive::{Mid, Seed, Signature, Vid, VidCode};
pub use segment::{Shape, segment};
pub use sign::{Signer, verify};
