//! [`Client`]: calls over a stream or datagram transporter, replies matched by xid through
//! kernel-flows' `Correlator`.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use kernel_flows::{Correlator, Order, Tag, Unanswered};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;
use tokio::time::{Interval, MissedTickBehavior};
use tracing::{Instrument, debug, trace, warn};

use crate::flights::{Due, Flights};
use crate::xdr::{Decode, Encode};
use crate::{
    Admission, Call, DatagramSocket, Error, Fragment, OpaqueAuth, PeerAddr, Record, RecordDatagram,
    RecordStream, Reply, Rule, ServerError, Xid,
};

/// The highest xid a client hands out; its first is below 2^31, so it has 2^31 at least.
const LAST_XID: u64 = u32::MAX as u64;

type Calls = Correlator<Reply, Arc<Error>>;

/// An RPC client: calls go out on one transporter, and each reply is matched to its call
/// by xid. Replies whose xid no call waits for are skipped, as libtirpc does.
///
/// Making one spawns its driver task on the current tokio runtime. A handle is cheap to
/// clone. Dropping every handle ends the driver and closes the transporter; when the link
/// ends, every call still waiting fails at once with [`Error::Ended`]. Calls are
/// cancel-safe: a dropped call's late reply is skipped.
///
/// ```
/// use bytes::Bytes;
/// use rpc_record::{Client, Config, Program, Service, RecordStream, ServerError, serve_stream};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), rpc_record::Error> {
/// let (a, b) = tokio::io::duplex(4096);
/// let config = Config::default();
/// let program = Service::from(Program::new(300000, [2, 3]));
/// let mut server = RecordStream::new(b, &config);
/// tokio::spawn(async move { serve_stream(&mut server, &program).await });
/// let client = Client::stream(RecordStream::new(a, &config), &config);
/// assert_eq!(client.call(300000, 2, 0, Bytes::new()).await?.outcome, Ok(Bytes::new()));
/// let mismatch = client.call(300000, 9, 0, Bytes::new()).await?.outcome;
/// assert_eq!(mismatch, Err(ServerError::ProgMismatch { low: 2, high: 3 }));
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Client {
    calls: Calls,
    outbox: mpsc::UnboundedSender<(Tag, Bytes)>,
    /// The credential this handle's calls carry.
    cred: OpaqueAuth,
}

