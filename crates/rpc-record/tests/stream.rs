//! The stream transporter over in-memory pipes and loopback TCP.

use std::time::Duration;

use rpc_record::{Config, Error, Peer, PeerAddr, Record, RecordStream, Rule, Xid};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

fn pair() -> (RecordStream<DuplexStream>, RecordStream<DuplexStream>) {
    let (a, b) = tokio::io::duplex(64 * 1024);
    let config = Config::default();
    (RecordStream::new(a, &config), RecordStream::new(b, &config))
}

#[tokio::test]
async fn records_written_together_are_read_one_at_a_time_and_end_cleanly() {
    let (mut client, mut server) = pair();
    for i in 0..3u32 {
        client.feed(&i.to_be_bytes());
    }
    client.write(b"\0\0\0\x03last").await.unwrap();
    for i in 0..3u32 {
        assert_eq!(server.read().await.unwrap().unwrap(), &i.to_be_bytes()[..]);
    }
    assert_eq!(
        &server.read().await.unwrap().unwrap()[..],
        b"\0\0\0\x03last"
    );
    client.close_write().await.unwrap();
    assert_eq!(server.read().await.unwrap(), None);
    assert!(server.read_eof());
}

#[tokio::test]
async fn a_stream_that_ends_inside_a_record_is_eof_within_message() {
    let (a, b) = tokio::io::duplex(1024);
    let mut server = RecordStream::new(b, &Config::default());
    let mut raw = a;
    raw.write_all(&[0x80, 0, 0, 40, 1, 2, 3]).await.unwrap();
    drop(raw);
    let e = server.read().await.unwrap_err();
    assert!(matches!(e, Error::EofWithinMessage { .. }), "{e}");
    assert!(e.to_string().starts_with("EOF within message"));
}

#[tokio::test]
async fn a_cancelled_read_loses_nothing() {
    let (a, b) = tokio::io::duplex(1024);
    let mut server = RecordStream::new(b, &Config::default());
    let mut raw = a;
    // Half a record (the mark and 2 of 6 bytes), then the read is dropped.
    raw.write_all(&[0x80, 0, 0, 6, 0xaa, 0xbb]).await.unwrap();
    let cancelled = tokio::time::timeout(Duration::from_millis(20), server.read()).await;
    assert!(cancelled.is_err(), "nothing complete yet");
    raw.write_all(&[0xcc, 0xdd, 0xee, 0xff]).await.unwrap();
    let record = server.read().await.unwrap().unwrap();
    assert_eq!(&record[..], &[0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff]);
}

#[tokio::test]
async fn admission_is_asked_per_fragment_over_the_stream() {
    let (a, b) = tokio::io::duplex(64 * 1024);
    let config = Config {
        fragment_size: 3,
        ..Config::default()
    };
    let mut client = RecordStream::new(a, &config);
    let mut server = RecordStream::new(b, &Config::default());
    client.write(&[0, 0, 0, 0x51, 1, 2, 3, 4, 5]).await.unwrap(); // 3 fragments
    client.write(b"ok").await.unwrap();
    let mut seen = Vec::new();
    let mut rule = |f: &rpc_record::Fragment| {
        seen.push(f.so_far);
        if f.so_far > 4 {
            Rule::Reject
        } else {
            Rule::Accept
        }
    };
    assert_eq!(
        server.read_with(&mut rule).await.unwrap(),
        Some(Record::Reject { xid: Xid(0x51) })
    );
    assert_eq!(
        server.read_with(&mut rule).await.unwrap(),
        Some(Record::Accept("ok".into()))
    );
    // 3, then 6 (Reject sticks, no more asking), then the next record's 2.
    assert_eq!(seen, [3, 6, 2]);
}

#[tokio::test(start_paused = true)]
async fn inactivity_is_a_notification_and_reading_goes_on() {
    let (mut client, mut server) = pair();
    server.set_timeout(Some(Duration::from_secs(30)));
    let started = tokio::time::Instant::now();
    let e = server.read().await.unwrap_err();
    assert!(matches!(e, Error::Inactive(d) if d == Duration::from_secs(30)));
    assert_eq!(started.elapsed(), Duration::from_secs(30));
    client.write(b"late").await.unwrap();
    assert_eq!(&server.read().await.unwrap().unwrap()[..], b"late");
    server.set_timeout(None);
    let waited = tokio::time::timeout(Duration::from_secs(3600), server.read()).await;
    assert!(waited.is_err(), "no timer once disarmed");
}

#[tokio::test(start_paused = true)]
async fn shutdown_waits_for_the_peers_eof_up_to_the_linger_time() {
    // A peer that answers the half-close with its own EOF.
    let (mut client, mut server) = pair();
    let peer = tokio::spawn(async move {
        let call = server.read().await.unwrap().unwrap();
        server.write(&call).await.unwrap();
        assert_eq!(server.read().await.unwrap(), None);
        server.shutdown(Duration::from_secs(1)).await
    });
    client.write(b"call").await.unwrap();
    client.shutdown(Duration::from_secs(5)).await.unwrap();
    assert!(client.read_eof());
    peer.await.unwrap().unwrap();

    // A peer that never closes.
    let (mut client, _silent) = pair();
    let e = client.shutdown(Duration::from_secs(5)).await.unwrap_err();
    assert!(matches!(e, Error::ShutdownTimeout(_)), "{e}");
}

#[tokio::test]
async fn a_half_closed_client_still_reads_its_replies() {
    let (mut client, mut server) = pair();
    client.feed(b"one!");
    client.feed(b"two!");
    client.close_write().await.unwrap();
    while let Some(call) = server.read().await.unwrap() {
        server.write(&call).await.unwrap();
    }
    server.close_write().await.unwrap();
    assert_eq!(&client.read().await.unwrap().unwrap()[..], b"one!");
    assert_eq!(&client.read().await.unwrap().unwrap()[..], b"two!");
    assert_eq!(client.read().await.unwrap(), None);
}

#[tokio::test]
async fn a_tcp_transporter_knows_its_peer() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let client = tokio::net::TcpStream::connect(listener.local_addr().unwrap())
        .await
        .unwrap();
    let (server, from) = listener.accept().await.unwrap();
    let peer = Peer::of_tcp(&server);
    let mut server = RecordStream::new(server, &Config::default()).with_peer(peer);
    assert_eq!(server.peer().addr, Some(PeerAddr::Inet(from)));
    assert!(server.peer().fd.is_some_and(|fd| fd >= 0));
    assert_eq!(server.peer().user_name, None);
    let mut client = client;
    client.write_all(&[0x80, 0, 0, 1, 9]).await.unwrap();
    assert_eq!(&server.read().await.unwrap().unwrap()[..], &[9]);
    drop(client);
    assert_eq!(server.read().await.unwrap(), None);
    let mut rest = Vec::new();
    let (mut io, unread) = server.into_inner();
    assert!(unread.is_empty());
    assert_eq!(io.read_to_end(&mut rest).await.unwrap(), 0);
}
