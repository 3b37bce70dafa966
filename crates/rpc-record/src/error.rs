//! [`Error`]: everything that can go wrong in rpc-record.

/// An rpc-record error. A record over a limit, or cut short by the end of the stream, is
/// best answered by closing the connection, as Ocamlnet's transport says of its errors.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An accepted record grew past [`Config::max_record`](crate::Config::max_record); found
    /// at a fragment header, before its payload was read.
    #[error("record too large: {size} bytes declared so far, the limit is {max}")]
    RecordTooLarge {
        /// The record's length so far, the fragment just announced included.
        size: u64,
        /// The limit that applied.
        max: usize,
    },
    /// A record had more fragments than [`Config::max_fragments`](crate::Config::max_fragments).
    #[error("too many fragments in one record: the limit is {max}")]
    TooManyFragments {
        /// The limit that applied.
        max: u32,
    },
    /// A record to reject was shorter than the 4 bytes of an xid. Decoding may go on with
    /// the next record.
    #[error("record of {len} bytes has no xid (4 bytes are needed to reject it)")]
    ShortRecord {
        /// The record's length.
        len: u64,
    },
    /// The stream ended inside a record.
    #[error("EOF within message ({buffered} bytes of a record were buffered)")]
    EofWithinMessage {
        /// The payload bytes of the unfinished record that had arrived (marks not counted).
        buffered: usize,
    },
    /// An I/O error from the stream.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
}