impl Client {
    /// A client over a stream transporter, at most [`Config::max_in_flight`] calls waiting.
    ///
    /// [`Config::max_in_flight`]: crate::Config::max_in_flight
    pub fn stream<T>(stream: RecordStream<T>, config: &crate::Config) -> Client
    where
        T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        Client::start(StreamLink(stream), config, None)
    }

    /// A client that sends its calls over `socket` to `server`, and takes replies only from
    /// there. A call without a reply is sent again (the same xid) after `retry` (and up to a
    /// quarter more), then after twice as long each time up to 30 s, as libtirpc does, until
    /// it is answered, dropped, or [`Config::call_timeout`](crate::Config::call_timeout) has
    /// passed. A call that cannot be sent fails alone; the client goes on.
    pub fn datagram<S>(
        socket: RecordDatagram<S>,
        server: PeerAddr,
        retry: Duration,
        config: &crate::Config,
    ) -> Client
    where
        S: DatagramSocket + Send + 'static,
    {
        let link = DatagramLink {
            socket,
            server,
            queue: VecDeque::new(),
        };
        Client::start(link, config, Some(retry))
    }

    fn start(link: impl Link, config: &crate::Config, retry: Option<Duration>) -> Client {
        let calls = Calls::new(kernel_flows::Config {
            order: Order::Tagged,
            max_in_flight: config.max_in_flight,
            first_tag: first_xid(),
        });
        let (outbox, rx) = mpsc::unbounded_channel();
        let flights = Flights::new(config.call_timeout, retry, config.max_in_flight);
        let ticks = flights.tick_len().map(|every| {
            let mut ticks = tokio::time::interval(every);
            ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
            ticks
        });
        let driver = Driver {
            link,
            calls: calls.clone(),
            rx,
            limit: ReplyLimit {
                max: config.max_record,
                refused: 0,
            },
            flights,
            ticks,
            due: Vec::new(),
            call_timeout: config.call_timeout.unwrap_or_default(),
        };
        tokio::spawn(driver.run().instrument(tracing::debug_span!("rpc client")));
        Client {
            calls,
            outbox,
            cred: OpaqueAuth::NONE,
        }
    }

    /// A handle on the same connection whose calls carry `cred` (AUTH_NONE by default):
    /// `AuthSys::of_this_process()?.to_cred()?` for what rpcgen's clients send with
    /// `authunix_create_default()`.
    pub fn with_cred(&self, cred: OpaqueAuth) -> Client {
        Client {
            cred,
            ..self.clone()
        }
    }

    /// Calls `procedure` of program `prog` version `vers` with `args` (XDR-encoded; the
    /// handle's credential, AUTH_NONE unless [`with_cred`](Client::with_cred) says otherwise)
    /// and waits for the reply. A server's refusal (PROG_MISMATCH and the like) is a reply, not an
    /// error: see [`Reply::outcome`].
    ///
    /// Fails alone with [`Error::Timeout`] once [`Config::call_timeout`] has passed since it
    /// was sent (up to an eighth more), with [`Error::ReplyTooLarge`] for a reply over
    /// [`Config::max_record`] (discarded as it streamed past), with the send's error for a
    /// datagram that could not be sent; with [`Error::Ended`] when the link has ended.
    ///
    /// [`Config::call_timeout`]: crate::Config::call_timeout
    /// [`Config::max_record`]: crate::Config::max_record
    pub async fn call(
        &self,
        prog: u32,
        vers: u32,
        procedure: u32,
        args: Bytes,
    ) -> Result<Reply, Error> {
        let (tag, pending) = self.calls.allocate().await.map_err(unanswered)?;
        if tag.0 > LAST_XID {
            return Err(Error::XidsExhausted);
        }
        let call = Call {
            cred: self.cred.clone(),
            ..Call::new(Xid(tag.0 as u32), prog, vers, procedure, args)
        };
        trace!(%call, "out");
        let mut message = BytesMut::with_capacity(call.encoded_len());
        call.encode(&mut message);
        if self.outbox.send((tag, message.freeze())).is_err() {
            return Err(Error::Ended(Arc::new(Error::PeerClosed)));
        }
        pending.await.map_err(unanswered)
    }

    /// [`call`](Client::call) with arguments and results as XDR types: `Ok(Ok(results))`
    /// on SUCCESS, `Ok(Err(why))` when the server refused the call, and
    /// [`Error::Xdr`] when the results are not a `R`.
    pub async fn call_xdr<A, R>(
        &self,
        prog: u32,
        vers: u32,
        procedure: u32,
        args: &A,
    ) -> Result<Result<R, ServerError>, Error>
    where
        A: Encode + ?Sized,
        R: Decode,
    {
        let reply = self
            .call(prog, vers, procedure, crate::xdr::to_bytes(args))
            .await?;
        match reply.outcome {
            Ok(results) => crate::xdr::from_bytes(&results)
                .map(Ok)
                .map_err(|error| Error::Xdr {
                    what: "reply",
                    field: "results",
                    error,
                }),
            Err(why) => Ok(Err(why)),
        }
    }

    /// How many replies came that no call waited for.
    pub fn skipped(&self) -> u64 {
        self.calls.orphans()
    }
}

/// A first xid below 2^31 that differs from run to run, as libtirpc's (time and pid).
fn first_xid() -> u64 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos() ^ d.as_secs() as u32);
    u64::from((nanos ^ std::process::id().rotate_left(16)) & 0x7fff_ffff).max(1)
}

