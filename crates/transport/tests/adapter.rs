//! The socket adapter: ordered inbox, bounded outbox, half-close, STARTTLS in the middle of
//! a plaintext exchange (and its refusal when bytes were injected), idle notifications,
//! cancellation.

mod support;

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use kernel_flows::Exit;
use strata_transport::{
    AdapterConfig, Error, Outgoing, Phase, SocketAdapter, Stack, TlsClient, TlsServer,
};
use support::Ca;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio_util::codec::{Framed, LinesCodec};

type Lines = SocketAdapter<String, String>;

fn adapter(io: DuplexStream, config: AdapterConfig) -> Lines {
    SocketAdapter::spawn(Stack::new(io), LinesCodec::new(), config)
}

async fn send(adapter: &Lines, item: Outgoing<String>) {
    // The cancel-safe way: a permit first, then the send, which cannot fail or wait.
    adapter.inbox.reserve().await.unwrap().send(item);
}

fn line(text: &str) -> Outgoing<String> {
    Outgoing::Send(text.to_owned())
}

async fn next(adapter: &mut Lines) -> Option<String> {
    tokio::time::timeout(Duration::from_secs(5), adapter.outbox.recv())
        .await
        .expect("a frame or the end in time")
}

async fn phase_becomes(adapter: &mut Lines, phase: Phase) {
    tokio::time::timeout(
        Duration::from_secs(5),
        adapter.signal.wait_for(|s| s.phase == phase),
    )
    .await
    .expect("the phase in time")
    .unwrap();
}

#[tokio::test]
async fn frames_and_a_half_close_in_order_then_a_clean_end() {
    let (ours, theirs) = tokio::io::duplex(1024);
    let mut a = adapter(ours, AdapterConfig::default());
    let mut peer = Framed::new(theirs, LinesCodec::new());
    send(&a, line("one")).await;
    send(&a, line("two")).await;
    send(&a, Outgoing::FinishSending).await;
    assert_eq!(peer.next().await.unwrap().unwrap(), "one");
    assert_eq!(peer.next().await.unwrap().unwrap(), "two");
    // The half-close reached the peer after the frames; our reading goes on.
    assert!(peer.next().await.is_none());
    phase_becomes(&mut a, Phase::WriteClosed).await;
    peer.send(String::from("answer")).await.unwrap();
    assert_eq!(next(&mut a).await.as_deref(), Some("answer"));
    drop(peer);
    assert_eq!(next(&mut a).await, None);
    phase_becomes(&mut a, Phase::Closed).await;
    assert!(matches!(a.done.await, Exit::Completed));
}

#[tokio::test]
async fn zero_sizes_count_as_one_and_frames_still_flow_both_ways() {
    // A write high-water mark of 0 took no frame from the inbox, ever.
    let (ours, theirs) = tokio::io::duplex(1024);
    let config = AdapterConfig {
        inbox: 0,
        outbox: 0,
        write_high_water: 0,
        ..AdapterConfig::default()
    };
    let mut a = adapter(ours, config);
    let mut peer = Framed::new(theirs, LinesCodec::new());
    for text in ["one", "two", "three"] {
        send(&a, line(text)).await;
        let sent = tokio::time::timeout(Duration::from_secs(5), peer.next()).await;
        assert_eq!(sent.expect("written in time").unwrap().unwrap(), text);
        peer.send(format!("re {text}")).await.unwrap();
        assert_eq!(next(&mut a).await, Some(format!("re {text}")));
    }
}

#[tokio::test]
async fn a_full_outbox_stops_reading_and_loses_nothing() {
    let (ours, mut theirs) = tokio::io::duplex(256);
    let config = AdapterConfig {
        outbox: 2,
        ..AdapterConfig::default()
    };
    let mut a = adapter(ours, config);
    let lines: String = (0..1000).map(|i| format!("line {i}\n")).collect();
    let writing = tokio::spawn(async move {
        theirs.write_all(lines.as_bytes()).await.unwrap();
        theirs
    });
    // Nobody takes from the outbox: the adapter stops reading, the pipe fills, and the
    // peer's write cannot finish.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        !writing.is_finished(),
        "reading stopped while the outbox was full"
    );
    for i in 0..1000 {
        assert_eq!(next(&mut a).await, Some(format!("line {i}")));
    }
    let theirs = writing.await.unwrap();
    drop(theirs);
    assert_eq!(next(&mut a).await, None);
}

