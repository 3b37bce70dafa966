//! Strata: focused I/O layers for people who build their own network links.
//!
//! This facade re-exports each layer as a module, behind a cargo feature of the same name
//! (all on by default). Depend on a layer's own crate instead to pull in only that layer.
//!
//! | module | crate | what it owns |
//! | --- | --- | --- |
//! | [`flows`] | `kernel-flows` | flow channels, series, valves, request correlation |
//! | [`transport`] | `strata-transport` | protocol stacks over a byte stream: TLS pushed and peeled on a live connection, ordered close |
//! | [`packetstream`] | `packetstream` | a request/response packet connection, wire-compatible with cs.packetstream 20240630 |
//! | [`memogram`] | `memogram` | memos cut into grams over UDP and Unix datagram sockets, reassembled, optionally Ed25519-signed, wire-compatible with hio 0.7.20 |
//! | [`rpc_record`] | `rpc-record` | ONC RPC record marking with per-fragment admission, stream and datagram transporters, as rpcbind, rpcinfo and libtirpc speak it |
//!
//! ```
//! # #[cfg(feature = "flows")] {
//! use strata::flows::{Reason, Valve};
//! let valve = Valve::new("tx");
//! let hold = valve.hold(Reason::new("operator", "paused"));
//! assert!(!valve.is_open());
//! drop(hold);
//! assert!(valve.is_open());
//! # }
//! ```

/// Flow channels: the `kernel-flows` crate.
#[cfg(feature = "flows")]
pub use kernel_flows as flows;

/// Protocol stacks over a byte stream: the `strata-transport` crate.
#[cfg(feature = "transport")]
pub use strata_transport as transport;

/// The packet connection: the `packetstream` crate.
#[cfg(feature = "packetstream")]
pub use packetstream;

/// Memos over datagram sockets: the `memogram` crate.
#[cfg(feature = "memogram")]
pub use memogram;

/// ONC RPC record marking and transporters: the `rpc-record` crate.
#[cfg(feature = "rpc-record")]
pub use rpc_record;

/// The README's code, run as doctests so that what it shows keeps compiling and working.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
