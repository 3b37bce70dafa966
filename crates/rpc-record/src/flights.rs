//! [`Flights`]: a client's calls in flight on a clock of ticks: when each is sent again (over
//! datagrams) and when it gives up. No I/O and no clock: the driver says when a tick passes.

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use kernel_flows::Tag;

/// The longest wait between two sends of a datagram call, as libtirpc's `RPC_MAX_BACKOFF`.
pub(crate) const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// What a tick brought for one call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Due {
    /// Send this call's message again.
    Resend(Tag, Bytes),
    /// The call has waited its timeout: it fails.
    Expired(Tag),
}

/// A call sent: when, and when to send it again.
#[derive(Debug)]
struct Flight {
    /// The tick it was first sent in.
    sent: u64,
    resend: Option<Resend>,
}

#[derive(Debug)]
struct Resend {
    /// The tick to send it again at.
    at: u64,
    /// The wait before the next send after that, in ticks: it doubles each time.
    every: u64,
    message: Bytes,
}

/// The most slots [`Flights`] has; calls beyond go to its overflow map.
const MAX_SLOTS: usize = 1024;

/// The timing of a client's calls, counted in ticks of [`Flights::tick_len`].
///
/// A call times out between `timeout` and `timeout` plus one tick after it was sent (a tick
/// is at most an eighth of the timeout); a datagram call is first sent again between `retry`
/// and `retry` plus one tick (a tick is at most a quarter of `retry`), then after twice as
/// long each time, up to [`MAX_BACKOFF`]. Nothing is timed per call: the driver ticks while
/// calls are in flight, and each tick looks at them all (at most the calls in flight and
/// those cancelled within the last tick).
///
/// A call's timing sits in the slot its tag picks (tags are consecutive, so calls in flight
/// together pick different slots), or in a map when an outstanding call holds that slot:
/// a call costs no hashing in the usual case.
#[derive(Debug)]
pub(crate) struct Flights {
    slots: Vec<Option<(u64, Flight)>>,
    /// `slots.len() - 1`; the length is a power of two.
    mask: u64,
    /// Calls whose slot an outstanding call held.
    overflow: HashMap<u64, Flight, foldhash::fast::RandomState>,
    /// How many slots hold a call.
    occupied: usize,
    /// Ticks so far.
    now: u64,
    tick_len: Option<Duration>,
    /// A call's timeout, in ticks.
    timeout: Option<u64>,
    /// The first wait before sending a call again, in ticks.
    retry: Option<u64>,
    max_backoff: u64,
}

impl Flights {
    /// Calls that time out after `timeout` and, when `retry` is given, are sent again after
    /// it with doubling waits.
    pub fn new(
        timeout: Option<Duration>,
        retry: Option<Duration>,
        max_in_flight: usize,
    ) -> Flights {
        let tick_len = match (timeout.map(|t| t / 8), retry.map(|r| r / 4)) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
        .map(|tick| tick.max(Duration::from_millis(1)));
        let in_ticks = |d: Duration| {
            let tick = tick_len.unwrap_or(Duration::MAX).as_nanos();
            u64::try_from(d.as_nanos().div_ceil(tick)).unwrap_or(u64::MAX)
        };
        let slots = max_in_flight
            .saturating_mul(2)
            .clamp(1, MAX_SLOTS)
            .next_power_of_two();
        Flights {
            slots: (0..slots).map(|_| None).collect(),
            mask: slots as u64 - 1,
            overflow: HashMap::default(),
            occupied: 0,
            now: 0,
            tick_len,
            timeout: timeout.map(in_ticks),
            retry: retry.map(in_ticks),
            max_backoff: in_ticks(MAX_BACKOFF).max(1),
        }
    }

    /// How often to tick while calls are in flight; `None`: calls are not timed at all.
    pub fn tick_len(&self) -> Option<Duration> {
        self.tick_len
    }

    /// Whether no call is timed (the driver need not tick).
    pub fn is_empty(&self) -> bool {
        self.occupied == 0 && self.overflow.is_empty()
    }

    /// Call `tag` was sent now, as `message`. `outstanding` says whether a call still waits
    /// (the one whose slot this call would take).
    pub fn sent(&mut self, tag: Tag, message: &Bytes, outstanding: impl Fn(Tag) -> bool) {
        if self.tick_len.is_none() {
            return;
        }
        let resend = self.retry.map(|every| Resend {
            at: self.now.saturating_add(every).saturating_add(1),
            every: every.saturating_mul(2).min(self.max_backoff),
            message: message.clone(),
        });
        let flight = Flight {
            sent: self.now,
            resend,
        };
        let slot = &mut self.slots[(tag.0 & self.mask) as usize];
        match slot {
            Some((held, _)) if outstanding(Tag(*held)) => {
                self.overflow.insert(tag.0, flight);
            }
            Some(_) => *slot = Some((tag.0, flight)),
            None => {
                *slot = Some((tag.0, flight));
                self.occupied += 1;
            }
        }
    }

    /// Call `tag` is over (answered or failed): nothing more is timed for it.
    pub fn done(&mut self, tag: Tag) {
        let slot = &mut self.slots[(tag.0 & self.mask) as usize];
        if slot.as_ref().is_some_and(|(held, _)| *held == tag.0) {
            *slot = None;
            self.occupied -= 1;
        } else if !self.overflow.is_empty() {
            self.overflow.remove(&tag.0);
        }
    }

