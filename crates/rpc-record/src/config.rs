//! [`Config`]: the limits of a record connection.

use std::time::Duration;

use crate::MAX_FRAGMENT_LEN;

/// Limits for decoding and the fragment size for encoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The longest record accepted, in bytes, checked against the running total at every
    /// fragment header before its payload is read. Records that the admission rule drops,
    /// denies or rejects are discarded as they stream past and are not bound by it.
    /// Default 1 MiB + 4 KiB, the Linux server's limit.
    pub max_record: usize,
    /// The most fragments one record may have, whatever the rule: a peer sending empty
    /// fragments forever is stopped here. Default 4096 (a 1 MiB record in 256-byte pieces).
    pub max_fragments: u32,
    /// The largest fragment the encoder writes; longer records are split. Default
    /// [`MAX_FRAGMENT_LEN`]: one fragment per record, as rpcbind, rpcinfo and the Linux
    /// kernel send, and as rpcbind requires of calls. Values below 1 count as 1.
    pub fragment_size: u32,
    /// The longest datagram sent or received by a [`RecordDatagram`](crate::RecordDatagram);
    /// a longer one received is reported and dropped. Default 65 507, the most an IPv4 UDP
    /// datagram carries (libtirpc's own default is 8800, rpcbind's 9000).
    pub max_datagram: usize,
    /// How many calls a [`Client`](crate::Client) lets wait for replies at once; more wait
    /// for a turn. Default 64.
    pub max_in_flight: usize,
    /// How many bytes of replies a server lets wait for a peer that does not read them:
    /// beyond it, [`serve_stream`](crate::serve_stream) reads no more calls until they are
    /// sent. Default 256 KiB; values below 1 count as 1 (reading stops after each reply
    /// until it is sent).
    pub max_unsent: usize,
    /// The bytes all the connections of one server may hold between them (records being
    /// read, replies not yet sent, read windows): the size of the [`Budget`](crate::Budget)
    /// a server makes. Default 64 MiB.
    pub server_budget: usize,
    /// How long a record may take to arrive once its first byte has, before the stream
    /// fails with [`Error::RecordTimeout`](crate::Error::RecordTimeout): a peer cannot hold
    /// a half-sent record, and the budget it took, for ever. `None`: no limit. Default 30 s.
    pub record_timeout: Option<Duration>,
    /// How long a [`Client`](crate::Client) call may wait for its reply, retransmissions
    /// included, before it fails with [`Error::Timeout`](crate::Error::Timeout) (rpcgen's
    /// clients wait 25 s). `None`: no limit. Default 25 s.
    pub call_timeout: Option<Duration>,
    /// How many calls a server runs at once on one connection (or one datagram socket):
    /// handlers run concurrently and reply in the order they finish; beyond it, no more
    /// calls are read until one finishes. Default 64; values below 1 count as 1.
    pub max_calls: usize,
    /// How long [`serve_stream`](crate::serve_stream) waits, once the peer has closed its
    /// side, for the calls of that connection that still run: then they are dropped (their
    /// handlers' futures cancelled) and the connection ends, so that a handler that never
    /// finishes cannot hold a closed connection for ever. `None`: no limit. Default 30 s.
    pub drain_timeout: Option<Duration>,
    /// How long [`serve_stream`](crate::serve_stream) keeps polling a connection that has
    /// nothing to do, after its last call, before it waits for the kernel to wake it: the
    /// next call is then taken without a sleep and a wake-up, which on a loopback or fast
    /// link costs more than the call itself. It trades CPU for latency, as Linux's
    /// `SO_BUSY_POLL` does: each connection spins for up to this long after each burst, so
    /// it suits a few busy connections, not many idle ones. `None` (the default): never.
    pub busy_poll: Option<Duration>,
    /// Whether [`serve_stream`](crate::serve_stream) writes replies while a burst of calls
    /// is still being read (the default): the first write once 1 KiB of replies wait, later
    /// ones once 4 KiB and a third of the burst so far. A peer with many calls in flight
    /// gets its first replies early and sends more while the rest are answered, as the C
    /// servers' one write a reply lets it. `false`: the replies of a burst go out together
    /// once no call is left to read, which costs fewer writes (less CPU a call when client
    /// and server share a core, about a third less in `strata bench rpc`), but leaves such a
    /// peer waiting for the whole burst.
    pub early_replies: bool,
    /// How many replies a datagram server keeps to answer a retransmitted call without
    /// running it again (the duplicate-request cache); 0 turns it off. Default 256. One
    /// source keeps at most a quarter of them (and of `reply_cache_bytes`): past its share it
    /// loses its own oldest, and a full cache takes from the source holding the most, so a
    /// flood of calls from one source does not push out another's replies.
    pub reply_cache: usize,
    /// The bytes those replies may take between them. Default 1 MiB. A reply longer than a
    /// source's share (a quarter of this) is not kept.
    pub reply_cache_bytes: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_record: 1024 * 1024 + 4096,
            max_fragments: 4096,
            fragment_size: MAX_FRAGMENT_LEN,
            max_datagram: 65_507,
            max_in_flight: 64,
            max_unsent: 256 * 1024,
            server_budget: 64 * 1024 * 1024,
            record_timeout: Some(Duration::from_secs(30)),
            call_timeout: Some(Duration::from_secs(25)),
            max_calls: 64,
            drain_timeout: Some(Duration::from_secs(30)),
            busy_poll: None,
            early_replies: true,
            reply_cache: 256,
            reply_cache_bytes: 1024 * 1024,
        }
    }
}
