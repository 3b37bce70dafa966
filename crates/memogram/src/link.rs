//! [`Link`]: the datagram sockets memos travel over (UDP, Unix datagram, in memory).

use std::fmt;
use std::hash::Hash;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::task::{Context, Poll};

use socket2::SockRef;
use tokio::io::ReadBuf;
use tokio::net::{UdpSocket, UnixDatagram};

/// The socket buffer hio asks for on UDP: 1024 grams of 1240 bytes.
pub const UDP_BUFFER: usize = 1024 * 1240;
/// The socket buffer hio asks for on Unix datagram sockets: 4 grams of 65535 bytes. It is
/// also hio's receive buffer there, so the longest gram a hio peer takes over a Unix socket.
pub const UXD_BUFFER: usize = 4 * 65535;

/// A UDP socket bound to `addr`, its send and receive buffers raised to [`UDP_BUFFER`] as
/// hio raises them (the kernel caps them at `net.core.rmem_max` and `wmem_max`), so that a
/// burst of grams is not dropped before the receiver reads it.
pub async fn bind_udp(addr: SocketAddr) -> io::Result<UdpSocket> {
    let socket = UdpSocket::bind(addr).await?;
    raise_buffers(&SockRef::from(&socket), UDP_BUFFER)?;
    Ok(socket)
}

/// A Unix datagram socket bound to `path` (or unbound, for `None`), its buffers raised to
/// [`UXD_BUFFER`] as hio raises them. Must be called within a tokio runtime.
pub fn bind_uxd(path: Option<&Path>) -> io::Result<UnixDatagram> {
    let socket = match path {
        Some(path) => UnixDatagram::bind(path)?,
        None => UnixDatagram::unbound()?,
    };
    raise_buffers(&SockRef::from(&socket), UXD_BUFFER)?;
    Ok(socket)
}

fn raise_buffers(socket: &SockRef<'_>, size: usize) -> io::Result<()> {
    if socket.recv_buffer_size()? < size {
        socket.set_recv_buffer_size(size)?;
    }
    if socket.send_buffer_size()? < size {
        socket.set_send_buffer_size(size)?;
    }
    Ok(())
}

/// A datagram socket: what the [`Sender`](crate::Sender) and [`Receiver`](crate::Receiver)
/// drive. Implemented for tokio's `UdpSocket` and `UnixDatagram`, and for
/// [`MemoryLink`](crate::MemoryLink).
pub trait Link: Send + Sync + 'static {
    /// A peer's address: where grams go, and where they came from.
    type Addr: Clone + Eq + Hash + fmt::Debug + Send + Sync + Unpin + 'static;

    /// The gram size hio uses on this kind of socket (1240 for UDP, 65535 for Unix).
    const GRAM_SIZE: usize;

    /// The largest datagram sent or received on this kind of socket (65507 for UDP; for
    /// Unix, [`UXD_BUFFER`], the most hio receives there).
    const MAX_GRAM_SIZE: usize;

    /// Sends one datagram to `dst`, waiting until the socket can take it. Any number of
    /// tasks may send on one link at once (each waits its own turn: tokio's `poll_send_to`
    /// would keep only the last waker, so this is an async function).
    fn send_to<'a>(
        &'a self,
        datagram: &'a [u8],
        dst: &'a Self::Addr,
    ) -> impl Future<Output = io::Result<usize>> + Send + 'a;

    /// Receives one datagram into `buf`, and says where it came from.
    fn poll_recv_from(
        &self,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<Self::Addr>>;
}

impl Link for UdpSocket {
    type Addr = SocketAddr;
    const GRAM_SIZE: usize = 1240;
    const MAX_GRAM_SIZE: usize = 65507;

    fn send_to<'a>(
        &'a self,
        datagram: &'a [u8],
        dst: &'a SocketAddr,
    ) -> impl Future<Output = io::Result<usize>> + Send + 'a {
        UdpSocket::send_to(self, datagram, *dst)
    }

    fn poll_recv_from(
        &self,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<SocketAddr>> {
        UdpSocket::poll_recv_from(self, cx, buf)
    }
}

/// Unix datagram addresses are paths. A sender whose socket is not bound to one (hio's
/// `src` is `None` then) has the empty path as its address, and nothing can be sent to it.
impl Link for UnixDatagram {
    type Addr = PathBuf;
    const GRAM_SIZE: usize = 65535;
    const MAX_GRAM_SIZE: usize = UXD_BUFFER;

    async fn send_to(&self, datagram: &[u8], dst: &PathBuf) -> io::Result<usize> {
        if dst.as_os_str().is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "an unbound Unix socket has no address to send to",
            ));
        }
        UnixDatagram::send_to(self, datagram, dst).await
    }

    fn poll_recv_from(
        &self,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<PathBuf>> {
        UnixDatagram::poll_recv_from(self, cx, buf).map_ok(|addr| {
            addr.as_pathname()
                .map(Path::to_path_buf)
                .unwrap_or_default()
        })
    }
}
