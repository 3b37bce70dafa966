//! [`WireLog`]: a hook that sees every datagram a sender sends or a receiver receives (hio's
//! `wl`), for debugging; off by default.

use std::fmt;
use std::sync::Arc;

/// Which way a datagram went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Sent by a [`Sender`](crate::Sender).
    Sent,
    /// Received by a [`Receiver`](crate::Receiver), before it was checked.
    Received,
}

/// A wire log: called with the direction, the peer's address and the bytes of every
/// datagram, on the task that sends or receives it (keep it quick). Off unless given to
/// [`Sender::wire_log`](crate::Sender::wire_log) or
/// [`Receiver::wire_log`](crate::Receiver::wire_log).
///
/// ```
/// use memogram::{Direction, WireLog};
///
/// let log: WireLog<std::net::SocketAddr> = WireLog::new(|direction, peer, bytes| {
///     eprintln!("{direction:?} {peer} {}", String::from_utf8_lossy(bytes));
/// });
/// # let _ = log;
/// ```
pub struct WireLog<A>(Arc<LogFn<A>>);

/// What a [`WireLog`] calls.
type LogFn<A> = dyn Fn(Direction, &A, &[u8]) + Send + Sync;

impl<A> WireLog<A> {
    /// A wire log that calls `f`.
    pub fn new(f: impl Fn(Direction, &A, &[u8]) + Send + Sync + 'static) -> WireLog<A> {
        WireLog(Arc::new(f))
    }

    pub(crate) fn log(&self, direction: Direction, peer: &A, datagram: &[u8]) {
        (self.0)(direction, peer, datagram);
    }
}

impl<A> Clone for WireLog<A> {
    fn clone(&self) -> Self {
        WireLog(Arc::clone(&self.0))
    }
}

impl<A> fmt::Debug for WireLog<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WireLog")
    }
}
