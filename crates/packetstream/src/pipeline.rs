//! [`Pipeline`]: requests sent without waking the connection each time, and their outcomes
//! taken in batches, for one task that keeps many requests in flight.

use std::collections::VecDeque;
use std::fmt;
use std::future::poll_fn;
use std::task::{Context, Poll};

use bytes::Bytes;

use crate::in_flight::{Outcome, Owner};
use crate::session::{Outgoing, Session};
use crate::{Error, PacketConnection, Response};

/// Requests sent in batches and their outcomes taken in the order they come, for one task
/// that keeps many requests in flight.
///
/// Made by [`PacketConnection::pipeline`]. [`send`](Pipeline::send) queues a request and
/// returns its tag without waking the connection's task, [`flush`](Pipeline::flush) wakes it
/// once for all of them, and [`recv`](Pipeline::recv) returns the next outcome with the tag
/// of its request, flushing first when it has to wait; the outcomes that came together are
/// taken with one lock. Its requests go through the same table as
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
            unflushed: false,
        }
    }

    /// Sends a request on channel 0 and returns its tag; it goes out with the next
    /// [`flush`](Pipeline::flush) (which [`recv`](Pipeline::recv) does before it waits), or
    /// sooner if the connection's task runs anyway.
    ///
    /// `rq_type` is the handler's rq_type (the wire carries `rq_type + 1`). Waits while
    /// [`Config::max_in_flight`](crate::Config::max_in_flight) requests of this connection
    /// await their outcomes (this pipeline's not yet taken by `recv` among them), flushing
    /// first. Checks the request as [`request`](PacketConnection::request) does. Cancel-safe:
    /// a `send` dropped before it returns sent nothing.
    pub async fn send(
        &mut self,
        rq_type: u64,
        flags: u64,
        payload: impl Into<Bytes>,
    ) -> Result<u64, Error> {
        self.send_on(0, rq_type, flags, payload).await
    }

    /// [`send`](Pipeline::send) on `channel` (other than 0 needs
    /// [`Config::channels`](crate::Config::channels) on both sides).
    pub async fn send_on(
        &mut self,
        channel: u64,
        rq_type: u64,
        flags: u64,
        payload: impl Into<Bytes>,
    ) -> Result<u64, Error> {
        let shared = &self.connection.shared;
        let request = Session::outgoing(&shared.config, channel, rq_type, flags, payload.into())?;
        let sent = {
            let mut waiting = Waiting {
                pipeline: self,
                request: Some(request),
                ticket: None,
            };
            poll_fn(|cx| waiting.poll_send(cx)).await
        };
        let tag = sent?;
        self.unflushed = true;
        Ok(tag)
    }

    /// Wakes the connection's task for the requests sent since the last flush: they go out
    /// in one write.
    pub fn flush(&mut self) {
        if std::mem::take(&mut self.unflushed) {
            let mut state = self.connection.shared.lock();
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
        self.connection.shared.lock().session.close_pipe(self.id);
    }
}
