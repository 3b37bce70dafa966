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
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, Waker};

use crate::config::{Config, Order};
use crate::error::Unanswered;
use crate::gate::{Gate, MAX_IN_FLIGHT, Padded};
use crate::sync::{AtomicU64, AtomicUsize, Mutex, MutexGuard, Ordering, store_buffering};

/// The number a request carries on the wire so that its reply can find it.
///
/// Tags come from a counter starting at [`Config::first_tag`] and are never reused by one
/// correlator. `u64::MAX` is never issued: the table uses it to mark a free slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Tag(pub u64);

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "tag={}", self.0)
    }
}

/// Why a reply was an orphan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrphanKind {
    /// No request ever had this tag: it is below the first tag or beyond the last one
    /// issued (or, in FIFO mode, no request was waiting).
    Unknown,
    /// The request had this tag but is over: answered already, or cancelled by dropping its
    /// [`Pending`], or failed. A tag the correlator skipped, because an older request still
    /// held its slot, counts here too: it lies among the issued ones.
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

/// Where the request holding a slot is.
enum State<R, E> {
    /// The request waits for its reply, with the waker of the task that last polled its
    /// [`Pending`] (none before the first poll). A free slot is `Waiting(None)` too, ready
    /// for the next request.
    Waiting(Option<Waker>),
    /// The reply (or the failure) has come and waits for the [`Pending`] to take it.
    Answered(Reply<R, E>),
}

/// The `holder` of a slot no request holds. Never issued as a tag: `occupy` skips it.
const FREE: u64 = u64::MAX;

/// One request's place in the table.
struct Slot<R, E> {
    /// The tag of the request holding the slot, or [`FREE`]. Taken without the lock (one
    /// compare-and-swap), given back only under it: whoever finds its tag here under the
    /// lock knows the slot stays that request's until the lock is dropped.
    holder: AtomicU64,
    state: Mutex<State<R, E>>,
}

impl<R, E> Slot<R, E> {
    fn lock(&self) -> MutexGuard<'_, State<R, E>> {
        // Every update under this lock is a whole assignment: a panic elsewhere cannot
        // leave a slot half-changed, so a poisoned lock is safe to go on with.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether the request `tag` holds this slot. Under the lock, the answer stays true
    /// until the lock is dropped. `FREE` is no request's tag: a reply naming it is an
    /// orphan, not the answer to a free slot.
    fn held_by(&self, tag: u64) -> bool {
        tag != FREE && self.holder.load(Ordering::SeqCst) == tag
    }

    /// Whether no request holds this slot.
    fn is_free(&self) -> bool {
        self.holder.load(Ordering::SeqCst) == FREE
    }

    /// Gives the slot up for the next request; called with its lock held, once its state
    /// is back to `Waiting(None)`.
    fn give_up(&self) {
        self.holder.store(FREE, Ordering::Release);
    }
}

/// Spreads consecutive tags over the table (see [`index`]).
const SCATTER: u64 = 0x9e37_79b9_7f4a_7c15;

/// The slots of the first segment of a table, and its size when it is made. Segment `s`
/// after it holds `FIRST << (s - 1)` slots, so the first `n` segments hold `FIRST << (n - 1)`:
/// a power of two, and the table doubles without moving a slot.
const FIRST: usize = 2;

/// Segments enough for the largest table: twice [`MAX_IN_FLIGHT`] slots.
const SEGMENTS: usize = (2 * MAX_IN_FLIGHT / FIRST).trailing_zeros() as usize + 1;

/// A run of slots, made at once when the table grows.
type Segment<R, E> = Box<[Slot<R, E>]>;

/// The slot of `tag` in a table of `len` slots (a power of two). Multiplying by an odd
/// constant permutes the residues modulo `len`, so any `len` consecutive tags land on `len`
/// different slots, and consecutive ones far apart (requests made together share no cache
/// line).
fn index(tag: u64, len: usize) -> usize {
    (tag.wrapping_mul(SCATTER) & (len as u64 - 1)) as usize
}

/// The segment that slot `index` lies in, and its place there.
fn segment_of(index: usize) -> (usize, usize) {
    let segment = (usize::BITS - (index / FIRST).leading_zeros()) as usize;
    let start = if segment == 0 {
        0
    } else {
        FIRST << (segment - 1)
    };
    (segment, index - start)
}

