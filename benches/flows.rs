//! kernel-flows against its baselines, measured side by side in one run.
//!
//! - `chain/*`: 3 stages of real per-item work (mask a 256-byte payload, checksum it, frame
//!   it) over 10 000 items: a `Series` driving the chain inside one task, the same work as a
//!   plain loop, and the same stages as three tasks joined by tokio mpsc channels.
//! - `correlator/*/N`: allocate-and-correlate round trips from N tasks (1 alone, 2
//!   contending), against a `Mutex<HashMap<u64, oneshot::Sender>>` doing the same.
//!
//! Run with `cargo bench --bench flows`.

#![allow(missing_docs)] // criterion_group! generates undocumented items

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::{BufMut, Bytes, BytesMut};
use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use futures_util::stream;
use strata::flows::{Channel, Config, Correlator, Exit, Series, Tag, map};
use tokio::sync::{mpsc, oneshot};

const ITEMS: usize = 10_000;
const PAYLOAD: usize = 256;
const ROUND_TRIPS: u64 = 5_000;

fn payloads() -> Vec<Bytes> {
    (0..ITEMS)
        .map(|i| Bytes::from(vec![(i % 251) as u8; PAYLOAD]))
        .collect()
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

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime")
}

fn chain(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("chain");
    group.throughput(Throughput::Elements(ITEMS as u64));

    group.bench_function("plain_loop", |b| {
        b.iter_batched(
            payloads,
            |items| {
                let mut out = Vec::with_capacity(ITEMS);
                for item in items {
                    out.push(frame(checksum(mask(item))));
                }
                out
            },
            BatchSize::LargeInput,
        )
    });

    group.bench_function("series_in_task", |b| {
        b.to_async(&rt).iter_batched(
            payloads,
            |items| async move {
                let chain = map::<_, _, _, Infallible>(mask)
                    .then(map(checksum))
                    .then(map(frame));
                let (exit, stats) =
                    Series::new(stream::iter(items), chain, Vec::with_capacity(ITEMS))
                        .run()
                        .await;
                assert!(matches!(exit, Exit::Completed));
                assert_eq!(stats.items_out, ITEMS as u64);
            },
            BatchSize::LargeInput,
        )
    });

    group.bench_function("mpsc_tasks", |b| {
        b.to_async(&rt).iter_batched(
            payloads,
            |items| async move {
                let (tx0, mut rx0) = mpsc::channel::<Bytes>(64);
                let (tx1, mut rx1) = mpsc::channel::<(Bytes, u32)>(64);
                let (tx2, mut rx2) = mpsc::channel::<Bytes>(64);
                let (tx3, mut rx3) = mpsc::channel::<Bytes>(64);
                let feed = tokio::spawn(async move {
                    for item in items {
                        if tx0.send(item).await.is_err() {
                            break;
                        }
                    }
                });
                let s1 = tokio::spawn(async move {
                    while let Some(x) = rx0.recv().await {
                        if tx1.send(checksum(mask(x))).await.is_err() {
                            break;
                        }
                    }
                });
                let s2 = tokio::spawn(async move {
                    while let Some(x) = rx1.recv().await {
                        if tx2.send(frame(x)).await.is_err() {
                            break;
                        }
                    }
                });
                let s3 = tokio::spawn(async move {
                    while let Some(x) = rx2.recv().await {
                        if tx3.send(x).await.is_err() {
                            break;
                        }
                    }
                });
                let mut out = Vec::with_capacity(ITEMS);
                while let Some(x) = rx3.recv().await {
                    out.push(x);
                }
                assert_eq!(out.len(), ITEMS);
                for task in [feed, s1, s2, s3] {
                    task.await.expect("stage task");
                }
            },
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

/// The baseline: a mutex-guarded map of oneshot senders and a tag counter.
#[derive(Default)]
struct MutexMap {
    next: AtomicU64,
    waiting: Mutex<HashMap<u64, oneshot::Sender<u64>>>,
}

fn correlator(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("correlator");
    for tasks in [1u64, 2] {
        group.throughput(Throughput::Elements(tasks * ROUND_TRIPS));

        group.bench_with_input(
            BenchmarkId::new("mutex_hashmap", tasks),
            &tasks,
            |b, &tasks| {
                b.to_async(&rt).iter(|| async move {
                    let map = Arc::new(MutexMap::default());
                    let handles: Vec<_> = (0..tasks)
                        .map(|_| {
                            let map = Arc::clone(&map);
                            tokio::spawn(async move {
                                for _ in 0..ROUND_TRIPS {
                                    let tag = map.next.fetch_add(1, Ordering::Relaxed);
                                    let (tx, rx) = oneshot::channel();
                                    map.waiting.lock().expect("lock").insert(tag, tx);
                                    let tx = map.waiting.lock().expect("lock").remove(&tag);
                                    tx.expect("waiting").send(tag).expect("receiver alive");
                                    assert_eq!(rx.await, Ok(tag));
                                }
                            })
                        })
                        .collect();
                    for handle in handles {
                        handle.await.expect("task");
                    }
                })
            },
        );

        group.bench_with_input(
            BenchmarkId::new("correlator", tasks),
            &tasks,
            |b, &tasks| {
                b.to_async(&rt).iter(|| async move {
                    let correlator: Correlator<u64, ()> = Correlator::new(Config::default());
                    let handles: Vec<_> = (0..tasks)
                        .map(|_| {
                            let correlator = correlator.clone();
                            tokio::spawn(async move {
                                for _ in 0..ROUND_TRIPS {
                                    let (Tag(tag), pending) =
                                        correlator.allocate().await.expect("open");
                                    correlator.correlate(Tag(tag), tag).expect("waiting");
                                    assert_eq!(pending.await, Ok(tag));
                                }
                            })
                        })
                        .collect();
                    for handle in handles {
                        handle.await.expect("task");
                    }
                })
            },
        );
    }
    group.finish();
}

criterion_group!(benches, chain, correlator);
criterion_main!(benches);
