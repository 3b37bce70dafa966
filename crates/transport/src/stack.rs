//! [`Stack`]: a connection whose protocol layers can be pushed and peeled while it is live.

use std::any::Any;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tracing::debug;

use crate::Error;
use crate::layer::{Endpoint, Io, Layered, Residue, Rewind, Upgrade};

/// A byte stream made of layers over an endpoint (fault.kernel.io's Transport), for
/// connections that change protocol while they are live: STARTTLS, upgrades.
///
/// It reads and writes through its top layer. [`push`](Stack::push) starts a layer on top
/// (for TLS, the handshake); [`pop`](Stack::pop) peels the top one off and returns its
/// [`Residue`]; [`get`](Stack::get) finds what a layer knows ([`TlsInfo`](crate::TlsInfo)).
///
/// **Read-ahead.** A reader that buffers (a `Framed`, a `BufReader`) may hold bytes it read
/// past what it used. Before a push, give them back with [`put_back`](Stack::put_back): a
/// security layer then refuses to start ([`Error::UnreadResidue`]), since those bytes came
/// before its handshake and an attacker may have injected them (STARTTLS injection).
///
/// **Closing** is top-down: `shutdown` on the stack finishes the top layer (TLS sends
/// close_notify), flushes and shuts the layer below, down to the socket's write side.
/// Reading goes on until the peer closes its side: a half-close passes through intact.
///
/// Fixed stacks do not need this type: a layer wraps any stream statically, with no box
/// (`TlsClient::wrap(tcp)` is a `Tls<TcpStream>`).
///
/// ```
/// use strata_transport::Stack;
/// use tokio::io::{AsyncReadExt, AsyncWriteExt};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), strata_transport::Error> {
/// let (a, mut b) = tokio::io::duplex(1024);
/// let mut stack = Stack::new(a);
/// assert_eq!(stack.names(), ["endpoint"]);
/// stack.write_all(b"hello").await?;
/// let mut got = [0; 5];
/// b.read_exact(&mut got).await?;
/// assert_eq!(&got, b"hello");
/// // Bytes a line reader read too far go back; they are read again first.
/// stack.put_back(b"again");
/// let mut again = [0; 5];
/// stack.read_exact(&mut again).await?;
/// assert_eq!(&again, b"again");
/// # Ok(())
/// # }
/// ```
pub struct Stack {
    /// `None` only while a push or pop is under way (or after one was cancelled).
    top: Option<Box<dyn Layered>>,
    /// Bytes read through the top layer and given back, read again before it.
    unread: BytesMut,
}

impl std::fmt::Debug for Stack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stack")
            .field("layers", &self.names())
            .field("unread", &self.unread.len())
            .finish()
    }
}

impl Stack {
    /// A stack with `io` as its endpoint and no layer above it.
    pub fn new(io: impl Io) -> Stack {
        Stack {
            top: Some(Box::new(Endpoint(io))),
            unread: BytesMut::new(),
        }
    }

