//! packetstream against a raw length-delimited echo over the same kind of socket, in one run.
//!
//! For loopback TCP and a Unix socket pair:
//! - `pipelined_64B`: 64-byte echo requests with 64 in flight (targets: `request()` at least
//!   0.7x raw, the batched `Pipeline` at least 0.85x);
//! - `sequential_64B`: one 64-byte request at a time, i.e. round-trip latency (at most 1.2x);
//! - `throughput_64KiB`: 64 KiB echo requests with 4 in flight (at least 0.85x raw).
//!
//! `request()`, `submit()` (each request sent at once, its `Call` awaited oldest first) and
//! `Pipeline` all run against the same `PacketConnection` server, whose echo handler is an
//! async closure (`with_handler`). `pipeline_sync` is `Pipeline` against a server whose echo
//! handler is a plain closure (`with_sync_handler`), answered without a future, as the raw
//! echo answers.
//!
//! The raw echo is tokio-util's `LengthDelimitedCodec` with no correlation at all: the server
//! decodes every frame a read brought and writes all the echoes in one `write_all`; the client
//! keeps the same number in flight and flushes once per batch of replies. Three more lines
//! split the cost, each over its own connection:
//! - `codec_alone`: that plain client speaking packets (`PacketCodec`) to the raw echo's own
//!   loop speaking packets (`codec_echo`): the codec with no connection around it;
//! - `server_alone`: the plain packet client against a `PacketConnection` server;
//!   `server_alone_sync` against the one with the synchronous handler;
//! - `client_alone`: a `PacketConnection` client against `codec_echo`.
//!
//! `packetstream/codec/64B` times the two codecs in memory: 64 frames encoded into one buffer
//! and decoded back. Each workload also runs through tarpc (bincode over the same kind of
//! socket), the target being to be ahead of it.
//!
//! `cargo bench --bench packetstream -- --warm-up-time 1 --measurement-time 5`
//!
//! With `STRATA_BENCH_WORKERS=1` the runtime has one worker thread instead of one per core.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::future::Future;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use futures_util::{FutureExt, SinkExt, StreamExt, poll};
use strata::packetstream::{Config, Packet, PacketCodec, PacketConnection, Request};
use tarpc::server::{BaseChannel, Channel};
use tarpc::tokio_serde::formats::Bincode;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::net::{TcpListener, TcpStream, UnixStream};
use tokio::runtime::Runtime;
use tokio_util::codec::{Decoder, Encoder, FramedRead, FramedWrite, LengthDelimitedCodec};

trait Io: AsyncRead + AsyncWrite + Unpin + Send + 'static {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Io for T {}

/// A connected pair of the given kind: (client end, server end).
async fn socket_pair(kind: &str) -> (Box<dyn Io>, Box<dyn Io>) {
    match kind {
        "tcp" => {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let client = TcpStream::connect(listener.local_addr().unwrap())
                .await
                .unwrap();
            let (server, _) = listener.accept().await.unwrap();
            client.set_nodelay(true).unwrap();
            server.set_nodelay(true).unwrap();
            (Box::new(client), Box::new(server))
        }
        _ => {
            let (client, server) = UnixStream::pair().unwrap();
            (Box::new(client), Box::new(server))
        }
    }
}

/// The raw echo server: every frame a read brought is echoed in one write.
async fn raw_echo(mut io: Box<dyn Io>) {
    let mut codec = LengthDelimitedCodec::new();
    let (mut inbox, mut outbox) = (BytesMut::with_capacity(64 * 1024), BytesMut::new());
    while io.read_buf(&mut inbox).await.is_ok_and(|n| n > 0) {
        while let Ok(Some(frame)) = codec.decode(&mut inbox) {
            codec.encode(frame.freeze(), &mut outbox).unwrap();
        }
        if io.write_all(&outbox).await.is_err() {
            return;
        }
        outbox.clear();
    }
}

