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
//! - `echo_1KiB`: ECHO calls of program 300002 (`examples/rpc_echo.rs`) with a 1 KiB
//!   string, over one loopback TCP connection. `servers_1`, `servers_16` and `servers_64`:
//!   1, 16 and 64 in flight from a blocking load generator that costs the server as little
//!   as it can, against our service (on a runtime of one thread, as `svc_run` is one), the
//!   same with `Config::busy_poll` of 50 µs, and the rpcgen/libtirpc C server of the same
//!   program (target: at least 2x it at 16). Then the
//!   clients against that C server: `clients_1`, one call at a time (all an rpcgen client
//!   can do), ours against rpcgen's C client; `clients_16`, ours with 16 in flight. The C
//!   peers are built by `tests/peers/rpcgen/build.sh` (rpcgen and libtirpc-dev); without
//!   them those rows are skipped.
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
    AcceptAll, CallContext, Client, Config, Fragment, Program, Record, RecordDecoder, RecordStream,
    Rule, ServerError, Service, encode_record, serve_stream,
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

/// The C peers of `tests/peers/rpcgen`, built; `None` when they cannot be.
fn rpcgen_peers() -> Option<std::path::PathBuf> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = root.join("target/peers/rpcgen");
    let built = Command::new(root.join("tests/peers/rpcgen/build.sh"))
        .arg(&out)
        .status()
        .is_ok_and(|status| status.success());
    built.then_some(out)
}

/// Our ECHO service on loopback TCP with `config`, served on a thread of its own by a
/// runtime of one thread; its address.
fn echo_service(config: Config) -> std::net::SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = TcpListener::from_std(listener).unwrap();
            let service = std::sync::Arc::new(Service::from(Program::new(300002, [1]).procedure(
                1,
                1,
                |_: CallContext, text: String| async move { Ok::<_, ServerError>(text) },
            )));
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                stream.set_nodelay(true).unwrap();
                let service = std::sync::Arc::clone(&service);
                let mut stream = RecordStream::new(stream, &config);
                tokio::spawn(async move { serve_stream(&mut stream, &service).await });
            }
        });
    });
    addr
}

/// One ECHO call of a 1 KiB string as a record (xid 1: the servers do not mind repeats).
fn echo_record() -> Vec<u8> {
    let mut call = BytesMut::new();
    strata::rpc_record::Call::new(
        strata::rpc_record::Xid(1),
        300002,
        1,
        1,
        strata::rpc_record::xdr::to_bytes(&"x".repeat(1024)),
    )
    .encode(&mut call);
    let mut record = BytesMut::new();
    encode_record(&call, u32::MAX, &mut record);
    record.to_vec()
}

/// The length of a SUCCESS reply to [`echo_record`]: 24 bytes of header, the string's 4 and
/// its 1024.
const ECHO_REPLY: usize = 24 + 4 + 1024;

/// A load generator that costs the server under test as little as it can: `iters` copies
/// of `record` over one blocking connection, `window` in flight, each read of replies
/// answered by one write of as many new calls. Every reply is checked to be the length of a
/// SUCCESS echo.
fn raw_echo_load(addr: std::net::SocketAddr, iters: u64, window: u64, record: &[u8]) -> Duration {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream.set_nodelay(true).unwrap();
    let batch: Vec<u8> = record.repeat(window as usize);
    let mut buf = vec![0u8; 256 * 1024];
    let (mut filled, mut sent, mut done) = (0usize, 0u64, 0u64);
    let started = Instant::now();
    let first = window.min(iters);
    stream
        .write_all(&batch[..record.len() * first as usize])
        .unwrap();
    sent += first;
    while done < iters {
        let n = stream.read(&mut buf[filled..]).unwrap();
        assert!(n > 0, "the server closed");
        filled += n;
        let mut at = 0;
        let mut got = 0;
        while filled - at >= 4 {
            let mark = u32::from_be_bytes(buf[at..at + 4].try_into().unwrap());
            let len = (mark & 0x7fff_ffff) as usize;
            if filled - at < 4 + len {
                break;
            }
            assert_eq!(len, ECHO_REPLY, "a SUCCESS echo");
            at += 4 + len;
            got += 1;
        }
        buf.copy_within(at..filled, 0);
        filled -= at;
        done += got;
        let more = got.min(iters - sent);
        if more > 0 {
            stream
                .write_all(&batch[..record.len() * more as usize])
                .unwrap();
            sent += more;
        }
    }
    started.elapsed()
}

