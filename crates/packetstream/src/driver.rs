//! The tokio driver: one task per connection that owns the stream, moves bytes between it and
//! the [`Session`](crate::session::Session), runs the handlers' futures, and sleeps until the
//! session's next deadline. Nothing the protocol decides is decided here.
//!
//! Each round locks the session once: it reports what the last round did (bytes read and
//! written, handlers finished), and takes what to do next (requests to hand to handlers,
//! bytes to write, whether to read, the next deadline). Then, with the lock let go, it starts
//! handlers, polls the running ones, writes and reads. Rounds repeat while they make
//! progress. A connection that has stayed quiet for a while (the session says when) gives its
//! buffers back.
//!
//! Handlers run here: at most [`Config::max_handlers`] futures are pending at once, and a
//! handler starts only while the bytes waiting to be written (the session's and the replies
//! made since the last lock) are below [`Config::max_unsent`]. Most handlers finish on their
//! first poll; their replies are encoded as they finish and handed over at the next lock, so
//! a read's requests are answered in one write.
//!
//! Between two locks the driver may take requests off the read buffer itself, by the
//! [`Lane`] the session left at the last lock: the session decided which requests may go
//! (plain ones on channel 0, tags going up, within the budget), and the driver only applies
//! that, stopping at the first packet the lane does not take, which the session reads. A
//! request taken so is answered without the lock when its handler finishes at once; a
//! synchronous handler ([`with_sync_handler`](crate::PacketConnection::with_sync_handler))
//! always does, with no future made.

use std::any::Any;
use std::collections::VecDeque;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker, ready};
use std::time::Instant;

use bytes::{Buf, BytesMut};
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;
use tracing::{debug, trace, warn};

use crate::config::REQUEST_COST;
use crate::handler::Handler;
use crate::serving::{Job, Lane};
use crate::session::encode_reply;
use crate::shared::{Shared, now};
use crate::{Config, Packet, PacketCodec, Reply, Request};

/// How many rounds one wake may run before yielding to other tasks.
const ROUNDS_PER_WAKE: usize = 32;
/// The least a read asks for, and the size of a read buffer made for small packets.
const READ_CHUNK: usize = 16 * 1024;
/// How far a read may run ahead of the bytes that have come, for a large packet: the buffer
/// grows with what arrives, never to a length the peer only announced.
const READ_AHEAD: usize = 64 * 1024;
/// A write buffer larger than this is given back once it is empty; a smaller one is kept
/// for the next write while the connection is busy (a fresh large buffer costs page faults
/// that reuse does not). An idle connection gives back every buffer.
const WRITE_KEEP: usize = 4 << 20;
/// The first read of an idle connection goes to the stack, this much at most, so that an
/// idle connection holds no read buffer; as much as a read buffer takes, so that a batch
/// is read in one go.
const PROBE: usize = READ_CHUNK;

/// A handler call pinned in place. The boxes are reused from call to call.
type Slot<F> = Pin<Box<Option<F>>>;

/// How a handler call ended: its reply, the text of its error, or the panic it raised.
type Outcome = Result<Result<Reply, String>, Box<dyn Any + Send>>;

/// A handler at work on one request.
struct Running<H: Handler> {
    job: Job,
    /// `Some` until the call finishes; then the empty slot goes back to the driver.
    slot: Option<Slot<H::Future>>,
}

impl<H: Handler> Future for Running<H> {
    type Output = (Job, Outcome, Slot<H::Future>);

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let Some(slot) = self.slot.as_mut() else {
            // Never: a finished call is not polled again.
            return Poll::Pending;
        };
        let outcome = ready!(poll_slot::<H>(slot, cx));
        match self.slot.take() {
            Some(slot) => Poll::Ready((self.job, outcome, slot)),
            None => Poll::Pending,
        }
    }
}

/// Polls the call in `slot`, turns what it resolves to into its reply, and empties the slot
/// once it has finished. The poll and the conversion both run the user's code (the
/// handler's future, `Into<Reply>`, the error's `Display`): a panic in either is the
/// call's outcome, not the connection's. One `catch_unwind` covers both.
#[inline]
fn poll_slot<H: Handler>(slot: &mut Slot<H::Future>, cx: &mut Context<'_>) -> Poll<Outcome> {
    let Some(future) = slot.as_mut().as_pin_mut() else {
        // Never: a slot is filled before it is polled. Answered as a handler failure.
        return Poll::Ready(Err(Box::new("handler slot empty")));
    };
    let outcome = match std::panic::catch_unwind(AssertUnwindSafe(|| future.poll(cx).map(H::reply)))
    {
        Ok(Poll::Pending) => return Poll::Pending,
        Ok(Poll::Ready(reply)) => Ok(reply),
        Err(panic) => Err(panic),
    };
    slot.set(None);
    Poll::Ready(outcome)
}

