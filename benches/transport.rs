//! transport against the bare crates it is built on, in one run:
//! - `tls`: a `Stack` with TLS pushed (both ends) against bare tokio-rustls streams over the
//!   same kind of socket (loopback TCP): bulk throughput (1 MiB one way, in 64 KiB writes,
//!   then a one-byte acknowledgement) and 64-byte round trips (target: at least 0.95x);
//! - `plain`: a `Stack` with no layer against a bare `TcpStream`, the same two workloads
//!   (target: at least 0.98x);
//! - `accept`: connections accepted per second by an `Interface` (registry, connection
//!   limit, a task per connection) against a bare accept loop that spawns a task per
//!   connection.
//!
//! Servers run in a runtime of their own with one worker, as a peer in another process
//! would, and clients in another with one worker, each worker pinned to its own core.
//! (With both in one runtime, the bulk figures swing between two modes, 2.5 and 6 GiB/s, by
//! where the two tasks happen to land.) Every connection has fixed 1 MiB socket buffers.
//!
//! After criterion's groups, `paired` measures each `Stack` against its bare variant in
//! alternating short rounds over several connections, and prints the median ratio: the
//! figure to compare with the targets, since the groups' bulk figures move 10 to 15% from
//! run to run (see `paired`).
//!
//! `cargo bench --bench transport -- --warm-up-time 1 --measurement-time 5`

#[path = "../crates/transport/tests/support/mod.rs"]
mod support;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use rustls::pki_types::ServerName;
use strata::transport::{Accepted, Interface, Io, Listener, Stack, TlsClient, TlsServer};
use support::Ca;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::runtime::Runtime;
use tokio_rustls::{TlsAcceptor, TlsConnector};

const BULK: usize = 1 << 20;
const CHUNK: usize = 64 * 1024;
const SMALL: usize = 64;

/// A runtime with one worker thread, pinned to `core` when the machine has it (and the
/// system lets us): the kernel then never moves the worker, nor puts both sides' workers on
/// one core.
fn one_worker(core: usize) -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .on_thread_start(move || {
            if let Some(id) = core_affinity::get_core_ids().and_then(|ids| ids.get(core).copied()) {
                core_affinity::set_for_current(id);
            }
        })
        .enable_all()
        .build()
        .unwrap()
}

/// Listens on loopback in the servers' runtime `srv` and runs `serve` on the one connection
/// it accepts; returns the address to connect to.
fn server<F, Fut>(srv: &Runtime, serve: F) -> SocketAddr
where
    F: FnOnce(TcpStream) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    // Accepted sockets inherit the listener's buffer sizes.
    let listener = socket();
    listener.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = listener.local_addr().unwrap();
    let listener = {
        let _in_srv = srv.enter();
        listener.listen(1).unwrap()
    };
    srv.spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        stream.set_nodelay(true).unwrap();
        serve(stream).await
    });
    addr
}

/// The socket buffer sizes of every benched connection, both ends. Fixed, because with the
/// kernel's autotuning a loopback connection here runs its bulk transfers at one of two
/// speeds (16 MiB in about 3.3 or 9.5 ms, bare or not), chosen per connection and changing
/// over time: half the rounds were slow. With 1 MiB buffers, about one in ten is.
const SOCKET_BUFFER: u32 = 1 << 20;

/// A loopback TCP socket with the fixed buffers.
fn socket() -> TcpSocket {
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_send_buffer_size(SOCKET_BUFFER).unwrap();
    socket.set_recv_buffer_size(SOCKET_BUFFER).unwrap();
    socket
}

async fn connect(addr: SocketAddr) -> TcpStream {
    let stream = socket().connect(addr).await.unwrap();
    stream.set_nodelay(true).unwrap();
    stream
}

/// The server of both workloads: reads a one-byte command, then either counts `BULK` bytes
/// and acknowledges with one byte (`b`), or echoes one `SMALL`-byte message (`s`).
async fn serve(mut io: impl Io) {
    let mut buf = vec![0; CHUNK];
    let mut command = [0; 1];
    while io.read_exact(&mut command).await.is_ok() {
        match &command {
            b"b" => {
                let mut left = BULK;
                while left > 0 {
                    let Ok(n @ 1..) = io.read(&mut buf[..left.min(CHUNK)]).await else {
                        return;
                    };
                    left -= n;
                }
                if io.write_all(b"k").await.is_err() || io.flush().await.is_err() {
                    return;
                }
            }
            _ => {
                if io.read_exact(&mut buf[..SMALL]).await.is_err()
                    || io.write_all(&buf[..SMALL]).await.is_err()
                    || io.flush().await.is_err()
                {
                    return;
                }
            }
        }
    }
}