/// The requests in flight: a table of slots that a tag finds by arithmetic, shared by the
/// correlator and its [`Pending`]s. A request costs no allocation, no map and no channel:
/// its reply and its waker wait in its slot.
///
/// The table grows with the requests in flight, by doubling, up to twice the in-flight bound:
/// a correlator that makes no request holds two slots. New tags are spread over all the
/// slots there are when they are issued; a tag issued before the table grew keeps the slot it
/// was given, and is found by looking at each size the table had, newest first (a tag is in
/// one slot at most: tags are never issued twice).
struct Table<R, E> {
    /// Segments made so far, never moved or freed before the table is.
    segments: [OnceLock<Segment<R, E>>; SEGMENTS],
    /// The slots made: a power of two from `FIRST` to `max_len`. Grows, never shrinks;
    /// stored (sequentially consistent) after the segments it covers are made.
    len: AtomicUsize,
    /// Twice the in-flight bound, as a power of two.
    max_len: usize,
    /// Held while the table grows.
    growing: Mutex<()>,
    /// The in-flight bound: a request holds a permit for as long as it holds a slot.
    gate: Gate,
}

impl<R, E> Table<R, E> {
    fn new(max_in_flight: usize) -> Self {
        let gate = Gate::new(max_in_flight);
        let max_len = gate.max().saturating_mul(2).next_power_of_two();
        let table = Table {
            segments: std::array::from_fn(|_| OnceLock::new()),
            len: AtomicUsize::new(0),
            max_len,
            growing: Mutex::new(()),
            gate,
        };
        table.grow(FIRST.min(max_len));
        table
    }

    /// Makes the table at least `len` slots long (at most `max_len`).
    #[cold]
    fn grow(&self, len: usize) {
        let want = len.next_power_of_two().min(self.max_len);
        let _growing = self.growing.lock().unwrap_or_else(|p| p.into_inner());
        let mut have = self.len.load(Ordering::SeqCst);
        while have < want {
            let (segment, _) = segment_of(have);
            let size = have.max(FIRST);
            let _ = self.segments[segment].get_or_init(|| {
                (0..size)
                    .map(|_| Slot {
                        holder: AtomicU64::new(FREE),
                        state: Mutex::new(State::Waiting(None)),
                    })
                    .collect()
            });
            have += size;
        }
        // Sequentially consistent, for `answer_all` (see `Correlator::allocate`).
        self.len.store(have, Ordering::SeqCst);
        tracing::trace!(slots = have, "correlator table grew");
    }

    /// The slots there are now. Sequentially consistent: see `Correlator::allocate`.
    fn len(&self) -> usize {
        self.len.load(Ordering::SeqCst)
    }

    /// Slot `index`, if it has been made.
    fn at(&self, index: usize) -> Option<&Slot<R, E>> {
        let (segment, offset) = segment_of(index);
        self.segments.get(segment)?.get()?.get(offset)
    }

    /// The slot request `tag` holds, if it holds one now. Under that slot's lock,
    /// [`Slot::held_by`] says whether it still does.
    fn find(&self, tag: u64) -> Option<&Slot<R, E>> {
        let mut len = self.len();
        while len >= FIRST {
            match self.at(index(tag, len)) {
                Some(slot) if slot.held_by(tag) => return Some(slot),
                _ => len /= 2,
            }
        }
        None
    }

    /// Takes the slot for `tag` among the first `len` if it is free; `None` when an older
    /// request still holds it. Sequentially consistent, so that `allocate` and `fail_all`
    /// cannot both miss each other (see there).
    fn occupy(&self, tag: u64, len: usize) -> Option<&Slot<R, E>> {
        if tag == FREE {
            return None;
        }
        let slot = self.at(index(tag, len))?;
        slot.holder
            .compare_exchange(FREE, tag, Ordering::SeqCst, Ordering::Relaxed)
            .is_ok()
            .then_some(slot)
    }

    /// Frees `slot` if request `tag` still holds it, whatever it holds, and gives its permit
    /// back.
    fn free(&self, slot: &Slot<R, E>, tag: u64) -> bool {
        let mut state = slot.lock();
        if !slot.held_by(tag) {
            return false;
        }
        let held = std::mem::replace(&mut *state, State::Waiting(None));
        slot.give_up();
        drop(state);
        self.gate.release();
        // The waker or the reply is dropped outside the lock.
        drop(held);
        true
    }

    /// Hands `reply` to the request `tag` if it waits; gives the reply back otherwise.
    fn answer(&self, tag: u64, reply: Reply<R, E>) -> Result<(), Reply<R, E>> {
        let Some(slot) = self.find(tag) else {
            return Err(reply);
        };
        let mut state = slot.lock();
        let waker = match &mut *state {
            State::Waiting(waker) if slot.held_by(tag) => waker.take(),
            _ => return Err(reply),
        };
        *state = State::Answered(reply);
        drop(state);
        if let Some(waker) = waker {
            waker.wake();
        }
        Ok(())
    }

