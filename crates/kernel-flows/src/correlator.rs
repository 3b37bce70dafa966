//! The correlator: fault's Invocations (`i_allocate`, `i_correlate`) for request/response links.
//!
//! A client [`allocate`](Correlator::allocate)s a [`Tag`] and a [`Pending`] future before it
//! sends a request; the task that reads replies [`correlate`](Correlator::correlate)s each one
//! to its tag (or, in FIFO mode, to the oldest request with
//! [`correlate_next`](Correlator::correlate_next)). A reply nobody waits for is an
//! [`Orphan`]: counted, traced and handed back, never fatal. When the link dies,
//! [`fail_all`](Correlator::fail_all) wakes every waiter with the error at once.

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::MutexGuard;

use tokio::sync::oneshot;

use crate::gate::{Gate, Padded};

/// The number a request carries on the wire so that its reply can find it.
///
/// Tags come from a counter starting at [`Config::first_tag`] and are never reused by one
/// correlator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Tag(pub u64);

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "tag={}", self.0)
    }
}

/// How replies find their requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Order {
    /// Each reply names its tag (packetstream's tags, ONC RPC's xids). Replies may come in any
    /// order.
    #[default]
    Tagged,
    /// The n-th reply answers the n-th request (HTTP/1.1 pipelining, fault's Invocations).
    /// Requests must go on the wire in the order their tags were allocated.
    Fifo,
}

/// Limits and numbering of a [`Correlator`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// How replies are matched to requests.
    pub order: Order,
    /// How many requests may await replies at once; [`Correlator::allocate`] waits beyond it.
    /// At least 1 (0 is taken as 1).
    pub max_in_flight: usize,
    /// The first tag handed out.
    pub first_tag: u64,
}

impl Default for Config {
    /// Tagged, 64 in flight, tags from 1.
    fn default() -> Self {
        Config {
            order: Order::Tagged,
            max_in_flight: 64,
            first_tag: 1,
        }
    }
}

/// Why a request got no reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unanswered<E> {
    /// The link failed: [`Correlator::fail_all`] was called with this error.
    #[error("{0}")]
    Failed(E),
    /// Every handle to the correlator was dropped while the request waited.
    #[error("the correlator was dropped while the request waited for its reply")]
    Abandoned,
}

/// Why a reply was an orphan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrphanKind {
    /// No request ever had this tag (or, in FIFO mode, no request was waiting).
    Unknown,
    /// The request had this tag but is over: answered already, or cancelled by dropping its
    /// [`Pending`], or failed.
    Finished,
}

/// A reply that no request waits for, handed back by [`Correlator::correlate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Orphan<R> {
    /// The tag the reply carried (in FIFO mode, the tag it would have answered, if any).
    pub tag: Option<Tag>,
    /// Why nobody waits for it.
    pub kind: OrphanKind,
    /// The reply itself.
    pub reply: R,
}

impl<R> fmt::Display for Orphan<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            OrphanKind::Unknown => "unknown",
            OrphanKind::Finished => "finished",
        };
        match self.tag {
            Some(tag) => write!(f, "orphan reply {tag} ({kind})"),
            None => write!(f, "orphan reply ({kind})"),
        }
    }
}

type Reply<R, E> = Result<R, Unanswered<E>>;

/// How many stripes the map of waiting requests has. Consecutive tags land in different
/// stripes, so tasks that allocate at the same time rarely meet on a lock.
const STRIPES: usize = 32;

/// Hashes tags with one multiply. The tags we insert are our own sequential numbers; a peer
/// only chooses the tags it looks up, which costs it at most the probes of one small table.
#[derive(Debug, Default, Clone, Copy)]
struct TagHasher(u64);

