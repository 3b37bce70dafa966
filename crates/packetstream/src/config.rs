//! The limits and options of a connection, and the check that they can work.

use std::time::Duration;

use bytes::Bytes;

use crate::Error;

/// The smallest [`Config::max_packet`]: room for every refusal cs.packetstream sends, with
/// the longest tag and channel.
pub const MIN_PACKET: usize = 128;

/// What one request held by this side counts for beyond its bytes: its place in the queue
/// and in the set of tags in use. So that a flood of empty requests is bounded as tightly as
/// a few large ones.
pub const REQUEST_COST: usize = 128;

/// Limits and options of a [`PacketConnection`](crate::PacketConnection). The defaults are
/// safe against a peer this side does not control, and cs-compatible.
///
/// Whatever the peer can make a connection hold is bounded in bytes:
/// [`max_received`](Config::max_received) for its requests waiting for or inside a handler,
/// [`max_unsent`](Config::max_unsent) for the bytes waiting to be written. When either is
/// full, reading stops: the peer's writes stall, and nothing more is buffered for it. A
/// handler starts only while fewer than `max_unsent` bytes wait (its reply counted as soon
/// as it is made), so those can exceed `max_unsent` by the reply that crossed it and those of
/// the handlers still running then: at most [`max_handlers`](Config::max_handlers) ` + 1`
/// replies of [`max_packet`](Config::max_packet). A connection therefore holds at most about
/// `max_received + max_unsent + (max_handlers + 1) × max_packet` for its peer, plus one
/// packet read and not yet taken, and 64 KiB read ahead.
///
/// [`validate`](Config::validate) refuses a config that cannot work, naming the field; every
/// constructor calls it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The largest packet body accepted or sent, in bytes (default 4 MiB, at least
    /// [`MIN_PACKET`]). A length prefix over it ends the connection before anything is
    /// allocated for it.
    pub max_packet: usize,
    /// How many of this side's requests may await their responses at once, over every
    /// channel and every way of sending (default 256). Sending waits for room beyond it.
    pub max_in_flight: usize,
    /// How long a request waits for its response once it is sent (default: no limit). A
    /// request that times out frees its place at once; a late response is counted as an
    /// orphan.
    pub request_timeout: Option<Duration>,
    /// How many handlers run at once (default 4, as cs.packetstream).
    pub max_handlers: usize,
    /// How many bytes of the peer's requests this side holds while they wait for a handler or
    /// are in one, each counted as its packet's length plus [`REQUEST_COST`] (default 8 MiB,
    /// at least `max_packet`). When the next request does not fit, reading stops until
    /// handlers finish.
    pub max_received: usize,
    /// How many bytes may wait to be written: replies, refusals and this side's own requests
    /// (default 8 MiB, at least `max_packet`). Beyond it no handler starts, no request of the
    /// peer is read, and sending a request waits: a peer that does not read its answers
    /// stalls, and is never buffered for without bound.
    pub max_unsent: usize,
    /// Channels other than 0 (default off). Off is cs-compatible: requests on them are
    /// refused locally, and the peer's are answered with cs's failure `unknown channel %d`.
    /// On, they work between two peers that both turned them on.
    pub channels: bool,
    /// The failure payload sent when a handler returns an error or panics (default cs's
    /// `exception during handler`). At most `max_packet - 32` bytes, so that it always fits.
    pub handler_failure: Bytes,
    /// How long a write waits for more packets to join it (default zero: packets made in the
    /// same wake go out in one write, and nothing waits). cs.packetstream waits 10 ms.
    pub grace: Duration,
    /// The deadline of a close (default 5 s), from the moment it begins, by
    /// [`close`](crate::PacketConnection::close), by the last handle's drop, or by the peer's
    /// EOF: sending ERQ, letting handlers finish, writing their replies and EOF, and waiting
    /// for the peer's EOF must all be done by then. Past it the connection is cut.
    pub close_timeout: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_packet: 4 << 20,
            max_in_flight: 256,
            request_timeout: None,
            max_handlers: 4,
            max_received: 8 << 20,
            max_unsent: 8 << 20,
            channels: false,
            handler_failure: Bytes::from_static(b"exception during handler"),
            grace: Duration::ZERO,
            close_timeout: Duration::from_secs(5),
        }
    }
}

impl Config {
    /// Checks that a connection can work with these limits: every budget holds at least one
    /// packet, at least one handler and one request in flight are allowed, the failure
    /// payload fits in a packet. The error names the field.
    pub fn validate(&self) -> Result<(), Error> {
        let refuse = |field: &'static str, reason: String| Err(Error::Config { field, reason });
        if self.max_packet < MIN_PACKET {
            return refuse(
                "max_packet",
                format!(
                    "{} is below the least that works, {MIN_PACKET} bytes",
                    self.max_packet
                ),
            );
        }
        if self.max_in_flight == 0 {
            return refuse("max_in_flight", "0 would never let a request out".into());
        }
        if self.max_handlers == 0 {
            return refuse("max_handlers", "0 would never answer a request".into());
        }
        for (field, budget) in [
            ("max_received", self.max_received),
            ("max_unsent", self.max_unsent),
        ] {
            if budget < self.max_packet {
                return refuse(
                    field,
                    format!(
                        "{budget} bytes cannot hold one packet of max_packet ({} bytes)",
                        self.max_packet
                    ),
                );
            }
        }
        if self.handler_failure.len() > self.max_packet - 32 {
            return refuse(
                "handler_failure",
                format!(
                    "{} bytes do not fit in a packet of max_packet ({} bytes) with its head",
                    self.handler_failure.len(),
                    self.max_packet
                ),
            );
        }
        if self.request_timeout == Some(Duration::ZERO) {
            return refuse(
                "request_timeout",
                "zero would fail every request; use None for no limit".into(),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(config: Config) -> &'static str {
        match config.validate() {
            Err(Error::Config { field, .. }) => field,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn the_default_works() {
        Config::default().validate().unwrap();
    }

    #[test]
    fn configs_that_cannot_work_are_refused_by_field() {
        let d = Config::default;
        assert_eq!(
            field(Config {
                max_packet: 16,
                ..d()
            }),
            "max_packet"
        );
        assert_eq!(
            field(Config {
                max_in_flight: 0,
                ..d()
            }),
            "max_in_flight"
        );
        assert_eq!(
            field(Config {
                max_handlers: 0,
                ..d()
            }),
            "max_handlers"
        );
        assert_eq!(
            field(Config {
                max_received: 0,
                ..d()
            }),
            "max_received"
        );
        assert_eq!(
            field(Config {
                max_unsent: 1000,
                ..d()
            }),
            "max_unsent"
        );
        let huge = Bytes::from(vec![b'x'; 200]);
        let small = Config {
            max_packet: 200,
            max_received: 200,
            max_unsent: 200,
            ..d()
        };
        assert_eq!(
            field(Config {
                handler_failure: huge,
                ..small
            }),
            "handler_failure"
        );
        let zero = Some(Duration::ZERO);
        assert_eq!(
            field(Config {
                request_timeout: zero,
                ..d()
            }),
            "request_timeout"
        );
        let message = Config {
            max_unsent: 1000,
            ..d()
        }
        .validate()
        .unwrap_err()
        .to_string();
        assert!(
            message.contains("max_unsent") && message.contains("1000"),
            "{message}"
        );
    }
}
