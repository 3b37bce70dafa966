//! The loops that serve a [`Service`] over a stream or datagram transporter.

use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Poll, ready};

use bytes::BytesMut;
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use tokio::io::{AsyncRead, AsyncWrite};
use tracing::{debug, trace, warn};

/// How long [`serve_datagram`] pauses after a failed receive.
const ERROR_PAUSE: std::time::Duration = std::time::Duration::from_millis(10);

use crate::reply_cache::{CallKey, ReplyCache, Seen};
use crate::service::{Answer, poll_settle, settle};
use crate::{
    AcceptAll, DatagramSocket, Error, Peer, PeerAddr, Record, RecordDatagram, RecordStream, Reply,
    Service,
};

/// A reply on its way from a handler, with the bytes of the call it holds.
type Running = Pin<Box<dyn Future<Output = (Reply, usize)> + Send>>;

/// What a running call holds besides its record, as counted against a stream's budget: its
/// context and its futures (measured by `tests/memory.rs`).
const CALL_COST: usize = 2048;

/// The replies that wait, in bytes, before the first write of a burst of calls goes out
/// while calls are still being read: a reply this large goes out at once (the peer can
/// start on it while we answer the rest), smaller ones are gathered until they are.
const FIRST_WRITE: usize = 1024;

/// The least the later writes of a burst wait for, in bytes (each also waits for a third
/// of what the burst has queued so far).
const EARLY_WRITE: usize = 4 * 1024;

/// Serves `service` on a stream until the peer closes it and every call it made has been
/// answered (or, after [`Config::drain_timeout`](crate::Config::drain_timeout), dropped):
/// `Ok` when it ends between records.
///
/// Calls run concurrently, up to [`Config::max_calls`](crate::Config::max_calls) at once,
/// and are answered in the order they finish. Replies go out while calls are still being
/// read and answered, so that a peer with many calls in flight gets its first replies (and
/// can send more calls) while the rest are answered, much as Nagle's algorithm sends: the
/// first write of a burst of calls once 1 KiB of replies wait, each later one once 4 KiB
/// and a third of what the burst has queued so far wait (so a long burst costs few
/// writes), and whatever waits as soon as no call is ready to read
/// ([`Config::early_replies`](crate::Config::early_replies) turns this off).
/// Backpressure: while that many calls run, or while more than
/// [`Config::max_unsent`](crate::Config::max_unsent) bytes of replies wait for a peer that
/// does not read them, no more calls are read (they wait in the kernel, then in the peer).
/// With [`RecordStream::with_budget`], reading also waits for the server's budget, which
/// counts the calls that run too. Dropping the future drops the calls that run (their
/// handlers' futures are cancelled); calls read and replies queued stay in the stream,
/// ready for [`RecordStream::shutdown`].
pub async fn serve_stream<T>(stream: &mut RecordStream<T>, service: &Service) -> Result<(), Error>
where
    T: AsyncRead + AsyncWrite + Unpin,
{
    let mut scratch = BytesMut::new();
    let mut ended = false;
    let mut running: FuturesUnordered<Running> = FuturesUnordered::new();
    let peer = Arc::new(stream.peer().clone());
    let max_calls = stream.max_calls;
    let drain_timeout = stream.drain_timeout;
    // Once the peer has closed its side: how long the calls that still run may take.
    let mut draining: Option<Pin<Box<tokio::time::Sleep>>> = None;
    let busy_poll = stream.busy_poll;
    // Since when there has been nothing to do, while busy polling.
    let mut idle_since: Option<tokio::time::Instant> = None;
    let first_write = match stream.early_replies {
        true => FIRST_WRITE,
        false => usize::MAX,
    };
    // The bytes of replies this burst of calls has queued, and how many must wait before
    // the next write that does not wait for the burst to end.
    let (mut burst, mut write_at) = (0, first_write);
    let result = poll_fn(|cx| {
        loop {
            // Replies of the calls that finished.
            while let Poll::Ready(Some((reply, held))) = running.poll_next_unpin(cx) {
                stream.lent -= held;
                burst += queue(stream, &mut scratch, &reply);
            }
            if stream.unsent() >= write_at {
                // Calls still come: let the peer have these replies meanwhile. A write
                // that has to wait for the peer waits for the burst's end instead.
                write_at = match stream.poll_flush(cx) {
                    Poll::Ready(Ok(())) => EARLY_WRITE.max(burst / 3),
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                    Poll::Pending => usize::MAX,
                };
            }
            let backed_up = stream.unsent() >= stream.max_unsent;
            if !ended && !backed_up && running.len() < max_calls {
                match stream.poll_read_with(cx, &mut AcceptAll) {
                    Poll::Ready(Ok(Some(Record::Accept(message)))) => {
                        idle_since = None;
                        let held = message.len() + CALL_COST;
                        match service.answer(message, &peer) {
                            Answer::Now(Some(reply)) => {
                                burst += queue(stream, &mut scratch, &reply);
                            }
                            Answer::Now(None) => {}
                            // A handler that answers at once is answered here, without
                            // a place among the calls that run.
                            Answer::Later(xid, mut future) => {
                                match poll_settle(xid, &mut future, cx) {
                                    Poll::Ready(outcome) => {
                                        let reply = Reply { xid, outcome };
                                        burst += queue(stream, &mut scratch, &reply);
                                    }
                                    Poll::Pending => {
                                        stream.lent += held;
                                        running.push(Box::pin(async move {
                                            let outcome = settle(xid, future).await;
                                            (Reply { xid, outcome }, held)
                                        }));
                                    }
                                }
                            }
                        }
                        continue;
                    }
                    Poll::Ready(Ok(_)) => ended = true,
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                    Poll::Pending => {}
                }
            }
            // Nothing more to read for now, or no room to: send what was answered. The
            // burst ends.
            (burst, write_at) = (0, first_write);
            ready!(stream.poll_flush(cx))?;
            if backed_up {
                // All sent: read again.
                continue;
            }
            if ended && !running.is_empty() {
                if let Some(after) = drain_timeout {
                    let deadline =
                        draining.get_or_insert_with(|| Box::pin(tokio::time::sleep(after)));
                    if deadline.as_mut().poll(cx).is_ready() {
                        warn!(
                            running = running.len(),
                            ?after,
                            "the peer closed and calls still run: dropped"
                        );
                        return Poll::Ready(Ok(()));
                    }
                }
            }
            if let (Some(spin), false) = (busy_poll, ended) {
                // Busy polling: ask to be polled again at once, so that the runtime looks
                // at the socket without going to sleep, until `spin` has passed idle.
                let since = *idle_since.get_or_insert_with(tokio::time::Instant::now);
                if since.elapsed() < spin {
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
                }
            }
            return match ended && running.is_empty() {
                true => Poll::Ready(Ok(())),
                false => Poll::Pending,
            };
        }
    })
    .await;
    stream.lent = 0;
    result
}

