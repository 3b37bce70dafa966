//! The service framework over real transporters: concurrent calls on one connection, the
//! per-connection bound on calls that run, the duplicate-request cache of a datagram server,
//! and AUTH_SYS from client to handler.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use rpc_record::{
    AuthStat, AuthSys, Call, CallContext, Client, Config, Program, RecordDatagram, RecordStream,
    Reply, ServerError, Service, Xid, encode_record, serve_datagram, serve_stream, xdr,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UdpSocket;

const PROG: u32 = 300002;

/// Procedure 1 sleeps the milliseconds it is given and returns them; procedure 2 is
/// WHOAMI.
fn sleepy(running: Arc<AtomicUsize>, most: Arc<AtomicUsize>) -> Service {
    Service::from(
        Program::new(PROG, [1])
            .procedure(1, 1, move |_: CallContext, ms: u32| {
                let running = Arc::clone(&running);
                let most = Arc::clone(&most);
                async move {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(u64::from(ms))).await;
                    running.fetch_sub(1, Ordering::SeqCst);
                    Ok::<_, ServerError>(ms)
                }
            })
            .procedure(1, 2, |context: CallContext, ()| async move {
                context
                    .auth_sys
                    .map(|sys| sys.uid)
                    .ok_or(ServerError::AuthError(AuthStat::TooWeak))
            }),
    )
}

fn call_record(xid: u32, ms: u32) -> Vec<u8> {
    let mut message = BytesMut::new();
    Call::new(Xid(xid), PROG, 1, 1, xdr::to_bytes(&ms)).encode(&mut message);
    let mut wire = BytesMut::new();
    encode_record(&message, u32::MAX, &mut wire);
    wire.to_vec()
}

async fn read_reply(stream: &mut tokio::io::DuplexStream) -> Reply {
    let mut mark = [0; 4];
    stream.read_exact(&mut mark).await.unwrap();
    let len = (u32::from_be_bytes(mark) & 0x7fff_ffff) as usize;
    let mut message = vec![0; len];
    stream.read_exact(&mut message).await.unwrap();
    Reply::decode(Bytes::from(message)).unwrap()
}

#[tokio::test]
async fn calls_on_one_connection_run_concurrently_and_reply_in_the_order_they_finish() {
    let service = sleepy(Arc::default(), Arc::default());
    let (mut peer, ours) = tokio::io::duplex(64 * 1024);
    let config = Config::default();
    tokio::spawn(
        async move { serve_stream(&mut RecordStream::new(ours, &config), &service).await },
    );
    peer.write_all(&call_record(1, 300)).await.unwrap();
    peer.write_all(&call_record(2, 0)).await.unwrap();
    let first = read_reply(&mut peer).await;
    let second = read_reply(&mut peer).await;
    assert_eq!(first.xid, Xid(2), "the quick call is answered first");
    assert_eq!(first.outcome, Ok(xdr::to_bytes(&0u32)));
    assert_eq!(second.xid, Xid(1));
    assert_eq!(second.outcome, Ok(xdr::to_bytes(&300u32)));
}

#[tokio::test]
async fn no_more_than_max_calls_run_on_one_connection_and_every_call_is_answered() {
    let running = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let service = sleepy(Arc::clone(&running), Arc::clone(&most));
    let (mut peer, ours) = tokio::io::duplex(64 * 1024);
    let config = Config {
        max_calls: 3,
        ..Config::default()
    };
    let served =
        tokio::spawn(
            async move { serve_stream(&mut RecordStream::new(ours, &config), &service).await },
        );
    for xid in 0..12 {
        peer.write_all(&call_record(xid, 20)).await.unwrap();
    }
    let mut answered = Vec::new();
    for _ in 0..12 {
        answered.push(read_reply(&mut peer).await.xid.0);
    }
    answered.sort_unstable();
    assert_eq!(answered, (0..12).collect::<Vec<_>>());
    assert_eq!(most.load(Ordering::SeqCst), 3, "three at a time, no more");
    // The peer closes: the server ends once every call was answered.
    drop(peer);
    served.await.unwrap().unwrap();
}