    /// The layers' names, top first; the last is `endpoint`. Empty only after a cancelled
    /// push or pop lost the layers.
    pub fn names(&self) -> Vec<&'static str> {
        let mut names = Vec::new();
        let mut layer = self.top.as_deref();
        while let Some(l) = layer {
            names.push(l.name());
            layer = l.below();
        }
        names
    }

    /// What the topmost layer that knows an `M` knows: `stack.get::<TlsInfo>()`.
    pub fn get<M: Any>(&self) -> Option<&M> {
        let mut layer = self.top.as_deref();
        while let Some(l) = layer {
            if let Some(meta) = l.meta().and_then(|m| m.downcast_ref::<M>()) {
                return Some(meta);
            }
            layer = l.below();
        }
        None
    }

    /// Gives back bytes read through the stack but not used (a `Framed`'s read buffer, say):
    /// they are read again before anything else. A security layer will not be pushed over
    /// them.
    pub fn put_back(&mut self, bytes: &[u8]) {
        let mut unread = BytesMut::with_capacity(bytes.len() + self.unread.len());
        unread.extend_from_slice(bytes);
        unread.extend_from_slice(&self.unread);
        self.unread = unread;
    }

    /// The bytes given back and not read again yet.
    pub fn unread(&self) -> &[u8] {
        &self.unread
    }

    /// Starts `layer` on top: the stack reads and writes through it from now on.
    ///
    /// A security layer ([`Layer::REQUIRES_CLEAN_BOUNDARY`](crate::Layer::REQUIRES_CLEAN_BOUNDARY)) refuses to start while bytes
    /// are unread ([`Error::UnreadResidue`]); another layer reads them first. When the
    /// layer fails to start ([`Error::Handshake`]), the stack is left as it was, less what
    /// the attempt consumed.
    ///
    /// Not cancel-safe: dropping the future midway loses the connection ([`Error::Lost`]).
    pub async fn push(&mut self, layer: impl Upgrade) -> Result<(), Error> {
        self.push_boxed(Box::new(layer)).await
    }

    /// [`push`](Stack::push) of an upgrade queued as a value.
    pub async fn push_boxed(&mut self, layer: Box<dyn Upgrade>) -> Result<(), Error> {
        let name = layer.name();
        if layer.requires_clean_boundary() && !self.unread.is_empty() {
            debug!(
                layer = name,
                unread = self.unread.len(),
                "push refused: bytes read ahead"
            );
            return Err(Error::UnreadResidue {
                layer: name,
                bytes: self.unread.len(),
            });
        }
        let mut top = self.top.take().ok_or(Error::Lost)?;
        if !self.unread.is_empty() {
            let unread = self.unread.split().freeze();
            top = Box::new(Rewind { unread, inner: top });
        }
        match layer.start(top).await {
            Ok(wrapped) => {
                self.top = Some(wrapped);
                debug!(layers = ?self.names(), "layer pushed");
                Ok(())
            }
            Err((error, top)) => {
                self.top = Some(top);
                Err(error)
            }
        }
    }

    /// Flushes the top layer and peels it off: the stack reads and writes through the layer
    /// below from now on. The layer's last records (for TLS, close_notify, so that the peer
    /// sees it end cleanly) are written to the layer below and flushed. The residue holds
    /// what the layer had decoded that nobody read (the bytes given back with
    /// [`put_back`](Stack::put_back) first); its `unsent` is empty once they are written.
    ///
    /// The endpoint cannot be popped ([`Error::NothingToPop`]). Not cancel-safe once the
    /// flush is done: dropping the future midway loses the connection.
    pub async fn pop(&mut self) -> Result<Residue, Error> {
        match &self.top {
            None => return Err(Error::Lost),
            Some(top) if top.below().is_none() => return Err(Error::NothingToPop),
            Some(_) => {}
        }
        self.flush().await?;
        let top = self.top.take().ok_or(Error::Lost)?;
        match top.peel() {
            Ok((below, mut residue)) => {
                self.top = Some(below);
                if !self.unread.is_empty() {
                    let mut unread = self.unread.split();
                    unread.extend_from_slice(&residue.unread);
                    residue.unread = unread.freeze();
                }
                if !residue.unsent.is_empty() {
                    let unsent = std::mem::take(&mut residue.unsent);
                    self.write_all(&unsent).await?;
                    self.flush().await?;
                }
                debug!(layers = ?self.names(), unread = residue.unread.len(), "layer popped");
                Ok(residue)
            }
            Err(top) => {
                self.top = Some(top);
                Err(Error::NothingToPop)
            }
        }
    }

    fn top(&mut self) -> io::Result<Pin<&mut Box<dyn Layered>>> {
        match &mut self.top {
            Some(top) => Ok(Pin::new(top)),
            None => Err(Error::Lost.into_io()),
        }
    }
}

impl AsyncRead for Stack {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if !self.unread.is_empty() {
            let n = self.unread.len().min(buf.remaining());
            buf.put_slice(&self.unread[..n]);
            self.unread.advance(n);
            return Poll::Ready(Ok(()));
        }
        self.top()?.poll_read(cx, buf)
    }
}

impl AsyncWrite for Stack {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.top()?.poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.top()?.poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.top.as_ref().is_some_and(|t| t.is_write_vectored())
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.top()?.poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.top()?.poll_shutdown(cx)
    }
}