impl Hasher for TagHasher {
    fn finish(&self) -> u64 {
        self.0 ^ (self.0 >> 32)
    }

    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.write_u64(self.0 ^ u64::from(*byte));
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

type Waiting<R, E> = HashMap<u64, oneshot::Sender<Reply<R, E>>, BuildHasherDefault<TagHasher>>;

/// One stripe of the map of waiting requests. Each is its own allocation, padded, so that a
/// [`Pending`] holding its stripe shares no cache line with the other stripes or the counters.
struct Stripe<R, E> {
    waiting: Mutex<Waiting<R, E>>,
    gate: Arc<Gate>,
}

impl<R, E> Stripe<R, E> {
    fn lock(&self) -> MutexGuard<'_, Waiting<R, E>> {
        // Every update under this lock is one insert or remove: a panic elsewhere cannot
        // leave the map half-changed, so a poisoned lock is safe to go on with.
        self.waiting.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes the sender for `tag` out, giving its in-flight slot back.
    fn take(&self, tag: u64) -> Option<oneshot::Sender<Reply<R, E>>> {
        let taken = self.lock().remove(&tag);
        if taken.is_some() {
            self.gate.release();
        }
        taken
    }
}

/// A stripe as it is shared between the correlator and its [`Pending`]s.
type SharedStripe<R, E> = Arc<Padded<Stripe<R, E>>>;

struct Inner<R, E> {
    order: Order,
    first_tag: u64,
    next_tag: Padded<AtomicU64>,
    gate: Arc<Gate>,
    stripes: Box<[SharedStripe<R, E>]>,
    /// FIFO mode: tags in the order their replies are due.
    due: Mutex<VecDeque<u64>>,
    failure: OnceLock<E>,
    orphans: AtomicU64,
}

impl<R, E> Inner<R, E> {
    fn stripe(&self, tag: u64) -> &SharedStripe<R, E> {
        &self.stripes[(tag as usize) % STRIPES]
    }
}

impl<R, E> Drop for Inner<R, E> {
    /// The last handle is gone: nobody can answer the waiting requests any more, so their
    /// senders are dropped and each [`Pending`] resolves to [`Unanswered::Abandoned`].
    fn drop(&mut self) {
        for stripe in self.stripes.iter() {
            stripe.0.lock().clear();
        }
    }
}

/// Allocates tags for requests and delivers each reply to the request that awaits it.
///
/// Cloning gives another handle to the same correlator; it is safe to use from many tasks at
/// once. When every handle is dropped, waiting requests resolve to
/// [`Unanswered::Abandoned`].
///
/// ```
/// use kernel_flows::{Config, Correlator, OrphanKind, Tag, Unanswered};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let correlator: Correlator<&str, &str> = Correlator::new(Config { first_tag: 2, ..Config::default() });
/// let (tag, reply) = correlator.allocate().await.unwrap();
/// assert_eq!(tag, Tag(2));
///
/// // The reader task sees the reply for tag 2 ...
/// correlator.correlate(tag, "pong").unwrap();
/// assert_eq!(reply.await, Ok("pong"));
///
/// // ... and a second reply for the same tag is an orphan, not a crash.
/// let orphan = correlator.correlate(tag, "pong again").unwrap_err();
/// assert_eq!(orphan.kind, OrphanKind::Finished);
/// assert_eq!(correlator.orphans(), 1);
///
/// // The link dies: every waiter fails at once, and so does every later allocation.
/// let (_, waiting) = correlator.allocate().await.unwrap();
/// correlator.fail_all("connection reset");
/// assert_eq!(waiting.await, Err(Unanswered::Failed("connection reset")));
/// assert!(correlator.allocate().await.is_err());
/// # }
/// ```
pub struct Correlator<R, E> {
    inner: Arc<Inner<R, E>>,
}

impl<R, E> Clone for Correlator<R, E> {
    fn clone(&self) -> Self {
        Correlator {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<R, E> fmt::Debug for Correlator<R, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Correlator")
            .field("order", &self.inner.order)
            .field("in_flight", &self.in_flight())
            .field("orphans", &self.orphans())
            .finish_non_exhaustive()
    }
}

impl<R, E: Clone> Correlator<R, E> {
    /// A correlator with the given limits and numbering.
    pub fn new(config: Config) -> Self {
        let gate = Arc::new(Gate::new(config.max_in_flight));
        let stripes = (0..STRIPES)
            .map(|_| {
                Arc::new(Padded(Stripe {
                    waiting: Mutex::new(HashMap::default()),
                    gate: Arc::clone(&gate),
                }))
            })
            .collect();
        Correlator {
            inner: Arc::new(Inner {
                order: config.order,
                first_tag: config.first_tag,
                next_tag: Padded(AtomicU64::new(config.first_tag)),
                gate,
                stripes,
                due: Mutex::new(VecDeque::new()),
                failure: OnceLock::new(),
                orphans: AtomicU64::new(0),
            }),
        }
    }