#[tokio::test]
async fn auth_sys_credentials_reach_the_handler_and_their_absence_is_too_weak() {
    let service = sleepy(Arc::default(), Arc::default());
    let (a, b) = tokio::io::duplex(64 * 1024);
    let config = Config::default();
    let mut server = RecordStream::new(b, &config);
    tokio::spawn(async move { serve_stream(&mut server, &service).await });
    let client = Client::stream(RecordStream::new(a, &config), &config);
    let anonymous: Result<u32, _> = client.call_xdr(PROG, 1, 2, &()).await.unwrap();
    assert_eq!(anonymous, Err(ServerError::AuthError(AuthStat::TooWeak)));
    let sys = AuthSys {
        uid: 4321,
        machine_name: "here".into(),
        ..AuthSys::default()
    };
    let as_sys = client.with_cred(sys.to_cred().unwrap());
    let uid: Result<u32, _> = as_sys.call_xdr(PROG, 1, 2, &()).await.unwrap();
    assert_eq!(uid, Ok(4321));
}

#[tokio::test]
async fn a_retransmitted_datagram_call_runs_once_and_is_answered_from_the_cache() {
    let runs = Arc::new(AtomicUsize::new(0));
    let service = {
        let runs = Arc::clone(&runs);
        Service::from(
            Program::new(PROG, [1]).procedure(1, 1, move |_: CallContext, ms: u32| {
                runs.fetch_add(1, Ordering::SeqCst);
                async move {
                    tokio::time::sleep(Duration::from_millis(u64::from(ms))).await;
                    Ok::<_, ServerError>(ms)
                }
            }),
        )
    };
    let config = Config::default();
    let server = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = server.local_addr().unwrap();
    tokio::spawn(async move {
        serve_datagram(&mut RecordDatagram::new(server, &config), &service).await
    });
    let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut call = BytesMut::new();
    Call::new(Xid(77), PROG, 1, 1, xdr::to_bytes(&100u32)).encode(&mut call);
    // Three copies while the first runs: dropped.
    for _ in 0..3 {
        client.send_to(&call, addr).await.unwrap();
    }
    let mut buf = vec![0; 1024];
    let len = client.recv(&mut buf).await.unwrap();
    let first = Reply::decode(Bytes::copy_from_slice(&buf[..len])).unwrap();
    assert_eq!(first.outcome, Ok(xdr::to_bytes(&100u32)));
    // A copy after the reply: the same reply, from the cache, at once.
    client.send_to(&call, addr).await.unwrap();
    let len = tokio::time::timeout(Duration::from_millis(50), client.recv(&mut buf))
        .await
        .expect("the cached reply comes at once")
        .unwrap();
    assert_eq!(
        Reply::decode(Bytes::copy_from_slice(&buf[..len])).unwrap(),
        first
    );
    assert_eq!(runs.load(Ordering::SeqCst), 1, "the call ran once");
    // Nothing else came: the copies sent while it ran got no reply of their own.
    assert!(
        tokio::time::timeout(Duration::from_millis(150), client.recv(&mut buf))
            .await
            .is_err()
    );
}

