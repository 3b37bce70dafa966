//! [`RecordStream`]: the stream transporter, records over any byte stream (Ocamlnet's
//! `stream_rpc_multiplex_controller`, as futures).

use std::future::poll_fn;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::{Instant, Sleep};
use tracing::{debug, trace, warn};

use crate::budget::Charge;
use crate::{
    AcceptAll, Admission, Budget, Config, Error, Peer, Record, RecordDecoder, encode_record,
};

/// The least room made in the read buffer before each read.
const READ_CHUNK: usize = 8 * 1024;

/// A buffer this large is not kept once it has done its work.
const BIG_BUFFER: usize = 64 * 1024;

/// Records over a byte stream: TCP, a Unix socket, a pipe, a TLS stream.
///
/// Reads and writes are one record at a time; bytes read past a record stay buffered for
/// the next read. Every future is cancel-safe: dropping a read keeps what was read and
/// where the decoder is (Ocamlnet's `cancel_rd_polling`; the next read goes on from
/// there), and dropping a write or flush leaves the rest of the record queued for the
/// next one. [`abort`](RecordStream::abort) drops everything, [`shutdown`](RecordStream::shutdown)
/// closes in order. Dropping the transporter closes the stream without a shutdown.
///
/// ```
/// use rpc_record::{Config, RecordStream};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), rpc_record::Error> {
/// let (a, b) = tokio::io::duplex(4096);
/// let (mut client, mut server) = (RecordStream::new(a, &Config::default()), RecordStream::new(b, &Config::default()));
/// client.write(b"\x00\x00\x00\x07 a call").await?;
/// let call = server.read().await?.expect("a record");
/// assert_eq!(&call[..], b"\x00\x00\x00\x07 a call");
/// client.close_write().await?;
/// assert_eq!(server.read().await?, None); // EOF between records: a clean end
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct RecordStream<T> {
    io: T,
    decoder: RecordDecoder,
    read_buf: BytesMut,
    /// Records queued to write; `write_buf[written..]` is still to go. Never advanced, so
    /// that its capacity is what it has allocated.
    write_buf: BytesMut,
    written: usize,
    fragment_size: u32,
    peer: Peer,
    read_eof: bool,
    /// Whether bytes were written since the last flush of the stream.
    unflushed: bool,
    idle: Option<Idle>,
    /// The deadline of the record in progress, once one has had to wait for bytes.
    record: Option<RecordDeadline>,
    record_timeout: Option<Duration>,
    /// What this stream holds of its server's budget, when it has one.
    charge: Option<Charge>,
    pub(crate) max_unsent: usize,
    /// How many calls `serve_stream` runs at once.
    pub(crate) max_calls: usize,
    /// How long `serve_stream` lets calls run once the peer has closed.
    pub(crate) drain_timeout: Option<Duration>,
    /// How long `serve_stream` busy-polls an idle connection.
    pub(crate) busy_poll: Option<Duration>,
    /// Whether `serve_stream` writes replies before a burst of calls ends.
    pub(crate) early_replies: bool,
    /// Bytes of records read that calls in progress still hold (`serve_stream`'s), counted
    /// as the stream's own against its budget.
    pub(crate) lent: usize,
}

/// The time a record in progress has left ([`Config::record_timeout`]).
#[derive(Debug)]
struct RecordDeadline {
    timer: Pin<Box<Sleep>>,
    armed: bool,
}

/// The inactivity timer (Ocamlnet's `set_timeout`).
#[derive(Debug)]
struct Idle {
    after: Duration,
    timer: Pin<Box<Sleep>>,
    /// Whether an operation is waiting (the timer runs); the next one to wait after a
    /// record was read or a flush completed starts it afresh.
    waiting: bool,
}

impl<T: AsyncRead + AsyncWrite + Unpin> RecordStream<T> {
    /// A transporter over `io`, with `config`'s limits and fragment size; nothing is known
    /// of the peer (see [`with_peer`](RecordStream::with_peer)).
    pub fn new(io: T, config: &Config) -> RecordStream<T> {
        RecordStream {
            io,
            decoder: RecordDecoder::new(config),
            read_buf: BytesMut::new(),
            write_buf: BytesMut::new(),
            written: 0,
            fragment_size: config.fragment_size,
            peer: Peer::default(),
            read_eof: false,
            unflushed: false,
            idle: None,
            record: None,
            record_timeout: config.record_timeout,
            charge: None,
            max_unsent: config.max_unsent.max(1),
            max_calls: config.max_calls.max(1),
            drain_timeout: config.drain_timeout,
            busy_poll: config.busy_poll,
            early_replies: config.early_replies,
            lent: 0,
        }
    }

