//! [`Link`]: the datagram sockets memos travel over (UDP, Unix datagram, in memory).

use std::fmt;
use std::hash::Hash;
use std::io;
use std::net::SocketAddr;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
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
/// burst of grams is not dropped before the receiver reads it; as a [`UdpLink`](crate::UdpLink),
/// which sends and receives several grams a syscall.
pub async fn bind_udp(addr: SocketAddr) -> io::Result<crate::UdpLink> {
    let socket = UdpSocket::bind(addr).await?;
    raise_buffers(&SockRef::from(&socket), UDP_BUFFER)?;
    crate::UdpLink::new(socket)
}

/// A Unix datagram socket bound to `path` as hio binds one (or unbound, for `None`), its
/// buffers raised to [`UXD_BUFFER`] as hio raises them. Must be called within a tokio
/// runtime.
///
/// As hio's `uxding.Peer` does: a missing directory is made (owner only, `0o1700`, hio's
/// `Perm`), the socket file gets `0o755` (hio binds under umask `0o022`), and the file is
/// removed when the socket is dropped (unless another socket has taken its path since).
/// Beyond hio: a file left by a process that died (nobody receives on it) is replaced, where
/// hio fails with "address in use"; a path a live socket holds is refused.
pub fn bind_uxd(path: Option<&Path>) -> io::Result<UxdSocket> {
    let Some(path) = path else {
        let socket = UnixDatagram::unbound()?;
        raise_buffers(&SockRef::from(&socket), UXD_BUFFER)?;
        return Ok(UxdSocket { socket, file: None });
    };
    if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        if !dir.exists() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o1700)
                .create(dir)?;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o1700))?;
        }
    }
    let socket = match UnixDatagram::bind(path) {
        Err(e) if e.kind() == io::ErrorKind::AddrInUse => {
            // Nobody receives there: a dead process's file, replaced.
            let probe = std::os::unix::net::UnixDatagram::unbound()?;
            match probe.connect(path) {
                Err(refused) if refused.kind() == io::ErrorKind::ConnectionRefused => {
                    tracing::debug!(path = %path.display(), "stale socket file replaced");
                    std::fs::remove_file(path)?;
                    UnixDatagram::bind(path)?
                }
                _ => return Err(e),
            }
        }
        other => other?,
    };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))?;
    let meta = std::fs::metadata(path)?;
    raise_buffers(&SockRef::from(&socket), UXD_BUFFER)?;
    Ok(UxdSocket {
        socket,
        file: Some(SocketFile {
            path: path.to_path_buf(),
            id: (meta.dev(), meta.ino()),
        }),
    })
}

/// A Unix datagram socket made by [`bind_uxd`]: it derefs to tokio's `UnixDatagram`, and
/// removes its socket file when dropped.
#[derive(Debug)]
pub struct UxdSocket {
    socket: UnixDatagram,
    file: Option<SocketFile>,
}

/// The socket file a bound [`UxdSocket`] made, and its device and inode, so that a file
/// another socket has put at the path since is left alone.
#[derive(Debug)]
struct SocketFile {
    path: PathBuf,
    id: (u64, u64),
}

impl UxdSocket {
    /// The path it is bound to, if any.
    pub fn path(&self) -> Option<&Path> {
        self.file.as_ref().map(|file| file.path.as_path())
    }
}

impl std::ops::Deref for UxdSocket {
    type Target = UnixDatagram;

    fn deref(&self) -> &UnixDatagram {
        &self.socket
    }
}

impl Drop for UxdSocket {
    fn drop(&mut self) {
        let Some(file) = &self.file else { return };
        let ours = std::fs::metadata(&file.path).is_ok_and(|m| (m.dev(), m.ino()) == file.id);
        if ours {
            if let Err(e) = std::fs::remove_file(&file.path) {
                tracing::debug!(path = %file.path.display(), error = %e, "socket file left");
            }
        }
    }
}

impl Link for UxdSocket {
    type Addr = PathBuf;
    const GRAM_SIZE: usize = <UnixDatagram as Link>::GRAM_SIZE;
    const MAX_GRAM_SIZE: usize = <UnixDatagram as Link>::MAX_GRAM_SIZE;

    fn send_to<'a>(
        &'a self,
        datagram: &'a [u8],
        dst: &'a PathBuf,
    ) -> impl Future<Output = io::Result<usize>> + Send + 'a {
        <UnixDatagram as Link>::send_to(&self.socket, datagram, dst)
    }

    fn poll_recv_from(
        &self,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<PathBuf>> {
        <UnixDatagram as Link>::poll_recv_from(&self.socket, cx, buf)
    }
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

    /// The gram size a [`Sender`](crate::Sender) uses by default on this kind of socket:
    /// 1232 for UDP, 65535 for Unix (hio's).
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

    /// Sends one memo's `grams` to `dst`, in order. A link that can send several datagrams
    /// a syscall does (see [`UdpLink`](crate::UdpLink)); this one sends them one by one.
    fn send_grams<'a>(
        &'a self,
        grams: &'a [bytes::Bytes],
        dst: &'a Self::Addr,
    ) -> impl Future<Output = io::Result<()>> + Send + 'a {
        async move {
            for gram in grams {
                let sent = self.send_to(gram, dst).await?;
                if sent != gram.len() {
                    return Err(io::Error::new(
                        io::ErrorKind::WriteZero,
                        format!("sent {sent} of a {}-byte gram", gram.len()),
                    ));
                }
            }
            Ok(())
        }
    }

    /// Receives one datagram or more into `buf` (which is at least
    /// [`RECV_BUFFER`](crate::RECV_BUFFER) long), appending to `got` each one's place in
    /// `buf` and its source. A link that can take several a syscall does (see
    /// [`UdpLink`](crate::UdpLink)); this one takes one.
    fn poll_recv_grams(
        &self,
        cx: &mut Context<'_>,
        buf: &mut [u8],
        got: &mut Vec<(std::ops::Range<usize>, Self::Addr)>,
    ) -> Poll<io::Result<()>> {
        let mut read = ReadBuf::new(buf);
        let source = std::task::ready!(self.poll_recv_from(cx, &mut read))?;
        got.push((0..read.filled().len(), source));
        Poll::Ready(Ok(()))
    }
}

/// UDP grams default to 1232 bytes: what an IPv6 path with the minimum MTU of 1280 carries
/// after the IPv6 header (40) and the UDP header (8). hio uses 1240, which forgets the UDP
/// header and so may be fragmented on such a path; the grams differ in size only, and hio
/// takes both.
impl Link for UdpSocket {
    type Addr = SocketAddr;
    const GRAM_SIZE: usize = 1232;
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
