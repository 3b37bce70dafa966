//! [`Program`]: a server that answers pings for one program, as rpcbind answers them, and
//! the loops that serve it over a stream or datagram transporter.

use std::collections::BTreeSet;
use std::future::poll_fn;
use std::task::Poll;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite};
use tracing::{debug, trace, warn};

/// How long [`serve_datagram`] pauses after a failed receive.
const ERROR_PAUSE: std::time::Duration = std::time::Duration::from_millis(10);

use crate::{
    AcceptAll, AuthStat, Call, DatagramSocket, Error, Record, RecordDatagram, RecordStream, Reply,
    ServerError,
};

/// A program that answers procedure 0 (NULL) of its versions: what `rpcinfo` pings.
///
/// Every other call gets the reply rpcbind would give: PROG_UNAVAIL for another program,
/// PROG_MISMATCH(lowest, highest) for a version not served, PROC_UNAVAIL for another
/// procedure, AUTH_ERROR(REJECTEDCRED) for a credential flavor other than AUTH_NONE and
/// AUTH_SYS, and RPC_MISMATCH(2, 2) for a call of another RPC version (where rpcbind closes
/// the connection and Ocamlnet answers SYSTEM_ERR).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Program {
    prog: u32,
    versions: BTreeSet<u32>,
}

impl Program {
    /// Program `prog` in `versions`. With no version, every call is PROG_UNAVAIL.
    pub fn new(prog: u32, versions: impl IntoIterator<Item = u32>) -> Program {
        Program {
            prog,
            versions: versions.into_iter().collect(),
        }
    }

    /// The reply to `message`, or `None` for a message not worth one (not a call, or cut
    /// before its header ends), as libtirpc stays silent then.
    pub fn answer(&self, message: Bytes) -> Option<Reply> {
        let call = match Call::decode(message) {
            Ok(call) => call,
            Err(Error::RpcVersion { xid, rpcvers }) => {
                debug!(%xid, rpcvers, "another RPC version: RPC_MISMATCH");
                return Some(Reply::error(xid, ServerError::RPC_MISMATCH));
            }
            Err(e) => {
                debug!(error = %e, "not a call: no reply");
                return None;
            }
        };
        trace!(%call, "in");
        let outcome = if !matches!(call.cred.flavor(), 0 | 1) {
            Err(ServerError::AuthError(AuthStat::RejectedCred))
        } else if call.prog != self.prog || self.versions.is_empty() {
            Err(ServerError::ProgUnavail)
        } else if !self.versions.contains(&call.vers) {
            let low = self.versions.first().copied().unwrap_or_default();
            let high = self.versions.last().copied().unwrap_or_default();
            Err(ServerError::ProgMismatch { low, high })
        } else if call.procedure != 0 {
            Err(ServerError::ProcUnavail)
        } else {
            Ok(Bytes::new())
        };
        Some(Reply {
            xid: call.xid,
            outcome,
        })
    }
}

/// Serves `program` on a stream until the peer closes it: `Ok` when it ends between
/// records. Replies to calls that came in one read go out in one write.
///
/// Backpressure: while more than [`Config::max_unsent`](crate::Config::max_unsent) bytes of
/// replies wait for a peer that does not read them, no more calls are read (they wait in
/// the kernel, then in the peer). With [`RecordStream::with_budget`], reading also waits for
/// the server's budget. Cancel-safe: dropping the future leaves the stream as it was, calls
/// read and replies queued included, ready for [`RecordStream::shutdown`].
pub async fn serve_stream<T>(stream: &mut RecordStream<T>, program: &Program) -> Result<(), Error>
where
    T: AsyncRead + AsyncWrite + Unpin,
{
    let mut scratch = BytesMut::new();
    let mut ended = false;
    poll_fn(|cx| {
        loop {
            let backed_up = stream.unsent() >= stream.max_unsent;
            if !ended && !backed_up {
                match stream.poll_read_with(cx, &mut AcceptAll) {
                    Poll::Ready(Ok(Some(Record::Accept(message)))) => {
                        if let Some(reply) = program.answer(message) {
                            scratch.clear();
                            reply.encode(&mut scratch);
                            trace!(%reply, "out");
                            stream.feed(&scratch);
                        }
                        continue;
                    }
                    Poll::Ready(Ok(_)) => ended = true,
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                    Poll::Pending => {}
                }
            }
            // Nothing more to read for now, or too much unsent: send what was answered.
            std::task::ready!(stream.poll_flush(cx))?;
            if backed_up {
                // All sent: read again.
                continue;
            }
            return match ended {
                true => Poll::Ready(Ok(())),
                false => Poll::Pending,
            };
        }
    })
    .await
}

