//! Model checks of the correlator under loom: every interleaving of the threads below (with
//! at most two preemptions) is run, with the table's and the gate's atomics, locks and wait
//! list as loom's (`crate::sync`).
//!
//! ```text
//! RUSTFLAGS="--cfg kernel_flows_loom" cargo test -p kernel-flows --test loom --release
//! ```
//!
//! (Built only so: a cfg of its own, so that tokio is built as usual.)

#![cfg(kernel_flows_loom)]

use std::future::Future;

use futures_util::FutureExt;
use kernel_flows::{Config, Correlator, Order, Unanswered};
use loom::future::block_on;
use loom::thread;

/// Every interleaving with at most two preemptions (loom's usual bound: the bugs of this kind
/// need few, and the waiter tests would take hours unbounded).
fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(2);
    builder.check(f);
}

fn correlator(max_in_flight: usize) -> Correlator<u32, &'static str> {
    Correlator::new(Config {
        order: Order::Tagged,
        max_in_flight,
        first_tag: 1,
    })
}

/// A reply racing the cancel of its request: the reply is taken or orphaned, never both,
/// and the slot and its permit come back exactly once.
#[test]
fn a_reply_racing_a_cancel() {
    model(|| {
        let c = correlator(1);
        let (tag, pending) = block_on(c.allocate()).unwrap();
        let replier = {
            let c = c.clone();
            thread::spawn(move || c.correlate(tag, 7).is_ok())
        };
        drop(pending);
        let delivered = replier.join().unwrap();
        assert_eq!(c.in_flight(), 0, "the permit came back once");
        assert_eq!(
            c.orphans(),
            u64::from(!delivered),
            "an undelivered reply is an orphan"
        );
        // The slot is free for the next request, which gets its own reply.
        let (next, pending) = block_on(c.allocate()).unwrap();
        assert_ne!(next, tag);
        c.correlate(next, 8).unwrap();
        assert_eq!(pending.now_or_never(), Some(Ok(8)));
    });
}

/// A request taking its slot while the link fails: it is either refused or failed, never
/// left waiting for ever.
#[test]
fn allocate_against_fail_all() {
    model(|| {
        let c = correlator(2);
        let failer = {
            let c = c.clone();
            thread::spawn(move || {
                c.fail_all("down");
            })
        };
        let allocated = block_on(c.allocate());
        failer.join().unwrap();
        match allocated {
            Ok((_, pending)) => {
                assert_eq!(
                    pending.now_or_never(),
                    Some(Err(Unanswered::Failed("down")))
                );
            }
            Err(e) => assert_eq!(e, Unanswered::Failed("down")),
        }
        assert_eq!(c.in_flight(), 0);
    });
}

/// A late reply for a finished request racing the next request in its slot: it never
/// reaches the new request.
#[test]
fn a_late_reply_and_slot_reuse() {
    model(|| {
        let c = correlator(1);
        let (first, pending) = block_on(c.allocate()).unwrap();
        c.correlate(first, 1).unwrap();
        assert_eq!(pending.now_or_never(), Some(Ok(1)));
        let late = {
            let c = c.clone();
            thread::spawn(move || c.correlate(first, 99).is_ok())
        };
        let (second, pending) = block_on(c.allocate()).unwrap();
        assert!(!late.join().unwrap(), "a late reply is never delivered");
        c.correlate(second, 2).unwrap();
        assert_eq!(pending.now_or_never(), Some(Ok(2)));
    });
}