/// Queues `reply` on `stream`; the bytes of its message.
fn queue<T: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut RecordStream<T>,
    scratch: &mut BytesMut,
    reply: &Reply,
) -> usize {
    scratch.clear();
    reply.encode(scratch);
    trace!(%reply, "out");
    stream.feed(scratch);
    scratch.len()
}

/// Serves `service` on a datagram socket, answering each call at its source, for ever (drop
/// the future to stop; the calls that run are dropped with it).
///
/// Calls run concurrently, up to [`Config::max_calls`](crate::Config::max_calls) at once;
/// beyond it, no datagram is received until one finishes (the kernel's buffer holds or drops
/// them, as UDP does). A retransmitted call is answered from the duplicate-request cache
/// ([`Config::reply_cache`](crate::Config::reply_cache)), or dropped while the first copy
/// still runs, instead of running twice. Datagrams too large or not calls are skipped; a
/// failed receive or send is traced and survived, the loop pausing 10 ms after a failed
/// receive so that an error that persists costs no CPU.
pub async fn serve_datagram<S: DatagramSocket>(
    socket: &mut RecordDatagram<S>,
    service: &Service,
) -> Result<(), Error> {
    let limits = socket.config;
    let mut cache = ReplyCache::new(limits.reply_cache, limits.reply_cache_bytes);
    let max_calls = limits.max_calls;
    let mut running = FuturesUnordered::new();
    let mut scratch = BytesMut::new();
    loop {
        let received = if running.len() < max_calls {
            tokio::select! {
                received = socket.recv() => Some(received),
                Some(done) = running.next() => {
                    let (key, source, reply): (Option<CallKey>, PeerAddr, Reply) = done;
                    reply_to(socket, &mut cache, &mut scratch, key, &source, Some(reply)).await;
                    None
                }
            }
        } else {
            if let Some((key, source, reply)) = running.next().await {
                reply_to(socket, &mut cache, &mut scratch, key, &source, Some(reply)).await;
            }
            None
        };
        let (message, source) = match received {
            None => continue,
            Some(Ok(received)) => received,
            Some(Err(e @ Error::DatagramTooLarge { .. })) => {
                debug!(error = %e, "skipped");
                continue;
            }
            Some(Err(e)) => {
                warn!(error = %e, "receive failed: going on");
                tokio::time::sleep(ERROR_PAUSE).await;
                continue;
            }
        };
        let key = CallKey::of(&source, &message);
        if let Some(key) = &key {
            match cache.seen(key) {
                Seen::New => {}
                Seen::Running => {
                    debug!(%source, "retransmission of a call that runs: dropped");
                    continue;
                }
                Seen::Answered(reply) => {
                    debug!(%source, "retransmission: the cached reply again");
                    send(socket, &reply, &source).await;
                    continue;
                }
            }
        }
        let peer = Arc::new(Peer {
            addr: Some(source.clone()),
            ..Peer::default()
        });
        match service.answer(message, &peer) {
            Answer::Now(reply) => {
                reply_to(socket, &mut cache, &mut scratch, key, &source, reply).await;
            }
            Answer::Later(xid, future) => running.push(async move {
                let outcome = settle(xid, future).await;
                (key, source, Reply { xid, outcome })
            }),
        }
    }
}

/// Sends `reply` (if any) to `source` and keeps it in the cache under `key`.
async fn reply_to<S: DatagramSocket>(
    socket: &mut RecordDatagram<S>,
    cache: &mut ReplyCache,
    scratch: &mut BytesMut,
    key: Option<CallKey>,
    source: &PeerAddr,
    reply: Option<Reply>,
) {
    let encoded = reply.map(|reply| {
        scratch.clear();
        reply.encode(scratch);
        trace!(%reply, "out");
        scratch.split().freeze()
    });
    if let Some(encoded) = &encoded {
        send(socket, encoded, source).await;
    }
    if let Some(key) = key {
        cache.answered(key, encoded);
    }
}

async fn send<S: DatagramSocket>(socket: &mut RecordDatagram<S>, reply: &[u8], to: &PeerAddr) {
    if let Err(e) = socket.send_to(reply, to).await {
        debug!(%to, error = %e, "reply not sent");
    }
}
