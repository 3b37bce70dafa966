//! The connection against itself and against a hand-driven raw peer: the request API, the
//! handler rules, cs's request checks, closing, and hostile input.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use packetstream::{
    Config, Ended, Error, Packet, PacketCodec, PacketConnection, Pipeline, Reply, Request, Response,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, DuplexStream, ReadBuf};
use tokio_util::codec::Framed;

type Raw = Framed<DuplexStream, PacketCodec>;

/// A connection with a handler on one end of a pipe, and a raw framed peer on the other.
fn raw_peer_of(config: Config, serving: bool) -> (PacketConnection, Raw) {
    let (ours, theirs) = tokio::io::duplex(1 << 20);
    let conn = if serving {
        PacketConnection::with_handler(ours, config, table)
    } else {
        PacketConnection::new(ours, config)
    };
    let conn = conn.expect("a config that works");
    (conn, Framed::new(theirs, PacketCodec::default()))
}

/// The handler table of the spec (§4.4), as `strata packet serve` has it too; beyond it,
/// rq 11 never finishes and rq 12 answers the request's channel and tag.
async fn table(request: Request) -> Result<Reply, String> {
    let Request {
        rq_type: rq,
        flags,
        payload,
        ..
    } = request;
    match rq {
        0 => Ok((flags, payload).into()),
        1 => Ok((0x11, payload.iter().rev().copied().collect::<Vec<u8>>()).into()),
        2 => Ok(().into()),
        3 => Ok((flags + 1).into()),
        4 => Ok("héllo".into()),
        6 => {
            let ms: u64 = std::str::from_utf8(&payload)
                .ok()
                .and_then(|t| t.parse().ok())
                .ok_or("payload is not a number of milliseconds")?;
            tokio::time::sleep(Duration::from_millis(ms)).await;
            Ok((flags, payload).into())
        }
        7 => panic!("a handler that panics"),
        10 => {
            tokio::time::sleep(Duration::from_millis(3)).await;
            panic!("a handler that panics after it waited")
        }
        8 => Ok(u64::MAX.into()),
        12 => Ok(format!("{}/{}", request.channel, request.tag).into()),
        11 => std::future::pending().await,
        _ => Err(format!("no handler for rq_type {rq}")),
    }
}

fn pair(client: Config, server: Config) -> (PacketConnection, PacketConnection) {
    let (a, b) = tokio::io::duplex(1 << 20);
    (
        PacketConnection::new(a, client).unwrap(),
        PacketConnection::with_handler(b, server, table).unwrap(),
    )
}

fn resp(ok: bool, flags: u64, payload: &'static [u8]) -> Response {
    Response {
        ok,
        flags,
        payload: Bytes::from_static(payload),
    }
}

async fn next(raw: &mut Raw) -> Packet {
    tokio::time::timeout(Duration::from_secs(5), raw.next())
        .await
        .expect("the peer sends in time")
        .expect("a packet, not the end")
        .expect("a valid packet")
}

/// Everything the raw peer reads until the stream ends.
async fn rest(raw: &mut Raw) -> Vec<Packet> {
    let mut all = Vec::new();
    while let Some(p) = tokio::time::timeout(Duration::from_secs(5), raw.next())
        .await
        .expect("the stream ends in time")
    {
        all.push(p.expect("a valid packet"));
    }
    all
}

fn request(tag: u64, rq: u64, flags: u64, payload: &'static [u8]) -> Packet {
    Packet::request(0, tag, rq, flags, Bytes::from_static(payload)).unwrap()
}

fn failure_text(p: &Packet) -> &[u8] {
    assert_eq!(p.ok(), Some(false), "{p}");
    p.payload()
}