/// Two adapters on a pipe speaking lines; `extra` is sent by the client in the same write
/// as its STARTTLS.
async fn starttls(extra: &str) -> (Lines, Lines) {
    let ca = Ca::new("Strata test CA");
    let (certs, key) = ca.identity("strata server", &["localhost"]);
    let (client_end, server_end) = tokio::io::duplex(64 * 1024);
    let mut server = adapter(server_end, AdapterConfig::default());
    let mut client = adapter(client_end, AdapterConfig::default());
    // The codec adds the last newline: one frame, written at once, holds both lines.
    let first = format!("STARTTLS\n{extra}");
    send(&client, line(first.trim_end_matches('\n'))).await;
    assert_eq!(next(&mut server).await.as_deref(), Some("STARTTLS"));
    send(&server, line("GO")).await;
    send(
        &server,
        Outgoing::Upgrade(Box::new(TlsServer::with_identity(certs, key).unwrap())),
    )
    .await;
    assert_eq!(next(&mut client).await.as_deref(), Some("GO"));
    let tls = TlsClient::verifying([ca.cert.clone()], "localhost").unwrap();
    send(&client, Outgoing::Upgrade(Box::new(tls))).await;
    (client, server)
}

#[tokio::test]
async fn starttls_in_the_middle_of_a_plaintext_exchange() {
    let (mut client, mut server) = starttls("").await;
    send(&client, line("MAIL FROM:<a@b>")).await;
    assert_eq!(next(&mut server).await.as_deref(), Some("MAIL FROM:<a@b>"));
    phase_becomes(&mut client, Phase::Upgraded("tls")).await;
    phase_becomes(&mut server, Phase::Upgraded("tls")).await;
    send(&server, line("250 ok")).await;
    assert_eq!(next(&mut client).await.as_deref(), Some("250 ok"));
    // Finishing sends close_notify through TLS; the other side sees a clean end.
    send(&client, Outgoing::FinishSending).await;
    assert_eq!(next(&mut server).await, None);
    send(&server, Outgoing::FinishSending).await;
    assert_eq!(next(&mut client).await, None);
    assert!(matches!(client.done.await, Exit::Completed));
    assert!(matches!(server.done.await, Exit::Completed));
}

