//! What a connection holds, measured: a counting global allocator sees every byte this test
//! binary has on the heap. The tests run one at a time (the count is the process's).
//!
//! `cargo test -p packetstream --test memory -- --nocapture` prints the figures.

use std::alloc::System;
use std::convert::Infallible;
use std::io::{Read, Write};
use std::net::TcpStream as StdStream;
use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use cap::Cap;
use packetstream::{Config, Packet, PacketCodec, PacketConnection, Request};
use tokio::net::TcpListener;
use tokio_util::codec::Encoder;

#[global_allocator]
static HEAP: Cap<System> = Cap::new(System, usize::MAX);

/// One test at a time: the count is the whole process's.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Runs `test` alone, on a runtime of two workers as on the project's machine.
fn alone(test: impl std::future::Future<Output = ()>) {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(test);
}

/// The echo handler `strata packet serve` has for rq 0.
fn echo_server(stream: tokio::net::TcpStream, config: Config) -> PacketConnection {
    PacketConnection::with_handler(stream, config, |rq: Request| async move {
        Ok::<_, Infallible>((rq.flags, rq.payload))
    })
    .unwrap()
}

/// Lets the connections' tasks run until they are idle.
async fn settle() {
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Enough to average out the runtime's own growth; few enough (two descriptors each) to stay
/// well under a default limit of 1024 open files.
const IDLE_CONNECTIONS: usize = 300;
/// The target for an idle connection.
const IDLE_BUDGET: usize = 8 * 1024;

#[test]
fn an_idle_connection_holds_under_8_kb_of_heap() {
    alone(idle_connections());
}

async fn idle_connections() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut peers: Vec<StdStream> = Vec::with_capacity(IDLE_CONNECTIONS);
    let mut servers: Vec<PacketConnection> = Vec::with_capacity(IDLE_CONNECTIONS);
    // One connection first, so that the runtime's own first-use allocations (the timer
    // wheel, the I/O driver's first pages) are not counted against the others.
    let warm = StdStream::connect(addr).unwrap();
    servers.push(echo_server(
        listener.accept().await.unwrap().0,
        Config::default(),
    ));
    settle().await;
    let before = HEAP.allocated();
    for _ in 0..IDLE_CONNECTIONS {
        peers.push(StdStream::connect(addr).unwrap());
        servers.push(echo_server(
            listener.accept().await.unwrap().0,
            Config::default(),
        ));
    }
    settle().await;
    let fresh = (HEAP.allocated() - before) / IDLE_CONNECTIONS;

    // Each peer makes one request and reads its answer; then all are idle again.
    let mut frame = bytes::BytesMut::with_capacity(64);
    let mut answer = [0u8; 64];
    for (tag, peer) in (2..).zip(&mut peers) {
        frame.clear();
        let request = Packet::request(0, tag, 0, 0, Bytes::from_static(b"hello")).unwrap();
        PacketCodec::default().encode(request, &mut frame).unwrap();
        peer.write_all(&frame).unwrap();
        peer.read_exact(&mut answer[..8]).unwrap();
    }
    // A quiet connection gives its read buffer back at once, and, when it holds more than a
    // few kilobytes besides, the rest once it has stayed quiet a while.
    tokio::time::sleep(Duration::from_millis(400)).await;
    settle().await;
    let after_use = (HEAP.allocated() - before) / IDLE_CONNECTIONS;
    println!(
        "heap per idle connection: {fresh} bytes new, {after_use} bytes after one request each \
         ({IDLE_CONNECTIONS} TCP connections, server side)"
    );
    assert!(fresh <= IDLE_BUDGET, "{fresh} bytes per fresh connection");
    assert!(
        after_use <= IDLE_BUDGET,
        "{after_use} bytes per used connection"
    );
    drop(warm);
}

/// A peer that sends `count` echo requests of `payload` bytes and never reads a byte: the
/// server's heap stays within its budgets however large the packets.
async fn a_peer_that_never_reads(payload: usize, count: u64) {
    let config = Config::default();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    // The peer encodes each request into one buffer, made before the count starts.
    let mut frame = bytes::BytesMut::with_capacity(payload + 64);
    let body = Bytes::from(vec![0x5a; payload]);
    let before = HEAP.allocated();
    let flood = std::thread::spawn(move || {
        let mut peer = StdStream::connect(addr).unwrap();
        for tag in 2..2 + count {
            frame.clear();
            let request = Packet::request(0, tag, 0, 0, body.clone()).unwrap();
            PacketCodec::new(8 << 20)
                .encode(request, &mut frame)
                .unwrap();
            if peer.write_all(&frame).is_err() {
                break;
            }
        }
        peer
    });
    let server = echo_server(listener.accept().await.unwrap().0, config.clone());
    // Until the server holds steady: the peer's writes are blocked, and it reads no more.
    let (mut last, mut steady) = (server.stats(), 0);
    for _ in 0..200 {
        tokio::time::sleep(Duration::from_millis(25)).await;
        let now = server.stats();
        steady = if now.bytes_in == last.bytes_in {
            steady + 1
        } else {
            0
        };
        last = now;
        if steady == 8 {
            break;
        }
    }
    assert_eq!(steady, 8, "the server never stopped reading: {last:?}");
    assert!(!flood.is_finished(), "the peer was never blocked");
    let held = HEAP.allocated() - before;
    let stats = server.stats();
    let frame = payload + 8;
    // The budgets, and what Config's documented bound adds: the reply that crossed
    // max_unsent and those of the handlers running then, one request read but not taken,
    // what one read brings ahead.
    let overshoot = (config.max_handlers + 1) * frame;
    let bound = config.max_received + config.max_unsent + overshoot + frame + 64 * 1024;
    println!(
        "a peer sending {payload}-byte requests without reading: heap {held} bytes \
         (bound {bound}); the session holds {} received and {} unsent; {} requests \
         answered, {} read",
        stats.received_bytes, stats.unsent_bytes, stats.requests_served, stats.packets_in
    );
    assert!(stats.received_bytes <= config.max_received, "{stats:?}");
    assert!(
        stats.unsent_bytes <= config.max_unsent + overshoot,
        "{stats:?}"
    );
    assert!(
        held <= bound,
        "held {held} bytes, over the bound of {bound}"
    );
    // The accounting is not off by orders of magnitude either way: what the session counts
    // is most of what is on the heap.
    let counted = stats.received_bytes + stats.unsent_bytes;
    assert!(
        held >= counted / 2,
        "held {held}, counted {counted}: the count is wrong"
    );
    server.abort();
    let _ = server.closed().await;
    drop(flood.join().unwrap());
    settle().await;
    let left = HEAP.allocated().saturating_sub(before);
    assert!(left < 256 * 1024, "{left} bytes still held after the abort");
}

#[test]
fn a_peer_sending_1_mib_requests_and_never_reading_holds_the_server_at_its_budgets() {
    alone(a_peer_that_never_reads(1 << 20, 100));
}

#[test]
fn a_peer_sending_small_requests_and_never_reading_holds_the_server_at_its_budgets() {
    // Each counted as its bytes plus REQUEST_COST: a flood of tiny requests is bounded too.
    alone(a_peer_that_never_reads(16, 2_000_000));
}
