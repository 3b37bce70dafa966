//! The tokio drivers: [`Sender`] cuts memos and sends their grams over a [`Link`];
//! [`Receiver`] feeds the grams that arrive to [`Reassembly`] and yields whole memos.

use std::future::poll_fn;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_util::Stream;
use tokio::time::Sleep;
use tracing::{debug, trace, warn};

use crate::segment::Cutter;
use crate::{
    Config, Direction, Encoding, Error, Link, Memo, Mid, Reassembly, Shape, Signer, Trust,
    TrustHandle, WireLog,
};

/// The send half: cuts each memo into grams (hio's `rend`) and sends them in order.
///
/// Backpressure is the socket's: a send waits while the socket cannot take the next gram.
/// Clones share the link, and any number of them may send at once (each send waits its own
/// turn on the socket).
/// Dropping a [`send`](Sender::send) future part way leaves the peer an incomplete memo,
/// which its reassembly drops after its timeout.
///
/// ```
/// use std::sync::Arc;
/// use futures_util::StreamExt;
/// use memogram::{Config, MemoryNet, Receiver, Sender};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), memogram::Error> {
/// let net = MemoryNet::new(64);
/// let (a, b) = (Arc::new(net.bind(1)), Arc::new(net.bind(2)));
/// let sender = Sender::new(a, Config::default()).size(100);
/// let mut receiver = Receiver::new(b, Config::default());
/// sender.send(&[7; 1000], &2).await?;
/// let memo = receiver.next().await.expect("a memo")?;
/// assert_eq!((memo.body().len(), *memo.source()), (1000, 1));
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct Sender<L: Link> {
    link: Arc<L>,
    shape: Shape,
    signer: Option<Signer>,
    config: Config,
    wire_log: Option<WireLog<L::Addr>>,
}

impl<L: Link> Clone for Sender<L> {
    /// Another sender over the same link, with the same shape, signer and wire log.
    fn clone(&self) -> Self {
        Sender {
            link: Arc::clone(&self.link),
            shape: self.shape,
            signer: self.signer.clone(),
            config: self.config.clone(),
            wire_log: self.wire_log.clone(),
        }
    }
}

impl<L: Link> Sender<L> {
    /// A sender over `link`, with text headers, the link's usual gram size (1232 for UDP,
    /// 65535 for Unix) and no signing. `config.max_gram_size` is capped at the link's limit.
    pub fn new(link: Arc<L>, mut config: Config) -> Sender<L> {
        config.max_gram_size = config.max_gram_size.min(L::MAX_GRAM_SIZE);
        Sender {
            link,
            shape: Shape {
                size: L::GRAM_SIZE,
                encoding: Encoding::Base64,
            },
            signer: None,
            config,
            wire_log: None,
        }
    }

    /// Shows every gram sent to `log` (hio's `wl`).
    pub fn wire_log(mut self, log: WireLog<L::Addr>) -> Sender<L> {
        self.wire_log = Some(log);
        self
    }

    /// Grams of `size` bytes (clamped as [`Shape::size`] says).
    pub fn size(mut self, size: usize) -> Sender<L> {
        self.shape.size = size;
        self
    }

    /// Text or binary headers (hio's `curt` is binary).
    pub fn encoding(mut self, encoding: Encoding) -> Sender<L> {
        self.shape.encoding = encoding;
        self
    }

    /// Signs every gram with `signer`.
    pub fn signer(mut self, signer: Signer) -> Sender<L> {
        self.signer = Some(signer);
        self
    }

    /// Sends `memo` to `dst` under a fresh mid, and returns the mid. An empty memo sends
    /// nothing, as in hio.
    pub async fn send(&self, memo: &[u8], dst: &L::Addr) -> Result<Mid, Error> {
        let mid = Mid::fresh();
        self.send_as(memo, mid, dst).await?;
        Ok(mid)
    }

    /// Sends `memo` to `dst` under `mid` (each memo needs its own).
    pub async fn send_as(&self, memo: &[u8], mid: Mid, dst: &L::Addr) -> Result<(), Error> {
        // Cut, signed and sent a batch at a time: a large memo is never built whole, and
        // other tasks run between batches.
        let mut cutter = Cutter::new(memo, mid, &self.shape, self.signer.as_ref(), &self.config)?;
        let mut count = 0;
        while !cutter.is_done() {
            let grams = cutter.next_grams(GRAMS_PER_BATCH);
            self.link.send_grams(&grams, dst).await?;
            if let Some(log) = &self.wire_log {
                for gram in &grams {
                    log.log(Direction::Sent, dst, gram);
                }
            }
            count += grams.len();
            if !cutter.is_done() {
                tokio::task::yield_now().await;
            }
        }
        let grams = count;
        trace!(?dst, %mid, grams, len = memo.len(), "memo sent");
        Ok(())
    }

