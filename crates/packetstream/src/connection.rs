//! [`PacketConnection`]: the handle users hold, and the request API.

use std::fmt;
use std::future::Future;
use std::pin::pin;
use std::sync::Arc;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite};
use tracing::Instrument;

use crate::call::{Call, Exchange};
use crate::driver::Driver;
use crate::handler::{Handler, HandlerFn, NoHandler, SyncHandlerFn};
use crate::pipeline::Pipeline;
use crate::session::Session;
use crate::shared::{Shared, now};
use crate::{Config, Ended, Error, Reply, Request, Response, Stats};

/// A packet connection over one byte stream: requests and responses both ways, correlated
/// by `(channel, tag)`, wire-compatible with cs.packetstream 20240630.
///
/// Making one spawns its driver task on the current tokio runtime. A handle is cheap to
/// clone; all clones drive the same connection.
///
/// **Sending.** [`request`](PacketConnection::request) sends and waits for the response;
/// [`submit`](PacketConnection::submit) sends at once and hands back a [`Call`] to await
/// later; a [`Pipeline`] sends many and takes their outcomes in batches. All three share one
/// table of requests in flight: one bound ([`Config::max_in_flight`], waited for in turn),
/// one timeout ([`Config::request_timeout`]), and responses that nobody waits for counted
/// as orphans, never delivered twice.
///
/// **Closing.** [`close`](PacketConnection::close) sends ERQ, lets running handlers finish
/// and their replies go out, sends EOF, waits for the peer's EOF, and shuts the write side,
/// all within [`Config::close_timeout`]; past it the connection is cut. When the peer sends
/// EOF first, or the stream ends, the connection runs the same sequence by itself, so a
/// server only has to wait for [`closed`](PacketConnection::closed). Dropping the last
/// handle (pipelines count) begins the same close, with the same deadline, without waiting
/// for it. [`abort`](PacketConnection::abort) cuts at once. Whenever the link ends, every
/// request still waiting fails at once with [`Error::Ended`]: no caller ever hangs, not even
/// one in another runtime when the connection's own runtime shuts down
/// ([`Ended::TaskDropped`]).
///
/// ```
/// use packetstream::{Config, PacketConnection, Request};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), packetstream::Error> {
/// let (a, b) = tokio::io::duplex(64 * 1024);
/// // The server echoes the payload, with the request's flags.
/// let server = PacketConnection::with_handler(b, Config::default(), |rq: Request| async move {
///     Ok::<_, std::convert::Infallible>((rq.flags, rq.payload))
/// })?;
/// let client = PacketConnection::new(a, Config::default())?;
/// let response = client.request(0, 5, "hello").await?;
/// assert!(response.ok);
/// assert_eq!((response.flags, &response.payload[..]), (5, &b"hello"[..]));
///
/// // Sent at once, awaited later.
/// let call = client.submit(0, 6, "later").await?;
/// assert_eq!(call.await?.flags, 6);
///
/// client.close().await?;
/// server.closed().await?;
/// # Ok(())
/// # }
/// ```
pub struct PacketConnection {
    pub(crate) shared: Arc<Shared>,
}

impl Clone for PacketConnection {
    fn clone(&self) -> Self {
        self.shared.add_handle();
        PacketConnection {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl Drop for PacketConnection {
    fn drop(&mut self) {
        self.shared.drop_handle();
    }
}

impl fmt::Debug for PacketConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PacketConnection")
            .field("stats", &self.stats())
            .field("closing", &self.is_closing())
            .finish()
    }
}

impl PacketConnection {
    /// A connection that only makes requests: the peer's requests are refused with cs's
    /// `no request handler`. Fails with [`Error::Config`] when `config` cannot work.
    ///
    /// Must be called within a tokio runtime.
    pub fn new<T>(io: T, config: Config) -> Result<PacketConnection, Error>
    where
        T: AsyncRead + AsyncWrite + Send + 'static,
    {
        PacketConnection::start::<T, NoHandler>(io, config, None)
    }

