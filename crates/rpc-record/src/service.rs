//! The service framework: [`Program`]s of versions and procedures with async handlers,
//! gathered in a [`Service`] that answers each call as rpcbind and libtirpc answer it.
//!
//! Dispatch is I/O-free: [`Service::answer`] turns a call message into a reply now, or into
//! a future of one when a handler runs. The serving loops in `server.rs` drive it.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::FutureExt;
use tracing::{debug, trace, warn};

use crate::xdr::{Decode, Encode};
use crate::{
    AUTH_NONE, AUTH_SYS, AuthStat, AuthSys, Call, Error, OpaqueAuth, Peer, Reply, ServerError, Xid,
};

/// What a handler is told of the call it answers.
#[derive(Debug, Clone)]
pub struct CallContext {
    /// The call's transaction id.
    pub xid: Xid,
    /// The program called.
    pub prog: u32,
    /// Its version.
    pub vers: u32,
    /// The procedure.
    pub procedure: u32,
    /// The credential as it came.
    pub cred: OpaqueAuth,
    /// The AUTH_SYS credentials, when the call carried valid ones (a call with invalid
    /// ones is refused with AUTH_ERROR(BADCRED) before it reaches a handler).
    pub auth_sys: Option<AuthSys>,
    /// Who called, as far as the transport knows (a TLS layer adds the certificate's name).
    pub peer: Arc<Peer>,
}

impl fmt::Display for CallContext {
    /// `xid 0x00000007 prog 300002 vers 1 proc 1 from 127.0.0.1:40000`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} prog {} vers {} proc {}",
            self.xid, self.prog, self.vers, self.procedure
        )?;
        match &self.peer.addr {
            Some(addr) => write!(f, " from {addr}"),
            None => Ok(()),
        }
    }
}

/// A reply on its way: the results (XDR-encoded), or why the call failed.
pub type Outcome = Result<Bytes, ServerError>;

/// A handler's future, boxed.
pub type OutcomeFuture = Pin<Box<dyn Future<Output = Outcome> + Send>>;

type Handler = Arc<dyn Fn(CallContext, Bytes) -> OutcomeFuture + Send + Sync>;

/// One program: its number, its versions, and the procedures of each.
///
/// Procedure 0 (NULL) of every version answers at once with no results, as rpcgen's
/// servers do, unless a handler is given for it.
///
/// ```
/// use rpc_record::{CallContext, Program, ServerError, Service};
///
/// // program 300002 version 1: ECHO (1) returns its string.
/// let program = Program::new(300002, [1])
///     .procedure(1, 1, |_: CallContext, text: String| async move { Ok::<_, ServerError>(text) });
/// let service = Service::new().program(program);
/// # let _ = service;
/// ```
#[derive(Clone, Default)]
pub struct Program {
    prog: u32,
    versions: BTreeMap<u32, BTreeMap<u32, Handler>>,
}

impl fmt::Debug for Program {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let procedures: BTreeMap<_, Vec<_>> = self
            .versions
            .iter()
            .map(|(vers, procs)| (vers, procs.keys().collect()))
            .collect();
        f.debug_struct("Program")
            .field("prog", &self.prog)
            .field("procedures", &procedures)
            .finish()
    }
}

impl Program {
    /// Program `prog` in `versions`, each answering NULL only so far.
    pub fn new(prog: u32, versions: impl IntoIterator<Item = u32>) -> Program {
        Program {
            prog,
            versions: versions.into_iter().map(|v| (v, BTreeMap::new())).collect(),
        }
    }

    /// The program's number.
    pub fn number(&self) -> u32 {
        self.prog
    }