/// `n` bulk transfers from the client end.
async fn bulk(io: &mut impl Io, n: u64) {
    let data = vec![0x5a; CHUNK];
    let mut ack = [0; 1];
    for _ in 0..n {
        io.write_all(b"b").await.unwrap();
        for _ in 0..BULK / CHUNK {
            io.write_all(&data).await.unwrap();
        }
        io.flush().await.unwrap();
        io.read_exact(&mut ack).await.unwrap();
    }
}

/// `n` small round trips from the client end.
async fn round_trips(io: &mut impl Io, n: u64) {
    let mut message = [0x5a; SMALL + 1];
    message[0] = b's';
    let mut echo = [0; SMALL];
    for _ in 0..n {
        io.write_all(&message).await.unwrap();
        io.flush().await.unwrap();
        io.read_exact(&mut echo).await.unwrap();
    }
}

/// Client ends by name, each put back after every use.
type Clients = Vec<(&'static str, Option<Box<dyn Io>>)>;

/// One client end of each sort, its server running in `srv`: (name, client).
async fn clients(ca: &Ca, srv: &Runtime) -> Vec<(&'static str, Box<dyn Io>)> {
    let (certs, key) = ca.identity("strata server", &["localhost"]);
    let server_layer = TlsServer::with_identity(certs.clone(), key.clone_key()).unwrap();
    let client_layer = TlsClient::verifying([ca.cert.clone()], "localhost").unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.cert.clone()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let bare_client = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let bare_server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    let mut out: Vec<(&'static str, Box<dyn Io>)> = Vec::new();

    let acceptor = TlsAcceptor::from(Arc::new(bare_server));
    let addr = server(srv, |s| async move {
        serve(acceptor.accept(s).await.unwrap()).await
    });
    let name = ServerName::try_from("localhost").unwrap();
    let tls = TlsConnector::from(Arc::new(bare_client)).connect(name, connect(addr).await);
    out.push(("tls/bare_tokio_rustls", Box::new(tls.await.unwrap())));

    let addr = server(srv, |s| async move {
        let mut stack = Stack::new(s);
        stack.push(server_layer).await.unwrap();
        serve(stack).await
    });
    let mut stack = Stack::new(connect(addr).await);
    stack.push(client_layer).await.unwrap();
    out.push(("tls/stack", Box::new(stack)));

    let addr = server(srv, serve);
    out.push(("plain/bare_tcp", Box::new(connect(addr).await)));

    let addr = server(srv, |s| serve(Stack::new(s)));
    out.push(("plain/stack", Box::new(Stack::new(connect(addr).await))));
    out
}

fn streams(c: &mut Criterion) {
    let (rt, srv) = (one_worker(0), one_worker(1));
    let ca = Ca::new("Strata bench CA");
    let mut clients: Clients = rt
        .block_on(clients(&ca, &srv))
        .into_iter()
        .map(|(name, io)| (name, Some(io)))
        .collect();
    for (workload, bytes) in [("bulk_1MiB", BULK as u64), ("round_trip_64B", 1)] {
        for kind in ["tls", "plain"] {
            let mut group = c.benchmark_group(format!("transport/{kind}/{workload}"));
            if workload == "bulk_1MiB" {
                group.throughput(Throughput::Bytes(bytes));
            } else {
                group.throughput(Throughput::Elements(1));
            }
            for (name, slot) in clients.iter_mut().filter(|(n, _)| n.starts_with(kind)) {
                let label = name.rsplit('/').next().unwrap_or(name);
                group.bench_function(BenchmarkId::from_parameter(label), |b| {
                    b.iter_custom(|iters| time_batch(&rt, slot, workload, iters))
                });
            }
            group.finish();
        }
    }
}

/// Connects `n` times to `addr`, each time waiting for the server to close the connection
/// (so each was accepted and handled).
async fn connections(addr: &str, n: u64) -> Duration {
    let started = Instant::now();
    let mut byte = [0; 1];
    for _ in 0..n {
        let mut c = TcpStream::connect(addr).await.unwrap();
        assert_eq!(c.read(&mut byte).await.unwrap(), 0);
    }
    started.elapsed()
}

fn accept(c: &mut Criterion) {
    let (rt, srv) = (one_worker(0), one_worker(1));
    let (bare, interface) = {
        let _in_srv = srv.enter();
        let bare = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        bare.set_nonblocking(true).unwrap();
        let bare_addr = bare.local_addr().unwrap().to_string();
        srv.spawn(async move {
            let bare = TcpListener::from_std(bare).unwrap();
            while let Ok((stream, _)) = bare.accept().await {
                tokio::spawn(async move { drop(stream) });
            }
        });
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let mut interface = Interface::new(Default::default());
        interface.listen(Listener::Tcp(TcpListener::from_std(listener).unwrap()));
        let serving = interface.serve(|c: Accepted| async move { drop(c) });
        (bare_addr, (addr, serving))
    };
    let mut group = c.benchmark_group("transport/accept");
    group.throughput(Throughput::Elements(1));
    for (name, addr) in [("bare_accept_loop", &bare), ("interface", &interface.0)] {
        group.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter_custom(|iters| {
                let addr = addr.clone();
                rt.block_on(rt.spawn(async move { connections(&addr, iters).await }))
                    .unwrap()
            })
        });
    }
    group.finish();
    let counts = interface.1.connections().counts();
    assert_eq!(counts.accepted, counts.finished + counts.live);
    srv.block_on(interface.1.shutdown(Duration::from_secs(1)));
}