    /// Answers every waiting request with `reply()`; returns how many there were.
    fn answer_all(&self, reply: impl Fn() -> Reply<R, E>) -> usize {
        let mut answered = 0;
        for slot in (0..self.len()).filter_map(|index| self.at(index)) {
            let mut state = slot.lock();
            if slot.is_free() {
                continue;
            }
            let State::Waiting(waker) = &mut *state else {
                continue;
            };
            let waker = waker.take();
            *state = State::Answered(reply());
            drop(state);
            answered += 1;
            if let Some(waker) = waker {
                waker.wake();
            }
        }
        answered
    }
}

struct Inner<R, E> {
    order: Order,
    first_tag: u64,
    next_tag: Padded<AtomicU64>,
    table: Table<R, E>,
    /// FIFO mode: tags in the order their replies are due.
    due: Mutex<VecDeque<u64>>,
    failure: OnceLock<E>,
    orphans: AtomicU64,
}

impl<R, E> Inner<R, E> {
    /// Takes a slot and returns the tag that names it, for a request that holds the
    /// `in_flight`-th permit. The table is first grown to twice the permits taken, so at
    /// least half of it is free of the requests that hold slots now (each of them grew it so
    /// before taking its slot), and a tag whose slot an older request still holds is skipped
    /// (never issued): tags still only go up. `None` once every tag has been issued: the
    /// counter stops at `u64::MAX` (never a tag: it marks a free slot) instead of wrapping.
    fn occupy(&self, in_flight: usize) -> Option<(u64, &Slot<R, E>)> {
        if in_flight.saturating_mul(2) > self.table.len() {
            self.table.grow(in_flight.saturating_mul(2));
        }
        loop {
            let tag = self
                .next_tag
                .0
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |t| t.checked_add(1))
                .ok()?;
            // Read again on every try: a table grown by a request that took its slot since
            // is where that request's half-free promise holds.
            if let Some(slot) = self.table.occupy(tag, self.table.len()) {
                return Some((tag, slot));
            }
        }
    }
}

