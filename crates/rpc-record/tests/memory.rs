//! What a server holds under a flood, measured: a counting global allocator sees every byte
//! this test binary has on the heap. The tests run one at a time (the count is the process's).
//!
//! `cargo test -p rpc-record --test memory -- --nocapture` prints the figures.

use std::alloc::System;
use std::io::Write;
use std::os::unix::net::UnixStream as StdUnix;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use cap::Cap;
use rpc_record::{
    Budget, Call, Config, Program, RecordStream, Service, Xid, encode_record, serve_stream,
};

#[global_allocator]
static HEAP: Cap<System> = Cap::new(System, usize::MAX);

/// One test at a time: the count is the whole process's.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Runs `test` alone, on a runtime of two workers as on the project's machine.
fn alone(test: impl Future<Output = ()>) {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(test);
}

/// `count` NULL calls, each its own record, as a client pipelining them would send them.
fn pipelined_pings(count: u32) -> Vec<u8> {
    let mut call = BytesMut::new();
    let mut wire = BytesMut::new();
    for xid in 0..count {
        call.clear();
        Call::new(Xid(xid), 300000, 2, 0, Bytes::new()).encode(&mut call);
        encode_record(&call, u32::MAX, &mut wire);
    }
    wire.to_vec()
}

/// Peers that pipeline NULL calls and never read a reply, on Unix sockets (whose kernel
/// buffers are small, so that the server's own buffers are what a flood fills).
const FLOODERS: usize = 16;
/// Calls each flooder sends: 40 MB of calls, 28 MB of replies, far beyond every buffer.
const CALLS: u32 = 1_000_000;

/// What a connection holds that it does not charge to the budget: its task, its scratch
/// buffer, the spare room of its buffers.
const UNCHARGED: usize = 16 * 1024;

#[test]
fn a_flood_of_calls_nobody_reads_the_replies_of_stays_within_the_servers_budget() {
    let config = Config {
        max_unsent: 64 * 1024,
        server_budget: 1024 * 1024,
        ..Config::default()
    };
    let bound = config.server_budget + FLOODERS * UNCHARGED;
    alone(flood(config, bound));
}

#[test]
fn without_a_budget_each_flooded_connection_holds_its_unsent_replies_and_a_read_window() {
    let config = Config {
        max_unsent: 64 * 1024,
        server_budget: usize::MAX,
        ..Config::default()
    };
    // Unsent replies up to max_unsent, plus the replies to one read's calls (128 KiB of
    // calls, 90 KiB of replies), plus the read window.
    let bound = FLOODERS * (config.max_unsent + 90 * 1024 + 128 * 1024 + UNCHARGED);
    alone(flood(config, bound));
}

