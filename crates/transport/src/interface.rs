//! [`Interface`]: listeners on TCP and Unix sockets (bound here, or handed over by socket
//! activation) that accept connections up to a limit and dispatch each to a handler.

use std::fmt;
use std::io;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, ToSocketAddrs, UnixListener, UnixStream};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use crate::config::Config;
use crate::connections::{Address, Connections, Credentials, Outcome, Peer, Shutdown};
use crate::{Stack, TlsInfo, TlsServer};

/// A listening socket.
#[derive(Debug)]
pub enum Listener {
    /// A TCP listener.
    Tcp(TcpListener),
    /// A Unix stream socket listener.
    Unix(UnixListener),
}

impl Listener {
    /// Binds a TCP listener.
    pub async fn tcp(addr: impl ToSocketAddrs) -> io::Result<Listener> {
        TcpListener::bind(addr).await.map(Listener::Tcp)
    }

    /// Binds a Unix socket listener at `path`.
    pub fn unix(path: impl AsRef<Path>) -> io::Result<Listener> {
        UnixListener::bind(path).map(Listener::Unix)
    }

    /// The listeners socket activation handed over (systemd's `LISTEN_FDS`, from file
    /// descriptor 3 on; `LISTEN_PID` is checked when set), TCP or Unix. Empty when there
    /// are none. Must be called within a tokio runtime.
    pub fn activated() -> io::Result<Vec<Listener>> {
        let mut fds = listenfd::ListenFd::from_env();
        let mut listeners = Vec::new();
        for i in 0..fds.len() {
            // A descriptor that is not a TCP listener is left in place: it may be a Unix one.
            let tcp = fds.take_tcp_listener(i);
            if let Ok(Some(l)) = tcp {
                l.set_nonblocking(true)?;
                listeners.push(Listener::Tcp(TcpListener::from_std(l)?));
                continue;
            }
            match fds.take_unix_listener(i) {
                Ok(Some(l)) => {
                    l.set_nonblocking(true)?;
                    listeners.push(Listener::Unix(UnixListener::from_std(l)?));
                }
                Ok(None) => {}
                Err(e) => {
                    return Err(io::Error::new(
                        e.kind(),
                        format!(
                            "descriptor {} is neither a TCP nor a Unix stream listener: {}",
                            3 + i,
                            tcp.err().map_or(e.to_string(), |tcp| format!("{tcp}; {e}"))
                        ),
                    ));
                }
            }
        }
        Ok(listeners)
    }

    /// Where it listens.
    pub fn local_addr(&self) -> io::Result<Address> {
        Ok(match self {
            Listener::Tcp(l) => Address::Tcp(l.local_addr()?),
            Listener::Unix(l) => Address::Unix(l.local_addr()?.as_pathname().map(Path::to_owned)),
        })
    }

    /// Accepts one connection: the stack over it, and its peer (id not yet assigned).
    async fn accept(&self) -> io::Result<(Stack, Peer)> {
        match self {
            Listener::Tcp(l) => {
                let (stream, addr) = l.accept().await?;
                let peer = peer(Address::Tcp(addr), None, stream.as_raw_fd());
                // Small packets should not wait for Nagle; a failure here is harmless.
                let _ = stream.set_nodelay(true);
                Ok((Stack::new(stream), peer))
            }
            Listener::Unix(l) => {
                let (stream, addr) = l.accept().await?;
                let credentials = credentials(&stream);
                let addr = Address::Unix(addr.as_pathname().map(Path::to_owned));
                let peer = peer(addr, credentials, stream.as_raw_fd());
                Ok((Stack::new(stream), peer))
            }
        }
    }
}

impl From<TcpListener> for Listener {
    fn from(l: TcpListener) -> Self {
        Listener::Tcp(l)
    }
}

impl From<UnixListener> for Listener {
    fn from(l: UnixListener) -> Self {
        Listener::Unix(l)
    }
}

fn peer(addr: Address, credentials: Option<Credentials>, fd: i32) -> Peer {
    Peer {
        id: 0,
        addr,
        credentials,
        fd,
        tls_subject: None,
    }
}

fn credentials(stream: &UnixStream) -> Option<Credentials> {
    match stream.peer_cred() {
        Ok(c) => Some(Credentials {
            uid: c.uid(),
            gid: c.gid(),
            pid: c.pid(),
        }),
        Err(e) => {
            debug!(error = %e, "no peer credentials");
            None
        }
    }
}

/// A connection handed to a handler: its stack (TLS already pushed when the interface
/// serves TLS), who the peer is, and the cue that shutdown has begun.
#[derive(Debug)]
pub struct Accepted {
    /// The connection's stack.
    pub stack: Stack,
    /// Who is at the other end.
    pub peer: Peer,
    /// Cancelled when shutdown begins: finish up, the connection will be cut at the deadline.
    pub closing: CancellationToken,
}

