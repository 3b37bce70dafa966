//! This side's requests awaiting their responses: the tags, the table that finds a request by
//! its tag, their deadlines, and the pipelines' queues of outcomes. No I/O, no clock.
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
    /// Set aside for a pipeline's next request, not sent yet: no response is taken for it,
    /// and no timeout or failure reaches it until it is [committed](InFlight::commit).
    Reserved,
    /// No outcome yet; the waker of the task that last asked for it.
    Waiting(Waiter),
    /// The outcome of a call, until its future takes it. (A pipeline's outcome goes to the
    /// pipeline's queue at once, and its entry leaves the table.)
    Done(Outcome),
}

/// The waker of a request's task.
enum Waiter {
    /// Not asked for yet.
    None,
    /// In the cache of wakers, at this index.
    Cached(u32),
    /// Its own, when the cache is full of other tasks' wakers.
    Own(Waker),
}

/// How many tasks' wakers the cache keeps.
const CACHED_WAKERS: usize = 16;

/// A task's waker, kept once however many of its requests wait.
struct Cached {
    waker: Waker,
    /// How many waiting requests refer to it.
    users: u32,
    /// An outcome came for one of them: wake the task.
    due: bool,
}

/// The wakers of the tasks waiting for requests, each kept once: a request refers to its
/// task's waker by index, so that waiting costs no clone of it, and the outcomes of one read
/// wake each task once, however many of its requests they end.
#[derive(Default)]
struct Wakers {
    cache: Vec<Cached>,
    /// Where the last task was found: one task usually makes many requests in a row.
    last: usize,
    /// Some cached waker is due.
    due: bool,
}

impl Wakers {
    /// Keeps `waker` for one more request.
    #[inline]
    fn register(&mut self, waker: &Waker) -> Waiter {
        let found = match self.cache.get(self.last) {
            Some(c) if c.waker.will_wake(waker) => Some(self.last),
            _ => self.cache.iter().position(|c| c.waker.will_wake(waker)),
        };
        let i = match found {
            Some(i) => i,
            None => match self.cache.iter().position(|c| c.users == 0 && !c.due) {
                Some(i) => {
                    self.cache[i].waker = waker.clone();
                    i
                }
                None if self.cache.len() < CACHED_WAKERS => {
                    self.cache.push(Cached {
                        waker: waker.clone(),
                        users: 0,
                        due: false,
                    });
                    self.cache.len() - 1
                }
                None => return Waiter::Own(waker.clone()),
            },
        };
        self.last = i;
        self.cache[i].users += 1;
        Waiter::Cached(i as u32)
    }

    /// Whether `waiter` wakes the same task as `waker`.
    #[inline]
    fn same(&self, waiter: &Waiter, waker: &Waker) -> bool {
        match waiter {
            Waiter::None => false,
            Waiter::Cached(i) => self.cache[*i as usize].waker.will_wake(waker),
            Waiter::Own(w) => w.will_wake(waker),
        }
    }

    /// One request no longer waits; with `wake`, its task is woken (once, with the others).
    #[inline]
    fn release(&mut self, waiter: Waiter, wake: bool, to_wake: &mut Vec<Waker>) {
        match waiter {
            Waiter::None => {}
            Waiter::Cached(i) => {
                let cached = &mut self.cache[i as usize];
                cached.users -= 1;
                if wake {
                    cached.due = true;
                    self.due = true;
                }
            }
            Waiter::Own(w) if wake => to_wake.push(w),
            Waiter::Own(_) => {}
        }
    }

    /// Adds the tasks due to `to_wake`.
    fn take_due(&mut self, to_wake: &mut Vec<Waker>) {
        if !std::mem::take(&mut self.due) {
            return;
        }
        for cached in &mut self.cache {
            if std::mem::take(&mut cached.due) {
                to_wake.push(cached.waker.clone());
            }
        }
    }
}