/// Serves `program` on a datagram socket, answering each call at its source, for ever (drop
/// the future to stop). Datagrams too large or not calls are skipped; a failed receive or
/// send is traced and survived, the loop pausing 10 ms after a failed receive so
/// that an error that persists costs no CPU.
pub async fn serve_datagram<S: DatagramSocket>(
    socket: &mut RecordDatagram<S>,
    program: &Program,
) -> Result<(), Error> {
    let mut scratch = BytesMut::new();
    loop {
        let (message, source) = match socket.recv().await {
            Ok(received) => received,
            Err(e @ Error::DatagramTooLarge { .. }) => {
                debug!(error = %e, "skipped");
                continue;
            }
            Err(e) => {
                warn!(error = %e, "receive failed: going on");
                tokio::time::sleep(ERROR_PAUSE).await;
                continue;
            }
        };
        if let Some(reply) = program.answer(message) {
            scratch.clear();
            reply.encode(&mut scratch);
            if let Err(e) = socket.send_to(&scratch, &source).await {
                debug!(%source, error = %e, "reply not sent");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{OpaqueAuth, Xid};

    fn answer(program: &Program, call: &Call) -> Option<Reply> {
        let mut wire = BytesMut::new();
        call.encode(&mut wire);
        program.answer(wire.freeze())
    }

    #[test]
    fn pings_and_refusals_are_answered_as_rpcbind_answers_them() {
        let program = Program::new(300000, [2, 3]);
        let ping = |vers, procedure| Call::new(Xid(5), 300000, vers, procedure, Bytes::new());
        let outcome = |call: &Call| answer(&program, call).map(|r| r.outcome);
        assert_eq!(outcome(&ping(2, 0)), Some(Ok(Bytes::new())));
        assert_eq!(outcome(&ping(3, 0)), Some(Ok(Bytes::new())));
        // rpcinfo's versionless probe: version 0, answered with the range.
        assert_eq!(
            outcome(&ping(0, 0)),
            Some(Err(ServerError::ProgMismatch { low: 2, high: 3 }))
        );
        assert_eq!(outcome(&ping(2, 99)), Some(Err(ServerError::ProcUnavail)));
        let other = Call::new(Xid(5), 100000, 2, 0, Bytes::new());
        assert_eq!(outcome(&other), Some(Err(ServerError::ProgUnavail)));
        let flavor_99 = Call {
            cred: OpaqueAuth::new(99, Bytes::new()).unwrap(),
            ..ping(2, 0)
        };
        assert_eq!(
            outcome(&flavor_99),
            Some(Err(ServerError::AuthError(AuthStat::RejectedCred)))
        );
    }

    #[test]
    fn defect_6_another_rpc_version_is_answered_rpc_mismatch_not_system_err() {
        let program = Program::new(300000, [2]);
        let mut wire = BytesMut::new();
        Call::new(Xid(0x11223344), 300000, 2, 0, Bytes::new()).encode(&mut wire);
        wire[11] = 3; // rpcvers 3
        let reply = program.answer(wire.freeze()).expect("a reply");
        assert_eq!(
            reply,
            Reply::error(Xid(0x11223344), ServerError::RPC_MISMATCH)
        );
        let mut out = BytesMut::new();
        reply.encode(&mut out);
        // MSG_DENIED, RPC_MISMATCH, low 2, high 2.
        assert_eq!(
            &out[4..],
            &[0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 2]
        );
    }

    #[test]
    fn a_reply_or_a_cut_header_gets_no_answer() {
        let program = Program::new(300000, [2]);
        let mut reply = BytesMut::new();
        Reply::success(Xid(1), Bytes::new()).encode(&mut reply);
        assert_eq!(program.answer(reply.freeze()), None);
        assert_eq!(
            program.answer(Bytes::from_static(&[0, 0, 0, 1, 0, 0])),
            None
        );
    }
}
