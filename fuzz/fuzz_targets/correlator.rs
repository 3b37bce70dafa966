//! kernel-flows' correlator driven by any sequence of operations: a request resolves once,
//! only after its tag was answered or failed, with exactly what was given for its tag; the
//! in-flight count matches the requests held; tags are never issued twice.

#![no_main]

use std::collections::{HashMap, HashSet};

use arbitrary::Arbitrary;
use futures_util::FutureExt;
use kernel_flows::{Config, Correlator, Order, Pending, Tag, Unanswered};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
enum Op {
    Allocate,
    /// Answer the `pick`th request held, with `value`.
    Reply {
        pick: u8,
        value: u32,
    },
    /// Answer a tag nobody holds (a stray or a late reply).
    Stray {
        tag: u16,
        value: u32,
    },
    /// Drop the `pick`th request (cancel it).
    Cancel {
        pick: u8,
    },
    /// Fail the `pick`th request alone.
    Fail {
        pick: u8,
    },
    FailAll,
}

fuzz_target!(|input: (u8, Vec<Op>)| {
    let (max, ops) = input;
    let max_in_flight = usize::from(max % 8) + 1;
    let c: Correlator<u32, u8> = Correlator::new(Config {
        order: Order::Tagged,
        max_in_flight,
        first_tag: 1,
    });
    let mut held: Vec<(Tag, Pending<'_, u32, u8>)> = Vec::new();
    // What each tag was given, if anything; and the tags issued.
    let mut given: HashMap<Tag, Result<u32, u8>> = HashMap::new();
    let mut issued: HashSet<Tag> = HashSet::new();
    let mut failed_all = false;
    for op in ops.into_iter().take(512) {
        match op {
            Op::Allocate => match c.allocate().now_or_never() {
                Some(Ok((tag, pending))) => {
                    assert!(!failed_all, "nothing is allocated after fail_all");
                    assert!(issued.insert(tag), "{tag} issued twice");
                    held.push((tag, pending));
                }
                Some(Err(_)) => assert!(failed_all),
                None => assert_eq!(held.len(), max_in_flight, "waits only when full"),
            },
            Op::Reply { pick, value } if !held.is_empty() => {
                let tag = held[usize::from(pick) % held.len()].0;
                if c.correlate(tag, value).is_ok() {
                    assert!(
                        given.insert(tag, Ok(value)).is_none(),
                        "{tag} answered twice"
                    );
                }
            }
            Op::Stray { tag, value } => {
                let tag = Tag(u64::from(tag));
                let waiting = held.iter().any(|(t, _)| *t == tag) && !given.contains_key(&tag);
                let delivered = c.correlate(tag, value).is_ok();
                assert_eq!(delivered, waiting && !failed_all, "{tag}");
                if delivered {
                    given.insert(tag, Ok(value));
                }
            }
            Op::Cancel { pick } if !held.is_empty() => {
                let (tag, pending) = held.remove(usize::from(pick) % held.len());
                drop(pending);
                given.remove(&tag);
            }
            Op::Fail { pick } if !held.is_empty() => {
                let tag = held[usize::from(pick) % held.len()].0;
                if c.fail(tag, 7) {
                    assert!(given.insert(tag, Err(7)).is_none(), "{tag} failed twice");
                }
            }
            Op::FailAll => {
                c.fail_all(9);
                failed_all = true;
            }
            _ => {}
        }
        // Every request held resolves now exactly when something was given for it.
        let mut still = Vec::new();
        for (tag, mut pending) in held.drain(..) {
            match (&mut pending).now_or_never() {
                Some(Ok(value)) => assert_eq!(given.remove(&tag), Some(Ok(value)), "{tag}"),
                Some(Err(Unanswered::Failed(e))) => match given.remove(&tag) {
                    Some(Err(given)) => assert_eq!(e, given),
                    None => assert!(failed_all && e == 9, "{tag} failed with {e}"),
                    Some(Ok(v)) => panic!("{tag} was answered {v}, resolved as failed {e}"),
                },
                Some(Err(Unanswered::Spent)) => panic!("{tag} resolved twice"),
                Some(Err(other)) => panic!("{tag}: a Pending never ends as {other:?}"),
                None => {
                    assert!(!given.contains_key(&tag) && !failed_all, "{tag} not woken");
                    still.push((tag, pending));
                }
            }
        }
        held = still;
        assert_eq!(c.in_flight(), held.len(), "the in-flight count");
    }
});
