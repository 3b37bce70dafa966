//! [`Chunked`]: a framing layer. The byte stream above travels as length-prefixed chunks
//! (a `u32` big-endian length, then that many bytes), ended by a chunk of length zero: the
//! layer's own end marker, so that the stream below can go on after it (and a stream that
//! ends without it reads as truncated).

use std::any::Any;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tracing::debug;

use crate::Error;
use crate::layer::{Io, Layer, Layered, Residue, Rewind};

const NAME: &str = "chunked";
/// The length prefix of a chunk.
const HEADER: usize = 4;
/// How much is read from below at a time.
const READ_CHUNK: usize = 8 * 1024;
/// Encoded bytes held before a write waits for them to drain.
const WRITE_HIGH: usize = 64 * 1024;

/// The chunked framing layer, with its limit on one chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chunked {
    max_chunk: usize,
}

impl Chunked {
    /// A layer that reads and writes chunks of at most `max_chunk` bytes (at least 1). A
    /// length prefix over it is an error before anything is allocated.
    pub fn new(max_chunk: usize) -> Chunked {
        Chunked {
            max_chunk: max_chunk.clamp(1, u32::MAX as usize),
        }
    }
}

impl Default for Chunked {
    /// Chunks of at most 1 MiB.
    fn default() -> Self {
        Chunked::new(1 << 20)
    }
}

impl Layer for Chunked {
    type Wrapped<S: Io> = ChunkedStream<S>;
    const NAME: &'static str = NAME;
    const REQUIRES_CLEAN_BOUNDARY: bool = false;

    async fn wrap<S: Io>(self, inner: S) -> Result<ChunkedStream<S>, (Error, S)> {
        Ok(ChunkedStream {
            inner,
            max_chunk: self.max_chunk,
            read_buf: BytesMut::new(),
            remaining: 0,
            ended: false,
            write_buf: BytesMut::new(),
            end_sent: false,
        })
    }
}

/// A byte stream carried in chunks over `S`, made by [`Chunked`].
#[derive(Debug)]
pub struct ChunkedStream<S> {
    inner: S,
    max_chunk: usize,
    /// Bytes read from below and not yet handed up (after the end marker: the stream below's
    /// own bytes, given back when the layer is peeled).
    read_buf: BytesMut,
    /// Payload bytes of the current chunk not yet handed up.
    remaining: usize,
    /// The peer's end marker was read.
    ended: bool,
    /// Chunks encoded and not yet written below.
    write_buf: BytesMut,
    /// This side's end marker is queued.
    end_sent: bool,
}

impl<S: Io> ChunkedStream<S> {
    /// Writes the encoded chunks below until none is left.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.write_buf.is_empty() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.write_buf))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.write_buf.advance(n);
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: Io> AsyncRead for ChunkedStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        loop {
            if this.ended || buf.remaining() == 0 {
                return Poll::Ready(Ok(()));
            }
            if this.remaining > 0 && !this.read_buf.is_empty() {
                let n = this.remaining.min(this.read_buf.len()).min(buf.remaining());
                buf.put_slice(&this.read_buf[..n]);
                this.read_buf.advance(n);
                this.remaining -= n;
                return Poll::Ready(Ok(()));
            }
            if this.remaining == 0 && this.read_buf.len() >= HEADER {
                let len = this.read_buf.get_u32() as usize;
                if len == 0 {
                    debug!("end marker read");
                    this.ended = true;
                    continue;
                }
                if len > this.max_chunk {
                    debug!(len, max = this.max_chunk, "chunk over the limit");
                    return Poll::Ready(Err(Error::ChunkTooLarge {
                        len,
                        max: this.max_chunk,
                    }
                    .into_io()));
                }
                this.remaining = len;
                continue;
            }
            this.read_buf.reserve(READ_CHUNK);
            let n = ready!(tokio_util::io::poll_read_buf(
                Pin::new(&mut this.inner),
                cx,
                &mut this.read_buf
            ))?;
            if n == 0 {
                debug!(
                    buffered = this.read_buf.len(),
                    "the stream ended without the end marker"
                );
                return Poll::Ready(Err(Error::Truncated { layer: NAME }.into_io()));
            }
        }
    }
}

impl<S: Io> AsyncWrite for ChunkedStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if this.end_sent {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "write after the chunked layer was shut down",
            )));
        }
        if this.write_buf.len() >= WRITE_HIGH {
            ready!(this.poll_drain(cx))?;
        }
        if data.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let n = data.len().min(this.max_chunk);
        this.write_buf.reserve(HEADER + n);
        // At most max_chunk, which fits in a u32.
        this.write_buf.put_u32(n as u32);
        this.write_buf.put_slice(&data[..n]);
        // Start writing now; what does not go stays queued, and the waker is registered.
        if let Poll::Ready(Err(e)) = this.poll_drain(cx) {
            return Poll::Ready(Err(e));
        }
        Poll::Ready(Ok(n))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_drain(cx))?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    /// Queues the end marker, writes everything, then shuts the stream below.
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if !self.end_sent {
            self.end_sent = true;
            self.write_buf.put_u32(0);
        }
        ready!(self.as_mut().poll_flush(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

impl Layered for ChunkedStream<Box<dyn Layered>> {
    fn name(&self) -> &'static str {
        NAME
    }

    fn meta(&self) -> Option<&(dyn Any + Send + Sync)> {
        None
    }

    fn below(&self) -> Option<&dyn Layered> {
        Some(&*self.inner)
    }

    /// The payload of the current chunk that was read from below goes up as the residue;
    /// after the end marker, what was read past it belongs to the stream below and is read
    /// from it again first.
    fn peel(self: Box<Self>) -> Result<(Box<dyn Layered>, Residue), Box<dyn Layered>> {
        let ChunkedStream {
            inner,
            mut read_buf,
            remaining,
            ended,
            write_buf,
            ..
        } = *self;
        let (unread, below): (Bytes, Bytes) = if ended {
            (Bytes::new(), read_buf.freeze())
        } else {
            let payload = read_buf.split_to(remaining.min(read_buf.len())).freeze();
            if !read_buf.is_empty() {
                debug!(
                    bytes = read_buf.len(),
                    "peeled before the end marker: later chunks dropped"
                );
            }
            (payload, Bytes::new())
        };
        let inner: Box<dyn Layered> = if below.is_empty() {
            inner
        } else {
            Box::new(Rewind {
                unread: below,
                inner,
            })
        };
        Ok((
            inner,
            Residue {
                unread,
                unsent: write_buf.freeze(),
            },
        ))
    }
}
