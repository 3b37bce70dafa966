//! [`Reply`]: the reply message (RFC 5531 §9), and [`ServerError`], the ways a call fails.

use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};

use crate::call::{REPLY, RPC_VERSION};
use crate::xdr::XdrReader;
use crate::{AuthStat, Error, OpaqueAuth, Xid};

/// Why a call was not executed, as a reply says it: accepted-class errors go out as
/// MSG_ACCEPTED with an accept_stat, the others as MSG_DENIED.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ServerError {
    /// MSG_ACCEPTED / PROG_UNAVAIL: the program is not served here.
    ProgUnavail,
    /// MSG_ACCEPTED / PROG_MISMATCH: the program is served, in versions `low..=high`.
    ProgMismatch {
        /// The lowest version served.
        low: u32,
        /// The highest version served.
        high: u32,
    },
    /// MSG_ACCEPTED / PROC_UNAVAIL: no such procedure.
    ProcUnavail,
    /// MSG_ACCEPTED / GARBAGE_ARGS: the arguments could not be decoded.
    GarbageArgs,
    /// MSG_ACCEPTED / SYSTEM_ERR: the server failed.
    SystemErr,
    /// MSG_DENIED / RPC_MISMATCH: RPC versions `low..=high` are spoken (always 2..=2).
    RpcMismatch {
        /// The lowest RPC version spoken.
        low: u32,
        /// The highest RPC version spoken.
        high: u32,
    },
    /// MSG_DENIED / AUTH_ERROR with its auth_stat.
    AuthError(AuthStat),
}

impl ServerError {
    /// What a server answers a call of another RPC version: RPC_MISMATCH(2..=2).
    pub const RPC_MISMATCH: ServerError = ServerError::RpcMismatch {
        low: RPC_VERSION,
        high: RPC_VERSION,
    };
}

impl fmt::Display for ServerError {
    /// One line, in RFC 5531's names: `PROG_MISMATCH(2..=3)`, `AUTH_ERROR(5)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServerError::ProgUnavail => f.write_str("PROG_UNAVAIL"),
            ServerError::ProgMismatch { low, high } => write!(f, "PROG_MISMATCH({low}..={high})"),
            ServerError::ProcUnavail => f.write_str("PROC_UNAVAIL"),
            ServerError::GarbageArgs => f.write_str("GARBAGE_ARGS"),
            ServerError::SystemErr => f.write_str("SYSTEM_ERR"),
            ServerError::RpcMismatch { low, high } => write!(f, "RPC_MISMATCH({low}..={high})"),
            ServerError::AuthError(stat) => write!(f, "AUTH_ERROR({})", stat.code()),
        }
    }
}

/// A reply: the xid of the call it answers, and either the procedure's results or why the
/// call failed.
///
/// Replies are written with an AUTH_NONE verifier; a reply's verifier is read and skipped.
///
/// ```
/// use bytes::{Bytes, BytesMut};
/// use rpc_record::{Reply, ServerError, Xid};
///
/// // rpcbind's answer to a call for version 5 of the portmapper.
/// let reply = Reply::error(Xid(0x11223344), ServerError::ProgMismatch { low: 2, high: 4 });
/// let mut wire = BytesMut::new();
/// reply.encode(&mut wire);
/// assert_eq!(wire.len(), 32);
/// assert_eq!(Reply::decode(wire.freeze())?, reply);
/// assert_eq!(reply.to_string(), "reply xid 0x11223344 PROG_MISMATCH(2..=4)");
/// # Ok::<(), rpc_record::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The xid of the call answered.
    pub xid: Xid,
    /// SUCCESS with the results (XDR the program defines), or the error.
    pub outcome: Result<Bytes, ServerError>,
}

impl Reply {
    /// MSG_ACCEPTED / SUCCESS with `results`.
    pub fn success(xid: Xid, results: Bytes) -> Reply {
        Reply {
            xid,
            outcome: Ok(results),
        }
    }

    /// A reply saying why the call failed.
    pub fn error(xid: Xid, error: ServerError) -> Reply {
        Reply {
            xid,
            outcome: Err(error),
        }
    }

    /// Writes the message (without a record mark).
    pub fn encode(&self, dst: &mut BytesMut) {
        dst.reserve(self.encoded_len());
        dst.put_u32(self.xid.0);
        dst.put_u32(REPLY);
        let accepted = |dst: &mut BytesMut, stat: u32| {
            dst.put_u32(MSG_ACCEPTED);
            OpaqueAuth::NONE.write(dst);
            dst.put_u32(stat);
        };
        match &self.outcome {
            Ok(results) => {
                accepted(dst, 0);
                dst.put_slice(results);
            }
            Err(ServerError::ProgUnavail) => accepted(dst, 1),
            Err(ServerError::ProgMismatch { low, high }) => {
                accepted(dst, 2);
                dst.put_u32(*low);
                dst.put_u32(*high);
            }
            Err(ServerError::ProcUnavail) => accepted(dst, 3),
            Err(ServerError::GarbageArgs) => accepted(dst, 4),
            Err(ServerError::SystemErr) => accepted(dst, 5),
            Err(ServerError::RpcMismatch { low, high }) => {
                dst.put_u32(MSG_DENIED);
                dst.put_u32(0);
                dst.put_u32(*low);
                dst.put_u32(*high);
            }
            Err(ServerError::AuthError(stat)) => {
                dst.put_u32(MSG_DENIED);
                dst.put_u32(1);
                dst.put_u32(stat.code());
            }
        }
    }

