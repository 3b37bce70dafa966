//! Interop with the real cs.packetstream 20240630 over loopback TCP, both directions.
//!
//! Ignored by plain `cargo test`: `scripts/test` installs the pinned peer (`scripts/peers`)
//! and runs these with `--ignored`.

use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use packetstream::{Config, PacketConnection, Response};
use tokio::net::TcpStream;

mod common;
use common::{CsServer, Server, cs_peer};

#[test]
#[ignore = "needs the real cs.packetstream: scripts/test sets it up"]
fn python_client_calls_the_whole_table_against_strata_serve() {
    let mut server = Server::start(&["--once"]);
    let port = server.addr.rsplit(':').next().unwrap().to_string();
    let out = cs_peer(&["client", &port])
        .output()
        .expect("the Python client runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the Python client saw a mismatch:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 12, "{stdout}");
    assert!(
        lines.iter().all(|l| l.ends_with("\"match\": true}")),
        "{stdout}"
    );
    // 2^40 flags and the 200 KiB payload were among them.
    assert!(stdout.contains("1099511627776"), "{stdout}");
    assert!(stdout.contains("...204800"), "{stdout}");
    // The Python client closed (ERQ, EOF); the server answered in kind and exited cleanly.
    let status = server.child.wait().expect("strata serve --once exits");
    assert!(status.success());
}

#[test]
#[ignore = "needs the real cs.packetstream: scripts/test sets it up"]
fn strata_call_against_the_python_server() {
    let cs = CsServer::start();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(["packet", "call", &cs.addr(), "1", "--payload", "abc"])
        .output()
        .expect("strata packet call runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "{\"ok\":true,\"flags\":17,\"payload_hex\":\"636261\"}\n"
    );
    // strata closed cleanly, so the Python server's join_recv returned and it exited.
    assert!(cs.wait().success());
}

fn resp(ok: bool, flags: u64, payload: impl Into<Bytes>) -> Response {
    Response {
        ok,
        flags,
        payload: payload.into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the real cs.packetstream: scripts/test sets it up"]
async fn rust_client_against_the_python_server() {
    let cs = CsServer::start();
    let stream = TcpStream::connect(cs.addr()).await.unwrap();
    stream.set_nodelay(true).unwrap();
    let config = Config {
        channels: true,
        request_timeout: Some(Duration::from_secs(20)),
        ..Config::default()
    };
    let client = PacketConnection::new(stream, config).unwrap();
    let failure = resp(false, 0, &b"exception during handler"[..]);
    let big = Bytes::from((0..800).flat_map(|_| 0..=255u8).collect::<Vec<u8>>());
    let cases: Vec<(u64, u64, Bytes, Response)> = vec![
        (0, 0, Bytes::from("echo"), resp(true, 0, "echo")),
        (0, 1 << 40, Bytes::from("2^40"), resp(true, 1 << 40, "2^40")),
        (
            0,
            (1 << 40) + 1,
            big.clone(),
            resp(true, (1 << 40) + 1, big),
        ),
        (1, 0, Bytes::from("abc"), resp(true, 0x11, "cba")),
        (2, 7, Bytes::from("x"), resp(true, 0, "")),
        (3, 41, Bytes::new(), resp(true, 42, "")),
        (4, 0, Bytes::new(), resp(true, 0, "héllo")),
        (5, 0, Bytes::new(), failure.clone()),
        (300, 0, Bytes::new(), failure),
    ];
    for (rq, flags, payload, expected) in cases {
        let got = client.request(rq, flags, payload).await.unwrap();
        assert!(got == expected, "rq {rq}: got {got}, expected {expected}");
    }
    // cs refuses channels other than 0 with its literal text.
    assert_eq!(
        client.request_on(5, 0, 0, "q").await.unwrap(),
        resp(false, 0, "unknown channel %d")
    );

    // Pipelined: the Python server runs handlers on 4 workers and answers as they finish.
    let started = Instant::now();
    let mut calls: FuturesUnordered<_> = [("300", 1u64), ("150", 2), ("0", 3)]
        .into_iter()
        .map(|(ms, flags)| {
            let client = client.clone();
            async move { (flags, client.request(6, flags, ms).await) }
        })
        .collect();
    let mut order = Vec::new();
    while let Some((flags, got)) = calls.next().await {
        assert!(got.unwrap().ok);
        order.push(flags);
    }
    assert_eq!(order, [3, 2, 1], "replies came in completion order");
    assert!(
        started.elapsed() < Duration::from_millis(600),
        "they ran at once"
    );

    client
        .close()
        .await
        .expect("a clean close: both EOFs exchanged");
    assert_eq!(client.stats().orphans, 0);
    assert!(
        cs.wait().success(),
        "the Python server closed cleanly and exited"
    );
}
