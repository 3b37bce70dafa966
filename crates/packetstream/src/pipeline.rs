//! [`Pipeline`]: requests sent without waking the connection each time, and their outcomes
//! taken in batches, for one task that keeps many requests in flight.

use std::collections::VecDeque;
use std::fmt;
use std::future::poll_fn;
use std::task::{Context, Poll};

use bytes::Bytes;

use crate::batch::Batch;
use crate::in_flight::{Outcome, Owner};
use crate::session::{Outgoing, Session};
use crate::{Error, PacketConnection, Response};

/// Requests sent in batches and their outcomes taken in the order they come, for one task
/// that keeps many requests in flight.
///
/// Made by [`PacketConnection::pipeline`]. [`send`](Pipeline::send) encodes a request into
/// the pipeline's batch and returns its tag, mostly without taking the connection's lock;
/// [`flush`](Pipeline::flush) hands the batch to the connection (as a `BufWriter` hands its
/// buffer to the stream) and wakes the connection's task once for all of it; and
/// [`recv`](Pipeline::recv) returns the next outcome with the tag of its request, flushing
/// first; the outcomes that came together are taken with one lock. A request is sent only
/// once flushed: one still in the batch when the connection begins to close gets
/// [`Error::Closing`] as its outcome. Its requests go through the same table as
/// [`request`](PacketConnection::request)'s and [`submit`](PacketConnection::submit)'s:
/// the same tags (never reused), the same bound ([`Config::max_in_flight`], for which `send`
/// waits), the same timeout ([`Config::request_timeout`], after which a request's outcome is
/// [`Error::Timeout`]), and the same rule for strays and duplicates (orphans, never an
/// outcome). Each request sent gets exactly one outcome.
///
/// A pipeline counts as a handle: the connection stays open while it lives. Dropping it
/// cancels the requests it still waits for; their responses are counted as orphans.
///
/// [`Config::max_in_flight`]: crate::Config::max_in_flight
/// [`Config::request_timeout`]: crate::Config::request_timeout
///
/// ```
/// use packetstream::{Config, PacketConnection, Request};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), packetstream::Error> {
/// let (a, b) = tokio::io::duplex(64 * 1024);
/// let server = PacketConnection::with_handler(b, Config::default(), |rq: Request| async move {
///     Ok::<_, std::convert::Infallible>((rq.flags, rq.payload))
/// })?;
/// let client = PacketConnection::new(a, Config::default())?;
/// let mut pipeline = client.pipeline();
/// let mut sent = Vec::new();
/// for flags in 0..3 {
///     sent.push((pipeline.send(0, flags, "echo").await?, flags));
/// }
/// // recv flushes before it waits, and gives each outcome with the tag of its request.
/// while let Some((tag, outcome)) = pipeline.recv().await {
///     let i = sent.iter().position(|&(t, _)| t == tag).expect("a tag we sent");
///     assert_eq!(outcome?.flags, sent.swap_remove(i).1);
/// }
/// assert!(sent.is_empty());
/// drop(pipeline);
/// client.close().await?;
/// server.closed().await?;
/// # Ok(())
/// # }
/// ```
pub struct Pipeline {
    connection: PacketConnection,
    id: u32,
    /// Outcomes taken from the connection and not yet returned.
    outcomes: VecDeque<(u64, Outcome)>,
    /// Requests encoded without the connection's lock, not yet handed over.
    batch: Batch,
    /// Requests were sent since the connection's task was last woken for them.
    unflushed: bool,
}

impl fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pipeline")
            .field("in_flight", &self.in_flight())
            .field("unflushed", &self.unflushed)
            .finish()
    }
}

impl Pipeline {
    pub(crate) fn new(connection: PacketConnection) -> Pipeline {
        let id = connection.shared.lock().session.open_pipe();
        Pipeline {
            connection,
            id,
            outcomes: VecDeque::new(),
            batch: Batch::default(),
            unflushed: false,
        }
    }

    /// Sends a request on channel 0 and returns its tag; it goes out with the next
    /// [`flush`](Pipeline::flush), which [`recv`](Pipeline::recv) does before it waits.
    ///
    /// `rq_type` is the handler's rq_type (the wire carries `rq_type + 1`). Checks the request
    /// as [`request`](PacketConnection::request) does. Most sends take no lock: the pipeline
    /// sets aside tags, and a share of
    /// [`Config::max_unsent`](crate::Config::max_unsent) for their bytes, a batch at a time
    /// (as many tags as it sent before its last flush, at most 64), and hands the requests
    /// over when it flushes. Until then those tags hold their places in
    /// [`Config::max_in_flight`](crate::Config::max_in_flight). When no place is free, `send`
    /// waits for one, flushing first (this pipeline's outcomes not yet taken by `recv` hold
    /// theirs). A request sent after the connection began to close gets
    /// [`Error::Closing`] as its outcome, or as `send`'s error. Cancel-safe: a `send` dropped
    /// before it returns sent nothing.
    pub async fn send(
        &mut self,
        rq_type: u64,
        flags: u64,
        payload: impl Into<Bytes>,
    ) -> Result<u64, Error> {
        self.send_on(0, rq_type, flags, payload).await
    }