    /// The length of the encoded message.
    pub fn encoded_len(&self) -> usize {
        match &self.outcome {
            Ok(results) => 24 + results.len(),
            Err(ServerError::ProgMismatch { .. }) => 32,
            Err(ServerError::RpcMismatch { .. }) => 24,
            Err(ServerError::AuthError(_)) => 20,
            Err(_) => 24,
        }
    }

    /// Reads a reply message; the results are a slice of `message`.
    pub fn decode(message: Bytes) -> Result<Reply, Error> {
        let mut xdr = XdrReader::new(message, "reply");
        let xid = Xid(xdr.u32("xid")?);
        let msg_type = xdr.u32("msg_type")?;
        if msg_type != REPLY {
            return Err(Error::NotAReply { xid, msg_type });
        }
        let bad = |field, value| Error::BadValue {
            what: "reply",
            field,
            value,
        };
        let outcome = match xdr.u32("reply_stat")? {
            MSG_ACCEPTED => {
                OpaqueAuth::read(&mut xdr, "verf")?;
                match xdr.u32("accept_stat")? {
                    0 => Ok(xdr.rest()),
                    1 => Err(ServerError::ProgUnavail),
                    2 => Err(ServerError::ProgMismatch {
                        low: xdr.u32("low")?,
                        high: xdr.u32("high")?,
                    }),
                    3 => Err(ServerError::ProcUnavail),
                    4 => Err(ServerError::GarbageArgs),
                    5 => Err(ServerError::SystemErr),
                    stat => return Err(bad("accept_stat", stat)),
                }
            }
            MSG_DENIED => match xdr.u32("reject_stat")? {
                0 => Err(ServerError::RpcMismatch {
                    low: xdr.u32("low")?,
                    high: xdr.u32("high")?,
                }),
                1 => Err(ServerError::AuthError(AuthStat::from_code(
                    xdr.u32("auth_stat")?,
                ))),
                stat => return Err(bad("reject_stat", stat)),
            },
            stat => return Err(bad("reply_stat", stat)),
        };
        Ok(Reply { xid, outcome })
    }
}

const MSG_ACCEPTED: u32 = 0;
const MSG_DENIED: u32 = 1;

impl fmt::Display for Reply {
    /// `reply xid 0x11223344 SUCCESS (4 bytes of results)`, `reply xid 0x11223344 PROC_UNAVAIL`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.outcome {
            Ok(results) => write!(
                f,
                "reply {} SUCCESS ({} bytes of results)",
                self.xid,
                results.len()
            ),
            Err(error) => write!(f, "reply {} {error}", self.xid),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reply_round_trips_at_its_stated_length() {
        let errors = [
            ServerError::ProgUnavail,
            ServerError::ProgMismatch { low: 2, high: 4 },
            ServerError::ProcUnavail,
            ServerError::GarbageArgs,
            ServerError::SystemErr,
            ServerError::RPC_MISMATCH,
            ServerError::AuthError(AuthStat::TooWeak),
        ];
        let replies = errors
            .into_iter()
            .map(|e| Reply::error(Xid(9), e))
            .chain([Reply::success(Xid(9), Bytes::from_static(&[0, 0, 0, 111]))]);
        for reply in replies {
            let mut wire = BytesMut::new();
            reply.encode(&mut wire);
            assert_eq!(wire.len(), reply.encoded_len(), "{reply}");
            assert_eq!(Reply::decode(wire.freeze()).unwrap(), reply);
        }
    }

    #[test]
    fn unknown_statuses_and_cuts_are_errors() {
        let words = |w: &[u32]| -> Bytes { w.iter().flat_map(|w| w.to_be_bytes()).collect() };
        assert_eq!(
            Reply::decode(words(&[1, 1, 0, 0, 0, 9]))
                .unwrap_err()
                .to_string(),
            "reply: accept_stat 9 is not one RFC 5531 defines"
        );
        assert!(matches!(
            Reply::decode(words(&[1, 1, 2])),
            Err(Error::BadValue {
                field: "reply_stat",
                value: 2,
                ..
            })
        ));
        assert!(matches!(
            Reply::decode(words(&[1, 0])),
            Err(Error::NotAReply { msg_type: 0, .. })
        ));
        let mut wire = BytesMut::new();
        Reply::error(Xid(1), ServerError::ProgMismatch { low: 1, high: 3 }).encode(&mut wire);
        for cut in 0..wire.len() {
            assert!(matches!(
                Reply::decode(wire.clone().freeze().slice(..cut)),
                Err(Error::Malformed { what: "reply", .. })
            ));
        }
    }
}
