//! [`Batch`]: a pipeline's requests encoded without the connection's lock. No I/O, no clock.
//!
//! Under the lock, the session sets aside tags for a pipeline (their places in
//! [`Config::max_in_flight`](crate::Config::max_in_flight) held) and a share of
//! [`Config::max_unsent`](crate::Config::max_unsent) for their bytes
//! ([`Session::refill`](crate::session::Session::refill)). The pipeline then encodes its
//! requests into the batch alone, and hands the batch over with one lock
//! ([`Session::hand_over`](crate::session::Session::hand_over)), when it flushes, waits for
//! outcomes, or runs out of tags or room. The tags it did not use, and the share, go back
//! then. Until then a request is not sent: no response is taken for its tag, and no timeout
//! or failure reaches it.

use std::collections::VecDeque;

use bytes::BytesMut;
use tracing::trace;

use crate::bsuint;
use crate::session::Outgoing;

/// The most tags a pipeline sets aside at once.
pub(crate) const MAX_RESERVE: usize = 64;
/// The most bytes of `max_unsent` a batch may take.
pub(crate) const MAX_GRANT: usize = 64 * 1024;

/// A pipeline's requests encoded and not yet handed to the session, and what they may use.
#[derive(Default)]
pub(crate) struct Batch {
    /// Tags set aside for the next requests, lowest first.
    pub free: VecDeque<u64>,
    /// The tags of the requests in `bytes`, in order.
    pub used: Vec<u64>,
    /// The requests, encoded.
    pub bytes: BytesMut,
    /// The bytes of `max_unsent` set aside for `bytes`.
    pub grant: usize,
    /// How many tags to set aside next: as many as the last flush sent, doubled each time a
    /// batch runs out before a flush.
    pub want: usize,
    /// Requests sent since the last flush.
    pub since_flush: usize,
}

impl Batch {
    /// Encodes `request` (taken) with the next tag set aside, when there is one and its frame
    /// fits in what is left of the grant; returns the tag. Otherwise `request` stays.
    #[inline]
    pub fn push(&mut self, request: &mut Option<Outgoing>) -> Option<u64> {
        let tag = *self.free.front()?;
        let body = request.as_ref()?.body_with_tag(tag);
        let frame = bsuint::encoded_len(body as u64) + body;
        if self.bytes.len() + frame > self.grant {
            return None;
        }
        let mut packet = request.take()?.packet;
        packet.set_tag(tag);
        packet.encode_to(body, &mut self.bytes);
        trace!(%packet, "out");
        self.free.pop_front();
        self.used.push(tag);
        self.since_flush += 1;
        Some(tag)
    }

    /// It ran out of tags or room before a flush: the next sets twice as many tags aside.
    pub fn ran_out(&mut self) {
        self.want = (self.want * 2).clamp(1, MAX_RESERVE);
    }

    /// It is being flushed: the next sets aside as many tags as were sent since the last
    /// flush.
    pub fn flushed(&mut self) {
        if self.since_flush > 0 {
            self.want = std::mem::take(&mut self.since_flush).min(MAX_RESERVE);
        }
    }

    /// Holds nothing: no tag set aside, no request, no share.
    pub fn is_empty(&self) -> bool {
        self.free.is_empty() && self.used.is_empty() && self.grant == 0
    }
}