/// What the last read brought.
enum Read {
    /// Nothing was tried, or nothing came.
    Nothing,
    Bytes(usize),
    End,
    Failed(std::io::Error),
}

pub(crate) struct Driver<T, H: Handler> {
    /// `None` once the connection has ended: the stream is dropped.
    io: Option<Pin<Box<T>>>,
    shared: Arc<Shared>,
    handler: Option<H>,
    read_buf: BytesMut,
    write_buf: BytesMut,
    /// Reported to the session at the next lock.
    read: Read,
    /// A write or flush failed.
    failed: Option<std::io::Error>,
    written: usize,
    /// Handlers done since the last lock, and their replies, encoded as they finished.
    done: Vec<Job>,
    replies: BytesMut,
    /// Requests taken from the session, in order, for handlers.
    to_start: VecDeque<(Job, Request)>,
    /// Bytes the session had waiting to be written at the last lock.
    unsent: usize,
    read_want: Option<usize>,
    deadline: Option<Instant>,
    /// The session asked for the write side to be shut.
    shutdown: bool,
    /// The write side was shut (the stream is dropped).
    shut: bool,
    running: FuturesUnordered<Running<H>>,
    /// Empty slots for handler calls, at most `max_handlers`.
    slots: Vec<Slot<H::Future>>,
    wakers: Vec<Waker>,
    timer: Option<Pin<Box<Sleep>>>,
    unflushed: bool,
    /// The last read found nothing, with the buffer empty.
    read_idle: bool,
    /// Packets were taken off the read buffer since the last read: their payloads may still
    /// share it.
    handed_out: bool,
    /// Whether reading had ended at the last lock (to notify once).
    read_ended: bool,
    /// The lane the session left for requests read before the next lock: see [`Lane`].
    lane: Option<Lane>,
    /// Reads the heads of the frames the lane takes.
    codec: PacketCodec,
    /// What the lane did since the last lock: requests taken, answered at once, and the jobs
    /// of those still running.
    lane_taken: usize,
    lane_answered: Vec<u64>,
    lane_held: Vec<Job>,
    /// The lane stopped at a whole packet: the session reads on from there, with the tags
    /// the lane answered counted as in use.
    lane_stopped: bool,
}

impl<T, H: Handler> Drop for Driver<T, H> {
    /// A driver dropped before the connection ended (its runtime shut down): the requests
    /// waiting from other runtimes must not hang.
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        if state.session.outcome().is_none() {
            debug!("connection task dropped before the connection ended");
            state.session.task_dropped();
            drop(state);
            self.shared.read_ended.notify_waiters();
            self.shared.ended.notify_waiters();
        }
    }
}

