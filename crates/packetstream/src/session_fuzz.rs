//! The protocol core driven by a fuzzer's bytes (built only under cargo-fuzz's
//! `cfg(fuzzing)`, so that the core stays crate-private): raw and well-formed bytes from a
//! peer, handlers that finish in any order, writes of any size, our own requests, time,
//! close, EOF and abort, in any sequence. Nothing may panic, and what the connection holds
//! for its peer stays within the bound `Config` documents.

use std::collections::VecDeque;
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use tokio_util::codec::Encoder;

use crate::in_flight::Owner;
use crate::serving::Job;
use crate::session::{Session, encode_reply};
use crate::{Config, Packet, PacketCodec, Reply, Request};

/// Runs the sequence of events `data` spells.
pub fn run(data: &[u8]) {
    let config = Config {
        max_packet: 1024,
        max_in_flight: 4,
        max_received: 4096,
        max_unsent: 4096,
        max_handlers: 2,
        request_timeout: Some(Duration::from_secs(5)),
        close_timeout: Duration::from_secs(2),
        ..Config::default()
    };
    config.validate().expect("the fuzzing config is valid");
    // The documented bound, and one packet read and not yet taken.
    let bound = config.max_received
        + config.max_unsent
        + (config.max_handlers + 1) * (config.max_packet + 64)
        + config.max_packet
        + 64;
    let serving = data.first().is_none_or(|b| b & 1 == 0);
    let mut s = Session::new(config.clone(), serving);
    let mut codec = PacketCodec::new(config.max_packet);
    let mut inbox = BytesMut::new();
    let mut out = BytesMut::new();
    let mut jobs: VecDeque<(Job, Request)> = VecDeque::new();
    let mut tags = Vec::new();
    let mut now = Instant::now();
    let waker = Waker::noop();
    let mut bytes = data.iter().copied().skip(1);
    while let Some(op) = bytes.next() {
        let arg = bytes.next().unwrap_or(0);
        match op % 10 {
            // Raw bytes from the peer (when the session reads: a driver reads only then).
            0 | 1 if s.read_want(&inbox).is_none() => {}
            0 => {
                let n = usize::from(arg % 64) + 1;
                let chunk: Vec<u8> = bytes.by_ref().take(n).collect();
                inbox.extend_from_slice(&chunk);
                s.handle_read(&mut inbox, chunk.len(), now);
            }
            // A well-formed request from the peer.
            1 => {
                let payload = Bytes::from(vec![arg; usize::from(arg) * 4]);
                if let Ok(p) =
                    Packet::request(0, u64::from(arg) + 2, u64::from(arg % 4), 0, payload)
                {
                    let before = inbox.len();
                    let _ = codec.encode(&p, &mut inbox);
                    let fresh = inbox.len() - before;
                    s.handle_read(&mut inbox, fresh, now);
                }
            }
            // Handlers start.
            2 => s.take_requests(&mut jobs),
            // The oldest handler (or a later one) finishes, well or not, or with no reply.
            3 => {
                if !jobs.is_empty() {
                    let (job, request) = jobs
                        .remove(usize::from(arg) % jobs.len())
                        .expect("in range");
                    let reply = match arg % 3 {
                        0 => Some(Reply::from((request.flags, request.payload))),
                        1 => Some(Reply::failure(0, Bytes::from_static(b"no"))),
                        _ => None,
                    };
                    let mut replies = BytesMut::new();
                    encode_reply(s.config(), job, reply, &mut replies);
                    s.handle_replies(&mut vec![job], &mut replies);
                }
            }
            // The socket takes some of what there is to write.
            4 => {
                s.take_transmit(&mut out, now);
                let n = out.len().min(usize::from(arg) * 16);
                let _ = out.split_to(n);
                s.transmitted(n);
            }
            // Time passes.
            5 => {
                now += Duration::from_millis(u64::from(arg) * 20);
                s.handle_timeout(now);
            }
            // One of our own requests, and a look at those sent.
            6 => {
                if let Ok(packet) =
                    Session::outgoing(s.config(), 0, u64::from(arg), 0, Bytes::new())
                {
                    if let Poll::Ready(Ok(tag)) =
                        s.submit(&mut Some(packet), Owner::Call, &mut None, waker)
                    {
                        tags.push(tag);
                    }
                }
                tags.retain(|&tag| s.poll_call(tag, waker).is_none());
            }
            7 => s.close(now),
            8 => s.handle_read_eof(&mut inbox, now),
            _ if arg == 0 => s.abort(),
            // The driver's next round reads what is left in the buffer.
            _ => s.handle_read(&mut inbox, 0, now),
        }
        if s.must_shutdown() && arg % 2 == 1 {
            s.shutdown_done();
        }
        let stats = s.stats();
        let held = stats.received_bytes + stats.unsent_bytes + inbox.len();
        assert!(held <= bound, "held {held} over {bound}: {stats:?}");
    }
}