/// The raw echo's loop with packets instead of length-delimited frames: every request a read
/// brought is answered (flags and payload echoed) in one write, with no session, handler or
/// correlation. What `PacketCodec` alone costs; the ceiling of the packetstream server.
async fn codec_echo(mut io: Box<dyn Io>) {
    let mut codec = PacketCodec::default();
    let (mut inbox, mut outbox) = (BytesMut::with_capacity(64 * 1024), BytesMut::new());
    while io.read_buf(&mut inbox).await.is_ok_and(|n| n > 0) {
        while let Ok(Some(rq)) = codec.decode(&mut inbox) {
            let (channel, tag, flags) = (rq.channel(), rq.tag(), rq.flags());
            let reply = Packet::response(channel, tag, true, flags, rq.into_payload()).unwrap();
            codec.encode(&reply, &mut outbox).unwrap();
        }
        if io.write_all(&outbox).await.is_err() {
            return;
        }
        outbox.clear();
    }
}

/// A client with no correlation at all, over either codec: it keeps `window` requests in
/// flight and flushes once per batch of replies. Over `LengthDelimitedCodec` it is the raw
/// echo's client; over `PacketCodec` (tags counted up) it measures the packetstream server
/// alone.
struct PlainClient<C: Decoder, I> {
    replies: FramedRead<ReadHalf<Box<dyn Io>>, C>,
    requests: FramedWrite<WriteHalf<Box<dyn Io>>, C>,
    /// Makes the next request of a payload.
    request: Box<dyn FnMut(&Bytes) -> I + Send>,
    /// Whether a reply is the echo of a payload of this length.
    echoes: fn(&C::Item, usize) -> bool,
}

impl<C, I> PlainClient<C, I>
where
    C: Decoder<Error: std::fmt::Debug> + Encoder<I, Error: std::fmt::Debug>,
{
    fn new(
        io: Box<dyn Io>,
        codec: C,
        request: impl FnMut(&Bytes) -> I + Send + 'static,
        echoes: fn(&C::Item, usize) -> bool,
    ) -> Self
    where
        C: Clone,
    {
        let (read, write) = tokio::io::split(io);
        PlainClient {
            replies: FramedRead::new(read, codec.clone()),
            requests: FramedWrite::new(write, codec),
            request: Box::new(request),
            echoes,
        }
    }

    /// `n` echo requests of `payload`, `window` in flight.
    async fn run(&mut self, n: u64, window: u64, payload: &Bytes) {
        let first = n.min(window);
        for _ in 0..first {
            self.requests.feed((self.request)(payload)).await.unwrap();
        }
        self.requests.flush().await.unwrap();
        let (mut sent, mut got) = (first, 0);
        while got < n {
            let mut batch = 0;
            let reply = self.replies.next().await.unwrap().unwrap();
            assert!((self.echoes)(&reply, payload.len()));
            batch += 1;
            while let Some(Some(reply)) = self.replies.next().now_or_never() {
                assert!((self.echoes)(&reply.unwrap(), payload.len()));
                batch += 1;
            }
            got += batch;
            for _ in 0..batch.min(n - sent) {
                self.requests.feed((self.request)(payload)).await.unwrap();
                sent += 1;
            }
            self.requests.flush().await.unwrap();
        }
    }
}

/// The plain client speaking packets: tags counted up from 2, replies checked for ok.
fn plain_packet_client(io: Box<dyn Io>) -> PlainClient<PacketCodec, Packet> {
    let mut tag = 1;
    PlainClient::new(
        io,
        PacketCodec::default(),
        move |payload: &Bytes| {
            tag += 1;
            Packet::request(0, tag, 0, 1, payload.clone()).unwrap()
        },
        |reply: &Packet, len| reply.ok() == Some(true) && reply.payload().len() == len,
    )
}

/// Times one run of a plain client taken out of `slot`, in a spawned task, and puts it back.
fn time_plain<C, I>(
    rt: &Runtime,
    slot: &mut Option<PlainClient<C, I>>,
    iters: u64,
    window: u64,
    payload: &Bytes,
) -> Duration
where
    C: Decoder<Error: std::fmt::Debug> + Encoder<I, Error: std::fmt::Debug> + Send + 'static,
    C::Item: Send,
    I: Send + 'static,
{
    let mut client = slot.take().expect("the plain client is back");
    let payload = payload.clone();
    let (client, elapsed) = rt
        .block_on(rt.spawn(async move {
            let started = Instant::now();
            client.run(iters, window, &payload).await;
            (client, started.elapsed())
        }))
        .unwrap();
    *slot = Some(client);
    elapsed
}

