//! Correlator: tags, bounds, cancellation, orphans, failing everything at once.

use std::collections::HashMap;
use std::time::Duration;

use futures_util::FutureExt;
use kernel_flows::{Config, Correlator, Order, OrphanKind, Pending, Tag, Unanswered};
use proptest::prelude::*;

type Link = Correlator<u64, &'static str>;

fn tagged(max_in_flight: usize) -> Link {
    Correlator::new(Config {
        order: Order::Tagged,
        max_in_flight,
        first_tag: 2,
    })
}

fn allocate_now(c: &Link) -> (Tag, Pending<'_, u64, &'static str>) {
    c.allocate()
        .now_or_never()
        .expect("capacity is free")
        .expect("not failed")
}

#[test]
fn tags_start_at_the_first_tag_and_are_never_reused() {
    let c = tagged(4);
    let mut seen = Vec::new();
    for _ in 0..10 {
        let (tag, pending) = allocate_now(&c);
        seen.push(tag.0);
        c.correlate(tag, tag.0 * 10).unwrap();
        assert_eq!(pending.now_or_never(), Some(Ok(tag.0 * 10)));
    }
    assert_eq!(seen, (2..12).collect::<Vec<_>>());
}

#[test]
fn failing_one_request_leaves_the_others_and_frees_its_slot() {
    let c = tagged(1);
    let (a, pa) = allocate_now(&c);
    assert!(c.is_outstanding(a));
    assert!(c.fail(a, "too large"));
    assert_eq!(
        pa.now_or_never(),
        Some(Err(Unanswered::Failed("too large")))
    );
    assert!(!c.fail(a, "again"), "nobody waits on a failed tag");
    assert!(!c.is_failed());
    // Its slot is free (max_in_flight is 1), and the next request is answered as usual.
    let (b, pb) = allocate_now(&c);
    assert!(!c.is_outstanding(a) && c.is_outstanding(b));
    c.correlate(b, 7).unwrap();
    assert_eq!(pb.now_or_never(), Some(Ok(7)));
    assert!(!c.is_outstanding(b), "its reply was taken");
    let (d, pd) = allocate_now(&c);
    drop(pd);
    assert!(!c.is_outstanding(d), "cancelled");
}

#[tokio::test]
async fn allocate_waits_at_max_in_flight_and_a_reply_frees_the_slot() {
    let c = tagged(2);
    let (a, pa) = allocate_now(&c);
    let (_b, _pb) = allocate_now(&c);
    let third = tokio::spawn({
        let c = c.clone();
        async move { c.allocate().await.map(|(tag, _)| tag) }
    });
    tokio::task::yield_now().await;
    assert!(!third.is_finished(), "a third request must wait for a slot");
    c.correlate(a, 1).unwrap();
    assert_eq!(pa.await, Ok(1));
    let tag = tokio::time::timeout(Duration::from_secs(5), third)
        .await
        .expect("the reply freed a slot")
        .unwrap()
        .unwrap();
    assert_eq!(tag, Tag(4));
}

#[tokio::test]
async fn dropping_a_pending_frees_its_slot_and_its_late_reply_is_an_orphan() {
    let c = tagged(1);
    let (tag, pending) = allocate_now(&c);
    assert!(
        c.allocate().now_or_never().is_none(),
        "the only slot is taken"
    );
    drop(pending);
    assert_eq!(c.in_flight(), 0);
    let (next, _p) = allocate_now(&c);
    assert_eq!(next, Tag(3));
    let orphan = c.correlate(tag, 7).unwrap_err();
    assert_eq!(orphan.kind, OrphanKind::Finished);
    assert_eq!(orphan.reply, 7);
    assert_eq!(orphan.to_string(), "orphan reply tag=2 (finished)");
    assert_eq!(c.orphans(), 1);
}