    /// The versions served, lowest first.
    pub fn versions(&self) -> impl Iterator<Item = u32> + '_ {
        self.versions.keys().copied()
    }

    /// Serves `procedure` of version `vers` (added if new) with `handler`, which gets the
    /// call's context and its arguments decoded as `A`, and returns its results or why the
    /// call failed. Arguments that are not an `A` (or that leave bytes over) are answered
    /// GARBAGE_ARGS; a handler that panics, SYSTEM_ERR.
    pub fn procedure<A, R, F, Fut>(self, vers: u32, procedure: u32, handler: F) -> Program
    where
        A: Decode + Send + 'static,
        R: Encode + 'static,
        F: Fn(CallContext, A) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<R, ServerError>> + Send + 'static,
    {
        let handler = Arc::new(handler);
        self.raw_procedure(vers, procedure, move |context, args| {
            let args = match crate::xdr::from_bytes::<A>(&args) {
                Ok(args) => args,
                Err(e) => {
                    debug!(%context, error = %e, "arguments do not decode: GARBAGE_ARGS");
                    return Box::pin(std::future::ready(Err(ServerError::GarbageArgs)));
                }
            };
            let results = handler(context, args);
            Box::pin(async move { results.await.map(|r| crate::xdr::to_bytes(&r)) })
        })
    }

    /// Serves `procedure` of version `vers` with a handler that takes the arguments as
    /// bytes and returns the results as bytes (XDR both, as the program defines them).
    pub fn raw_procedure<F>(mut self, vers: u32, procedure: u32, handler: F) -> Program
    where
        F: Fn(CallContext, Bytes) -> OutcomeFuture + Send + Sync + 'static,
    {
        self.versions
            .entry(vers)
            .or_default()
            .insert(procedure, Arc::new(handler));
        self
    }
}

/// The answer to a call message.
pub enum Answer {
    /// Answered at once (NULL, a refusal); `None` for a message that gets no reply (not a
    /// call, or cut before its header ends, where libtirpc stays silent too).
    Now(Option<Reply>),
    /// A handler runs: the reply comes when this future does.
    Later(Xid, OutcomeFuture),
}

impl fmt::Debug for Answer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Answer::Now(reply) => f.debug_tuple("Now").field(reply).finish(),
            Answer::Later(xid, _) => f.debug_tuple("Later").field(xid).finish(),
        }
    }
}

impl Answer {
    /// The reply, waiting for the handler if one runs; a panicking handler is answered
    /// SYSTEM_ERR.
    pub async fn reply(self) -> Option<Reply> {
        match self {
            Answer::Now(reply) => reply,
            Answer::Later(xid, future) => Some(Reply {
                xid,
                outcome: settle(xid, future).await,
            }),
        }
    }
}

/// Polls a handler's future once: its outcome if it is ready (SYSTEM_ERR if it panics), for
/// the handlers that answer at once without a task of their own.
pub(crate) fn poll_settle(
    xid: Xid,
    future: &mut OutcomeFuture,
    cx: &mut std::task::Context<'_>,
) -> std::task::Poll<Outcome> {
    match std::panic::catch_unwind(AssertUnwindSafe(|| future.as_mut().poll(cx))) {
        Ok(poll) => poll,
        Err(_) => {
            warn!(%xid, "handler panicked: SYSTEM_ERR");
            std::task::Poll::Ready(Err(ServerError::SystemErr))
        }
    }
}

/// The outcome of a handler's future; SYSTEM_ERR if it panics.
pub(crate) async fn settle(xid: Xid, future: OutcomeFuture) -> Outcome {
    match AssertUnwindSafe(future).catch_unwind().await {
        Ok(outcome) => outcome,
        Err(_) => {
            warn!(%xid, "handler panicked: SYSTEM_ERR");
            Err(ServerError::SystemErr)
        }
    }
}

/// The programs a server serves, and the dispatch of each call to its handler.
///
/// Every call gets the reply rpcbind and libtirpc would give: RPC_MISMATCH(2, 2) for another
/// RPC version (where rpcbind closes the connection and Ocamlnet answers SYSTEM_ERR);
/// AUTH_ERROR(REJECTEDCRED) for a credential flavor other than AUTH_NONE and AUTH_SYS, and
/// AUTH_ERROR(BADCRED) for AUTH_SYS credentials that do not decode within their limits;
/// PROG_UNAVAIL for a program not served; PROG_MISMATCH(lowest, highest) for a version not
/// served; PROC_UNAVAIL for a procedure not served; GARBAGE_ARGS for arguments that do not
/// decode; SYSTEM_ERR for a handler that panics; and what the handler returns otherwise.
#[derive(Debug, Clone, Default)]
pub struct Service {
    programs: BTreeMap<u32, Program>,
}

