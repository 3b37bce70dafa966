//! The peer's requests: cs.packetstream's checks with its exact failure texts, in its order,
//! and what the requests handed to handlers hold. No I/O, no clock.

use std::collections::{HashSet, VecDeque};

use bytes::Bytes;
use foldhash::fast::RandomState;

use crate::Request;

/// How many requests' room the sets of tags keep while idle: 64 in-flight requests' worth,
/// about 2 KiB.
const KEEP: usize = 64;

/// A request handed to a handler: what the session needs back when the handler is done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Job {
    pub channel: u64,
    pub tag: u64,
    /// What it counts against [`Config::max_received`](crate::Config::max_received).
    pub charge: usize,
    /// Where its tag is kept while it is held.
    held: Kept,
}

/// Where [`HeldTags`] keeps a tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kept {
    InOrder,
    Hashed,
}

/// The tags of the peer's requests held (waiting for a handler or in one), for cs's "tag
/// already in use" check. Peers number their requests upwards (cs and Strata both do), so a
/// tag on channel 0 above every one seen there cannot be in use: it is checked with one
/// comparison and kept at the end of a list in order. Any other tag is looked up in that list
/// (a binary search) and in a hash set, where it is kept. The list is swept when the tags no
/// longer held in it outnumber those held, so it stays bounded by what is held.
#[derive(Default)]
struct HeldTags {
    /// The highest tag ever kept in order.
    high: Option<u64>,
    /// Channel 0's tags kept in order, ascending, each with whether it is still held.
    in_order: VecDeque<(u64, bool)>,
    held_in_order: usize,
    /// The peer picks the tags, so the hash is seeded (foldhash's random state).
    hashed: HashSet<(u64, u64), RandomState>,
}

impl HeldTags {
    #[inline]
    fn contains(&self, channel: u64, tag: u64) -> bool {
        if channel == 0 {
            if self.high.is_none_or(|high| tag > high) {
                // Above every tag kept: in neither (a hashed channel-0 tag is at most the
                // high mark of its time, and the mark only rises).
                return false;
            }
            if let Ok(i) = self.in_order.binary_search_by_key(&tag, |&(t, _)| t) {
                if self.in_order[i].1 {
                    return true;
                }
            }
        }
        self.hashed.contains(&(channel, tag))
    }

    /// Keeps the tag of a request that passed [`contains`](Self::contains).
    #[inline]
    fn insert(&mut self, channel: u64, tag: u64) -> Kept {
        if channel == 0 && self.high.is_none_or(|high| tag > high) {
            self.high = Some(tag);
            self.in_order.push_back((tag, true));
            self.held_in_order += 1;
            Kept::InOrder
        } else {
            self.hashed.insert((channel, tag));
            Kept::Hashed
        }
    }

    #[inline]
    fn remove(&mut self, channel: u64, tag: u64, kept: Kept) {
        match kept {
            Kept::Hashed => {
                self.hashed.remove(&(channel, tag));
            }
            Kept::InOrder => {
                // Handlers mostly finish in the order they started: look at the front first.
                let i = match self.in_order.front() {
                    Some(&(front, _)) if front == tag => Some(0),
                    _ => self.in_order.binary_search_by_key(&tag, |&(t, _)| t).ok(),
                };
                if let Some(i) = i {
                    if std::mem::replace(&mut self.in_order[i].1, false) {
                        self.held_in_order -= 1;
                    }
                }
                while self.in_order.front().is_some_and(|&(_, held)| !held) {
                    self.in_order.pop_front();
                }
                if self.in_order.len() > 2 * self.held_in_order + 32 {
                    self.in_order.retain(|&(_, held)| held);
                }
            }
        }
    }

    fn is_empty(&self) -> bool {
        self.held_in_order == 0 && self.hashed.is_empty()
    }

    /// About how many bytes of heap the sets hold.
    fn held(&self) -> usize {
        self.in_order.capacity() * size_of::<(u64, bool)>()
            + self.hashed.capacity() * (size_of::<(u64, u64)>() + 1)
    }

