#![doc = include_str!("../README.md")]

mod admission;
mod auth;
mod budget;
mod call;
mod client;
mod codec;
mod config;
mod datagram;
mod decoder;
#[cfg(test)]
mod decoder_tests;
mod encoder;
mod error;
mod flights;
mod mark;
mod peer;
pub mod pmap;
mod reply;
mod reply_cache;
mod rpcbind;
mod server;
mod service;
mod stream;
pub mod xdr;

pub use admission::{AcceptAll, Admission, Fragment, Record, Rule, Xid};
pub use auth::{
    AUTH_NONE, AUTH_SYS, AuthStat, AuthSys, MAX_AUTH_BODY, MAX_GIDS, MAX_MACHINE_NAME, OpaqueAuth,
};
pub use budget::Budget;
pub use call::{Call, RPC_VERSION};
pub use client::Client;
pub use codec::RecordCodec;
pub use config::Config;
pub use datagram::{DatagramSocket, RecordDatagram};
pub use decoder::RecordDecoder;
pub use encoder::encode_record;
pub use error::Error;
pub use mark::{MAX_FRAGMENT_LEN, Mark};
pub use peer::{Peer, PeerAddr};
pub use reply::{Reply, ServerError};
pub use rpcbind::{Registration, Rpcbind};
pub use server::{serve_datagram, serve_stream};
pub use service::{Answer, CallContext, Outcome, OutcomeFuture, Program, Service};
pub use stream::RecordStream;

#[doc(hidden)]
pub use bytes as __bytes;