impl<T: AsyncRead + AsyncWrite + Send + 'static, H: Handler> Driver<T, H> {
    pub fn new(io: T, shared: Arc<Shared>, handler: Option<H>) -> Driver<T, H> {
        Driver {
            io: Some(Box::pin(io)),
            handler,
            read_buf: BytesMut::new(),
            write_buf: BytesMut::new(),
            read: Read::Nothing,
            failed: None,
            written: 0,
            done: Vec::new(),
            replies: BytesMut::new(),
            to_start: VecDeque::new(),
            unsent: 0,
            read_want: Some(1),
            deadline: None,
            shutdown: false,
            shut: false,
            running: FuturesUnordered::new(),
            slots: Vec::new(),
            wakers: Vec::new(),
            timer: None,
            unflushed: false,
            read_idle: false,
            handed_out: false,
            read_ended: false,
            lane: None,
            codec: PacketCodec::new(shared.config.max_packet),
            lane_taken: 0,
            lane_answered: Vec::new(),
            lane_held: Vec::new(),
            lane_stopped: false,
            shared,
        }
    }

    /// Runs the connection to its end.
    pub async fn run(mut self) {
        std::future::poll_fn(|cx| self.poll_drive(cx)).await;
        let stats = self.shared.stats();
        match self.shared.lock().session.outcome() {
            Some(Ok(())) => debug!(?stats, "connection closed"),
            Some(Err(e)) => debug!(error = %e, ?stats, "connection ended"),
            None => {}
        }
    }

    fn poll_drive(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        // One reading of the clock serves the rounds of a wake: they take microseconds.
        let now = now();
        for _ in 0..ROUNDS_PER_WAKE {
            // Read first, so that the lock sees what came, and knows when nothing did.
            let mut progress = self.poll_read(cx);
            progress |= self.run_lane(cx);
            if self.exchange(cx, now) {
                self.end();
                return Poll::Ready(());
            }
            progress |= self.poll_handlers(cx);
            progress |= self.start_handlers(cx);
            progress |= self.poll_write(cx);
            progress |= self.poll_shutdown(cx);
            progress |= self.poll_timer(cx);
            if !progress {
                return Poll::Pending;
            }
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }

    /// The one lock of a round: reports what the last round did, takes what to do next.
    /// `true` once the connection has ended.
    fn exchange(&mut self, cx: &mut Context<'_>, now: Instant) -> bool {
        let mut state = self.shared.lock();
        state.driver_runs(cx.waker());
        let session = &mut state.session;
        if self.written > 0 {
            session.transmitted(std::mem::take(&mut self.written));
        }
        // When the lane stopped at a whole packet, the session reads on before it takes the
        // lane's replies: a request it refuses there is refused before the requests read
        // ahead of it are answered, as when the whole read was taken first.
        let stopped = std::mem::take(&mut self.lane_stopped);
        if self.lane_taken > 0 {
            session.handle_lane(
                std::mem::take(&mut self.lane_taken),
                &mut self.lane_answered,
                stopped,
                &mut self.lane_held,
            );
        }
        if !stopped && (!self.done.is_empty() || !self.replies.is_empty()) {
            session.handle_replies(&mut self.done, &mut self.replies);
        }
        if let Some(e) = self.failed.take() {
            session.handle_io_error(e);
        }
        let buffered = self.read_buf.len();
        match std::mem::replace(&mut self.read, Read::Nothing) {
            Read::Nothing => session.handle_read(&mut self.read_buf, 0, now),
            Read::Bytes(n) => session.handle_read(&mut self.read_buf, n, now),
            Read::End => session.handle_read_eof(&mut self.read_buf, now),
            Read::Failed(e) => session.handle_io_error(e),
        }
        self.handed_out |= self.read_buf.len() < buffered;
        if stopped && (!self.done.is_empty() || !self.replies.is_empty()) {
            session.handle_replies(&mut self.done, &mut self.replies);
        }
        if self.deadline.is_some_and(|due| due <= now) {
            session.handle_timeout(now);
        }
        session.take_requests(&mut self.to_start);
        let idle = self.idle();
        if idle && session.is_quiet() && self.read_buf.capacity() <= READ_CHUNK {
            // Quiet: the read buffer goes (it is empty when idle); the next read makes one
            // for what it brings.
            self.read_buf = BytesMut::new();
        }
        let release = session.quiet(now, idle, self.held());
        if self.shut {
            session.shutdown_done();
        }
        session.take_transmit(&mut self.write_buf, now);
        self.read_want = session.read_want(&self.read_buf);
        self.unsent = session.unsent();
        self.deadline = session.poll_timeout();
        self.shutdown = session.must_shutdown();
        self.lane = session.lane();
        let ended = session.outcome().is_some();
        let read_ended = session.read_end().is_some() || ended;
        session.swap_wakers(&mut self.wakers);
        drop(state);
        if release {
            self.release_idle();
        }
        self.wakers.drain(..).for_each(Waker::wake);
        if read_ended && !self.read_ended {
            self.read_ended = true;
            self.shared.read_ended.notify_waiters();
        }
        ended
    }

    /// The connection has ended: the stream and the handlers still running are dropped.
    fn end(&mut self) {
        self.io = None;
        self.running = FuturesUnordered::new();
        self.read_ended = true;
        self.shared.read_ended.notify_waiters();
        self.shared.ended.notify_waiters();
    }

    /// Whether the driver's side is idle: the read just made found nothing, and no handler,
    /// reply or write is pending.
    fn idle(&self) -> bool {
        self.read_idle
            && self.running.is_empty()
            && self.to_start.is_empty()
            && self.write_buf.is_empty()
    }

    /// About how many bytes of heap the driver holds: its buffers and vectors.
    fn held(&self) -> usize {
        self.read_buf.capacity()
            + self.write_buf.capacity()
            + self.replies.capacity()
            + self.slots.len() * size_of::<Option<H::Future>>()
            + self.done.capacity() * size_of::<Job>()
            + self.to_start.capacity() * size_of::<(Job, Request)>()
            + self.wakers.capacity() * size_of::<Waker>()
            + self.lane_held.capacity() * size_of::<Job>()
            + self.lane_answered.capacity() * size_of::<u64>()
            + self.timer.as_ref().map_or(0, |_| size_of::<Sleep>())
    }

    fn release_idle(&mut self) {
        if self.read_buf.is_empty() {
            self.read_buf = BytesMut::new();
        }
        if self.write_buf.is_empty() {
            self.write_buf = BytesMut::new();
        }
        self.slots = Vec::new();
        self.done = Vec::new();
        self.lane_held = Vec::new();
        self.lane_answered = Vec::new();
        if self.replies.is_empty() {
            self.replies = BytesMut::new();
        }
        self.to_start = VecDeque::new();
        self.wakers = Vec::new();
        if self.deadline.is_none() {
            self.timer = None;
        }
    }

    /// Calls the handler on the requests taken, in order, while fewer than `max_handlers`
    /// futures are pending and the replies waiting are below `max_unsent`. Most handlers
    /// finish on their first poll: those are answered at the next lock, without a place in
    /// the running set.
    fn start_handlers(&mut self, cx: &mut Context<'_>) -> bool {
        if self.to_start.is_empty() {
            return false;
        }
        let Some(handler) = &self.handler else {
            // Never: without a handler the session refuses every request.
            self.to_start.clear();
            return false;
        };
        let config = &self.shared.config;
        let mut started = false;
        while self.running.len() < config.max_handlers
            && self.unsent + self.replies.len() < config.max_unsent
        {
            let Some((job, request)) = self.to_start.pop_front() else {
                break;
            };
            started = true;
            match call_handler(handler, request, &mut self.slots, cx) {
                Ok(outcome) => {
                    answer(config, job, outcome, &mut self.replies);
                    self.done.push(job);
                }
                Err(slot) => self.running.push(Running {
                    job,
                    slot: Some(slot),
                }),
            }
        }
        started
    }

    /// Takes the requests at the front of the read buffer that may go by the session's lane,
    /// and starts their handlers, under the same limits as
    /// [`start_handlers`](Self::start_handlers) and only when no request the session took
    /// waits for a handler before them. Those that finish at once are answered, as
    /// `start_handlers` answers them; the others join the running set, and the session
    /// holds them at the next lock. Stops at the first packet the lane does not take.
    fn run_lane(&mut self, cx: &mut Context<'_>) -> bool {
        let (Some(lane), Some(handler)) = (self.lane.as_mut(), self.handler.as_ref()) else {
            return false;
        };
        if !self.to_start.is_empty() {
            return false;
        }
        let config = &self.shared.config;
        let taken = self.lane_taken;
        while self.running.len() < config.max_handlers
            && self.unsent + self.replies.len() < config.max_unsent
        {
            let Ok(Some(head)) = self.codec.head(&self.read_buf) else {
                break;
            };
            let Some(body) = self.read_buf.get(head.prefix..head.len()) else {
                break;
            };
            let Ok(fields) = Packet::decode_head(body) else {
                break;
            };
            let Some((rq_type, flags)) = fields.handler_request() else {
                break;
            };
            let Some(job) = lane.take(fields.channel, fields.tag, head.len() + REQUEST_COST) else {
                break;
            };
            let mut payload = self.codec.take(&mut self.read_buf, head);
            payload.advance(fields.len);
            let request = Request {
                channel: job.channel,
                tag: job.tag,
                rq_type,
                flags,
                payload,
            };
            trace!(%request, "in, by the lane");
            self.lane_taken += 1;
            match call_handler(handler, request, &mut self.slots, cx) {
                Ok(outcome) => {
                    answer(config, job, outcome, &mut self.replies);
                    self.lane_answered.push(job.tag);
                }
                Err(slot) => {
                    lane.holds(&job);
                    self.lane_held.push(job);
                    self.running.push(Running {
                        job,
                        slot: Some(slot),
                    });
                }
            }
        }
        let took = self.lane_taken > taken;
        self.handed_out |= took;
        if took {
            let head = self.codec.head(&self.read_buf);
            self.lane_stopped = matches!(head, Ok(Some(h)) if self.read_buf.len() >= h.len());
        }
        took
    }

    fn poll_handlers(&mut self, cx: &mut Context<'_>) -> bool {
        // An empty set is not polled: polling it would register the waker again.
        if self.running.is_empty() {
            return false;
        }
        let mut progress = false;
        while let Poll::Ready(Some((job, outcome, slot))) = self.running.poll_next_unpin(cx) {
            progress = true;
            self.slots.push(slot);
            answer(&self.shared.config, job, outcome, &mut self.replies);
            self.done.push(job);
        }
        progress
    }

    fn poll_write(&mut self, cx: &mut Context<'_>) -> bool {
        let Some(io) = self.io.as_mut() else {
            return false;
        };
        let mut progress = false;
        while !self.write_buf.is_empty() {
            match io.as_mut().poll_write(cx, &self.write_buf) {
                Poll::Ready(Ok(0)) => {
                    self.failed = Some(std::io::ErrorKind::WriteZero.into());
                    return true;
                }
                Poll::Ready(Ok(n)) => {
                    progress = true;
                    self.unflushed = true;
                    self.write_buf.advance(n);
                    self.written += n;
                }
                Poll::Ready(Err(e)) => {
                    self.failed = Some(e);
                    return true;
                }
                Poll::Pending => return progress,
            }
        }
        if self.write_buf.capacity() > WRITE_KEEP {
            self.write_buf = BytesMut::new();
        }
        if self.unflushed {
            match io.as_mut().poll_flush(cx) {
                Poll::Ready(Ok(())) => self.unflushed = false,
                Poll::Ready(Err(e)) => {
                    self.failed = Some(e);
                    return true;
                }
                Poll::Pending => {}
            }
        }
        progress
    }

    /// Reads once, if the session wants bytes and no error waits to be reported.
    fn poll_read(&mut self, cx: &mut Context<'_>) -> bool {
        self.read_idle = false;
        let Some(need) = self.read_want else {
            return false;
        };
        if !matches!(self.read, Read::Nothing) || self.failed.is_some() {
            return true;
        }
        let Some(io) = self.io.as_mut() else {
            return false;
        };
        if self.read_buf.capacity() == 0 {
            // An idle connection: read into the stack first, so that the buffer is made only
            // once bytes come.
            // Uninitialised: a read fills what it reports, and nothing else is looked at.
            let mut probe = [std::mem::MaybeUninit::<u8>::uninit(); PROBE];
            let mut buf = ReadBuf::uninit(&mut probe);
            match io.as_mut().poll_read(cx, &mut buf) {
                Poll::Pending => {
                    self.read_idle = true;
                    return false;
                }
                Poll::Ready(Err(e)) => self.read = Read::Failed(e),
                Poll::Ready(Ok(())) if buf.filled().is_empty() => self.read = Read::End,
                Poll::Ready(Ok(())) => {
                    let n = buf.filled().len();
                    self.read_buf = BytesMut::with_capacity(READ_CHUNK.max(n));
                    self.read_buf.extend_from_slice(buf.filled());
                    self.read = Read::Bytes(n);
                }
            }
            return true;
        }
        if !make_room(&mut self.read_buf, need, self.handed_out) {
            // The payloads handed out still share the buffer: their holders run first, and
            // the buffer is reused once they have dropped them.
            self.handed_out = false;
            cx.waker().wake_by_ref();
            return false;
        }
        self.handed_out = false;
        match tokio_util::io::poll_read_buf(io.as_mut(), cx, &mut self.read_buf) {
            Poll::Pending => {
                self.read_idle = self.read_buf.is_empty();
                false
            }
            Poll::Ready(Ok(0)) => {
                self.read = Read::End;
                true
            }
            Poll::Ready(Ok(n)) => {
                self.read = Read::Bytes(n);
                true
            }
            Poll::Ready(Err(e)) => {
                self.read = Read::Failed(e);
                true
            }
        }
    }

    /// Shuts the write side once the session says so and everything is written.
    fn poll_shutdown(&mut self, cx: &mut Context<'_>) -> bool {
        if !self.shutdown || self.shut || !self.write_buf.is_empty() || self.unflushed {
            return false;
        }
        let Some(io) = self.io.as_mut() else {
            return false;
        };
        match io.as_mut().poll_shutdown(cx) {
            Poll::Pending => false,
            Poll::Ready(result) => {
                if let Err(e) = result {
                    // The peer may have gone already; that does not undo a clean close.
                    debug!(error = %e, "shutting the write side failed");
                }
                // Reported at the next lock.
                self.shut = true;
                self.io = None;
                true
            }
        }
    }

    /// Sleeps until the session's deadline; `true` when it has come.
    ///
    /// The timer is only ever moved earlier (or re-armed once it has fired): one that fires
    /// before the session's deadline costs a wake at which the session looks again, while
    /// moving it later at every wake (a quiet spell's deadline moves with each burst) would
    /// cost a timer-wheel update per wake.
    fn poll_timer(&mut self, cx: &mut Context<'_>) -> bool {
        let Some(deadline) = self.deadline else {
            return false;
        };
        let deadline = tokio::time::Instant::from_std(deadline);
        let timer = match &mut self.timer {
            Some(timer) => {
                if deadline < timer.deadline() || timer.is_elapsed() {
                    timer.as_mut().reset(deadline);
                }
                timer
            }
            None => self
                .timer
                .insert(Box::pin(tokio::time::sleep_until(deadline))),
        };
        timer.as_mut().poll(cx).is_ready()
    }
}