/// How many connections of each sort the paired rounds rotate through.
const PAIRED_CONNECTIONS: usize = 16;

/// The `Stack` variant of a workload against the bare one, measured in alternation: each
/// round times one batch on a bare connection and one on a `Stack`, in turn first, each
/// round on the next of several connections. Prints the median of the rounds' ratios and
/// the range of their middle half. A control pairs the bare variant with itself (on the
/// set of connections two along): the resolution of the measurement.
///
/// Why: criterion's groups above measure each variant for seconds on one connection, one
/// after the other, and their bulk figures move 10 to 15% from run to run, as do identical
/// bare loops on different connections of one run. Whatever differs between two such
/// stretches or two connections (where the kernel does the loopback's work, the rest of the
/// machine) lands in the ratio; short alternating rounds spread it over both variants.
fn paired(_: &mut Criterion) {
    let (rt, srv) = (one_worker(0), one_worker(1));
    let ca = Ca::new("Strata bench CA");
    let mut sets: Vec<Clients> = (0..PAIRED_CONNECTIONS)
        .map(|_| {
            let set = rt.block_on(clients(&ca, &srv));
            set.into_iter().map(|(name, io)| (name, Some(io))).collect()
        })
        .collect();
    // (workload, batch per round, rounds): about 5 ms per bulk batch, 35 ms per round-trip
    // batch.
    let workloads: [(&str, u64, usize); 2] = [("bulk_1MiB", 16, 160), ("round_trip_64B", 500, 160)];
    for (workload, batch, rounds) in workloads {
        for (kind, bare, other, label) in [
            ("tls", "tls/bare_tokio_rustls", "tls/stack", "stack"),
            ("plain", "plain/bare_tcp", "plain/stack", "stack"),
            ("plain", "plain/bare_tcp", "plain/bare_tcp", "control: bare"),
        ] {
            let mut ratios = Vec::with_capacity(rounds);
            for round in 0..rounds {
                // The control's second variant runs on the set two along, so that every
                // connection is used every other round, as in the stack's pairs.
                let bare_at = round % PAIRED_CONNECTIONS;
                let other_at = (bare_at + 2 * usize::from(other == bare)) % PAIRED_CONNECTIONS;
                let mut time = |set: usize, name: &str| {
                    let (_, slot) = sets[set]
                        .iter_mut()
                        .find(|(n, _)| *n == name)
                        .expect("made above");
                    time_batch(&rt, slot, workload, batch).as_secs_f64()
                };
                let (bare_time, other_time) = if round % 2 == 0 {
                    let b = time(bare_at, bare);
                    (b, time(other_at, other))
                } else {
                    let o = time(other_at, other);
                    (time(bare_at, bare), o)
                };
                // The throughput of the other variant against the bare one's.
                ratios.push(bare_time / other_time);
            }
            ratios.sort_by(f64::total_cmp);
            let quarter = rounds / 4;
            println!(
                "transport/{kind}/{workload}/paired: {label} {:.3}x bare (middle half {:.3}x to {:.3}x; {rounds} rounds of {batch}, {PAIRED_CONNECTIONS} connections each)",
                ratios[rounds / 2],
                ratios[quarter],
                ratios[rounds - 1 - quarter],
            );
        }
    }
}

/// Times `batch` runs of `workload` on the client in `slot`, in a spawned task (on the
/// clients' pinned worker, as a user's task would run), and puts the client back.
fn time_batch(
    rt: &Runtime,
    slot: &mut Option<Box<dyn Io>>,
    workload: &'static str,
    batch: u64,
) -> Duration {
    let mut io = slot.take().expect("the client is back");
    let (io, elapsed) = rt
        .block_on(rt.spawn(async move {
            let started = Instant::now();
            match workload {
                "bulk_1MiB" => bulk(&mut io, batch).await,
                _ => round_trips(&mut io, batch).await,
            }
            (io, started.elapsed())
        }))
        .unwrap();
    *slot = Some(io);
    elapsed
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(5));
    targets = streams, accept, paired
}
criterion_main!(benches);
