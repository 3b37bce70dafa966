//! packetstream: echo requests through `PacketConnection` against a raw length-delimited echo
//! (tokio-util's `LengthDelimitedCodec`, no correlation, no session), each over its own
//! loopback TCP connection.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use packetstream::{Config, PacketConnection, Request};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::codec::{Decoder, Encoder, LengthDelimitedCodec};

use super::{Clock, Layer, Pair, Sample, Side};

const PAYLOAD: usize = 64;

pub const PAIRS: &[Pair] = &[
    Pair {
        layer: Layer::Packet,
        workload: "64-byte echo requests, 64 in flight, TCP",
        unit: "requests",
        baseline: Side {
            name: "raw framed echo",
            run: |budget| Box::pin(raw(budget, 64)),
        },
        strata: Side {
            name: "submit()",
            run: |budget| Box::pin(packets(budget, 64)),
        },
    },
    Pair {
        layer: Layer::Packet,
        workload: "one 64-byte request at a time, TCP",
        unit: "round trips",
        baseline: Side {
            name: "raw framed echo",
            run: |budget| Box::pin(raw(budget, 1)),
        },
        strata: Side {
            name: "request()",
            run: |budget| Box::pin(packets(budget, 1)),
        },
    },
];

/// Requests a batch makes: enough that the window turns over many times.
fn batch(window: usize) -> u64 {
    (window as u64 * 32).max(256)
}

/// A connected loopback TCP pair, Nagle off on both: (client, server).
pub async fn tcp_pair() -> Result<(TcpStream, TcpStream), String> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| format!("cannot listen on loopback: {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let (client, accepted) = tokio::join!(TcpStream::connect(addr), listener.accept());
    let client = client.map_err(|e| format!("cannot connect to {addr}: {e}"))?;
    let (server, _) = accepted.map_err(|e| format!("cannot accept: {e}"))?;
    for s in [&client, &server] {
        s.set_nodelay(true).map_err(|e| e.to_string())?;
    }
    Ok((client, server))
}

/// The raw echo server: every frame a read brought is echoed in one write.
async fn raw_echo(mut io: TcpStream) {
    let mut codec = LengthDelimitedCodec::new();
    let (mut inbox, mut outbox) = (BytesMut::with_capacity(64 * 1024), BytesMut::new());
    while io.read_buf(&mut inbox).await.is_ok_and(|n| n > 0) {
        while let Ok(Some(frame)) = codec.decode(&mut inbox) {
            if codec.encode(frame.freeze(), &mut outbox).is_err() {
                return;
            }
        }
        if io.write_all(&outbox).await.is_err() {
            return;
        }
        outbox.clear();
    }
}

async fn raw(budget: Duration, window: usize) -> Result<Sample, String> {
    let (mut client, server) = tcp_pair().await?;
    let echo = tokio::spawn(raw_echo(server));
    let clock = Clock::start(budget);
    let mut units = 0;
    while clock.running() {
        units += raw_batch(&mut client, window, batch(window)).await?;
    }
    let sample = clock.sample(units);
    drop(client);
    echo.await.map_err(|e| e.to_string())?;
    Ok(sample)
}

/// `n` frames of [`PAYLOAD`] bytes echoed, `window` in flight: as many new frames are sent,
/// in one write, as a read brought replies.
async fn raw_batch(io: &mut TcpStream, window: usize, n: u64) -> Result<u64, String> {
    let mut codec = LengthDelimitedCodec::new();
    let payload = Bytes::from(vec![0x5a; PAYLOAD]);
    let (mut inbox, mut outbox) = (BytesMut::with_capacity(64 * 1024), BytesMut::new());
    let (mut sent, mut got) = (0, 0);
    let mut room = window as u64;
    while got < n {
        while room > 0 && sent < n {
            codec
                .encode(payload.clone(), &mut outbox)
                .map_err(|e| e.to_string())?;
            sent += 1;
            room -= 1;
        }
        io.write_all(&outbox).await.map_err(|e| e.to_string())?;
        outbox.clear();
        if io.read_buf(&mut inbox).await.map_err(|e| e.to_string())? == 0 {
            return Err("the raw echo closed the connection".to_owned());
        }
        while let Some(frame) = codec.decode(&mut inbox).map_err(|e| e.to_string())? {
            if frame.len() != PAYLOAD {
                return Err(format!("an echo of {} bytes", frame.len()));
            }
            got += 1;
            room += 1;
        }
    }
    Ok(n)
}

async fn packets(budget: Duration, window: usize) -> Result<Sample, String> {
    let (client, server) = tcp_pair().await?;
    let server =
        PacketConnection::with_handler(server, Config::default(), |rq: Request| async move {
            Ok::<_, Infallible>((rq.flags, rq.payload))
        })
        .map_err(|e| e.to_string())?;
    let client = PacketConnection::new(client, Config::default()).map_err(|e| e.to_string())?;
    let clock = Clock::start(budget);
    let mut units = 0;
    while clock.running() {
        units += packet_batch(&client, window, batch(window)).await?;
    }
    let sample = clock.sample(units);
    client.close().await.map_err(|e| e.to_string())?;
    server.closed().await.map_err(|e| e.to_string())?;
    Ok(sample)
}

/// `n` echo requests, `window` in flight: one at a time through `request()`, more through
/// `submit()`, each `Call` awaited oldest first once the window is full.
async fn packet_batch(client: &PacketConnection, window: usize, n: u64) -> Result<u64, String> {
    let payload = Bytes::from(vec![0x5a; PAYLOAD]);
    let check = |i: u64, r: packetstream::Response| match r.ok && r.flags == i {
        true if r.payload.len() == PAYLOAD => Ok(()),
        _ => Err(format!("request {i} got {r:?}")),
    };
    if window == 1 {
        for i in 0..n {
            let r = client.request(0, i, payload.clone()).await;
            check(i, r.map_err(|e| e.to_string())?)?;
        }
        return Ok(n);
    }
    let mut in_flight = VecDeque::with_capacity(window);
    for i in 0..n {
        if in_flight.len() == window
            && let Some((i, call)) = in_flight.pop_front()
        {
            let call: packetstream::Call = call;
            check(i, call.await.map_err(|e| e.to_string())?)?;
        }
        let call = client.submit(0, i, payload.clone()).await;
        in_flight.push_back((i, call.map_err(|e| e.to_string())?));
    }
    for (i, call) in in_flight {
        check(i, call.await.map_err(|e| e.to_string())?)?;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn both_sides_echo_every_request_in_both_windows() {
        for window in [1, 64] {
            let budget = Duration::from_millis(20);
            let bare = raw(budget, window).await.unwrap();
            let ours = packets(budget, window).await.unwrap();
            for sample in [bare, ours] {
                assert!(sample.units >= batch(window), "{window}: {sample:?}");
                assert_eq!(sample.units % batch(window), 0, "whole batches");
            }
        }
    }
}