    /// [`send`](Pipeline::send) on `channel` (other than 0 needs
    /// [`Config::channels`](crate::Config::channels) on both sides). Requests on other
    /// channels than 0 each take the lock.
    pub async fn send_on(
        &mut self,
        channel: u64,
        rq_type: u64,
        flags: u64,
        payload: impl Into<Bytes>,
    ) -> Result<u64, Error> {
        let shared = &self.connection.shared;
        let request = Session::outgoing(&shared.config, channel, rq_type, flags, payload.into())?;
        let mut request = Some(request);
        if let Some(tag) = self.send_batched(channel, &mut request) {
            self.unflushed = true;
            return Ok(tag);
        }
        let sent = {
            let mut waiting = Waiting {
                pipeline: self,
                request,
                ticket: None,
            };
            poll_fn(|cx| waiting.poll_send(cx)).await
        };
        let tag = sent?;
        self.unflushed = true;
        Ok(tag)
    }

    /// Puts `request` in the batch, setting more aside if it ran out; `None` when there is
    /// no room now (or the channel is not 0): the batch is handed over, and the request must
    /// wait its turn.
    #[inline]
    fn send_batched(&mut self, channel: u64, request: &mut Option<Outgoing>) -> Option<u64> {
        if channel == 0 {
            if let Some(tag) = self.batch.push(request) {
                return Some(tag);
            }
        }
        let mut state = self.connection.shared.lock();
        let ran_out = !self.batch.used.is_empty();
        state.session.hand_over(&mut self.batch);
        if channel != 0 {
            return None;
        }
        if ran_out {
            self.batch.ran_out();
        }
        if state.session.refill(self.id, &mut self.batch) {
            if let Some(tag) = self.batch.push(request) {
                return Some(tag);
            }
            // Larger than the share: all of it back, and the request waits its turn.
            state.session.hand_over(&mut self.batch);
        }
        None
    }

    /// Wakes the connection's task for the requests sent since the last flush: they go out
    /// in one write.
    pub fn flush(&mut self) {
        if std::mem::take(&mut self.unflushed) {
            let mut state = self.connection.shared.lock();
            self.batch.flushed();
            state.session.hand_over(&mut self.batch);
            if state.session.has_transmit() {
                state.wake_driver();
            }
        }
    }

    /// The next outcome, with the tag of its request, flushing before it waits; `None` when
    /// none of this pipeline's requests waits.
    ///
    /// Outcomes come in the order they came from the peer. Those already here are returned
    /// without a flush, so a task that sends one request per outcome taken sends them in one
    /// write once it has taken all that came together. When the link ends, every request
    /// still waiting gets [`Error::Ended`], at once. Cancel-safe: a dropped `recv` loses no
    /// outcome.
    pub async fn recv(&mut self) -> Option<(u64, Result<Response, Error>)> {
        if let Some(outcome) = self.outcomes.pop_front() {
            return Some(outcome);
        }
        poll_fn(|cx| self.poll_take(cx)).await;
        self.outcomes.pop_front()
    }

    /// Takes the outcomes that came; ready when some did, or when none can come.
    fn poll_take(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let mut state = self.connection.shared.lock();
        self.batch.flushed();
        state.session.hand_over(&mut self.batch);
        state
            .session
            .take_pipe(self.id, &mut self.outcomes, cx.waker());
        if !self.outcomes.is_empty() || state.session.pipe_in_flight(self.id) == 0 {
            return Poll::Ready(());
        }
        if std::mem::take(&mut self.unflushed) && state.session.has_transmit() {
            state.wake_driver();
        }
        Poll::Pending
    }

    /// How many of this pipeline's requests have not had their outcome returned by
    /// [`recv`](Pipeline::recv) yet.
    pub fn in_flight(&self) -> usize {
        self.connection
            .shared
            .lock()
            .session
            .pipe_in_flight(self.id)
            + self.outcomes.len()
            + self.batch.used.len()
    }
}

/// A pipeline's request waiting for room; gives its place in line back if dropped.
struct Waiting<'a> {
    pipeline: &'a mut Pipeline,
    request: Option<Outgoing>,
    ticket: Option<u64>,
}

impl Waiting<'_> {
    fn poll_send(&mut self, cx: &mut Context<'_>) -> Poll<Result<u64, Error>> {
        let pipeline = &mut *self.pipeline;
        let mut state = pipeline.connection.shared.lock();
        let owner = Owner::Pipe(pipeline.id);
        let sent = state
            .session
            .submit(&mut self.request, owner, &mut self.ticket, cx.waker());
        if sent.is_pending() && std::mem::take(&mut pipeline.unflushed) {
            // Room comes only as responses do: the requests queued must go out first.
            state.wake_driver();
        }
        sent
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        if self.ticket.is_some() {
            let shared = &self.pipeline.connection.shared;
            shared.lock().session.forget_ticket(self.ticket.take());
        }
    }
}

impl Drop for Pipeline {
    fn drop(&mut self) {
        let mut state = self.connection.shared.lock();
        state.session.close_pipe(self.id, &mut self.batch);
    }
}
