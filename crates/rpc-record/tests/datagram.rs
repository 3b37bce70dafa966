//! The datagram transporter over loopback UDP and Unix datagram sockets.

use rpc_record::{Config, Error, Fragment, PeerAddr, Record, RecordDatagram, Rule, Xid};
use tokio::net::{UdpSocket, UnixDatagram};

async fn udp(config: &Config) -> RecordDatagram<UdpSocket> {
    RecordDatagram::new(UdpSocket::bind("127.0.0.1:0").await.unwrap(), config)
}

fn addr(socket: &RecordDatagram<UdpSocket>) -> PeerAddr {
    PeerAddr::Inet(socket.get_ref().local_addr().unwrap())
}

#[tokio::test]
async fn a_datagram_is_one_message_answered_at_its_source() {
    let config = Config::default();
    let (mut server, mut client) = (udp(&config).await, udp(&config).await);
    client
        .send_to(b"\0\0\0\x07ping", &addr(&server))
        .await
        .unwrap();
    let (call, source) = server.recv().await.unwrap();
    assert_eq!(&call[..], b"\0\0\0\x07ping");
    assert_eq!(source, addr(&client));
    server.send_to(b"\0\0\0\x07pong", &source).await.unwrap();
    assert_eq!(&client.recv().await.unwrap().0[..], b"\0\0\0\x07pong");
}

#[tokio::test]
async fn a_datagram_over_the_limit_is_dropped_with_an_error_and_the_next_one_arrives() {
    let small = Config {
        max_datagram: 100,
        ..Config::default()
    };
    let mut server = udp(&small).await;
    let client = udp(&Config::default()).await;
    let raw = client.get_ref();
    raw.send_to(&[1; 101], server.get_ref().local_addr().unwrap())
        .await
        .unwrap();
    raw.send_to(&[2; 100], server.get_ref().local_addr().unwrap())
        .await
        .unwrap();
    let e = server.recv().await.unwrap_err();
    assert!(
        matches!(e, Error::DatagramTooLarge { len: 101, max: 100 }),
        "{e}"
    );
    assert_eq!(server.recv().await.unwrap().0.len(), 100);
    // And one is not sent past the limit.
    let e = server.send_to(&[0; 101], &addr(&client)).await.unwrap_err();
    assert_eq!(
        e.to_string(),
        "datagram too large: 101 bytes, the limit is 100"
    );
}

#[tokio::test]
async fn admission_is_asked_once_per_datagram_with_its_length() {
    let config = Config::default();
    let (mut server, client) = (udp(&config).await, udp(&config).await);
    client
        .send_to(&[0, 0, 0, 0x51, 9, 9, 9, 9], &addr(&server))
        .await
        .unwrap();
    client.send_to(&[0, 0], &addr(&server)).await.unwrap();
    let mut asked = Vec::new();
    let mut rule = |f: &Fragment| {
        asked.push(*f);
        Rule::Reject
    };
    let (record, _) = server.recv_with(&mut rule).await.unwrap();
    assert_eq!(record, Record::Reject { xid: Xid(0x51) });
    let e = server.recv_with(&mut rule).await.unwrap_err();
    assert!(matches!(e, Error::ShortRecord { len: 2 }), "{e}");
    assert_eq!(asked.len(), 2);
    assert_eq!((asked[0].len, asked[0].last, asked[0].so_far), (8, true, 8));
}

#[tokio::test]
async fn unix_datagrams_work_the_same_and_an_unnamed_source_cannot_be_answered() {
    let dir = std::env::temp_dir().join(format!("rpc-record-dgram-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (server_path, client_path) = (dir.join("server"), dir.join("client"));
    let _ = std::fs::remove_file(&server_path);
    let _ = std::fs::remove_file(&client_path);
    let config = Config::default();
    let mut server = RecordDatagram::new(UnixDatagram::bind(&server_path).unwrap(), &config);
    let mut client = RecordDatagram::new(UnixDatagram::bind(&client_path).unwrap(), &config);
    let to_server = PeerAddr::Unix(Some(server_path.clone()));
    client.send_to(b"\0\0\0\x01call", &to_server).await.unwrap();
    let (call, source) = server.recv().await.unwrap();
    assert_eq!(&call[..], b"\0\0\0\x01call");
    assert_eq!(source, PeerAddr::Unix(Some(client_path.clone())));
    server.send_to(b"\0\0\0\x01back", &source).await.unwrap();
    assert_eq!(&client.recv().await.unwrap().0[..], b"\0\0\0\x01back");

    let unnamed = RecordDatagram::new(UnixDatagram::unbound().unwrap(), &config);
    unnamed
        .send_to(b"\0\0\0\x02anon", &to_server)
        .await
        .unwrap();
    let (_, source) = server.recv().await.unwrap();
    assert_eq!(source, PeerAddr::Unix(None));
    let e = server.send_to(b"reply", &source).await.unwrap_err();
    assert!(
        e.to_string().contains("cannot send to unix:(unnamed)"),
        "{e}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
