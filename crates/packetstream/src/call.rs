//! [`Call`]: one request of this side, from waiting for room to its outcome. Both
//! [`request`](crate::PacketConnection::request) and
//! [`submit`](crate::PacketConnection::submit) are one.

use std::fmt;
use std::future::Future;
use std::ops::Deref;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use crate::in_flight::Owner;
use crate::session::Outgoing;
use crate::shared::{Shared, State};
use crate::{Ended, Error, Response};

enum Stage {
    /// Waiting for room; `ticket` keeps its place in line once it has one.
    Unsent {
        request: Option<Outgoing>,
        ticket: Option<u64>,
    },
    /// Sent with this tag; its outcome is on its way.
    Sent(u64),
    Done,
}

/// A request on its way, over a handle to the connection: `Arc<Shared>` for an owned
/// [`Call`], `&Shared` for `request()`'s future (no reference count touched).
pub(crate) struct Exchange<S: Deref<Target = Shared>> {
    shared: S,
    stage: Stage,
    /// The tag, once sent.
    tag: u64,
}

impl<S: Deref<Target = Shared>> Exchange<S> {
    pub fn new(shared: S, request: Outgoing) -> Self {
        Exchange {
            shared,
            stage: Stage::Unsent {
                request: Some(request),
                ticket: None,
            },
            tag: 0,
        }
    }

    /// Sends the request once there is room.
    pub fn poll_sent(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let mut state = self.shared.lock();
        send(&mut self.stage, &mut self.tag, &mut state, cx).map_ok(|_| ())
    }

    /// Sends the request once there is room and, in the same pass through the lock, asks
    /// for its outcome: a request costs two passes, one to send and one to take its
    /// response.
    fn poll_outcome(&mut self, cx: &mut Context<'_>) -> Poll<Result<Response, Error>> {
        let mut state = self.shared.lock();
        let tag = std::task::ready!(send(&mut self.stage, &mut self.tag, &mut state, cx))?;
        match state.session.poll_call(tag, cx.waker()) {
            Some(outcome) => {
                self.stage = Stage::Done;
                Poll::Ready(outcome)
            }
            None => Poll::Pending,
        }
    }
}

/// Sends the request of `stage` once there is room, under `state`'s lock, and gives its tag.
#[inline]
fn send(
    stage: &mut Stage,
    sent_tag: &mut u64,
    state: &mut State,
    cx: &mut Context<'_>,
) -> Poll<Result<u64, Error>> {
    let Stage::Unsent { request, ticket } = stage else {
        return Poll::Ready(match stage {
            Stage::Sent(tag) => Ok(*tag),
            // Polled after it resolved.
            _ => Err(Error::Ended(Ended::Local)),
        });
    };
    match state
        .session
        .submit(request, Owner::Call, ticket, cx.waker())
    {
        Poll::Pending => Poll::Pending,
        Poll::Ready(Err(e)) => {
            *stage = Stage::Done;
            Poll::Ready(Err(e))
        }
        Poll::Ready(Ok(tag)) => {
            state.wake_driver();
            *stage = Stage::Sent(tag);
            *sent_tag = tag;
            Poll::Ready(Ok(tag))
        }
    }
}

impl<S: Deref<Target = Shared> + Unpin> Future for Exchange<S> {
    type Output = Result<Response, Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.poll_outcome(cx)
    }
}

impl<S: Deref<Target = Shared>> Drop for Exchange<S> {
    fn drop(&mut self) {
        match std::mem::replace(&mut self.stage, Stage::Done) {
            Stage::Unsent {
                ticket: Some(ticket),
                ..
            } => self.shared.lock().session.forget_ticket(Some(ticket)),
            Stage::Sent(tag) => self.shared.lock().session.cancel(tag),
            Stage::Unsent { ticket: None, .. } | Stage::Done => {}
        }
    }
}

/// A request sent by [`submit`](crate::PacketConnection::submit): await it for its
/// [`Response`], as cs.packetstream's `submit` returns a result to call.
///
/// It owns a handle on the connection's shared state, so it can be moved to another task,
/// stored, or awaited long after the call that sent it; it does not keep the connection open
/// (when the connection closes, it resolves with the response if the peer sent it before its
/// EOF, and fails otherwise). Dropping it cancels the request locally: its place in
/// [`Config::max_in_flight`](crate::Config::max_in_flight) is free at once, and a response
/// that still comes is counted as an orphan.
#[must_use = "a Call that is dropped cancels its request"]
pub struct Call(pub(crate) Exchange<Arc<Shared>>);

impl Call {
    /// The tag the request went out with.
    pub fn tag(&self) -> u64 {
        self.0.tag
    }
}

impl fmt::Debug for Call {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Call").field("tag", &self.tag()).finish()
    }
}

impl Future for Call {
    type Output = Result<Response, Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.0.poll_outcome(cx)
    }
}