    /// Allocates a tag and the future that resolves to its reply (fault's `i_allocate`).
    ///
    /// Waits while [`Config::max_in_flight`] requests are outstanding. Fails at once after
    /// [`fail_all`](Correlator::fail_all). Cancel-safe: dropping this future before it
    /// resolves allocates nothing.
    pub async fn allocate(&self) -> Result<(Tag, Pending<R, E>), Unanswered<E>> {
        if let Some(e) = self.inner.failure.get() {
            return Err(Unanswered::Failed(e.clone()));
        }
        if self.inner.gate.acquire().await.is_err() {
            return Err(self.failure());
        }
        let (tx, rx) = oneshot::channel();
        let tag = match self.inner.order {
            Order::Tagged => {
                let tag = self.inner.next_tag.0.fetch_add(1, Ordering::Relaxed);
                self.inner.stripe(tag).0.lock().insert(tag, tx);
                tag
            }
            Order::Fifo => {
                // The due order must be the tag order, so both are decided under one lock.
                let mut due = self.inner.due.lock().unwrap_or_else(|p| p.into_inner());
                let tag = self.inner.next_tag.0.fetch_add(1, Ordering::Relaxed);
                self.inner.stripe(tag).0.lock().insert(tag, tx);
                due.push_back(tag);
                tag
            }
        };
        let stripe = self.inner.stripe(tag);
        // fail_all sets the failure before it drains the stripes: if it ran between our
        // insert and this check, either it drained our sender (and the Pending resolves to
        // the failure) or we take the sender back ourselves here.
        if self.inner.failure.get().is_some() && stripe.0.take(tag).is_some() {
            return Err(self.failure());
        }
        Ok((
            Tag(tag),
            Pending {
                tag: Tag(tag),
                reply: rx,
                stripe: Arc::clone(stripe),
                done: false,
            },
        ))
    }

    /// Delivers the reply for `tag` to its [`Pending`] (fault's `i_correlate`).
    ///
    /// A reply nobody waits for comes back as an [`Orphan`], after it is counted and traced;
    /// the correlator goes on. A correlator in [`Order::Fifo`] takes its replies through
    /// [`correlate_next`](Correlator::correlate_next), so a tagged reply to it is an orphan.
    pub fn correlate(&self, tag: Tag, reply: R) -> Result<(), Orphan<R>> {
        if self.inner.order == Order::Fifo {
            return Err(self.orphan(Some(tag), OrphanKind::Unknown, reply));
        }
        self.deliver(tag, reply)
    }

    /// FIFO mode: delivers `reply` to the oldest request whose reply is due.
    ///
    /// The oldest request keeps its turn even if its [`Pending`] was dropped, since its reply
    /// is still on its way: that reply is then an orphan. A correlator in [`Order::Tagged`]
    /// has no order to follow, so every reply given here is an orphan.
    pub fn correlate_next(&self, reply: R) -> Result<(), Orphan<R>> {
        let next = match self.inner.order {
            Order::Tagged => None,
            Order::Fifo => self
                .inner
                .due
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .pop_front(),
        };
        match next {
            Some(tag) => self.deliver(Tag(tag), reply),
            None => Err(self.orphan(None, OrphanKind::Unknown, reply)),
        }
    }

