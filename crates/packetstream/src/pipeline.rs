//! [`Pipeline`]: requests sent in batches and their responses taken in batches, for one task
//! that keeps many requests in flight; and the driver's table of which tags are whose.
//!
//! A [`request`](crate::PacketConnection::request) costs a dozen atomic updates (a permit, a
//! tag, a slot, its waker, the outbox), which is most of its cost when requests are small. A
//! pipeline takes its tags a block at a time, sends the requests of a batch with one lock of
//! the outbox, and gets the responses of a read with one lock of its inbox: the driver knows
//! its tags from the [`Route`]s that go with its requests, and gathers their responses.

use std::collections::VecDeque;
use std::fmt;
use std::future::poll_fn;
use std::ops::Range;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use futures_util::task::AtomicWaker;
use tracing::{debug, trace};

use crate::{Error, PacketConnection, Response};

/// How many tags a pipeline takes from the connection's counter at a time.
const BLOCK: u64 = 1024;

/// A response with the tag of the request it answers.
type Answer = (u64, Response);

/// A change to the driver's table of pipelines. Changes go with the requests through the
/// shared outbox, so the driver knows a pipeline's tags before any of its requests is written.
pub(crate) enum Route {
    /// The pipeline's requests use tags from `tags`.
    Open {
        /// Where the responses go.
        inbox: Arc<Inbox>,
        /// The block of tags.
        tags: Range<u64>,
    },
    /// The block of tags starting at `first` is spent: every tag in it was answered.
    Retire {
        /// Whose block.
        inbox: Arc<Inbox>,
        /// The block's first tag.
        first: u64,
    },
    /// The pipeline was dropped: responses to its tags are orphans.
    Close(Arc<Inbox>),
}

#[derive(Default)]
struct Delivered {
    answers: VecDeque<Answer>,
    /// How the link ended; given once the answers before it are taken.
    failure: Option<Error>,
    /// The pipeline is gone.
    dropped: bool,
}

/// Where the driver puts a pipeline's responses, and the pipeline's task to wake.
pub(crate) struct Inbox {
    delivered: Mutex<Delivered>,
    waker: AtomicWaker,
    /// The pipeline's window: no more responses than this can be due, so no more are kept.
    window: usize,
}

impl Inbox {
    fn lock(&self) -> MutexGuard<'_, Delivered> {
        // Every update is a whole push, swap or assignment: safe to go on after a panic.
        self.delivered.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn new(window: usize) -> Inbox {
        Inbox {
            delivered: Mutex::default(),
            waker: AtomicWaker::new(),
            window,
        }
    }

    /// Driver: hands `batch` over and empties it, and returns how many of its responses were
    /// dropped as orphans: beyond the window, more than the pipeline's requests can be
    /// answered by, they can only be a peer's duplicates. `None`, leaving `batch` as it is,
    /// when the pipeline was dropped.
    fn deliver(&self, batch: &mut VecDeque<Answer>) -> Option<u64> {
        let mut delivered = self.lock();
        if delivered.dropped {
            return None;
        }
        let room = self.window.saturating_sub(delivered.answers.len());
        let excess = batch.len().saturating_sub(room);
        batch.truncate(batch.len() - excess);
        if delivered.answers.is_empty() {
            std::mem::swap(&mut delivered.answers, batch);
        } else {
            delivered.answers.append(batch);
        }
        drop(delivered);
        batch.clear();
        self.waker.wake();
        Some(excess as u64)
    }

    /// The link ended: the pipeline's requests still waiting get `error`.
    pub(crate) fn fail(&self, error: &Error) {
        self.lock().failure.get_or_insert_with(|| error.clone());
        self.waker.wake();
    }

    /// Pipeline: moves what was delivered into the empty `into`, or gives the failure.
    fn take(&self, into: &mut VecDeque<Answer>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        // Registered before looking, so a delivery after the look still wakes this task.
        self.waker.register(cx.waker());
        let mut delivered = self.lock();
        if !delivered.answers.is_empty() {
            std::mem::swap(&mut delivered.answers, into);
            return Poll::Ready(Ok(()));
        }
        match &delivered.failure {
            Some(e) => Poll::Ready(Err(e.clone())),
            None => Poll::Pending,
        }
    }
}