    /// Reads only within `budget`, shared with the other connections of a server: before
    /// each read the stream holds, against the budget, the bytes it holds already (records
    /// in progress, replies not yet sent) and the most the read may bring. When the budget
    /// is spent, reading waits (writing goes on) until other streams give bytes back, in
    /// turn. What a stream holds is given back as it shrinks, and when it is dropped.
    pub fn with_budget(mut self, budget: &Budget) -> RecordStream<T> {
        self.charge = Some(budget.charge());
        self
    }

    /// The bytes queued and not yet written.
    pub fn unsent(&self) -> usize {
        self.write_buf.len() - self.written
    }

    /// Says who the peer is: [`Peer::of_tcp`], [`Peer::of_unix`], or what a TLS layer knows.
    pub fn with_peer(mut self, peer: Peer) -> RecordStream<T> {
        self.peer = peer;
        self
    }

    /// Reads the next record, accepting it within [`Config::max_record`]; `None` when the
    /// stream ended between records, [`Error::Truncated`] when it ended inside one.
    pub async fn read(&mut self) -> Result<Option<Bytes>, Error> {
        loop {
            match self.read_with(&mut AcceptAll).await? {
                Some(Record::Accept(record)) => return Ok(Some(record)),
                None => return Ok(None),
                // AcceptAll accepts everything.
                Some(_) => continue,
            }
        }
    }

    /// Reads the next record, asking `admission` at each fragment header before its
    /// payload is read.
    pub async fn read_with(
        &mut self,
        admission: &mut impl Admission,
    ) -> Result<Option<Record>, Error> {
        poll_fn(|cx| self.poll_read_with(cx, admission)).await
    }

