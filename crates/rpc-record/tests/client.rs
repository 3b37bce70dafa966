//! The client against our own server and against hand-shaped replies.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use rpc_record::{
    Call, Client, Config, Error, PeerAddr, Program, RecordDatagram, RecordStream, Reply,
    ServerError, serve_datagram, serve_stream,
};
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
            matches!(&e, Error::Ended(why) if matches!(**why, Error::Closed)),
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
    let program = Program::new(300000, [1, 2]);
    tokio::spawn(
        async move { serve_stream(RecordStream::new(b, &Config::default()), &program).await },
    );
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
        let program = Program::new(300000, [4]);
        let (second, source) = server.recv().await.unwrap();
        assert_eq!(first, second, "the same call, the same xid");
        let reply = program.answer(second).unwrap();
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
