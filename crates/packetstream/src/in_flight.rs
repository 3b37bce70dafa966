//! This side's requests awaiting their responses: the tags, the table that finds a request by
//! its tag, their deadlines, and the pipelines' queues of answered tags. No I/O, no clock.
//!
//! Every way of sending ([`request`](crate::PacketConnection::request),
//! [`submit`](crate::PacketConnection::submit), a [`Pipeline`](crate::Pipeline)) puts its
//! request here, so they share one bound, one timeout and one rule for strays: a response
//! is delivered only to a request that waits for it, once; anything else is an orphan and
//! never displaces a request's outcome.
//!
//! The table is a power-of-two array of slots, at most half full, that a tag finds by one
//! multiply. Tags come from one counter for the whole connection, starting at 2 (cs reserves
//! 0 and 1 on channel 0 for EOF and ERQ), and only go up: a tag whose slot is taken is skipped,
//! never issued. The table is made on the first request, grows as requests pile up, and is
//! given back when none is left, so an idle connection holds none of it.

use std::collections::VecDeque;
use std::task::Waker;
use std::time::{Duration, Instant};

use crate::{Ended, Error, Response};

/// How a request of this side ends: its response, or why it got none.
pub(crate) type Outcome = Result<Response, Error>;

/// Spreads consecutive tags over the table: multiplying by an odd constant permutes the
/// residues modulo a power of two, so any `len` consecutive tags land in `len` different
/// slots.
const SCATTER: u64 = 0x9e37_79b9_7f4a_7c15;
/// The first table made.
const MIN_SLOTS: usize = 8;
/// The first tag issued.
pub(crate) const FIRST_TAG: u64 = 2;

/// Who takes a request's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Owner {
    /// A future of its own ([`Call`](crate::Call), or `request()`'s).
    Call,
    /// A pipeline, by its number.
    Pipe(u32),
}

enum Wait {
    /// No outcome yet; the waker of the task that last asked for it.
    Waiting(Option<Waker>),
    /// The outcome, until its owner takes it.
    Done(Outcome),
}

struct Entry {
    tag: u64,
    channel: u64,
    owner: Owner,
    wait: Wait,
}

/// A pipeline's tags, answered and not yet taken, in the order their outcomes came.
#[derive(Default)]
struct Pipe {
    answered: VecDeque<u64>,
    waker: Option<Waker>,
    /// Its requests in the table, answered or not.
    in_flight: usize,
}

/// This side's requests in flight. See the module docs.
pub(crate) struct InFlight {
    slots: Box<[Option<Entry>]>,
    /// Entries in the table: waiting, or answered and not yet taken.
    live: usize,
    max: usize,
    next_tag: u64,
    timeout: Option<Duration>,
    /// Tags sent since the last [`stamp`](InFlight::stamp): their timeout starts then.
    unstamped: Vec<u64>,
    /// When each request times out, in the order they were sent (all have the same timeout,
    /// so the front is the next due). Entries of requests already over are skipped as they
    /// reach the front, and swept when they outnumber the live ones.
    deadlines: VecDeque<(Instant, u64)>,
    pipes: Vec<Option<Pipe>>,
}

impl InFlight {
    pub fn new(max: usize, timeout: Option<Duration>) -> InFlight {
        InFlight {
            slots: Box::default(),
            live: 0,
            max,
            next_tag: FIRST_TAG,
            timeout,
            unstamped: Vec::new(),
            deadlines: VecDeque::new(),
            pipes: Vec::new(),
        }
    }

    /// Requests in the table, answered or not.
    pub fn live(&self) -> usize {
        self.live
    }

    /// Whether one more request may go.
    pub fn has_room(&self) -> bool {
        self.live < self.max
    }

    #[inline]
    fn index(&self, tag: u64) -> usize {
        (tag.wrapping_mul(SCATTER) & (self.slots.len() as u64 - 1)) as usize
    }

    #[inline]
    fn entry(&mut self, tag: u64) -> Option<&mut Entry> {
        if self.slots.is_empty() {
            return None;
        }
        let i = self.index(tag);
        self.slots[i].as_mut().filter(|e| e.tag == tag)
    }