/// Allocates tags for requests and delivers each reply to the request that awaits it.
///
/// Cloning gives another handle to the same correlator; it is safe to use from many tasks at
/// once. A [`Pending`] borrows the handle it was allocated from, so a correlator outlives
/// every request waiting on it: none can be stranded by dropping the correlator.
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
    ///
    /// Its table of requests in flight starts at two slots and grows, by doubling, to twice
    /// the most requests that were in flight at once (at most twice `max_in_flight`, as a
    /// power of two); it never shrinks.
    pub fn new(config: Config) -> Self {
        Correlator {
            inner: Arc::new(Inner {
                order: config.order,
                first_tag: config.first_tag,
                next_tag: Padded(AtomicU64::new(config.first_tag)),
                table: Table::new(config.max_in_flight),
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
    ///
    /// The [`Pending`] borrows this handle rather than sharing ownership of the correlator:
    /// a shared count would cost every request two atomic updates (its clone and its drop) on
    /// one line that every request touches. To await a reply in another task, clone the
    /// correlator into that task and allocate there.
    pub async fn allocate(&self) -> Result<(Tag, Pending<'_, R, E>), Unanswered<E>> {
        let inner = &*self.inner;
        if let Some(e) = inner.failure.get() {
            return Err(Unanswered::Failed(e.clone()));
        }
        let Ok(in_flight) = inner.table.gate.acquire().await else {
            return Err(self.failure());
        };
        let Some((tag, slot)) = inner.occupy(in_flight) else {
            inner.table.gate.release();
            tracing::warn!("every tag has been issued");
            return Err(Unanswered::Exhausted);
        };
        // fail_all closes the gate, then answers every slot held; we took our slot, and now
        // look at the gate. Both are sequentially consistent (the store-buffering pattern),
        // so if fail_all missed our slot we see the gate closed, and free the slot ourselves.
        // (The table's length is stored and loaded sequentially consistent too, so a slot in
        // a segment made before our slot was taken is one that fail_all looks at.)
        store_buffering();
        if inner.table.gate.is_closed() && inner.table.free(slot, tag) {
            return Err(self.failure());
        }
        Ok((
            Tag(tag),
            Pending {
                tag: Tag(tag),
                slot,
                table: &inner.table,
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

    /// FIFO mode: request `tag` went on the wire; replies are matched to requests in the
    /// order of these calls. A request cancelled before it was sent never takes a turn; one
    /// cancelled after keeps it (its reply comes, and is an orphan). Nothing in tagged mode.
    pub fn sent(&self, tag: Tag) {
        if self.inner.order == Order::Fifo {
            let mut due = self.inner.due.lock().unwrap_or_else(|p| p.into_inner());
            due.push_back(tag.0);
        }
    }

    /// FIFO mode: delivers `reply` to the oldest request whose reply is due.
    ///
    /// The oldest request [`sent`](Correlator::sent) keeps its turn even if its [`Pending`]
    /// was dropped, since its reply is still on its way: that reply is then an orphan. A
    /// correlator in [`Order::Tagged`]
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
        match self.inner.table.answer(tag.0, Ok(reply)) {
            Ok(()) => Ok(()),
            Err(Ok(reply)) => {
                let issued = self.inner.next_tag.0.load(Ordering::Relaxed);
                let kind = if (self.inner.first_tag..issued).contains(&tag.0) {
                    OrphanKind::Finished
                } else {
                    OrphanKind::Unknown
                };
                Err(self.orphan(Some(tag), kind, reply))
            }
            // Never: what comes back is what was given.
            Err(Err(_)) => Ok(()),
        }
    }

    fn orphan(&self, tag: Option<Tag>, kind: OrphanKind, reply: R) -> Orphan<R> {
        let orphan = Orphan { tag, kind, reply };
        self.inner.orphans.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(%orphan, "reply dropped: nobody waits for it");
        orphan
    }

    /// Whether request `tag` is still outstanding: allocated, not cancelled, and its reply
    /// not yet taken. Lock-free: for a driver that holds per-request state (a deadline, a
    /// message to send again) and wants to drop it for requests nobody waits for any more.
    pub fn is_outstanding(&self, tag: Tag) -> bool {
        self.inner.table.find(tag.0).is_some()
    }

    /// Fails the one request waiting on `tag` with `error` (its reply could not be taken,
    /// or it could not be sent), leaving the others and the link as they are. `false` when
    /// no request waits on `tag`.
    pub fn fail(&self, tag: Tag, error: E) -> bool {
        let failed = self
            .inner
            .table
            .answer(tag.0, Err(Unanswered::Failed(error)))
            .is_ok();
        tracing::debug!(%tag, failed, "one request failed");
        failed
    }

    /// The link failed: every waiting request resolves to [`Unanswered::Failed`] with `error`,
    /// at once, and so does every later [`allocate`](Correlator::allocate), including those
    /// already waiting for capacity. Returns how many waiting requests were failed.
    ///
    /// The first error given is the one every request sees; later calls fail nothing new.
    pub fn fail_all(&self, error: E) -> usize {
        let _ = self.inner.failure.set(error);
        self.inner.table.gate.close();
        // The other side of `allocate`'s store-buffering pattern (see there).
        store_buffering();
        let failure = self.failure();
        let failed = self.inner.table.answer_all(|| Err(failure.clone()));
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
            // Never: the failure is set before the gate closes.
            None => Unanswered::Spent,
        }
    }
}

impl<R, E> Correlator<R, E> {
    /// How many requests await replies now.
    pub fn in_flight(&self) -> usize {
        self.inner.table.gate.in_flight()
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
/// It borrows the [`Correlator`] handle it was allocated from.
///
/// Dropping it cancels the request locally: its slot is freed at once for another request,
/// and a reply that still comes for its tag is counted as an orphan.
#[must_use = "a Pending that is dropped cancels its request"]
pub struct Pending<'a, R, E> {
    tag: Tag,
    slot: &'a Slot<R, E>,
    table: &'a Table<R, E>,
    done: bool,
}

impl<R, E> Pending<'_, R, E> {
    /// The tag this reply will carry.
    pub fn tag(&self) -> Tag {
        self.tag
    }
}

impl<R, E> fmt::Debug for Pending<'_, R, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pending").field("tag", &self.tag).finish()
    }
}

impl<R, E> Future for Pending<'_, R, E> {
    type Output = Result<R, Unanswered<E>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if self.done {
            // Polled again after it resolved: its slot is no longer its own.
            return Poll::Ready(Err(Unanswered::Spent));
        }
        let slot = self.slot;
        let mut state = slot.lock();
        // Only this Pending takes its reply and frees its slot: the slot is still its own.
        let reply = match std::mem::replace(&mut *state, State::Waiting(None)) {
            State::Answered(reply) => reply,
            State::Waiting(waker) => {
                let waker = match waker {
                    Some(waker) if waker.will_wake(cx.waker()) => waker,
                    _ => cx.waker().clone(),
                };
                *state = State::Waiting(Some(waker));
                return Poll::Pending;
            }
        };
        slot.give_up();
        drop(state);
        self.table.gate.release();
        self.done = true;
        Poll::Ready(reply)
    }
}

impl<R, E> Drop for Pending<'_, R, E> {
    fn drop(&mut self) {
        if !self.done && self.table.free(self.slot, self.tag.0) {
            tracing::trace!(tag = self.tag.0, "request cancelled: its slot is free");
        }
    }
}