/// A pipeline's entry in the driver's table.
struct Pipe {
    inbox: Arc<Inbox>,
    blocks: Vec<Range<u64>>,
    /// The responses read for it in this round.
    batch: VecDeque<Answer>,
}

/// The driver's table of pipelines: which tags are whose, and the responses gathered for
/// each since the last delivery.
#[derive(Default)]
pub(crate) struct Routes {
    pipes: Vec<Pipe>,
    gathered: bool,
}

impl Routes {
    /// Whether no pipeline is known: then no response needs looking up here.
    pub fn is_empty(&self) -> bool {
        self.pipes.is_empty()
    }

    fn pipe(&mut self, inbox: &Arc<Inbox>) -> Option<usize> {
        self.pipes
            .iter()
            .position(|pipe| Arc::ptr_eq(&pipe.inbox, inbox))
    }

    pub fn apply(&mut self, route: Route) {
        match route {
            Route::Open { inbox, tags } => match self.pipe(&inbox) {
                Some(i) => self.pipes[i].blocks.push(tags),
                None => self.pipes.push(Pipe {
                    inbox,
                    blocks: vec![tags],
                    batch: VecDeque::new(),
                }),
            },
            Route::Retire { inbox, first } => {
                if let Some(i) = self.pipe(&inbox) {
                    self.pipes[i].blocks.retain(|tags| tags.start != first);
                }
            }
            Route::Close(inbox) => {
                if let Some(i) = self.pipe(&inbox) {
                    self.pipes.swap_remove(i);
                }
            }
        }
    }

    /// Keeps the response to `tag` (on channel 0) for the pipeline that sent it, or gives it
    /// back when no pipeline did.
    #[inline]
    pub fn route(&mut self, tag: u64, response: Response) -> Result<(), Response> {
        let pipe = self
            .pipes
            .iter_mut()
            .find(|pipe| pipe.blocks.iter().any(|tags| tags.contains(&tag)));
        match pipe {
            Some(pipe) => {
                pipe.batch.push_back((tag, response));
                self.gathered = true;
                Ok(())
            }
            None => Err(response),
        }
    }

    /// Hands every pipeline the responses gathered for it, waking each once. Returns how many
    /// were orphans: beyond a pipeline's window (duplicates), or for a pipeline that was
    /// dropped (and is forgotten now).
    pub fn deliver(&mut self) -> u64 {
        if !std::mem::take(&mut self.gathered) {
            return 0;
        }
        let mut orphans = 0;
        self.pipes.retain_mut(|pipe| {
            if pipe.batch.is_empty() {
                return true;
            }
            match pipe.inbox.deliver(&mut pipe.batch) {
                Some(excess) => {
                    orphans += excess;
                    true
                }
                None => {
                    orphans += pipe.batch.len() as u64;
                    false
                }
            }
        });
        if orphans > 0 {
            debug!(orphans, "responses to a dropped pipeline: orphans");
        }
        orphans
    }
}

/// A block of tags the pipeline took, and which of them wait for a response.
struct Block {
    tags: Range<u64>,
    /// The next tag to issue.
    next: u64,
    /// One bit per tag: set while its request waits.
    waiting: Vec<u64>,
    open: usize,
}

impl Block {
    fn new(first: u64) -> Block {
        Block {
            tags: first..first + BLOCK,
            next: first,
            waiting: vec![0; BLOCK.div_ceil(64) as usize],
            open: 0,
        }
    }

    fn issue(&mut self) -> Option<u64> {
        if self.next == self.tags.end {
            return None;
        }
        let tag = self.next;
        self.next += 1;
        let i = tag - self.tags.start;
        self.waiting[(i / 64) as usize] |= 1 << (i % 64);
        self.open += 1;
        Some(tag)
    }

    /// Whether `tag`'s request was waiting; it is not from now on.
    fn settle(&mut self, tag: u64) -> bool {
        let i = tag - self.tags.start;
        let (word, bit) = ((i / 64) as usize, 1 << (i % 64));
        if self.waiting[word] & bit == 0 {
            return false;
        }
        self.waiting[word] &= !bit;
        self.open -= 1;
        true
    }

    /// Every tag issued and answered.
    fn spent(&self) -> bool {
        self.next == self.tags.end && self.open == 0
    }
}

