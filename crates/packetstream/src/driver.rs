//! The tokio driver: one task per connection that owns the stream and moves packets between
//! it, the [`Session`], the handlers and the correlators.
//!
//! It is a hand-written future, as h2's connection is, so that reading and writing the same
//! stream need no split and no lock. Each wake it takes new requests from the handles,
//! collects finished handlers, starts queued ones, reads and dispatches what has arrived (a
//! request starts its handler as it is read when none waits ahead of it), and then writes
//! everything produced in that wake in one go.

use std::any::Any;
use std::collections::VecDeque;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll, ready};

use bytes::{Buf, BytesMut};
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use kernel_flows::Tag;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;
use tokio::time::Sleep;
use tokio_util::codec::{Decoder, Encoder};
use tracing::{debug, trace, warn};

use crate::codec::Frame;
use crate::handler::Handler;
use crate::pipeline::{Route, Routes};
use crate::session::{Incoming, Request, Session};
use crate::shared::{Shared, Stats};
use crate::{Ended, Error, Packet, PacketCodec, Reply, Response};

/// What the handles ask of the driver, besides sending requests (which go through the
/// shared outbox).
#[derive(Debug)]
pub(crate) enum Command {
    /// Begin the close sequence.
    Close,
}

/// How many rounds one wake may run before yielding to other tasks.
const ROUNDS_PER_WAKE: usize = 32;
/// How much the read buffer grows by when it runs low.
const READ_CHUNK: usize = 16 * 1024;
/// The free space below which the read buffer grows. Kept well below `READ_CHUNK`: the
/// payloads handed out share the buffer, so growing it means a new allocation, and doing so
/// before every read would cost one per read.
const READ_LOW: usize = 1024;

/// A handler call pinned in place. The boxes are reused from call to call: a call costs
/// no allocation.
type Slot<F> = Pin<Box<Option<F>>>;

/// A handler at work on one request.
struct Running<H: Handler> {
    channel: u64,
    tag: u64,
    /// `Some` until the call finishes; then the empty slot goes back to the driver.
    slot: Option<Slot<H::Future>>,
}

/// How a handler call ended: its reply, the text of its error, or the panic it raised.
type Outcome = Result<Result<Reply, String>, Box<dyn Any + Send>>;

impl<H: Handler> Future for Running<H> {
    type Output = (u64, u64, Outcome, Slot<H::Future>);

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let slot = self.slot.as_mut().expect("polled after it finished");
        let outcome = ready!(poll_slot::<H>(slot, cx));
        let slot = self.slot.take().expect("checked above");
        Poll::Ready((self.channel, self.tag, outcome, slot))
    }
}

/// Polls the call in `slot`, turns what it resolves to into its reply, and empties the slot
/// once it has finished. The poll and the conversion both run the user's code (the
/// handler's future, `Into<Reply>`, the error's `Display`): a panic in either is the
/// call's outcome, not the connection's. One `catch_unwind` covers both, so the output is
/// never moved through a second one.
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

/// Where the connection is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Requests flow both ways.
    Open,
    /// ERQ sent; waiting for handlers to finish before sending EOF.
    Closing,
    /// EOF sent; waiting for the peer's EOF (or the close timeout).
    EofSent,
    /// Shutting the write side.
    Shutdown,
}

