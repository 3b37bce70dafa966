//! How the driver calls the user's request handler, without boxing a future per request.

use std::fmt;
use std::future::Future;

use bytes::Bytes;
use futures_util::future::{Ready, ready};

use crate::Reply;

/// A request handler as the driver sees it: the driver polls the future of a call as it is,
/// and turns what it resolves to into a reply only once it has finished. No wrapper future
/// and no function pointer stand between them, so the conversion is inlined where the reply
/// is encoded.
pub(crate) trait Handler: Send + Sync + 'static {
    /// The future of one call.
    type Future: Future + Send + 'static;

    /// Starts handling one request.
    fn call(&self, rq_type: u64, flags: u64, payload: Bytes) -> Self::Future;

    /// What a finished call answers: the reply, or the text of the handler's error (which is
    /// traced, never sent).
    fn reply(output: <Self::Future as Future>::Output) -> Result<Reply, String>;
}

/// A user's closure `(rq_type, flags, payload) -> impl Future<Output = Result<R, E>>`.
pub(crate) struct HandlerFn<F>(pub F);

impl<F, Fut, R, E> Handler for HandlerFn<F>
where
    F: Fn(u64, u64, Bytes) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<R, E>> + Send + 'static,
    R: Into<Reply> + 'static,
    E: fmt::Display + 'static,
{
    type Future = Fut;

    #[inline]
    fn call(&self, rq_type: u64, flags: u64, payload: Bytes) -> Fut {
        (self.0)(rq_type, flags, payload)
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

    fn call(&self, _: u64, _: u64, _: Bytes) -> Self::Future {
        ready(())
    }

    fn reply((): ()) -> Result<Reply, String> {
        Err("no request handler".into())
    }
}
