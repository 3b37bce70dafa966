//! [`RecordStream`]: the stream transporter, records over any byte stream (Ocamlnet's
//! `stream_rpc_multiplex_controller`, as futures).

use std::future::poll_fn;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::{Instant, Sleep};
use tracing::{debug, trace};

use crate::{AcceptAll, Admission, Config, Error, Peer, Record, RecordDecoder, encode_record};

/// The least room made in the read buffer before each read.
const READ_CHUNK: usize = 8 * 1024;

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
    write_buf: BytesMut,
    fragment_size: u32,
    peer: Peer,
    read_eof: bool,
    /// Whether bytes were written since the last flush of the stream.
    unflushed: bool,
    idle: Option<Idle>,
}

/// The inactivity timer (Ocamlnet's `set_timeout`).
#[derive(Debug)]
struct Idle {
    after: Duration,
    timer: Pin<Box<Sleep>>,
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
            fragment_size: config.fragment_size,
            peer: Peer::default(),
            read_eof: false,
            unflushed: false,
            idle: None,
        }
    }

    /// Says who the peer is: [`Peer::of_tcp`], [`Peer::of_unix`], or what a TLS layer knows.
    pub fn with_peer(mut self, peer: Peer) -> RecordStream<T> {
        self.peer = peer;
        self
    }

    /// Reads the next record, accepting it within [`Config::max_record`]; `None` when the
    /// stream ended between records, [`Error::EofWithinMessage`] when it ended inside one.
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
                    return Poll::Ready(Ok(record));
                }
            };
            if let Some(record) = record {
                trace!(%record, "in");
                return Poll::Ready(Ok(Some(record)));
            }
            // Bounded: the decoder checked the fragment's length against max_record.
            self.read_buf
                .reserve(self.decoder.wanted().clamp(READ_CHUNK, 16 * READ_CHUNK));
            match tokio_util::io::poll_read_buf(Pin::new(&mut self.io), cx, &mut self.read_buf) {
                Poll::Ready(Ok(0)) => self.read_eof = true,
                Poll::Ready(Ok(_)) => self.touch(),
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e.into())),
                Poll::Pending => return self.poll_idle(cx),
            }
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
        while !self.write_buf.is_empty() {
            match Pin::new(&mut self.io).poll_write(cx, &self.write_buf) {
                Poll::Ready(Ok(0)) => {
                    return Poll::Ready(Err(
                        std::io::Error::from(std::io::ErrorKind::WriteZero).into()
                    ));
                }
                Poll::Ready(Ok(n)) => {
                    self.write_buf.advance(n);
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
    /// the write side, then waits up to `linger` for the peer's EOF, discarding whatever
    /// else it sends. Afterwards [`read_eof`](RecordStream::read_eof) is true.
    ///
    /// [`Error::ShutdownTimeout`] when the peer's EOF did not come in time.
    pub async fn shutdown(&mut self, linger: Duration) -> Result<(), Error> {
        self.close_write().await?;
        let deadline = Instant::now() + linger;
        let mut discard = BytesMut::with_capacity(READ_CHUNK);
        let drained = tokio::time::timeout_at(deadline, async {
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
                debug!(?linger, "no EOF from the peer in time");
                self.read_eof = true;
                Err(Error::ShutdownTimeout(linger))
            }
        }
    }

    /// Drops the stream and what is queued, sending nothing more (Ocamlnet's `abort_rw`
    /// followed by `inactivate`).
    pub fn abort(self) {
        debug!(
            unsent = self.write_buf.len(),
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
        ready!(idle.timer.as_mut().poll(cx));
        let after = idle.after;
        self.touch();
        debug!(?after, "inactive");
        Poll::Ready(Err(Error::Inactive(after)))
    }
}
