//! [`Peer`]: who is at the other end of a stream, as far as the transport knows.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

/// A socket address of either family RPC runs over here.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PeerAddr {
    /// An IPv4 or IPv6 address and port.
    Inet(SocketAddr),
    /// A Unix socket, by its path; `None` for an unnamed one (which cannot be answered
    /// over a datagram socket).
    Unix(Option<PathBuf>),
}

impl fmt::Display for PeerAddr {
    /// `127.0.0.1:111`, `unix:/run/rpcbind.sock`, `unix:(unnamed)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PeerAddr::Inet(addr) => addr.fmt(f),
            PeerAddr::Unix(Some(path)) => write!(f, "unix:{}", path.display()),
            PeerAddr::Unix(None) => f.write_str("unix:(unnamed)"),
        }
    }
}

impl From<SocketAddr> for PeerAddr {
    fn from(addr: SocketAddr) -> PeerAddr {
        PeerAddr::Inet(addr)
    }
}

#[cfg(unix)]
impl From<tokio::net::unix::SocketAddr> for PeerAddr {
    fn from(addr: tokio::net::unix::SocketAddr) -> PeerAddr {
        PeerAddr::Unix(addr.as_pathname().map(Into::into))
    }
}

/// What a stream transporter knows of its peer (Ocamlnet's `getpeername`,
/// `peer_user_name` and `file_descr`). Each is `None` when the stream does not say: an
/// in-memory pipe knows nothing; a TLS layer below supplies the user name from the
/// client certificate.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Peer {
    /// The peer's address.
    pub addr: Option<PeerAddr>,
    /// The name the stream's own authentication established (a certificate subject).
    pub user_name: Option<String>,
    /// The socket's file descriptor, e.g. for `SO_PEERCRED`. Only for looking at: the
    /// stream owns it.
    #[cfg(unix)]
    pub fd: Option<std::os::fd::RawFd>,
}

impl Peer {
    /// What a TCP stream tells: the peer's address and the descriptor.
    pub fn of_tcp(stream: &tokio::net::TcpStream) -> Peer {
        Peer {
            addr: stream.peer_addr().ok().map(PeerAddr::Inet),
            user_name: None,
            #[cfg(unix)]
            fd: Some(std::os::fd::AsRawFd::as_raw_fd(stream)),
        }
    }

    /// What a Unix stream tells: the peer's path, if it has one, and the descriptor.
    #[cfg(unix)]
    pub fn of_unix(stream: &tokio::net::UnixStream) -> Peer {
        Peer {
            addr: stream.peer_addr().ok().map(PeerAddr::from),
            user_name: None,
            fd: Some(std::os::fd::AsRawFd::as_raw_fd(stream)),
        }
    }
}