/// Calls the handler on `request` in a slot from `slots` and polls it once: its outcome if it
/// finished (the slot goes back), or the slot it runs in.
#[inline(always)]
fn call_handler<H: Handler>(
    handler: &H,
    request: Request,
    slots: &mut Vec<Slot<H::Future>>,
    cx: &mut Context<'_>,
) -> Result<Outcome, Slot<H::Future>> {
    // Calling the handler runs the user's code before there is a future to poll: a panic
    // there is answered as one in the future would be. A synchronous handler answers here.
    let call = std::panic::catch_unwind(AssertUnwindSafe(|| {
        handler
            .answer_now(request)
            .map(H::reply)
            .map_err(|request| handler.call(request))
    }));
    let call = match call {
        Ok(Ok(reply)) => return Ok(Ok(reply)),
        Ok(Err(call)) => Ok(call),
        Err(panic) => Err(panic),
    };
    let mut slot = slots.pop().unwrap_or_else(|| Box::pin(None));
    let polled = match call {
        Ok(call) => {
            slot.set(Some(call));
            poll_slot::<H>(&mut slot, cx)
        }
        Err(panic) => Poll::Ready(Err(panic)),
    };
    match polled {
        Poll::Ready(outcome) => {
            slots.push(slot);
            Ok(outcome)
        }
        Poll::Pending => Err(slot),
    }
}