#[tokio::test]
async fn the_handler_table_answers_as_cs_does() {
    let (client, server) = pair(Config::default(), Config::default());
    let cases: [(u64, u64, &'static [u8], Response); 9] = [
        (0, 1 << 40, b"echo", resp(true, 1 << 40, b"echo")),
        (1, 0, b"abc", resp(true, 0x11, b"cba")),
        (2, 9, b"x", resp(true, 0, b"")),
        (3, 41, b"", resp(true, 42, b"")),
        (4, 0, b"", resp(true, 0, "héllo".as_bytes())),
        (5, 0, b"", resp(false, 0, b"exception during handler")),
        (7, 0, b"", resp(false, 0, b"exception during handler")),
        (8, 0, b"", resp(false, 0, b"exception during handler")),
        (300, 0, b"", resp(false, 0, b"exception during handler")),
    ];
    for (rq, flags, payload, expected) in cases {
        let got = client.request(rq, flags, payload).await.unwrap();
        assert_eq!(got, expected, "rq {rq}");
    }
    let big = Bytes::from(vec![7u8; 200 * 1024]);
    let got = client.request(0, 3, big.clone()).await.unwrap();
    assert_eq!(got.payload, big);
    assert_eq!(client.stats().requests_sent, 10);
    assert_eq!(server.stats().requests_served, 10);
    client.close().await.unwrap();
    server.closed().await.unwrap();
}

#[tokio::test]
async fn the_failure_payload_is_configurable() {
    let config = Config {
        handler_failure: Bytes::from_static(b"nope"),
        ..Config::default()
    };
    let (client, _server) = pair(Config::default(), config);
    assert_eq!(
        client.request(5, 0, "").await.unwrap(),
        resp(false, 0, b"nope")
    );
}

#[tokio::test]
async fn tags_start_at_two_and_are_never_reused() {
    let (client, mut raw) = raw_peer_of(Config::default(), false);
    for expected_tag in 2..6 {
        let call = tokio::spawn({
            let client = client.clone();
            async move { client.request(4, 1, "q").await }
        });
        let p = next(&mut raw).await;
        assert_eq!(
            (p.tag(), p.rq_type(), p.wire_rq_type()),
            (expected_tag, Some(4), Some(5))
        );
        let reply = Packet::response(0, p.tag(), true, 3, Bytes::from_static(b"r")).unwrap();
        raw.send(reply).await.unwrap();
        assert_eq!(call.await.unwrap().unwrap(), resp(true, 3, b"r"));
    }
}

#[tokio::test(start_paused = true)]
async fn four_handlers_at_most_and_replies_in_completion_order() {
    let running = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let (ours, theirs) = tokio::io::duplex(1 << 20);
    let handler = {
        let (running, peak) = (Arc::clone(&running), Arc::clone(&peak));
        move |rq: Request| {
            let (running, peak) = (Arc::clone(&running), Arc::clone(&peak));
            let payload = rq.payload;
            async move {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                let ms = u64::from(payload[0]);
                tokio::time::sleep(Duration::from_millis(ms)).await;
                running.fetch_sub(1, Ordering::SeqCst);
                Ok::<_, Infallible>(payload)
            }
        }
    };
    let _server = PacketConnection::with_handler(ours, Config::default(), handler).unwrap();
    let mut raw = Framed::new(theirs, PacketCodec::default());
    // Tags 2..=13; the first four sleep 40, 30, 20, 10 ms, the rest 100 ms.
    for tag in 2..14u64 {
        let ms = if tag < 6 {
            40 - 10 * (tag as u8 - 2)
        } else {
            100
        };
        raw.feed(Packet::request(0, tag, 0, 0, Bytes::from(vec![ms])).unwrap())
            .await
            .unwrap();
    }
    SinkExt::<Packet>::flush(&mut raw).await.unwrap();
    let mut order = Vec::new();
    for _ in 0..12 {
        order.push(next(&mut raw).await.tag());
    }
    assert_eq!(&order[..4], [5, 4, 3, 2], "completion order");
    let mut rest: Vec<u64> = order[4..].to_vec();
    rest.sort_unstable();
    assert_eq!(rest, (6..14).collect::<Vec<_>>());
    assert_eq!(peak.load(Ordering::SeqCst), 4);
}

/// The user's code panics outside the handler's future: in the closure before it returns the
/// future, or while its result is made into a reply (here an error's `Display`). That request
/// gets the failure reply, and the connection goes on serving.
#[tokio::test]
async fn a_panic_outside_the_handlers_future_is_a_failure_reply_and_the_connection_goes_on() {
    struct Rude;
    impl std::fmt::Display for Rude {
        fn fmt(&self, _: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            panic!("an error whose Display panics")
        }
    }
    let (a, b) = tokio::io::duplex(1 << 16);
    let _converting =
        PacketConnection::with_handler(b, Config::default(), |rq: Request| async move {
            if rq.rq_type == 0 { Err(Rude) } else { Ok(()) }
        })
        .unwrap();
    let (c, d) = tokio::io::duplex(1 << 16);
    let _calling = PacketConnection::with_handler(d, Config::default(), |rq: Request| {
        assert_ne!(rq.rq_type, 0, "a handler that panics as it is called");
        async { Ok::<_, Infallible>(()) }
    })
    .unwrap();
    for (name, io) in [("converting", a), ("calling", c)] {
        let client = PacketConnection::new(io, Config::default()).unwrap();
        let failed = client.request(0, 0, "").await.unwrap();
        assert_eq!(
            failed,
            resp(false, 0, b"exception during handler"),
            "{name}"
        );
        let served = client.request(1, 0, "").await.unwrap();
        assert_eq!(served, resp(true, 0, b""), "{name}");
    }
}

/// Handlers that finish at once, that wait, and that panic after waiting, interleaved: each
/// call gets its own answer, and a panic in one leaves the next calls intact.
#[tokio::test]
async fn handlers_that_wait_then_panic_leave_the_others_intact() {
    let (client, server) = pair(Config::default(), Config::default());
    let handler_calls = (0..40u64).map(|i| {
        let client = client.clone();
        async move {
            let got = match i % 4 {
                0 => client.request(0, i, "now").await,
                1 => client.request(6, i, "5").await,
                2 => client.request(9, i, "").await,
                _ => client.request(10, i, "3").await,
            };
            (i, got.unwrap())
        }
    });
    for (i, got) in futures_util::future::join_all(handler_calls).await {
        let expected = match i % 4 {
            0 => resp(true, i, b"now"),
            1 => resp(true, i, b"5"),
            _ => resp(false, 0, b"exception during handler"),
        };
        assert_eq!(got, expected, "request {i}");
    }
    assert_eq!(server.stats().requests_served, 40);
    client.close().await.unwrap();
    server.closed().await.unwrap();
}

#[tokio::test]
async fn cs_request_checks_with_cs_texts() {
    // No handler.
    let (_client, mut raw) = raw_peer_of(Config::default(), false);
    raw.send(request(2, 0, 0, b"q")).await.unwrap();
    assert_eq!(failure_text(&next(&mut raw).await), b"no request handler");

    // A tag already in use, then an unknown channel, then ERQ.
    let (_server, mut raw) = raw_peer_of(Config::default(), true);
    raw.feed(request(9, 6, 0, b"50")).await.unwrap();
    raw.feed(request(9, 0, 0, b"again")).await.unwrap();
    raw.feed(Packet::request(5, 7, 0, 0, Bytes::from_static(b"q")).unwrap())
        .await
        .unwrap();
    SinkExt::<Packet>::flush(&mut raw).await.unwrap();
    let dup = next(&mut raw).await;
    assert_eq!(
        (dup.tag(), failure_text(&dup)),
        (9, &b"channel 0: tag already in use: 9"[..])
    );
    let chan = next(&mut raw).await;
    assert_eq!((chan.channel(), chan.tag()), (5, 7));
    assert_eq!(failure_text(&chan), b"unknown channel %d");
    let first = next(&mut raw).await;
    assert_eq!(
        (first.tag(), first.ok(), &first.payload()[..]),
        (9, Some(true), &b"50"[..])
    );
    // Answered, so the tag may come again.
    raw.send(request(9, 0, 0, b"later")).await.unwrap();
    assert_eq!(
        next(&mut raw).await.payload(),
        &Bytes::from_static(b"later")
    );

    raw.feed(Packet::ERQ).await.unwrap();
    raw.feed(request(10, 0, 0, b"q")).await.unwrap();
    SinkExt::<Packet>::flush(&mut raw).await.unwrap();
    assert_eq!(
        failure_text(&next(&mut raw).await),
        b"requests no longer allowed"
    );
}

#[tokio::test]
async fn channels_work_between_two_strata_peers_when_on() {
    let on = Config {
        channels: true,
        ..Config::default()
    };
    let (client, _server) = pair(on.clone(), on.clone());
    assert_eq!(
        client.request_on(300, 0, 3, "x").await.unwrap(),
        resp(true, 3, b"x")
    );
    assert_eq!(
        client.request_on(5, 0, 1, "y").await.unwrap(),
        resp(true, 1, b"y")
    );

    // Off (cs-compatible) on our side: refused locally, as cs raises ValueError.
    let (cs_client, _server) = pair(Config::default(), Config::default());
    assert!(matches!(
        cs_client.request_on(5, 0, 0, "x").await,
        Err(Error::UnknownChannel { channel: 5 })
    ));
    // Off on the server's side: refused as cs refuses.
    let (client, _cs_server) = pair(on, Config::default());
    assert_eq!(
        client.request_on(5, 0, 0, "x").await.unwrap(),
        resp(false, 0, b"unknown channel %d")
    );
}

#[tokio::test]
async fn a_clean_close_both_ways() {
    let (client, server) = pair(Config::default(), Config::default());
    assert_eq!(
        client.request(0, 1, "hi").await.unwrap(),
        resp(true, 1, b"hi")
    );
    client.close().await.unwrap();
    server.closed().await.unwrap();
    assert!(matches!(
        client.request(0, 0, "late").await,
        Err(Error::Ended(Ended::Local))
    ));

    // The server closes first.
    let (client, server) = pair(Config::default(), Config::default());
    server.close().await.unwrap();
    client.closed().await.unwrap();
}

#[tokio::test]
async fn the_close_sequence_on_the_wire() {
    // As a server: the peer's request, then its EOF; we answer, then ERQ, EOF, and shut.
    let (server, mut raw) = raw_peer_of(Config::default(), true);
    raw.feed(request(2, 6, 0, b"20")).await.unwrap();
    raw.feed(Packet::EOF).await.unwrap();
    SinkExt::<Packet>::flush(&mut raw).await.unwrap();
    let all = rest(&mut raw).await;
    assert_eq!(all.len(), 3, "{all:?}");
    assert_eq!((all[0].tag(), all[0].ok()), (2, Some(true)));
    assert!(all[1].is_erq() && all[2].is_eof());
    server.closed().await.unwrap();

    // As a client: close() with a request in flight; the peer answers before its EOF.
    let (client, mut raw) = raw_peer_of(Config::default(), false);
    let call = tokio::spawn({
        let client = client.clone();
        async move { client.request(0, 0, "q").await }
    });
    let rq = next(&mut raw).await;
    let closing = tokio::spawn({
        let client = client.clone();
        async move { client.close().await }
    });
    assert!(next(&mut raw).await.is_erq());
    assert!(next(&mut raw).await.is_eof());
    raw.feed(Packet::response(0, rq.tag(), true, 0, Bytes::from_static(b"a")).unwrap())
        .await
        .unwrap();
    raw.feed(Packet::ERQ).await.unwrap();
    raw.feed(Packet::EOF).await.unwrap();
    SinkExt::<Packet>::flush(&mut raw).await.unwrap();
    assert_eq!(call.await.unwrap().unwrap(), resp(true, 0, b"a"));
    closing.await.unwrap().unwrap();
    assert!(rest(&mut raw).await.is_empty(), "the write side was shut");
}

#[tokio::test]
async fn a_tag_is_in_use_while_its_request_runs_or_waits_and_free_once_answered() {
    // One handler: tag 3 sleeps, tag 4 waits for the handler behind it, and a second tag 4
    // is refused while the first waits. Once they are answered, tag 4 may come again. Tag 5
    // comes twice in the same write: the first waits for its handler when the second is
    // read, so the second is refused (as cs refuses it) and the first is still answered.
    let config = Config {
        max_handlers: 1,
        ..Config::default()
    };
    let (_server, mut raw) = raw_peer_of(config, true);
    raw.feed(request(3, 6, 0, b"50")).await.unwrap();
    raw.feed(request(4, 0, 1, b"queued")).await.unwrap();
    raw.feed(request(4, 0, 2, b"again")).await.unwrap();
    SinkExt::<Packet>::flush(&mut raw).await.unwrap();
    let dup = next(&mut raw).await;
    assert_eq!(
        (dup.tag(), failure_text(&dup)),
        (4, &b"channel 0: tag already in use: 4"[..])
    );
    let answered: Vec<_> = [next(&mut raw).await, next(&mut raw).await]
        .iter()
        .map(|p| (p.tag(), p.ok(), p.flags()))
        .collect();
    assert_eq!(answered, [(3, Some(true), 0), (4, Some(true), 1)]);

    raw.send(request(4, 0, 3, b"reused")).await.unwrap();
    let reused = next(&mut raw).await;
    assert_eq!(
        (reused.tag(), reused.ok(), reused.flags()),
        (4, Some(true), 3)
    );

    raw.feed(request(5, 0, 1, b"once")).await.unwrap();
    raw.feed(request(5, 0, 2, b"twice")).await.unwrap();
    SinkExt::<Packet>::flush(&mut raw).await.unwrap();
    let dup = next(&mut raw).await;
    assert_eq!(
        (dup.tag(), failure_text(&dup)),
        (5, &b"channel 0: tag already in use: 5"[..])
    );
    let first = next(&mut raw).await;
    assert_eq!((first.tag(), first.ok(), first.flags()), (5, Some(true), 1));
}

#[tokio::test]
async fn requests_queued_before_close_go_out_before_erq_and_none_after() {
    // One thread: the five callers and close() all run before the connection's task, so
    // three requests are queued when close() is called, and two are made after it, before
    // the task could run: close() takes effect when it is called, so those two are refused
    // and never reach the wire.
    let (client, mut raw) = raw_peer_of(Config::default(), false);
    let call = |i: u64| {
        let client = client.clone();
        tokio::spawn(async move { client.request(0, i, "q").await })
    };
    let calls: Vec<_> = (0..3).map(call).collect();
    let closing = tokio::spawn({
        let client = client.clone();
        async move { client.close().await }
    });
    let late: Vec<_> = (3..5).map(call).collect();
    for late in late {
        assert!(matches!(late.await.unwrap(), Err(Error::Closing)));
    }
    let mut tags = Vec::new();
    for i in 0..3 {
        let rq = next(&mut raw).await;
        assert_eq!((rq.rq_type(), rq.flags()), (Some(0), i), "{rq}");
        tags.push(rq.tag());
    }
    assert!(next(&mut raw).await.is_erq());
    assert!(next(&mut raw).await.is_eof());
    // Once ERQ is out, a request is refused here and never reaches the wire.
    assert!(matches!(
        client.request(0, 9, "late").await,
        Err(Error::Closing)
    ));
    for (i, tag) in tags.into_iter().enumerate() {
        let reply = Packet::response(0, tag, true, i as u64, Bytes::from_static(b"a")).unwrap();
        raw.feed(reply).await.unwrap();
    }
    raw.feed(Packet::ERQ).await.unwrap();
    raw.feed(Packet::EOF).await.unwrap();
    SinkExt::<Packet>::flush(&mut raw).await.unwrap();
    for (i, call) in calls.into_iter().enumerate() {
        assert_eq!(call.await.unwrap().unwrap(), resp(true, i as u64, b"a"));
    }
    closing.await.unwrap().unwrap();
    assert!(rest(&mut raw).await.is_empty(), "nothing after EOF");
}

#[tokio::test(start_paused = true)]
async fn close_gives_up_on_a_silent_peer() {
    let config = Config {
        close_timeout: Duration::from_secs(2),
        ..Config::default()
    };
    let (client, _raw) = raw_peer_of(config, false);
    let started = tokio::time::Instant::now();
    assert!(matches!(client.close().await, Err(Error::CloseTimeout(_))));
    assert_eq!(started.elapsed(), Duration::from_secs(2));
}

#[tokio::test]
async fn peer_eof_fails_pending_requests_at_once() {
    let (client, mut raw) = raw_peer_of(Config::default(), false);
    let call = tokio::spawn({
        let client = client.clone();
        async move { client.request(0, 0, "q").await }
    });
    next(&mut raw).await;
    raw.send(Packet::EOF).await.unwrap();
    assert!(matches!(
        call.await.unwrap(),
        Err(Error::Ended(Ended::PeerEof))
    ));
    // We still close properly: ERQ, EOF, then the write side shuts.
    let all = rest(&mut raw).await;
    assert!(
        all.len() == 2 && all[0].is_erq() && all[1].is_eof(),
        "{all:?}"
    );
    client.closed().await.unwrap();
}

#[tokio::test]
async fn the_stream_ending_fails_pending_requests_at_once() {
    let (client, mut raw) = raw_peer_of(Config::default(), false);
    let call = tokio::spawn({
        let client = client.clone();
        async move { client.request(0, 0, "q").await }
    });
    next(&mut raw).await;
    drop(raw);
    assert!(matches!(
        call.await.unwrap(),
        Err(Error::Ended(Ended::StreamEnd))
    ));
}

#[test]
fn a_runtime_shutting_down_fails_the_requests_waiting_in_another() {
    let theirs = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .build()
        .unwrap();
    let (client, mut raw) = theirs.block_on(async { raw_peer_of(Config::default(), false) });
    let ours = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    ours.block_on(async move {
        let call = tokio::spawn({
            let client = client.clone();
            async move { client.request(0, 0, "q").await }
        });
        // The request reached the peer, so the connection's task has run; then it is dropped.
        next(&mut raw).await;
        theirs.shutdown_background();
        fn dropped<T>(r: Result<T, Error>) -> bool {
            matches!(r, Err(Error::Ended(Ended::TaskDropped)))
        }
        let waited = tokio::time::timeout(Duration::from_secs(5), call)
            .await
            .expect("the waiting request fails at once");
        assert!(dropped(waited.unwrap()));
        assert!(dropped(client.closed().await));
        assert!(dropped(client.request(0, 0, "again").await));
    });
}

/// The raw peer writes `bytes` and then (if `end`) shuts its side; a request is pending.
async fn pending_request_meets(bytes: &[u8], end: bool, config: Config) -> (Error, Error) {
    let (client, raw) = raw_peer_of(config, false);
    let call = tokio::spawn({
        let client = client.clone();
        async move { client.request(0, 0, "q").await }
    });
    let mut io = raw.into_inner();
    let mut first = [0u8; 4];
    io.read_exact(&mut first).await.unwrap();
    io.write_all(bytes).await.unwrap();
    if end {
        io.shutdown().await.unwrap();
    }
    let pending = tokio::time::timeout(Duration::from_secs(5), call)
        .await
        .expect("the caller does not hang")
        .unwrap()
        .expect_err("the request fails");
    let closed = client.closed().await.expect_err("the connection failed");
    (pending, closed)
}

#[tokio::test]
async fn a_truncated_frame_then_eof_fails_the_caller_without_panic() {
    let (pending, closed) =
        pending_request_meets(&[0x08, 0x02, 0x04, 0x61], true, Config::default()).await;
    assert!(
        matches!(closed, Error::Truncated { buffered: 4 }),
        "{closed}"
    );
    let Error::Ended(Ended::Failed(why)) = pending else {
        panic!("{pending}")
    };
    assert!(matches!(*why, Error::Truncated { .. }));
}

#[tokio::test]
async fn a_length_prefix_over_max_packet_closes_the_connection() {
    let config = Config {
        max_packet: 1024,
        ..Config::default()
    };
    // 2^40 bytes announced; nothing of it follows.
    let (pending, closed) =
        pending_request_meets(&[0xa0, 0x80, 0x80, 0x80, 0x80, 0x00], false, config).await;
    assert!(matches!(closed, Error::PacketTooLarge { len, max: 1024 } if len == 1 << 40));
    assert!(matches!(pending, Error::Ended(Ended::Failed(_))));
}

#[tokio::test]
async fn varint_overflow_closes_the_connection() {
    let (_, closed) = pending_request_meets(&[0xff; 11], false, Config::default()).await;
    assert!(matches!(closed, Error::VarintOverflow));
    // Inside a body too: tag 2, then a flagsword of eleven bytes.
    let mut body = vec![0x0c, 0x02];
    body.extend([0xff; 10]);
    body.push(0x7f);
    let (_, closed) = pending_request_meets(&body, false, Config::default()).await;
    assert!(matches!(closed, Error::VarintOverflow), "{closed}");
}

#[tokio::test(start_paused = true)]
async fn a_peer_that_floods_refused_requests_without_reading_is_throttled() {
    const FLOOD: u64 = 100_000;
    let config = Config {
        max_packet: 4096,
        max_unsent: 4096,
        ..Config::default()
    };
    // No handler: every request is refused with a 24-byte failure nobody reads.
    let (ours, theirs) = tokio::io::duplex(16 * 1024);
    let conn = PacketConnection::new(ours, config).unwrap();
    let (_reader, mut writer) = tokio::io::split(theirs);
    let flood = tokio::spawn(async move {
        for tag in 2..FLOOD + 2 {
            let mut frame = bytes::BytesMut::new();
            Packet::request(0, tag, 0, 0, Bytes::new())
                .unwrap()
                .encode(&mut frame);
            writer.write_all(&frame).await.unwrap();
        }
    });
    // Were refusals buffered without bound, the flood would finish at once.
    let finished = tokio::time::timeout(Duration::from_secs(5), flood).await;
    assert!(finished.is_err(), "the flooding peer was never slowed down");
    let stats = conn.stats();
    assert!(stats.requests_refused > 0);
    assert!(
        stats.packets_in < FLOOD / 10,
        "reading paused early: {} of {FLOOD} read",
        stats.packets_in
    );
}

#[tokio::test]
async fn a_stray_response_is_an_orphan_and_the_link_goes_on() {
    let (server, mut raw) = raw_peer_of(Config::default(), true);
    raw.send(Packet::response(0, 99, true, 0, Bytes::new()).unwrap())
        .await
        .unwrap();
    raw.send(Packet::response(3, 99, true, 0, Bytes::new()).unwrap())
        .await
        .unwrap();
    raw.send(request(2, 0, 0, b"still here")).await.unwrap();
    assert_eq!(
        next(&mut raw).await.payload(),
        &Bytes::from_static(b"still here")
    );
    assert_eq!(server.stats().orphans, 2);
}

#[tokio::test]
async fn a_request_with_wire_rq_type_zero_is_eof() {
    let (server, raw) = raw_peer_of(Config::default(), true);
    let mut io = raw.into_inner();
    // Tag 9, request, wire rq_type 0, payload "x"; then a valid request that must be ignored.
    io.write_all(&[0x04, 0x09, 0x02, 0x00, 0x78, 0x03, 0x02, 0x02, 0x01])
        .await
        .unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), io.read_to_end(&mut out))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        out,
        [0x03, 0x01, 0x02, 0x00, 0x03, 0x00, 0x02, 0x00],
        "ERQ, EOF and nothing else"
    );
    server.closed().await.unwrap();
}

