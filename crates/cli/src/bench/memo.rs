//! memogram: memos of one gram over loopback UDP against bare datagrams of the same size,
//! one a syscall; a 1 MB memo cut into grams and fused again, in memory, against copying
//! its bytes once.
//!
//! The signed comparison (against ed25519-dalek alone) is in `benches/memogram.rs` only: built
//! into this binary, a bare sign-and-verify loop ran 40% slower in its own function than the
//! same lines in a test (61 against 87 µs a gram, every round; the cause was not found), so
//! its ratio would have said more about that than about memogram.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use memogram::{Config, Encoding, Mid, Reassembly, Receiver, Sender, Shape, segment};
use tokio::net::UdpSocket;
use tokio::task::JoinHandle;

use super::{Clock, Layer, Pair, Sample, Side, memcpy, timed};

/// A gram's size: hio's.
const GRAM: usize = 1240;
/// A one-gram memo's body: a gram less its header.
const ONE_GRAM_MEMO: usize = GRAM - 32;
/// Datagrams a sender may be ahead of its receiver: well inside the default receive buffer.
const WINDOW: u64 = 64;
/// Datagrams (or memos) a batch sends.
const BATCH: u64 = 1024;
/// The memo cut and fused in memory.
const MEMO: usize = 1_000_000;
/// How long a batch waits for the receiver before calling its datagrams lost.
const LOST_AFTER: Duration = Duration::from_secs(2);

pub const PAIRS: &[Pair] = &[
    Pair {
        layer: Layer::Memo,
        workload: "one-gram memos over loopback UDP",
        unit: "memos",
        baseline: Side {
            name: "bare datagrams",
            run: |budget| Box::pin(datagrams(budget)),
        },
        strata: Side {
            name: "send_all(), 64 at a time",
            run: |budget| Box::pin(memos(budget)),
        },
    },
    Pair {
        layer: Layer::Memo,
        workload: "1 MB memo cut into grams and fused, in memory",
        unit: "B",
        baseline: Side {
            name: "memcpy",
            run: |budget| Box::pin(memcpy(budget, vec![0x5a; MEMO], MEMO as u64)),
        },
        strata: Side {
            name: "segment + Reassembly",
            run: |budget| Box::pin(timed(budget, || async { cut_and_fuse() })),
        },
    },
];

/// What the receiving side has taken, for the sender's window.
#[derive(Default)]
struct Taken(AtomicU64);

impl Taken {
    /// Waits until fewer than `window` of `sent` are untaken; an error once nothing has
    /// arrived for [`LOST_AFTER`].
    async fn wait_below(&self, sent: u64, window: u64) -> Result<(), String> {
        let (mut seen, mut since) = (self.0.load(Ordering::Acquire), Instant::now());
        while sent >= self.0.load(Ordering::Acquire) + window {
            let now = self.0.load(Ordering::Acquire);
            if now != seen {
                (seen, since) = (now, Instant::now());
            } else if since.elapsed() > LOST_AFTER {
                return Err(format!("{} datagrams were lost", sent - now));
            }
            tokio::task::yield_now().await;
        }
        Ok(())
    }
}

async fn udp_pair() -> Result<(UdpSocket, UdpSocket), String> {
    let bind = || UdpSocket::bind("127.0.0.1:0");
    let (a, b) = tokio::join!(bind(), bind());
    Ok((a.map_err(|e| e.to_string())?, b.map_err(|e| e.to_string())?))
}

/// Sends batches of [`BATCH`] by `send` (given how many are sent so far) until the clock
/// stops, each batch waiting until the receiver has taken it all.
async fn windowed<F, Fut>(
    budget: Duration,
    taken: &Taken,
    step: u64,
    mut send: F,
) -> Result<Sample, String>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let clock = Clock::start(budget);
    let mut sent = 0;
    while clock.running() {
        for _ in 0..BATCH / step {
            taken.wait_below(sent + step - 1, WINDOW).await?;
            send().await?;
            sent += step;
        }
        taken.wait_below(sent + WINDOW - 1, WINDOW).await?;
    }
    Ok(clock.sample(sent))
}

async fn datagrams(budget: Duration) -> Result<Sample, String> {
    let (a, b) = udp_pair().await?;
    let to = b.local_addr().map_err(|e| e.to_string())?;
    let taken = Arc::new(Taken::default());
    let receiving: JoinHandle<()> = tokio::spawn({
        let taken = Arc::clone(&taken);
        async move {
            let mut buf = vec![0; 65536];
            while let Ok((n, _)) = b.recv_from(&mut buf).await {
                if n == GRAM {
                    taken.0.fetch_add(1, Ordering::Release);
                }
            }
        }
    });
    let datagram = vec![0x5a; GRAM];
    let sample = windowed(budget, &taken, 1, || async {
        match a.send_to(&datagram, to).await {
            Ok(n) if n == GRAM => Ok(()),
            Ok(n) => Err(format!("a datagram went out as {n} bytes")),
            Err(e) => Err(e.to_string()),
        }
    })
    .await;
    receiving.abort();
    sample
}

async fn memos(budget: Duration) -> Result<Sample, String> {
    let loopback = "127.0.0.1:0".parse().map_err(|_| "no loopback address")?;
    let a = memogram::bind_udp(loopback)
        .await
        .map_err(|e| e.to_string())?;
    let b = memogram::bind_udp(loopback)
        .await
        .map_err(|e| e.to_string())?;
    let to = b.local_addr().map_err(|e| e.to_string())?;
    let taken = Arc::new(Taken::default());
    let receiving: JoinHandle<()> = tokio::spawn({
        let taken = Arc::clone(&taken);
        async move {
            let mut receiver = Receiver::new(Arc::new(b), Config::default());
            while let Ok(memo) = receiver.recv().await {
                if memo.body().len() == ONE_GRAM_MEMO {
                    taken.0.fetch_add(1, Ordering::Release);
                }
            }
        }
    });
    let sender = Sender::new(Arc::new(a), Config::default()).size(GRAM);
    let memo = vec![0x5a; ONE_GRAM_MEMO];
    let sample = windowed(budget, &taken, 64, || async {
        let memos = (0..64).map(|_| memo.as_slice());
        sender
            .send_all(memos, &to)
            .await
            .map(drop)
            .map_err(|e| e.to_string())
    })
    .await;
    receiving.abort();
    sample
}

/// The memo cut into 1240-byte grams and fused again: its bytes.
fn cut_and_fuse() -> Result<u64, String> {
    let config = Config::default();
    let memo = vec![0x5a; MEMO];
    let shape = Shape {
        size: GRAM,
        encoding: Encoding::Base64,
    };
    let grams = segment(&memo, Mid::fresh(), &shape, None, &config).map_err(|e| e.to_string())?;
    let mut reassembly = Reassembly::new(config);
    let now = Instant::now();
    let mut whole = None;
    for gram in grams {
        whole = reassembly
            .receive(gram, 0u8, now)
            .map_err(|e| e.to_string())?
            .or(whole);
    }
    match whole {
        Some(m) if m.body().len() == MEMO => Ok(MEMO as u64),
        _ => Err("the memo did not come whole".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_memo_comes_whole_out_of_its_grams() {
        assert_eq!(cut_and_fuse(), Ok(MEMO as u64));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn both_udp_sides_deliver_whole_batches() {
        let raw = datagrams(Duration::from_millis(20)).await.unwrap();
        let ours = memos(Duration::from_millis(20)).await.unwrap();
        for sample in [raw, ours] {
            assert!(sample.units >= BATCH, "{sample:?}");
            assert_eq!(sample.units % BATCH, 0, "{sample:?}");
        }
    }
}