/// Times `run` in a spawned task, as a user's code would run it, not on the bench thread.
fn time_spawned(rt: &Runtime, run: impl Future<Output = ()> + Send + 'static) -> Duration {
    rt.block_on(rt.spawn(async move {
        let started = Instant::now();
        run.await;
        started.elapsed()
    }))
    .unwrap()
}

/// Runs `n` requests made by `call`, `window` in flight, answers taken in the order they
/// were asked, as the raw client does: each request is polled once as it is made (which
/// sends it), then the oldest is awaited.
///
/// Not `FuturesUnordered`: once it has polled every future it holds it yields (wakes itself),
/// and on the multi-threaded runtime each such yield hands a worker to the other thread,
/// which costs more than the request.
async fn run_window<F: Future<Output = ()>>(n: u64, window: u64, call: impl Fn(u64) -> F) {
    let mut in_flight = VecDeque::with_capacity(window as usize);
    for i in 0..n {
        if in_flight.len() as u64 == window {
            in_flight.pop_front().expect("a full window").await;
        }
        let mut request = Box::pin(call(i));
        if poll!(request.as_mut()).is_pending() {
            in_flight.push_back(request);
        }
    }
    for request in in_flight {
        request.await;
    }
}

/// `n` echo requests of `payload` through packetstream, `window` in flight.
async fn packet_run(client: &PacketConnection, n: u64, window: u64, payload: &Bytes) {
    run_window(n, window, |i| {
        let payload = payload.clone();
        async move {
            let len = payload.len();
            let r = client.request(0, i, payload).await.unwrap();
            assert!(r.ok && r.flags == i && r.payload.len() == len);
        }
    })
    .await
}

/// `n` echo requests of `payload` through `submit()`, `window` in flight, awaited oldest
/// first: each is sent as it is made, and its `Call` awaited once the window is full.
async fn submit_run(client: &PacketConnection, n: u64, window: u64, payload: &Bytes) {
    let mut in_flight = VecDeque::with_capacity(window as usize);
    for i in 0..n {
        if in_flight.len() as u64 == window {
            let (i, call): (u64, strata::packetstream::Call) =
                in_flight.pop_front().expect("a full window");
            let r = call.await.unwrap();
            assert!(r.ok && r.flags == i && r.payload.len() == payload.len());
        }
        in_flight.push_back((i, client.submit(0, i, payload.clone()).await.unwrap()));
    }
    for (i, call) in in_flight {
        let r = call.await.unwrap();
        assert!(r.ok && r.flags == i && r.payload.len() == payload.len());
    }
}

/// `n` echo requests of `payload` through a `Pipeline`, `window` in flight: as the raw
/// client, it sends a batch, then takes the responses a read brought and sends as many more.
async fn pipeline_run(client: &PacketConnection, n: u64, window: u64, payload: &Bytes) {
    let mut pipeline = client.pipeline();
    let (mut sent, mut got) = (0, 0);
    while got < n {
        while sent < n && sent - got < window {
            pipeline.send(0, sent, payload.clone()).await.unwrap();
            sent += 1;
        }
        let (_, r) = pipeline.recv().await.expect("requests wait");
        let r = r.unwrap();
        assert!(r.ok && r.flags < n && r.payload.len() == payload.len());
        got += 1;
    }
}

/// A `PacketConnection` server on `io` that echoes each request's flags and payload.
fn echo_server(io: Box<dyn Io>) -> PacketConnection {
    PacketConnection::with_handler(io, Config::default(), |rq: Request| async move {
        Ok::<_, Infallible>((rq.flags, rq.payload))
    })
    .unwrap()
}

/// The same echo with a synchronous handler.
fn sync_echo_server(io: Box<dyn Io>) -> PacketConnection {
    PacketConnection::with_sync_handler(io, Config::default(), |rq: Request| {
        Ok::<_, Infallible>((rq.flags, rq.payload))
    })
    .unwrap()
}

/// The same echo as a tarpc service, with its bincode transport over the same socket.
#[tarpc::service]
trait Echo {
    /// Answers with the request's flags and payload.
    async fn echo(flags: u64, payload: Vec<u8>) -> (u64, Vec<u8>);
}

#[derive(Clone)]
struct EchoServer;

impl Echo for EchoServer {
    async fn echo(
        self,
        _: tarpc::context::Context,
        flags: u64,
        payload: Vec<u8>,
    ) -> (u64, Vec<u8>) {
        (flags, payload)
    }
}

