//! [`PacketConnection`]: the handle users hold, and the request API.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use kernel_flows::Unanswered;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;
use tracing::Instrument;

use crate::driver::{Command, Driver};
use crate::handler::{Handler, HandlerFn, NoHandler};
use crate::pipeline::Pipeline;
use crate::shared::{Shared, Stats};
use crate::{Config, Ended, Error, Reply, Response};

/// A packet connection over one byte stream: requests and responses both ways, correlated
/// by `(channel, tag)`, wire-compatible with cs.packetstream 20240630.
///
/// Making one spawns its driver task on the current tokio runtime. A handle is cheap to
/// clone; all clones drive the same connection.
///
/// **Closing.** [`close`](PacketConnection::close) sends ERQ, lets running handlers finish and
/// their replies go out, sends EOF, waits for the peer's EOF (up to
/// [`Config::close_timeout`]), then shuts the write side. When the peer sends EOF first, or the
/// stream ends, the connection runs the same sequence by itself, so a server only has to
/// wait for [`closed`](PacketConnection::closed). Dropping every handle starts the close
/// sequence without waiting for it. Whenever the link ends, every request still waiting fails
/// at once with [`Error::Closed`]: no caller ever hangs, not even one in another runtime when
/// the connection's own runtime shuts down ([`Ended::TaskDropped`]).
///
/// ```
/// use bytes::Bytes;
/// use packetstream::{Config, PacketConnection};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), packetstream::Error> {
/// let (a, b) = tokio::io::duplex(64 * 1024);
/// // The server echoes the payload, with the request's flags.
/// let server = PacketConnection::with_handler(b, Config::default(), |_rq, flags, payload: Bytes| async move {
///     Ok::<_, std::convert::Infallible>((flags, payload))
/// });
/// let client = PacketConnection::new(a, Config::default());
/// let response = client.request(0, 5, "hello").await?;
/// assert!(response.ok);
/// assert_eq!((response.flags, &response.payload[..]), (5, &b"hello"[..]));
/// client.close().await?;
/// server.closed().await?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct PacketConnection {
    pub(crate) shared: Arc<Shared>,
    commands: mpsc::UnboundedSender<Command>,
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
    /// `no request handler`.
    ///
    /// Must be called within a tokio runtime.
    pub fn new<T>(io: T, config: Config) -> PacketConnection
    where
        T: AsyncRead + AsyncWrite + Send + 'static,
    {
        PacketConnection::start::<T, NoHandler>(io, config, None)
    }

    /// A connection that also serves the peer's requests with `handler`.
    ///
    /// The handler gets `(rq_type, flags, payload)` and returns anything that converts into a
    /// [`Reply`]: `()`, flags (`u64`), bytes, a string, or `(flags, bytes)`. An error, or a
    /// panic (in the closure, its future, or the conversion of its result), becomes a failure
    /// reply whose payload is [`Config::handler_failure`], and the connection goes on; the
    /// error itself is only traced, as cs.packetstream logs it. At most [`Config::max_handlers`]
    /// run at once, and replies go out in the order handlers finish. Handlers run inside the
    /// connection's task: one that computes for long should `spawn_blocking` the work.
    ///
    /// Must be called within a tokio runtime.
    pub fn with_handler<T, F, Fut, R, E>(io: T, config: Config, handler: F) -> PacketConnection
    where
        T: AsyncRead + AsyncWrite + Send + 'static,
        F: Fn(u64, u64, Bytes) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<R, E>> + Send + 'static,
        R: Into<Reply> + 'static,
        E: fmt::Display + 'static,
    {
        PacketConnection::start(io, config, Some(HandlerFn(handler)))
    }

    fn start<T, H>(io: T, config: Config, handler: Option<H>) -> PacketConnection
    where
        T: AsyncRead + AsyncWrite + Send + 'static,
        H: Handler,
    {
        let shared = Arc::new(Shared::new(config));
        let (commands, rx) = mpsc::unbounded_channel();
        let span = tracing::debug_span!("packetstream", serving = handler.is_some());
        let driver = Driver::new(io, Arc::clone(&shared), rx, handler);
        tokio::spawn(driver.run().instrument(span));
        PacketConnection { shared, commands }
    }

    /// Sends a request on channel 0 and waits for its response.
    ///
    /// `rq_type` is the handler's rq_type (the wire carries `rq_type + 1`). Tags start at 2
    /// and are never reused. Waits while [`Config::max_in_flight`] requests are outstanding.
    /// Cancel-safe: dropping the future cancels the request locally, and its late reply is
    /// counted as an orphan.
    pub async fn request(
        &self,
        rq_type: u64,
        flags: u64,
        payload: impl Into<Bytes>,
    ) -> Result<Response, Error> {
        self.request_on(0, rq_type, flags, payload).await
    }

    /// Sends a request on `channel`. Channels other than 0 need [`Config::channels`] on both
    /// sides; a cs.packetstream peer refuses them.
    pub async fn request_on(
        &self,
        channel: u64,
        rq_type: u64,
        flags: u64,
        payload: impl Into<Bytes>,
    ) -> Result<Response, Error> {
        let mut packet = self
            .shared
            .request_packet(channel, rq_type, flags, payload.into())?;
        let other;
        let requests = match channel {
            0 => self.shared.channel0(),
            _ => {
                other = self
                    .shared
                    .requests(channel, true)
                    .ok_or(Error::UnknownChannel { channel })?;
                &other
            }
        };
        let (tag, pending) = requests.allocate().await.map_err(unanswered)?;
        packet.set_tag(tag.0);
        if !self.shared.push_request(&packet) {
            return Err(self.shared.refusal());
        }
        let answer = match self.shared.config.request_timeout {
            Some(limit) => tokio::time::timeout(limit, pending)
                .await
                .map_err(|_| Error::Timeout(limit))?,
            None => pending.await,
        };
        answer.map_err(unanswered)?
    }

    /// A [`Pipeline`] on channel 0: requests sent in batches, their responses taken in
    /// batches, for one task that keeps many in flight. Cheaper per request than
    /// [`request`](PacketConnection::request) when requests are small and many.
    pub fn pipeline(&self) -> Pipeline {
        Pipeline::new(self.clone())
    }

    /// Closes the connection cleanly and waits until it has closed (see the type's docs).
    ///
    /// Returns `Ok` when both EOFs were exchanged, [`Error::CloseTimeout`] when the peer's
    /// EOF did not come in time, or the error that ended the connection before.
    pub async fn close(&self) -> Result<(), Error> {
        // The driver may have ended already; closed() then reports how.
        let _ = self.commands.send(Command::Close);
        self.closed().await
    }

    /// Waits until the connection has ended, by either side, and says how.
    pub async fn closed(&self) -> Result<(), Error> {
        let mut ended = self.shared.ended.subscribe();
        match ended.wait_for(Option::is_some).await {
            Ok(outcome) => outcome.clone().unwrap_or(Ok(())),
            // The driver publishes before it drops the sender; this is only a panic in it.
            Err(_) => Err(Error::Closed(Ended::Local)),
        }
    }

    /// Whether this side has begun closing (ERQ sent) or has closed: new requests fail.
    pub fn is_closing(&self) -> bool {
        self.shared.closing.load(Ordering::Acquire)
    }

    /// The traffic counters so far.
    pub fn stats(&self) -> Stats {
        self.shared.counters.snapshot()
    }

    /// The config the connection runs with.
    pub fn config(&self) -> &Config {
        &self.shared.config
    }
}

fn unanswered(e: Unanswered<Error>) -> Error {
    match e {
        Unanswered::Failed(e) => e,
        // Never: a request awaits its reply once.
        Unanswered::Spent => Error::Closed(Ended::Local),
    }
}