#[tokio::test]
async fn a_service_over_unix_stream_and_datagram_sockets() {
    let service = Arc::new(sleepy(Arc::default(), Arc::default()));
    let config = Config::default();
    // A stream: the peer's path is unnamed, the calls run as over TCP.
    let (ours, theirs) = tokio::net::UnixStream::pair().unwrap();
    let peer = rpc_record::Peer::of_unix(&ours);
    let mut server = RecordStream::new(ours, &config).with_peer(peer);
    let stream_service = Arc::clone(&service);
    tokio::spawn(async move { serve_stream(&mut server, &stream_service).await });
    let client = Client::stream(RecordStream::new(theirs, &config), &config);
    let slept: Result<u32, _> = client.call_xdr(PROG, 1, 1, &5u32).await.unwrap();
    assert_eq!(slept, Ok(5));
    // Datagrams between two named sockets: the reply goes back to the caller's path.
    let dir = std::env::temp_dir().join(format!("rpc-service-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (server_path, client_path) = (dir.join("server"), dir.join("client"));
    let _ = std::fs::remove_file(&server_path);
    let _ = std::fs::remove_file(&client_path);
    let socket = tokio::net::UnixDatagram::bind(&server_path).unwrap();
    let datagram_service = Arc::clone(&service);
    tokio::spawn(async move {
        serve_datagram(&mut RecordDatagram::new(socket, &config), &datagram_service).await
    });
    let config = Config::default();
    let socket = tokio::net::UnixDatagram::bind(&client_path).unwrap();
    let client = Client::datagram(
        RecordDatagram::new(socket, &config),
        rpc_record::PeerAddr::Unix(Some(server_path.clone())),
        Duration::from_millis(200),
        &config,
    );
    let slept: Result<u32, _> = client.call_xdr(PROG, 1, 1, &7u32).await.unwrap();
    assert_eq!(slept, Ok(7));
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(start_paused = true)]
async fn a_connection_whose_peer_closed_ends_after_the_drain_timeout_even_if_a_call_never_does() {
    let service = Service::from(
        Program::new(PROG, [1]).raw_procedure(1, 9, |context, args| {
            Box::pin(async move {
                let _held = (context, args);
                std::future::pending().await
            })
        }),
    );
    let (mut peer, ours) = tokio::io::duplex(64 * 1024);
    let config = Config {
        drain_timeout: Some(Duration::from_secs(5)),
        ..Config::default()
    };
    let served =
        tokio::spawn(
            async move { serve_stream(&mut RecordStream::new(ours, &config), &service).await },
        );
    let mut message = BytesMut::new();
    Call::new(Xid(3), PROG, 1, 9, Bytes::new()).encode(&mut message);
    let mut wire = BytesMut::new();
    encode_record(&message, u32::MAX, &mut wire);
    peer.write_all(&wire).await.unwrap();
    peer.shutdown().await.unwrap();
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(!served.is_finished(), "the call may still finish");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let ended = tokio::time::timeout(Duration::from_secs(1), served).await;
    assert!(matches!(ended, Ok(Ok(Ok(())))), "{ended:?}");
}

/// A stream that counts how often it is asked for bytes.
struct Counted<T> {
    io: T,
    reads: Arc<AtomicUsize>,
}

impl<T: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for Counted<T> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        self.reads.fetch_add(1, Ordering::Relaxed);
        std::pin::Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<T: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for Counted<T> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.io).poll_write(cx, buf)
    }
    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.io).poll_flush(cx)
    }
    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[tokio::test]
async fn a_busy_polling_server_spins_after_a_call_then_sleeps_and_answers_as_any_other() {
    let service = sleepy(Arc::default(), Arc::default());
    let (mut peer, ours) = tokio::io::duplex(64 * 1024);
    let reads = Arc::new(AtomicUsize::new(0));
    let ours = Counted {
        io: ours,
        reads: Arc::clone(&reads),
    };
    let config = Config {
        busy_poll: Some(Duration::from_millis(20)),
        ..Config::default()
    };
    let served =
        tokio::spawn(
            async move { serve_stream(&mut RecordStream::new(ours, &config), &service).await },
        );
    for round in 0..3 {
        peer.write_all(&call_record(round, 0)).await.unwrap();
        assert_eq!(read_reply(&mut peer).await.xid, Xid(round));
        // It spins: asks the stream for bytes again and again while idle...
        let spinning = reads.load(Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(40)).await;
        let after_spin = reads.load(Ordering::Relaxed);
        assert!(after_spin > spinning + 10, "it polls while it spins");
        // ...and no longer once the spin has passed: it sleeps until the next call.
        tokio::time::sleep(Duration::from_millis(40)).await;
        assert_eq!(reads.load(Ordering::Relaxed), after_spin, "asleep");
    }
    drop(peer);
    let ended = tokio::time::timeout(Duration::from_secs(5), served).await;
    assert!(matches!(ended, Ok(Ok(Ok(())))), "{ended:?}");
}

#[tokio::test]
async fn a_max_unsent_of_zero_counts_as_one_byte_and_calls_are_answered() {
    // 0 would mean "backed up" before anything was queued: the server neither read nor
    // slept, but spun. It counts as 1, as the field's doc says.
    let service = sleepy(Arc::default(), Arc::default());
    let (mut peer, ours) = tokio::io::duplex(64 * 1024);
    let config = Config {
        max_unsent: 0,
        ..Config::default()
    };
    let serving =
        tokio::spawn(
            async move { serve_stream(&mut RecordStream::new(ours, &config), &service).await },
        );
    for xid in 1..=3 {
        peer.write_all(&call_record(xid, 0)).await.unwrap();
        let reply = tokio::time::timeout(Duration::from_secs(5), read_reply(&mut peer))
            .await
            .expect("answered");
        assert_eq!(reply.xid, Xid(xid));
        assert_eq!(reply.outcome, Ok(xdr::to_bytes(&0u32)));
    }
    drop(peer);
    let ended = tokio::time::timeout(Duration::from_secs(5), serving).await;
    assert!(matches!(ended, Ok(Ok(Ok(())))), "{ended:?}");
}