/// Calls of 4 KiB arguments to a procedure whose handler never finishes: each connection
/// may run 256 of them (1.1 MiB, 17 MiB for 16 connections), but the records they hold and
/// their futures count against the budget, so the server stops reading at its budget.
#[test]
fn calls_that_run_count_against_the_servers_budget() {
    let config = Config {
        server_budget: 2 * 1024 * 1024,
        max_calls: 256,
        ..Config::default()
    };
    alone(async move {
        let budget = Budget::new(config.server_budget);
        let service = std::sync::Arc::new(Service::from(Program::new(300000, [2]).raw_procedure(
            2,
            1,
            // The handler holds its call for as long as it runs: for ever.
            |context, args| {
                Box::pin(async move {
                    let _held = (context, args);
                    std::future::pending().await
                })
            },
        )));
        let mut call = BytesMut::new();
        Call::new(Xid(1), 300000, 2, 1, Bytes::from(vec![0; 4 * 1024])).encode(&mut call);
        let mut one = BytesMut::new();
        encode_record(&call, u32::MAX, &mut one);
        let wire: Vec<u8> = one.repeat(256);
        let before = HEAP.allocated();
        let mut servers = Vec::new();
        let mut peers = Vec::new();
        for _ in 0..FLOODERS {
            let (ours, theirs) = StdUnix::pair().unwrap();
            ours.set_nonblocking(true).unwrap();
            theirs.set_nonblocking(true).unwrap();
            let mut stream =
                RecordStream::new(tokio::net::UnixStream::from_std(ours).unwrap(), &config)
                    .with_budget(&budget);
            let service = std::sync::Arc::clone(&service);
            servers.push(tokio::spawn(async move {
                serve_stream(&mut stream, &service).await
            }));
            peers.push((theirs, 0usize));
        }
        // Every peer writes its 256 calls as far as the server takes them.
        let mut peak = 0;
        for _ in 0..300 {
            for (peer, at) in &mut peers {
                while *at < wire.len() {
                    match peer.write(&wire[*at..]) {
                        Ok(n) => *at += n,
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                        Err(e) => panic!("{e}"),
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
            peak = peak.max(HEAP.allocated().saturating_sub(before));
        }
        let taken: usize = peers.iter().map(|(_, at)| at).sum();
        let bound = config.server_budget + FLOODERS * UNCHARGED;
        println!(
            "never-ending calls: {taken} of {} bytes of calls taken; heap peak {peak}, bound {bound}",
            wire.len() * FLOODERS
        );
        assert!(peak <= bound, "heap peak {peak} over {bound}");
        // What was taken includes what waits in the kernel's socket buffers.
        assert!(
            taken < wire.len() * FLOODERS / 2,
            "reading stops at the budget: {taken} bytes taken"
        );
        for server in servers {
            assert!(!server.is_finished(), "paused, not failed");
            server.abort();
        }
    });
}

async fn flood(config: Config, bound: usize) {
    let budget = Budget::new(config.server_budget);
    let program = Service::from(Program::new(300000, [2]));
    let wire = std::sync::Arc::new(pipelined_pings(CALLS));
    let written = std::sync::Arc::new(AtomicUsize::new(0));
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let mut flooders = Vec::new();
    let mut servers = Vec::new();
    let before = HEAP.allocated();
    for _ in 0..FLOODERS {
        let (ours, theirs) = StdUnix::pair().unwrap();
        ours.set_nonblocking(true).unwrap();
        let mut stream =
            RecordStream::new(tokio::net::UnixStream::from_std(ours).unwrap(), &config)
                .with_budget(&budget);
        let program = program.clone();
        servers.push(tokio::spawn(async move {
            serve_stream(&mut stream, &program).await
        }));
        let (wire, written, stop) = (wire.clone(), written.clone(), stop.clone());
        flooders.push(std::thread::spawn(move || {
            let mut theirs = theirs;
            theirs
                .set_write_timeout(Some(Duration::from_millis(50)))
                .unwrap();
            let mut at = 0;
            // Writes until the server stops reading (or everything is sent), never reads.
            while at < wire.len() && !stop.load(Ordering::Relaxed) {
                match theirs.write(&wire[at..(at + 64 * 1024).min(wire.len())]) {
                    Ok(n) => {
                        at += n;
                        written.fetch_add(n, Ordering::Relaxed);
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(e) => panic!("flood: {e}"),
                }
            }
            theirs
        }));
    }
    // Sample the heap while the flood runs; stop once it no longer moves the server.
    let mut peak = 0;
    let mut last = 0;
    let mut still = 0;
    for _ in 0..600 {
        tokio::time::sleep(Duration::from_millis(10)).await;
        peak = peak.max(HEAP.allocated().saturating_sub(before));
        let now = written.load(Ordering::Relaxed);
        still = if now == last { still + 1 } else { 0 };
        last = now;
        if still >= 30 {
            break;
        }
    }
    stop.store(true, Ordering::Relaxed);
    let sent = written.load(Ordering::Relaxed);
    let total = wire.len() * FLOODERS;
    println!(
        "flood: {FLOODERS} peers wrote {sent} of {total} bytes of calls; server heap peak {peak} \
         bytes, bound {bound} bytes (budget {}, max_unsent {})",
        config.server_budget.min(usize::MAX >> 3),
        config.max_unsent
    );
    assert!(
        sent < total / 4,
        "reading must stop: {sent} of {total} bytes were taken"
    );
    assert!(peak <= bound, "heap peak {peak} over {bound}");
    for server in &servers {
        assert!(!server.is_finished(), "flooders are paused, not failed");
    }
    let peers: Vec<_> = flooders.into_iter().map(|f| f.join().unwrap()).collect();
    drop(peers);
    for server in servers {
        // The peers are gone: each server ends (the EOF may come inside a record).
        let _ = tokio::time::timeout(Duration::from_secs(10), server)
            .await
            .unwrap();
    }
    assert_eq!(
        budget.available(),
        budget.capacity(),
        "every byte given back"
    );
}
