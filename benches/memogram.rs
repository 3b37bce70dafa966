//! memogram against its baselines, in one run:
//! - `fuse_1MB`: a 1 MB memo cut into 1240-byte grams and fused again in memory, unsigned
//!   (target: at least 1 GB/s) and signed, against ed25519-dalek signing and verifying the
//!   same number of 1240-byte messages directly (target: at least 0.8x);
//! - `udp_1240B`: memos of one 1240-byte gram over loopback UDP, sender and receiver in two
//!   tasks, one `send` each and through `send_all` 64 at a time, against a raw loop that
//!   sends and receives 1240-byte datagrams one a syscall over plain sockets (target: at
//!   least 1.2x). All keep at most 256 datagrams unread, so that none loses any to a full
//!   receive buffer;
//! - `udp_1MB`: memos of 1 MB over loopback UDP in 1240-byte grams, one memo at a time,
//!   unsigned and signed, against `raw_batched`: the same megabyte sent by GSO and received
//!   by recvmmsg with GRO through `quinn-udp`, without memogram;
//! - `hio_reference`: the real hio 0.7.20 sending to itself over loopback UDP, memos of one
//!   1240-byte gram and of 1 MB, timed by `tests/peers/hio_peer.py bench` (the same windows
//!   as ours). It runs when hio is installed (`scripts/peers`, or `$STRATA_HIO_PYTHON`), and
//!   says it was skipped otherwise.
//!
//! `cargo bench --bench memogram -- --warm-up-time 1 --measurement-time 5`

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use ed25519_dalek::{Signer as _, SigningKey};
use strata::memogram::{
    Config, Encoding, Mid, Reassembly, Receiver, Seed, Sender, Shape, Signer, UdpLink, bind_udp,
    segment,
};
use tokio::runtime::Runtime;

const MEMO: usize = 1_000_000;
const GRAM: usize = 1240;
/// Memos of one gram a sender may be ahead of its receiver.
const WINDOW: u64 = 256;
/// Memos of one 1240-byte gram, one `send` each.
const ONE_GRAM: Run = Run {
    len: GRAM - 32,
    window: WINDOW,
    batch: 1,
    signed: false,
};
/// Memos of 1 MB, one at a time.
const ONE_MB: Run = Run {
    len: MEMO,
    window: 1,
    batch: 1,
    signed: false,
};

fn fuse(c: &mut Criterion) {
    let memo = vec![0x5a; MEMO];
    let config = Config::default();
    let shape = Shape {
        size: GRAM,
        encoding: Encoding::Base64,
    };
    let signer = Signer::from_seed(&Seed::new([7; 32]));
    let now = Instant::now();
    let mut group = c.benchmark_group("memogram/fuse_1MB");
    group.throughput(Throughput::Bytes(MEMO as u64));
    for (name, signer) in [("unsigned", None), ("signed", Some(&signer))] {
        group.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter(|| {
                let grams = segment(&memo, Mid::fresh(), &shape, signer, &config).unwrap();
                let mut reassembly = Reassembly::new(config.clone());
                let mut whole = None;
                for gram in grams {
                    whole = reassembly.receive(gram, 0u8, now).unwrap().or(whole);
                }
                assert_eq!(whole.map(|m| m.body().len()), Some(MEMO));
            })
        });
    }
    // The same number of grams as the signed memo, signed and verified with nothing else.
    let grams = segment(&memo, Mid::fresh(), &shape, Some(&signer), &config)
        .unwrap()
        .len();
    let key = SigningKey::from_bytes(&[7; 32]);
    let verifying = key.verifying_key();
    let message = vec![0x5a; GRAM];
    group.bench_function(BenchmarkId::from_parameter("raw_ed25519"), |b| {
        b.iter(|| {
            for _ in 0..grams {
                let signature = key.sign(black_box(&message));
                verifying
                    .verify_strict(black_box(&message), &signature)
                    .unwrap();
            }
        })
    });
    group.finish();
}

/// How many datagrams the receiving side has taken, for the sender's window.
#[derive(Default)]
struct Taken(AtomicU64);

impl Taken {
    async fn wait_below(&self, sent: u64, window: u64) {
        while sent >= self.0.load(Ordering::Acquire) + window {
            tokio::task::yield_now().await;
        }
    }
}

