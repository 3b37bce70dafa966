//! rpc-record against its baselines, in one run:
//! - `decode_64KiB`: reading 16 single-fragment records of 64 KiB into a buffer and decoding
//!   them (each record a slice of the buffer, no copy), against the read alone, i.e. a
//!   memcpy of the same bytes into a reused buffer (target: at least 0.5x);
//! - `scan_44B`: the decoder over 44-byte records with a rule that drops them (header
//!   parsed, admission asked, payload skipped), against a hand-written loop that reads each
//!   u32 mark, masks it and skips (target: at least 100 M records/s);
//! - `null_calls`: NULL calls over one loopback TCP connection, 16 in flight, against the
//!   ping server (`strata rpc serve`'s) and against rpcbind when one answers on
//!   127.0.0.1:111 (target: at least 3x rpcbind). Run as root with rpcbind installed and
//!   none running, the bench starts one on loopback (`tests/peers/rpcbind_loopback.py`).
//!
//! `cargo bench --bench rpc_record -- --warm-up-time 1 --measurement-time 5`

use std::collections::VecDeque;
use std::future::Future;
use std::hint::black_box;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use futures_util::poll;
use strata::rpc_record::{
    AcceptAll, Client, Config, Fragment, Program, Record, RecordDecoder, RecordStream, Rule,
    Service, encode_record, serve_stream,
};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Runtime;

/// `count` records of `len` bytes, one fragment each.
fn records(count: usize, len: usize) -> Vec<u8> {
    let mut wire = BytesMut::new();
    for i in 0..count {
        encode_record(&vec![i as u8; len], u32::MAX, &mut wire);
    }
    wire.to_vec()
}

fn decode_64kib(c: &mut Criterion) {
    let wire = records(16, 64 * 1024);
    let mut group = c.benchmark_group("rpc_record/decode_64KiB");
    group.throughput(Throughput::Bytes(wire.len() as u64));
    let mut copy = Vec::with_capacity(wire.len());
    group.bench_function(BenchmarkId::from_parameter("memcpy"), |b| {
        b.iter(|| {
            copy.clear();
            copy.extend_from_slice(black_box(&wire));
            black_box(&copy);
        })
    });
    let config = Config::default();
    let mut decoder = RecordDecoder::new(&config);
    let mut buf = BytesMut::with_capacity(wire.len());
    group.bench_function(BenchmarkId::from_parameter("read_and_decode"), |b| {
        b.iter(|| {
            buf.clear();
            buf.reserve(wire.len()); // reclaims: the last round's records are dropped
            buf.extend_from_slice(black_box(&wire));
            let mut n = 0;
            while let Some(record) = decoder.decode(&mut buf, &mut AcceptAll).unwrap() {
                let Record::Accept(bytes) = record else {
                    unreachable!()
                };
                n += bytes.len();
            }
            assert_eq!(n, 16 * 64 * 1024);
        })
    });
    group.finish();
}

fn scan_44b(c: &mut Criterion) {
    const COUNT: usize = 4096;
    let wire = records(COUNT, 40);
    let mut group = c.benchmark_group("rpc_record/scan_44B");
    group.throughput(Throughput::Elements(COUNT as u64));
    group.bench_function(BenchmarkId::from_parameter("hand_loop"), |b| {
        b.iter(|| {
            let (wire, mut at, mut n) = (black_box(&wire[..]), 0, 0);
            while at + 4 <= wire.len() {
                let mark = u32::from_be_bytes([wire[at], wire[at + 1], wire[at + 2], wire[at + 3]]);
                at += 4 + (mark & 0x7fff_ffff) as usize;
                n += 1;
            }
            assert_eq!(n, COUNT);
        })
    });
    let config = Config::default();
    let mut decoder = RecordDecoder::new(&config);
    let mut buf = BytesMut::from(&wire[..]);
    let mut drop_all = |_: &Fragment| Rule::Drop;
    group.bench_function(BenchmarkId::from_parameter("decoder_drop"), |b| {
        b.iter(|| {
            // Rewind: the bytes are still there, behind the read position.
            buf.clear();
            buf.extend_from_slice(black_box(&wire));
            let mut n = 0;
            while let Some(record) = decoder.decode(&mut buf, &mut drop_all).unwrap() {
                debug_assert_eq!(record, Record::Drop);
                n += 1;
            }
            assert_eq!(n, COUNT);
        })
    });
    group.finish();
}