/// A server's listeners (fault.kernel.io's Interface): accepts connections on each, up to
/// [`Config::max_connections`] at once, optionally pushes TLS on them, and hands each to a
/// handler in a task of its own, registered in [`Connections`].
///
/// ```
/// use strata_transport::{Interface, Listener};
/// use tokio::io::{AsyncReadExt, AsyncWriteExt};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> std::io::Result<()> {
/// let mut interface = Interface::new(Default::default());
/// let listener = Listener::tcp("127.0.0.1:0").await?;
/// let addr = listener.local_addr()?.to_string();
/// interface.listen(listener);
/// let serving = interface.serve(|mut c: strata_transport::Accepted| async move {
///     let mut byte = [0; 1];
///     if c.stack.read_exact(&mut byte).await.is_ok() {
///         let _ = c.stack.write_all(&byte).await;
///     }
/// });
/// let mut client = tokio::net::TcpStream::connect(addr).await?;
/// client.write_all(b"x").await?;
/// let mut echoed = [0; 1];
/// client.read_exact(&mut echoed).await?;
/// assert_eq!(&echoed, b"x");
/// let report = serving.shutdown(std::time::Duration::from_secs(1)).await;
/// assert_eq!(report.cancelled, 0);
/// # Ok(())
/// # }
/// ```
pub struct Interface {
    config: Config,
    listeners: Vec<Listener>,
    tls: Option<TlsServer>,
    connections: Connections,
}

impl fmt::Debug for Interface {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Interface")
            .field("config", &self.config)
            .field("listeners", &self.listeners)
            .field("tls", &self.tls.is_some())
            .finish()
    }
}

impl Interface {
    /// An interface with no listener yet.
    pub fn new(config: Config) -> Interface {
        Interface {
            config,
            listeners: Vec::new(),
            tls: None,
            connections: Connections::new(),
        }
    }

    /// Adds a listener.
    pub fn listen(&mut self, listener: Listener) {
        self.listeners.push(listener);
    }

    /// Pushes TLS (this server side) on every accepted connection before its handler runs.
    /// A connection whose handshake fails is dropped and counted as failed; the listeners
    /// keep serving.
    pub fn tls(&mut self, server: TlsServer) {
        self.tls = Some(server);
    }

    /// The registry of this interface's connections.
    pub fn connections(&self) -> &Connections {
        &self.connections
    }

    /// Starts accepting on every listener, each connection dispatched to `handler` in a task
    /// of its own. Must be called within a tokio runtime.
    pub fn serve<H, F>(self, handler: H) -> Serving
    where
        H: Fn(Accepted) -> F + Send + Sync + 'static,
        F: Future<Output = ()> + Send + 'static,
    {
        let stop = CancellationToken::new();
        let permits = Arc::new(Semaphore::new(self.config.max_connections.max(1)));
        let handler = Arc::new(handler);
        let mut accepting = JoinSet::new();
        for listener in self.listeners {
            let accept = Accept {
                listener,
                permits: Arc::clone(&permits),
                connections: self.connections.clone(),
                tls: self.tls.clone(),
                handshake_timeout: self.config.handshake_timeout,
                handler: Arc::clone(&handler),
            };
            let stop = stop.clone();
            accepting.spawn(async move {
                tokio::select! {
                    () = stop.cancelled() => {}
                    () = accept.run() => {}
                }
            });
        }
        Serving {
            connections: self.connections,
            stop,
            accepting,
        }
    }
}

/// One listener's accept loop.
struct Accept<H> {
    listener: Listener,
    permits: Arc<Semaphore>,
    connections: Connections,
    tls: Option<TlsServer>,
    handshake_timeout: Duration,
    handler: Arc<H>,
}

impl<H, F> Accept<H>
where
    H: Fn(Accepted) -> F + Send + Sync + 'static,
    F: Future<Output = ()> + Send + 'static,
{
    async fn run(self) {
        loop {
            // At the limit, wait for a connection to end before accepting another.
            let Ok(permit) = Arc::clone(&self.permits).acquire_owned().await else {
                return;
            };
            let (stack, peer) = match self.listener.accept().await {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of descriptors, a connection reset before accept: wait a little
                    // rather than spin, and go on.
                    warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let (tls, timeout) = (self.tls.clone(), self.handshake_timeout);
            let handler = Arc::clone(&self.handler);
            let closing = self.connections.closing();
            self.connections.spawn(peer, move |mut peer, mut guard| async move {
                let _permit = permit;
                let mut stack = stack;
                if let Some(tls) = tls {
                    let pushed = tokio::time::timeout(timeout, stack.push(tls)).await;
                    match pushed {
                        Ok(Ok(())) => {
                            peer.tls_subject =
                                stack.get::<TlsInfo>().and_then(|i| i.peer_subject.clone());
                            let connections = guard.connections();
                            connections.set_tls_subject(guard.id(), peer.tls_subject.clone());
                        }
                        Ok(Err(e)) => {
                            debug!(%peer, error = %e, "TLS handshake failed: connection dropped");
                            guard.set(Outcome::Failed);
                            return;
                        }
                        Err(_) => {
                            debug!(%peer, ?timeout, "TLS handshake timed out: connection dropped");
                            guard.set(Outcome::Failed);
                            return;
                        }
                    }
                }
                handler(Accepted {
                    stack,
                    peer,
                    closing,
                })
                .await;
                guard.set(Outcome::Finished);
            });
        }
    }
}

/// An interface at work: its listeners accept until [`shutdown`](Serving::shutdown).
/// Dropping it stops accepting at once and leaves live connections running.
#[derive(Debug)]
pub struct Serving {
    connections: Connections,
    stop: CancellationToken,
    accepting: JoinSet<()>,
}

impl Serving {
    /// The registry of the interface's connections.
    pub fn connections(&self) -> &Connections {
        &self.connections
    }

    /// Graceful shutdown: stops accepting, lets live connections end within `deadline`
    /// (their `closing` token is cancelled), then cuts the rest.
    pub async fn shutdown(mut self, deadline: Duration) -> Shutdown {
        self.stop.cancel();
        while self.accepting.join_next().await.is_some() {}
        let report = self.connections.shutdown(deadline).await;
        debug!(?report, "shut down");
        report
    }
}
