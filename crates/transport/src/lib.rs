#![doc = include_str!("../README.md")]

mod adapter;
mod chunked;
mod connections;
mod error;
mod interface;
mod layer;
mod stack;
mod tls;

pub use adapter::{AdapterConfig, Done, Outgoing, Phase, Running, Signal, SocketAdapter};
pub use chunked::{Chunked, ChunkedStream};
pub use connections::{Address, Connections, Counts, Credentials, Peer, Shutdown};
pub use error::Error;
pub use interface::{Accepted, Config, Interface, Listener, Serving};
pub use layer::{Endpoint, Io, Layer, Layered, Residue, Upgrade, WrapDyn};
pub use stack::Stack;
pub use tls::{Tls, TlsClient, TlsInfo, TlsServer};
