//! Demo steps of the kernel-flows layer.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use futures_util::{FutureExt, SinkExt, Stream, StreamExt, sink, stream};
use kernel_flows::{
    Channel, Config, Correlator, Dispatch, Emit, Exit, Order, Reason, Series, Tag, Valve, map,
};
use tokio::sync::mpsc;
use tokio_util::codec::{FramedRead, FramedWrite, LengthDelimitedCodec};
use tokio_util::sync::PollSender;

use super::Report;

/// Records per frame in the pipeline.
const PER_FRAME: usize = 64;

/// Packs 16-byte records into frames of [`PER_FRAME`]; flushes a short last frame.
struct Frames {
    frame: BytesMut,
    held: usize,
}

impl Channel for Frames {
    type In = (u64, u64);
    type Out = Bytes;
    type Error = String;

    fn transfer(&mut self, (n, square): (u64, u64), out: &mut Emit<Bytes>) -> Result<(), String> {
        self.frame.put_u64(n);
        self.frame.put_u64(square);
        self.held += 1;
        if self.held == PER_FRAME {
            self.held = 0;
            out.push(self.frame.split().freeze());
        }
        Ok(())
    }

    fn terminate(&mut self, out: &mut Emit<Bytes>) -> Result<(), String> {
        if self.held > 0 {
            self.held = 0;
            out.push(self.frame.split().freeze());
        }
        Ok(())
    }

    fn buffered(&self) -> usize {
        self.held
    }
}

/// Unpacks frames and checks that records arrive complete, in order, each exactly once.
struct Verify {
    next: u64,
}

impl Channel for Verify {
    type In = Bytes;
    type Out = u64;
    type Error = String;

    fn transfer(&mut self, mut frame: Bytes, out: &mut Emit<u64>) -> Result<(), String> {
        if frame.len() % 16 != 0 {
            return Err(format!(
                "frame of {} bytes is not whole records",
                frame.len()
            ));
        }
        while frame.has_remaining() {
            let (n, square) = (frame.get_u64(), frame.get_u64());
            if n != self.next || square != n * n {
                return Err(format!("record {n} arrived where {} was due", self.next));
            }
            self.next += 1;
            out.push(n);
        }
        Ok(())
    }
}

fn receiver_stream<T: Send + 'static>(rx: mpsc::Receiver<T>) -> impl Stream<Item = T> + Send {
    stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    })
}

/// Two series joined by a bounded channel: numbers squared and framed in one, frames
/// verified in the other; the first starts behind a held valve.
pub async fn pipeline(scale: u32) -> Result<Report, String> {
    let records = 100_000 * u64::from(scale);
    let valve = Valve::new("produce");
    let hold = valve.hold(Reason::new("demo", "waiting for the consumer to start"));
    println!("   {valve}");

    let (tx, rx) = mpsc::channel::<Bytes>(8);
    let produce = Series::new(
        stream::iter(0..records),
        map(|n: u64| (n, n * n)).then(Frames {
            frame: BytesMut::with_capacity(PER_FRAME * 16),
            held: 0,
        }),
        PollSender::new(tx),
    )
    .named("produce")
    .measure(Bytes::len)
    .valve(valve.clone());
    let consume = Series::new(
        receiver_stream(rx),
        Verify { next: 0 },
        sink::drain().sink_map_err(|never: Infallible| match never {}),
    )
    .named("consume");

    let mut unit: Dispatch<String> = Dispatch::new();
    unit.spawn(produce, |fault| fault.to_string());
    unit.spawn(consume, |fault| fault.to_string());
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let held_for = valve
        .holds()
        .first()
        .map(|h| h.since.elapsed())
        .unwrap_or_default();
    drop(hold);
    println!("   {valve} after {held_for:.1?}");

    let ended = unit.ended().await;
    for end in &ended {
        println!("   series {end}");
    }
    if let Some(failed) = ended.iter().find(|e| e.exit != Exit::Completed) {
        return Err(format!(
            "series {} did not complete: {}",
            failed.name, failed.exit
        ));
    }
    let (produced, consumed) = (ended[0].stats, ended[1].stats);
    if produced.items_in != records || consumed.items_out != records {
        return Err(format!(
            "{records} records went in but {} came out",
            consumed.items_out
        ));
    }
    Ok(Report {
        detail: format!(
            "{records} records squared and packed into {} frames ({} bytes) by one series, \
             unpacked and verified in order by a second",
            produced.items_out, produced.bytes_out
        ),
        units: records,
        unit: "records",
    })
}

