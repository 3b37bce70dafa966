//! The in-flight bound of a correlator: a counter with a wait list, fair to those who wait.
//!
//! A tokio `Semaphore` is fair too, but a round trip through it measured twice the cost of
//! this one in the correlator bench (its acquire future and waiter node, even when a slot is
//! free). The correlator's bound is taken and released once per request, so the fast path
//! here is one load and one compare-and-swap, and only waiters touch the `Notify`.
//!
//! Fairness: a caller takes a free slot at once only when nobody waits; otherwise it queues
//! behind the waiters, and tries for a slot only when `Notify` (first in, first out) wakes
//! it, so a slot given back goes to the longest waiter, not to whoever comes next.

use std::pin::pin;

use crate::sync::{AtomicBool, AtomicUsize, Notify, Ordering, store_buffering};

/// Cache-line alignment, so that the counter two cores update does not share a line with
/// anything else.
#[derive(Debug, Default)]
#[repr(align(128))]
pub(crate) struct Padded<T>(pub(crate) T);

/// The most requests a gate lets in flight: more is taken as this.
pub(crate) const MAX_IN_FLIGHT: usize = 1 << 16;

#[derive(Debug)]
pub(crate) struct Gate {
    in_flight: Padded<AtomicUsize>,
    max: usize,
    waiters: AtomicUsize,
    closed: AtomicBool,
    notify: Notify,
}

/// Counts a waiter for as long as an `acquire` is parked, including when it is cancelled.
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Gate {
    pub(crate) fn new(max: usize) -> Self {
        Gate {
            in_flight: Padded(AtomicUsize::new(0)),
            max: max.clamp(1, MAX_IN_FLIGHT),
            waiters: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
            notify: Notify::new(),
        }
    }

    /// Takes a slot if one is free: how many are taken then, this one included.
    fn try_acquire(&self) -> Option<usize> {
        self.in_flight
            .0
            .fetch_update(Ordering::SeqCst, Ordering::Relaxed, |n| {
                (n < self.max).then_some(n + 1)
            })
            .ok()
            .map(|n| n + 1)
    }

    /// Takes one slot, waiting while all are taken: how many are taken then, this one
    /// included. `Err` once the gate is closed. Cancel-safe: a dropped acquire takes nothing.
    pub(crate) async fn acquire(&self) -> Result<usize, Closed> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Closed);
        }
        if self.waiters.load(Ordering::SeqCst) == 0 {
            if let Some(taken) = self.try_acquire() {
                return Ok(taken);
            }
        }
        // Alone in the line, try at once; behind others, only once woken.
        let mut woken = self.waiters.fetch_add(1, Ordering::SeqCst) == 0;
        // With `release`, a store-buffering pattern: a release that did not see this waiter
        // has given its slot back where this waiter's try sees it.
        store_buffering();
        let _waiting = Waiting(&self.waiters);
        loop {
            // Enabled before the checks, so a release or close between the check and the
            // await still wakes this waiter.
            let mut notified = pin!(self.notify.notified());
            notified.as_mut().enable();
            if self.closed.load(Ordering::Acquire) {
                return Err(Closed);
            }
            if let Some(taken) = woken.then(|| self.try_acquire()).flatten() {
                return Ok(taken);
            }
            notified.await;
            woken = true;
        }
    }

    /// Gives one slot back.
    pub(crate) fn release(&self) {
        self.in_flight.0.fetch_sub(1, Ordering::SeqCst);
        store_buffering();
        if self.waiters.load(Ordering::SeqCst) > 0 {
            self.notify.notify_one();
        }
    }

    /// How many slots there are.
    pub(crate) fn max(&self) -> usize {
        self.max
    }

    /// How many slots are taken.
    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight.0.load(Ordering::SeqCst)
    }

    /// Whether the gate was closed. Sequentially consistent, as `close` is, for callers that
    /// order it against their own sequentially consistent updates.
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    /// Wakes every waiter with `Err`, and fails every later acquire.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        self.notify.notify_waiters();
    }
}

/// The gate was closed.
#[derive(Debug)]
pub(crate) struct Closed;
