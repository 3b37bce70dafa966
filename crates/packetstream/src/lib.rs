#![doc = include_str!("../README.md")]

mod bsuint;
mod codec;
mod config;
mod connection;
mod driver;
mod error;
mod handler;
mod packet;
mod pipeline;
mod reply;
mod session;
mod shared;

pub use codec::PacketCodec;
pub use config::Config;
pub use connection::PacketConnection;
pub use error::{Ended, Error};
pub use packet::{MAX_REQUEST_FLAGS, MAX_RESPONSE_FLAGS, MAX_RQ_TYPE, Packet};
pub use pipeline::Pipeline;
pub use reply::{Reply, Response};
pub use shared::Stats;
