//! The limits of the crate's two servers: [`Config`] for an [`Interface`](crate::Interface)
//! and [`AdapterConfig`] for a [`SocketAdapter`](crate::SocketAdapter).
//!
//! A [`Stack`](crate::Stack) takes none: each layer carries its own (a TLS layer its rustls
//! configuration, [`Chunked`](crate::Chunked) its chunk limit).

use std::time::Duration;

/// Limits of an [`Interface`](crate::Interface).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// How many connections may be live at once (default 1024; 0 counts as 1). At the limit
    /// the listeners stop accepting; new connections wait in the kernel's backlog.
    pub max_connections: usize,
    /// How long a TLS handshake may take before the connection is dropped (default 10 s).
    pub handshake_timeout: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_connections: 1024,
            handshake_timeout: Duration::from_secs(10),
        }
    }
}

/// Sizes and the idle timeout of a [`SocketAdapter`](crate::SocketAdapter).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdapterConfig {
    /// How many frames the inbox holds (default 64; 0 counts as 1): sends wait beyond it.
    pub inbox: usize,
    /// How many decoded frames the outbox holds (default 64; 0 counts as 1): reading the
    /// socket stops while it is full.
    pub outbox: usize,
    /// While this many encoded bytes or more wait to be written, no frame is taken from the
    /// inbox (default 64 KiB; 0 counts as 1: one frame at a time).
    pub write_high_water: usize,
    /// Notify (in [`Signal::idle`](crate::Signal::idle)) when nothing was read or written for
    /// this long (default: never).
    pub idle_timeout: Option<Duration>,
    /// How long an upgrade's handshake may take before the adapter faults with
    /// [`Error::HandshakeTimeout`](crate::Error::HandshakeTimeout) (default 10 s).
    pub handshake_timeout: Duration,
}

impl Default for AdapterConfig {
    fn default() -> Self {
        AdapterConfig {
            inbox: 64,
            outbox: 64,
            write_high_water: 64 * 1024,
            idle_timeout: None,
            handshake_timeout: Duration::from_secs(10),
        }
    }
}
