//! What a handler gets ([`Request`]), and how the driver calls the user's handler without
//! boxing a future per request.

use std::fmt;
use std::future::Future;

use bytes::Bytes;
use futures_util::future::{Ready, ready};

use crate::Reply;

/// A request from the peer, as its handler gets it: the rq_type the handler dispatches on,
/// the flags and payload, and where it came from, the channel and the tag its response will
/// carry.
///
/// ```
/// use bytes::Bytes;
/// use packetstream::Request;
///
/// let rq = Request { channel: 0, tag: 7, rq_type: 2, flags: 0x11, payload: Bytes::from("hi") };
/// assert_eq!(rq.to_string(), "Request ch=0 tag=7 rq=2 flags=0x11 len=2");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The channel it came on (0 unless both sides turned channels on).
    pub channel: u64,
    /// The peer's tag for it, which the response carries back.
    pub tag: u64,
    /// The handler's rq_type (the wire carries `rq_type + 1`).
    pub rq_type: u64,
    /// The request's flags.
    pub flags: u64,
    /// The request's payload.
    pub payload: Bytes,
}

impl fmt::Display for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Request ch={} tag={} rq={} flags={:#x} len={}",
            self.channel,
            self.tag,
            self.rq_type,
            self.flags,
            self.payload.len()
        )
    }
}

/// A request handler as the driver sees it: the driver polls the future of a call as it is,
/// and turns what it resolves to into a reply only once it has finished. No wrapper future
/// and no function pointer stand between them, so the conversion is inlined where the reply
/// is made.
pub(crate) trait Handler: Send + Sync + 'static {
    /// The future of one call.
    type Future: Future + Send + 'static;

    /// Starts handling one request.
    fn call(&self, request: Request) -> Self::Future;

    /// Answers `request` at once, without a future, if this handler is synchronous;
    /// otherwise gives it back for [`call`](Self::call).
    #[inline(always)]
    fn answer_now(&self, request: Request) -> Result<<Self::Future as Future>::Output, Request> {
        Err(request)
    }

    /// What a finished call answers: the reply, or the text of the handler's error (which is
    /// traced, never sent).
    fn reply(output: <Self::Future as Future>::Output) -> Result<Reply, String>;
}

/// A user's closure `Request -> impl Future<Output = Result<R, E>>`.
pub(crate) struct HandlerFn<F>(pub F);

impl<F, Fut, R, E> Handler for HandlerFn<F>
where
    F: Fn(Request) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<R, E>> + Send + 'static,
    R: Into<Reply> + 'static,
    E: fmt::Display + 'static,
{
    type Future = Fut;

    #[inline]
    fn call(&self, request: Request) -> Fut {
        (self.0)(request)
    }

    #[inline]
    fn reply(output: Result<R, E>) -> Result<Reply, String> {
        output.map(Into::into).map_err(|e| e.to_string())
    }
}

/// A user's synchronous closure `Request -> Result<R, E>`: answered where it is called, with
/// no future made, moved or polled.
pub(crate) struct SyncHandlerFn<F>(pub F);

impl<F, R, E> Handler for SyncHandlerFn<F>
where
    F: Fn(Request) -> Result<R, E> + Send + Sync + 'static,
    R: Into<Reply> + Send + 'static,
    E: fmt::Display + Send + 'static,
{
    type Future = Ready<Result<R, E>>;

    #[inline]
    fn call(&self, request: Request) -> Self::Future {
        ready((self.0)(request))
    }

    #[inline(always)]
    fn answer_now(&self, request: Request) -> Result<Result<R, E>, Request> {
        Ok((self.0)(request))
    }

    #[inline]
    fn reply(output: Result<R, E>) -> Result<Reply, String> {
        output.map(Into::into).map_err(|e| e.to_string())
    }
}

/// The handler of a connection that serves nothing: the session refuses every request
/// before a handler would be called.
pub(crate) struct NoHandler;

impl Handler for NoHandler {
    type Future = Ready<()>;

    fn call(&self, _: Request) -> Self::Future {
        ready(())
    }

    fn reply((): ()) -> Result<Reply, String> {
        Err("no request handler".into())
    }
}