#[tokio::test]
async fn timeouts_and_cancellations_make_late_replies_orphans() {
    let config = Config {
        request_timeout: Some(Duration::from_millis(20)),
        ..Config::default()
    };
    let (client, _server) = pair(config, Config::default());
    assert!(matches!(
        client.request(6, 0, "200").await,
        Err(Error::Timeout(_))
    ));
    // Cancelled by dropping the future.
    let cancelled =
        tokio::time::timeout(Duration::from_millis(5), client.request(6, 0, "100")).await;
    assert!(cancelled.is_err());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(client.stats().orphans, 2);
    assert_eq!(
        client.request(0, 0, "fine").await.unwrap(),
        resp(true, 0, b"fine")
    );
}

#[tokio::test]
async fn requests_beyond_limits_are_refused_locally() {
    let config = Config {
        max_packet: 128,
        ..Config::default()
    };
    let (client, _server) = pair(config, Config::default());
    assert!(matches!(
        client.request(0, 0, vec![0u8; 128]).await,
        Err(Error::PacketTooLarge { max: 128, .. })
    ));
    assert!(matches!(
        client.request(u64::MAX, 0, "").await,
        Err(Error::RqTypeTooLarge { .. })
    ));
    assert!(matches!(
        client.request(0, u64::MAX, "").await,
        Err(Error::FlagsTooLarge { .. })
    ));
    assert_eq!(client.stats().packets_out, 0);
}