    /// Sends each of `memos` to `dst` under a fresh mid, in order, and returns their mids:
    /// their grams go out together, so that small memos share syscalls (over a
    /// [`UdpLink`](crate::UdpLink), grams of one size go out up to 64 a `sendmsg`).
    /// Empty memos send nothing, as in hio, and get a mid all the same.
    pub async fn send_all<'m>(
        &self,
        memos: impl IntoIterator<Item = &'m [u8]>,
        dst: &L::Addr,
    ) -> Result<Vec<Mid>, Error> {
        let mut mids = Vec::new();
        let mut batch = Vec::with_capacity(GRAMS_PER_BATCH);
        for memo in memos {
            let mid = Mid::fresh();
            mids.push(mid);
            let mut cutter =
                Cutter::new(memo, mid, &self.shape, self.signer.as_ref(), &self.config)?;
            while !cutter.is_done() {
                batch.extend(cutter.next_grams(GRAMS_PER_BATCH - batch.len()));
                if batch.len() == GRAMS_PER_BATCH {
                    self.flush(&mut batch, dst).await?;
                }
            }
        }
        self.flush(&mut batch, dst).await?;
        Ok(mids)
    }

    /// Sends the grams in `batch` and empties it.
    async fn flush(&self, batch: &mut Vec<bytes::Bytes>, dst: &L::Addr) -> Result<(), Error> {
        if batch.is_empty() {
            return Ok(());
        }
        self.link.send_grams(batch, dst).await?;
        if let Some(log) = &self.wire_log {
            for gram in batch.iter() {
                log.log(Direction::Sent, dst, gram);
            }
        }
        batch.clear();
        tokio::task::yield_now().await;
        Ok(())
    }

    /// The link it sends over.
    pub fn link(&self) -> &Arc<L> {
        &self.link
    }
}

/// The receive half: a [`Stream`] of whole memos, each with its source and signer.
///
/// Grams that are refused (malformed, badly signed, not allowed) are dropped with a `debug`
/// event and counted in the [`stats`](crate::Reassembly::stats) of its
/// [`reassembly`](Receiver::reassembly); they never end the stream. Incomplete
/// memos expire on a timer. The stream never ends by itself: a failure of the socket is
/// yielded as an `Err` item (errors that only report an earlier send, such as an ICMP
/// refusal, are skipped).
#[derive(Debug)]
pub struct Receiver<L: Link> {
    link: Arc<L>,
    reassembly: Reassembly<L::Addr>,
    buf: Vec<u8>,
    timer: Pin<Box<Sleep>>,
    trust: TrustHandle,
    /// The version of `trust` in use.
    trusted: u64,
    wire_log: Option<WireLog<L::Addr>>,
    /// Datagrams received and not yet reassembled (a batch read at once), at most a
    /// buffer's worth.
    arrived: std::collections::VecDeque<(bytes::Bytes, L::Addr)>,
    /// Where the last batch put each datagram in `buf` (kept for its capacity).
    got: Vec<(std::ops::Range<usize>, L::Addr)>,
}

/// How many grams a sender cuts (and signs) before it sends them and lets other tasks run:
/// two GSO sends' worth.
const GRAMS_PER_BATCH: usize = 128;

/// How many datagrams a receiver takes in one poll before it lets other tasks run: a flood
/// cannot hold a worker thread.
const DATAGRAMS_PER_POLL: usize = 64;

impl<L: Link> Receiver<L> {
    /// A receiver over `link` with `config`'s limits and trust, its buffer
    /// [`Config::max_gram_size`] long (clamped to the link's limit).
    ///
    /// One receiver per link: two tasks receiving on one socket can lose wake-ups.
    pub fn new(link: Arc<L>, mut config: Config) -> Receiver<L> {
        config.max_gram_size = config.max_gram_size.min(L::MAX_GRAM_SIZE);
        // One byte over the largest datagram, so that a longer one shows as too long; and
        // room for a batch of datagrams where the link reads several at once.
        let buf = vec![0; (config.max_gram_size + 1).max(crate::RECV_BUFFER)];
        let trust = TrustHandle::new(Trust::of(&config));
        Receiver {
            link,
            reassembly: Reassembly::new(config),
            buf,
            timer: Box::pin(tokio::time::sleep(std::time::Duration::ZERO)),
            trust,
            trusted: 0,
            wire_log: None,
            arrived: std::collections::VecDeque::new(),
            got: Vec::new(),
        }
    }

