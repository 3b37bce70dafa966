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
    assert!(matches!(e, Error::Truncated { .. }), "{e}");
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
    assert!(matches!(e, Error::CloseTimeout(_)), "{e}");
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

#[tokio::test(start_paused = true)]
async fn after_an_idle_period_the_timer_starts_with_the_next_read() {
    let (mut client, mut server) = pair();
    server.set_timeout(Some(Duration::from_secs(30)));
    client.write(b"one!").await.unwrap();
    assert_eq!(&server.read().await.unwrap().unwrap()[..], b"one!");
    // Nobody reads for far longer than the timeout: no operation waits, no timer runs.
    tokio::time::sleep(Duration::from_secs(600)).await;
    let late = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(10)).await;
        client.write(b"two!").await.unwrap();
        client
    });
    // The read waits its full 30 s from now: the call 10 s later arrives, no Inactive.
    let started = tokio::time::Instant::now();
    assert_eq!(&server.read().await.unwrap().unwrap()[..], b"two!");
    assert_eq!(started.elapsed(), Duration::from_secs(10));
    drop(late.await.unwrap());
}

#[tokio::test(start_paused = true)]
async fn a_record_that_stops_arriving_times_out_and_holds_nothing_for_ever() {
    let (a, b) = tokio::io::duplex(64 * 1024);
    let config = Config {
        record_timeout: Some(Duration::from_secs(5)),
        ..Config::default()
    };
    let mut server = RecordStream::new(b, &config);
    let mut raw = a;
    // A header for 1 000 000 bytes, then 10 of them, then nothing (a slow loris).
    raw.write_all(&[0x80, 0x0f, 0x42, 0x40]).await.unwrap();
    raw.write_all(&[7; 10]).await.unwrap();
    let started = tokio::time::Instant::now();
    let e = server.read().await.unwrap_err();
    assert!(
        matches!(e, Error::RecordTimeout(d) if d == Duration::from_secs(5)),
        "{e}"
    );
    assert_eq!(started.elapsed(), Duration::from_secs(5));
    // Between records, waiting is not timed.
    let (mut client, mut server) = pair();
    let waited = tokio::time::timeout(Duration::from_secs(3600), server.read()).await;
    assert!(waited.is_err(), "an idle stream waits for ever");
    client.write(b"fine").await.unwrap();
    assert_eq!(&server.read().await.unwrap().unwrap()[..], b"fine");
}

#[tokio::test]
async fn a_spent_budget_pauses_reading_and_a_record_that_ends_gives_it_back() {
    // A holds what it has read and room for its next read, each counted twice (a buffer may
    // double as it grows): 2 * (60 KiB + 8 KiB). B would need 2 * 8 KiB more.
    let a_holds = 2 * ((60 * 1024 - 4) + 8 * 1024);
    let budget = rpc_record::Budget::new(a_holds + 12 * 1024);
    let config = Config::default();
    let (mut a_raw, a) = tokio::io::duplex(256 * 1024);
    let (mut b_raw, b) = tokio::io::duplex(256 * 1024);
    let mut a = RecordStream::new(a, &config).with_budget(&budget);
    let mut b = RecordStream::new(b, &config).with_budget(&budget);
    // A sends most of a 64 KiB record and stops.
    let mut record = vec![0x80, 0x01, 0x00, 0x00];
    record.extend(std::iter::repeat_n(1u8, 64 * 1024));
    a_raw.write_all(&record[..60 * 1024]).await.unwrap();
    let a_read = tokio::time::timeout(Duration::from_millis(200), a.read()).await;
    assert!(a_read.is_err(), "the record is not complete");
    assert_eq!(
        budget.available(),
        12 * 1024,
        "A holds what it read and its window"
    );
    // B's whole small record waits: the budget has no room for B's read window.
    b_raw.write_all(b"\x80\x00\x00\x04ping").await.unwrap();
    let b_read = tokio::spawn(async move { (b.read().await, b) });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !b_read.is_finished(),
        "B waits for the budget, it is not failed"
    );
    // A's record ends; A gives its bytes back and B reads.
    a_raw.write_all(&record[60 * 1024..]).await.unwrap();
    assert_eq!(a.read().await.unwrap().unwrap().len(), 64 * 1024);
    drop(a);
    let (b_got, b) = tokio::time::timeout(Duration::from_secs(5), b_read)
        .await
        .expect("B reads once A gave its bytes back")
        .unwrap();
    assert_eq!(&b_got.unwrap().unwrap()[..], b"ping");
    drop(b);
    assert_eq!(
        budget.available(),
        budget.capacity(),
        "everything given back"
    );
}

#[tokio::test(start_paused = true)]
async fn a_shutdown_towards_a_peer_that_reads_nothing_ends_at_the_linger_time() {
    let (a, _deaf) = tokio::io::duplex(1024);
    let mut stream = RecordStream::new(a, &Config::default());
    // Far more than the pipe holds: the write side never gets to close.
    stream.feed(&[7; 64 * 1024]);
    let started = tokio::time::Instant::now();
    let e = stream.shutdown(Duration::from_secs(3)).await.unwrap_err();
    assert!(
        matches!(e, Error::CloseTimeout(d) if d == Duration::from_secs(3)),
        "{e}"
    );
    assert_eq!(started.elapsed(), Duration::from_secs(3));
    assert!(stream.read_eof());
}