/// What a [`Scripted`] transport saw: bytes read by the server, or written by it.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Io {
    Read(usize),
    Write(usize),
}

/// A transport that hands the server `input` as fast as it reads, then EOF, takes every
/// write whole, and logs both.
struct Scripted {
    input: Vec<u8>,
    at: usize,
    log: Vec<Io>,
}

impl tokio::io::AsyncRead for Scripted {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let n = buf.remaining().min(self.input.len() - self.at);
        let at = self.at;
        buf.put_slice(&self.input[at..at + n]);
        self.at += n;
        if n > 0 {
            self.log.push(Io::Read(n));
        }
        std::task::Poll::Ready(Ok(()))
    }
}

impl tokio::io::AsyncWrite for Scripted {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        self.log.push(Io::Write(buf.len()));
        std::task::Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

/// `count` ECHO calls of `text` served in one burst with `config`: the transport's log.
async fn echo_burst(count: u32, text: &str, config: &Config) -> Vec<Io> {
    let service = Service::from(Program::new(PROG, [1]).procedure(
        1,
        1,
        |_: CallContext, text: String| async move { Ok::<_, ServerError>(text) },
    ));
    let mut input = Vec::new();
    for xid in 1..=count {
        let mut message = BytesMut::new();
        Call::new(Xid(xid), PROG, 1, 1, xdr::to_bytes(&text)).encode(&mut message);
        let mut wire = BytesMut::new();
        encode_record(&message, u32::MAX, &mut wire);
        input.extend_from_slice(&wire);
    }
    let io = Scripted {
        input,
        at: 0,
        log: Vec::new(),
    };
    let mut stream = RecordStream::new(io, config);
    serve_stream(&mut stream, &service).await.unwrap();
    stream.into_inner().0.log
}

#[tokio::test]
async fn a_burst_of_calls_gets_its_first_reply_at_once_and_the_rest_in_growing_writes() {
    // 16 calls of 1 KiB, all there to read: a peer with 16 in flight. The replies (a mark,
    // 24 bytes of header, a string of 4 + 1024) must not all wait for the last call.
    let reply = 4 + 24 + 4 + 1024;
    let log = echo_burst(16, &"x".repeat(1024), &Config::default()).await;
    let writes: Vec<usize> = log
        .iter()
        .filter_map(|io| match io {
            Io::Write(n) => Some(*n),
            Io::Read(_) => None,
        })
        .collect();
    assert_eq!(writes.iter().sum::<usize>(), 16 * reply, "{log:?}");
    assert_eq!(writes[0], reply, "the first reply goes alone: {log:?}");
    let last_read = log.iter().rposition(|io| matches!(io, Io::Read(_)));
    let first_write = log.iter().position(|io| matches!(io, Io::Write(_)));
    assert!(
        first_write < last_read,
        "written before the last call was read: {log:?}"
    );
    // Later writes gather at least 4 KiB (all but the burst's last), so the replies cost
    // far fewer writes than one each.
    for n in &writes[1..writes.len() - 1] {
        assert!(*n >= 4 * 1024, "{log:?}");
    }
    assert!(writes.len() <= 5, "{log:?}");
}

#[tokio::test]
async fn a_burst_of_small_replies_goes_out_in_one_write() {
    // 16 empty echoes: 32 bytes a reply (a mark, 24 bytes of header, the length), 512 in
    // all, less than the 1 KiB a first write waits for.
    let log = echo_burst(16, "", &Config::default()).await;
    let writes: Vec<&Io> = log.iter().filter(|io| matches!(io, Io::Write(_))).collect();
    assert_eq!(writes, [&Io::Write(16 * 32)], "{log:?}");
}

#[tokio::test]
async fn without_early_replies_a_burst_goes_out_in_one_write_after_the_last_call_is_read() {
    let config = Config {
        early_replies: false,
        ..Config::default()
    };
    let log = echo_burst(16, &"x".repeat(1024), &config).await;
    let reads = log.iter().filter(|io| matches!(io, Io::Read(_))).count();
    assert_eq!(
        reads, 3,
        "17 152 bytes of calls, read 8 KiB at a time: {log:?}"
    );
    assert_eq!(
        log[reads..],
        [Io::Write(16 * (4 + 24 + 4 + 1024))],
        "{log:?}"
    );
}