fn echo_1kib(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let text: &'static str = Box::leak("x".repeat(1024).into_boxed_str());
    let ours = echo_service(Config::default());
    // The same, busy polling each connection for 50 µs after its last call.
    let busy = echo_service(Config {
        busy_poll: Some(Duration::from_micros(50)),
        ..Config::default()
    });
    let peers = rpcgen_peers();
    if peers.is_none() {
        eprintln!("the rpcgen peers cannot be built: only our service is measured");
    }
    // The C server: "listening tcp PORT" then "listening udp PORT".
    let c_server = peers.as_ref().map(|dir| {
        let mut child = Command::new(dir.join("echo_server"))
            .args(["0", "3600"])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines =
            std::io::BufRead::lines(std::io::BufReader::new(child.stdout.take().unwrap()));
        let first = lines.next().unwrap().unwrap();
        let port: u16 = first.rsplit(' ').next().unwrap().parse().unwrap();
        // Both lines read: it writes nothing more, so the pipe may close.
        let _udp = lines.next();
        (child, std::net::SocketAddr::from(([127, 0, 0, 1], port)))
    });

    let rt = &rt;
    let echo_calls = |client: Client, window: usize| {
        move |iters: u64| {
            let client = client.clone();
            rt.block_on(async move {
                let started = Instant::now();
                run_window(iters, window, || {
                    let client = &client;
                    async move {
                        let echoed: Result<String, _> =
                            client.call_xdr(300002, 1, 1, text).await.unwrap();
                        assert_eq!(echoed.map(|e| e.len()), Ok(1024));
                    }
                })
                .await;
                started.elapsed()
            })
        }
    };

    let mut group = c.benchmark_group("rpc_record/echo_1KiB");
    group.throughput(Throughput::Elements(1));
    let record = echo_record();
    let servers = [("strata_service", ours), ("strata_service_busy_poll", busy)]
        .into_iter()
        .chain(c_server.as_ref().map(|(_, addr)| ("rpcgen_server", *addr)));
    for (name, addr) in servers {
        for window in [1, 16, 64] {
            group.bench_function(BenchmarkId::new(format!("servers_{window}"), name), |b| {
                b.iter_custom(|iters| raw_echo_load(addr, iters, window, &record))
            });
        }
    }
    if let Some((_, addr)) = &c_server {
        let to_c = rt.block_on(client_to(*addr));
        group.bench_function(BenchmarkId::new("clients_16", "strata_client"), |b| {
            b.iter_custom(echo_calls(to_c.clone(), 16))
        });
        group.bench_function(BenchmarkId::new("clients_1", "strata_client"), |b| {
            b.iter_custom(echo_calls(to_c.clone(), 1))
        });
        let client = peers.as_ref().unwrap().join("echo_client");
        let port = addr.port().to_string();
        group.bench_function(BenchmarkId::new("clients_1", "rpcgen_client"), |b| {
            b.iter_custom(|iters| {
                let out = Command::new(&client)
                    .args(["tcp", &port, "bench", &iters.to_string(), "1024"])
                    .output()
                    .unwrap();
                let nanos: u64 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
                Duration::from_nanos(nanos)
            })
        });
    }
    group.finish();
    if let Some((mut child, _)) = c_server {
        let _ = child.kill();
        let _ = child.wait();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(5));
    targets = decode_64kib, scan_44b, null_calls, echo_1kib
}
criterion_main!(benches);