impl From<Program> for Service {
    fn from(program: Program) -> Service {
        Service::new().program(program)
    }
}

impl Service {
    /// A service with no program: every call is PROG_UNAVAIL.
    pub fn new() -> Service {
        Service::default()
    }

    /// Adds `program` (replacing one of the same number).
    pub fn program(mut self, program: Program) -> Service {
        self.programs.insert(program.prog, program);
        self
    }

    /// The programs served.
    pub fn programs(&self) -> impl Iterator<Item = &Program> {
        self.programs.values()
    }

    /// The answer to `message` from `peer`.
    pub fn answer(&self, message: Bytes, peer: &Arc<Peer>) -> Answer {
        let call = match Call::decode(message) {
            Ok(call) => call,
            Err(Error::RpcVersion { xid, rpcvers }) => {
                debug!(%xid, rpcvers, "another RPC version: RPC_MISMATCH");
                return Answer::Now(Some(Reply::error(xid, ServerError::RPC_MISMATCH)));
            }
            Err(e) => {
                debug!(error = %e, "not a call: no reply");
                return Answer::Now(None);
            }
        };
        trace!(%call, "in");
        let xid = call.xid;
        let refuse = |why| Answer::Now(Some(Reply::error(xid, why)));
        let auth_sys = match call.cred.flavor() {
            AUTH_NONE => None,
            AUTH_SYS => match AuthSys::from_cred(&call.cred) {
                Ok(auth_sys) => auth_sys,
                Err(e) => {
                    debug!(%xid, error = %e, "bad AUTH_SYS credentials");
                    return refuse(ServerError::AuthError(AuthStat::BadCred));
                }
            },
            _ => return refuse(ServerError::AuthError(AuthStat::RejectedCred)),
        };
        let Some(program) = self.programs.get(&call.prog) else {
            return refuse(ServerError::ProgUnavail);
        };
        let Some(procedures) = program.versions.get(&call.vers) else {
            let low = program.versions.keys().next().copied();
            let high = program.versions.keys().next_back().copied();
            return match low.zip(high) {
                Some((low, high)) => refuse(ServerError::ProgMismatch { low, high }),
                None => refuse(ServerError::ProgUnavail),
            };
        };
        let Some(handler) = procedures.get(&call.procedure) else {
            return match call.procedure {
                0 => Answer::Now(Some(Reply::success(xid, Bytes::new()))),
                _ => refuse(ServerError::ProcUnavail),
            };
        };
        let context = CallContext {
            xid,
            prog: call.prog,
            vers: call.vers,
            procedure: call.procedure,
            cred: call.cred,
            auth_sys,
            peer: Arc::clone(peer),
        };
        let args = call.args;
        match std::panic::catch_unwind(AssertUnwindSafe(|| handler(context, args))) {
            Ok(future) => Answer::Later(xid, future),
            Err(_) => {
                warn!(%xid, "handler panicked: SYSTEM_ERR");
                refuse(ServerError::SystemErr)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::{BufMut, BytesMut};

    use super::*;

    fn answer(service: &Service, call: &Call) -> Option<Reply> {
        let mut wire = BytesMut::new();
        call.encode(&mut wire);
        let answer = service.answer(wire.freeze(), &Arc::new(Peer::default()));
        futures_util::FutureExt::now_or_never(answer.reply()).expect("no handler waits")
    }

    fn echo() -> Service {
        Service::from(
            Program::new(300002, [1, 3])
                .procedure(1, 1, |_, text: String| async move { Ok(text) })
                .procedure(1, 2, |context: CallContext, ()| async move {
                    match context.auth_sys {
                        Some(sys) => Ok(sys.uid),
                        None => Err(ServerError::AuthError(AuthStat::TooWeak)),
                    }
                })
                .procedure(1, 3, |_, ()| async move {
                    if true {
                        panic!("a handler that fails");
                    }
                    Ok(())
                }),
        )
    }

    #[test]
    fn pings_and_refusals_are_answered_as_rpcbind_answers_them() {
        let service = Service::from(Program::new(300000, [2, 3]));
        let ping = |vers, procedure| Call::new(Xid(5), 300000, vers, procedure, Bytes::new());
        let outcome = |call: &Call| answer(&service, call).map(|r| r.outcome);
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
        let bad_sys = Call {
            cred: OpaqueAuth::new(AUTH_SYS, Bytes::from_static(&[0, 0, 0, 1])).unwrap(),
            ..ping(2, 0)
        };
        assert_eq!(
            outcome(&bad_sys),
            Some(Err(ServerError::AuthError(AuthStat::BadCred)))
        );
    }

    #[test]
    fn handlers_get_their_arguments_and_credentials_and_their_failures_are_replies() {
        let service = echo();
        let call = |procedure, args: Bytes| Call::new(Xid(9), 300002, 1, procedure, args);
        let outcome = |call: &Call| answer(&service, call).map(|r| r.outcome);
        let hello = crate::xdr::to_bytes("hello");
        assert_eq!(outcome(&call(1, hello.clone())), Some(Ok(hello.clone())));
        // Arguments that are not a string, or leave bytes over: GARBAGE_ARGS.
        let mut extra = BytesMut::from(&hello[..]);
        extra.put_u32(0);
        assert_eq!(
            outcome(&call(1, extra.freeze())),
            Some(Err(ServerError::GarbageArgs))
        );
        assert_eq!(
            outcome(&call(1, Bytes::from_static(&[0, 0, 1]))),
            Some(Err(ServerError::GarbageArgs))
        );
        // WHOAMI: the AUTH_SYS uid, or AUTH_ERROR(TOOWEAK) without AUTH_SYS.
        assert_eq!(
            outcome(&call(2, Bytes::new())),
            Some(Err(ServerError::AuthError(AuthStat::TooWeak)))
        );
        let sys = AuthSys {
            uid: 4242,
            ..AuthSys::default()
        };
        let as_sys = Call {
            cred: sys.to_cred().unwrap(),
            ..call(2, Bytes::new())
        };
        assert_eq!(outcome(&as_sys), Some(Ok(crate::xdr::to_bytes(&4242u32))));
        // A handler that panics: SYSTEM_ERR, and the service goes on.
        assert_eq!(
            outcome(&call(3, Bytes::new())),
            Some(Err(ServerError::SystemErr))
        );
        assert_eq!(outcome(&call(0, Bytes::new())), Some(Ok(Bytes::new())));
        // Version 3 has no procedure 1; version 2 is not served.
        let v3 = Call::new(Xid(9), 300002, 3, 1, Bytes::new());
        assert_eq!(outcome(&v3), Some(Err(ServerError::ProcUnavail)));
        let v2 = Call::new(Xid(9), 300002, 2, 0, Bytes::new());
        assert_eq!(
            outcome(&v2),
            Some(Err(ServerError::ProgMismatch { low: 1, high: 3 }))
        );
    }

    #[test]
    fn defect_6_another_rpc_version_is_answered_rpc_mismatch_not_system_err() {
        let service = Service::from(Program::new(300000, [2]));
        let mut wire = BytesMut::new();
        Call::new(Xid(0x11223344), 300000, 2, 0, Bytes::new()).encode(&mut wire);
        wire[11] = 3; // rpcvers 3
        let Answer::Now(Some(reply)) = service.answer(wire.freeze(), &Arc::default()) else {
            panic!("no reply");
        };
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
        let service = Service::from(Program::new(300000, [2]));
        let mut reply = BytesMut::new();
        Reply::success(Xid(1), Bytes::new()).encode(&mut reply);
        let peer = Arc::default();
        assert!(matches!(
            service.answer(reply.freeze(), &peer),
            Answer::Now(None)
        ));
        assert!(matches!(
            service.answer(Bytes::from_static(&[0, 0, 0, 1, 0, 0]), &peer),
            Answer::Now(None)
        ));
    }
}
