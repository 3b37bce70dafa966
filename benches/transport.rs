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
//! would, and clients in another with one worker: each side has a core, whatever the
//! scheduler does. (With both in one runtime, the bulk figures swing between two modes,
//! 2.5 and 6 GiB/s, by where the two tasks happen to land.)
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
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Runtime;
use tokio_rustls::{TlsAcceptor, TlsConnector};

const BULK: usize = 1 << 20;
const CHUNK: usize = 64 * 1024;
const SMALL: usize = 64;

/// A runtime with one worker thread.
fn one_worker() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
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
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    srv.spawn(async move {
        let listener = TcpListener::from_std(listener).unwrap();
        let (stream, _) = listener.accept().await.unwrap();
        stream.set_nodelay(true).unwrap();
        serve(stream).await
    });
    addr
}

async fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).await.unwrap();
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
    let (rt, srv) = (one_worker(), one_worker());
    let ca = Ca::new("Strata bench CA");
    let mut clients: Vec<(&str, Option<Box<dyn Io>>)> = rt
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
                    b.iter_custom(|iters| {
                        let mut io = slot.take().expect("the client is back");
                        let (io, elapsed) = rt
                            .block_on(rt.spawn(async move {
                                let started = Instant::now();
                                match workload {
                                    "bulk_1MiB" => bulk(&mut io, iters).await,
                                    _ => round_trips(&mut io, iters).await,
                                }
                                (io, started.elapsed())
                            }))
                            .unwrap();
                        *slot = Some(io);
                        elapsed
                    })
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
    let (rt, srv) = (one_worker(), one_worker());
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

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(5));
    targets = streams, accept
}
criterion_main!(benches);