/// Two requests answered from two threads at once: each gets its own reply.
#[test]
fn two_replies_at_once() {
    model(|| {
        let c = correlator(2);
        let (a, pa) = block_on(c.allocate()).unwrap();
        let (b, pb) = block_on(c.allocate()).unwrap();
        let threads: Vec<_> = [(a, 10), (b, 20)]
            .into_iter()
            .map(|(tag, value)| {
                let c = c.clone();
                thread::spawn(move || c.correlate(tag, value).unwrap())
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(pa.now_or_never(), Some(Ok(10)));
        assert_eq!(pb.now_or_never(), Some(Ok(20)));
        assert_eq!(c.in_flight(), 0);
    });
}

/// A caller waiting for a slot is woken when one frees: no wake-up is lost.
#[test]
fn a_waiter_is_woken_when_a_slot_frees() {
    model(|| {
        let c = correlator(1);
        let (a, pa) = block_on(c.allocate()).unwrap();
        let waiter = {
            let c = c.clone();
            thread::spawn(move || block_on(c.allocate()).map(|(tag, _)| tag).is_ok())
        };
        c.correlate(a, 1).unwrap();
        assert_eq!(pa.now_or_never(), Some(Ok(1)));
        assert!(waiter.join().unwrap(), "the waiter got the slot");
    });
}

/// A waiter cancelled after it was woken, before it took the slot, passes the slot on: the
/// next waiter is not left waiting for ever.
#[test]
fn a_waiter_cancelled_after_its_wake_passes_the_slot_on() {
    model(|| {
        let c = correlator(1);
        let (a, pa) = block_on(c.allocate()).unwrap();
        let cancelling = {
            let c = c.clone();
            thread::spawn(move || {
                let mut allocate = Box::pin(c.allocate());
                let mut first = true;
                // Polled once; once woken, dropped without being polled again.
                let got = block_on(std::future::poll_fn(|cx| {
                    if !std::mem::take(&mut first) {
                        return std::task::Poll::Ready(false);
                    }
                    allocate.as_mut().poll(cx).map(|r| r.is_ok())
                }));
                drop(allocate);
                got
            })
        };
        let patient = {
            let c = c.clone();
            thread::spawn(move || block_on(c.allocate()).map(|(tag, _)| tag).is_ok())
        };
        c.correlate(a, 1).unwrap();
        assert_eq!(pa.now_or_never(), Some(Ok(1)));
        cancelling.join().unwrap();
        assert!(
            patient.join().unwrap(),
            "the slot reached the patient waiter"
        );
        assert_eq!(c.in_flight(), 0);
    });
}

/// A request that grows the table (the second of two in flight) while the first one's reply
/// comes: the first is found in the slot it was given before the table grew, and the new
/// one in the grown table.
#[test]
fn a_reply_for_an_old_tag_while_the_table_grows() {
    model(|| {
        let c = correlator(2);
        let (a, pa) = block_on(c.allocate()).unwrap();
        let replier = {
            let c = c.clone();
            thread::spawn(move || c.correlate(a, 1).unwrap())
        };
        let (b, pb) = block_on(c.allocate()).unwrap();
        replier.join().unwrap();
        c.correlate(b, 2).unwrap();
        assert_eq!(pa.now_or_never(), Some(Ok(1)));
        assert_eq!(pb.now_or_never(), Some(Ok(2)));
        assert_eq!((c.in_flight(), c.orphans()), (0, 0));
    });
}

/// A request that grows the table while the link fails: it is refused or failed (a slot in
/// a new segment is one `fail_all` looks at), and so is the request already waiting.
#[test]
fn allocate_growing_the_table_against_fail_all() {
    model(|| {
        let c = correlator(2);
        let (_, pa) = block_on(c.allocate()).unwrap();
        let failer = {
            let c = c.clone();
            thread::spawn(move || {
                c.fail_all("down");
            })
        };
        let allocated = block_on(c.allocate());
        failer.join().unwrap();
        if let Ok((_, pb)) = allocated {
            assert_eq!(pb.now_or_never(), Some(Err(Unanswered::Failed("down"))));
        }
        assert_eq!(pa.now_or_never(), Some(Err(Unanswered::Failed("down"))));
        assert_eq!(c.in_flight(), 0);
    });
}

/// FIFO: a request cancelled before it was written, racing another that is written and
/// answered: the cancelled one takes no turn, so the reply reaches the one that was sent.
#[test]
fn fifo_a_request_cancelled_before_it_was_written_takes_no_turn() {
    model(|| {
        let c: Correlator<u32, &'static str> = Correlator::new(Config {
            order: Order::Fifo,
            max_in_flight: 2,
            first_tag: 1,
        });
        let cancelling = {
            let c = c.clone();
            thread::spawn(move || drop(block_on(c.allocate()).unwrap()))
        };
        let (b, pb) = block_on(c.allocate()).unwrap();
        c.sent(b);
        c.correlate_next(5).unwrap();
        cancelling.join().unwrap();
        assert_eq!(pb.now_or_never(), Some(Ok(5)));
        assert_eq!((c.in_flight(), c.orphans()), (0, 0));
    });
}

/// The gate is fair: once a caller waits for a slot, one given back goes to it, and a
/// newcomer that tries meanwhile waits behind it, even when it comes before the waiter has
/// run again.
#[test]
fn a_slot_given_back_goes_to_the_waiter_not_to_a_newcomer() {
    use loom::sync::Arc;
    use loom::sync::atomic::{AtomicBool, Ordering};
    model(|| {
        let c = correlator(1);
        let (a, pa) = block_on(c.allocate()).unwrap();
        let parked = Arc::new(AtomicBool::new(false));
        let checked = Arc::new(AtomicBool::new(false));
        let waiter = {
            let c = c.clone();
            let parked = Arc::clone(&parked);
            let checked = Arc::clone(&checked);
            thread::spawn(move || {
                let mut allocate = Box::pin(c.allocate());
                let got = block_on(std::future::poll_fn(|cx| {
                    let poll = allocate.as_mut().poll(cx);
                    if poll.is_pending() {
                        parked.store(true, Ordering::SeqCst);
                    }
                    poll
                }));
                // The slot is held until the newcomer has tried.
                while !checked.load(Ordering::SeqCst) {
                    thread::yield_now();
                }
                got.is_ok()
            })
        };
        while !parked.load(Ordering::SeqCst) {
            thread::yield_now();
        }
        c.correlate(a, 1).unwrap();
        assert_eq!(pa.now_or_never(), Some(Ok(1)));
        assert!(
            c.allocate().now_or_never().is_none(),
            "a newcomer waits behind the waiter"
        );
        checked.store(true, Ordering::SeqCst);
        assert!(waiter.join().unwrap(), "the waiter got the slot");
        assert_eq!(c.in_flight(), 0);
    });
}

/// A reply racing a timeout (`fail` of the one request, as a client's timer does) and the
/// caller's cancel: at most one of the reply and the failure is taken, the caller sees the
/// one that was, and the permit comes back once.
#[test]
fn a_reply_racing_a_timeout_and_a_cancel() {
    model(|| {
        let c = correlator(1);
        let (tag, pending) = block_on(c.allocate()).unwrap();
        let replier = {
            let c = c.clone();
            thread::spawn(move || c.correlate(tag, 7).is_ok())
        };
        let timer = {
            let c = c.clone();
            thread::spawn(move || c.fail(tag, "timed out"))
        };
        // The caller gives up too, unless an answer is there already.
        let seen = pending.now_or_never();
        let delivered = replier.join().unwrap();
        let failed = timer.join().unwrap();
        assert!(!(delivered && failed), "one answer at most");
        match seen {
            Some(Ok(7)) => assert!(delivered),
            Some(Err(Unanswered::Failed("timed out"))) => assert!(failed),
            None => {}
            Some(other) => panic!("the caller saw {other:?}"),
        }
        assert_eq!(c.in_flight(), 0, "the permit came back once");
        assert_eq!(c.orphans(), u64::from(!delivered));
    });
}