    /// Gives back memory beyond what a busy connection keeps using; the high mark stays.
    fn release_idle(&mut self) {
        if self.hashed.capacity() > KEEP {
            self.hashed = HashSet::default();
        }
        if self.in_order.capacity() > KEEP {
            self.in_order = VecDeque::new();
        }
    }
}

/// Leave for the driver to take the peer's requests itself, without the lock, from the bytes
/// it reads until the next lock, and to answer them at once when their handlers finish on
/// their first poll: plain requests on channel 0 whose tags go up, each above the last and
/// above every tag kept, while their bytes fit in what `max_received` has left. Such a
/// request passes every check of [`Serving::check`] (there is a handler, requests are
/// allowed, channel 0 exists, and no held tag can equal its tag), so the lane takes it as
/// `admit` would: answered at once, it was never held; still running, it holds its bytes at
/// once, and its tag from the next lock ([`Serving::lane_held`]). The first packet that is
/// anything else ends the lane, and the session reads it and what follows as usual. No I/O,
/// no clock.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Lane {
    /// A tag must be above this one.
    above: Option<u64>,
    /// Bytes held, as [`Serving::fits`] counts them.
    received: usize,
    max_received: usize,
}

impl Lane {
    /// Takes the request `(channel, tag)` counted as `charge` bytes, if it may go by the
    /// lane; the job that goes with it to its handler.
    #[inline]
    pub fn take(&mut self, channel: u64, tag: u64, charge: usize) -> Option<Job> {
        let fits = self.received == 0 || self.received + charge <= self.max_received;
        if channel != 0 || self.above.is_some_and(|above| tag <= above) || !fits {
            return None;
        }
        self.above = Some(tag);
        Some(Job {
            channel,
            tag,
            charge,
            held: Kept::InOrder,
        })
    }

    /// The handler of `job` did not finish at once: its bytes are held.
    pub fn holds(&mut self, job: &Job) {
        self.received += job.charge;
    }
}

/// The peer's requests held by this side: handed to the driver for a handler, and not yet
/// answered.
pub(crate) struct Serving {
    handler: bool,
    channels: bool,
    /// False once the peer sent ERQ.
    requests_allowed: bool,
    /// The tags of the requests held: a request naming one of them is refused.
    held: HeldTags,
    /// Requests held.
    held_count: usize,
    /// Bytes held, each request counted as its packet's length plus `REQUEST_COST`.
    received: usize,
    max_received: usize,
}

impl Serving {
    pub fn new(handler: bool, channels: bool, max_received: usize) -> Self {
        Serving {
            handler,
            channels,
            requests_allowed: true,
            held: HeldTags::default(),
            held_count: 0,
            received: 0,
            max_received,
        }
    }

    /// The peer sent ERQ: it sends no more requests, and one that comes anyway is refused.
    pub fn peer_erq(&mut self) {
        self.requests_allowed = false;
    }

    /// cs's checks on a request, in cs's order: `Err` with the text of the refusal.
    #[inline]
    pub fn check(&self, channel: u64, tag: u64) -> Result<(), Bytes> {
        if !self.handler {
            return Err(Bytes::from_static(b"no request handler"));
        }
        if !self.requests_allowed {
            return Err(Bytes::from_static(b"requests no longer allowed"));
        }
        if channel != 0 && !self.channels {
            // cs never fills in its format string.
            return Err(Bytes::from_static(b"unknown channel %d"));
        }
        if self.held.contains(channel, tag) {
            return Err(format!("channel {channel}: tag already in use: {tag}").into());
        }
        Ok(())
    }

    /// Whether a request counted as `charge` bytes fits in what may be held. One always fits
    /// when nothing is held, so that a budget of exactly one packet works.
    #[inline]
    pub fn fits(&self, charge: usize) -> bool {
        self.received == 0 || self.received + charge <= self.max_received
    }

