//! What a layer is: [`Layer`] (a step that wraps a stream), [`Layered`] (the wrapped stream as
//! a [`Stack`](crate::Stack) holds it), the [`Endpoint`] at the bottom, and the [`Residue`] a
//! layer leaves when it is peeled.

use std::any::Any;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::Error;

/// A byte stream a layer can run over: TCP, a Unix socket, an in-memory duplex, another
/// layer.
pub trait Io: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Io for T {}

/// One protocol layer, before it runs: a step that wraps a stream into a new stream.
///
/// Fixed stacks compose statically, with no boxing: `TlsClient::wrap(tcp)` is a `Tls<TcpStream>`.
/// A dynamic [`Stack`](crate::Stack) pushes the same layers onto a live connection.
pub trait Layer: Send + Sized + 'static {
    /// The stream this layer makes over `S`.
    type Wrapped<S: Io>: Io;

    /// The layer's name, as [`Stack::names`](crate::Stack::names) shows it.
    const NAME: &'static str;

    /// Whether the layer refuses to start while bytes read ahead are unread. Security layers
    /// do: bytes that came before the handshake are not protected by it.
    const REQUIRES_CLEAN_BOUNDARY: bool;

    /// Starts the layer over `inner` (for TLS, the handshake). On failure `inner` comes back
    /// with the error, so the connection can carry on without the layer.
    fn wrap<S: Io>(
        self,
        inner: S,
    ) -> impl Future<Output = Result<Self::Wrapped<S>, (Error, S)>> + Send;
}

/// The future of a layer starting over the top of a dynamic stack: the new top, or the
/// error and the old top.
pub type WrapDyn =
    Pin<Box<dyn Future<Output = Result<Box<dyn Layered>, (Error, Box<dyn Layered>)>> + Send>>;

/// A layer ready to start on top of a dynamic [`Stack`](crate::Stack): the object-safe form
/// of [`Layer`], so that an upgrade can be queued as a value (`Box<dyn Upgrade>`). Every
/// [`Layer`] is one.
pub trait Upgrade: Send + 'static {
    /// The layer's name.
    fn name(&self) -> &'static str;

    /// Whether the layer refuses to start over unread bytes ([`Layer::REQUIRES_CLEAN_BOUNDARY`]).
    fn requires_clean_boundary(&self) -> bool;

    /// Starts the layer over `inner`, the stack's top.
    fn start(self: Box<Self>, inner: Box<dyn Layered>) -> WrapDyn;
}

impl<L: Layer> Upgrade for L
where
    L::Wrapped<Box<dyn Layered>>: Layered,
{
    fn name(&self) -> &'static str {
        L::NAME
    }

    fn requires_clean_boundary(&self) -> bool {
        L::REQUIRES_CLEAN_BOUNDARY
    }

    fn start(self: Box<Self>, inner: Box<dyn Layered>) -> WrapDyn {
        Box::pin(async move {
            match (*self).wrap(inner).await {
                Ok(wrapped) => Ok(Box::new(wrapped) as Box<dyn Layered>),
                Err(failed) => Err(failed),
            }
        })
    }
}

/// A layer at work inside a [`Stack`](crate::Stack): a byte stream over the layer below, which
/// can say what it is and be peeled off.
pub trait Layered: Io {
    /// The layer's name.
    fn name(&self) -> &'static str;

    /// What the layer knows about the connection (for TLS, a [`TlsInfo`](crate::TlsInfo)).
    fn meta(&self) -> Option<&(dyn Any + Send + Sync)> {
        None
    }

    /// The layer below; `None` for the endpoint.
    fn below(&self) -> Option<&dyn Layered>;

    /// Removes this layer: the layer below, and what this layer still held. The endpoint
    /// cannot be peeled and comes back as the error.
    #[allow(clippy::type_complexity)]
    fn peel(self: Box<Self>) -> Result<(Box<dyn Layered>, Residue), Box<dyn Layered>>;
}

/// What a peeled layer still held.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Residue {
    /// Bytes the layer had decoded for the layer above that nobody read yet.
    pub unread: Bytes,
    /// Bytes the layer had made for the layer below that were not yet written to it.
    pub unsent: Bytes,
}

impl Residue {
    /// Whether the layer held nothing.
    pub fn is_empty(&self) -> bool {
        self.unread.is_empty() && self.unsent.is_empty()
    }
}

/// The bottom of a stack: the socket (or pipe) itself.
#[derive(Debug)]
pub struct Endpoint<T>(pub T);

impl<T: Io> AsyncRead for Endpoint<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl<T: Io> AsyncWrite for Endpoint<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

impl<T: Io> Layered for Endpoint<T> {
    fn name(&self) -> &'static str {
        "endpoint"
    }

    fn below(&self) -> Option<&dyn Layered> {
        None
    }

    fn peel(self: Box<Self>) -> Result<(Box<dyn Layered>, Residue), Box<dyn Layered>> {
        Err(self)
    }
}

/// Bytes to read before the layer below: bytes read ahead and given back, replayed to a layer
/// that does not need a clean boundary, or bytes a peeled layer read past its own end.
/// Transparent: it shows the name and metadata of the layer below, and peeling it peels that
/// layer, keeping what was not replayed yet ahead of that layer's residue.
pub(crate) struct Rewind {
    pub unread: Bytes,
    pub inner: Box<dyn Layered>,
}

impl AsyncRead for Rewind {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.unread.is_empty() {
            return Pin::new(&mut self.inner).poll_read(cx, buf);
        }
        let n = self.unread.len().min(buf.remaining());
        buf.put_slice(&self.unread[..n]);
        self.unread.advance(n);
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Rewind {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

impl Layered for Rewind {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    fn meta(&self) -> Option<&(dyn Any + Send + Sync)> {
        self.inner.meta()
    }

    fn below(&self) -> Option<&dyn Layered> {
        self.inner.below()
    }

    fn peel(self: Box<Self>) -> Result<(Box<dyn Layered>, Residue), Box<dyn Layered>> {
        let Rewind { unread, inner } = *self;
        // Replayed bytes were never this layer's: they stay above whatever `inner` leaves.
        match inner.peel() {
            Ok((below, mut residue)) => {
                residue.unread = [unread, residue.unread].concat().into();
                Ok((below, residue))
            }
            Err(inner) => Err(Box::new(Rewind { unread, inner })),
        }
    }
}
