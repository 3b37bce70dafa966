//! The tokio drivers over real loopback UDP and Unix datagram sockets, and a lossy relay.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use memogram::{
    Config, Encoding, MemoryNet, Mid, Receiver, Seed, Sender, Signer, bind_udp, bind_uxd,
};
use tokio::net::UdpSocket;

const LOOPBACK: &str = "127.0.0.1:0";
/// Every wait in these tests is bounded by this.
const PATIENCE: Duration = Duration::from_secs(10);

fn signer() -> Signer {
    Signer::from_seed(&Seed::new([11; 32]))
}

fn memo(len: usize, salt: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31) ^ salt)
        .collect()
}

fn temp_path(name: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("memogram-{}-{name}.uxd", std::process::id()));
    let _ = std::fs::remove_file(&path);
    path
}

#[tokio::test]
async fn memos_over_udp_text_and_binary_signed_and_not() {
    let a = Arc::new(bind_udp(LOOPBACK.parse().unwrap()).await.unwrap());
    let b = Arc::new(bind_udp(LOOPBACK.parse().unwrap()).await.unwrap());
    let (from, to) = (a.local_addr().unwrap(), b.local_addr().unwrap());
    let mut receiver = Receiver::new(b, Config::default());
    for encoding in [Encoding::Base64, Encoding::Base2] {
        for signed in [false, true] {
            let mut sender = Sender::new(Arc::clone(&a), Config::default())
                .encoding(encoding)
                .size(300);
            if signed {
                sender = sender.signer(signer());
            }
            for len in [1, 5, 2000] {
                let body = memo(len, len as u8);
                let mid = sender.send(&body, &to).await.unwrap();
                let got = tokio::time::timeout(PATIENCE, receiver.recv())
                    .await
                    .unwrap()
                    .unwrap();
                assert_eq!(&got.body()[..], &body[..], "{encoding:?} signed {signed}");
                assert_eq!((got.mid(), *got.source()), (mid, from));
                assert_eq!(got.vid(), signed.then(|| signer().vid()));
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_one_megabyte_memo_over_udp() {
    let a = Arc::new(bind_udp(LOOPBACK.parse().unwrap()).await.unwrap());
    let b = Arc::new(bind_udp(LOOPBACK.parse().unwrap()).await.unwrap());
    let to = b.local_addr().unwrap();
    let receiver = tokio::spawn(async move {
        let mut receiver = Receiver::new(b, Config::default());
        tokio::time::timeout(PATIENCE, receiver.recv()).await
    });
    let body = memo(1_000_000, 3);
    Sender::new(a, Config::default())
        .signer(signer())
        .send(&body, &to)
        .await
        .unwrap();
    let got = receiver.await.unwrap().unwrap().unwrap();
    assert_eq!(&got.body()[..], &body[..]);
    assert_eq!(got.vid(), Some(signer().vid()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memos_over_unix_datagram_sockets_bound_and_unbound() {
    let (a_path, b_path) = (temp_path("a"), temp_path("b"));
    let a = Arc::new(bind_uxd(Some(&a_path)).unwrap());
    let b = Arc::new(bind_uxd(Some(&b_path)).unwrap());
    let unbound = Arc::new(bind_uxd(None).unwrap());
    let mut receiver = Receiver::new(b, Config::default());
    // The usual 65535-byte grams, binary headers: a 1 MB memo takes 17 grams.
    let body = memo(1_000_000, 9);
    let sender = Sender::new(a, Config::default()).encoding(Encoding::Base2);
    let (sent, got) = tokio::join!(
        sender.send(&body, &b_path),
        tokio::time::timeout(PATIENCE, receiver.recv())
    );
    sent.unwrap();
    let got = got.unwrap().unwrap();
    assert_eq!((&got.body()[..], got.source()), (&body[..], &a_path));
    // From an unbound socket the source is the empty path, and nothing can go back to it.
    let anonymous = Sender::new(unbound, Config::default()).signer(signer());
    anonymous.send(b"who am I", &b_path).await.unwrap();
    let got = tokio::time::timeout(PATIENCE, receiver.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (got.text().unwrap(), got.source()),
        ("who am I", &PathBuf::new())
    );
    assert!(sender.send(b"reply", got.source()).await.is_err());
    for path in [a_path, b_path] {
        let _ = std::fs::remove_file(path);
    }
}

#[tokio::test]
async fn the_memory_link_loses_datagrams_when_a_queue_is_full() {
    let net = MemoryNet::new(4);
    let (a, b) = (Arc::new(net.bind(1)), Arc::new(net.bind(2)));
    let sender = Sender::new(a, Config::default()).size(40);
    // Ten grams into a queue of four: the memo cannot complete.
    sender.send(&[1; 80], &2).await.unwrap();
    assert!(
        sender.send(b"x", &3).await.is_err(),
        "nothing is bound to 3"
    );
    let mut receiver = Receiver::new(b, Config::default());
    sender.send(b"small", &2).await.unwrap();
    let got = tokio::time::timeout(Duration::from_millis(200), receiver.next()).await;
    assert!(got.is_err(), "only 4 of the first memo's grams got through");
    assert_eq!(receiver.reassembly().pending().memos, 1);
}

/// A small xorshift: the relay's schedule, the same on every run.
struct Schedule(u64);

impl Schedule {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Grams pass through a relay that drops, duplicates and reorders them on a seeded schedule:
/// every memo that comes out is exactly one that went in, and incomplete ones expire.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lossy_relay_never_gets_a_wrong_memo_delivered() {
    let sender_socket = Arc::new(bind_udp(LOOPBACK.parse().unwrap()).await.unwrap());
    // A plain socket, as a router on the path: it sees each gram as its own datagram.
    let relay = UdpSocket::bind(LOOPBACK).await.unwrap();
    let receiver_socket = Arc::new(bind_udp(LOOPBACK.parse().unwrap()).await.unwrap());
    let (relay_addr, to) = (
        relay.local_addr().unwrap(),
        receiver_socket.local_addr().unwrap(),
    );
    let (mut dropped, mut duplicated, mut swapped) = (0, 0, 0);
    let relaying = tokio::spawn(async move {
        let mut schedule = Schedule(0x5eed_1234_abcd_0001);
        let mut held: Option<Vec<u8>> = None;
        let mut buf = vec![0; 65536];
        let forward = |relay: &UdpSocket, gram: Vec<u8>, to: SocketAddr| {
            let _ = relay.try_send_to(&gram, to);
        };
        while let Ok(Ok(n)) =
            tokio::time::timeout(Duration::from_millis(500), relay.recv(&mut buf)).await
        {
            let gram = buf[..n].to_vec();
            match schedule.next() % 10 {
                0 => dropped += 1,
                1 => {
                    duplicated += 1;
                    forward(&relay, gram.clone(), to);
                    forward(&relay, gram, to);
                }
                2 if held.is_none() => {
                    swapped += 1;
                    held = Some(gram);
                }
                _ => {
                    forward(&relay, gram, to);
                    if let Some(earlier) = held.take() {
                        forward(&relay, earlier, to);
                    }
                }
            }
        }
        (dropped, duplicated, swapped)
    });
    let config = Config {
        timeout: Duration::from_millis(300),
        ..Config::default()
    };
    let mut receiver = Receiver::new(receiver_socket, config);
    let collecting = tokio::spawn(async move {
        let mut memos = Vec::new();
        while let Ok(Ok(memo)) = tokio::time::timeout(Duration::from_secs(1), receiver.recv()).await
        {
            memos.push(memo);
        }
        (memos, receiver)
    });
    let mut sent = HashMap::new();
    for i in 0..200u32 {
        let body = memo(1 + (i as usize * 37) % 3000, i as u8);
        let mut sender = Sender::new(Arc::clone(&sender_socket), Config::default()).size(200);
        if i % 3 == 0 {
            sender = sender.signer(signer());
        }
        let mid = Mid::fresh();
        sender.send_as(&body, mid, &relay_addr).await.unwrap();
        sent.insert(mid, (body, i % 3 == 0));
        // Paced, so that the relay and the receiver keep up on two cores.
        tokio::task::yield_now().await;
    }
    let (dropped, duplicated, swapped) = relaying.await.unwrap();
    let (memos, receiver) = collecting.await.unwrap();
    assert!(
        dropped > 10 && duplicated > 10 && swapped > 10,
        "{dropped} {duplicated} {swapped}"
    );
    assert!(memos.len() > 20, "only {} memos came through", memos.len());
    let delivered: std::collections::HashSet<Mid> = memos.iter().map(|m| m.mid()).collect();
    assert!(delivered.len() < sent.len(), "drops must lose some memos");
    for memo in &memos {
        let (body, signed) = &sent[&memo.mid()];
        assert_eq!(&memo.body()[..], &body[..], "a wrong memo was delivered");
        assert_eq!(memo.vid(), signed.then(|| signer().vid()));
    }
    let reassembly = receiver.reassembly();
    assert_eq!(reassembly.pending().memos, 0, "{:?}", reassembly.stats());
    assert!(reassembly.stats().expired > 0);
}

#[tokio::test(start_paused = true)]
async fn incomplete_memos_expire_one_after_another_with_no_gram_coming() {
    let net = MemoryNet::new(64);
    let (a, b) = (Arc::new(net.bind(1)), Arc::new(net.bind(2)));
    let config = Config {
        timeout: Duration::from_secs(30),
        ..Config::default()
    };
    let sender = Sender::new(a.clone(), config.clone()).size(40);
    let mut receiver = Receiver::new(b, config);
    // Two memos' first grams only: at 0 s and 10 s.
    for _ in 0..2 {
        let grams = memogram::segment(
            &memo(200, 1),
            Mid::fresh(),
            &memogram::Shape {
                size: 40,
                encoding: Encoding::Base64,
            },
            None,
            &Config::default(),
        )
        .unwrap();
        memogram::Link::send_to(&*a, &grams[0], &2).await.unwrap();
        let _ = tokio::time::timeout(Duration::from_secs(10), receiver.recv()).await;
    }
    assert_eq!(receiver.reassembly().pending().memos, 2);
    // Nothing more arrives: both expire, at 30 s and at 40 s, the timer re-armed between.
    let _ = tokio::time::timeout(Duration::from_secs(25), receiver.recv()).await;
    assert_eq!(receiver.reassembly().stats().expired, 2);
    assert_eq!(receiver.reassembly().pending().memos, 0);
    drop(sender);
}

#[tokio::test]
async fn a_datagram_over_max_gram_size_is_counted_and_the_next_memo_arrives() {
    let a = Arc::new(bind_udp(LOOPBACK.parse().unwrap()).await.unwrap());
    let b = Arc::new(bind_udp(LOOPBACK.parse().unwrap()).await.unwrap());
    let to = b.local_addr().unwrap();
    let config = Config {
        max_gram_size: 1000,
        ..Config::default()
    };
    let mut receiver = Receiver::new(b, config);
    a.get_ref().send_to(&[b'x'; 2000], to).await.unwrap();
    let sender = Sender::new(a, Config::default());
    sender.send(b"after it", &to).await.unwrap();
    let memo = tokio::time::timeout(PATIENCE, receiver.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(memo.text().unwrap(), "after it");
    let stats = receiver.reassembly().stats();
    assert_eq!((stats.oversize, stats.grams, stats.memos), (1, 2, 1));
}

#[tokio::test]
async fn hio_sized_unix_grams_of_200_000_bytes_are_received() {
    let path = temp_path("big-grams");
    let b = Arc::new(bind_uxd(Some(&path)).unwrap());
    let a = Arc::new(bind_uxd(None).unwrap());
    let mut receiver = Receiver::new(b, Config::default());
    // As a hio peer whose gram size was set to 200 000 (hio does not clamp it).
    let sender = Sender::new(a, Config::default()).size(200_000);
    let body = memo(350_000, 3);
    sender.send(&body, &path).await.unwrap();
    let memo = tokio::time::timeout(PATIENCE, receiver.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&memo.body()[..], &body[..]);
    assert_eq!(receiver.reassembly().stats().grams, 2);
    let _ = std::fs::remove_file(&path);
}

#[tokio::test]
async fn a_flood_is_taken_64_datagrams_a_turn() {
    let net = MemoryNet::new(10_000);
    let (a, b) = (Arc::new(net.bind(1)), Arc::new(net.bind(2)));
    let mut receiver = Receiver::new(b, Config::default());
    for _ in 0..1000 {
        memogram::Link::send_to(&*a, b"not a gram", &2)
            .await
            .unwrap();
    }
    // One poll takes 64 datagrams, then yields (and asks to be polled again).
    assert!(futures_util::FutureExt::now_or_never(receiver.recv()).is_none());
    assert_eq!(receiver.reassembly().stats().grams, 64);
    assert!(futures_util::FutureExt::now_or_never(receiver.recv()).is_none());
    assert_eq!(receiver.reassembly().stats().grams, 128);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clones_of_a_sender_send_at_once_on_one_socket() {
    let a = Arc::new(bind_udp(LOOPBACK.parse().unwrap()).await.unwrap());
    let b = Arc::new(bind_udp(LOOPBACK.parse().unwrap()).await.unwrap());
    let to = b.local_addr().unwrap();
    let sender = Sender::new(a, Config::default());
    let mut receiver = Receiver::new(b, Config::default());
    let tasks: Vec<_> = (0..8u8)
        .map(|n| {
            let sender = sender.clone();
            tokio::spawn(async move {
                for i in 0..10u8 {
                    sender.send(&memo(1000, n ^ i), &to).await.unwrap();
                    tokio::task::yield_now().await;
                }
            })
        })
        .collect();
    let mut seen = 0;
    while seen < 80 {
        tokio::time::timeout(PATIENCE, receiver.recv())
            .await
            .unwrap()
            .unwrap();
        seen += 1;
    }
    for task in tasks {
        tokio::time::timeout(PATIENCE, task).await.unwrap().unwrap();
    }
}

#[tokio::test]
async fn a_unix_socket_file_is_handled_as_hio_handles_it() {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    let root = std::env::temp_dir().join(format!("memogram-uxd-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    // A missing directory is made, owner only (hio's 0o1700); the file gets 0o755.
    let path = root.join("deep/peer.uxd");
    let socket = memogram::bind_uxd(Some(&path)).unwrap();
    let dir_mode = std::fs::metadata(path.parent().unwrap())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(dir_mode & 0o7777, 0o1700);
    let file = std::fs::metadata(&path).unwrap();
    assert!(file.file_type().is_socket());
    assert_eq!(file.permissions().mode() & 0o777, 0o755);
    assert_eq!(socket.path(), Some(path.as_path()));
    // A live socket's path is refused...
    let taken = memogram::bind_uxd(Some(&path)).unwrap_err();
    assert_eq!(taken.kind(), std::io::ErrorKind::AddrInUse);
    // ...and the file goes when the socket is dropped.
    drop(socket);
    assert!(!path.exists(), "removed on close");
    // A file a dead process left (a socket nobody receives on) is replaced.
    let stale = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
    drop(stale);
    assert!(path.exists(), "std leaves its file behind");
    let socket = memogram::bind_uxd(Some(&path)).unwrap();
    let sender = memogram::bind_uxd(None).unwrap();
    sender.send_to(b"hello", &path).await.unwrap();
    let mut buf = [0; 16];
    let (n, _) = socket.recv_from(&mut buf).await.unwrap();
    assert_eq!(&buf[..n], b"hello");
    // A file another socket put at the path since is left alone.
    std::fs::remove_file(&path).unwrap();
    let other = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
    drop(socket);
    assert!(path.exists(), "not ours: kept");
    drop(other);
    std::fs::remove_dir_all(&root).unwrap();
}

#[tokio::test]
async fn a_wire_log_sees_every_datagram_both_ways_and_is_off_by_default() {
    use memogram::{Direction, WireLog};
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = {
        let seen = std::sync::Arc::clone(&seen);
        WireLog::new(move |direction, peer: &u64, bytes: &[u8]| {
            seen.lock()
                .unwrap()
                .push((direction, *peer, bytes.to_vec()));
        })
    };
    let net = memogram::MemoryNet::new(64);
    let (a, b) = (
        std::sync::Arc::new(net.bind(1)),
        std::sync::Arc::new(net.bind(2)),
    );
    let sender = memogram::Sender::new(a, memogram::Config::default())
        .size(60)
        .wire_log(log.clone());
    let mut receiver =
        memogram::Receiver::new(b, memogram::Config::default()).wire_log(log.clone());
    sender.send(&[b'x'; 100], &2).await.unwrap();
    let memo = receiver.recv().await.unwrap();
    assert_eq!(memo.body().len(), 100);
    let seen = seen.lock().unwrap();
    let sent: Vec<_> = seen.iter().filter(|e| e.0 == Direction::Sent).collect();
    let received: Vec<_> = seen.iter().filter(|e| e.0 == Direction::Received).collect();
    assert!(sent.len() >= 2, "several grams");
    assert_eq!(sent.len(), received.len());
    for (s, r) in sent.iter().zip(&received) {
        assert_eq!((s.1, r.1), (2, 1), "to the receiver, from the sender");
        assert_eq!(s.2, r.2, "the same bytes");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_all_sends_many_memos_together_over_batched_udp_and_each_arrives_whole() {
    let a = Arc::new(bind_udp(LOOPBACK.parse().unwrap()).await.unwrap());
    let b = Arc::new(bind_udp(LOOPBACK.parse().unwrap()).await.unwrap());
    let to = b.local_addr().unwrap();
    let mut receiver = Receiver::new(b, Config::default());
    let sender = Sender::new(a, Config::default()).signer(signer());
    // 200 small memos of one size (their grams share GSO sends), then ones of many grams.
    let mut memos: Vec<Vec<u8>> = (0..200u32).map(|i| memo(300, i as u8)).collect();
    memos.extend((0..3u32).map(|i| memo(50_000 + i as usize * 777, 7)));
    memos.push(Vec::new());
    let mids = sender
        .send_all(memos.iter().map(Vec::as_slice), &to)
        .await
        .unwrap();
    assert_eq!(mids.len(), memos.len());
    let mut expected: HashMap<Mid, Vec<u8>> = mids
        .into_iter()
        .zip(memos)
        .filter(|(_, body)| !body.is_empty())
        .collect();
    while !expected.is_empty() {
        let memo = tokio::time::timeout(PATIENCE, receiver.recv())
            .await
            .expect("every memo arrives")
            .unwrap();
        let body = expected
            .remove(&memo.mid())
            .expect("a memo that was sent, once");
        assert_eq!(&memo.body()[..], &body[..]);
        assert_eq!(memo.vid(), Some(signer().vid()));
    }
    assert_eq!(receiver.stats().rejected, 0);
}