#[test]
fn a_request_that_outlives_many_others_keeps_its_slot_and_tags_still_only_go_up() {
    // Two permits: a table of four slots. The held request's slot comes round every fourth
    // tag; those tags are skipped, never issued twice.
    let c = tagged(2);
    let (held, held_reply) = allocate_now(&c);
    let mut issued = vec![held.0];
    for _ in 0..40 {
        let (tag, pending) = allocate_now(&c);
        assert!(tag.0 > *issued.last().unwrap(), "{tag} after {issued:?}");
        issued.push(tag.0);
        c.correlate(tag, tag.0).unwrap();
        assert_eq!(pending.now_or_never(), Some(Ok(tag.0)));
    }
    // A quarter of the tags met the held slot and were skipped.
    assert_eq!(*issued.last().unwrap(), 2 + 40 + 40 / 3);
    assert_eq!(c.in_flight(), 1);
    c.correlate(held, 99).unwrap();
    assert_eq!(held_reply.now_or_never(), Some(Ok(99)));
    assert_eq!(c.orphans(), 0);
    assert_eq!(c.in_flight(), 0);
}

#[test]
fn replies_to_tags_never_issued_are_unknown_orphans() {
    let c = tagged(4);
    let (_tag, _p) = allocate_now(&c);
    for bogus in [0, 1, 3, u64::MAX] {
        let orphan = c.correlate(Tag(bogus), bogus).unwrap_err();
        assert_eq!(orphan.kind, OrphanKind::Unknown, "tag {bogus}");
    }
    assert_eq!(c.orphans(), 4);
    assert_eq!(c.in_flight(), 1, "orphans leave the waiting request alone");
}

