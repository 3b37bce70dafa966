//! [`Config`]: the limits of a record connection.

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
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_record: 1024 * 1024 + 4096,
            max_fragments: 4096,
            fragment_size: MAX_FRAGMENT_LEN,
            max_datagram: 65_507,
            max_in_flight: 64,
        }
    }
}