    /// One tick has passed: what is due is added to `due`. Calls for which `outstanding`
    /// says nobody waits any more (cancelled) are forgotten.
    pub fn tick(&mut self, outstanding: impl Fn(Tag) -> bool, due: &mut Vec<Due>) {
        self.now += 1;
        let now = self.now;
        let (timeout, max_backoff) = (self.timeout, self.max_backoff);
        // Whether call `tag` is still timed; what is due for it goes to `due`.
        let mut keep = |tag: u64, flight: &mut Flight| {
            let tag = Tag(tag);
            if !outstanding(tag) {
                return false;
            }
            if timeout.is_some_and(|timeout| now - flight.sent > timeout) {
                due.push(Due::Expired(tag));
                return false;
            }
            if let Some(resend) = &mut flight.resend
                && now >= resend.at
            {
                due.push(Due::Resend(tag, resend.message.clone()));
                resend.at = now.saturating_add(resend.every);
                resend.every = resend.every.saturating_mul(2).min(max_backoff);
            }
            true
        };
        for slot in &mut self.slots {
            if let Some((tag, flight)) = slot
                && !keep(*tag, flight)
            {
                *slot = None;
                self.occupied -= 1;
            }
        }
        self.overflow.retain(|&tag, flight| keep(tag, flight));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ticks_until(flights: &mut Flights, limit: u64) -> Vec<(u64, Due)> {
        let mut all = Vec::new();
        let mut due = Vec::new();
        for _ in 0..limit {
            flights.tick(|_| true, &mut due);
            all.extend(due.drain(..).map(|d| (flights.now, d)));
        }
        all
    }

    #[test]
    fn a_datagram_call_is_sent_again_with_doubling_waits_then_times_out() {
        // Ticks of 250 ms (a quarter of the retry); the timeout is 40 ticks.
        let mut flights = Flights::new(
            Some(Duration::from_secs(10)),
            Some(Duration::from_secs(1)),
            4,
        );
        assert_eq!(flights.tick_len(), Some(Duration::from_millis(250)));
        let message = Bytes::from_static(b"call");
        flights.sent(Tag(7), &message, |_| true);
        let due = ticks_until(&mut flights, 50);
        let resend = |at| (at, Due::Resend(Tag(7), message.clone()));
        // Sent again after 1 s (+ a tick), then 2 s and 4 s later; gives up after 10 s (+ a tick).
        assert_eq!(
            due,
            [
                resend(5),
                resend(13),
                resend(29),
                (41, Due::Expired(Tag(7)))
            ]
        );
        assert!(flights.is_empty());
    }

    #[test]
    fn waits_are_capped_at_thirty_seconds() {
        let mut flights = Flights::new(None, Some(Duration::from_secs(8)), 4);
        // Ticks of 2 s: waits of 4, 8, 15, 15... ticks.
        flights.sent(Tag(1), &Bytes::new(), |_| true);
        let at: Vec<u64> = ticks_until(&mut flights, 80)
            .into_iter()
            .map(|(at, _)| at)
            .collect();
        assert_eq!(at, [5, 13, 28, 43, 58, 73]);
    }

    #[test]
    fn answered_and_cancelled_calls_are_forgotten() {
        let mut flights = Flights::new(Some(Duration::from_secs(8)), None, 4);
        flights.sent(Tag(1), &Bytes::new(), |_| true);
        flights.sent(Tag(2), &Bytes::new(), |_| true);
        flights.sent(Tag(3), &Bytes::new(), |_| true);
        flights.done(Tag(1));
        let mut due = Vec::new();
        flights.tick(|tag| tag != Tag(2), &mut due);
        assert!(due.is_empty());
        assert_eq!(flights.occupied, 1, "only call 3 is timed");
        for _ in 0..8 {
            flights.tick(|_| true, &mut due);
        }
        assert_eq!(due, [Due::Expired(Tag(3))]);
    }

    #[test]
    fn a_call_whose_slot_an_outstanding_call_holds_is_timed_all_the_same() {
        // Four slots (two calls in flight): tags 1 and 5 pick the same one.
        let mut flights = Flights::new(Some(Duration::from_secs(8)), None, 2);
        assert_eq!(flights.slots.len(), 4);
        flights.sent(Tag(1), &Bytes::new(), |_| true);
        flights.sent(Tag(5), &Bytes::new(), |tag| tag == Tag(1));
        assert_eq!((flights.occupied, flights.overflow.len()), (1, 1));
        let mut due = Vec::new();
        for _ in 0..9 {
            flights.tick(|_| true, &mut due);
        }
        assert_eq!(due.len(), 2);
        assert!(due.contains(&Due::Expired(Tag(1))) && due.contains(&Due::Expired(Tag(5))));
        assert!(flights.is_empty());
        // A slot whose call is over is taken over.
        flights.sent(Tag(1), &Bytes::new(), |_| true);
        flights.sent(Tag(5), &Bytes::new(), |_| false);
        assert_eq!((flights.occupied, flights.overflow.len()), (1, 0));
        flights.done(Tag(5));
        assert!(flights.is_empty());
    }

    #[test]
    fn without_a_timeout_or_retries_nothing_is_timed() {
        let mut flights = Flights::new(None, None, 4);
        assert_eq!(flights.tick_len(), None);
        flights.sent(Tag(1), &Bytes::new(), |_| true);
        assert!(flights.is_empty());
    }
}