/// Serves tarpc's echo on `io`, each request in its own task as tarpc's examples do.
async fn tarpc_serve(io: Box<dyn Io>) {
    let transport = tarpc::serde_transport::new(
        LengthDelimitedCodec::builder()
            .max_frame_length(usize::MAX)
            .new_framed(io),
        Bincode::default(),
    );
    BaseChannel::with_defaults(transport)
        .execute(EchoServer.serve())
        .for_each(|response| async move {
            tokio::spawn(response);
        })
        .await
}

/// `n` echo requests of `payload` through tarpc, `window` in flight.
async fn tarpc_run(client: &EchoClient, n: u64, window: u64, payload: &[u8]) {
    run_window(n, window, |i| {
        let payload = payload.to_vec();
        let len = payload.len();
        async move {
            let (flags, echoed) = client
                .echo(tarpc::context::current(), i, payload)
                .await
                .unwrap();
            assert!(flags == i && echoed.len() == len);
        }
    })
    .await
}

/// The runtime every client and server runs on: tokio's default (a worker per core), or
/// `$STRATA_BENCH_WORKERS` workers. With one worker, tasks never move between threads, which
/// tells what the work costs from what spreading it over the workers costs.
fn runtime() -> Runtime {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Ok(n) = std::env::var("STRATA_BENCH_WORKERS") {
        builder.worker_threads(n.parse().expect("STRATA_BENCH_WORKERS is a number"));
    }
    builder.enable_all().build().unwrap()
}

/// The codecs alone, in memory: a batch of 64 frames of 64 bytes encoded into one buffer, then
/// decoded from it, with `PacketCodec` against `LengthDelimitedCodec`. No socket, no task.
fn codecs(c: &mut Criterion) {
    const BATCH: u64 = 64;
    let payload = Bytes::from(vec![0x5a; 64]);
    let mut group = c.benchmark_group("packetstream/codec/64B");
    group.throughput(Throughput::Elements(BATCH));
    let mut buf = BytesMut::with_capacity(64 * 1024);
    group.bench_function(BenchmarkId::from_parameter("length_delimited"), |b| {
        let mut codec = LengthDelimitedCodec::new();
        b.iter(|| {
            for _ in 0..BATCH {
                codec.encode(payload.clone(), &mut buf).unwrap();
            }
            let mut n = 0;
            while let Some(frame) = codec.decode(&mut buf).unwrap() {
                n += frame.len();
            }
            assert_eq!(n, 64 * BATCH as usize);
        })
    });
    group.bench_function(BenchmarkId::from_parameter("packet_codec"), |b| {
        let mut codec = PacketCodec::default();
        // Tags of the size a busy connection has.
        let mut tag = 1 << 20;
        b.iter(|| {
            for _ in 0..BATCH {
                tag += 1;
                let request = Packet::request(0, tag, 0, 1, payload.clone()).unwrap();
                codec.encode(&request, &mut buf).unwrap();
            }
            let mut n = 0;
            while let Some(packet) = codec.decode(&mut buf).unwrap() {
                n += packet.payload().len();
            }
            assert_eq!(n, 64 * BATCH as usize);
        })
    });
    group.finish();
}

