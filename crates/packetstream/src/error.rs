//! The one error type of the crate.

use std::io;
use std::sync::Arc;
use std::time::Duration;

/// What went wrong on a packet connection, and the limit that applied.
///
/// Cheap to clone, so that one failure of the link can be handed to every request that was
/// waiting on it.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A BSUInt on the wire needs more than 64 bits.
    #[error("a BSUInt on the wire needs more than 64 bits (the limit is u64::MAX)")]
    VarintOverflow,
    /// A length prefix (or a packet to send) is larger than [`Config::max_packet`](crate::Config::max_packet).
    #[error("a packet body of {len} bytes exceeds max_packet ({max} bytes)")]
    PacketTooLarge {
        /// The body length the prefix announced.
        len: u64,
        /// The limit in force.
        max: usize,
    },
    /// A packet body ends inside one of its integers.
    #[error("a packet body of {len} bytes ends inside its {field}")]
    Malformed {
        /// The body length.
        len: usize,
        /// The field that was cut: `tag`, `flagsword`, `channel` or `rq_type`.
        field: &'static str,
    },
    /// The stream ended in the middle of a packet.
    #[error("the stream ended inside a packet ({buffered} bytes of it had arrived)")]
    Truncated {
        /// How many bytes of the unfinished packet were buffered.
        buffered: usize,
    },
    /// Flags too large for the flagsword.
    #[error("flags {flags:#x} do not fit in the flagsword (at most {max:#x})")]
    FlagsTooLarge {
        /// The flags asked for.
        flags: u64,
        /// The largest that fits.
        max: u64,
    },
    /// An rq_type of `u64::MAX`: the wire carries rq_type + 1.
    #[error("rq_type {rq_type} cannot be sent: the wire carries rq_type + 1 (at most {})", u64::MAX - 1)]
    RqTypeTooLarge {
        /// The rq_type asked for.
        rq_type: u64,
    },
    /// A request on a channel other than 0 while channels are off (cs-compatible mode).
    #[error("unknown channel {channel}: only channel 0 exists unless Config::channels is on")]
    UnknownChannel {
        /// The channel asked for.
        channel: u64,
    },
    /// A new request after [`close`](crate::PacketConnection::close) began: ERQ has been sent.
    #[error("the connection is closing: it sent ERQ and takes no new requests")]
    Closing,
    /// Every tag below `u64::MAX` has been issued on this connection.
    #[error("no tag is left on this connection: every one below u64::MAX was issued")]
    TagsExhausted,
    /// A [`Config`](crate::Config) that cannot work, refused when a connection is made.
    #[error("Config::{field}: {reason}")]
    Config {
        /// The field at fault.
        field: &'static str,
        /// What is wrong with it, and the limit that applies.
        reason: String,
    },
    /// The connection was cut by [`abort`](crate::PacketConnection::abort).
    #[error("the connection was aborted on this side")]
    Aborted,
    /// The connection ended before the reply came.
    #[error("the connection ended before the reply came: {0}")]
    Ended(Ended),
    /// No reply within [`Config::request_timeout`](crate::Config::request_timeout).
    #[error("no reply within the request timeout of {0:?}")]
    Timeout(Duration),
    /// The close did not finish within [`Config::close_timeout`](crate::Config::close_timeout)
    /// (a handler still running, the peer not reading what was left to write, or no EOF from
    /// the peer), so the connection was cut.
    #[error("the close did not finish within its deadline of {0:?}: the connection was cut")]
    CloseTimeout(Duration),
    /// Reading or writing the stream failed.
    #[error("i/o error on the stream: {0}")]
    Io(Arc<io::Error>),
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        Error::Io(Arc::new(e))
    }
}

/// Why a connection ended, as seen by a request that was still waiting.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Ended {
    /// The peer sent EOF (or a "malformed EOF": a request with wire rq_type 0).
    #[error("the peer sent EOF")]
    PeerEof,
    /// The stream ended at a packet boundary without an EOF packet.
    #[error("the stream ended without an EOF packet")]
    StreamEnd,
    /// The connection was closed on this side.
    #[error("the connection was closed on this side")]
    Local,
    /// The connection was cut by [`abort`](crate::PacketConnection::abort).
    #[error("the connection was aborted on this side")]
    Aborted,
    /// The connection's task was dropped before the connection ended: the runtime it was
    /// spawned on shut down.
    #[error(
        "the connection's task was dropped before the connection ended (its runtime shut down)"
    )]
    TaskDropped,
    /// The connection failed.
    #[error("{0}")]
    Failed(Arc<Error>),
}