/// Runs `n` calls made by `call`, `window` in flight, taken in the order they were made.
async fn run_window<F: Future<Output = ()>>(n: u64, window: usize, call: impl Fn() -> F) {
    let mut in_flight = VecDeque::with_capacity(window);
    for _ in 0..n {
        if in_flight.len() == window {
            in_flight.pop_front().expect("a full window").await;
        }
        let mut request = Box::pin(call());
        if poll!(request.as_mut()).is_pending() {
            in_flight.push_back(request);
        }
    }
    for request in in_flight {
        request.await;
    }
}

async fn client_to(addr: std::net::SocketAddr) -> Client {
    let stream = TcpStream::connect(addr).await.unwrap();
    stream.set_nodelay(true).unwrap();
    let config = Config::default();
    Client::stream(RecordStream::new(stream, &config), &config)
}

/// rpcbind on 127.0.0.1:111: already there, or started here when possible.
fn rpcbind() -> Option<Option<Child>> {
    if std::net::TcpStream::connect("127.0.0.1:111").is_ok() {
        return Some(None);
    }
    let launcher = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/peers/rpcbind_loopback.py"
    );
    let python = concat!(env!("CARGO_MANIFEST_DIR"), "/.venv/bin/python");
    if !std::path::Path::new("/sbin/rpcbind").exists() || !std::path::Path::new(python).exists() {
        return None;
    }
    let child = Command::new(python).args([launcher, "600"]).spawn().ok()?;
    for _ in 0..50 {
        std::thread::sleep(Duration::from_millis(100));
        if std::net::TcpStream::connect("127.0.0.1:111").is_ok() {
            return Some(Some(child));
        }
    }
    None
}

fn null_calls(c: &mut Criterion) {
    let rt = Runtime::new().unwrap();
    let ours = rt.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let program = Service::from(Program::new(300000, [1]));
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                stream.set_nodelay(true).unwrap();
                let program = program.clone();
                tokio::spawn(async move {
                    serve_stream(&mut RecordStream::new(stream, &Config::default()), &program).await
                });
            }
        });
        client_to(addr).await
    });
    let rpcbind = rpcbind();
    let theirs = rpcbind
        .as_ref()
        .map(|_| rt.block_on(client_to("127.0.0.1:111".parse().unwrap())));
    if theirs.is_none() {
        eprintln!("rpcbind is not available: only strata's server is measured");
    }
    let mut group = c.benchmark_group("rpc_record/null_calls");
    group.throughput(Throughput::Elements(1));
    let targets = [
        ("strata_serve", Some((ours, 300000, 1))),
        ("rpcbind", theirs.map(|c| (c, 100000, 2))),
    ];
    for (name, target) in targets {
        let Some((client, prog, vers)) = target else {
            continue;
        };
        group.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter_custom(|iters| {
                let client = client.clone();
                rt.block_on(rt.spawn(async move {
                    let started = Instant::now();
                    run_window(iters, 16, || {
                        let client = &client;
                        async move {
                            let reply = client.call(prog, vers, 0, Bytes::new()).await.unwrap();
                            assert_eq!(reply.outcome, Ok(Bytes::new()));
                        }
                    })
                    .await;
                    started.elapsed()
                }))
                .unwrap()
            })
        });
    }
    group.finish();
    if let Some(Some(mut child)) = rpcbind {
        let _ = child.kill();
        let _ = child.wait();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(5));
    targets = decode_64kib, scan_44b, null_calls
}
criterion_main!(benches);
