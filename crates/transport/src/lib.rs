#![doc = include_str!("../README.md")]

mod adapter;
mod chunked;
mod config;
mod connections;
mod error;
mod interface;
mod layer;
mod stack;
mod tls;

pub use adapter::{Done, Outgoing, Phase, Running, Signal, SocketAdapter};
pub use chunked::{Chunked, ChunkedStream};
pub use config::{AdapterConfig, Config};
pub use connections::{Address, Connections, Counts, Credentials, Peer, Shutdown};
pub use error::Error;
pub use interface::{Accepted, Interface, Listener, Serving};
pub use layer::{Endpoint, Io, Layer, Layered, Residue, Upgrade, WrapDyn};
pub use stack::Stack;
pub use tls::{Tls, TlsClient, TlsInfo, TlsServer};