fn udp(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("memogram/udp_1240B");
    group.throughput(Throughput::Elements(1));
    group.bench_function(BenchmarkId::from_parameter("raw_datagrams"), |b| {
        b.iter_custom(|iters| raw_datagrams(&rt, iters))
    });
    group.bench_function(BenchmarkId::from_parameter("memos"), |b| {
        b.iter_custom(|iters| memos(&rt, iters, ONE_GRAM))
    });
    group.bench_function(BenchmarkId::from_parameter("memos_send_all"), |b| {
        let run = Run {
            batch: 64,
            ..ONE_GRAM
        };
        b.iter_custom(|iters| memos(&rt, iters, run))
    });
    group.finish();
    let mut group = c.benchmark_group("memogram/udp_1MB");
    // About 2 ms a memo: 20 samples fit the measurement time.
    group.sample_size(20);
    group.throughput(Throughput::Bytes(MEMO as u64));
    group.bench_function(BenchmarkId::from_parameter("raw_batched"), |b| {
        b.iter_custom(|iters| raw_batched(&rt, iters))
    });
    group.bench_function(BenchmarkId::from_parameter("memos"), |b| {
        b.iter_custom(|iters| memos(&rt, iters, ONE_MB))
    });
    group.bench_function(BenchmarkId::from_parameter("signed_memos"), |b| {
        let run = Run {
            signed: true,
            ..ONE_MB
        };
        b.iter_custom(|iters| memos(&rt, iters, run))
    });
    group.finish();
}

/// The batched baseline: 1 MB in 1240-byte datagrams, sent by GSO (up to 52 a `sendmsg`,
/// 64 KiB) and received by recvmmsg with GRO, straight through `quinn-udp`, with no
/// memogram in between; one megabyte at a time, as the memos go.
fn raw_batched(rt: &Runtime, iters: u64) -> Duration {
    use quinn_udp::{RecvMeta, Transmit, UdpSockRef, UdpSocketState};
    use tokio::io::Interest;
    rt.block_on(async {
        let (a, b) = plain_pair().await;
        let (sa, sb) = (
            UdpSocketState::new(UdpSockRef::from(&*a)).unwrap(),
            UdpSocketState::new(UdpSockRef::from(&*b)).unwrap(),
        );
        let to = b.local_addr().unwrap();
        let taken = Arc::new(Taken::default());
        let started = Instant::now();
        let receiving = tokio::spawn({
            let taken = Arc::clone(&taken);
            async move {
                let mut buf = vec![0u8; 4 * 65536];
                let mut bytes = 0u64;
                for i in 0..iters {
                    while bytes < (i + 1) * MEMO as u64 {
                        b.readable().await.unwrap();
                        let mut metas = [RecvMeta::default(); 4];
                        let mut slices: Vec<std::io::IoSliceMut<'_>> = buf
                            .chunks_mut(65536)
                            .map(std::io::IoSliceMut::new)
                            .collect();
                        match b.try_io(Interest::READABLE, || {
                            sb.recv(UdpSockRef::from(&*b), &mut slices, &mut metas)
                        }) {
                            Ok(n) => bytes += metas[..n].iter().map(|m| m.len as u64).sum::<u64>(),
                            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                            Err(e) => panic!("{e}"),
                        }
                    }
                    taken.0.store(i + 1, Ordering::Release);
                }
            }
        });
        let memo = vec![0x5a; MEMO];
        let per_send = (65_000 / GRAM).min(sa.max_gso_segments());
        for i in 0..iters {
            taken.wait_below(i, 1).await;
            for chunk in memo.chunks(per_send * GRAM) {
                let transmit = Transmit {
                    destination: to,
                    ecn: None,
                    contents: chunk,
                    segment_size: (chunk.len() > GRAM).then_some(GRAM),
                    src_ip: None,
                };
                a.async_io(Interest::WRITABLE, || {
                    sa.try_send(UdpSockRef::from(&*a), &transmit)
                })
                .await
                .unwrap();
            }
        }
        receiving.await.unwrap();
        started.elapsed()
    })
}

/// The Python with hio installed, when there is one.
fn hio_python() -> Option<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    std::env::var_os("STRATA_HIO_PYTHON")
        .map(PathBuf::from)
        .or_else(|| Some(root.join(".venv-hio/bin/python")))
        .filter(|python| python.exists())
}