fn bench(c: &mut Criterion) {
    let rt = runtime();
    let workloads: [(&str, usize, u64); 3] = [
        ("pipelined_64B", 64, 64),
        ("sequential_64B", 64, 1),
        ("throughput_64KiB", 64 * 1024, 4),
    ];
    for kind in ["tcp", "unix"] {
        // One connection of each sort per socket kind, reused by every workload.
        let mut raw = Some(rt.block_on(async {
            let (client, server) = socket_pair(kind).await;
            tokio::spawn(raw_echo(server));
            PlainClient::new(
                client,
                LengthDelimitedCodec::new(),
                Bytes::clone,
                |reply: &BytesMut, len| reply.len() == len,
            )
        }));
        let packet = rt.block_on(async {
            let (client, server) = socket_pair(kind).await;
            let client = PacketConnection::new(client, Config::default()).unwrap();
            (client, echo_server(server))
        });
        let sync_packet = rt.block_on(async {
            let (client, server) = socket_pair(kind).await;
            let client = PacketConnection::new(client, Config::default()).unwrap();
            (client, sync_echo_server(server))
        });
        // The server's handle lives as long as the workloads: dropping it would close it.
        let (plain_packets, _alone_server) = rt.block_on(async {
            let (client, server) = socket_pair(kind).await;
            (plain_packet_client(client), echo_server(server))
        });
        let mut plain_packets = Some(plain_packets);
        let (plain_sync, _alone_sync_server) = rt.block_on(async {
            let (client, server) = socket_pair(kind).await;
            (plain_packet_client(client), sync_echo_server(server))
        });
        let mut plain_sync = Some(plain_sync);
        let mut codec_alone = Some(rt.block_on(async {
            let (client, server) = socket_pair(kind).await;
            tokio::spawn(codec_echo(server));
            plain_packet_client(client)
        }));
        let client_alone = rt.block_on(async {
            let (client, server) = socket_pair(kind).await;
            tokio::spawn(codec_echo(server));
            PacketConnection::new(client, Config::default()).unwrap()
        });
        let tarpc = rt.block_on(async {
            let (client, server) = socket_pair(kind).await;
            tokio::spawn(tarpc_serve(server));
            let transport = tarpc::serde_transport::new(
                LengthDelimitedCodec::builder()
                    .max_frame_length(usize::MAX)
                    .new_framed(client),
                Bincode::default(),
            );
            EchoClient::new(tarpc::client::Config::default(), transport).spawn()
        });
        for (name, size, window) in workloads {
            let payload = Bytes::from(vec![0x5a; size]);
            let mut group = c.benchmark_group(format!("packetstream/{kind}/{name}"));
            group.throughput(Throughput::Elements(1));
            // Both clients run in a spawned task, as a user's code would, not on the bench
            // thread: the socket and the task then share the runtime's worker threads.
            group.bench_function(BenchmarkId::from_parameter("raw_echo"), |b| {
                b.iter_custom(|iters| time_plain(&rt, &mut raw, iters, window, &payload))
            });
            group.bench_function(BenchmarkId::from_parameter("codec_alone"), |b| {
                b.iter_custom(|iters| time_plain(&rt, &mut codec_alone, iters, window, &payload))
            });
            group.bench_function(BenchmarkId::from_parameter("server_alone"), |b| {
                b.iter_custom(|iters| time_plain(&rt, &mut plain_packets, iters, window, &payload))
            });
            group.bench_function(BenchmarkId::from_parameter("server_alone_sync"), |b| {
                b.iter_custom(|iters| time_plain(&rt, &mut plain_sync, iters, window, &payload))
            });
            for (name, client) in [("packetstream", &packet.0), ("client_alone", &client_alone)] {
                group.bench_function(BenchmarkId::from_parameter(name), |b| {
                    b.iter_custom(|iters| {
                        let (client, payload) = (client.clone(), payload.clone());
                        time_spawned(&rt, async move {
                            packet_run(&client, iters, window, &payload).await
                        })
                    })
                });
            }
            group.bench_function(BenchmarkId::from_parameter("submit"), |b| {
                b.iter_custom(|iters| {
                    let (client, payload) = (packet.0.clone(), payload.clone());
                    time_spawned(&rt, async move {
                        submit_run(&client, iters, window, &payload).await
                    })
                })
            });
            for (name, client) in [("pipeline", &packet.0), ("pipeline_sync", &sync_packet.0)] {
                group.bench_function(BenchmarkId::from_parameter(name), |b| {
                    b.iter_custom(|iters| {
                        let (client, payload) = (client.clone(), payload.clone());
                        time_spawned(&rt, async move {
                            pipeline_run(&client, iters, window, &payload).await
                        })
                    })
                });
            }
            group.bench_function(BenchmarkId::from_parameter("tarpc"), |b| {
                b.iter_custom(|iters| {
                    let (client, payload) = (tarpc.clone(), payload.clone());
                    time_spawned(&rt, async move {
                        tarpc_run(&client, iters, window, &payload).await
                    })
                })
            });
            group.finish();
        }
        rt.block_on(async {
            for (client, server) in [packet, sync_packet] {
                client.close().await.unwrap();
                server.closed().await.unwrap();
            }
        });
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(5));
    targets = codecs, bench
}
criterion_main!(benches);
