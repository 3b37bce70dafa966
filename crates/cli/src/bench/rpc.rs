//! rpc-record: records read and decoded against a memcpy of the same bytes; ECHO calls
//! through `Client` and a `Service` against the same records echoed by a bare TCP loop
//! (what the bytes cost with no RPC at all).

use std::collections::VecDeque;
use std::future::{Future, poll_fn};
use std::hint::black_box;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use bytes::BytesMut;
use rpc_record::{
    AcceptAll, CallContext, Client, Config, Program, Record, RecordDecoder, RecordStream,
    ServerError, Service, encode_record, serve_stream,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::packet::tcp_pair;
use super::{Clock, Layer, Pair, Sample, Side, memcpy, timed};

/// Records in the decoded buffer, and their size.
const RECORDS: usize = 16;
const RECORD: usize = 64 * 1024;
/// Calls in flight, and the string each echoes.
const WINDOW: usize = 16;
const TEXT: usize = 1024;
/// Calls a batch makes.
const CALLS: u64 = 512;
const PROG: u32 = 300002;

pub const PAIRS: &[Pair] = &[
    Pair {
        layer: Layer::Rpc,
        workload: "16 records of 64 KiB read and decoded, in memory",
        unit: "B",
        baseline: Side {
            name: "memcpy",
            // The records' bytes, as the decoder counts them (their marks not included).
            run: |budget| Box::pin(memcpy(budget, records(), (RECORDS * RECORD) as u64)),
        },
        strata: Side {
            name: "RecordDecoder",
            run: |budget| Box::pin(decode(budget)),
        },
    },
    Pair {
        layer: Layer::Rpc,
        workload: "ECHO of 1 KiB, 16 calls in flight, TCP",
        unit: "calls",
        baseline: Side {
            name: "the records echoed by a bare loop",
            run: |budget| Box::pin(bare_echo(budget)),
        },
        strata: Side {
            name: "Client and Service",
            run: |budget| Box::pin(calls(budget)),
        },
    },
];

fn records() -> Vec<u8> {
    let mut wire = BytesMut::new();
    for i in 0..RECORDS {
        encode_record(&vec![i as u8; RECORD], u32::MAX, &mut wire);
    }
    wire.to_vec()
}

async fn decode(budget: Duration) -> Result<Sample, String> {
    let wire = records();
    let mut decoder = RecordDecoder::new(&Config::default());
    let mut buf = BytesMut::with_capacity(wire.len());
    timed(budget, || {
        let decoded = decode_all(&mut decoder, &mut buf, &wire);
        async move { decoded }
    })
    .await
}

/// The records read into `buf` and decoded, each a slice of it: the payload bytes.
fn decode_all(decoder: &mut RecordDecoder, buf: &mut BytesMut, wire: &[u8]) -> Result<u64, String> {
    buf.clear();
    buf.reserve(wire.len());
    buf.extend_from_slice(black_box(wire));
    let mut n = 0;
    while let Some(record) = decoder
        .decode(buf, &mut AcceptAll)
        .map_err(|e| e.to_string())?
    {
        match record {
            Record::Accept(bytes) => n += bytes.len() as u64,
            other => return Err(format!("a record decoded as {other:?}")),
        }
    }
    match n == (RECORDS * RECORD) as u64 {
        true => Ok(n),
        false => Err(format!("{n} bytes decoded")),
    }
}

/// One ECHO call of the 1 KiB string as a record.
fn echo_record() -> Vec<u8> {
    let args = rpc_record::xdr::to_bytes(&"x".repeat(TEXT));
    let call = rpc_record::Call::new(rpc_record::Xid(1), PROG, 1, 1, args);
    let mut message = BytesMut::new();
    call.encode(&mut message);
    let mut record = BytesMut::new();
    encode_record(&message, u32::MAX, &mut record);
    record.to_vec()
}

async fn bare_echo(budget: Duration) -> Result<Sample, String> {
    let (mut client, mut server) = tcp_pair().await?;
    let echo = tokio::spawn(async move {
        let (mut read, mut write) = server.split();
        tokio::io::copy(&mut read, &mut write).await
    });
    let record = echo_record();
    let clock = Clock::start(budget);
    let mut units = 0;
    while clock.running() {
        units += bare_batch(&mut client, &record).await?;
    }
    let sample = clock.sample(units);
    drop(client);
    echo.await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    Ok(sample)
}

/// [`CALLS`] records sent, [`WINDOW`] in flight, as many new ones in one write as a read
/// brought back whole.
async fn bare_batch(io: &mut TcpStream, record: &[u8]) -> Result<u64, String> {
    let mut buf = vec![0; 256 * 1024];
    let (mut sent, mut back, mut bytes) = (0u64, 0u64, 0usize);
    let mut out = Vec::with_capacity(record.len() * WINDOW);
    while back < CALLS {
        let room = (WINDOW as u64 - (sent - back)).min(CALLS - sent);
        out.clear();
        for _ in 0..room {
            out.extend_from_slice(record);
        }
        io.write_all(&out).await.map_err(|e| e.to_string())?;
        sent += room;
        let n = io.read(&mut buf).await.map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("the echo closed the connection".to_owned());
        }
        bytes += n;
        back += (bytes / record.len()) as u64;
        bytes %= record.len();
    }
    Ok(CALLS)
}

