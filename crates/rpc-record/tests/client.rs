//! The client against our own server and against hand-shaped replies.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use rpc_record::{
    Call, Client, Config, DatagramSocket, Error, PeerAddr, Program, RecordDatagram, RecordStream,
    Reply, ServerError, Service, serve_datagram, serve_stream,
};
use tokio::io::AsyncWriteExt;
use tokio::net::UdpSocket;

fn encode(reply: &Reply) -> BytesMut {
    let mut wire = BytesMut::new();
    reply.encode(&mut wire);
    wire
}

#[tokio::test]
async fn replies_in_any_order_find_their_calls_and_strangers_are_skipped() {
    let (a, b) = tokio::io::duplex(64 * 1024);
    let config = Config::default();
    let client = Client::stream(RecordStream::new(a, &config), &config);
    let server = tokio::spawn(async move {
        let mut server = RecordStream::new(b, &Config::default());
        let mut calls = Vec::new();
        for _ in 0..3 {
            calls.push(Call::decode(server.read().await.unwrap().unwrap()).unwrap());
        }
        // A reply to nobody first, then the three in reverse, each echoing the procedure.
        let stranger = Reply::success(
            rpc_record::Xid(calls[0].xid.0.wrapping_sub(1000)),
            Bytes::new(),
        );
        server.feed(&encode(&stranger));
        for call in calls.iter().rev() {
            let results = Bytes::copy_from_slice(&call.procedure.to_be_bytes());
            server.feed(&encode(&Reply::success(call.xid, results)));
        }
        server.flush().await.unwrap();
        server
    });
    let calls = (1..=3u32).map(|p| client.call(300000, 1, p, Bytes::new()));
    let replies = futures_util::future::join_all(calls).await;
    for (p, reply) in (1..=3u32).zip(replies) {
        assert_eq!(
            reply.unwrap().outcome,
            Ok(Bytes::copy_from_slice(&p.to_be_bytes()))
        );
    }
    assert_eq!(client.skipped(), 1);
    drop(server.await.unwrap());
}

#[tokio::test]
async fn when_the_link_dies_every_waiting_call_fails_at_once() {
    let (a, b) = tokio::io::duplex(64 * 1024);
    let config = Config::default();
    let client = Client::stream(RecordStream::new(a, &config), &config);
    tokio::spawn(async move {
        let mut server = RecordStream::new(b, &Config::default());
        server.read().await.unwrap();
        server.read().await.unwrap();
        // Gone without answering.
    });
    let (one, two) = tokio::join!(
        client.call(1, 1, 0, Bytes::new()),
        client.call(1, 1, 0, Bytes::new())
    );
    for result in [one, two] {
        let e = result.unwrap_err();
        assert!(
            matches!(&e, Error::Ended(why) if matches!(**why, Error::PeerClosed)),
            "{e}"
        );
    }
    // And later calls too.
    assert!(matches!(
        client.call(1, 1, 0, Bytes::new()).await,
        Err(Error::Ended(_))
    ));
}

#[tokio::test]
async fn small_fragments_from_the_client_are_reassembled_by_the_server() {
    let (a, b) = tokio::io::duplex(64 * 1024);
    let small = Config {
        fragment_size: 4,
        ..Config::default()
    };
    let program = Service::from(Program::new(300000, [1, 2]));
    tokio::spawn(async move {
        serve_stream(&mut RecordStream::new(b, &Config::default()), &program).await
    });
    let client = Client::stream(RecordStream::new(a, &small), &small);
    let reply = client
        .call(300000, 2, 0, Bytes::from(vec![0; 100]))
        .await
        .unwrap();
    assert_eq!(reply.outcome, Ok(Bytes::new()));
    let reply = client.call(300000, 7, 0, Bytes::new()).await.unwrap();
    assert_eq!(
        reply.outcome,
        Err(ServerError::ProgMismatch { low: 1, high: 2 })
    );
}

