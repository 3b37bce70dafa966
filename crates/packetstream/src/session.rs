//! [`Session`]: the protocol state of one connection, with no I/O and no clock, in
//! quinn-proto's shape.
//!
//! It is fed the bytes read ([`handle_read`](Session::handle_read)), this side's requests
//! ([`submit`](Session::submit)), its handlers' replies
//! ([`handle_replies`](Session::handle_replies)), what was written
//! ([`transmitted`](Session::transmitted)) and the time
//! ([`handle_timeout`](Session::handle_timeout)); it yields the bytes to write
//! ([`take_transmit`](Session::take_transmit)), the requests to hand to handlers
//! ([`take_requests`](Session::take_requests)), the outcomes of this side's requests (through
//! the wakers of their owners), whether to read ([`read_want`](Session::read_want)), and its
//! next deadline ([`poll_timeout`](Session::poll_timeout)). The close sequence, admission,
//! backpressure, the byte budgets and every timeout are decided here; the driver only moves
//! bytes, runs handler futures and sleeps until the deadline.
//!
//! ```text
//!            close(), the last handle dropped,
//!            the peer's EOF, the stream's end, bad input
//!   Open ─────────────────────────────────────────────► Closing
//!    │  requests both ways                                │ the close deadline starts; ERQ
//!    │                                                    │ queued (a local close). No new
//!    │                                                    │ requests of ours; the peer's are
//!    │                                                    │ still served, and ours still get
//!    │                                                    │ their responses (until the
//!    │                                                    │ peer's EOF fails them).
//!    │                                                    ▼ no request queued or in a handler
//!    │                                                 EofSent
//!    │                                                    │ ERQ (if not yet) and EOF queued
//!    │                                                    │ after every reply; a
//!    │                                                    │ request of the peer's now is
//!    │                                                    │ dropped, never handed to a handler
//!    │                                                    ▼ all written, and the peer's EOF
//!    │                                                 Shutdown   (the driver shuts the
//!    │                                                    │        write side)
//!    │                                                    ▼ shutdown_done()
//!    │                                                 Closed: Ok, or the first bad input
//!    │
//!    └── abort(), the close deadline, an i/o error ───► Closed: Err (cut: nothing more is
//!        (from any state but Closed)                       written, the stream is dropped)
//! ```
//!
//! Reading stops, as backpressure on the peer, while the next request does not fit in
//! [`Config::max_received`] or [`Config::max_unsent`] is full; responses to this side's
//! requests are always read. A request taken is handed to the driver at once; the driver
//! starts its handler while fewer than `max_handlers` futures are pending and the replies
//! waiting to be written, [`unsent`](Session::unsent) with its own, are below `max_unsent`.
//! This side's requests wait for room in `max_in_flight` and `max_unsent`, first come first
//! served.

use std::collections::VecDeque;
use std::sync::Arc;
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use tracing::{debug, trace, warn};

use crate::batch::{Batch, MAX_GRANT, MAX_RESERVE};
use crate::config::REQUEST_COST;
use crate::in_flight::{InFlight, Outcome, Owner};
use crate::serving::{Job, Lane, Serving};
use crate::{Config, Ended, Error, Packet, PacketCodec, Reply, Request, Response, Stats, bsuint};

/// How long a connection stays quiet (nothing in flight either way, nothing to write, nothing
/// read) before it gives its buffers and tables back. A busy connection keeps them from one
/// burst to the next: large buffers made anew cost page faults.
pub(crate) const IDLE_RELEASE: Duration = Duration::from_millis(200);

/// What a quiet connection may hold, driver and session together, and keep with no deadline
/// to give it back: well under the idle budget of 8 KB.
pub(crate) const LIGHT: usize = 4 * 1024;

/// Where the connection is in its life. See the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Phase {
    Open,
    Closing,
    EofSent,
    Shutdown,
    Closed,
}

/// A request of this side, checked, with tag 0 until it is sent.
pub(crate) struct Outgoing {
    pub(crate) packet: Packet,
    /// Its body's length with tag 0.
    body: usize,
}

impl Outgoing {
    /// Its body's length with `tag`.
    #[inline]
    pub(crate) fn body_with_tag(&self, tag: u64) -> usize {
        self.body - 1 + bsuint::encoded_len(tag)
    }

    /// The most its frame can take, whatever its tag.
    fn longest_frame(&self) -> usize {
        let body = self.body + bsuint::MAX_LEN - 1;
        bsuint::encoded_len(body as u64) + body
    }
}