    /// A connection that also serves the peer's requests with `handler`. Fails with
    /// [`Error::Config`] when `config` cannot work.
    ///
    /// The handler gets each [`Request`] (its rq_type, flags, payload, channel and tag) and
    /// returns anything that converts into a [`Reply`]: `()`, flags (`u64`), bytes, a string,
    /// or `(flags, bytes)`. An error, or a panic (in the closure, its future, or the
    /// conversion of its result), becomes a failure reply whose payload is
    /// [`Config::handler_failure`], and the connection goes on; the error itself is only
    /// traced, as cs.packetstream logs it. At most [`Config::max_handlers`] run at once, and
    /// replies go out in the order handlers finish. Handlers run inside the connection's
    /// task: one that computes for long should `spawn_blocking` the work. A handler that
    /// never finishes holds up the close until its deadline, which cuts it.
    ///
    /// Must be called within a tokio runtime.
    pub fn with_handler<T, F, Fut, R, E>(
        io: T,
        config: Config,
        handler: F,
    ) -> Result<PacketConnection, Error>
    where
        T: AsyncRead + AsyncWrite + Send + 'static,
        F: Fn(Request) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<R, E>> + Send + 'static,
        R: Into<Reply> + 'static,
        E: fmt::Display + 'static,
    {
        PacketConnection::start(io, config, Some(HandlerFn(handler)))
    }

    /// [`with_handler`](Self::with_handler) for a handler that answers at once: a plain
    /// `Fn(Request) -> Result<R, E>`, called where the request is read, with no future made
    /// for it. The same replies, failures, limits and panics as `with_handler`'s; it must
    /// not block, as it runs inside the connection's task.
    ///
    /// ```
    /// use packetstream::{Config, PacketConnection, Request};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), packetstream::Error> {
    /// let (a, b) = tokio::io::duplex(64 * 1024);
    /// let server = PacketConnection::with_sync_handler(b, Config::default(), |rq: Request| {
    ///     match rq.rq_type {
    ///         0 => Ok((rq.flags, rq.payload)),
    ///         other => Err(format!("no rq_type {other}")),
    ///     }
    /// })?;
    /// let client = PacketConnection::new(a, Config::default())?;
    /// let echoed = client.request(0, 7, "ping").await?;
    /// assert_eq!((echoed.ok, echoed.flags, &echoed.payload[..]), (true, 7, &b"ping"[..]));
    /// assert!(!client.request(1, 0, "").await?.ok);
    /// client.close().await?;
    /// server.closed().await?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn with_sync_handler<T, F, R, E>(
        io: T,
        config: Config,
        handler: F,
    ) -> Result<PacketConnection, Error>
    where
        T: AsyncRead + AsyncWrite + Send + 'static,
        F: Fn(Request) -> Result<R, E> + Send + Sync + 'static,
        R: Into<Reply> + Send + 'static,
        E: fmt::Display + Send + 'static,
    {
        PacketConnection::start(io, config, Some(SyncHandlerFn(handler)))
    }

    fn start<T, H>(io: T, config: Config, handler: Option<H>) -> Result<PacketConnection, Error>
    where
        T: AsyncRead + AsyncWrite + Send + 'static,
        H: Handler,
    {
        config.validate()?;
        let serving = handler.is_some();
        let shared = Arc::new(Shared::new(Session::new(config, serving)));
        let span = tracing::debug_span!("packetstream", serving);
        let driver = Driver::new(io, Arc::clone(&shared), handler);
        tokio::spawn(driver.run().instrument(span));
        Ok(PacketConnection { shared })
    }

    /// Sends a request on channel 0 and waits for its response.
    ///
    /// `rq_type` is the handler's rq_type (the wire carries `rq_type + 1`). Tags start at 2
    /// and are never reused. Waits its turn while [`Config::max_in_flight`] requests are
    /// outstanding or [`Config::max_unsent`] is full. Fails with [`Error::Timeout`] when no
    /// response came within [`Config::request_timeout`] of sending. Cancel-safe: dropping the
    /// future cancels the request locally, and its late response is counted as an orphan.
    pub async fn request(
        &self,
        rq_type: u64,
        flags: u64,
        payload: impl Into<Bytes>,
    ) -> Result<Response, Error> {
        self.request_on(0, rq_type, flags, payload).await
    }