/// Requests sent in batches on channel 0 and their responses taken in the order they come,
/// for one task that keeps many requests in flight.
///
/// Made by [`PacketConnection::pipeline`]. [`send`](Pipeline::send) encodes a request and
/// returns its tag, [`flush`](Pipeline::flush) hands every request sent since the last
/// flush to the connection at once, and [`recv`](Pipeline::recv) returns the next response
/// with the tag it answers, flushing first when it has to wait. Compared with [`request`](PacketConnection::request), nothing
/// is done per request across threads: the tags come a block at a time from the
/// connection's counter (so they are never reused on the connection either), the requests
/// of a flush go out together, and the responses of one read come together. The cost is
/// that the responses come in the order the peer sends them, not one future each.
///
/// At most [`Config::max_in_flight`](crate::Config::max_in_flight) of its requests wait
/// at once; this bound is the pipeline's own, apart from that of
/// [`request`](PacketConnection::request). A pipeline counts as a handle: the connection
/// stays open while it lives. Dropping it cancels its requests locally: those not flushed
/// are never sent, and responses still to come are counted as orphans.
///
/// ```
/// use bytes::Bytes;
/// use packetstream::{Config, PacketConnection};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), packetstream::Error> {
/// let (a, b) = tokio::io::duplex(64 * 1024);
/// let server = PacketConnection::with_handler(b, Config::default(), |_rq, flags, payload: Bytes| async move {
///     Ok::<_, std::convert::Infallible>((flags, payload))
/// });
/// let client = PacketConnection::new(a, Config::default());
/// let mut pipeline = client.pipeline();
/// let mut tags = Vec::new();
/// for flags in 0..3 {
///     tags.push((pipeline.send(0, flags, "echo")?, flags));
/// }
/// // recv flushes before it waits, and gives each response with the tag of its request.
/// while let Some((tag, response)) = pipeline.recv().await? {
///     let sent = tags.iter().position(|&(t, _)| t == tag).expect("a tag we sent");
///     assert_eq!(response.flags, tags.swap_remove(sent).1);
/// }
/// assert!(tags.is_empty());
/// drop(pipeline);
/// client.close().await?;
/// server.closed().await?;
/// # Ok(())
/// # }
/// ```
pub struct Pipeline {
    connection: PacketConnection,
    inbox: Arc<Inbox>,
    window: usize,
    in_flight: usize,
    /// The requests encoded since the last flush, and their tags.
    frames: BytesMut,
    unflushed: Vec<u64>,
    /// Route changes to go with the next flush.
    routes: Vec<Route>,
    /// The blocks with tags to issue or requests waiting, oldest first.
    blocks: VecDeque<Block>,
    /// Responses taken from the inbox and not yet returned.
    received: VecDeque<Answer>,
}

impl fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pipeline")
            .field("in_flight", &self.in_flight)
            .field("unflushed", &self.unflushed.len())
            .field("window", &self.window)
            .finish()
    }
}

impl Pipeline {
    pub(crate) fn new(connection: PacketConnection) -> Pipeline {
        let window = connection.shared.config.max_in_flight.max(1);
        let inbox = Arc::new(Inbox::new(window));
        connection.shared.register_pipeline(&inbox);
        Pipeline {
            window,
            connection,
            inbox,
            in_flight: 0,
            frames: BytesMut::new(),
            unflushed: Vec::new(),
            routes: Vec::new(),
            blocks: VecDeque::new(),
            received: VecDeque::new(),
        }
    }

    /// Encodes a request on channel 0 to go out with the next [`flush`](Pipeline::flush)
    /// (which [`recv`](Pipeline::recv) does before it waits), and returns its tag.
    ///
    /// `rq_type` is the handler's rq_type (the wire carries `rq_type + 1`). Fails with
    /// [`Error::PipelineFull`] while [`Config::max_in_flight`](crate::Config::max_in_flight)
    /// requests of this pipeline wait: take a response first. Checks the request as
    /// [`request`](PacketConnection::request) does.
    pub fn send(
        &mut self,
        rq_type: u64,
        flags: u64,
        payload: impl Into<Bytes>,
    ) -> Result<u64, Error> {
        if self.in_flight >= self.window {
            return Err(Error::PipelineFull { max: self.window });
        }
        let shared = &self.connection.shared;
        let mut packet = shared.request_packet(0, rq_type, flags, payload.into())?;
        let tag = self.issue()?;
        packet.set_tag(tag);
        packet.encode_to(packet.body_len(), &mut self.frames);
        self.unflushed.push(tag);
        self.in_flight += 1;
        Ok(tag)
    }