#[tokio::test]
async fn starttls_with_a_command_injected_before_the_handshake_is_refused() {
    let injected = "MAIL FROM:<evil@x>";
    let (client, mut server) = starttls(&format!("{injected}\n")).await;
    // The injected line came in the same read as STARTTLS. Whether the adapter decoded it
    // into the outbox before the upgrade came, or still held its bytes, the upgrade is
    // refused and the adapter stops.
    let done = tokio::time::timeout(Duration::from_secs(5), &mut server.done)
        .await
        .expect("the adapter stops");
    match done {
        Exit::Faulted(Error::UnreadFrames {
            layer: "tls",
            frames: 1,
        }) => {
            // Still there to see, as plaintext from before the upgrade.
            assert_eq!(next(&mut server).await.as_deref(), Some(injected));
        }
        Exit::Faulted(Error::UnreadResidue {
            layer: "tls",
            bytes,
        }) => {
            assert_eq!(bytes, injected.len() + 1);
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(next(&mut server).await, None);
    drop(client);
}

#[tokio::test(start_paused = true)]
async fn idle_timeouts_are_notified_and_activity_restarts_the_wait() {
    let (ours, mut theirs) = tokio::io::duplex(1024);
    let config = AdapterConfig {
        idle_timeout: Some(Duration::from_secs(30)),
        ..AdapterConfig::default()
    };
    let mut a = adapter(ours, config);
    tokio::time::sleep(Duration::from_secs(20)).await;
    theirs.write_all(b"ping\n").await.unwrap();
    assert_eq!(next(&mut a).await.as_deref(), Some("ping"));
    // 20 s after the ping: 40 s since the start, but not 30 s idle.
    tokio::time::sleep(Duration::from_secs(20)).await;
    assert_eq!(a.signal.borrow().idle, 0);
    tokio::time::sleep(Duration::from_secs(11)).await;
    assert_eq!(a.signal.borrow().idle, 1);
    // It keeps notifying, once per idle period.
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert_eq!(a.signal.borrow().idle, 2);
    let mut buf = [0; 1];
    assert!(
        tokio::time::timeout(Duration::from_millis(1), theirs.read(&mut buf))
            .await
            .is_err(),
        "an idle notification sends nothing"
    );
}

#[tokio::test]
async fn control_stops_the_adapter_at_once() {
    let (ours, _theirs) = tokio::io::duplex(1024);
    let mut a = adapter(ours, AdapterConfig::default());
    a.control.cancel();
    assert!(matches!(a.done.await, Exit::Interrupted));
    assert_eq!(a.signal.borrow().phase, Phase::Closed);
    assert_eq!(a.outbox.recv().await, None);
}

#[tokio::test]
async fn a_frame_the_codec_refuses_faults_the_adapter_with_the_codec_error() {
    let (ours, mut theirs) = tokio::io::duplex(1024);
    let a: Lines = SocketAdapter::spawn(
        Stack::new(ours),
        LinesCodec::new_with_max_length(8),
        AdapterConfig::default(),
    );
    theirs.write_all(&[b'x'; 100]).await.unwrap();
    match tokio::time::timeout(Duration::from_secs(5), a.done).await {
        Ok(Exit::Faulted(e @ Error::Codec(_))) => {
            assert!(e.to_string().contains("max line length"), "{e}")
        }
        other => panic!("expected the codec's error, got {other:?}"),
    }
}

#[tokio::test]
async fn a_tls_stream_cut_without_close_notify_ends_the_adapter_as_truncated() {
    let (a, b, cut) = support::cuttable_pipe();
    let (ours, mut theirs) = tls_between(b, a).await;
    let mut adapter: Lines =
        SocketAdapter::spawn(ours, LinesCodec::new(), AdapterConfig::default());
    theirs.write_all(b"one line\n").await.unwrap();
    theirs.flush().await.unwrap();
    assert_eq!(next(&mut adapter).await.as_deref(), Some("one line"));
    // The stream below ends with no close_notify.
    cut.cancel();
    match tokio::time::timeout(Duration::from_secs(5), adapter.done).await {
        Ok(Exit::Faulted(Error::Truncated { layer: "tls" })) => {}
        other => panic!("expected truncation, got {other:?}"),
    }
}

/// 200 lines from an adapter over `ours`, while the peer over `theirs` speaks first and only
/// then reads: every line must arrive with nothing more sent to push it out.
async fn nothing_stranded(ours: Stack, theirs: Stack) {
    let mut a: Lines = SocketAdapter::spawn(ours, LinesCodec::new(), AdapterConfig::default());
    let mut peer = Framed::new(theirs, LinesCodec::new());
    for i in 0..200 {
        send(&a, line(&format!("line {i:03} {}", "x".repeat(100)))).await;
    }
    // The peer speaks before it reads: a read wins the adapter's loop while its writes wait
    // in the layer.
    tokio::time::sleep(Duration::from_millis(50)).await;
    peer.send(String::from("hello")).await.unwrap();
    assert_eq!(next(&mut a).await.as_deref(), Some("hello"));
    for i in 0..200 {
        let got = tokio::time::timeout(Duration::from_secs(5), peer.next())
            .await
            .expect("the line in time: nothing stranded")
            .unwrap()
            .unwrap();
        assert!(got.starts_with(&format!("line {i:03} ")), "{got}");
    }
}

#[tokio::test]
async fn bytes_a_layer_took_while_the_socket_was_full_are_not_stranded_by_a_read() {
    // Chunked over a small pipe: the layer takes the lines into its own buffer (up to 64
    // KiB) faster than the pipe does.
    let (a, b) = tokio::io::duplex(1024);
    let (mut ours, mut theirs) = (Stack::new(a), Stack::new(b));
    ours.push(strata_transport::Chunked::default())
        .await
        .unwrap();
    theirs
        .push(strata_transport::Chunked::default())
        .await
        .unwrap();
    nothing_stranded(ours, theirs).await;
}

/// TLS pushed on two stacks at once: a client over `client`, a server over `server`.
async fn tls_between(
    client: tokio::io::DuplexStream,
    server: tokio::io::DuplexStream,
) -> (Stack, Stack) {
    let ca = Ca::new("Strata test CA");
    let (certs, key) = ca.identity("strata server", &["localhost"]);
    let (mut c, mut s) = (Stack::new(client), Stack::new(server));
    let tls = TlsClient::verifying([ca.cert.clone()], "localhost").unwrap();
    let (pc, ps) = tokio::join!(
        c.push(tls),
        s.push(TlsServer::with_identity(certs, key).unwrap())
    );
    pc.unwrap();
    ps.unwrap();
    (c, s)
}

#[tokio::test]
async fn records_tls_made_while_the_socket_was_full_are_not_stranded_by_a_read() {
    let (a, b) = tokio::io::duplex(1024);
    let (ours, theirs) = tls_between(a, b).await;
    nothing_stranded(ours, theirs).await;
}

#[tokio::test]
async fn a_flush_to_a_peer_that_does_not_read_neither_stops_reading_nor_ignores_cancel() {
    let (ours, theirs) = tokio::io::duplex(1024);
    let mut a = adapter(ours, AdapterConfig::default());
    let (mut their_read, mut their_write) = tokio::io::split(theirs);
    for i in 0..100 {
        send(&a, line(&format!("line {i} {}", "x".repeat(100)))).await;
    }
    send(&a, Outgoing::Flush).await;
    // The flush cannot finish (the peer does not read), yet the peer's line is read.
    their_write.write_all(b"still heard\n").await.unwrap();
    assert_eq!(next(&mut a).await.as_deref(), Some("still heard"));
    // And cancel stops the adapter at once.
    a.control.cancel();
    let done = tokio::time::timeout(Duration::from_secs(5), a.done)
        .await
        .expect("cancel is heeded during a flush");
    assert!(matches!(done, Exit::Interrupted), "{done:?}");
    let mut some = [0; 16];
    let _ = their_read.read(&mut some).await;
}

#[tokio::test(start_paused = true)]
async fn an_upgrade_whose_handshake_never_comes_times_out() {
    let ca = Ca::new("Strata test CA");
    let (ours, _silent) = tokio::io::duplex(64 * 1024);
    let config = AdapterConfig {
        handshake_timeout: Duration::from_secs(3),
        ..AdapterConfig::default()
    };
    let a = adapter(ours, config);
    let tls = TlsClient::verifying([ca.cert.clone()], "localhost").unwrap();
    send(&a, Outgoing::Upgrade(Box::new(tls))).await;
    let started = tokio::time::Instant::now();
    match a.done.await {
        Exit::Faulted(Error::HandshakeTimeout {
            layer: "tls",
            after,
        }) => {
            assert_eq!(after, Duration::from_secs(3));
        }
        other => panic!("expected a handshake timeout, got {other:?}"),
    }
    assert_eq!(started.elapsed(), Duration::from_secs(3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starttls_with_the_client_hello_right_behind_the_go_ahead_on_two_threads() {
    let ca = Ca::new("Strata test CA");
    let (certs, key) = ca.identity("strata server", &["localhost"]);
    let server_tls = TlsServer::with_identity(certs, key).unwrap();
    // Many rounds: the ClientHello is written the moment the go-ahead is read.
    for _ in 0..50 {
        let (client_end, server_end) = tokio::io::duplex(64 * 1024);
        let mut server = adapter(server_end, AdapterConfig::default());
        let mut client = Framed::new(Stack::new(client_end), LinesCodec::new());
        client.send(String::from("STARTTLS")).await.unwrap();
        assert_eq!(next(&mut server).await.as_deref(), Some("STARTTLS"));
        send(
            &server,
            Outgoing::SendThenUpgrade("GO".into(), Box::new(server_tls.clone())),
        )
        .await;
        assert_eq!(client.next().await.unwrap().unwrap(), "GO");
        let mut stack = client.into_inner();
        let tls = TlsClient::verifying([ca.cert.clone()], "localhost").unwrap();
        tokio::time::timeout(Duration::from_secs(5), stack.push(tls))
            .await
            .expect("the handshake in time")
            .expect("the server took the ClientHello");
        phase_becomes(&mut server, Phase::Upgraded("tls")).await;
        let mut client = Framed::new(stack, LinesCodec::new());
        client.send(String::from("secret")).await.unwrap();
        assert_eq!(next(&mut server).await.as_deref(), Some("secret"));
    }
}

#[tokio::test]
async fn an_adapter_run_in_a_connection_handler_counts_against_the_cap_and_is_cut_at_shutdown() {
    use strata_transport::{Accepted, Config, Interface, Listener};
    let mut interface = Interface::new(Config {
        max_connections: 1,
        ..Config::default()
    });
    let listener = Listener::tcp("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    interface.listen(listener);
    let (ended_tx, mut ended) = tokio::sync::mpsc::unbounded_channel();
    let serving = interface.serve(move |c: Accepted| {
        let ended_tx = ended_tx.clone();
        async move {
            let (mut adapter, running): (Lines, _) =
                SocketAdapter::new(c.stack, LinesCodec::new(), AdapterConfig::default());
            // The application: echo lines, for ever.
            let app = async move {
                while let Some(line) = adapter.outbox.recv().await {
                    adapter.inbox.send(Outgoing::Send(line)).await.unwrap();
                }
                adapter.done.await
            };
            let (exit, ()) = tokio::join!(app, running);
            let _ = ended_tx.send(exit);
        }
    });
    let mut first = Framed::new(
        tokio::net::TcpStream::connect(&addr).await.unwrap(),
        LinesCodec::new(),
    );
    first.send(String::from("one")).await.unwrap();
    assert_eq!(first.next().await.unwrap().unwrap(), "one");
    assert_eq!(serving.connections().len(), 1);
    // The cap is one: a second connection waits in the backlog.
    let mut second = Framed::new(
        tokio::net::TcpStream::connect(&addr).await.unwrap(),
        LinesCodec::new(),
    );
    second.send(String::from("two")).await.unwrap();
    let early = tokio::time::timeout(Duration::from_millis(300), second.next()).await;
    assert!(early.is_err(), "not served while the first is open");
    // Shutdown cuts the adapter with its connection at the deadline.
    let report = serving.shutdown(Duration::from_millis(200)).await;
    assert_eq!((report.finished, report.cancelled), (0, 1));
    assert!(
        ended.try_recv().is_err(),
        "cut, not ended: its task was aborted"
    );
    assert!(
        first.next().await.is_none_or(|r| r.is_err()),
        "the connection is closed"
    );
}

/// An upgrade that starts nothing: the stack goes on as it was (what a layer that needs no
/// clean boundary does to bytes read ahead, without changing them).
struct Nothing;

impl strata_transport::Upgrade for Nothing {
    fn name(&self) -> &'static str {
        "nothing"
    }

    fn requires_clean_boundary(&self) -> bool {
        false
    }

    fn start(
        self: Box<Self>,
        inner: Box<dyn strata_transport::Layered>,
    ) -> strata_transport::WrapDyn {
        Box::pin(async move { Ok(inner) })
    }
}

#[tokio::test]
async fn a_decoder_midway_through_bytes_read_ahead_starts_afresh_after_an_upgrade() {
    let (ours, mut theirs) = tokio::io::duplex(64 * 1024);
    let mut a = adapter(ours, AdapterConfig::default());
    // A long line without its end: LinesCodec has scanned 10 000 bytes of it.
    let long = "x".repeat(10_000);
    theirs.write_all(long.as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    send(&a, Outgoing::Upgrade(Box::new(Nothing))).await;
    phase_becomes(&mut a, Phase::Upgraded("nothing")).await;
    // The bytes are read again (8 KiB first) by a decoder that starts from their beginning.
    theirs.write_all(b"\n").await.unwrap();
    assert_eq!(next(&mut a).await, Some(long));
}

/// Lines out numbered by the encoder ("1 one"), lines in as they come: an encoder with state.
#[derive(Clone, Default)]
struct Numbered {
    lines: LinesCodec,
    sent: u32,
}

impl tokio_util::codec::Decoder for Numbered {
    type Item = String;
    type Error = tokio_util::codec::LinesCodecError;

    fn decode(&mut self, src: &mut bytes::BytesMut) -> Result<Option<String>, Self::Error> {
        self.lines.decode(src)
    }
}

impl tokio_util::codec::Encoder<String> for Numbered {
    type Error = tokio_util::codec::LinesCodecError;

    fn encode(&mut self, line: String, dst: &mut bytes::BytesMut) -> Result<(), Self::Error> {
        self.sent += 1;
        self.lines.encode(format!("{} {line}", self.sent), dst)
    }
}

#[tokio::test]
async fn the_writer_keeps_its_own_encoder_across_an_upgrade() {
    let (ours, theirs) = tokio::io::duplex(64 * 1024);
    let a: Lines = SocketAdapter::spawn(
        Stack::new(ours),
        Numbered::default(),
        AdapterConfig::default(),
    );
    let mut peer = Framed::new(theirs, LinesCodec::new());
    send(&a, line("one")).await;
    send(&a, line("two")).await;
    assert_eq!(peer.next().await.unwrap().unwrap(), "1 one");
    assert_eq!(peer.next().await.unwrap().unwrap(), "2 two");
    send(&a, Outgoing::Upgrade(Box::new(Nothing))).await;
    send(&a, line("three")).await;
    // Numbered on from where the writer was, not from a copy of the reader's codec.
    assert_eq!(peer.next().await.unwrap().unwrap(), "3 three");
}
