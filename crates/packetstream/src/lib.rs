#![doc = include_str!("../README.md")]

mod batch;
mod bsuint;
mod call;
mod codec;
mod config;
mod connection;
mod driver;
mod error;
mod handler;
mod in_flight;
mod packet;
mod pipeline;
mod reply;
mod serving;
mod session;
#[cfg(fuzzing)]
#[doc(hidden)]
pub mod session_fuzz;
mod shared;
mod stats;

pub use call::Call;
pub use codec::PacketCodec;
pub use config::{Config, MIN_PACKET, REQUEST_COST};
pub use connection::PacketConnection;
pub use error::{Ended, Error};
pub use handler::Request;
pub use packet::{MAX_REQUEST_FLAGS, MAX_RESPONSE_FLAGS, MAX_RQ_TYPE, Packet};
pub use pipeline::Pipeline;
pub use reply::{Reply, Response};
pub use stats::Stats;
