//! How the driver calls the user's request handler, without boxing a future per request.

use std::fmt;
use std::future::Future;

use bytes::Bytes;
use futures_util::FutureExt;
use futures_util::future::{Map, Ready, ready};

use crate::Reply;

/// A request handler as the driver sees it: its future resolves to the reply, or to the
/// text of the handler's error (which is traced, never sent).
pub(crate) trait Handler: Send + Sync + 'static {
    /// The future of one call.
    type Future: Future<Output = Result<Reply, String>> + Send + 'static;

    /// Starts handling one request.
    fn call(&self, rq_type: u64, flags: u64, payload: Bytes) -> Self::Future;
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
    type Future = Map<Fut, fn(Result<R, E>) -> Result<Reply, String>>;

    #[inline]
    fn call(&self, rq_type: u64, flags: u64, payload: Bytes) -> Self::Future {
        (self.0)(rq_type, flags, payload).map(into_reply::<R, E>)
    }
}

#[inline]
fn into_reply<R: Into<Reply>, E: fmt::Display>(result: Result<R, E>) -> Result<Reply, String> {
    result.map(Into::into).map_err(|e| e.to_string())
}

/// The handler of a connection that serves nothing: the session refuses every request
/// before a handler would be called.
pub(crate) struct NoHandler;

impl Handler for NoHandler {
    type Future = Ready<Result<Reply, String>>;

    fn call(&self, _: u64, _: u64, _: Bytes) -> Self::Future {
        ready(Err("no request handler".into()))
    }
}