#[tokio::test]
async fn fail_all_wakes_every_waiter_and_every_allocation_waiting_for_capacity() {
    let c = tagged(3);
    let waiters: Vec<_> = (0..3)
        .map(|_| {
            let c = c.clone();
            tokio::spawn(async move {
                let (_, pending) = c.allocate().await?;
                pending.await
            })
        })
        .collect();
    tokio::time::timeout(Duration::from_secs(5), async {
        while c.in_flight() < 3 {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the three waiters allocate");
    let blocked = tokio::spawn({
        let c = c.clone();
        async move { c.allocate().await.map(|(tag, _)| tag) }
    });
    tokio::task::yield_now().await;
    assert_eq!(c.fail_all("link reset"), 3);
    for waiter in waiters {
        let result = tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("woken at once")
            .unwrap();
        assert_eq!(result, Err(Unanswered::Failed("link reset")));
    }
    let blocked = tokio::time::timeout(Duration::from_secs(5), blocked)
        .await
        .expect("woken at once")
        .unwrap();
    assert_eq!(blocked, Err(Unanswered::Failed("link reset")));
    assert!(c.is_failed());
    assert_eq!(c.fail_all("second error"), 0);
    assert_eq!(
        c.allocate().await.map(|_| ()),
        Err(Unanswered::Failed("link reset")),
        "the first error is the one everyone sees"
    );
}

#[test]
fn a_pending_polled_after_it_resolved_is_spent_and_gives_its_permit_back_once() {
    let c = tagged(1);
    let (tag, mut pending) = allocate_now(&c);
    c.correlate(tag, 7).unwrap();
    assert_eq!((&mut pending).now_or_never(), Some(Ok(7)));
    assert_eq!(c.in_flight(), 0);
    // The slot is free again, and the next request takes the permit.
    let (next, waiting) = allocate_now(&c);
    assert_eq!((&mut pending).now_or_never(), Some(Err(Unanswered::Spent)));
    drop(pending);
    assert_eq!(
        c.in_flight(),
        1,
        "the spent Pending gave nothing back twice"
    );
    c.correlate(next, 8).unwrap();
    assert_eq!(waiting.now_or_never(), Some(Ok(8)));
}

#[test]
fn fifo_replies_go_to_the_oldest_request_sent_and_a_sent_one_keeps_its_turn() {
    let c: Link = Correlator::new(Config {
        order: Order::Fifo,
        max_in_flight: 8,
        first_tag: 1,
    });
    let (a, first) = allocate_now(&c);
    let (b, second) = allocate_now(&c);
    let (d, third) = allocate_now(&c);
    for tag in [a, b, d] {
        c.sent(tag);
    }
    // Cancelled after it went out: its reply is still coming, so it keeps its turn.
    drop(second);
    c.correlate_next(10).unwrap();
    let orphan = c.correlate_next(20).unwrap_err();
    assert_eq!(
        (orphan.tag, orphan.kind),
        (Some(Tag(2)), OrphanKind::Finished)
    );
    c.correlate_next(30).unwrap();
    assert_eq!(first.now_or_never(), Some(Ok(10)));
    assert_eq!(third.now_or_never(), Some(Ok(30)));
    let orphan = c.correlate_next(40).unwrap_err();
    assert_eq!((orphan.tag, orphan.kind), (None, OrphanKind::Unknown));
    let orphan = c.correlate(Tag(1), 50).unwrap_err();
    assert_eq!(
        orphan.kind,
        OrphanKind::Unknown,
        "a FIFO correlator takes no tags"
    );
    assert_eq!(c.orphans(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_tasks_allocate_and_correlate_concurrently_without_loss() {
    let c: Correlator<u64, &'static str> = Correlator::new(Config {
        order: Order::Tagged,
        max_in_flight: 16,
        first_tag: 2,
    });
    let (replies_tx, mut replies_rx) = tokio::sync::mpsc::unbounded_channel::<Tag>();
    // The "reader" answers each tag with tag * 3, in whatever order tags arrive.
    let reader = tokio::spawn({
        let c = c.clone();
        async move {
            while let Some(tag) = replies_rx.recv().await {
                c.correlate(tag, tag.0 * 3)
                    .expect("a waiter for each reply");
            }
        }
    });
    let mut clients = Vec::new();
    for _ in 0..8 {
        let c = c.clone();
        let tx = replies_tx.clone();
        clients.push(tokio::spawn(async move {
            for _ in 0..200 {
                let (tag, pending) = c.allocate().await.unwrap();
                tx.send(tag).unwrap();
                assert_eq!(pending.await, Ok(tag.0 * 3));
            }
        }));
    }
    drop(replies_tx);
    for client in clients {
        tokio::time::timeout(Duration::from_secs(20), client)
            .await
            .expect("no client hangs")
            .unwrap();
    }
    reader.await.unwrap();
    assert_eq!(c.orphans(), 0);
    assert_eq!(c.in_flight(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fail_all_racing_allocations_on_other_threads_strands_no_request() {
    // Tasks on both workers allocate as fast as they can while fail_all runs on the test's
    // thread. An allocation that took its slot just as fail_all went by must either see the
    // failure or be failed by it: every request made resolves to the failure, none hangs.
    // A race test: with the allocation's check after its slot removed, about one run in four
    // strands a request; a sound ordering never does.
    for round in 0..1000 {
        let c = tagged(64);
        let clients: Vec<_> = (0..2)
            .map(|_| {
                let c = c.clone();
                tokio::spawn(async move {
                    let mut waiting = Vec::new();
                    while waiting.len() < 30 {
                        match c.allocate().await {
                            Ok((_, pending)) => waiting.push(pending),
                            Err(e) => {
                                assert_eq!(e, Unanswered::Failed("down"));
                                break;
                            }
                        }
                        tokio::task::yield_now().await;
                    }
                    for pending in waiting {
                        assert_eq!(pending.await, Err(Unanswered::Failed("down")));
                    }
                })
            })
            .collect();
        for _ in 0..round % 8 {
            tokio::task::yield_now().await;
        }
        c.fail_all("down");
        for client in clients {
            tokio::time::timeout(Duration::from_secs(5), client)
                .await
                .unwrap_or_else(|_| panic!("round {round}: a request was stranded"))
                .unwrap();
        }
        assert_eq!(c.in_flight(), 0, "round {round}");
    }
}

#[derive(Debug, Clone)]
enum Op {
    Allocate,
    /// Reply to the n-th allocated tag (mod how many were allocated).
    Reply(usize),
    /// Reply to a tag never issued.
    Bogus(u64),
    /// Drop the n-th live pending.
    Cancel(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => Just(Op::Allocate),
        3 => any::<usize>().prop_map(Op::Reply),
        1 => (1_000_000u64..).prop_map(Op::Bogus),
        1 => any::<usize>().prop_map(Op::Cancel),
    ]
}

proptest! {
    /// Orphan counts are exact: a reply is an orphan exactly when its tag was never issued,
    /// already answered, or cancelled; everything else reaches its waiter with its value.
    #[test]
    fn orphan_counts_are_exact(ops in proptest::collection::vec(op(), 1..100)) {
        let c = tagged(1000);
        let mut issued: Vec<Tag> = Vec::new();
        let mut live: HashMap<Tag, Pending<u64, &'static str>> = HashMap::new();
        let mut expected_orphans = 0u64;
        for op in ops {
            match op {
                Op::Allocate => {
                    let (tag, pending) = allocate_now(&c);
                    issued.push(tag);
                    live.insert(tag, pending);
                }
                Op::Reply(n) if !issued.is_empty() => {
                    let tag = issued[n % issued.len()];
                    let result = c.correlate(tag, tag.0);
                    match live.remove(&tag) {
                        Some(pending) => {
                            prop_assert!(result.is_ok());
                            prop_assert_eq!(pending.now_or_never(), Some(Ok(tag.0)));
                        }
                        None => {
                            expected_orphans += 1;
                            prop_assert_eq!(result.map_err(|o| o.kind), Err(OrphanKind::Finished));
                        }
                    }
                }
                Op::Reply(_) => {}
                Op::Bogus(tag) => {
                    expected_orphans += 1;
                    prop_assert_eq!(c.correlate(Tag(tag), 0).map_err(|o| o.kind), Err(OrphanKind::Unknown));
                }
                Op::Cancel(n) if !live.is_empty() => {
                    let mut tags: Vec<Tag> = live.keys().copied().collect();
                    tags.sort();
                    live.remove(&tags[n % tags.len()]);
                }
                Op::Cancel(_) => {}
            }
            prop_assert_eq!(c.orphans(), expected_orphans);
            prop_assert_eq!(c.in_flight(), live.len());
        }
    }

    /// After fail_all, no waiter stays pending: every live request resolves to the failure,
    /// whatever happened before.
    #[test]
    fn after_fail_all_no_waiter_stays_pending(ops in proptest::collection::vec(op(), 0..60)) {
        let c = tagged(1000);
        let mut issued = Vec::new();
        let mut live: HashMap<Tag, Pending<u64, &'static str>> = HashMap::new();
        for op in ops {
            match op {
                Op::Allocate => {
                    let (tag, pending) = allocate_now(&c);
                    issued.push(tag);
                    live.insert(tag, pending);
                }
                Op::Reply(n) if !issued.is_empty() => {
                    let tag = issued[n % issued.len()];
                    if c.correlate(tag, 1).is_ok() {
                        let pending = live.remove(&tag).expect("delivered to a live waiter");
                        prop_assert_eq!(pending.now_or_never(), Some(Ok(1)));
                    }
                }
                Op::Cancel(n) if !live.is_empty() => {
                    let mut tags: Vec<Tag> = live.keys().copied().collect();
                    tags.sort();
                    live.remove(&tags[n % tags.len()]);
                }
                _ => {}
            }
        }
        let waiting = live.len();
        prop_assert_eq!(c.fail_all("down"), waiting);
        for (_, pending) in live {
            prop_assert_eq!(pending.now_or_never(), Some(Err(Unanswered::Failed("down"))));
        }
        prop_assert_eq!(c.in_flight(), 0);
    }
}

#[tokio::test]
async fn a_cancelled_allocation_does_not_swallow_the_wakeup_of_another() {
    let c = tagged(1);
    let (tag, pending) = allocate_now(&c);
    let cancelled = tokio::spawn({
        let c = c.clone();
        async move { c.allocate().await.map(|(tag, _)| tag) }
    });
    let patient = tokio::spawn({
        let c = c.clone();
        async move { c.allocate().await.map(|(tag, _)| tag) }
    });
    tokio::task::yield_now().await;
    cancelled.abort();
    let _ = cancelled.await;
    c.correlate(tag, 1).unwrap();
    assert_eq!(pending.await, Ok(1));
    let got = tokio::time::timeout(Duration::from_secs(5), patient)
        .await
        .expect("the remaining waiter gets the freed slot")
        .unwrap();
    assert_eq!(got, Ok(Tag(3)));
}

#[tokio::test]
async fn a_caller_that_arrives_while_others_wait_does_not_overtake_them() {
    let c = tagged(1);
    let (a, pa) = allocate_now(&c);
    // B waits for the one slot.
    let mut b = Box::pin(c.allocate());
    assert!(futures_util::poll!(b.as_mut()).is_pending());
    // A's reply frees the slot: it is B's, not the newcomer C's.
    c.correlate(a, 1).unwrap();
    assert_eq!(pa.await, Ok(1));
    assert!(c.allocate().now_or_never().is_none(), "C overtook B");
    let (tag, _pb) = b.await.unwrap();
    assert_eq!(tag, Tag(3));
}

#[test]
fn any_max_in_flight_makes_a_correlator_without_panicking() {
    for max in [0, 1, 1 << 20, usize::MAX / 2 + 1, usize::MAX] {
        let c: Link = Correlator::new(Config {
            order: Order::Tagged,
            max_in_flight: max,
            first_tag: 1,
        });
        let (tag, pending) = allocate_now(&c);
        c.correlate(tag, 5).unwrap();
        assert_eq!(pending.now_or_never(), Some(Ok(5)));
    }
}

#[test]
fn fifo_a_request_cancelled_before_it_was_sent_takes_no_turn() {
    let c: Link = Correlator::new(Config {
        order: Order::Fifo,
        max_in_flight: 8,
        first_tag: 1,
    });
    let (_, cancelled) = allocate_now(&c);
    let (b, second) = allocate_now(&c);
    // The first is cancelled before the writer got to it; only the second goes out.
    drop(cancelled);
    c.sent(b);
    c.correlate_next(20).unwrap();
    assert_eq!(
        second.now_or_never(),
        Some(Ok(20)),
        "the reply goes to the request sent"
    );
    assert_eq!(c.orphans(), 0);
}

#[test]
fn tags_never_wrap_past_the_last_one() {
    let c: Link = Correlator::new(Config {
        order: Order::Tagged,
        max_in_flight: 8,
        first_tag: u64::MAX - 3,
    });
    let mut issued = Vec::new();
    for _ in 0..3 {
        let (tag, pending) = allocate_now(&c);
        c.correlate(tag, 1).unwrap();
        assert_eq!(pending.now_or_never(), Some(Ok(1)));
        issued.push(tag.0);
    }
    assert_eq!(issued, [u64::MAX - 3, u64::MAX - 2, u64::MAX - 1]);
    // No tag 0 (nor any other tag again): the correlator is spent, and says so.
    for _ in 0..3 {
        match c.allocate().now_or_never() {
            Some(Err(Unanswered::Exhausted)) => {}
            Some(Ok((tag, _))) => panic!("{tag} issued after the last tag"),
            other => panic!(
                "expected Exhausted, got {:?}",
                other.map(|r| r.map(|(t, _)| t))
            ),
        }
    }
    assert_eq!(c.in_flight(), 0, "a refused allocate holds nothing");
}