pub(crate) struct Driver<T, H: Handler> {
    io: Pin<Box<T>>,
    codec: PacketCodec,
    read_buf: BytesMut,
    write_buf: BytesMut,
    commands: mpsc::UnboundedReceiver<Command>,
    commands_open: bool,
    session: Session,
    handler: Option<H>,
    queue: VecDeque<Request>,
    running: FuturesUnordered<Running<H>>,
    /// Empty slots for handler calls, at most `max_handlers`.
    slots: Vec<Slot<H::Future>>,
    shared: Arc<Shared>,
    /// Which tags on channel 0 are the pipelines'.
    routes: Routes,
    /// Route changes taken from the outbox, to apply.
    route_changes: Vec<Route>,
    reading: bool,
    phase: Phase,
    erq_sent: bool,
    /// Bytes written but not yet flushed.
    unflushed: bool,
    grace: Option<Pin<Box<Sleep>>>,
    close_deadline: Option<Pin<Box<Sleep>>>,
    /// The first failure; `None` while all is well.
    failure: Option<Error>,
    /// Counts since the last wake, published to the shared counters once per wake.
    tally: Stats,
    /// Reading paused: a refusal was queued while more than `write_high_water` bytes waited
    /// to be written, so the peer sends requests faster than it reads their answers.
    refusals_backed_up: bool,
    /// Packets were decoded in this wake, so their payloads may still share the read buffer.
    handed_out: bool,
    /// Reading waits for the next wake, for the holders of those payloads to run.
    read_yielded: bool,
}

impl<T, H: Handler> Drop for Driver<T, H> {
    /// A driver dropped before it published how the connection ended (its runtime shut
    /// down): the requests waiting from other runtimes must not hang.
    fn drop(&mut self) {
        if self.shared.ended.borrow().is_some() {
            return;
        }
        let error = Error::Closed(Ended::TaskDropped);
        let failed = self.shared.fail_all(&error);
        debug!(
            failed,
            "connection task dropped before the connection ended"
        );
        self.shared.closing.store(true, Ordering::Release);
        self.shared.seal();
        self.shared.ended.send_replace(Some(Err(error)));
    }
}