#[tokio::test]
async fn a_datagram_call_is_sent_again_until_answered() {
    let config = Config::default();
    let raw = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let server_addr = PeerAddr::Inet(raw.local_addr().unwrap());
    let mut server = RecordDatagram::new(raw, &config);
    let served = tokio::spawn(async move {
        // The first datagram is "lost"; the second is answered.
        let (first, _) = server.recv().await.unwrap();
        let program = Service::from(Program::new(300000, [4]));
        let (second, source) = server.recv().await.unwrap();
        assert_eq!(first, second, "the same call, the same xid");
        let reply = program
            .answer(second, &Default::default())
            .reply()
            .await
            .unwrap();
        server.send_to(&encode(&reply), &source).await.unwrap();
        serve_datagram(&mut server, &program).await
    });
    let socket = RecordDatagram::new(UdpSocket::bind("127.0.0.1:0").await.unwrap(), &config);
    let client = Client::datagram(socket, server_addr, Duration::from_millis(50), &config);
    let reply = client.call(300000, 4, 0, Bytes::new()).await.unwrap();
    assert_eq!(reply.outcome, Ok(Bytes::new()));
    let reply = client.call(300000, 4, 1, Bytes::new()).await.unwrap();
    assert_eq!(reply.outcome, Err(ServerError::ProcUnavail));
    served.abort();
}

#[tokio::test]
async fn a_reply_over_max_record_fails_its_call_only() {
    let (a, b) = tokio::io::duplex(64 * 1024);
    let config = Config {
        max_record: 1024,
        ..Config::default()
    };
    let client = Client::stream(RecordStream::new(a, &config), &config);
    let server = tokio::spawn(async move {
        let mut server = RecordStream::new(b, &Config::default());
        let big = Call::decode(server.read().await.unwrap().unwrap()).unwrap();
        let small = Call::decode(server.read().await.unwrap().unwrap()).unwrap();
        // 1 MiB of results for the first call, in 4 KiB fragments; a short reply for the other.
        let mut wire = BytesMut::new();
        Reply::success(big.xid, Bytes::from(vec![9; 1 << 20])).encode(&mut wire);
        let mut framed = BytesMut::new();
        rpc_record::encode_record(&wire, 4096, &mut framed);
        server.get_mut().write_all(&framed).await.unwrap();
        server
            .write(&encode(&Reply::success(
                small.xid,
                Bytes::from_static(b"ok!!"),
            )))
            .await
            .unwrap();
        let next = Call::decode(server.read().await.unwrap().unwrap()).unwrap();
        server
            .write(&encode(&Reply::success(next.xid, Bytes::new())))
            .await
            .unwrap();
        server
    });
    let (big, small) = tokio::join!(client.call(300000, 1, 1, Bytes::new()), async {
        tokio::task::yield_now().await;
        client.call(300000, 1, 2, Bytes::new()).await
    });
    let e = big.unwrap_err();
    assert!(
        matches!(e, Error::ReplyTooLarge { size, max: 1024, .. } if size > 1024),
        "{e}"
    );
    assert_eq!(small.unwrap().outcome, Ok(Bytes::from_static(b"ok!!")));
    // The client goes on.
    assert_eq!(
        client
            .call(300000, 1, 3, Bytes::new())
            .await
            .unwrap()
            .outcome,
        Ok(Bytes::new())
    );
    drop(server.await.unwrap());
}

