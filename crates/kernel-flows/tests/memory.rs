//! What a correlator holds, measured: a counting global allocator sees every byte this test
//! binary has on the heap. The tests run one at a time (the count is the process's).
//!
//! `cargo test -p kernel-flows --test memory -- --nocapture` prints the figures.

use std::alloc::System;
use std::sync::Mutex;

use cap::Cap;
use kernel_flows::{Config, Correlator, Pending, Tag};

#[global_allocator]
static HEAP: Cap<System> = Cap::new(System, usize::MAX);

/// One test at a time: the count is the whole process's.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
}

/// The largest bound there is: a table made at once for it would be 131 072 slots, megabytes.
fn widest() -> Config {
    Config {
        max_in_flight: 1 << 16,
        ..Config::default()
    }
}

#[test]
fn a_correlator_that_makes_no_request_holds_about_a_kilobyte_whatever_its_bound() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let before = HEAP.allocated();
    let correlator: Correlator<u64, ()> = Correlator::new(widest());
    let held = HEAP.allocated() - before;
    println!("an idle correlator for 65 536 in flight: {held} bytes");
    assert!(held <= 2048, "an idle correlator holds {held} bytes");
    drop(correlator);
}

#[test]
fn the_table_grows_with_the_requests_in_flight_not_with_the_bound() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    const IN_FLIGHT: usize = 1000;
    runtime().block_on(async {
        let before = HEAP.allocated();
        let correlator: Correlator<u64, ()> = Correlator::new(widest());
        let mut pending: Vec<(Tag, Pending<'_, u64, ()>)> = Vec::with_capacity(IN_FLIGHT);
        let list = std::mem::size_of_val(pending.spare_capacity_mut());
        for _ in 0..IN_FLIGHT {
            pending.push(correlator.allocate().await.unwrap());
        }
        let held = HEAP.allocated() - before - list;
        let per_request = held / IN_FLIGHT;
        println!("{IN_FLIGHT} requests in flight: {held} bytes, {per_request} a request");
        // Twice the requests in flight, rounded up to a power of two: 2 048 slots of a few
        // dozen bytes; a table made for the bound would be 64 times as large.
        assert!(
            per_request <= 160,
            "{per_request} bytes a request in flight"
        );

        // Every request is found, whatever size the table had when its tag was issued.
        for (tag, _) in pending.iter().rev() {
            correlator.correlate(*tag, tag.0).unwrap();
        }
        for (tag, reply) in pending.drain(..) {
            assert_eq!(reply.await, Ok(tag.0));
        }
        assert_eq!(correlator.in_flight(), 0);
        assert_eq!(correlator.orphans(), 0);
    });
}