/// A call's failure: its own error when it failed alone (the correlator gave the only
/// handle on it), [`Error::Ended`] when the link ended (every call shares that error).
fn unanswered(e: Unanswered<Arc<Error>>) -> Error {
    match e {
        Unanswered::Failed(e) => Arc::try_unwrap(e).unwrap_or_else(Error::Ended),
        Unanswered::Exhausted => Error::XidsExhausted,
        // Spent never happens (a call awaits its reply once), and a kind kernel-flows may add
        // later is a call that got no reply.
        _ => Error::Ended(Arc::new(Error::PeerClosed)),
    }
}

/// The admission rule for replies: within [`Config::max_record`](crate::Config::max_record),
/// or rejected, so that only the call it answers fails.
#[derive(Debug)]
struct ReplyLimit {
    max: usize,
    /// The declared length of the last reply refused.
    refused: u64,
}

impl Admission for ReplyLimit {
    fn admit(&mut self, fragment: &Fragment) -> Rule {
        if fragment.so_far > self.max as u64 {
            self.refused = fragment.so_far;
            Rule::Reject
        } else {
            Rule::Accept
        }
    }
}

/// What the driver needs of a transporter.
trait Link: Send + 'static {
    /// The next record from the server, by `limit`; `None` at a clean end.
    fn poll_record(
        &mut self,
        cx: &mut Context<'_>,
        limit: &mut ReplyLimit,
    ) -> Poll<Result<Option<Record>, Error>>;
    /// Queues call `tag`'s message.
    fn feed(&mut self, tag: Tag, message: Bytes);
    /// Sends what is queued; a call that cannot be sent alone is given to `unsent`.
    fn poll_flush(
        &mut self,
        cx: &mut Context<'_>,
        unsent: &mut dyn FnMut(Tag, Error),
    ) -> Poll<Result<(), Error>>;
}

struct StreamLink<T>(RecordStream<T>);

impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Link for StreamLink<T> {
    fn poll_record(
        &mut self,
        cx: &mut Context<'_>,
        limit: &mut ReplyLimit,
    ) -> Poll<Result<Option<Record>, Error>> {
        self.0.poll_read_with(cx, limit)
    }

    fn feed(&mut self, _: Tag, message: Bytes) {
        self.0.feed(&message);
    }

    fn poll_flush(
        &mut self,
        cx: &mut Context<'_>,
        _: &mut dyn FnMut(Tag, Error),
    ) -> Poll<Result<(), Error>> {
        self.0.poll_flush(cx)
    }
}

struct DatagramLink<S> {
    socket: RecordDatagram<S>,
    server: PeerAddr,
    queue: VecDeque<(Tag, Bytes)>,
}

