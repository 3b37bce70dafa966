//! [`Error`]: everything that can go wrong in rpc-record.

/// An rpc-record error. A record over a limit, or cut short by the end of the stream, is
/// best answered by closing the connection, as Ocamlnet's transport says of its errors.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
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
    /// The stream ended inside a record (Ocamlnet's "EOF within message").
    #[error("EOF within message ({buffered} bytes of a record were buffered)")]
    Truncated {
        /// The payload bytes of the unfinished record that had arrived (marks not counted).
        buffered: usize,
    },
    /// A whole message that ends inside `field`.
    #[error("{what}: the message ends inside its {field}")]
    Malformed {
        /// What was being read: `call`, `reply`, `PMAPPROC_DUMP result`.
        what: &'static str,
        /// The field that was cut.
        field: &'static str,
    },
    /// A variable-length field was longer than its limit.
    #[error("{what}: {field} is {len} bytes long, the limit is {max}")]
    FieldTooLong {
        /// What was being read or built.
        what: &'static str,
        /// The field.
        field: &'static str,
        /// Its length.
        len: u32,
        /// The limit that applied.
        max: u32,
    },
    /// A field held a value the protocol does not define.
    #[error("{what}: {field} {value} is not one RFC 5531 defines")]
    BadValue {
        /// What was being read.
        what: &'static str,
        /// The field.
        field: &'static str,
        /// The value found.
        value: u32,
    },
    /// A field was not the XDR encoding of its type.
    #[error("{what}: {field}: {error}")]
    Xdr {
        /// What was being read.
        what: &'static str,
        /// The field.
        field: &'static str,
        /// Why it is not.
        error: crate::xdr::XdrError,
    },
    /// A server refused a call it was needed for.
    #[error("{what} refused the call: {why}")]
    Refused {
        /// The server: `rpcbind`.
        what: &'static str,
        /// Its reply.
        why: crate::ServerError,
    },
    /// rpcbind did not take a registration (another server holds it).
    #[error("rpcbind did not register program {prog} version {vers} over {netid}")]
    NotRegistered {
        /// The program.
        prog: u32,
        /// The version.
        vers: u32,
        /// The transport.
        netid: String,
    },
    /// A call was expected and the message is not one.
    #[error("{xid}: msg_type {msg_type} where a call (0) was expected")]
    NotACall {
        /// The message's xid.
        xid: crate::Xid,
        /// Its msg_type.
        msg_type: u32,
    },
    /// A reply was expected and the message is not one.
    #[error("{xid}: msg_type {msg_type} where a reply (1) was expected")]
    NotAReply {
        /// The message's xid.
        xid: crate::Xid,
        /// Its msg_type.
        msg_type: u32,
    },
    /// A call of an RPC version other than 2: a server answers RPC_MISMATCH(2..=2), which
    /// Ocamlnet 4.1.9 does not (it answers SYSTEM_ERR) and rpcbind does not (it closes).
    #[error("{xid}: RPC version {rpcvers}, only version 2 is spoken")]
    RpcVersion {
        /// The call's xid.
        xid: crate::Xid,
        /// The version it asked for.
        rpcvers: u32,
    },
    /// Nothing moved on the stream for this long (see `RecordStream::set_timeout`). Only a
    /// notification: the operation can be called again.
    #[error("inactive: no byte moved for {0:?}")]
    Inactive(std::time::Duration),
    /// A record began and did not end within
    /// [`Config::record_timeout`](crate::Config::record_timeout).
    #[error("a record took longer than {0:?} to arrive")]
    RecordTimeout(std::time::Duration),
    /// A reply to this call was longer than [`Config::max_record`](crate::Config::max_record):
    /// it was discarded as it streamed past and only this call failed.
    #[error("the reply to {xid} is {size} bytes or more, the limit is {max}")]
    ReplyTooLarge {
        /// The call's xid.
        xid: crate::Xid,
        /// The reply's length as far as it was declared when it was refused.
        size: u64,
        /// The limit that applied.
        max: usize,
    },
    /// A close (shutdown: our half-close, then the peer's EOF) did not finish within its
    /// linger time.
    #[error("the close did not finish within its deadline of {0:?}: no EOF from the peer")]
    CloseTimeout(std::time::Duration),
    /// A datagram longer than [`Config::max_datagram`](crate::Config::max_datagram), received
    /// (and dropped) or refused for sending.
    #[error("datagram too large: {len} bytes, the limit is {max}")]
    DatagramTooLarge {
        /// Its length (for one received: at least this).
        len: usize,
        /// The limit that applied.
        max: usize,
    },
    /// A datagram went out shorter than it was.
    #[error("datagram cut short: {sent} of {len} bytes sent")]
    DatagramCut {
        /// Bytes sent.
        sent: usize,
        /// The datagram's length.
        len: usize,
    },
    /// The connection ended before the reply came; the error says how it ended.
    #[error("the connection ended before the reply: {0}")]
    Ended(std::sync::Arc<Error>),
    /// The peer closed the connection cleanly.
    #[error("the peer closed the connection")]
    PeerClosed,
    /// No reply came in time.
    #[error("no reply within {0:?}")]
    Timeout(std::time::Duration),
    /// A client has used every xid it may (2^31 and more calls): make a new one.
    #[error("this client has used all its xids")]
    XidsExhausted,
    /// An I/O error from the stream.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
}