    /// Removes the entry of `tag`, whatever its state.
    fn remove(&mut self, tag: u64) -> Option<Entry> {
        if self.slots.is_empty() {
            return None;
        }
        let i = self.index(tag);
        if self.slots[i].as_ref().is_none_or(|e| e.tag != tag) {
            return None;
        }
        let entry = self.slots[i].take()?;
        self.live -= 1;
        if let Owner::Pipe(id) = entry.owner {
            if let Some(pipe) = self.pipe(id) {
                pipe.in_flight -= 1;
            }
        }
        Some(entry)
    }

    /// Makes room for one more entry: the table stays at most half full. Growing keeps every
    /// entry apart: two tags in different slots differ in their low bits after the multiply,
    /// and still do with one more bit.
    fn grow(&mut self) {
        if (self.live + 1) * 2 <= self.slots.len() {
            return;
        }
        let len = (self.slots.len() * 2).max(MIN_SLOTS);
        let old = std::mem::replace(
            &mut self.slots,
            std::iter::repeat_with(|| None).take(len).collect(),
        );
        for entry in old.into_vec().into_iter().flatten() {
            let i = self.index(entry.tag);
            self.slots[i] = Some(entry);
        }
    }

    /// Issues a tag for a request on `channel` and puts it in the table. The caller checked
    /// [`has_room`](Self::has_room). Fails only when every tag below `u64::MAX` was issued.
    pub fn issue(&mut self, channel: u64, owner: Owner) -> Result<u64, Error> {
        self.grow();
        loop {
            let tag = self.next_tag;
            if tag == u64::MAX {
                return Err(Error::TagsExhausted);
            }
            self.next_tag += 1;
            let i = self.index(tag);
            if self.slots[i].is_some() {
                // An older request still holds the slot: this tag is never issued.
                continue;
            }
            self.slots[i] = Some(Entry {
                tag,
                channel,
                owner,
                wait: Wait::Waiting(None),
            });
            self.live += 1;
            if let Owner::Pipe(id) = owner {
                if let Some(pipe) = self.pipe(id) {
                    pipe.in_flight += 1;
                }
            }
            if self.timeout.is_some() {
                self.unstamped.push(tag);
            }
            return Ok(tag);
        }
    }

    /// A request's owner asks for its outcome: taken (and the request gone from the table)
    /// if it has come; otherwise `waker` is kept, to be woken when it comes.
    pub fn poll_call(&mut self, tag: u64, waker: &Waker) -> Option<Outcome> {
        let Some(entry) = self.entry(tag) else {
            // Never: only the owner removes its entry.
            return Some(Err(Error::Closed(Ended::Local)));
        };
        match &mut entry.wait {
            Wait::Waiting(Some(w)) if w.will_wake(waker) => None,
            Wait::Waiting(w) => {
                *w = Some(waker.clone());
                None
            }
            Wait::Done(_) => match self.remove(tag).map(|e| e.wait) {
                Some(Wait::Done(outcome)) => Some(outcome),
                _ => None,
            },
        }
    }

    /// The owner gives up on `tag` (a dropped future or pipeline): its place is free, and a
    /// response that still comes is an orphan. Whether it was there.
    pub fn cancel(&mut self, tag: u64) -> bool {
        self.remove(tag).is_some()
    }

    /// Ends the request `tag` with `outcome` and wakes its owner. `Err` gives the outcome
    /// back when no request with that tag on that channel waits for one.
    fn settle(
        &mut self,
        channel: u64,
        tag: u64,
        outcome: Outcome,
        to_wake: &mut Vec<Waker>,
    ) -> Result<(), Outcome> {
        let Some(entry) = self.entry(tag).filter(|e| e.channel == channel) else {
            return Err(outcome);
        };
        let Wait::Waiting(waker) = &mut entry.wait else {
            // Answered already: a duplicate, or a response after the timeout.
            return Err(outcome);
        };
        let waker = waker.take();
        entry.wait = Wait::Done(outcome);
        let owner = entry.owner;
        self.woken(owner, tag, waker, to_wake);
        Ok(())
    }

    fn woken(&mut self, owner: Owner, tag: u64, waker: Option<Waker>, to_wake: &mut Vec<Waker>) {
        match owner {
            Owner::Call => to_wake.extend(waker),
            Owner::Pipe(id) => {
                if let Some(pipe) = self.pipe(id) {
                    pipe.answered.push_back(tag);
                    to_wake.extend(pipe.waker.take());
                }
            }
        }
    }