/// A request of this side waiting for room.
struct Waiter {
    ticket: u64,
    /// The most its frame can take.
    frame: usize,
    waker: Option<Waker>,
}

/// The protocol state of one connection. See the module docs.
pub(crate) struct Session {
    config: Config,
    codec: PacketCodec,
    phase: Phase,
    serving: Serving,
    in_flight: InFlight,
    /// This side's requests waiting for room, in the order they came.
    waiters: VecDeque<Waiter>,
    next_ticket: u64,
    /// Encoded packets the driver has not taken yet.
    outbound: BytesMut,
    /// Bytes encoded and not yet written: `outbound` and what the driver holds.
    unsent: usize,
    /// Bytes of `max_unsent` set aside for pipelines' batches, not yet handed over.
    granted: usize,
    /// Why reading ended; `None` while it goes on.
    read_end: Option<Ended>,
    /// The stream ended: no byte comes after those in the read buffer.
    stream_ended: bool,
    /// A whole request is in the read buffer, and does not fit in the budgets.
    blocked: bool,
    /// Requests taken, for the driver to hand to handlers.
    requests: VecDeque<(Job, Request)>,
    /// Tags the driver's lane answered, held until the read they came in is taken.
    answered_in_read: Vec<Job>,
    erq_sent: bool,
    grace_until: Option<Instant>,
    close_deadline: Option<Instant>,
    /// When the connection went quiet, while it stays so.
    quiet_since: Option<Instant>,
    /// Its memory was given back in this quiet spell.
    released: bool,
    /// The first bad input: the connection still closes cleanly, and reports it.
    failure: Option<Error>,
    outcome: Option<Result<(), Error>>,
    stats: Stats,
    to_wake: Vec<Waker>,
}

