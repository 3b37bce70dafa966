//! kernel-flows' correlator in FIFO mode, driven by any sequence of allocations, sends,
//! cancels and replies: the n-th reply goes to the n-th request sent, a request cancelled
//! after it was sent keeps its turn (its reply is an orphan), and one cancelled before it was
//! sent takes none.

#![no_main]

use std::collections::VecDeque;

use arbitrary::Arbitrary;
use futures_util::FutureExt;
use kernel_flows::{Config, Correlator, Order, Pending, Tag};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
enum Op {
    Allocate,
    /// The `pick`th request not yet sent goes on the wire.
    Send {
        pick: u8,
    },
    /// Drop the `pick`th request held (sent or not).
    Cancel {
        pick: u8,
    },
    /// The next reply comes.
    Reply {
        value: u32,
    },
}

struct Held<'a> {
    tag: Tag,
    pending: Pending<'a, u32, u8>,
    sent: bool,
}

fuzz_target!(|ops: Vec<Op>| {
    let c: Correlator<u32, u8> = Correlator::new(Config {
        order: Order::Fifo,
        max_in_flight: 6,
        first_tag: 1,
    });
    let mut held: Vec<Held<'_>> = Vec::new();
    // The tags sent, in wire order, whose replies have not come yet.
    let mut due: VecDeque<Tag> = VecDeque::new();
    for op in ops.into_iter().take(512) {
        match op {
            Op::Allocate => {
                if let Some(Ok((tag, pending))) = c.allocate().now_or_never() {
                    held.push(Held {
                        tag,
                        pending,
                        sent: false,
                    });
                }
            }
            Op::Send { pick } => {
                let unsent: Vec<usize> = (0..held.len()).filter(|&i| !held[i].sent).collect();
                if let Some(&i) = unsent.get(usize::from(pick) % unsent.len().max(1)) {
                    held[i].sent = true;
                    c.sent(held[i].tag);
                    due.push_back(held[i].tag);
                }
            }
            Op::Cancel { pick } => {
                if !held.is_empty() {
                    held.remove(usize::from(pick) % held.len());
                }
            }
            Op::Reply { value } => {
                let expected = due.pop_front();
                let delivered = c.correlate_next(value);
                match expected {
                    // Nobody's turn: an orphan.
                    None => assert!(delivered.is_err(), "a reply with nothing sent was taken"),
                    Some(tag) => match held.iter().position(|h| h.tag == tag) {
                        // Its request waits: it gets exactly this reply.
                        Some(i) => {
                            assert!(delivered.is_ok(), "{tag}'s reply was lost");
                            let mut h = held.remove(i);
                            let got = (&mut h.pending).now_or_never();
                            assert_eq!(got, Some(Ok(value)), "{tag}");
                        }
                        // Cancelled after it was sent: it kept its turn, the reply is an orphan.
                        None => {
                            let orphan = delivered.expect_err("a cancelled request's reply");
                            assert_eq!(orphan.tag, Some(tag));
                        }
                    },
                }
            }
        }
        // Nobody resolves without a reply of its own.
        for h in &mut held {
            assert!(
                (&mut h.pending).now_or_never().is_none(),
                "{} resolved early",
                h.tag
            );
        }
    }
});