    /// A response from the peer: delivered to the request that waits for it, or given back
    /// as an orphan.
    pub fn answer(
        &mut self,
        channel: u64,
        tag: u64,
        response: Response,
        to_wake: &mut Vec<Waker>,
    ) -> Result<(), Response> {
        self.settle(channel, tag, Ok(response), to_wake)
            .map_err(|back| back.unwrap_or_else(|_| unreachable_response()))
    }

    /// Every request still waiting ends with `error`; returns how many there were.
    pub fn fail_all(&mut self, error: &Error, to_wake: &mut Vec<Waker>) -> usize {
        let mut failed = Vec::new();
        for entry in self.slots.iter_mut().flatten() {
            if let Wait::Waiting(waker) = &mut entry.wait {
                let waker = waker.take();
                entry.wait = Wait::Done(Err(error.clone()));
                failed.push((entry.owner, entry.tag, waker));
            }
        }
        let n = failed.len();
        for (owner, tag, waker) in failed {
            self.woken(owner, tag, waker, to_wake);
        }
        self.unstamped.clear();
        self.deadlines.clear();
        n
    }

    /// The requests sent since the last stamp were written at `now`: their timeouts start.
    pub fn stamp(&mut self, now: Instant) {
        let Some(timeout) = self.timeout else {
            return;
        };
        // A timeout too far off to be an `Instant` never comes.
        let Some(due) = now.checked_add(timeout) else {
            self.unstamped.clear();
            return;
        };
        for tag in self.unstamped.drain(..) {
            self.deadlines.push_back((due, tag));
        }
        if self.deadlines.len() > 2 * self.live + 32 {
            let slots = &self.slots;
            let mask = slots.len().wrapping_sub(1) as u64;
            self.deadlines.retain(|&(_, tag)| {
                !slots.is_empty()
                    && slots[(tag.wrapping_mul(SCATTER) & mask) as usize]
                        .as_ref()
                        .is_some_and(|e| e.tag == tag && matches!(e.wait, Wait::Waiting(_)))
            });
        }
    }

    /// Whether `tag` still waits for its response.
    fn waiting(&mut self, tag: u64) -> bool {
        self.entry(tag)
            .is_some_and(|e| matches!(e.wait, Wait::Waiting(_)))
    }

    /// When the next request times out.
    pub fn next_deadline(&mut self) -> Option<Instant> {
        while let Some(&(due, tag)) = self.deadlines.front() {
            if self.waiting(tag) {
                return Some(due);
            }
            self.deadlines.pop_front();
        }
        None
    }

    /// Ends every request whose timeout is due by `now` with [`Error::Timeout`]; returns how
    /// many.
    pub fn expire(&mut self, now: Instant, to_wake: &mut Vec<Waker>) -> usize {
        let Some(timeout) = self.timeout else {
            return 0;
        };
        let mut expired = 0;
        while let Some(&(due, tag)) = self.deadlines.front() {
            if due > now {
                break;
            }
            self.deadlines.pop_front();
            let channel = match self.entry(tag) {
                Some(e) if matches!(e.wait, Wait::Waiting(_)) => e.channel,
                _ => continue,
            };
            if self
                .settle(channel, tag, Err(Error::Timeout(timeout)), to_wake)
                .is_ok()
            {
                expired += 1;
            }
        }
        expired
    }

    /// Gives the table back when no request is in it.
    pub fn release_idle(&mut self) {
        if self.live == 0 {
            self.slots = Box::default();
            self.unstamped = Vec::new();
            self.deadlines = VecDeque::new();
        }
    }

    fn pipe(&mut self, id: u32) -> Option<&mut Pipe> {
        self.pipes.get_mut(id as usize).and_then(Option::as_mut)
    }

    /// A new pipeline.
    pub fn open_pipe(&mut self) -> u32 {
        let free = self.pipes.iter().position(Option::is_none);
        let id = free.unwrap_or(self.pipes.len());
        if id == self.pipes.len() {
            self.pipes.push(None);
        }
        self.pipes[id] = Some(Pipe::default());
        id as u32
    }

    /// The pipeline is gone: its requests are cancelled.
    pub fn close_pipe(&mut self, id: u32) {
        let mine: Vec<u64> = self
            .slots
            .iter()
            .flatten()
            .filter(|e| e.owner == Owner::Pipe(id))
            .map(|e| e.tag)
            .collect();
        for tag in mine {
            self.remove(tag);
        }
        if let Some(slot) = self.pipes.get_mut(id as usize) {
            *slot = None;
        }
        while self.pipes.last().is_some_and(Option::is_none) {
            self.pipes.pop();
        }
    }