    /// [`request`](PacketConnection::request) on `channel`. Channels other than 0 need
    /// [`Config::channels`] on both sides; a cs.packetstream peer refuses them.
    pub async fn request_on(
        &self,
        channel: u64,
        rq_type: u64,
        flags: u64,
        payload: impl Into<Bytes>,
    ) -> Result<Response, Error> {
        let config = &self.shared.config;
        let request = Session::outgoing(config, channel, rq_type, flags, payload.into())?;
        Exchange::new(&*self.shared, request).await
    }

    /// Sends a request on channel 0 at once and returns a [`Call`] that resolves to its
    /// response, as cs.packetstream's `submit` does.
    ///
    /// Waits only for its turn to send (as [`request`](PacketConnection::request) does); once
    /// it returns, the request is on its way whether or not the `Call` is awaited soon.
    /// Cancel-safe: dropped while waiting for its turn, it sent nothing.
    pub async fn submit(
        &self,
        rq_type: u64,
        flags: u64,
        payload: impl Into<Bytes>,
    ) -> Result<Call, Error> {
        self.submit_on(0, rq_type, flags, payload).await
    }

    /// [`submit`](PacketConnection::submit) on `channel`.
    pub async fn submit_on(
        &self,
        channel: u64,
        rq_type: u64,
        flags: u64,
        payload: impl Into<Bytes>,
    ) -> Result<Call, Error> {
        let config = &self.shared.config;
        let request = Session::outgoing(config, channel, rq_type, flags, payload.into())?;
        let mut exchange = Exchange::new(Arc::clone(&self.shared), request);
        std::future::poll_fn(|cx| exchange.poll_sent(cx)).await?;
        Ok(Call(exchange))
    }

    /// A [`Pipeline`]: requests sent in batches, their outcomes taken in batches, for one
    /// task that keeps many in flight.
    pub fn pipeline(&self) -> Pipeline {
        Pipeline::new(self.clone())
    }

    /// Closes the connection cleanly and waits until it has closed (see the type's docs).
    ///
    /// Returns `Ok` when both EOFs were exchanged, [`Error::CloseTimeout`] when the close did
    /// not finish within [`Config::close_timeout`] and the connection was cut, or the error
    /// that ended the connection before.
    pub async fn close(&self) -> Result<(), Error> {
        {
            let mut state = self.shared.lock();
            state.session.close(now());
            state.wake_driver();
        }
        self.closed().await
    }

    /// Cuts the connection at once: nothing more is written or read, running handlers are
    /// dropped, the stream is dropped, and every request still waiting fails with
    /// [`Ended::Aborted`]. [`closed`](PacketConnection::closed) then says
    /// [`Error::Aborted`], unless the connection had ended before.
    pub fn abort(&self) {
        let mut state = self.shared.lock();
        state.session.abort();
        state.wake_driver();
    }

    /// Waits until the connection has ended, by either side, and says how.
    pub async fn closed(&self) -> Result<(), Error> {
        loop {
            let mut notified = pin!(self.shared.ended.notified());
            notified.as_mut().enable();
            if let Some(outcome) = self.shared.lock().session.outcome() {
                return outcome.clone();
            }
            notified.await;
        }
    }

    /// Waits until the peer will send nothing more, and says why: its EOF (cs's
    /// `notify_recv_eof`), the stream's end, or bad input. Also resolves if the connection
    /// was cut before that, with how it ended.
    pub async fn peer_eof(&self) -> Ended {
        loop {
            let mut notified = pin!(self.shared.read_ended.notified());
            notified.as_mut().enable();
            {
                let state = self.shared.lock();
                if let Some(why) = state.session.read_end() {
                    return why.clone();
                }
                if let Some(outcome) = state.session.outcome() {
                    return crate::session::ended(outcome);
                }
            }
            notified.await;
        }
    }

    /// Whether this side has begun closing (ERQ sent) or has closed: new requests fail.
    pub fn is_closing(&self) -> bool {
        self.shared.lock().session.is_closing()
    }

    /// The traffic counters so far, and the bytes held now.
    pub fn stats(&self) -> Stats {
        self.shared.stats()
    }

    /// The config the connection runs with.
    pub fn config(&self) -> &Config {
        &self.shared.config
    }
}