impl<T: AsyncRead + AsyncWrite + Send + 'static, H: Handler> Driver<T, H> {
    pub fn new(
        io: T,
        shared: Arc<Shared>,
        commands: mpsc::UnboundedReceiver<Command>,
        handler: Option<H>,
    ) -> Driver<T, H> {
        let config = &shared.config;
        Driver {
            io: Box::pin(io),
            codec: PacketCodec::new(config.max_packet),
            read_buf: BytesMut::new(),
            write_buf: BytesMut::new(),
            commands,
            commands_open: true,
            session: Session::new(handler.is_some(), config.channels),
            handler,
            queue: VecDeque::new(),
            running: FuturesUnordered::new(),
            slots: Vec::new(),
            routes: Routes::default(),
            route_changes: Vec::new(),
            reading: true,
            phase: Phase::Open,
            erq_sent: false,
            unflushed: false,
            grace: None,
            close_deadline: None,
            failure: None,
            tally: Stats::default(),
            refusals_backed_up: false,
            handed_out: false,
            read_yielded: false,
            shared,
        }
    }

    /// Runs the connection to its end and publishes how it ended.
    pub async fn run(mut self) {
        let result = std::future::poll_fn(|cx| self.poll_drive(cx)).await;
        // Whatever still waits gets the reason now: nothing hangs.
        let reason = match &result {
            Ok(()) => Ended::Local,
            Err(e) => Ended::Failed(Arc::new(e.clone())),
        };
        self.shared.fail_all(&Error::Closed(reason));
        self.shared.closing.store(true, Ordering::Release);
        self.shared.seal();
        match &result {
            Ok(()) => debug!(stats = ?self.shared.counters.snapshot(), "connection closed"),
            Err(e) => {
                debug!(error = %e, stats = ?self.shared.counters.snapshot(), "connection failed")
            }
        }
        self.shared.ended.send_replace(Some(result));
    }

    fn poll_drive(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        (self.handed_out, self.read_yielded) = (false, false);
        self.shared.register_driver(cx.waker());
        let poll = self.poll_rounds(cx);
        self.shared.counters.publish(&mut self.tally);
        poll
    }

    fn poll_rounds(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        for _ in 0..ROUNDS_PER_WAKE {
            let mut progress = self.poll_commands(cx);
            progress |= self.poll_handlers(cx);
            match self.poll_read(cx) {
                Ok(read) => progress |= read,
                Err(e) => return Poll::Ready(Err(self.fail(e))),
            }
            // The pipelines' responses of this read, each pipeline woken once.
            self.tally.orphans += self.routes.deliver();
            // After the read, so that the requests it brought are answered and written in
            // this same round.
            progress |= self.start_handlers(cx);
            self.advance_close();
            match self.poll_write(cx) {
                Ok(wrote) => progress |= wrote,
                Err(e) => return Poll::Ready(Err(self.fail(e))),
            }
            if self.phase == Phase::EofSent && self.write_buf.is_empty() && !self.unflushed {
                if self.reading {
                    let timeout = self.shared.config.close_timeout;
                    let deadline = self
                        .close_deadline
                        .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
                    if deadline.as_mut().poll(cx).is_ready() {
                        debug!(?timeout, "no EOF from the peer in time");
                        self.failure.get_or_insert(Error::CloseTimeout(timeout));
                        self.reading = false;
                    }
                }
                if !self.reading {
                    self.phase = Phase::Shutdown;
                }
            }
            if self.phase == Phase::Shutdown {
                if let Err(e) = ready!(self.io.as_mut().poll_shutdown(cx)) {
                    // The peer may have gone already; that does not undo a clean close.
                    debug!(error = %e, "shutting the write side failed");
                }
                return Poll::Ready(self.failure.take().map_or(Ok(()), Err));
            }
            if !progress {
                return Poll::Pending;
            }
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }

    /// A fatal error: fail every waiting request with it, and end.
    fn fail(&mut self, error: Error) -> Error {
        // What the pipelines got in this round comes before the failure.
        self.tally.orphans += self.routes.deliver();
        let error = self.failure.take().unwrap_or(error);
        self.shared
            .fail_all(&Error::Closed(Ended::Failed(Arc::new(error.clone()))));
        error
    }

    fn poll_commands(&mut self, cx: &mut Context<'_>) -> bool {
        let mut progress = self.take_requests(false);
        while self.commands_open {
            match self.commands.poll_recv(cx) {
                Poll::Ready(Some(Command::Close)) => {
                    progress = true;
                    self.close_now();
                }
                Poll::Ready(None) => {
                    debug!("every handle dropped: closing");
                    self.commands_open = false;
                    self.close_now();
                    progress = true;
                }
                Poll::Pending => break,
            }
        }
        progress
    }

    /// Moves the requests the handles have queued into the write buffer; with `seal`, the
    /// last ones (ERQ follows).
    fn take_requests(&mut self, seal: bool) -> bool {
        if matches!(self.phase, Phase::EofSent | Phase::Shutdown) {
            return false;
        }
        let n = self
            .shared
            .take_requests(&mut self.write_buf, seal, &mut self.route_changes);
        for route in self.route_changes.drain(..) {
            self.routes.apply(route);
        }
        self.tally.requests_sent += n;
        self.tally.packets_out += n;
        n > 0
    }

    fn poll_handlers(&mut self, cx: &mut Context<'_>) -> bool {
        // An empty set is not polled: polling it would register the waker again.
        if self.running.is_empty() {
            return false;
        }
        let mut progress = false;
        while let Poll::Ready(Some((channel, tag, outcome, slot))) =
            self.running.poll_next_unpin(cx)
        {
            progress = true;
            self.slots.push(slot);
            self.session.answered(channel, tag);
            self.answer_request(channel, tag, outcome);
        }
        progress
    }

    /// Whether a handler may start now: one is free and the write buffer has room.
    fn can_start(&self) -> bool {
        let config = &self.shared.config;
        self.handler.is_some()
            && self.running.len() < config.max_handlers.max(1)
            && self.write_buf.len() < config.write_high_water
    }

    /// A request that passed the session's checks: started now if nothing queued is ahead of
    /// it and a handler may start, queued otherwise.
    #[inline]
    fn serve(&mut self, rq: Request, cx: &mut Context<'_>) {
        if self.queue.is_empty() && self.can_start() {
            self.start(rq, false, cx);
        } else {
            self.session.hold(rq.channel, rq.tag);
            self.queue.push_back(rq);
        }
    }

    /// Starts queued requests while a handler may start.
    fn start_handlers(&mut self, cx: &mut Context<'_>) -> bool {
        let mut progress = false;
        while self.can_start() {
            let Some(rq) = self.queue.pop_front() else {
                break;
            };
            progress = true;
            self.start(rq, true, cx);
        }
        progress
    }

    /// Calls the handler on `rq`. Most handlers finish on their first poll: those are
    /// answered at once, without a place in the running set. `held`: the session holds the
    /// request's tag already; one that runs on must be held.
    #[inline]
    fn start(&mut self, rq: Request, held: bool, cx: &mut Context<'_>) {
        let Some(handler) = &self.handler else {
            // Never: without a handler the session refuses every request.
            return;
        };
        // Calling the handler runs the user's code before there is a future to poll: a panic
        // there is answered as one in the future would be.
        let call = std::panic::catch_unwind(AssertUnwindSafe(|| {
            handler.call(rq.rq_type, rq.flags, rq.payload)
        }));
        let mut slot = self.slots.pop().unwrap_or_else(|| Box::pin(None));
        let polled = match call {
            Ok(call) => {
                slot.set(Some(call));
                poll_slot::<H>(&mut slot, cx)
            }
            Err(panic) => Poll::Ready(Err(panic)),
        };
        match polled {
            Poll::Ready(outcome) => {
                self.slots.push(slot);
                if held {
                    self.session.answered(rq.channel, rq.tag);
                }
                self.answer_request(rq.channel, rq.tag, outcome);
            }
            Poll::Pending => {
                if !held {
                    self.session.hold(rq.channel, rq.tag);
                }
                self.running.push(Running {
                    channel: rq.channel,
                    tag: rq.tag,
                    slot: Some(slot),
                });
            }
        }
    }

    /// Sends the reply to the peer's request `(channel, tag)`, from its handler's outcome.
    #[inline]
    fn answer_request(&mut self, channel: u64, tag: u64, outcome: Outcome) {
        self.tally.requests_served += 1;
        let failure = || Packet::failure(channel, tag, self.shared.config.handler_failure.clone());
        let packet = match outcome {
            Ok(Ok(reply)) => Packet::response(channel, tag, reply.ok, reply.flags, reply.payload)
                .unwrap_or_else(|e| {
                    warn!(channel, tag, error = %e, "handler reply cannot be sent");
                    failure()
                }),
            Ok(Err(text)) => {
                debug!(channel, tag, error = %text, "handler failed");
                failure()
            }
            Err(_) => {
                warn!(channel, tag, "handler panicked");
                failure()
            }
        };
        self.send(&packet);
    }

    /// Whether reading must wait: the handler queue is full, or refusals are piling up
    /// unread by the peer. Either way the peer's writes are what stall.
    fn read_paused(&mut self) -> bool {
        let config = &self.shared.config;
        if self.refusals_backed_up && self.write_buf.len() < config.write_high_water {
            self.refusals_backed_up = false;
        }
        self.refusals_backed_up || self.queue.len() >= config.max_queued_requests
    }

    fn poll_read(&mut self, cx: &mut Context<'_>) -> Result<bool, Error> {
        let mut progress = false;
        while self.reading && !self.read_yielded {
            // Dispatch what is buffered first; stop while reading must wait.
            let mut need = 1;
            while self.reading && !self.read_paused() {
                match self.codec.decode_frame(&mut self.read_buf) {
                    Ok(Frame::Packet(packet)) => {
                        progress = true;
                        self.handed_out = true;
                        self.receive(packet, cx);
                    }
                    Ok(Frame::Need(more)) => {
                        need = more;
                        break;
                    }
                    Err(e) => {
                        warn!(error = %e, "bad input from the peer: closing");
                        self.stop_reading(Ended::Failed(Arc::new(e.clone())));
                        self.failure.get_or_insert(e);
                        return Ok(true);
                    }
                }
            }
            if !self.reading || self.read_paused() {
                break;
            }
            if !self.make_room(need, cx) {
                break;
            }
            match tokio_util::io::poll_read_buf(self.io.as_mut(), cx, &mut self.read_buf) {
                Poll::Ready(Ok(0)) => {
                    progress = true;
                    match self.codec.decode_eof(&mut self.read_buf) {
                        Ok(Some(packet)) => self.receive(packet, cx),
                        Ok(None) => {
                            debug!("the stream ended without an EOF packet");
                            self.stop_reading(Ended::StreamEnd);
                        }
                        Err(e) => {
                            warn!(error = %e, "the stream ended inside a packet");
                            self.stop_reading(Ended::Failed(Arc::new(e.clone())));
                            self.failure.get_or_insert(e);
                        }
                    }
                }
                Poll::Ready(Ok(n)) => {
                    progress = true;
                    self.tally.bytes_in += n as u64;
                }
                Poll::Ready(Err(e)) => return Err(e.into()),
                Poll::Pending => break,
            }
        }
        Ok(progress)
    }

    /// Makes room in the read buffer for the `need` more bytes the current frame lacks, and
    /// a useful read besides; `false` when reading should wait for the next wake instead.
    ///
    /// The payloads handed out share the buffer, so it can be reused only once their holders
    /// have dropped them. When a large frame needs room and packets went out in this wake
    /// (their holders have not run yet), the driver yields once rather than allocate: fresh
    /// large buffers cost page faults that reuse does not.
    fn make_room(&mut self, need: usize, cx: &mut Context<'_>) -> bool {
        let spare = self.read_buf.capacity() - self.read_buf.len();
        if spare >= need.max(READ_LOW) {
            return true;
        }
        let want = need.max(READ_CHUNK);
        if self.read_buf.try_reclaim(want) {
            return true;
        }
        if want > READ_CHUNK && self.handed_out {
            self.read_yielded = true;
            cx.waker().wake_by_ref();
            return false;
        }
        self.read_buf.reserve(want);
        true
    }

    #[inline]
    fn receive(&mut self, packet: Packet, cx: &mut Context<'_>) {
        self.tally.packets_in += 1;
        trace!(%packet, "in");
        match self.session.receive(packet) {
            Incoming::Eof { malformed } => {
                if malformed {
                    debug!("a request with wire rq_type 0 (malformed EOF): taken as EOF");
                }
                self.stop_reading(Ended::PeerEof);
            }
            Incoming::Erq => debug!("the peer will send no more requests"),
            Incoming::Serve(rq) => self.serve(rq, cx),
            Incoming::Reject(packet) => {
                self.tally.requests_refused += 1;
                debug!(%packet, reason = ?packet.payload(), "request refused");
                self.send(&packet);
                if self.write_buf.len() >= self.shared.config.write_high_water {
                    debug!("refusals are not being read: reading pauses");
                    self.refusals_backed_up = true;
                }
            }
            Incoming::Response(packet) => {
                let channel = packet.channel();
                let tag = packet.tag();
                let mut response = Response {
                    ok: packet.ok() == Some(true),
                    flags: packet.flags(),
                    payload: packet.into_payload(),
                };
                if channel == 0 && !self.routes.is_empty() {
                    match self.routes.route(tag, response) {
                        Ok(()) => return,
                        Err(back) => response = back,
                    }
                }
                let delivered = self.shared.with_requests(channel, false, |requests| {
                    requests.is_some_and(|r| r.correlate(Tag(tag), Ok(response)).is_ok())
                });
                if !delivered {
                    self.tally.orphans += 1;
                    debug!(channel, tag, "response to no waiting request: orphan");
                }
            }
        }
    }

    /// Reading is over: fail this side's waiting requests at once, then close (ERQ and EOF
    /// go out once the handlers have answered, as cs's close protocol has it).
    fn stop_reading(&mut self, why: Ended) {
        self.reading = false;
        let failed = self.shared.fail_all(&Error::Closed(why));
        if failed > 0 {
            debug!(failed, "requests failed: the peer will not answer them");
        }
        self.begin_close();
    }

    /// Closing asked for: the requests already queued go out, then ERQ.
    fn close_now(&mut self) {
        self.take_requests(true);
        self.begin_close();
        self.send_erq();
    }

    /// No new requests from this side from now on. Requests still queued are dropped: on a
    /// close asked for, [`close_now`](Self::close_now) has taken them out first; when reading
    /// stopped, `fail_all` has already failed their callers.
    fn begin_close(&mut self) {
        if self.phase == Phase::Open {
            self.phase = Phase::Closing;
            self.shared.closing.store(true, Ordering::Release);
            self.shared.seal();
        }
    }

    fn send_erq(&mut self) {
        if !self.erq_sent {
            self.erq_sent = true;
            self.send(&Packet::ERQ);
        }
    }

    fn advance_close(&mut self) {
        if self.phase == Phase::Closing && self.queue.is_empty() && self.running.is_empty() {
            self.send_erq();
            self.send(&Packet::EOF);
            self.phase = Phase::EofSent;
        }
    }

    /// Hands `answer` to the request `packet` this side meant to send.
    fn answer(&self, packet: &Packet, answer: Result<Response, Error>) {
        self.shared
            .with_requests(packet.channel(), false, |requests| {
                if let Some(requests) = requests {
                    let _ = requests.correlate(Tag(packet.tag()), answer);
                }
            });
    }

    #[inline]
    fn send(&mut self, packet: &Packet) {
        if matches!(self.phase, Phase::EofSent | Phase::Shutdown) {
            debug!(%packet, "not sent: EOF already went out");
            return;
        }
        match self.codec.encode(packet, &mut self.write_buf) {
            Ok(()) => {
                trace!(%packet, "out");
                self.tally.packets_out += 1;
            }
            Err(e) => {
                // Only a packet over max_packet fails to encode.
                warn!(%packet, error = %e, "not sent");
                if packet.is_request() {
                    self.answer(packet, Err(e));
                } else {
                    let failure = Packet::failure(
                        packet.channel(),
                        packet.tag(),
                        self.shared.config.handler_failure.clone(),
                    );
                    self.send(&failure);
                }
            }
        }
    }

    fn poll_write(&mut self, cx: &mut Context<'_>) -> Result<bool, Error> {
        let mut progress = false;
        if !self.write_buf.is_empty() {
            let config = &self.shared.config;
            if !config.grace.is_zero()
                && self.phase == Phase::Open
                && self.write_buf.len() < config.write_high_water
            {
                let grace = config.grace;
                let timer = self
                    .grace
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(grace)));
                if timer.as_mut().poll(cx).is_pending() {
                    return Ok(false);
                }
                self.grace = None;
            }
            while !self.write_buf.is_empty() {
                match self.io.as_mut().poll_write(cx, &self.write_buf)? {
                    Poll::Ready(0) => {
                        return Err(std::io::Error::from(std::io::ErrorKind::WriteZero).into());
                    }
                    Poll::Ready(n) => {
                        progress = true;
                        self.unflushed = true;
                        self.write_buf.advance(n);
                        self.tally.bytes_out += n as u64;
                    }
                    Poll::Pending => return Ok(progress),
                }
            }
        }
        if self.unflushed && self.io.as_mut().poll_flush(cx)?.is_ready() {
            self.unflushed = false;
        }
        Ok(progress)
    }
}