    /// [`read_with`](RecordStream::read_with) as a poll, for hand-written drivers.
    pub fn poll_read_with(
        &mut self,
        cx: &mut Context<'_>,
        admission: &mut impl Admission,
    ) -> Poll<Result<Option<Record>, Error>> {
        loop {
            let record = match self.read_eof {
                false => self.decoder.decode(&mut self.read_buf, admission)?,
                true => {
                    let record = self.decoder.decode_eof(&mut self.read_buf, admission)?;
                    if record.is_none() {
                        trace!("EOF between records");
                    }
                    self.job_done();
                    return Poll::Ready(Ok(record));
                }
            };
            if let Some(record) = record {
                trace!(%record, "in");
                self.job_done();
                if let Some(deadline) = &mut self.record {
                    deadline.armed = false;
                }
                return Poll::Ready(Ok(Some(record)));
            }
            let window = self.window();
            let want = self.holding(window);
            if let Some(charge) = &mut self.charge {
                if charge.poll_hold(cx, want).is_pending() {
                    // Waiting for us, not for the peer: only a record's deadline runs.
                    return self.poll_record_deadline(cx);
                }
            }
            self.read_buf.reserve(window);
            if self.read_buf.capacity() > 2 * (self.read_buf.len() + window) {
                // The buffer took back the room of a large record gone by: keep what is
                // needed, so that the buffer is never more than its charge.
                let mut fresh = BytesMut::with_capacity(self.read_buf.len() + window);
                fresh.extend_from_slice(&self.read_buf);
                self.read_buf = fresh;
            }
            let mut limited = tokio::io::AsyncReadExt::take(&mut self.io, window as u64);
            match tokio_util::io::poll_read_buf(Pin::new(&mut limited), cx, &mut self.read_buf) {
                Poll::Ready(Ok(0)) => self.read_eof = true,
                Poll::Ready(Ok(_)) => self.touch(),
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e.into())),
                Poll::Pending => {
                    if let Poll::Ready(Err(e)) = self.poll_record_deadline::<()>(cx) {
                        return Poll::Ready(Err(e));
                    }
                    self.give_back();
                    return self.poll_idle(cx);
                }
            }
        }
    }

    /// A record is in progress and waits for bytes: `Ready(Err(RecordTimeout))` once it
    /// has waited [`Config::record_timeout`] from its first wait, else `Pending`.
    fn poll_record_deadline<R>(&mut self, cx: &mut Context<'_>) -> Poll<Result<R, Error>> {
        let Some(after) = self.record_timeout else {
            return Poll::Pending;
        };
        if self.decoder.is_idle() && self.read_buf.is_empty() {
            return Poll::Pending;
        }
        let deadline = self.record.get_or_insert_with(|| RecordDeadline {
            timer: Box::pin(tokio::time::sleep(after)),
            armed: true,
        });
        if !deadline.armed {
            deadline.timer.as_mut().reset(Instant::now() + after);
            deadline.armed = true;
        }
        ready!(deadline.timer.as_mut().poll(cx));
        warn!(
            ?after,
            held = self.decoder.held() + self.read_buf.len(),
            "record timed out"
        );
        deadline.armed = false;
        Poll::Ready(Err(Error::RecordTimeout(after)))
    }

    /// How much the next read may bring: what the decoder wants, but never more than has
    /// arrived of the record already (nor 128 KiB), so that a declared length that has not
    /// arrived reserves nothing; at least 8 KiB.
    fn window(&self) -> usize {
        let arrived = self.read_buf.len() + self.decoder.held();
        self.decoder
            .wanted()
            .min(arrived)
            .clamp(READ_CHUNK, 16 * READ_CHUNK)
    }

    /// The bytes the stream holds, as allocated: the read buffer with room for its next
    /// read (counted twice, since a buffer may double as it grows), what the decoder joins,
    /// the write buffer, and the records that calls in progress hold.
    fn holding(&self, window: usize) -> usize {
        2 * (self.read_buf.len() + window)
            + self.decoder.allocated()
            + self.write_buf.capacity()
            + self.lent
    }

    /// Gives back what the budget holds beyond what the stream holds and its next read.
    fn give_back(&mut self) {
        let keep = self.holding(self.window());
        if let Some(charge) = &mut self.charge {
            charge.release_to(keep);
        }
    }

    /// Queues `payload` as one record (or several fragments, by [`Config::fragment_size`]);
    /// nothing is written until [`flush`](RecordStream::flush).
    pub fn feed(&mut self, payload: &[u8]) {
        encode_record(payload, self.fragment_size, &mut self.write_buf);
    }

    /// Writes `payload` as one record, and everything queued before it.
    pub async fn write(&mut self, payload: &[u8]) -> Result<(), Error> {
        self.feed(payload);
        self.flush().await
    }

    /// Writes everything queued.
    pub async fn flush(&mut self) -> Result<(), Error> {
        poll_fn(|cx| self.poll_flush(cx)).await
    }

    /// [`flush`](RecordStream::flush) as a poll, for hand-written drivers.
    pub fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        while self.written < self.write_buf.len() {
            match Pin::new(&mut self.io).poll_write(cx, &self.write_buf[self.written..]) {
                Poll::Ready(Ok(0)) => {
                    return Poll::Ready(Err(
                        std::io::Error::from(std::io::ErrorKind::WriteZero).into()
                    ));
                }
                Poll::Ready(Ok(n)) => {
                    self.written += n;
                    if self.written == self.write_buf.len() {
                        self.written = 0;
                        self.write_buf.clear();
                        if self.write_buf.capacity() >= BIG_BUFFER {
                            self.write_buf = BytesMut::new();
                        }
                    }
                    self.unflushed = true;
                    self.touch();
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e.into())),
                Poll::Pending => return self.poll_idle(cx),
            }
        }
        if self.unflushed {
            match Pin::new(&mut self.io).poll_flush(cx) {
                Poll::Ready(result) => result?,
                Poll::Pending => return self.poll_idle(cx),
            }
            self.unflushed = false;
            self.job_done();
            self.give_back();
        }
        Poll::Ready(Ok(()))
    }

    /// Writes what is queued, then closes the write side (the peer reads EOF); reading
    /// goes on. A client that sends its last call this way still gets its replies.
    pub async fn close_write(&mut self) -> Result<(), Error> {
        self.flush().await?;
        poll_fn(|cx| match Pin::new(&mut self.io).poll_shutdown(cx) {
            Poll::Ready(result) => Poll::Ready(result.map_err(Error::from)),
            Poll::Pending => self.poll_idle(cx),
        })
        .await
    }

    /// Closes in order (Ocamlnet's `start_shutting_down`): writes what is queued, closes
    /// the write side, then waits for the peer's EOF, discarding whatever else it sends; all
    /// of it within `linger`, so that a peer that reads nothing cannot hold the close.
    /// Afterwards [`read_eof`](RecordStream::read_eof) is true.
    ///
    /// [`Error::CloseTimeout`] when the close did not finish in time (what was queued
    /// may not all have gone out).
    pub async fn shutdown(&mut self, linger: Duration) -> Result<(), Error> {
        let deadline = Instant::now() + linger;
        let mut discard = BytesMut::with_capacity(READ_CHUNK);
        let drained = tokio::time::timeout_at(deadline, async {
            self.close_write().await?;
            while !self.read_eof {
                discard.clear();
                self.read_buf.clear();
                let n = tokio::io::AsyncReadExt::read_buf(&mut self.io, &mut discard).await?;
                self.read_eof = n == 0;
            }
            Ok::<_, Error>(())
        })
        .await;
        match drained {
            Ok(result) => result,
            Err(_) => {
                debug!(
                    ?linger,
                    unsent = self.unsent(),
                    "the close did not finish in time"
                );
                self.read_eof = true;
                Err(Error::CloseTimeout(linger))
            }
        }
    }

    /// Drops the stream and what is queued, sending nothing more (Ocamlnet's `abort_rw`
    /// followed by `inactivate`).
    pub fn abort(self) {
        debug!(
            unsent = self.unsent(),
            unread = self.read_buf.len(),
            "aborted"
        );
    }

    /// Arms the inactivity timer (Ocamlnet's `set_timeout`): a read, write or flush that
    /// moves no byte for `after` returns [`Error::Inactive`], which is only a notification:
    /// nothing is lost, and calling again goes on where it was. `None` disarms it. No timer
    /// runs while no operation is waiting.
    pub fn set_timeout(&mut self, after: Option<Duration>) {
        self.idle = after.map(|after| Idle {
            after,
            timer: Box::pin(tokio::time::sleep(after)),
            waiting: false,
        });
    }

    /// Whether the peer's EOF has been read.
    pub fn read_eof(&self) -> bool {
        self.read_eof
    }

    /// What is known of the peer.
    pub fn peer(&self) -> &Peer {
        &self.peer
    }

    /// The stream.
    pub fn get_ref(&self) -> &T {
        &self.io
    }

    /// The stream, mutably. Reading or writing it directly breaks the framing.
    pub fn get_mut(&mut self) -> &mut T {
        &mut self.io
    }

    /// The stream, and the bytes read from it that no record has taken yet.
    pub fn into_inner(self) -> (T, BytesMut) {
        (self.io, self.read_buf)
    }

    /// A job is done (a record read, a flush completed): the next wait starts the timer.
    fn job_done(&mut self) {
        if let Some(idle) = &mut self.idle {
            idle.waiting = false;
        }
    }

    /// Bytes moved: the inactivity timer starts again.
    fn touch(&mut self) {
        if let Some(idle) = &mut self.idle {
            let after = idle.after;
            idle.timer.as_mut().reset(Instant::now() + after);
        }
    }

    /// Waiting on the stream: `Pending`, or [`Error::Inactive`] once the timer has run out
    /// (it starts again for the next wait).
    fn poll_idle<R>(&mut self, cx: &mut Context<'_>) -> Poll<Result<R, Error>> {
        let Some(idle) = &mut self.idle else {
            return Poll::Pending;
        };
        if !idle.waiting {
            // The first wait since the last job was done: the timer starts now, however
            // long the stream lay unused (Ocamlnet arms it at each job's start).
            idle.waiting = true;
            let after = idle.after;
            idle.timer.as_mut().reset(Instant::now() + after);
        }
        ready!(idle.timer.as_mut().poll(cx));
        let after = idle.after;
        self.touch();
        debug!(?after, "inactive");
        Poll::Ready(Err(Error::Inactive(after)))
    }
}
