//! kernel-flows: a `Series` against the same stages as tasks joined by tokio mpsc (the
//! hand-wired way), and the `Correlator` against a locked map of oneshot senders.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::{BufMut, Bytes, BytesMut};
use futures_util::stream;
use kernel_flows::{Channel, Config, Correlator, Exit, Series, Tag, map};
use tokio::sync::{mpsc, oneshot};

use super::{Layer, Pair, Side, timed};

/// Items a batch moves.
const ITEMS: usize = 2_000;
/// Round trips each of two tasks makes a batch.
const ROUND_TRIPS: u64 = 2_000;

pub const PAIRS: &[Pair] = &[
    Pair {
        layer: Layer::Flows,
        workload: "3 stages over 256-byte items",
        unit: "items",
        baseline: Side {
            name: "tasks joined by mpsc",
            run: |budget| Box::pin(timed(budget, mpsc_tasks)),
        },
        strata: Side {
            name: "Series in one task",
            run: |budget| Box::pin(timed(budget, series)),
        },
    },
    Pair {
        layer: Layer::Flows,
        workload: "correlated round trips, 2 tasks interleaved",
        unit: "round trips",
        baseline: Side {
            name: "Mutex<HashMap<oneshot>>",
            run: |budget| Box::pin(timed(budget, locked_map)),
        },
        strata: Side {
            name: "Correlator",
            run: |budget| Box::pin(timed(budget, correlator)),
        },
    },
];

fn payloads() -> impl Iterator<Item = Bytes> {
    (0..ITEMS).map(|i| Bytes::from(vec![(i % 251) as u8; 256]))
}

fn mask(payload: Bytes) -> Bytes {
    let mut out = BytesMut::with_capacity(payload.len());
    out.extend(payload.iter().map(|b| b ^ 0x5a));
    out.freeze()
}

fn checksum(payload: Bytes) -> (Bytes, u32) {
    let sum = payload.iter().fold(0x811c_9dc5u32, |h, b| {
        (h ^ u32::from(*b)).wrapping_mul(0x0100_0193)
    });
    (payload, sum)
}

fn frame((payload, sum): (Bytes, u32)) -> Bytes {
    let mut out = BytesMut::with_capacity(payload.len() + 8);
    out.put_u32(payload.len() as u32);
    out.put_slice(&payload);
    out.put_u32(sum);
    out.freeze()
}

async fn series() -> Result<u64, String> {
    let chain = map::<_, _, _, Infallible>(mask)
        .then(map(checksum))
        .then(map(frame));
    let (exit, stats) = Series::new(stream::iter(payloads()), chain, Vec::with_capacity(ITEMS))
        .run()
        .await;
    match exit {
        Exit::Completed if stats.items_out == ITEMS as u64 => Ok(stats.items_out),
        exit => Err(format!("the series ended {exit} after {stats}")),
    }
}

async fn mpsc_tasks() -> Result<u64, String> {
    let (tx0, mut rx0) = mpsc::channel::<Bytes>(64);
    let (tx1, mut rx1) = mpsc::channel::<(Bytes, u32)>(64);
    let (tx2, mut rx2) = mpsc::channel::<Bytes>(64);
    let feed = tokio::spawn(async move {
        for item in payloads() {
            if tx0.send(item).await.is_err() {
                break;
            }
        }
    });
    let first = tokio::spawn(async move {
        while let Some(x) = rx0.recv().await {
            if tx1.send(checksum(mask(x))).await.is_err() {
                break;
            }
        }
    });
    let second = tokio::spawn(async move {
        while let Some(x) = rx1.recv().await {
            if tx2.send(frame(x)).await.is_err() {
                break;
            }
        }
    });
    let mut out = Vec::with_capacity(ITEMS);
    while let Some(x) = rx2.recv().await {
        out.push(x);
    }
    for task in [feed, first, second] {
        task.await
            .map_err(|e| format!("a stage task failed: {e}"))?;
    }
    Ok(out.len() as u64)
}

/// The baseline: a mutex-guarded map of oneshot senders and a tag counter.
#[derive(Default)]
struct LockedMap {
    next: AtomicU64,
    waiting: Mutex<HashMap<u64, oneshot::Sender<u64>>>,
}

async fn locked_map() -> Result<u64, String> {
    let map = Arc::new(LockedMap::default());
    let tasks: Vec<_> = (0..2)
        .map(|_| {
            let map = Arc::clone(&map);
            tokio::spawn(async move {
                for _ in 0..ROUND_TRIPS {
                    let tag = map.next.fetch_add(1, Ordering::Relaxed);
                    let (tx, rx) = oneshot::channel();
                    map.waiting.lock().map_err(|_| "poisoned")?.insert(tag, tx);
                    let tx = map.waiting.lock().map_err(|_| "poisoned")?.remove(&tag);
                    tx.ok_or("no waiter")?
                        .send(tag)
                        .map_err(|_| "receiver gone")?;
                    if rx.await != Ok(tag) {
                        return Err("a wrong reply");
                    }
                }
                Ok(())
            })
        })
        .collect();
    for task in tasks {
        task.await.map_err(|e| e.to_string())??;
    }
    Ok(2 * ROUND_TRIPS)
}

async fn correlator() -> Result<u64, String> {
    let correlator: Correlator<u64, ()> = Correlator::new(Config::default());
    let tasks: Vec<_> = (0..2)
        .map(|_| {
            let correlator = correlator.clone();
            tokio::spawn(async move {
                for _ in 0..ROUND_TRIPS {
                    let (Tag(tag), pending) =
                        correlator.allocate().await.map_err(|e| format!("{e:?}"))?;
                    correlator
                        .correlate(Tag(tag), tag)
                        .map_err(|o| format!("an orphan: {o:?}"))?;
                    if pending.await != Ok(tag) {
                        return Err("a wrong reply".to_owned());
                    }
                }
                Ok(())
            })
        })
        .collect();
    for task in tasks {
        task.await.map_err(|e| e.to_string())??;
    }
    Ok(2 * ROUND_TRIPS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn both_sides_of_each_pair_do_the_whole_batch() {
        assert_eq!(series().await, Ok(ITEMS as u64));
        assert_eq!(mpsc_tasks().await, Ok(ITEMS as u64));
        assert_eq!(locked_map().await, Ok(2 * ROUND_TRIPS));
        assert_eq!(correlator().await, Ok(2 * ROUND_TRIPS));
    }
}