impl<S: DatagramSocket + Send + 'static> Link for DatagramLink<S> {
    fn poll_record(
        &mut self,
        cx: &mut Context<'_>,
        limit: &mut ReplyLimit,
    ) -> Poll<Result<Option<Record>, Error>> {
        loop {
            match self.socket.poll_recv_with(cx, limit) {
                Poll::Ready(Ok((record, source))) if source == self.server => {
                    return Poll::Ready(Ok(Some(record)));
                }
                Poll::Ready(Ok((_, source))) => debug!(%source, "datagram from elsewhere: skipped"),
                // A datagram too large, or too short to reject, is gone; the next one may be
                // the reply.
                Poll::Ready(Err(
                    e @ (Error::DatagramTooLarge { .. } | Error::ShortRecord { .. }),
                )) => {
                    debug!(error = %e, "skipped")
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    fn feed(&mut self, tag: Tag, message: Bytes) {
        self.queue.push_back((tag, message));
    }

    fn poll_flush(
        &mut self,
        cx: &mut Context<'_>,
        unsent: &mut dyn FnMut(Tag, Error),
    ) -> Poll<Result<(), Error>> {
        while let Some((tag, message)) = self.queue.front() {
            let sent = std::task::ready!(self.socket.poll_send_to(cx, message, &self.server));
            if let Err(e) = sent {
                // A datagram that cannot go (too large, refused by the system): its call
                // fails, the others go on.
                unsent(*tag, e);
            }
            self.queue.pop_front();
        }
        Poll::Ready(Ok(()))
    }
}

struct Driver<L> {
    link: L,
    calls: Calls,
    rx: mpsc::UnboundedReceiver<(Tag, Bytes)>,
    limit: ReplyLimit,
    /// When calls are sent again and time out, ticked by `ticks` while calls are in flight.
    flights: Flights,
    ticks: Option<Interval>,
    due: Vec<Due>,
    call_timeout: Duration,
}

impl<L: Link> Driver<L> {
    async fn run(mut self) {
        let end = poll_fn(|cx| self.poll_drive(cx)).await;
        let reason = end.err().unwrap_or(Error::PeerClosed);
        debug!(%reason, "client ended");
        self.calls.fail_all(Arc::new(reason));
    }

    /// Runs until every handle is gone (`Ok`) or the link ends.
    fn poll_drive(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        loop {
            let mut progress = false;
            loop {
                match self.rx.poll_recv(cx) {
                    Poll::Ready(Some((tag, message))) => {
                        if let Some(ticks) = &mut self.ticks
                            && self.flights.is_empty()
                        {
                            // The first call in flight: ticks start from now.
                            ticks.reset();
                        }
                        let calls = &self.calls;
                        self.flights
                            .sent(tag, &message, |tag| calls.is_outstanding(tag));
                        self.link.feed(tag, message);
                    }
                    Poll::Ready(None) => return Poll::Ready(Ok(())),
                    Poll::Pending => break,
                }
            }
            if let Some(ticks) = &mut self.ticks {
                while !self.flights.is_empty() && ticks.poll_tick(cx).is_ready() {
                    let calls = &self.calls;
                    self.flights
                        .tick(|tag| calls.is_outstanding(tag), &mut self.due);
                    for due in self.due.drain(..) {
                        match due {
                            Due::Resend(tag, message) => {
                                debug!(%tag, "no reply yet: sending again");
                                self.link.feed(tag, message);
                            }
                            Due::Expired(tag) => {
                                debug!(%tag, "no reply in time");
                                let timeout = Error::Timeout(self.call_timeout);
                                self.calls.fail(tag, Arc::new(timeout));
                            }
                        }
                    }
                }
            }
            let (calls, flights) = (&self.calls, &mut self.flights);
            let mut unsent = |tag: Tag, e: Error| {
                debug!(%tag, error = %e, "call not sent");
                flights.done(tag);
                calls.fail(tag, Arc::new(e));
            };
            if let Poll::Ready(result) = self.link.poll_flush(cx, &mut unsent) {
                result?;
            }
            while let Poll::Ready(record) = self.link.poll_record(cx, &mut self.limit) {
                let Some(record) = record? else {
                    return Poll::Ready(Err(Error::PeerClosed));
                };
                progress = true;
                self.take(record);
            }
            if !progress {
                return Poll::Pending;
            }
        }
    }

    /// A record from the server: a reply for its call, or a reply too large for it.
    fn take(&mut self, record: Record) {
        match record {
            Record::Accept(message) => match Reply::decode(message) {
                Ok(reply) => {
                    let xid = reply.xid;
                    trace!(%reply, "in");
                    self.flights.done(Tag(u64::from(xid.0)));
                    if self.calls.correlate(Tag(u64::from(xid.0)), reply).is_err() {
                        debug!(%xid, "a reply no call waits for: skipped");
                    }
                }
                Err(e) => debug!(error = %e, "not a reply: skipped"),
            },
            Record::Reject { xid } => {
                let (size, max) = (self.limit.refused, self.limit.max);
                warn!(%xid, size, max, "reply too large: its call fails");
                let error = Arc::new(Error::ReplyTooLarge { xid, size, max });
                self.flights.done(Tag(u64::from(xid.0)));
                self.calls.fail(Tag(u64::from(xid.0)), error);
            }
            other => debug!(record = %other, "skipped"),
        }
    }
}
