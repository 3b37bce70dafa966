//! Model checks of the correlator's table under loom: every interleaving of the threads
//! below is run, with the table's atomics and locks as loom's.
//!
//! ```text
//! RUSTFLAGS="--cfg kernel_flows_loom" cargo test -p kernel-flows --test loom --release
//! ```
//!
//! (Built only so: a cfg of its own, so that tokio is built as usual.)

#![cfg(kernel_flows_loom)]

use futures_util::FutureExt;
use kernel_flows::{Config, Correlator, Order, Unanswered};
use loom::future::block_on;
use loom::thread;

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
    loom::model(|| {
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
    loom::model(|| {
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
    loom::model(|| {
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
    loom::model(|| {
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