/// Concurrent requests over an in-memory duplex stream, correlated by tag while the server
/// answers each batch in reverse order.
pub async fn exchange(scale: u32) -> Result<Report, String> {
    const TASKS: u64 = 4;
    let per_task = 500 * u64::from(scale);
    let (client_io, server_io) = tokio::io::duplex(64 * 1024);
    let server = tokio::spawn(serve_reversed(server_io));

    let (read_half, write_half) = tokio::io::split(client_io);
    let correlator: Correlator<Bytes, String> = Correlator::new(Config {
        order: Order::Tagged,
        max_in_flight: 32,
        first_tag: 1,
    });

    // Requests leave through a series: (tag, payload) -> one length-delimited frame.
    let (requests, outgoing) = mpsc::channel::<(Tag, Bytes)>(32);
    let mut writer = Series::new(
        receiver_stream(outgoing),
        map::<_, _, _, Infallible>(|(tag, payload): (Tag, Bytes)| {
            let mut frame = BytesMut::with_capacity(8 + payload.len());
            frame.put_u64(tag.0);
            frame.put_slice(&payload);
            frame.freeze()
        }),
        FramedWrite::new(write_half, LengthDelimitedCodec::new()),
    )
    .named("requests")
    .spawn();

    // Replies come back through the reader, which hands each to its waiting request.
    let reader = tokio::spawn({
        let correlator = correlator.clone();
        async move {
            let mut replies = FramedRead::new(read_half, LengthDelimitedCodec::new());
            let why = loop {
                match replies.next().await {
                    Some(Ok(mut frame)) if frame.len() >= 8 => {
                        let tag = Tag(frame.get_u64());
                        if let Err(orphan) = correlator.correlate(tag, frame.freeze()) {
                            tracing::warn!(%orphan, "demo reply had no request");
                        }
                    }
                    Some(Ok(frame)) => break format!("a {}-byte reply has no tag", frame.len()),
                    Some(Err(e)) => break format!("the link failed: {e}"),
                    None => break "the server closed the link".to_owned(),
                }
            };
            correlator.fail_all(why);
        }
    });

    let peak = Arc::new(AtomicU64::new(0));
    let clients: Vec<_> = (0..TASKS)
        .map(|task| {
            let correlator = correlator.clone();
            let requests = requests.clone();
            let peak = Arc::clone(&peak);
            tokio::spawn(async move {
                for i in 0..per_task {
                    let payload = Bytes::from(format!("request {task}-{i}"));
                    let (tag, reply) = correlator.allocate().await.map_err(|e| e.to_string())?;
                    peak.fetch_max(correlator.in_flight() as u64, Ordering::Relaxed);
                    requests
                        .send((tag, payload.clone()))
                        .await
                        .map_err(|_| "the request writer stopped".to_owned())?;
                    let reply = reply.await.map_err(|e| e.to_string())?;
                    let expected: Vec<u8> = payload.iter().rev().copied().collect();
                    if reply[..] != expected[..] {
                        return Err(format!("{tag} got a reply meant for another request"));
                    }
                }
                Ok::<_, String>(())
            })
        })
        .collect();
    drop(requests);
    for client in clients {
        client.await.map_err(|e| e.to_string())??;
    }

    // Close in order: the writer drains and shuts its half, the server sees EOF and closes
    // its side, and the reader ends.
    let (exit, stats) = writer.exit().await;
    if !exit.is_completed() {
        return Err(format!("the request writer ended {exit}"));
    }
    let batches = server
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("the server failed: {e}"))?;
    reader.await.map_err(|e| e.to_string())?;

    let total = TASKS * per_task;
    if stats.items_out != total || correlator.orphans() != 0 {
        return Err(format!(
            "{} of {total} requests sent, {} orphan replies",
            stats.items_out,
            correlator.orphans()
        ));
    }
    Ok(Report {
        detail: format!(
            "{total} requests from {TASKS} tasks over an in-memory duplex stream; the server \
             answered {batches} batches in reverse order; every reply found its request by \
             tag; at most {} in flight; 0 orphans",
            peak.load(Ordering::Relaxed)
        ),
        units: total,
        unit: "round trips",
    })
}

/// Answers each request with its payload reversed. Whatever requests are ready together form
/// a batch, answered last first, so replies overtake each other. Returns how many batches.
async fn serve_reversed(io: tokio::io::DuplexStream) -> Result<u64, std::io::Error> {
    let (read_half, write_half) = tokio::io::split(io);
    let mut requests = FramedRead::new(read_half, LengthDelimitedCodec::new());
    let mut replies = FramedWrite::new(write_half, LengthDelimitedCodec::new());
    let mut batches = 0;
    while let Some(first) = requests.next().await {
        let mut batch = vec![first?];
        while let Some(Some(more)) = requests.next().now_or_never() {
            batch.push(more?);
        }
        batches += 1;
        for mut request in batch.into_iter().rev() {
            if request.len() < 8 {
                continue;
            }
            let mut reply = request.split_to(8);
            reply.extend(request.iter().rev());
            replies.feed(reply.freeze()).await?;
        }
        SinkExt::<Bytes>::flush(&mut replies).await?;
    }
    SinkExt::<Bytes>::close(&mut replies).await?;
    Ok(batches)
}