struct Entry {
    tag: u64,
    channel: u64,
    owner: Owner,
    wait: Wait,
}

/// A pipeline's outcomes, not yet taken, with their tags, in the order they came. Their
/// entries have left the table, but they still count in [`InFlight::live`] (and in the
/// bound) until the pipeline takes them.
#[derive(Default)]
struct Pipe {
    answered: VecDeque<(u64, Outcome)>,
    waker: Option<Waker>,
    /// Its requests waiting in the table, and its outcomes not yet taken.
    in_flight: usize,
}

/// This side's requests in flight. See the module docs.
pub(crate) struct InFlight {
    slots: Box<[Option<Entry>]>,
    wakers: Wakers,
    /// Requests not over for their owners: entries in the table (waiting, or a call's
    /// outcome not yet taken) and the outcomes in pipelines' queues.
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
            wakers: Wakers::default(),
            live: 0,
            max,
            next_tag: FIRST_TAG,
            timeout,
            unstamped: Vec::new(),
            deadlines: VecDeque::new(),
            pipes: Vec::new(),
        }
    }

    /// Requests whose outcomes have not been taken: waiting, or answered.
    pub fn live(&self) -> usize {
        self.live
    }

    /// Whether one more request may go.
    #[inline]
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
        let mut entry = self.slots[i].take()?;
        self.live -= 1;
        if let Wait::Waiting(waiter) = &mut entry.wait {
            let waiter = std::mem::replace(waiter, Waiter::None);
            self.wakers.release(waiter, false, &mut Vec::new());
        }
        if let (Owner::Pipe(id), false) = (entry.owner, matches!(entry.wait, Wait::Reserved)) {
            if let Some(pipe) = self.pipe(id) {
                pipe.in_flight -= 1;
            }
        }
        Some(entry)
    }

    /// Makes room for one more entry: the table stays at most half full. Growing keeps every
    /// entry apart: two tags in different slots differ in their low bits after the multiply,
    /// and still do with one more bit.
    #[inline]
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
    #[inline]
    pub fn issue(&mut self, channel: u64, owner: Owner) -> Result<u64, Error> {
        let tag = self.insert(channel, owner, Wait::Waiting(Waiter::None))?;
        self.sent(owner, tag);
        Ok(tag)
    }

    /// Sets aside up to `n` tags on channel 0 for pipeline `id`'s next requests, as room
    /// allows, at the end of `into`; they hold their places in the bound until committed or
    /// cancelled. Returns how many.
    pub fn reserve(&mut self, id: u32, n: usize, into: &mut VecDeque<u64>) -> usize {
        let mut reserved = 0;
        while reserved < n && self.has_room() {
            match self.insert(0, Owner::Pipe(id), Wait::Reserved) {
                Ok(tag) => into.push_back(tag),
                Err(_) => break,
            }
            reserved += 1;
        }
        reserved
    }

    /// A reserved tag's request was sent: it waits for its response from now on.
    #[inline]
    pub fn commit(&mut self, tag: u64) {
        let Some(entry) = self.entry(tag) else {
            return;
        };
        if !matches!(entry.wait, Wait::Reserved) {
            return;
        }
        entry.wait = Wait::Waiting(Waiter::None);
        let owner = entry.owner;
        self.sent(owner, tag);
    }

    /// A reserved tag's request cannot be sent: it ends with `error` at once, as a
    /// request sent would.
    pub fn refuse(&mut self, tag: u64, error: Error, to_wake: &mut Vec<Waker>) {
        self.commit(tag);
        if self.waiting(tag) {
            let i = self.index(tag);
            self.deliver(i, Err(error), to_wake);
        }
    }

    /// Puts a new entry in the table with the next free tag.
    #[inline]
    fn insert(&mut self, channel: u64, owner: Owner, wait: Wait) -> Result<u64, Error> {
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
                wait,
            });
            self.live += 1;
            return Ok(tag);
        }
    }

    /// The request `tag` of `owner` goes out: it counts for its pipeline, and its timeout
    /// starts at the next [`stamp`](Self::stamp).
    #[inline]
    fn sent(&mut self, owner: Owner, tag: u64) {
        if let Owner::Pipe(id) = owner {
            if let Some(pipe) = self.pipe(id) {
                pipe.in_flight += 1;
            }
        }
        if self.timeout.is_some() {
            self.unstamped.push(tag);
        }
    }

    /// A request's owner asks for its outcome: taken (and the request gone from the table)
    /// if it has come; otherwise `waker` is kept, to be woken when it comes.
    #[inline]
    pub fn poll_call(&mut self, tag: u64, waker: &Waker) -> Option<Outcome> {
        let slot = match self.slots.len() {
            0 => None,
            _ => {
                let i = self.index(tag);
                Some(&mut self.slots[i]).filter(|s| s.as_ref().is_some_and(|e| e.tag == tag))
            }
        };
        let Some(slot) = slot else {
            // Never: only the owner removes its entry.
            return Some(Err(Error::Ended(Ended::Local)));
        };
        if let Some(Entry {
            wait: Wait::Waiting(waiter),
            ..
        }) = slot
        {
            if !self.wakers.same(waiter, waker) {
                let old = std::mem::replace(waiter, self.wakers.register(waker));
                self.wakers.release(old, false, &mut Vec::new());
            }
            return None;
        }
        // Answered: a call's entry is taken whole (a call has no pipeline to account to).
        let Some(Entry {
            wait: Wait::Done(outcome),
            ..
        }) = slot.take()
        else {
            return None;
        };
        self.live -= 1;
        Some(outcome)
    }

    /// The owner gives up on `tag` (a dropped future or pipeline): its place is free, and a
    /// response that still comes is an orphan. Whether it was there.
    pub fn cancel(&mut self, tag: u64) -> bool {
        self.remove(tag).is_some()
    }

    /// Ends the request `tag` with `outcome` and wakes its owner. `Err` gives the outcome
    /// back when no request with that tag on that channel waits for one.
    #[inline]
    fn settle(
        &mut self,
        channel: u64,
        tag: u64,
        outcome: Outcome,
        to_wake: &mut Vec<Waker>,
    ) -> Result<(), Outcome> {
        if self.slots.is_empty() {
            return Err(outcome);
        }
        let i = self.index(tag);
        match &self.slots[i] {
            Some(e)
                if e.tag == tag && e.channel == channel && matches!(e.wait, Wait::Waiting(_)) => {}
            // Not ours, or answered already: a stray, a duplicate, or a response after the
            // timeout.
            _ => return Err(outcome),
        }
        self.deliver(i, outcome, to_wake);
        Ok(())
    }

    /// Gives `outcome` to the request waiting in slot `i` and wakes its owner: a call's
    /// entry keeps it until its future takes it; a pipeline's entry leaves the table, and the
    /// outcome joins the pipeline's queue.
    #[inline]
    fn deliver(&mut self, i: usize, outcome: Outcome, to_wake: &mut Vec<Waker>) {
        let Some(entry) = self.slots[i].as_mut() else {
            return;
        };
        let Wait::Waiting(waiter) = &mut entry.wait else {
            return;
        };
        let waiter = std::mem::replace(waiter, Waiter::None);
        match entry.owner {
            Owner::Call => {
                entry.wait = Wait::Done(outcome);
                self.wakers.release(waiter, true, to_wake);
            }
            Owner::Pipe(id) => {
                let tag = entry.tag;
                self.slots[i] = None;
                self.wakers.release(waiter, false, to_wake);
                match self.pipe(id) {
                    Some(pipe) => {
                        pipe.answered.push_back((tag, outcome));
                        to_wake.extend(pipe.waker.take());
                    }
                    // Never: a closed pipeline's requests leave the table with it.
                    None => self.live -= 1,
                }
            }
        }
    }

    /// A response from the peer: delivered to the request that waits for it, or given back
    /// as an orphan.
    #[inline]
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
        let mut n = 0;
        for i in 0..self.slots.len() {
            if let Some(Entry {
                wait: Wait::Waiting(_),
                ..
            }) = self.slots[i]
            {
                self.deliver(i, Err(error.clone()), to_wake);
                n += 1;
            }
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

    /// Adds the tasks to wake for the outcomes that came to `to_wake`.
    pub fn take_wakers(&mut self, to_wake: &mut Vec<Waker>) {
        self.wakers.take_due(to_wake);
    }

    /// Whether tasks wait to be woken.
    pub fn has_wakers(&self) -> bool {
        self.wakers.due
    }

    /// About how many bytes of heap the table, the deadlines, the wakers and the pipelines'
    /// queues hold.
    pub fn held(&self) -> usize {
        self.slots.len() * size_of::<Option<Entry>>()
            + self.deadlines.capacity() * size_of::<(Instant, u64)>()
            + self.unstamped.capacity() * size_of::<u64>()
            + self.wakers.cache.capacity() * size_of::<Cached>()
            + self.pipes.capacity() * size_of::<Option<Pipe>>()
            + self
                .pipes
                .iter()
                .flatten()
                .map(|p| p.answered.capacity() * size_of::<(u64, Outcome)>())
                .sum::<usize>()
    }

    /// Gives the table and the wakers kept back when no request is in it.
    pub fn release_idle(&mut self) {
        if self.live == 0 && !self.wakers.due {
            self.wakers = Wakers::default();
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

    /// The pipeline is gone: its requests are cancelled, and its outcomes not taken dropped.
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
        if let Some(pipe) = self.pipes.get_mut(id as usize).and_then(Option::take) {
            self.live -= pipe.answered.len();
        }
        while self.pipes.last().is_some_and(Option::is_none) {
            self.pipes.pop();
        }
    }

    /// Moves the pipeline's outcomes that came to the end of `into`, in the order they came;
    /// `waker` is kept when none came. Into an empty `into`, the queues trade places: a batch
    /// is taken in one step, and both keep their memory for the next.
    pub fn take_pipe(&mut self, id: u32, into: &mut VecDeque<(u64, Outcome)>, waker: &Waker) {
        let Some(pipe) = self.pipe(id) else {
            return;
        };
        let n = pipe.answered.len();
        if n == 0 {
            if !pipe.waker.as_ref().is_some_and(|w| w.will_wake(waker)) {
                pipe.waker = Some(waker.clone());
            }
            return;
        }
        pipe.in_flight -= n;
        if into.is_empty() {
            std::mem::swap(into, &mut pipe.answered);
        } else {
            into.append(&mut pipe.answered);
        }
        self.live -= n;
    }

    /// How many of the pipeline's requests are waiting, or answered and not taken (its
    /// reserved tags are not among them).
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
pub(crate) mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::Wake;

    /// A waker that counts its wakes, for the tests of this module and the session's.
    pub(crate) struct Count(AtomicUsize);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    impl Count {
        /// How many times it was woken.
        pub(crate) fn woken(&self) -> usize {
            self.0.load(Ordering::SeqCst)
        }
    }

    pub(crate) fn waker() -> (Arc<Count>, Waker) {
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

    /// Wakes what the table has to wake, as the session does once it lets go of it.
    fn wake_all(t: &mut InFlight, to_wake: &mut Vec<Waker>) {
        t.take_wakers(to_wake);
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
        wake_all(&mut t, &mut to_wake);
        assert_eq!(count.woken(), 1);
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
        let error = Error::Ended(Ended::PeerEof);
        assert_eq!(t.fail_all(&error, &mut to_wake), 2);
        wake_all(&mut t, &mut to_wake);
        assert_eq!(count.woken(), 2);
        assert!(matches!(t.poll_call(call, &w), Some(Err(Error::Ended(_)))));
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
        // Answered and not taken: still in flight, and still counted in the bound.
        assert_eq!((t.pipe_in_flight(pipe), t.live()), (3, 4));
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
    fn a_pipeline_closed_with_outcomes_not_taken_gives_their_places_back() {
        let mut t = InFlight::new(2, None);
        let pipe = t.open_pipe();
        let tags: Vec<u64> = (0..2)
            .map(|_| t.issue(0, Owner::Pipe(pipe)).unwrap())
            .collect();
        let mut to_wake = Vec::new();
        t.answer(0, tags[0], response(1), &mut to_wake).unwrap();
        assert!(!t.has_room(), "an outcome not taken holds its place");
        t.close_pipe(pipe);
        assert_eq!(t.live(), 0);
        assert!(t.has_room());
        assert!(t.answer(0, tags[1], response(2), &mut to_wake).is_err());
    }

    #[test]
    fn one_task_waiting_for_many_requests_is_woken_once_per_batch() {
        let mut t = InFlight::new(64, None);
        let (count, w) = waker();
        let tags: Vec<u64> = (0..10).map(|_| t.issue(0, Owner::Call).unwrap()).collect();
        for &tag in &tags {
            assert!(t.poll_call(tag, &w).is_none());
        }
        assert_eq!(t.wakers.cache.len(), 1, "one task, one waker kept");
        let mut to_wake = Vec::new();
        for &tag in &tags[..6] {
            t.answer(0, tag, response(tag), &mut to_wake).unwrap();
        }
        wake_all(&mut t, &mut to_wake);
        assert_eq!(count.woken(), 1);
        for &tag in &tags[6..] {
            t.answer(0, tag, response(tag), &mut to_wake).unwrap();
        }
        wake_all(&mut t, &mut to_wake);
        assert_eq!(count.woken(), 2);
        for &tag in &tags {
            assert_eq!(t.poll_call(tag, &w).unwrap().unwrap().flags, tag);
        }
        assert_eq!(t.wakers.cache[0].users, 0);
    }

    #[test]
    fn beyond_the_cache_every_task_keeps_its_own_waker_and_none_is_lost() {
        let mut t = InFlight::new(64, None);
        let tasks: Vec<_> = (0..CACHED_WAKERS + 4).map(|_| waker()).collect();
        let tags: Vec<u64> = tasks
            .iter()
            .map(|(_, w)| {
                let tag = t.issue(0, Owner::Call).unwrap();
                assert!(t.poll_call(tag, w).is_none());
                tag
            })
            .collect();
        assert_eq!(t.wakers.cache.len(), CACHED_WAKERS);
        let mut to_wake = Vec::new();
        for &tag in &tags {
            t.answer(0, tag, response(tag), &mut to_wake).unwrap();
        }
        wake_all(&mut t, &mut to_wake);
        assert!(tasks.iter().all(|(count, _)| count.woken() == 1));
        // A task polled again with another waker: the old one is let go, the new one woken.
        let (first, w1) = waker();
        let (second, w2) = waker();
        let tag = t.issue(0, Owner::Call).unwrap();
        assert!(t.poll_call(tag, &w1).is_none());
        assert!(t.poll_call(tag, &w2).is_none());
        t.answer(0, tag, response(0), &mut to_wake).unwrap();
        wake_all(&mut t, &mut to_wake);
        assert_eq!((first.woken(), second.woken()), (0, 1));
    }

    #[test]
    fn tags_never_wrap() {
        let mut t = InFlight::new(2, None);
        t.next_tag = u64::MAX - 1;
        assert_eq!(t.issue(0, Owner::Call).unwrap(), u64::MAX - 1);
        assert!(matches!(t.issue(0, Owner::Call), Err(Error::TagsExhausted)));
    }
}