    /// Shows every datagram received to `log` (hio's `wl`), before it is checked.
    pub fn wire_log(mut self, log: WireLog<L::Addr>) -> Receiver<L> {
        self.wire_log = Some(log);
        self
    }

    /// A handle to replace whom this receiver believes (keys, allow-list, `authic`) while
    /// it runs.
    pub fn trust(&self) -> TrustHandle {
        self.trust.clone()
    }

    /// What it has done so far: grams, memos, and what was refused, replayed, expired or
    /// evicted.
    pub fn stats(&self) -> crate::Stats {
        self.reassembly.stats()
    }

    /// The next memo (the stream's `next`, without `StreamExt`).
    pub async fn recv(&mut self) -> Result<Memo<L::Addr>, Error> {
        poll_fn(|cx| self.poll_memo(cx)).await
    }

    /// The reassembly state: its counters and what it holds now.
    pub fn reassembly(&self) -> &Reassembly<L::Addr> {
        &self.reassembly
    }

    /// The link it receives from.
    pub fn link(&self) -> &Arc<L> {
        &self.link
    }

    fn poll_memo(&mut self, cx: &mut Context<'_>) -> Poll<Result<Memo<L::Addr>, Error>> {
        if let Some(trust) = self.trust.changed(&mut self.trusted) {
            debug!("trust replaced");
            self.reassembly.set_trust(trust);
        }
        for _ in 0..DATAGRAMS_PER_POLL {
            // The timer is armed for the oldest incomplete memo, and again after it fires.
            while let Some(deadline) = self.reassembly.next_deadline() {
                let deadline = tokio::time::Instant::from_std(deadline);
                if self.timer.deadline() != deadline {
                    self.timer.as_mut().reset(deadline);
                }
                if self.timer.as_mut().poll(cx).is_pending() {
                    break;
                }
                self.reassembly.expire(now());
            }
            if self.arrived.is_empty() {
                match self.receive(cx) {
                    Poll::Ready(Ok(())) => {}
                    Poll::Ready(Err(e)) if transient(&e) => {
                        debug!(error = %e, "socket error ignored");
                        continue;
                    }
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e.into())),
                    Poll::Pending => return Poll::Pending,
                }
            }
            let Some((datagram, source)) = self.arrived.pop_front() else {
                continue;
            };
            if let Ok(Some(memo)) = self.reassembly.receive(datagram, source, now()) {
                return Poll::Ready(Ok(memo));
            }
        }
        // Enough for one turn: the rest after other tasks have run.
        cx.waker().wake_by_ref();
        Poll::Pending
    }

    /// Takes what the link has (one datagram or several) into `arrived`; datagrams over
    /// `max_gram_size` are dropped and counted.
    fn receive(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let mut got = std::mem::take(&mut self.got);
        got.clear();
        let received = self.link.poll_recv_grams(cx, &mut self.buf, &mut got);
        if let Poll::Ready(Ok(())) = received {
            let max = self.reassembly.config().max_gram_size;
            for (range, source) in got.drain(..) {
                let datagram = &self.buf[range];
                if let Some(log) = &self.wire_log {
                    log.log(Direction::Received, &source, datagram);
                }
                if datagram.len() > max {
                    warn!(?source, max, "datagram longer than max_gram_size: dropped");
                    self.reassembly.oversize();
                    continue;
                }
                // A copy, so that a gram held for reassembly keeps only its own bytes alive.
                self.arrived
                    .push_back((bytes::Bytes::copy_from_slice(datagram), source));
            }
        }
        self.got = got;
        received
    }
}

impl<L: Link> Stream for Receiver<L> {
    type Item = Result<Memo<L::Addr>, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_memo(cx).map(Some)
    }
}

/// Errors a datagram socket reports for an earlier send (an ICMP refusal, say): not the
/// receiving socket's failure.
fn transient(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(e.kind(), ConnectionRefused | ConnectionReset | Interrupted)
}

/// Now on tokio's clock, so that tests with paused time expire state too.
fn now() -> std::time::Instant {
    tokio::time::Instant::now().into_std()
}
