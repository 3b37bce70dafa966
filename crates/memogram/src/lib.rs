#![doc = include_str!("../README.md")]

mod code;
mod config;
mod driver;
mod error;
mod gram;
mod int24;
mod keys;
mod link;
mod memo;
mod memory;
mod primitive;
mod reassembly;
mod segment;
mod sign;
mod trust;
mod udp;
mod wire_log;

pub use code::{Code, Encoding};
pub use config::Config;
pub use driver::{Receiver, Sender};
pub use error::Error;
pub use gram::Gram;
pub use keys::Keys;
pub use link::{Link, UDP_BUFFER, UXD_BUFFER, UxdSocket, bind_udp, bind_uxd};
pub use memo::Memo;
pub use memory::{MemoryLink, MemoryNet};
pub use primitive::{Mid, Seed, Signature, Vid, VidCode};
pub use reassembly::{GRAM_COST, MEMO_COST, Pending, Reassembly, SOURCE_COST, Stats};
pub use segment::{Shape, segment};
pub use sign::{Signer, verify};
pub use trust::{Trust, TrustHandle};
pub use udp::{RECV_BUFFER, UdpLink};
pub use wire_log::{Direction, WireLog};