    /// Moves the pipeline's outcomes that came to the end of `into`, in the order they came;
    /// `waker` is kept when none came.
    pub fn take_pipe(&mut self, id: u32, into: &mut VecDeque<(u64, Outcome)>, waker: &Waker) {
        let Some(pipe) = self.pipe(id) else {
            return;
        };
        let answered = std::mem::take(&mut pipe.answered);
        if answered.is_empty() {
            if !pipe.waker.as_ref().is_some_and(|w| w.will_wake(waker)) {
                pipe.waker = Some(waker.clone());
            }
            return;
        }
        for &tag in &answered {
            if let Some(Wait::Done(outcome)) = self.remove(tag).map(|e| e.wait) {
                into.push_back((tag, outcome));
            }
        }
        // The queue's memory is kept for the next batch.
        if let Some(pipe) = self.pipe(id) {
            let mut answered = answered;
            answered.clear();
            pipe.answered = answered;
        }
    }

    /// How many of the pipeline's requests are in the table, answered or not.
    pub fn pipe_in_flight(&self, id: u32) -> usize {
        self.pipes
            .get(id as usize)
            .and_then(Option::as_ref)
            .map_or(0, |p| p.in_flight)
    }
}

/// `settle` gives back what it was given, which for `answer` is always `Ok`.
#[cold]
fn unreachable_response() -> Response {
    Response {
        ok: false,
        flags: 0,
        payload: bytes::Bytes::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::Wake;

    struct Count(AtomicUsize);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn waker() -> (Arc<Count>, Waker) {
        let count = Arc::new(Count(AtomicUsize::new(0)));
        (Arc::clone(&count), Waker::from(count))
    }

    fn response(flags: u64) -> Response {
        Response {
            ok: true,
            flags,
            payload: bytes::Bytes::new(),
        }
    }

    fn wake_all(to_wake: &mut Vec<Waker>) {
        to_wake.drain(..).for_each(Waker::wake);
    }

    #[test]
    fn tags_start_at_two_only_go_up_and_skip_slots_still_held() {
        let mut t = InFlight::new(4, None);
        let first: Vec<u64> = (0..4).map(|_| t.issue(0, Owner::Call).unwrap()).collect();
        assert_eq!(first, [2, 3, 4, 5]);
        assert!(!t.has_room());
        // Tag 2 stays; the others end. Every later tag is new, and none lands on tag 2's slot.
        let (_, w) = waker();
        let mut to_wake = Vec::new();
        for tag in [3, 4, 5] {
            t.answer(0, tag, response(tag), &mut to_wake).unwrap();
            assert_eq!(t.poll_call(tag, &w).unwrap().unwrap().flags, tag);
        }
        let mut last = 5;
        for _ in 0..100 {
            let tag = t.issue(0, Owner::Call).unwrap();
            assert!(tag > last);
            last = tag;
            assert!(t.cancel(tag));
        }
        assert!(t.poll_call(2, &w).is_none(), "tag 2 still waits");
        assert_eq!(t.live(), 1);
    }

    #[test]
    fn a_response_is_delivered_once_and_strays_never_displace_it() {
        let mut t = InFlight::new(8, None);
        let (count, w) = waker();
        let tag = t.issue(0, Owner::Call).unwrap();
        assert!(t.poll_call(tag, &w).is_none());
        let mut to_wake = Vec::new();
        // Another channel, an unknown tag: strays.
        assert!(t.answer(5, tag, response(1), &mut to_wake).is_err());
        assert!(t.answer(0, 99, response(1), &mut to_wake).is_err());
        assert!(to_wake.is_empty());
        t.answer(0, tag, response(7), &mut to_wake).unwrap();
        // A duplicate before the owner took the first: refused, the first kept.
        assert!(t.answer(0, tag, response(8), &mut to_wake).is_err());
        wake_all(&mut to_wake);
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
        assert_eq!(t.poll_call(tag, &w).unwrap().unwrap().flags, 7);
        // After it was taken: an orphan.
        assert!(t.answer(0, tag, response(9), &mut to_wake).is_err());
        assert_eq!(t.live(), 0);
    }

    #[test]
    fn a_timeout_ends_the_request_frees_its_place_and_its_late_reply_is_an_orphan() {
        let mut t = InFlight::new(1, Some(Duration::from_secs(2)));
        let start = Instant::now();
        let (_, w) = waker();
        let tag = t.issue(0, Owner::Call).unwrap();
        assert_eq!(t.next_deadline(), None, "not sent yet");
        t.stamp(start);
        assert_eq!(t.next_deadline(), Some(start + Duration::from_secs(2)));
        let mut to_wake = Vec::new();
        assert_eq!(t.expire(start + Duration::from_secs(1), &mut to_wake), 0);
        assert_eq!(t.expire(start + Duration::from_secs(2), &mut to_wake), 1);
        assert!(matches!(t.poll_call(tag, &w), Some(Err(Error::Timeout(_)))));
        assert!(t.has_room());
        assert!(t.answer(0, tag, response(1), &mut to_wake).is_err());
        assert_eq!(t.next_deadline(), None);
    }

    #[test]
    fn deadlines_of_requests_over_are_swept_so_they_stay_bounded() {
        let mut t = InFlight::new(4, Some(Duration::from_secs(60)));
        let now = Instant::now();
        let (_, w) = waker();
        let stuck = t.issue(0, Owner::Call).unwrap();
        let mut to_wake = Vec::new();
        for _ in 0..10_000 {
            let tag = t.issue(0, Owner::Call).unwrap();
            t.stamp(now);
            t.answer(0, tag, response(0), &mut to_wake).unwrap();
            t.poll_call(tag, &w).unwrap().unwrap();
        }
        assert!(
            t.deadlines.len() <= 2 * t.live() + 33,
            "{}",
            t.deadlines.len()
        );
        assert_eq!(t.next_deadline(), Some(now + Duration::from_secs(60)));
        assert!(t.cancel(stuck));
    }

    #[test]
    fn fail_all_reaches_every_waiting_request_and_pipeline() {
        let mut t = InFlight::new(8, None);
        let (count, w) = waker();
        let call = t.issue(0, Owner::Call).unwrap();
        t.poll_call(call, &w);
        let pipe = t.open_pipe();
        let piped = t.issue(0, Owner::Pipe(pipe)).unwrap();
        let mut got = VecDeque::new();
        t.take_pipe(pipe, &mut got, &w);
        let mut to_wake = Vec::new();
        let error = Error::Closed(Ended::PeerEof);
        assert_eq!(t.fail_all(&error, &mut to_wake), 2);
        wake_all(&mut to_wake);
        assert_eq!(count.0.load(Ordering::SeqCst), 2);
        assert!(matches!(t.poll_call(call, &w), Some(Err(Error::Closed(_)))));
        t.take_pipe(pipe, &mut got, &w);
        assert!(matches!(got.pop_front(), Some((tag, Err(_))) if tag == piped));
        assert_eq!(t.live(), 0);
    }

    #[test]
    fn a_pipeline_takes_its_outcomes_in_the_order_they_came() {
        let mut t = InFlight::new(8, None);
        let (_, w) = waker();
        let pipe = t.open_pipe();
        let tags: Vec<u64> = (0..3)
            .map(|_| t.issue(0, Owner::Pipe(pipe)).unwrap())
            .collect();
        let other = t.issue(0, Owner::Call).unwrap();
        assert_eq!(t.pipe_in_flight(pipe), 3);
        let mut to_wake = Vec::new();
        for &tag in [tags[2], tags[0]].iter() {
            t.answer(0, tag, response(tag), &mut to_wake).unwrap();
        }
        t.answer(0, tags[2], response(0), &mut to_wake).unwrap_err();
        let mut got = VecDeque::new();
        t.take_pipe(pipe, &mut got, &w);
        let order: Vec<u64> = got.iter().map(|(tag, _)| *tag).collect();
        assert_eq!(order, [tags[2], tags[0]]);
        assert_eq!(t.pipe_in_flight(pipe), 1);
        // Closing the pipeline cancels its last request; the other owner's stays.
        t.close_pipe(pipe);
        assert_eq!(t.live(), 1);
        assert!(t.answer(0, tags[1], response(0), &mut to_wake).is_err());
        assert!(t.cancel(other));
        t.release_idle();
        assert!(t.slots.is_empty());
    }

    #[test]
    fn tags_never_wrap() {
        let mut t = InFlight::new(2, None);
        t.next_tag = u64::MAX - 1;
        assert_eq!(t.issue(0, Owner::Call).unwrap(), u64::MAX - 1);
        assert!(matches!(t.issue(0, Owner::Call), Err(Error::TagsExhausted)));
    }
}
