//! [`Stats`]: what a connection has done, and what it holds now.

/// The traffic counters of a connection (what cs.packetstream's `tick` was for), and the
/// bytes it holds now against its budgets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Packets read (control packets included).
    pub packets_in: u64,
    /// Packets written or queued to be.
    pub packets_out: u64,
    /// Bytes read from the stream.
    pub bytes_in: u64,
    /// Bytes written to the stream.
    pub bytes_out: u64,
    /// Requests this side sent.
    pub requests_sent: u64,
    /// The peer's requests this side answered through its handler.
    pub requests_served: u64,
    /// The peer's requests refused (no handler, after ERQ, unknown channel, tag in use), and
    /// those dropped unanswered because they came after this side's EOF.
    pub requests_refused: u64,
    /// Responses nobody waited for: unknown tags, duplicates, late replies to cancelled or
    /// timed-out requests, responses on the wrong channel.
    pub orphans: u64,
    /// This side's requests that timed out.
    pub timeouts: u64,
    /// Now: bytes of the peer's requests held, waiting for a handler or in one, against
    /// [`Config::max_received`](crate::Config::max_received).
    pub received_bytes: usize,
    /// Now: bytes waiting to be written, against
    /// [`Config::max_unsent`](crate::Config::max_unsent).
    pub unsent_bytes: usize,
}