/// A UDP socket whose sends fail while `fail` is set, as `sendto` does when the system
/// refuses a datagram.
struct Flaky {
    socket: UdpSocket,
    fail: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl DatagramSocket for Flaky {
    fn poll_recv_from(
        &self,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<PeerAddr>> {
        DatagramSocket::poll_recv_from(&self.socket, cx, buf)
    }

    fn poll_send_to(
        &self,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
        dest: &PeerAddr,
    ) -> std::task::Poll<std::io::Result<usize>> {
        if self.fail.load(std::sync::atomic::Ordering::Relaxed) {
            let refused = std::io::Error::from_raw_os_error(105); // ENOBUFS
            return std::task::Poll::Ready(Err(refused));
        }
        DatagramSocket::poll_send_to(&self.socket, cx, buf, dest)
    }
}

#[tokio::test]
async fn a_datagram_that_cannot_be_sent_fails_its_call_and_the_client_goes_on() {
    let config = Config::default();
    let raw = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let server_addr = PeerAddr::Inet(raw.local_addr().unwrap());
    let mut server = RecordDatagram::new(raw, &config);
    let served = tokio::spawn(async move {
        serve_datagram(&mut server, &Service::from(Program::new(300000, [4]))).await
    });
    let fail = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let socket = Flaky {
        socket: UdpSocket::bind("127.0.0.1:0").await.unwrap(),
        fail: fail.clone(),
    };
    let client = Client::datagram(
        RecordDatagram::new(socket, &config),
        server_addr,
        Duration::from_millis(100),
        &config,
    );
    let e = client.call(300000, 4, 0, Bytes::new()).await.unwrap_err();
    assert!(
        matches!(&e, Error::Io(io) if io.raw_os_error() == Some(105)),
        "{e}"
    );
    fail.store(false, std::sync::atomic::Ordering::Relaxed);
    let reply = client.call(300000, 4, 0, Bytes::new()).await.unwrap();
    assert_eq!(reply.outcome, Ok(Bytes::new()));
    served.abort();
}

#[tokio::test(start_paused = true)]
async fn an_unanswered_datagram_call_backs_off_and_gives_up_at_the_call_timeout() {
    let config = Config {
        call_timeout: Some(Duration::from_secs(10)),
        ..Config::default()
    };
    let silent = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let server_addr = PeerAddr::Inet(silent.local_addr().unwrap());
    let socket = RecordDatagram::new(UdpSocket::bind("127.0.0.1:0").await.unwrap(), &config);
    let client = Client::datagram(socket, server_addr, Duration::from_secs(1), &config);
    let started = tokio::time::Instant::now();
    let e = client.call(300000, 4, 0, Bytes::new()).await.unwrap_err();
    assert!(
        matches!(e, Error::Timeout(d) if d == Duration::from_secs(10)),
        "{e}"
    );
    // Within a tick (a quarter of the retry) of the timeout.
    let waited = started.elapsed();
    assert!(
        (Duration::from_secs(10)..=Duration::from_millis(10_250)).contains(&waited),
        "{waited:?}"
    );
    // Sent at 0, then after 1, 2 and 4 s more (each within a tick): the waits double, and
    // the next would come after the timeout.
    let mut sent = 0;
    let mut buf = [0; 256];
    while silent.try_recv_from(&mut buf).is_ok() {
        sent += 1;
    }
    assert_eq!(sent, 4);
}

#[tokio::test(start_paused = true)]
async fn a_call_on_a_stream_that_gets_no_reply_times_out_alone() {
    let (a, b) = tokio::io::duplex(64 * 1024);
    let config = Config {
        call_timeout: Some(Duration::from_secs(8)),
        ..Config::default()
    };
    let client = Client::stream(RecordStream::new(a, &config), &config);
    let server = tokio::spawn(async move {
        let mut server = RecordStream::new(b, &Config::default());
        // The first call is never answered; the second is.
        let _ignored = server.read().await.unwrap().unwrap();
        let answered = Call::decode(server.read().await.unwrap().unwrap()).unwrap();
        server
            .write(&encode(&Reply::success(answered.xid, Bytes::new())))
            .await
            .unwrap();
        server
    });
    let started = tokio::time::Instant::now();
    let e = client.call(300000, 1, 1, Bytes::new()).await.unwrap_err();
    assert!(
        matches!(e, Error::Timeout(d) if d == Duration::from_secs(8)),
        "{e}"
    );
    // Within a tick (an eighth of the timeout) of it.
    let waited = started.elapsed();
    assert!(
        (Duration::from_secs(8)..=Duration::from_secs(9)).contains(&waited),
        "{waited:?}"
    );
    let reply = client.call(300000, 1, 2, Bytes::new()).await.unwrap();
    assert_eq!(reply.outcome, Ok(Bytes::new()));
    drop(server.await.unwrap());
}