/// A stream that counts the writes made to it.
struct CountingWrites {
    inner: DuplexStream,
    writes: Arc<AtomicUsize>,
}

impl AsyncRead for CountingWrites {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for CountingWrites {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.writes.fetch_add(1, Ordering::SeqCst);
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[tokio::test(flavor = "current_thread")]
async fn packets_made_in_one_wake_go_out_in_one_write() {
    let (a, b) = tokio::io::duplex(1 << 20);
    let writes = Arc::new(AtomicUsize::new(0));
    let client = PacketConnection::new(
        CountingWrites {
            inner: a,
            writes: Arc::clone(&writes),
        },
        Config::default(),
    )
    .unwrap();
    let _server = PacketConnection::with_handler(b, Config::default(), table).unwrap();
    let calls = (0..10u64).map(|i| client.request(0, i, "x"));
    let replies = futures_util::future::join_all(calls).await;
    assert!(replies.iter().all(|r| r.as_ref().is_ok_and(|r| r.ok)));
    assert_eq!(client.stats().packets_out, 10);
    assert_eq!(writes.load(Ordering::SeqCst), 1, "ten requests, one write");
}

#[tokio::test(start_paused = true)]
async fn a_grace_holds_writes_for_more_packets() {
    let config = Config {
        grace: Duration::from_millis(10),
        ..Config::default()
    };
    let (client, _server) = pair(config, Config::default());
    let started = tokio::time::Instant::now();
    client.request(0, 0, "x").await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(10));
}

#[tokio::test]
async fn large_replies_held_by_the_caller_while_more_arrive_are_all_intact() {
    // Each reply shares the client's read buffer; the caller keeps every one, so the driver
    // can never reuse that buffer and must make room anew, after yielding once per wake.
    let (client, server) = pair(Config::default(), Config::default());
    let requests = (0..8u8).map(|i| client.request(0, u64::from(i), vec![i; 100 * 1024]));
    let replies = futures_util::future::join_all(requests).await;
    for (i, reply) in replies.into_iter().enumerate() {
        let reply = reply.expect("answered");
        assert_eq!(reply.flags, i as u64);
        assert_eq!(reply.payload.len(), 100 * 1024);
        assert!(
            reply.payload.iter().all(|&b| usize::from(b) == i),
            "reply {i} intact"
        );
    }
    client.close().await.expect("clean close");
    server.closed().await.expect("clean close");
}

/// A client with the given in-flight bound, a pipeline on it, and the raw peer it talks to.
fn pipeline_to_raw(max_in_flight: usize) -> (PacketConnection, Pipeline, Raw) {
    let config = Config {
        max_in_flight,
        ..Config::default()
    };
    let (client, raw) = raw_peer_of(config, false);
    (client.clone(), client.pipeline(), raw)
}

/// A `request()` that the raw peer echoes. Once it is answered, the connection has read
/// everything the peer sent before it.
async fn echoed_request(client: &PacketConnection, raw: &mut Raw, flags: u64) -> Response {
    let call = tokio::spawn({
        let client = client.clone();
        async move { client.request(0, flags, "sync").await }
    });
    let sent = next(raw).await;
    raw.send(echo_of(&sent)).await.unwrap();
    call.await.unwrap().unwrap()
}

/// Two requests sent through `pipeline` and flushed, as the raw peer reads them.
async fn two_sent(pipeline: &mut Pipeline, raw: &mut Raw) -> (Packet, Packet) {
    pipeline.send(0, 1, "a").await.unwrap();
    pipeline.send(0, 2, "b").await.unwrap();
    pipeline.flush();
    (next(raw).await, next(raw).await)
}

/// Replies to `packet` (a request) as the echo handler would.
fn echo_of(packet: &Packet) -> Packet {
    Packet::response(
        0,
        packet.tag(),
        true,
        packet.flags(),
        packet.payload().clone(),
    )
    .unwrap()
}

/// The next outcome of `pipeline`, which must be a response.
async fn recv_ok(pipeline: &mut Pipeline) -> (u64, Response) {
    let (tag, outcome) = tokio::time::timeout(Duration::from_secs(5), pipeline.recv())
        .await
        .expect("an outcome in time")
        .expect("a request waits");
    (tag, outcome.expect("a response"))
}

#[tokio::test]
async fn a_pipeline_shares_the_in_flight_bound_and_takes_outcomes_in_the_order_they_come() {
    let (client, mut pipeline, mut raw) = pipeline_to_raw(4);
    let mut tags = Vec::new();
    for flags in 0..3 {
        tags.push(pipeline.send(0, flags, "p").await.unwrap());
    }
    // Flushed: queued on the connection.
    pipeline.flush();
    // A request() beside it takes the fourth place and a tag no pipeline request has. The
    // pipeline's requests were queued first, so they go out first, with it.
    let call = tokio::spawn({
        let client = client.clone();
        async move { client.request(0, 7, "r").await }
    });
    let sent: Vec<Packet> = [
        next(&mut raw).await,
        next(&mut raw).await,
        next(&mut raw).await,
    ]
    .into();
    assert_eq!(sent.iter().map(Packet::tag).collect::<Vec<_>>(), tags);
    let first = next(&mut raw).await;
    assert_eq!(first.flags(), 7);
    assert!(
        !tags.contains(&first.tag()),
        "{first} reuses a pipeline tag"
    );
    // The bound is full: the pipeline's next send waits.
    let mut fourth = Box::pin(pipeline.send(0, 3, "p"));
    assert!(futures_util::poll!(fourth.as_mut()).is_pending());
    // request()'s response frees a place: the fourth goes.
    raw.send(echo_of(&first)).await.unwrap();
    assert_eq!(call.await.unwrap().unwrap(), resp(true, 7, b"r"));
    let fourth = fourth.await.unwrap();
    // Answered out of order.
    raw.send(echo_of(&sent[2])).await.unwrap();
    raw.send(echo_of(&sent[0])).await.unwrap();
    assert_eq!(recv_ok(&mut pipeline).await, (tags[2], resp(true, 2, b"p")));
    assert_eq!(recv_ok(&mut pipeline).await, (tags[0], resp(true, 0, b"p")));
    assert_eq!(pipeline.in_flight(), 2);
    // The fourth goes out at the latest when recv has to wait.
    let (got, sent4) = tokio::join!(recv_ok(&mut pipeline), async {
        let sent4 = next(&mut raw).await;
        raw.send(echo_of(&sent4)).await.unwrap();
        sent4
    });
    assert_eq!(sent4.tag(), fourth);
    assert_eq!(got, (fourth, resp(true, 3, b"p")));
    raw.send(echo_of(&sent[1])).await.unwrap();
    assert_eq!(recv_ok(&mut pipeline).await.0, tags[1]);
    assert!(pipeline.recv().await.is_none(), "nothing waits");
    assert_eq!(client.stats().orphans, 0);
}

#[tokio::test]
async fn a_pipeline_echoes_thousands_through_a_strata_server() {
    let (client, server) = pair(Config::default(), Config::default());
    let mut pipeline = client.pipeline();
    const N: u64 = 5000;
    let (mut sent, mut flags_of) = (0, std::collections::HashMap::new());
    let mut got = 0;
    while got < N {
        while sent < N && pipeline.in_flight() < 64 {
            let payload = sent.to_be_bytes().to_vec();
            let tag = pipeline.send(0, sent, payload).await.unwrap();
            assert!(
                flags_of.insert(tag, sent).is_none(),
                "tag {tag} issued twice"
            );
            sent += 1;
        }
        let (tag, response) = recv_ok(&mut pipeline).await;
        let flags = flags_of.remove(&tag).expect("a tag we sent, answered once");
        let echo = Response {
            ok: true,
            flags,
            payload: Bytes::copy_from_slice(&flags.to_be_bytes()),
        };
        assert_eq!(response, echo);
        got += 1;
    }
    assert!(flags_of.is_empty());
    assert!(pipeline.recv().await.is_none());
    assert_eq!(client.stats().requests_sent, N);
    assert_eq!(server.stats().requests_served, N);
    drop(pipeline);
    client.close().await.expect("clean close");
    server.closed().await.expect("clean close");
}

/// A stray and a duplicate for each way of sending: each counted as an orphan, none
/// delivered twice, none taking the place of a legitimate response.
#[tokio::test]
async fn duplicate_and_stray_responses_are_orphans_on_every_client_path() {
    let (client, mut pipeline, mut raw) = pipeline_to_raw(Config::default().max_in_flight);
    // request(): a duplicate arrives before the response is taken.
    let call = tokio::spawn({
        let client = client.clone();
        async move { client.request(0, 1, "r").await }
    });
    let r = next(&mut raw).await;
    raw.feed(echo_of(&r)).await.unwrap();
    raw.feed(Packet::response(0, r.tag(), false, 9, Bytes::new()).unwrap())
        .await
        .unwrap();
    // submit(): a stray on the wrong channel first, then its response, then a duplicate.
    let submitted = client.submit(0, 2, "s").await.unwrap();
    let s = next(&mut raw).await;
    assert_eq!(s.tag(), submitted.tag());
    raw.feed(Packet::response(3, s.tag(), true, 9, Bytes::new()).unwrap())
        .await
        .unwrap();
    raw.feed(echo_of(&s)).await.unwrap();
    raw.feed(echo_of(&s)).await.unwrap();
    // The pipeline: its response twice, and one for a tag nobody sent.
    pipeline.send(0, 3, "p").await.unwrap();
    pipeline.flush();
    let p = next(&mut raw).await;
    raw.feed(echo_of(&p)).await.unwrap();
    raw.feed(echo_of(&p)).await.unwrap();
    raw.feed(Packet::response(0, 1 << 40, true, 9, Bytes::new()).unwrap())
        .await
        .unwrap();
    SinkExt::<Packet>::flush(&mut raw).await.unwrap();
    assert_eq!(call.await.unwrap().unwrap(), resp(true, 1, b"r"));
    assert_eq!(submitted.await.unwrap(), resp(true, 2, b"s"));
    assert_eq!(recv_ok(&mut pipeline).await, (p.tag(), resp(true, 3, b"p")));
    echoed_request(&client, &mut raw, 4).await;
    assert!(
        pipeline.recv().await.is_none(),
        "the duplicate was no outcome"
    );
    assert_eq!(client.stats().orphans, 5);
}

#[tokio::test]
async fn a_dropped_pipeline_cancels_its_requests_and_their_responses_are_orphans() {
    let (client, mut pipeline, mut raw) = pipeline_to_raw(Config::default().max_in_flight);
    let (a, b) = two_sent(&mut pipeline, &mut raw).await;
    drop(pipeline);
    raw.send(echo_of(&a)).await.unwrap();
    raw.send(echo_of(&b)).await.unwrap();
    echoed_request(&client, &mut raw, 4).await;
    assert_eq!(client.stats().orphans, 2);
}

#[tokio::test]
async fn when_the_link_ends_a_pipeline_gets_what_came_then_each_request_its_error() {
    let (_client, mut pipeline, mut raw) = pipeline_to_raw(Config::default().max_in_flight);
    let (a, b) = two_sent(&mut pipeline, &mut raw).await;
    raw.send(echo_of(&a)).await.unwrap();
    raw.send(Packet::EOF).await.unwrap();
    assert_eq!(recv_ok(&mut pipeline).await.0, a.tag());
    let (tag, outcome) = tokio::time::timeout(Duration::from_secs(5), pipeline.recv())
        .await
        .expect("no hang")
        .expect("b's outcome");
    assert_eq!(tag, b.tag());
    assert!(
        matches!(outcome, Err(Error::Ended(Ended::PeerEof))),
        "{outcome:?}"
    );
    assert!(pipeline.recv().await.is_none());
    assert!(matches!(
        pipeline.send(0, 3, "c").await,
        Err(Error::Ended(_) | Error::Closing)
    ));
}

#[tokio::test]
async fn a_pipeline_made_after_the_link_ended_fails_at_once() {
    let (client, raw) = raw_peer_of(Config::default(), false);
    drop(raw);
    let _ = client.closed().await;
    let mut pipeline = client.pipeline();
    assert!(pipeline.send(0, 0, "late").await.is_err());
    assert!(pipeline.recv().await.is_none(), "nothing was sent");
}

#[tokio::test]
async fn a_pipelines_requests_sent_before_close_go_out_before_erq() {
    let (client, mut pipeline, mut raw) = pipeline_to_raw(Config::default().max_in_flight);
    let tag = pipeline.send(0, 1, "before").await.unwrap();
    pipeline.flush();
    let closing = tokio::spawn({
        let client = client.clone();
        async move { client.close().await }
    });
    let sent = next(&mut raw).await;
    assert_eq!(sent.tag(), tag);
    assert!(next(&mut raw).await.is_erq());
    assert!(matches!(
        pipeline.send(0, 2, "after").await,
        Err(Error::Closing)
    ));
    raw.send(echo_of(&sent)).await.unwrap();
    assert_eq!(recv_ok(&mut pipeline).await.0, tag);
    drop(pipeline);
    raw.send(Packet::EOF).await.unwrap();
    assert!(
        rest(&mut raw).await.iter().all(Packet::is_eof),
        "nothing after ERQ but EOF"
    );
    closing.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_pipelines_request_not_flushed_when_the_close_begins_ends_with_closing() {
    let (client, mut pipeline, mut raw) = pipeline_to_raw(Config::default().max_in_flight);
    let tag = pipeline.send(0, 1, "unflushed").await.unwrap();
    assert_eq!(pipeline.in_flight(), 1);
    let closing = tokio::spawn({
        let client = client.clone();
        async move { client.close().await }
    });
    assert!(
        next(&mut raw).await.is_erq(),
        "ERQ first: the request was never queued"
    );
    let (got, outcome) = pipeline.recv().await.unwrap();
    assert_eq!(got, tag);
    assert!(matches!(outcome, Err(Error::Closing)), "{outcome:?}");
    assert_eq!(pipeline.in_flight(), 0);
    assert!(pipeline.recv().await.is_none());
    drop(pipeline);
    raw.send(Packet::EOF).await.unwrap();
    assert!(rest(&mut raw).await.iter().all(Packet::is_eof));
    closing.await.unwrap().unwrap();
    assert_eq!(client.stats().requests_sent, 0);
}

#[tokio::test(start_paused = true)]
async fn a_timeout_frees_the_place_on_every_path_and_late_replies_are_orphans() {
    let config = Config {
        request_timeout: Some(Duration::from_millis(50)),
        max_in_flight: 1,
        ..Config::default()
    };
    let (client, mut raw) = raw_peer_of(config, false);
    let mut pipeline = client.pipeline();
    let tag = pipeline.send(0, 1, "slow").await.unwrap();
    let (got, outcome) = pipeline.recv().await.unwrap();
    assert_eq!(got, tag);
    assert!(matches!(outcome, Err(Error::Timeout(_))));
    assert_eq!(pipeline.in_flight(), 0, "the place is free");
    let call = client.submit(0, 2, "slow too").await.unwrap();
    assert!(matches!(call.await, Err(Error::Timeout(_))));
    assert!(matches!(
        client.request(0, 3, "and this").await,
        Err(Error::Timeout(_))
    ));
    // The three late replies.
    for _ in 0..3 {
        let sent = next(&mut raw).await;
        raw.send(echo_of(&sent)).await.unwrap();
    }
    let sync = tokio::spawn({
        let client = client.clone();
        async move { client.request(0, 4, "sync").await }
    });
    let sent = next(&mut raw).await;
    raw.send(echo_of(&sent)).await.unwrap();
    assert_eq!(sync.await.unwrap().unwrap(), resp(true, 4, b"sync"));
    let stats = client.stats();
    assert_eq!((stats.timeouts, stats.orphans), (3, 3));
}

#[tokio::test]
async fn submit_sends_at_once_and_its_call_is_awaited_later_or_cancelled() {
    let (client, mut raw) = raw_peer_of(Config::default(), false);
    let call = client.submit(4, 1, "now").await.unwrap();
    // On the wire before anyone awaits the call.
    let sent = next(&mut raw).await;
    assert_eq!((sent.tag(), sent.rq_type()), (call.tag(), Some(4)));
    let dropped = client.submit(4, 2, "never awaited").await.unwrap();
    let gone = next(&mut raw).await;
    drop(dropped);
    raw.send(echo_of(&gone)).await.unwrap();
    raw.send(echo_of(&sent)).await.unwrap();
    // Awaited from another task, after the responses came.
    let answered = tokio::spawn(call).await.unwrap();
    assert_eq!(answered.unwrap(), resp(true, 1, b"now"));
    assert_eq!(client.stats().orphans, 1, "the cancelled call's response");
}

#[tokio::test]
async fn a_handler_knows_the_channel_and_tag_of_its_request() {
    let on = Config {
        channels: true,
        ..Config::default()
    };
    let (_server, mut raw) = raw_peer_of(on, true);
    raw.send(Packet::request(300, 77, 12, 0, Bytes::new()).unwrap())
        .await
        .unwrap();
    let reply = next(&mut raw).await;
    assert_eq!((reply.channel(), reply.tag()), (300, 77));
    assert_eq!(reply.payload(), &Bytes::from_static(b"300/77"));
}

#[tokio::test]
async fn peer_eof_tells_when_the_peer_is_done() {
    let (client, mut raw) = raw_peer_of(Config::default(), false);
    let waiting = tokio::spawn({
        let client = client.clone();
        async move { client.peer_eof().await }
    });
    tokio::task::yield_now().await;
    assert!(!waiting.is_finished());
    raw.send(Packet::EOF).await.unwrap();
    let why = tokio::time::timeout(Duration::from_secs(5), waiting)
        .await
        .expect("notified")
        .unwrap();
    assert!(matches!(why, Ended::PeerEof));
    // Asked afterwards, it answers at once.
    assert!(matches!(client.peer_eof().await, Ended::PeerEof));
}

#[tokio::test]
async fn abort_cuts_at_once() {
    let (client, mut raw) = raw_peer_of(Config::default(), false);
    let call = tokio::spawn({
        let client = client.clone();
        async move { client.request(0, 0, "q").await }
    });
    next(&mut raw).await;
    client.abort();
    assert!(matches!(
        call.await.unwrap(),
        Err(Error::Ended(Ended::Aborted))
    ));
    assert!(matches!(client.closed().await, Err(Error::Aborted)));
    // The stream is dropped with nothing more written: no ERQ, no EOF.
    assert!(rest(&mut raw).await.is_empty());
    assert!(matches!(
        client.request(0, 1, "after").await,
        Err(Error::Ended(Ended::Aborted))
    ));
}

#[tokio::test(start_paused = true)]
async fn close_against_a_peer_that_never_reads_ends_by_its_deadline() {
    let config = Config {
        close_timeout: Duration::from_secs(3),
        ..Config::default()
    };
    // A pipe of 1 KiB that the peer never reads: 64 KiB of requests cannot all be written.
    let (ours, theirs) = tokio::io::duplex(1024);
    let client = PacketConnection::new(ours, config).unwrap();
    let calls: Vec<_> = (0..4)
        .map(|i| {
            let client = client.clone();
            tokio::spawn(async move { client.request(0, i, vec![0u8; 16 * 1024]).await })
        })
        .collect();
    tokio::task::yield_now().await;
    let started = tokio::time::Instant::now();
    assert!(matches!(client.close().await, Err(Error::CloseTimeout(_))));
    assert_eq!(started.elapsed(), Duration::from_secs(3));
    for call in calls {
        assert!(matches!(call.await.unwrap(), Err(Error::Ended(_))));
    }
    drop(theirs);
}

#[tokio::test(start_paused = true)]
async fn close_against_a_handler_that_never_finishes_ends_by_its_deadline() {
    let config = Config {
        close_timeout: Duration::from_secs(2),
        ..Config::default()
    };
    let (server, mut raw) = raw_peer_of(config, true);
    // rq 11 never finishes; the echo after it is answered, so the server has read both.
    raw.send(request(2, 11, 0, b"")).await.unwrap();
    raw.send(request(3, 0, 0, b"sync")).await.unwrap();
    assert_eq!(next(&mut raw).await.tag(), 3);
    raw.send(Packet::EOF).await.unwrap();
    let started = tokio::time::Instant::now();
    let closed = server.close().await;
    assert!(matches!(closed, Err(Error::CloseTimeout(_))), "{closed:?}");
    assert_eq!(started.elapsed(), Duration::from_secs(2));
    // Cut: ERQ went out as the close began; the handler's reply never came, nor EOF.
    let after = rest(&mut raw).await;
    assert!(after.len() == 1 && after[0].is_erq(), "{after:?}");
}

#[tokio::test(start_paused = true)]
async fn dropping_every_handle_closes_within_the_deadline() {
    let config = Config {
        close_timeout: Duration::from_secs(2),
        ..Config::default()
    };
    let (client, mut raw) = raw_peer_of(config, false);
    let pipeline = client.pipeline();
    drop(client);
    tokio::task::yield_now().await;
    // A pipeline is a handle: nothing yet.
    assert!(
        tokio::time::timeout(Duration::from_millis(100), raw.next())
            .await
            .is_err()
    );
    drop(pipeline);
    let started = tokio::time::Instant::now();
    assert!(next(&mut raw).await.is_erq());
    assert!(next(&mut raw).await.is_eof());
    // The peer never sends its EOF: the stream is dropped at the deadline.
    assert!(rest(&mut raw).await.is_empty());
    assert_eq!(started.elapsed(), Duration::from_secs(2));
}

#[tokio::test]
async fn a_request_after_our_eof_is_never_handed_to_a_handler() {
    let calls = Arc::new(AtomicUsize::new(0));
    let (ours, theirs) = tokio::io::duplex(1 << 16);
    let server = PacketConnection::with_handler(ours, Config::default(), {
        let calls = Arc::clone(&calls);
        move |_: Request| {
            calls.fetch_add(1, Ordering::SeqCst);
            async { Ok::<_, Infallible>(()) }
        }
    })
    .unwrap();
    let mut raw = Framed::new(theirs, PacketCodec::default());
    let closing = tokio::spawn({
        let server = server.clone();
        async move { server.close().await }
    });
    assert!(next(&mut raw).await.is_erq());
    assert!(next(&mut raw).await.is_eof());
    raw.send(request(2, 0, 0, b"late")).await.unwrap();
    raw.send(Packet::EOF).await.unwrap();
    closing.await.unwrap().unwrap();
    assert!(rest(&mut raw).await.is_empty(), "no answer, no refusal");
    assert_eq!(calls.load(Ordering::SeqCst), 0);
    assert_eq!(server.stats().requests_refused, 1);
}

#[tokio::test]
async fn a_config_that_cannot_work_is_refused_at_construction_naming_the_field() {
    for (config, named) in [
        (
            Config {
                max_handlers: 0,
                ..Config::default()
            },
            "max_handlers",
        ),
        (
            Config {
                max_received: 0,
                ..Config::default()
            },
            "max_received",
        ),
        (
            Config {
                max_unsent: 1,
                ..Config::default()
            },
            "max_unsent",
        ),
        (
            Config {
                max_in_flight: 0,
                ..Config::default()
            },
            "max_in_flight",
        ),
    ] {
        let (a, _b) = tokio::io::duplex(64);
        match PacketConnection::with_handler(a, config, table) {
            Err(Error::Config { field, .. }) => assert_eq!(field, named),
            other => panic!("{named}: expected a refusal, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_flood_of_duplicate_responses_costs_nothing_but_orphans() {
    let (client, mut pipeline, mut raw) = pipeline_to_raw(2);
    let tag = pipeline.send(0, 1, "once").await.unwrap();
    pipeline.flush();
    let sent = next(&mut raw).await;
    for _ in 0..1000 {
        raw.feed(echo_of(&sent)).await.unwrap();
    }
    SinkExt::<Packet>::flush(&mut raw).await.unwrap();
    echoed_request(&client, &mut raw, 2).await;
    assert_eq!(client.stats().orphans, 999);
    assert_eq!(recv_ok(&mut pipeline).await.0, tag);
    assert!(pipeline.recv().await.is_none());
}

/// A synchronous handler answers as an async one does: replies, errors and panics alike,
/// for requests that come in one write (the driver's lane) and for those that do not
/// (other channels, tags that do not go up), and a tag used twice in one write is refused.
#[tokio::test]
async fn a_sync_handler_answers_errors_and_panics_like_an_async_one() {
    let config = Config {
        channels: true,
        handler_failure: Bytes::from_static(b"nope"),
        ..Config::default()
    };
    let (ours, theirs) = tokio::io::duplex(1 << 20);
    let _server =
        PacketConnection::with_sync_handler(ours, config, |rq: Request| match rq.rq_type {
            0 => Ok((rq.flags, rq.payload)),
            7 => panic!("a sync handler that panics"),
            other => Err(format!("no rq_type {other}")),
        })
        .unwrap();
    let mut raw = Framed::new(theirs, PacketCodec::default());
    for (channel, tag, rq) in [(0, 9, 0), (0, 10, 7), (0, 11, 3), (0, 12, 0), (3, 2, 0)] {
        let packet = Packet::request(channel, tag, rq, tag, Bytes::from_static(b"x")).unwrap();
        raw.feed(packet).await.unwrap();
    }
    // A tag below the last, and one used twice in the same write.
    raw.feed(request(5, 0, 5, b"low")).await.unwrap();
    raw.feed(request(12, 0, 6, b"again")).await.unwrap();
    SinkExt::<Packet>::flush(&mut raw).await.unwrap();
    let mut got = Vec::new();
    for _ in 0..7 {
        let p = next(&mut raw).await;
        got.push((p.channel(), p.tag(), p.ok(), p.flags(), p.payload().clone()));
    }
    got.sort_by_key(|&(channel, tag, _, flags, _)| (channel, tag, flags));
    let text = |t: &'static [u8]| Bytes::from_static(t);
    assert_eq!(
        got,
        [
            (0, 5, Some(true), 5, text(b"low")),
            (0, 9, Some(true), 9, text(b"x")),
            (0, 10, Some(false), 0, text(b"nope")),
            (0, 11, Some(false), 0, text(b"nope")),
            (
                0,
                12,
                Some(false),
                0,
                text(b"channel 0: tag already in use: 12")
            ),
            (0, 12, Some(true), 12, text(b"x")),
            (3, 2, Some(true), 2, text(b"x")),
        ]
    );
}