    fn issue(&mut self) -> Result<u64, Error> {
        if let Some(tag) = self.blocks.back_mut().and_then(Block::issue) {
            return Ok(tag);
        }
        let first = self.connection.shared.channel0().reserve(BLOCK);
        let mut block = Block::new(first.ok_or(Error::TagsExhausted)?.0);
        let tag = block.issue().ok_or(Error::TagsExhausted)?;
        self.routes.push(Route::Open {
            inbox: Arc::clone(&self.inbox),
            tags: block.tags.clone(),
        });
        self.blocks.push_back(block);
        Ok(tag)
    }

    /// Whether `tag`'s request waited; it does not from now on. A spent block is retired.
    fn settle(&mut self, tag: u64) -> bool {
        let Some(i) = self.blocks.iter().position(|b| b.tags.contains(&tag)) else {
            return false;
        };
        if !self.blocks[i].settle(tag) {
            return false;
        }
        self.in_flight -= 1;
        if self.blocks[i].spent() {
            let first = self.blocks[i].tags.start;
            self.blocks.remove(i);
            self.routes.push(Route::Retire {
                inbox: Arc::clone(&self.inbox),
                first,
            });
        }
        true
    }

    /// Hands the requests sent since the last flush to the connection, to go out in one
    /// write. Once the connection is closing (ERQ sent), they are dropped unsent, no longer
    /// count as in flight, and the error says why.
    pub fn flush(&mut self) -> Result<(), Error> {
        if self.unflushed.is_empty() && self.routes.is_empty() {
            return Ok(());
        }
        let n = self.unflushed.len() as u64;
        let shared = &self.connection.shared;
        if shared.push_batch(&mut self.frames, n, &mut self.routes) {
            trace!(requests = n, "pipeline flushed");
            self.unflushed.clear();
            return Ok(());
        }
        let error = shared.refusal();
        self.frames.clear();
        for tag in std::mem::take(&mut self.unflushed) {
            self.settle(tag);
        }
        Err(error)
    }

    /// Returns the next response with the tag of the request it answers, flushing before it
    /// waits. `Ok(None)` when none of this pipeline's requests waits.
    ///
    /// Responses already here are returned without a flush, so a task that sends one request
    /// per response taken sends them in one write once it has taken all that came together.
    /// Waits at most [`Config::request_timeout`](crate::Config::request_timeout), if set,
    /// for the next response: [`Error::Timeout`] then leaves the requests waiting. When the
    /// link ends, the responses that came before are returned first, then the error, at once.
    /// A response to a tag whose request no longer waits (a peer's duplicate) is counted as
    /// an orphan and skipped. Cancel-safe: a dropped `recv` loses no response.
    pub async fn recv(&mut self) -> Result<Option<(u64, Response)>, Error> {
        loop {
            while let Some((tag, response)) = self.received.pop_front() {
                if self.settle(tag) {
                    return Ok(Some((tag, response)));
                }
                let shared = &self.connection.shared;
                shared.counters.orphans.fetch_add(1, Ordering::Relaxed);
                debug!(
                    tag,
                    "response to no waiting request of the pipeline: orphan"
                );
            }
            if self.in_flight == 0 {
                return Ok(None);
            }
            let limit = self.connection.shared.config.request_timeout;
            let taken = poll_fn(|cx| self.poll_take(cx));
            match limit {
                Some(limit) => tokio::time::timeout(limit, taken)
                    .await
                    .map_err(|_| Error::Timeout(limit))??,
                None => taken.await?,
            }
        }
    }

    /// Takes what the driver delivered; flushes when there is nothing, before waiting.
    fn poll_take(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let taken = self.inbox.take(&mut self.received, cx);
        if taken.is_pending() {
            self.flush()?;
        }
        taken
    }

    /// How many of this pipeline's requests wait for a response, flushed or not.
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }
}

impl Drop for Pipeline {
    fn drop(&mut self) {
        self.inbox.lock().dropped = true;
        // The unflushed requests are never sent; the driver forgets the tags.
        self.routes.clear();
        let mut close = vec![Route::Close(Arc::clone(&self.inbox))];
        self.connection
            .shared
            .push_batch(&mut BytesMut::new(), 0, &mut close);
    }
}