/// hio sending `count` memos of `len` bytes to hio over loopback UDP, at most `window` ahead,
/// as timed by the peer script.
fn hio_to_hio(python: &Path, count: u64, len: usize, window: u64) -> Duration {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/hio_peer.py");
    let output = Command::new(python)
        .arg(script)
        .args(["bench", "--udp", "--count", &count.to_string()])
        .args([
            "--length",
            &len.to_string(),
            "--window",
            &window.to_string(),
        ])
        .output()
        .unwrap();
    assert!(output.status.success(), "hio_peer.py bench: {output:?}");
    let seconds: f64 = String::from_utf8(output.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    Duration::from_secs_f64(seconds)
}

fn hio_reference(c: &mut Criterion) {
    let Some(python) = hio_python() else {
        eprintln!("memogram/hio_reference skipped: hio is not installed (run scripts/peers)");
        return;
    };
    let mut group = c.benchmark_group("memogram/hio_reference");
    // Every sample starts a Python process; ten are enough for a reference figure.
    group.sample_size(10);
    group.throughput(Throughput::Elements(1));
    group.bench_function(BenchmarkId::from_parameter("udp_1240B"), |b| {
        b.iter_custom(|iters| hio_to_hio(&python, iters, GRAM - 32, WINDOW))
    });
    group.throughput(Throughput::Bytes(MEMO as u64));
    group.bench_function(BenchmarkId::from_parameter("udp_1MB"), |b| {
        b.iter_custom(|iters| hio_to_hio(&python, iters, MEMO, 1))
    });
    group.finish();
}

async fn socket_pair() -> (Arc<UdpLink>, Arc<UdpLink>) {
    let loopback = "127.0.0.1:0".parse().unwrap();
    let a = bind_udp(loopback).await.unwrap();
    let b = bind_udp(loopback).await.unwrap();
    (Arc::new(a), Arc::new(b))
}

/// Two plain UDP sockets on loopback, buffers raised as `bind_udp` raises them: the
/// baselines' sockets, without memogram's batching.
async fn plain_pair() -> (Arc<tokio::net::UdpSocket>, Arc<tokio::net::UdpSocket>) {
    let bind = || async {
        let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let raw = socket2::SockRef::from(&socket);
        raw.set_recv_buffer_size(strata::memogram::UDP_BUFFER)
            .unwrap();
        raw.set_send_buffer_size(strata::memogram::UDP_BUFFER)
            .unwrap();
        Arc::new(socket)
    };
    (bind().await, bind().await)
}

fn raw_datagrams(rt: &Runtime, iters: u64) -> Duration {
    rt.block_on(async {
        let (a, b) = plain_pair().await;
        let to = b.local_addr().unwrap();
        let taken = Arc::new(Taken::default());
        let started = Instant::now();
        let receiving = tokio::spawn({
            let taken = Arc::clone(&taken);
            async move {
                let mut buf = vec![0; 65536];
                for i in 0..iters {
                    let (n, _) = b.recv_from(&mut buf).await.unwrap();
                    assert_eq!(n, GRAM);
                    taken.0.store(i + 1, Ordering::Release);
                }
            }
        });
        let datagram = vec![0x5a; GRAM];
        for i in 0..iters {
            taken.wait_below(i, WINDOW).await;
            a.send_to(&datagram, to).await.unwrap();
        }
        receiving.await.unwrap();
        started.elapsed()
    })
}

/// How a memo run goes: memos of `len` bytes, at most `window` ahead of the receiver,
/// given to the sender `batch` at a time (one `send` each when 1, else `send_all`), signed
/// or not.
#[derive(Clone, Copy)]
struct Run {
    len: usize,
    window: u64,
    batch: u64,
    signed: bool,
}

/// `iters` memos from a `Sender` to a `Receiver` over loopback UDP, as `run` says.
fn memos(rt: &Runtime, iters: u64, run: Run) -> Duration {
    rt.block_on(async {
        let (a, b) = socket_pair().await;
        let to = b.local_addr().unwrap();
        let taken = Arc::new(Taken::default());
        let started = Instant::now();
        let receiving = tokio::spawn({
            let taken = Arc::clone(&taken);
            async move {
                let mut receiver = Receiver::new(b, Config::default());
                for i in 0..iters {
                    let memo = receiver.recv().await.unwrap();
                    assert_eq!(memo.body().len(), run.len);
                    assert_eq!(memo.vid().is_some(), run.signed);
                    taken.0.store(i + 1, Ordering::Release);
                }
            }
        });
        // hio's gram size, as the baselines use.
        let mut sender = Sender::new(a, Config::default()).size(GRAM);
        if run.signed {
            sender = sender.signer(Signer::from_seed(&Seed::new([7; 32])));
        }
        let memo = vec![0x5a; run.len];
        let mut sent = 0;
        while sent < iters {
            let n = run.batch.min(iters - sent);
            taken.wait_below(sent + n - 1, run.window).await;
            match n {
                1 => drop(sender.send(&memo, &to).await.unwrap()),
                n => drop(
                    sender
                        .send_all((0..n).map(|_| memo.as_slice()), &to)
                        .await
                        .unwrap(),
                ),
            }
            sent += n;
        }
        receiving.await.unwrap();
        started.elapsed()
    })
}

criterion_group! {
    name = benches;
    config = Criterion::default();
    targets = fuse, udp, hio_reference
}
criterion_main!(benches);
