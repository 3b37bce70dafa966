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
use tracing::{Instrument, debug, trace};

use crate::{
    AcceptAll, Call, DatagramSocket, Error, PeerAddr, Record, RecordDatagram, RecordStream, Reply,
    Xid,
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
/// use rpc_record::{Client, Config, Program, RecordStream, ServerError, serve_stream};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), rpc_record::Error> {
/// let (a, b) = tokio::io::duplex(4096);
/// let config = Config::default();
/// let program = Program::new(300000, [2, 3]);
/// let server = RecordStream::new(b, &config);
/// tokio::spawn(async move { serve_stream(server, &program).await });
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
    outbox: mpsc::UnboundedSender<Bytes>,
    /// For datagrams: how long to wait before sending a call again.
    retry: Option<Duration>,
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
    /// there. A call without a reply is sent again every `retry` (the same xid) until it is
    /// answered or dropped: wrap calls in a timeout.
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
        let driver = Driver {
            link,
            calls: calls.clone(),
            rx,
        };
        tokio::spawn(driver.run().instrument(tracing::debug_span!("rpc client")));
        Client {
            calls,
            outbox,
            retry,
        }
    }

    /// Calls `procedure` of program `prog` version `vers` with `args` (AUTH_NONE) and waits
    /// for the reply. A server's refusal (PROG_MISMATCH and the like) is a reply, not an
    /// error: see [`Reply::outcome`].
    pub async fn call(
        &self,
        prog: u32,
        vers: u32,
        procedure: u32,
        args: Bytes,
    ) -> Result<Reply, Error> {
        let (tag, mut pending) = self.calls.allocate().await.map_err(unanswered)?;
        if tag.0 > LAST_XID {
            return Err(Error::XidsExhausted);
        }
        let call = Call::new(Xid(tag.0 as u32), prog, vers, procedure, args);
        trace!(%call, "out");
        let mut message = BytesMut::with_capacity(call.encoded_len());
        call.encode(&mut message);
        let message = message.freeze();
        loop {
            if self.outbox.send(message.clone()).is_err() {
                return Err(Error::Ended(Arc::new(Error::Closed)));
            }
            let Some(retry) = self.retry else {
                return pending.await.map_err(unanswered);
            };
            match tokio::time::timeout(retry, &mut pending).await {
                Ok(answer) => return answer.map_err(unanswered),
                Err(_) => debug!(xid = %call.xid, ?retry, "no reply yet: sending again"),
            }
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

fn unanswered(e: Unanswered<Arc<Error>>) -> Error {
    match e {
        Unanswered::Failed(e) => Error::Ended(e),
        // Never: a call awaits its reply once.
        Unanswered::Spent => Error::Ended(Arc::new(Error::Closed)),
    }
}

/// What the driver needs of a transporter.
trait Link: Send + 'static {
    /// The next message from the server; `None` at a clean end.
    fn poll_message(&mut self, cx: &mut Context<'_>) -> Poll<Result<Option<Bytes>, Error>>;
    /// Queues a message.
    fn feed(&mut self, message: &[u8]);
    /// Sends what is queued.
    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>>;
}

struct StreamLink<T>(RecordStream<T>);

impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Link for StreamLink<T> {
    fn poll_message(&mut self, cx: &mut Context<'_>) -> Poll<Result<Option<Bytes>, Error>> {
        self.0
            .poll_read_with(cx, &mut AcceptAll)
            .map_ok(|record| match record {
                Some(Record::Accept(message)) => Some(message),
                _ => None,
            })
    }

    fn feed(&mut self, message: &[u8]) {
        self.0.feed(message);
    }

    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.0.poll_flush(cx)
    }
}

struct DatagramLink<S> {
    socket: RecordDatagram<S>,
    server: PeerAddr,
    queue: VecDeque<Bytes>,
}

impl<S: DatagramSocket + Send + 'static> Link for DatagramLink<S> {
    fn poll_message(&mut self, cx: &mut Context<'_>) -> Poll<Result<Option<Bytes>, Error>> {
        loop {
            match self.socket.poll_recv_with(cx, &mut AcceptAll) {
                Poll::Ready(Ok((Record::Accept(message), source))) if source == self.server => {
                    return Poll::Ready(Ok(Some(message)));
                }
                Poll::Ready(Ok((_, source))) => debug!(%source, "datagram from elsewhere: skipped"),
                // A datagram too large is gone; the next one may be the reply.
                Poll::Ready(Err(e @ Error::DatagramTooLarge { .. })) => {
                    debug!(error = %e, "skipped")
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    fn feed(&mut self, message: &[u8]) {
        self.queue.push_back(Bytes::copy_from_slice(message));
    }

    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        while let Some(message) = self.queue.front() {
            std::task::ready!(self.socket.poll_send_to(cx, message, &self.server))?;
            self.queue.pop_front();
        }
        Poll::Ready(Ok(()))
    }
}

struct Driver<L> {
    link: L,
    calls: Calls,
    rx: mpsc::UnboundedReceiver<Bytes>,
}

impl<L: Link> Driver<L> {
    async fn run(mut self) {
        let end = poll_fn(|cx| self.poll_drive(cx)).await;
        let reason = end.err().unwrap_or(Error::Closed);
        debug!(%reason, "client ended");
        self.calls.fail_all(Arc::new(reason));
    }

    /// Runs until every handle is gone (`Ok`) or the link ends.
    fn poll_drive(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        loop {
            let mut progress = false;
            loop {
                match self.rx.poll_recv(cx) {
                    Poll::Ready(Some(message)) => self.link.feed(&message),
                    Poll::Ready(None) => return Poll::Ready(Ok(())),
                    Poll::Pending => break,
                }
            }
            if let Poll::Ready(result) = self.link.poll_flush(cx) {
                result?;
            }
            while let Poll::Ready(message) = self.link.poll_message(cx) {
                let Some(message) = message? else {
                    return Poll::Ready(Err(Error::Closed));
                };
                progress = true;
                match Reply::decode(message) {
                    Ok(reply) => {
                        let xid = reply.xid;
                        trace!(%reply, "in");
                        if self.calls.correlate(Tag(u64::from(xid.0)), reply).is_err() {
                            debug!(%xid, "a reply no call waits for: skipped");
                        }
                    }
                    Err(e) => debug!(error = %e, "not a reply: skipped"),
                }
            }
            if !progress {
                return Poll::Pending;
            }
        }
    }
}
