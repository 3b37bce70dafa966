//! The limits and options of a connection.

use std::time::Duration;

use bytes::Bytes;

/// Limits and options of a [`PacketConnection`](crate::PacketConnection) and its
/// [`PacketCodec`](crate::PacketCodec). The defaults are safe and cs-compatible.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The largest packet body accepted or sent, in bytes (default 16 MiB). A length prefix
    /// over it is an error before anything is allocated.
    pub max_packet: usize,
    /// How many of this side's requests may await replies at once, per channel (default 256);
    /// [`request`](crate::PacketConnection::request) waits beyond it.
    pub max_in_flight: usize,
    /// How long a request waits for its reply (default: no limit). A late reply is counted
    /// as an orphan.
    pub request_timeout: Option<Duration>,
    /// How many handlers run at once (default 4, as cs.packetstream).
    pub max_handlers: usize,
    /// How many of the peer's requests may wait for a free handler (default 1024). Beyond
    /// it, reading pauses until a handler finishes: backpressure on the peer.
    pub max_queued_requests: usize,
    /// While more than this many bytes wait to be written, no new handler starts, and a
    /// refusal pauses reading until they drain: a peer that sends requests without reading
    /// their answers is slowed down, never buffered for without bound (default 1 MiB).
    pub write_high_water: usize,
    /// Channels other than 0 (default off). Off is cs-compatible: requests on them are
    /// refused locally, and the peer's are answered with cs's failure `unknown channel %d`.
    /// On, they work between two peers that both turned them on.
    pub channels: bool,
    /// The failure payload sent when a handler returns an error or panics (default cs's
    /// `exception during handler`).
    pub handler_failure: Bytes,
    /// How long a write waits for more packets to join it (default zero: packets made in
    /// the same wake go out in one write, and nothing waits). cs.packetstream waits 10 ms.
    pub grace: Duration,
    /// How long [`close`](crate::PacketConnection::close) waits for the peer's EOF after
    /// sending its own (default 5 s).
    pub close_timeout: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_packet: 16 << 20,
            max_in_flight: 256,
            request_timeout: None,
            max_handlers: 4,
            max_queued_requests: 1024,
            write_high_water: 1 << 20,
            channels: false,
            handler_failure: Bytes::from_static(b"exception during handler"),
            grace: Duration::ZERO,
            close_timeout: Duration::from_secs(5),
        }
    }
}