/// Encodes what a handler's outcome answers into `replies`: its reply, or cs's failure
/// reply. Errors and panics are traced here, never sent.
#[inline(always)]
fn answer(config: &Config, job: Job, outcome: Outcome, replies: &mut BytesMut) {
    let (channel, tag) = (job.channel, job.tag);
    let reply = match outcome {
        Ok(Ok(reply)) => Some(reply),
        Ok(Err(text)) => {
            debug!(channel, tag, error = %text, "handler failed");
            None
        }
        Err(_) => {
            warn!(channel, tag, "handler panicked");
            None
        }
    };
    encode_reply(config, job, reply, replies);
}

/// Makes room in `buf` for the `need` more bytes the frame at its front lacks, and a useful
/// read besides, without running more than [`READ_AHEAD`] (or what has come of the frame,
/// if more) ahead of the bytes that have come; `false` when the read should wait a turn
/// instead.
///
/// The payloads handed out share the buffer, so it is reused only once they are all
/// dropped. When they may not be yet (`handed_out`) and a large frame needs room, the read
/// waits a turn for their holders to run, rather than move the frame to a fresh buffer:
/// fresh large buffers cost page faults that reuse does not. Otherwise the unfinished frame
/// moves to a new buffer of exactly the size wanted.
fn make_room(buf: &mut BytesMut, need: usize, handed_out: bool) -> bool {
    let want = if need <= READ_CHUNK {
        READ_CHUNK
    } else {
        need.min(READ_AHEAD.max(buf.len()))
    };
    let spare = buf.capacity() - buf.len();
    if spare >= want || (spare >= READ_CHUNK / 16 && spare >= need) {
        return true;
    }
    if buf.try_reclaim(want) {
        return true;
    }
    if handed_out && want > READ_CHUNK {
        return false;
    }
    let mut bigger = BytesMut::with_capacity(buf.len() + want);
    bigger.extend_from_slice(buf);
    *buf = bigger;
    true
}