    /// Takes a request that passed [`check`](Self::check), counted as `charge` bytes: it is
    /// held, and its tag in use, until [`finished`](Self::finished). Returns the job that
    /// goes with it to the driver.
    #[inline]
    pub fn admit(&mut self, request: &Request, charge: usize) -> Job {
        self.hold(request.channel, request.tag, charge)
    }

    #[inline]
    fn hold(&mut self, channel: u64, tag: u64, charge: usize) -> Job {
        let held = self.held.insert(channel, tag);
        self.received += charge;
        self.held_count += 1;
        Job {
            channel,
            tag,
            charge,
            held,
        }
    }

    /// The lane the driver may answer requests by until the next lock, when requests are
    /// served at all: see [`Lane`].
    pub fn lane(&self) -> Option<Lane> {
        (self.handler && self.requests_allowed).then_some(Lane {
            above: self.held.high,
            received: self.received,
            max_received: self.max_received,
        })
    }

    /// Holds the tag of a request the lane answered, counting no bytes: see
    /// [`Session::handle_lane`](crate::session::Session::handle_lane).
    pub fn hold_answered(&mut self, tag: u64) -> Job {
        self.hold(0, tag, 0)
    }

    /// The lane's request `job` was still running at the lock: from now on it is held as
    /// [`admit`](Self::admit) holds a request (its tag is above every tag kept, so it is kept
    /// in order).
    pub fn lane_held(&mut self, job: &mut Job) {
        *job = self.hold(job.channel, job.tag, job.charge);
    }

    /// The handler of `job` is done: its tag may come again, and its bytes are free.
    #[inline]
    pub fn finished(&mut self, job: Job) {
        self.held_count -= 1;
        self.held.remove(job.channel, job.tag, job.held);
        self.received -= job.charge;
    }

    /// No request is held.
    pub fn is_idle(&self) -> bool {
        self.held_count == 0
    }

    /// About how many bytes of heap the sets of tags hold.
    pub fn held(&self) -> usize {
        self.held.held()
    }

    /// Bytes held now.
    pub fn received(&self) -> usize {
        self.received
    }