    fn deliver(&self, tag: Tag, reply: R) -> Result<(), Orphan<R>> {
        let Some(tx) = self.inner.stripe(tag.0).0.take(tag.0) else {
            let issued = self.inner.next_tag.0.load(Ordering::Relaxed);
            let kind = if (self.inner.first_tag..issued).contains(&tag.0) {
                OrphanKind::Finished
            } else {
                OrphanKind::Unknown
            };
            return Err(self.orphan(Some(tag), kind, reply));
        };
        match tx.send(Ok(reply)) {
            Ok(()) => Ok(()),
            // The Pending was dropped just now, before it could take its sender back.
            Err(Ok(reply)) => Err(self.orphan(Some(tag), OrphanKind::Finished, reply)),
            Err(Err(_)) => Ok(()),
        }
    }

    fn orphan(&self, tag: Option<Tag>, kind: OrphanKind, reply: R) -> Orphan<R> {
        let orphan = Orphan { tag, kind, reply };
        self.inner.orphans.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(%orphan, "reply dropped: nobody waits for it");
        orphan
    }

    /// The link failed: every waiting request resolves to [`Unanswered::Failed`] with `error`,
    /// at once, and so does every later [`allocate`](Correlator::allocate), including those
    /// already waiting for capacity. Returns how many waiting requests were failed.
    ///
    /// The first error given is the one every request sees; later calls fail nothing new.
    pub fn fail_all(&self, error: E) -> usize {
        let _ = self.inner.failure.set(error);
        self.inner.gate.close();
        let failure = self.failure();
        let mut failed = 0;
        for stripe in self.inner.stripes.iter() {
            let drained: Vec<_> = stripe.0.lock().drain().collect();
            for (_, tx) in drained {
                stripe.0.gate.release();
                failed += usize::from(tx.send(Err(failure.clone())).is_ok());
            }
        }
        self.inner
            .due
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
        tracing::debug!(failed, "correlator failed every waiting request");
        failed
    }

    fn failure(&self) -> Unanswered<E> {
        match self.inner.failure.get() {
            Some(e) => Unanswered::Failed(e.clone()),
            None => Unanswered::Abandoned,
        }
    }
}

impl<R, E> Correlator<R, E> {
    /// How many requests await replies now.
    pub fn in_flight(&self) -> usize {
        self.inner.gate.in_flight()
    }

    /// How many replies were orphans so far.
    pub fn orphans(&self) -> u64 {
        self.inner.orphans.load(Ordering::Relaxed)
    }

    /// Whether [`fail_all`](Correlator::fail_all) was called.
    pub fn is_failed(&self) -> bool {
        self.inner.failure.get().is_some()
    }
}

/// A request's reply, on its way: resolves when the reply is correlated or the link fails.
///
/// Dropping it cancels the request locally: its slot is freed at once for another request,
/// and a reply that still comes for its tag is counted as an orphan.
#[must_use = "a Pending that is dropped cancels its request"]
pub struct Pending<R, E> {
    tag: Tag,
    reply: oneshot::Receiver<Reply<R, E>>,
    stripe: SharedStripe<R, E>,
    done: bool,
}

impl<R, E> Pending<R, E> {
    /// The tag this reply will carry.
    pub fn tag(&self) -> Tag {
        self.tag
    }
}

impl<R, E> fmt::Debug for Pending<R, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pending").field("tag", &self.tag).finish()
    }
}

impl<R, E> Future for Pending<R, E> {
    type Output = Result<R, Unanswered<E>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        match Pin::new(&mut this.reply).poll(cx) {
            Poll::Ready(Ok(reply)) => {
                this.done = true;
                Poll::Ready(reply)
            }
            // Every path that takes a sender away sends into it first; only dropping the
            // whole correlator drops a sender unsent.
            Poll::Ready(Err(_)) => {
                this.done = true;
                Poll::Ready(Err(Unanswered::Abandoned))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<R, E> Drop for Pending<R, E> {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        if self.stripe.0.take(self.tag.0).is_some() {
            tracing::trace!(tag = self.tag.0, "request cancelled: its slot is free");
        }
    }
}