impl Session {
    /// A session with a checked `config`; `serving` when this side has a handler.
    pub fn new(config: Config, serving: bool) -> Session {
        Session {
            codec: PacketCodec::new(config.max_packet),
            phase: Phase::Open,
            serving: Serving::new(serving, config.channels, config.max_received),
            in_flight: InFlight::new(config.max_in_flight, config.request_timeout),
            waiters: VecDeque::new(),
            next_ticket: 0,
            outbound: BytesMut::new(),
            unsent: 0,
            granted: 0,
            read_end: None,
            stream_ended: false,
            blocked: false,
            requests: VecDeque::new(),
            answered_in_read: Vec::new(),
            erq_sent: false,
            grace_until: None,
            close_deadline: None,
            quiet_since: None,
            released: false,
            failure: None,
            outcome: None,
            stats: Stats::default(),
            to_wake: Vec::new(),
            config,
        }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    // ---- this side's requests ----

    /// A request to send on `channel`, tag still 0, after the checks that do not depend on
    /// the connection's state: the channel exists, the flags and rq_type fit, and the packet
    /// fits in `max_packet` whatever its tag.
    pub fn outgoing(
        config: &Config,
        channel: u64,
        rq_type: u64,
        flags: u64,
        payload: Bytes,
    ) -> Result<Outgoing, Error> {
        if channel != 0 && !config.channels {
            return Err(Error::UnknownChannel { channel });
        }
        let packet = Packet::request(channel, 0, rq_type, flags, payload)?;
        let body = packet.body_len();
        // A larger tag than 0 adds at most nine bytes.
        let longest = body + bsuint::MAX_LEN - 1;
        if longest > config.max_packet {
            return Err(Error::PacketTooLarge {
                len: longest as u64,
                max: config.max_packet,
            });
        }
        Ok(Outgoing { packet, body })
    }

    /// Why a new request of this side is refused now, if it is.
    fn refusal(&self) -> Option<Error> {
        if let Some(outcome) = &self.outcome {
            return Some(Error::Ended(ended(outcome)));
        }
        (self.phase != Phase::Open).then_some(Error::Closing)
    }

    #[inline]
    fn room_for(&self, frame: usize) -> bool {
        let held = self.unsent + self.granted;
        self.in_flight.has_room() && (held == 0 || held + frame <= self.config.max_unsent)
    }

    /// Sends `request` (from [`outgoing`](Self::outgoing)) for `owner` when there is room and
    /// no request that came earlier still waits for it: its tag is issued and its frame
    /// queued, and `request` is taken. Otherwise it waits its turn: `ticket` keeps its place,
    /// and `waker` is woken when room may have come.
    #[inline]
    pub fn submit(
        &mut self,
        request: &mut Option<Outgoing>,
        owner: Owner,
        ticket: &mut Option<u64>,
        waker: &Waker,
    ) -> Poll<Result<u64, Error>> {
        if let Some(e) = self.refusal() {
            self.forget_ticket(ticket.take());
            request.take();
            return Poll::Ready(Err(e));
        }
        let Some(frame) = request.as_ref().map(Outgoing::longest_frame) else {
            return Poll::Ready(Err(Error::Ended(Ended::Local)));
        };
        let first = self.waiters.front().map(|w| w.ticket);
        let my_turn = first.is_none() || first == *ticket;
        if !my_turn || !self.room_for(frame) {
            match *ticket {
                Some(t) => {
                    if let Some(w) = self.waiters.iter_mut().find(|w| w.ticket == t) {
                        if !w.waker.as_ref().is_some_and(|w| w.will_wake(waker)) {
                            w.waker = Some(waker.clone());
                        }
                    }
                }
                None => {
                    let t = self.next_ticket;
                    self.next_ticket += 1;
                    self.waiters.push_back(Waiter {
                        ticket: t,
                        frame,
                        waker: Some(waker.clone()),
                    });
                    *ticket = Some(t);
                }
            }
            return Poll::Pending;
        }
        if ticket.take().is_some() {
            self.waiters.pop_front();
        }
        let Some(Outgoing { mut packet, body }) = request.take() else {
            return Poll::Ready(Err(Error::Ended(Ended::Local)));
        };
        let tag = match self.in_flight.issue(packet.channel(), owner) {
            Ok(tag) => tag,
            Err(e) => {
                self.wake_room();
                return Poll::Ready(Err(e));
            }
        };
        self.active();
        packet.set_tag(tag);
        // The body grows from tag 0's one byte to the tag's length.
        self.send_sized(&packet, body - 1 + bsuint::encoded_len(tag));
        self.stats.requests_sent += 1;
        self.wake_room();
        Poll::Ready(Ok(tag))
    }

    /// A request waiting for room was dropped: the next in line may go.
    pub fn forget_ticket(&mut self, ticket: Option<u64>) {
        let Some(ticket) = ticket else {
            return;
        };
        if let Some(i) = self.waiters.iter().position(|w| w.ticket == ticket) {
            self.waiters.remove(i);
            if i == 0 {
                self.wake_room();
            }
        }
    }

    /// Wakes the first request waiting for room, if it has some now.
    #[inline]
    fn wake_room(&mut self) {
        let Some(frame) = self.waiters.front().map(|w| w.frame) else {
            return;
        };
        if self.room_for(frame) || self.refusal().is_some() {
            if let Some(waker) = self.waiters.front_mut().and_then(|w| w.waker.take()) {
                self.to_wake.push(waker);
            }
        }
    }

    /// Wakes every request waiting for room: the connection is closing, and they fail.
    fn wake_all_waiters(&mut self) {
        for waiter in &mut self.waiters {
            self.to_wake.extend(waiter.waker.take());
        }
    }

    /// A request's future asks for its outcome: see [`InFlight::poll_call`].
    #[inline]
    pub fn poll_call(&mut self, tag: u64, waker: &Waker) -> Option<Outcome> {
        let outcome = self.in_flight.poll_call(tag, waker);
        if outcome.is_some() {
            self.wake_room();
        }
        outcome
    }

    /// The request `tag` is given up by its owner.
    pub fn cancel(&mut self, tag: u64) {
        if self.in_flight.cancel(tag) {
            trace!(
                tag,
                "request cancelled: a response that still comes is an orphan"
            );
            self.wake_room();
        }
    }

    /// A new pipeline.
    pub fn open_pipe(&mut self) -> u32 {
        self.in_flight.open_pipe()
    }

    /// The pipeline is gone: its requests are cancelled, and its batch dropped unsent.
    pub fn close_pipe(&mut self, id: u32, batch: &mut Batch) {
        self.granted -= std::mem::take(&mut batch.grant);
        *batch = Batch::default();
        self.in_flight.close_pipe(id);
        self.wake_room();
    }

    /// Takes a pipeline's batch: its requests are queued to be written, after what is
    /// queued already, or, when this side no longer sends requests, end at once with the
    /// reason; the tags it did not use and its share of `max_unsent` are given back.
    #[inline]
    pub fn hand_over(&mut self, batch: &mut Batch) {
        if batch.is_empty() {
            return;
        }
        for tag in batch.free.drain(..) {
            self.in_flight.cancel(tag);
        }
        self.granted -= std::mem::take(&mut batch.grant);
        let sent = batch.used.len();
        if sent > 0 {
            if let Some(e) = self.refusal() {
                debug!(sent, error = %e, "a pipeline's batch came too late: its requests fail");
                for tag in batch.used.drain(..) {
                    self.in_flight.refuse(tag, e.clone(), &mut self.to_wake);
                }
                batch.bytes.clear();
            } else {
                for tag in batch.used.drain(..) {
                    self.in_flight.commit(tag);
                }
                self.active();
                self.unsent += batch.bytes.len();
                if self.outbound.is_empty() {
                    std::mem::swap(&mut self.outbound, &mut batch.bytes);
                } else {
                    self.outbound.extend_from_slice(&batch.bytes);
                    batch.bytes.clear();
                }
                self.stats.requests_sent += sent as u64;
                self.stats.packets_out += sent as u64;
            }
        }
        self.wake_room();
    }

    /// Sets tags (up to `batch.want`, at least one) and a share of `max_unsent` aside for
    /// pipeline `id`'s next requests, when this side sends requests, nobody waits for room
    /// before it, and there is some. Whether it did. The batch was handed over first.
    pub fn refill(&mut self, id: u32, batch: &mut Batch) -> bool {
        debug_assert!(batch.is_empty());
        if self.refusal().is_some() || !self.waiters.is_empty() {
            return false;
        }
        let held = self.unsent + self.granted;
        let grant = self.config.max_unsent.saturating_sub(held).min(MAX_GRANT);
        if grant == 0 {
            return false;
        }
        let want = batch.want.clamp(1, MAX_RESERVE);
        if self.in_flight.reserve(id, want, &mut batch.free) == 0 {
            return false;
        }
        self.granted += grant;
        batch.grant = grant;
        true
    }

    /// The outcomes that came for a pipeline; `waker` is kept when none came.
    pub fn take_pipe(&mut self, id: u32, into: &mut VecDeque<(u64, Outcome)>, waker: &Waker) {
        let before = into.len();
        self.in_flight.take_pipe(id, into, waker);
        if into.len() > before {
            self.wake_room();
        }
    }

    /// How many of the pipeline's requests are in flight, answered or not.
    pub fn pipe_in_flight(&self, id: u32) -> usize {
        self.in_flight.pipe_in_flight(id)
    }

    // ---- reading ----

    /// Whether the request taking `frame` bytes can be taken off the read buffer now: its
    /// answer has room to wait, and it fits in what may be held.
    #[inline]
    fn can_take_request(&self, frame: usize) -> bool {
        self.unsent() < self.config.max_unsent && self.serving.fits(frame + REQUEST_COST)
    }

    /// How many more bytes the frame at the front of `buf` lacks (1 when its length is not
    /// known yet), or `None` when reading must wait: it is over, or the next request does not
    /// fit. Called after [`handle_read`](Self::handle_read) on the same buffer.
    pub fn read_want(&self, buf: &BytesMut) -> Option<usize> {
        if self.read_end.is_some() || self.stream_ended || self.blocked || self.outcome.is_some() {
            return None;
        }
        match self.codec.head(buf) {
            Ok(None) => Some(1),
            Ok(Some(head)) if buf.len() >= head.len() => None,
            Ok(Some(head)) => {
                if !self.can_take_request(head.len()) && head.is_request(buf) == Some(true) {
                    return None;
                }
                Some(head.len() - buf.len())
            }
            Err(_) => None,
        }
    }

    /// Takes what it can of the packets in `buf`, of which `fresh` bytes are new: each whole
    /// packet is handled, except that a request that does not fit in the budgets stays in
    /// `buf` until it does (call again when handlers finish or bytes are written).
    pub fn handle_read(&mut self, buf: &mut BytesMut, fresh: usize, now: Instant) {
        self.stats.bytes_in += fresh as u64;
        self.blocked = false;
        while self.read_end.is_none() && self.outcome.is_none() {
            let head = match self.codec.peek(buf) {
                Ok(Some(head)) if buf.len() >= head.len() => head,
                Ok(_) => break,
                Err(e) => {
                    self.bad_input(e, now);
                    break;
                }
            };
            // Only a request can be refused by the budgets: the kind is looked at only then.
            if !self.can_take_request(head.len()) && head.is_request(buf) == Some(true) {
                self.blocked = true;
                break;
            }
            let frame = self.codec.take(buf, head);
            match Packet::decode_body(frame) {
                Ok(packet) => self.receive(packet, head.len(), now),
                Err(e) => self.bad_input(e, now),
            }
        }
        if self.stream_ended && !self.blocked && self.read_end.is_none() {
            match self.codec.unfinished(buf) {
                0 => {
                    debug!("the stream ended without an EOF packet");
                    self.end_reading(Ended::StreamEnd, now);
                }
                buffered => {
                    let e = Error::Truncated { buffered };
                    warn!(error = %e, "the stream ended inside a packet");
                    self.bad_input(e, now);
                }
            }
        }
        self.advance();
        // After the close moved on: while they are held, the requests the lane answered
        // keep our EOF from going out before their replies, which come next.
        for job in self.answered_in_read.drain(..) {
            self.serving.finished(job);
        }
    }

    /// The stream ended: nothing comes after what `buf` holds.
    pub fn handle_read_eof(&mut self, buf: &mut BytesMut, now: Instant) {
        self.stream_ended = true;
        self.handle_read(buf, 0, now);
    }

    #[inline]
    fn receive(&mut self, packet: Packet, frame: usize, now: Instant) {
        self.active();
        self.stats.packets_in += 1;
        trace!(%packet, "in");
        if packet.is_eof() {
            self.end_reading(Ended::PeerEof, now);
            return;
        }
        if packet.is_erq() {
            debug!("the peer will send no more requests");
            self.serving.peer_erq();
            return;
        }
        let Some(rq_type) = packet.rq_type() else {
            if packet.is_control() {
                debug!(%packet, "a request with wire rq_type 0 (malformed EOF): taken as EOF");
                self.end_reading(Ended::PeerEof, now);
            } else {
                self.response(packet);
            }
            return;
        };
        let (channel, tag) = (packet.channel(), packet.tag());
        if self.phase >= Phase::EofSent {
            self.stats.requests_refused += 1;
            debug!(%packet, "request after our EOF: dropped, never handled");
            return;
        }
        match self.serving.check(channel, tag) {
            Ok(()) => {
                let request = Request {
                    channel,
                    tag,
                    rq_type,
                    flags: packet.flags(),
                    payload: packet.into_payload(),
                };
                let job = self.serving.admit(&request, frame + REQUEST_COST);
                self.requests.push_back((job, request));
            }
            Err(text) => {
                self.stats.requests_refused += 1;
                debug!(%packet, reason = ?text, "request refused");
                self.send(&Packet::failure(channel, tag, text));
            }
        }
    }

    #[inline]
    fn response(&mut self, packet: Packet) {
        let (channel, tag) = (packet.channel(), packet.tag());
        let response = Response {
            ok: packet.ok() == Some(true),
            flags: packet.flags(),
            payload: packet.into_payload(),
        };
        if self
            .in_flight
            .answer(channel, tag, response, &mut self.to_wake)
            .is_err()
        {
            self.stats.orphans += 1;
            debug!(channel, tag, "response to no waiting request: orphan");
        }
    }

    fn bad_input(&mut self, error: Error, now: Instant) {
        warn!(error = %error, "bad input from the peer: closing");
        let why = Ended::Failed(Arc::new(error.clone()));
        self.failure.get_or_insert(error);
        self.end_reading(why, now);
    }

    /// Reading is over: this side's requests will get no response, so they fail now; the
    /// close begins (cs answers what it accepted, then sends ERQ and EOF).
    fn end_reading(&mut self, why: Ended, now: Instant) {
        if self.read_end.is_some() {
            return;
        }
        let failed = self
            .in_flight
            .fail_all(&Error::Ended(why.clone()), &mut self.to_wake);
        if failed > 0 {
            debug!(failed, "requests failed: the peer will not answer them");
        }
        self.read_end = Some(why);
        // ERQ waits for the replies still to come, as the spec's close protocol has it.
        self.begin_close(now, false);
    }

    /// Why reading ended, once it has.
    pub fn read_end(&self) -> Option<&Ended> {
        self.read_end.as_ref()
    }

    /// An i/o error on the stream: the connection is cut.
    pub fn handle_io_error(&mut self, error: std::io::Error) {
        self.cut(error.into());
    }

    // ---- serving ----

    /// The lane the driver may take the peer's requests by from the bytes it reads before
    /// the next lock, if requests are served now (see [`Lane`]): not once our EOF is queued,
    /// reading has ended, or the peer said it sends no more.
    pub fn lane(&self) -> Option<Lane> {
        if self.phase >= Phase::EofSent
            || self.read_end.is_some()
            || self.stream_ended
            || self.outcome.is_some()
        {
            return None;
        }
        self.serving.lane()
    }

    /// What the driver took by the lane since the last lock: `taken` requests (read off the
    /// buffer), of which it answered those of the tags in `answered` at once (emptied; their
    /// replies are among those handed over next), and the jobs of those still running in
    /// `held` (emptied), which are held from now on. When the lane `stopped` at a whole
    /// packet, the tags it answered count as in use while the rest of the read is taken (as
    /// they did when a read's requests were all taken before any handler ran): a request
    /// naming one of them in the same read is refused, as cs refuses it.
    pub fn handle_lane(
        &mut self,
        taken: usize,
        answered: &mut Vec<u64>,
        stopped: bool,
        held: &mut Vec<Job>,
    ) {
        self.codec.took();
        self.active();
        self.stats.packets_in += taken as u64;
        self.stats.requests_served += answered.len() as u64;
        self.stats.packets_out += answered.len() as u64;
        for job in held.iter_mut() {
            self.serving.lane_held(job);
        }
        held.clear();
        if stopped {
            for &tag in answered.iter() {
                self.answered_in_read.push(self.serving.hold_answered(tag));
            }
        }
        answered.clear();
    }

    /// Moves the requests taken since the last call to the end of `into` (emptied when it
    /// was empty, they trade places), for the driver to hand to handlers. Each is held, and
    /// its tag in use, until its reply comes back through
    /// [`handle_replies`](Self::handle_replies).
    #[inline]
    pub fn take_requests(&mut self, into: &mut VecDeque<(Job, Request)>) {
        if into.is_empty() {
            std::mem::swap(into, &mut self.requests);
        } else {
            into.append(&mut self.requests);
        }
    }

    /// Bytes waiting to be written, and set aside for pipelines' batches: the driver starts
    /// a handler only while these and the replies it holds are below `max_unsent`.
    pub fn unsent(&self) -> usize {
        self.unsent + self.granted
    }

    /// The handlers of `jobs` are done (emptied), and `replies` (emptied) holds their
    /// answers, each made by [`encode_reply`] where its handler finished, so that no reply
    /// is moved about on its way to the wire. They go out after what is queued.
    #[inline]
    pub fn handle_replies(&mut self, jobs: &mut Vec<Job>, replies: &mut BytesMut) {
        let served = jobs.len();
        for job in jobs.drain(..) {
            self.serving.finished(job);
        }
        if self.outcome.is_some() {
            replies.clear();
            return;
        }
        self.stats.requests_served += served as u64;
        self.stats.packets_out += served as u64;
        self.unsent += replies.len();
        if self.outbound.is_empty() {
            std::mem::swap(&mut self.outbound, replies);
        } else {
            self.outbound.extend_from_slice(replies);
            replies.clear();
        }
        self.advance();
    }

    // ---- writing ----

    /// Queues `packet`, which fits in `max_packet`.
    #[inline]
    fn send(&mut self, packet: &Packet) {
        self.send_sized(packet, packet.body_len());
    }

    /// Queues `packet`, whose body is `body` bytes long.
    #[inline]
    fn send_sized(&mut self, packet: &Packet, body: usize) {
        let before = self.outbound.len();
        packet.encode_to(body, &mut self.outbound);
        self.unsent += self.outbound.len() - before;
        self.stats.packets_out += 1;
        trace!(%packet, "out");
    }

    /// Whether packets wait to be taken.
    pub fn has_transmit(&self) -> bool {
        !self.outbound.is_empty()
    }

    /// Moves the bytes to write to the end of `into`, unless a grace holds them. The
    /// requests among them are sent at `now`: their timeouts start.
    pub fn take_transmit(&mut self, into: &mut BytesMut, now: Instant) {
        self.in_flight.stamp(now);
        if self.outbound.is_empty() || self.outcome.is_some() {
            return;
        }
        let grace = self.config.grace;
        if !grace.is_zero() && self.phase == Phase::Open && self.unsent < self.config.max_unsent / 2
        {
            match self.grace_until {
                None => {
                    self.grace_until = now.checked_add(grace);
                    return;
                }
                Some(until) if now < until => return,
                Some(_) => {}
            }
        }
        self.grace_until = None;
        if into.is_empty() {
            // Swapped, not copied: the buffers trade places and keep their capacity.
            std::mem::swap(into, &mut self.outbound);
        } else {
            into.extend_from_slice(&self.outbound);
            self.outbound.clear();
        }
    }

    /// `n` bytes taken by [`take_transmit`](Self::take_transmit) were written.
    pub fn transmitted(&mut self, n: usize) {
        self.unsent -= n.min(self.unsent);
        self.stats.bytes_out += n as u64;
        self.wake_room();
        self.advance();
    }

    // ---- time ----

    /// When [`handle_timeout`](Self::handle_timeout) is next due.
    pub fn poll_timeout(&mut self) -> Option<Instant> {
        if self.outcome.is_some() {
            return None;
        }
        let grace = self.grace_until.filter(|_| !self.outbound.is_empty());
        let release = self
            .quiet_since
            .filter(|_| !self.released)
            .and_then(|since| since.checked_add(IDLE_RELEASE));
        [
            self.close_deadline,
            self.in_flight.next_deadline(),
            grace,
            release,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// The time is `now`: requests whose timeout passed fail, and a close past its deadline
    /// is cut.
    pub fn handle_timeout(&mut self, now: Instant) {
        let expired = self.in_flight.expire(now, &mut self.to_wake);
        if expired > 0 {
            self.stats.timeouts += expired as u64;
            debug!(expired, "requests timed out");
        }
        if self.close_deadline.is_some_and(|due| now >= due) && self.outcome.is_none() {
            let limit = self.config.close_timeout;
            debug!(?limit, phase = ?self.phase, "the close missed its deadline: cut");
            self.cut(Error::CloseTimeout(limit));
        }
    }

    // ---- closing ----

    /// Begins the close: see the module docs. ERQ goes out at once, as cs's own close
    /// sends it, after the requests already queued.
    pub fn close(&mut self, now: Instant) {
        self.begin_close(now, true);
    }

    fn begin_close(&mut self, now: Instant, erq_now: bool) {
        if self.phase == Phase::Open {
            self.phase = Phase::Closing;
            self.close_deadline = now.checked_add(self.config.close_timeout);
            self.wake_all_waiters();
        }
        if erq_now {
            self.send_erq();
        }
        self.advance();
    }

    fn send_erq(&mut self) {
        if !self.erq_sent && self.phase < Phase::EofSent {
            self.erq_sent = true;
            self.send(&Packet::ERQ);
        }
    }

    /// Moves the close on as far as it can go.
    fn advance(&mut self) {
        if self.phase == Phase::Closing && self.serving.is_idle() {
            self.send_erq();
            self.send(&Packet::EOF);
            self.phase = Phase::EofSent;
        }
        if self.phase == Phase::EofSent && self.unsent == 0 && self.read_end.is_some() {
            self.phase = Phase::Shutdown;
        }
    }

    /// Cuts the connection now: nothing more is written, and everything waiting fails.
    pub fn abort(&mut self) {
        self.cut(Error::Aborted);
    }

    /// The driver's task was dropped before the connection ended (its runtime shut down):
    /// nobody may wait for it any longer.
    pub fn task_dropped(&mut self) {
        self.cut(Error::Ended(Ended::TaskDropped));
    }

    fn cut(&mut self, error: Error) {
        if self.outcome.is_some() {
            return;
        }
        debug!(error = %error, "connection cut");
        self.finish(Err(error));
    }

    fn finish(&mut self, outcome: Result<(), Error>) {
        self.phase = Phase::Closed;
        let failed = self
            .in_flight
            .fail_all(&Error::Ended(ended(&outcome)), &mut self.to_wake);
        if failed > 0 {
            debug!(failed, "requests failed: the connection ended");
        }
        self.outcome = Some(outcome);
        self.wake_all_waiters();
        self.outbound = BytesMut::new();
    }

    /// Whether the driver must shut the write side now: everything is written, and both
    /// EOFs were exchanged.
    pub fn must_shutdown(&self) -> bool {
        self.phase == Phase::Shutdown
    }

    /// The driver shut the write side: the close is done.
    pub fn shutdown_done(&mut self) {
        if self.phase == Phase::Shutdown {
            let outcome = self.failure.take().map_or(Ok(()), Err);
            self.finish(outcome);
        }
    }

    /// How the connection ended, once it has: the driver then drops the stream.
    pub fn outcome(&self) -> Option<&Result<(), Error>> {
        self.outcome.as_ref()
    }

    /// Whether this side began closing (ERQ sent) or has closed.
    pub fn is_closing(&self) -> bool {
        self.phase != Phase::Open
    }

    #[cfg(test)]
    pub fn phase(&self) -> Phase {
        self.phase
    }

    // ---- waking, counting, memory ----

    /// Trades the wakers to wake for the empty `with`: the caller wakes them once it has let
    /// go of the session.
    pub fn swap_wakers(&mut self, with: &mut Vec<Waker>) {
        self.in_flight.take_wakers(&mut self.to_wake);
        std::mem::swap(&mut self.to_wake, with);
    }

    /// Whether wakers wait to be woken.
    pub fn has_wakers(&self) -> bool {
        !self.to_wake.is_empty() || self.in_flight.has_wakers()
    }

    pub fn stats(&self) -> Stats {
        Stats {
            received_bytes: self.serving.received(),
            unsent_bytes: self.unsent,
            ..self.stats
        }
    }

    /// Something happened: the quiet spell, if any, is over.
    #[inline]
    fn active(&mut self) {
        self.quiet_since = None;
        self.released = false;
    }

    /// Whether the driver's side is `idle` (nothing read, nothing to write, no handler
    /// running) at `now`, holding `driver_held` bytes: `true` when the whole connection has
    /// been quiet for [`IDLE_RELEASE`] and should give its memory back, which it then does,
    /// once per quiet spell. Anything but quiet ends the spell, and its deadline with it. A
    /// quiet connection that holds no more than [`LIGHT`] bytes in all keeps them, with no
    /// deadline: it is under the idle budget as it is, and a timer armed at every pause
    /// would cost each wait of the runtime a timed wait.
    pub fn quiet(&mut self, now: Instant, idle: bool, driver_held: usize) -> bool {
        if !idle || !self.is_quiet() {
            self.active();
            return false;
        }
        if self.released {
            return false;
        }
        if driver_held + self.held() <= LIGHT {
            self.quiet_since = None;
            return false;
        }
        let since = *self.quiet_since.get_or_insert(now);
        if now.saturating_duration_since(since) < IDLE_RELEASE {
            return false;
        }
        self.release_idle();
        true
    }

    /// Nothing is in flight either way, and nothing waits to be written.
    pub fn is_quiet(&self) -> bool {
        self.phase == Phase::Open
            && self.in_flight.live() == 0
            && self.serving.is_idle()
            && self.unsent == 0
            && self.waiters.is_empty()
            && !self.blocked
    }

    /// About how many bytes of heap the session holds beyond itself: its buffers' and
    /// tables' capacities.
    pub fn held(&self) -> usize {
        self.outbound.capacity()
            + self.in_flight.held()
            + self.serving.held()
            + self.requests.capacity() * size_of::<(Job, Request)>()
            + self.answered_in_read.capacity() * size_of::<Job>()
            + self.waiters.capacity() * size_of::<Waiter>()
            + self.to_wake.capacity() * size_of::<Waker>()
    }

    /// Gives back the memory an idle connection does not need.
    pub fn release_idle(&mut self) {
        self.released = true;
        if self.outbound.is_empty() {
            self.outbound = BytesMut::new();
        }
        self.in_flight.release_idle();
        self.serving.release_idle();
        if self.requests.is_empty() {
            self.requests = VecDeque::new();
        }
        if self.to_wake.is_empty() {
            self.to_wake = Vec::new();
        }
        if self.waiters.is_empty() {
            self.waiters = VecDeque::new();
        }
    }
}

/// Appends to `out` the frame that answers `job` with `reply`, as this connection answers:
/// the handler's reply, or cs's failure text when `reply` is `None` (the handler failed: an
/// error or a panic, traced by the caller) or cannot be sent (flags that do not fit, over
/// `max_packet`).
#[inline(always)]
pub(crate) fn encode_reply(config: &Config, job: Job, reply: Option<Reply>, out: &mut BytesMut) {
    let (channel, tag) = (job.channel, job.tag);
    if let Some(r) = reply {
        match Packet::response(channel, tag, r.ok, r.flags, r.payload) {
            Ok(packet) => {
                let body = packet.body_len();
                if body <= config.max_packet {
                    packet.encode_to(body, out);
                    trace!(%packet, "out");
                    return;
                }
                warn!(%packet, max = config.max_packet, "handler reply over max_packet");
            }
            Err(e) => warn!(channel, tag, error = %e, "handler reply cannot be sent"),
        }
    }
    let packet = Packet::failure(channel, tag, config.handler_failure.clone());
    packet.encode_to(packet.body_len(), out);
    trace!(%packet, "out");
}

/// What a request still waiting sees of how the connection ended.
pub(crate) fn ended(outcome: &Result<(), Error>) -> Ended {
    match outcome {
        Ok(()) => Ended::Local,
        Err(Error::Ended(why)) => why.clone(),
        Err(Error::Aborted) => Ended::Aborted,
        Err(e) => Ended::Failed(Arc::new(e.clone())),
    }
}

#[cfg(test)]
#[path = "session_tests.rs"]
mod tests;