fn echo_service() -> Service {
    Service::from(Program::new(PROG, [1]).procedure(
        1,
        1,
        |_: CallContext, text: String| async move { Ok::<_, ServerError>(text) },
    ))
}

async fn calls(budget: Duration) -> Result<Sample, String> {
    let (client, server) = tcp_pair().await?;
    let config = Config::default();
    let service = Arc::new(echo_service());
    let serving = tokio::spawn({
        let mut stream = RecordStream::new(server, &config);
        async move { serve_stream(&mut stream, &service).await }
    });
    let client = Client::stream(RecordStream::new(client, &config), &config);
    let text = "x".repeat(TEXT);
    let clock = Clock::start(budget);
    let mut units = 0;
    while clock.running() {
        units += call_batch(&client, &text).await?;
    }
    let sample = clock.sample(units);
    drop(client);
    serving
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    Ok(sample)
}

/// [`CALLS`] ECHO calls, [`WINDOW`] in flight, awaited oldest first: each call is polled
/// once as it is made, which sends it.
async fn call_batch(client: &Client, text: &str) -> Result<u64, String> {
    let mut in_flight = VecDeque::with_capacity(WINDOW);
    let check = |echoed: Result<Result<String, ServerError>, rpc_record::Error>| match echoed {
        Ok(Ok(back)) if back.len() == TEXT => Ok(()),
        other => Err(format!("an ECHO call came back as {other:?}")),
    };
    for _ in 0..CALLS {
        if in_flight.len() == WINDOW
            && let Some(call) = in_flight.pop_front()
        {
            check(call.await)?;
        }
        let mut call = Box::pin(client.call_xdr::<str, String>(PROG, 1, 1, text));
        match poll_fn(|cx| Poll::Ready(call.as_mut().poll(cx))).await {
            Poll::Ready(echoed) => check(echoed)?,
            Poll::Pending => in_flight.push_back(call),
        }
    }
    for call in in_flight {
        check(call.await)?;
    }
    Ok(CALLS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_side_does_whole_batches_of_checked_work() {
        let budget = Duration::from_millis(20);
        let copied = memcpy(budget, records(), (RECORDS * RECORD) as u64)
            .await
            .unwrap();
        let decoded = decode(budget).await.unwrap();
        for sample in [copied, decoded] {
            assert_eq!(sample.units % (RECORDS * RECORD) as u64, 0, "{sample:?}");
        }
        assert!(decoded.units > 0);
        let bare = bare_echo(budget).await.unwrap();
        let ours = calls(budget).await.unwrap();
        for sample in [bare, ours] {
            assert!(
                sample.units >= CALLS && sample.units % CALLS == 0,
                "{sample:?}"
            );
        }
    }
}