    /// Gives the memory of the empty sets of tags back, when they grew beyond what a busy
    /// connection keeps using (so that they are not made anew at every pause).
    pub fn release_idle(&mut self) {
        if self.is_idle() {
            debug_assert!(self.held.is_empty());
            self.held.release_idle();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(channel: u64, tag: u64) -> Request {
        Request {
            channel,
            tag,
            rq_type: 0,
            flags: 0,
            payload: Bytes::from_static(b"q"),
        }
    }

    fn refusal(s: &Serving, channel: u64, tag: u64) -> Bytes {
        s.check(channel, tag).unwrap_err()
    }

    #[test]
    fn without_a_handler_every_request_is_refused_first() {
        let mut s = Serving::new(false, false, 1 << 20);
        s.peer_erq();
        assert_eq!(refusal(&s, 5, 2), "no request handler");
    }

    #[test]
    fn after_erq_requests_are_refused() {
        let mut s = Serving::new(true, false, 1 << 20);
        s.check(0, 2).unwrap();
        s.peer_erq();
        assert_eq!(refusal(&s, 0, 2), "requests no longer allowed");
    }

    #[test]
    fn unknown_channels_get_cs_literal_text() {
        let s = Serving::new(true, false, 1 << 20);
        assert_eq!(refusal(&s, 5, 7), "unknown channel %d");
        Serving::new(true, true, 1 << 20).check(5, 7).unwrap();
    }

    #[test]
    fn a_tag_held_is_refused_until_its_handler_is_done() {
        let mut s = Serving::new(true, false, 1 << 20);
        let job = s.admit(&request(0, 9), 200);
        assert_eq!(job.tag, 9);
        assert_eq!(refusal(&s, 0, 9), "channel 0: tag already in use: 9");
        s.check(1, 9).unwrap_err(); // channels off
        s.finished(job);
        s.check(0, 9).unwrap();
        assert_eq!(s.received(), 0);
        assert!(s.is_idle());
    }

    #[test]
    fn tags_out_of_order_on_other_channels_and_reused_are_all_checked() {
        let mut s = Serving::new(true, true, 1 << 20);
        // Upwards, then one below the mark, then one on another channel, then one again.
        let mut jobs = Vec::new();
        for (channel, tag) in [(0, 10), (0, 20), (0, 15), (7, 3), (0, 30)] {
            s.check(channel, tag).unwrap();
            jobs.push(s.admit(&request(channel, tag), 10));
        }
        for (channel, tag) in [(0, 10), (0, 20), (0, 15), (7, 3), (0, 30)] {
            assert!(s.check(channel, tag).is_err(), "({channel}, {tag}) is held");
        }
        for (channel, tag) in [(0, 11), (0, 25), (7, 10), (0, 31), (1, 10)] {
            s.check(channel, tag).unwrap();
        }
        // They finish out of order; each tag is free again once its handler is done.
        jobs.rotate_left(2);
        for job in jobs {
            assert!(s.check(job.channel, job.tag).is_err());
            s.finished(job);
            s.check(job.channel, job.tag).unwrap();
        }
        assert!(s.held.is_empty() && s.held.in_order.is_empty());
        // A tag reused after its answer, below the high mark: held again, and refused twice.
        s.admit(&request(0, 20), 10);
        assert!(s.check(0, 20).is_err());
    }

    #[test]
    fn the_list_of_tags_in_order_stays_bounded_while_an_old_one_is_held() {
        let mut s = Serving::new(true, false, 1 << 30);
        let stuck = s.admit(&request(0, 2), 10);
        for tag in 3..100_000 {
            let job = s.admit(&request(0, tag), 10);
            s.finished(job);
        }
        // One tag held: the list never grows past the sweep's threshold for it.
        let held = 1;
        assert!(
            s.held.in_order.len() <= 2 * held + 33,
            "{}",
            s.held.in_order.len()
        );
        assert!(s.check(0, 2).is_err());
        s.finished(stuck);
        s.check(0, 2).unwrap();
    }

    #[test]
    fn the_lane_takes_rising_tags_on_channel_0_within_the_budget_only() {
        let mut s = Serving::new(true, true, 1000);
        let held = s.admit(&request(0, 10), 100);
        let mut lane = s.lane().expect("requests are served");
        assert!(lane.take(0, 10, 10).is_none(), "a tag held");
        assert!(lane.take(0, 7, 10).is_none(), "a tag below the high mark");
        assert!(lane.take(1, 20, 10).is_none(), "another channel");
        let job = lane.take(0, 11, 10).unwrap();
        assert!(lane.take(0, 11, 10).is_none(), "the same tag again");
        lane.holds(&job);
        assert!(
            lane.take(0, 12, 900).is_none(),
            "over the budget with 110 held"
        );
        assert!(lane.take(0, 12, 890).is_some());
        // The one still running is held from the lock on: its tag is in use.
        let mut job = job;
        s.lane_held(&mut job);
        assert!(s.check(0, 11).is_err());
        assert_eq!(s.received(), 110);
        s.finished(job);
        s.finished(held);
        assert!(s.is_idle());
        // A tag the lane answered is held for the rest of its read, and costs nothing.
        let answered = s.hold_answered(12);
        assert!(s.check(0, 12).is_err());
        s.finished(answered);
        assert_eq!(s.received(), 0);
        // No lane without a handler, or once the peer sent ERQ.
        assert!(Serving::new(false, false, 1000).lane().is_none());
        s.peer_erq();
        assert!(s.lane().is_none());
    }

    #[test]
    fn the_received_budget_takes_one_request_when_empty_and_stops_at_its_limit() {
        let mut s = Serving::new(true, false, 1000);
        assert!(s.fits(5000), "one always fits into an empty budget");
        s.admit(&request(0, 2), 600);
        assert!(s.fits(400));
        assert!(!s.fits(401));
    }
}
