//! [`Connections`]: the registry of a server's live connections, with each peer's identity,
//! the counts, and graceful shutdown.

use std::fmt;
use std::net::SocketAddr;
use std::os::fd::RawFd;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use dashmap::DashMap;
use tokio::task::AbortHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::debug;

/// A socket's address: where a listener listens, or where a peer connected from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Address {
    /// A TCP address (a listener's with the port the system chose, when bound to port 0).
    Tcp(SocketAddr),
    /// A Unix socket path; `None` for an unnamed socket (clients rarely bind one).
    Unix(Option<PathBuf>),
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Address::Tcp(addr) => write!(f, "{addr}"),
            Address::Unix(Some(path)) => write!(f, "unix:{}", path.display()),
            Address::Unix(None) => write!(f, "unix:(unnamed)"),
        }
    }
}

/// A Unix socket peer's credentials, as the kernel reports them (`SO_PEERCRED`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Credentials {
    /// The peer process's user id.
    pub uid: u32,
    /// Its group id.
    pub gid: u32,
    /// Its process id, where the system reports one.
    pub pid: Option<i32>,
}

/// Who is at the other end of an accepted connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    /// The connection's number in its registry, unique for the registry's life.
    pub id: u64,
    /// Where it connected from.
    pub addr: Address,
    /// A Unix socket peer's credentials.
    pub credentials: Option<Credentials>,
    /// The socket's file descriptor (for logging and socket options; the connection owns it).
    pub fd: RawFd,
    /// The subject of the client's TLS certificate, once a TLS handshake that asked for one
    /// is done (`CN=alice`).
    pub tls_subject: Option<String>,
}

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "connection {} from {} fd={}",
            self.id, self.addr, self.fd
        )?;
        if let Some(c) = &self.credentials {
            write!(f, " uid={} gid={}", c.uid, c.gid)?;
            if let Some(pid) = c.pid {
                write!(f, " pid={pid}")?;
            }
        }
        if let Some(subject) = &self.tls_subject {
            write!(f, " tls={subject}")?;
        }
        Ok(())
    }
}

/// A registry's counts so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Connections accepted.
    pub accepted: u64,
    /// Connections still live.
    pub live: u64,
    /// Connections whose handler ran to its end.
    pub finished: u64,
    /// Connections that failed before their handler ran (a TLS handshake that failed or
    /// timed out).
    pub failed: u64,
    /// Connections cut at shutdown because they outlived its deadline, or whose handler
    /// panicked.
    pub cancelled: u64,
}

/// How a graceful shutdown went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shutdown {
    /// Connections that were live when it began and ended within the deadline.
    pub finished: usize,
    /// Connections cut at the deadline.
    pub cancelled: usize,
}

struct Entry {
    peer: Peer,
    abort: Option<AbortHandle>,
}

struct Registry {
    live: DashMap<u64, Entry>,
    next_id: AtomicU64,
    accepted: AtomicU64,
    finished: AtomicU64,
    failed: AtomicU64,
    cancelled: AtomicU64,
    tasks: TaskTracker,
    closing: CancellationToken,
}

/// The live connections of a server (fault.kernel.io's Connections): each peer's identity,
/// counts, and a graceful shutdown. Cheap to clone; clones share the registry.
///
/// Every connection runs in a task the registry tracks. A connection leaves the registry
/// when its task ends, however it ends (finished, failed, panicked, cancelled), so the
/// count of live connections always comes back to zero.
#[derive(Clone)]
pub struct Connections {
    registry: Arc<Registry>,
}

impl fmt::Debug for Connections {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connections")
            .field("counts", &self.counts())
            .finish()
    }
}

impl Default for Connections {
    fn default() -> Self {
        Connections::new()
    }
}

impl Connections {
    /// An empty registry.
    pub fn new() -> Connections {
        Connections {
            registry: Arc::new(Registry {
                live: DashMap::new(),
                next_id: AtomicU64::new(1),
                accepted: AtomicU64::new(0),
                finished: AtomicU64::new(0),
                failed: AtomicU64::new(0),
                cancelled: AtomicU64::new(0),
                tasks: TaskTracker::new(),
                closing: CancellationToken::new(),
            }),
        }
    }

    /// The counts so far.
    pub fn counts(&self) -> Counts {
        let r = &self.registry;
        Counts {
            accepted: r.accepted.load(Ordering::Relaxed),
            live: r.live.len() as u64,
            finished: r.finished.load(Ordering::Relaxed),
            failed: r.failed.load(Ordering::Relaxed),
            cancelled: r.cancelled.load(Ordering::Relaxed),
        }
    }

    /// How many connections are live.
    pub fn len(&self) -> usize {
        self.registry.live.len()
    }

    /// Whether no connection is live.
    pub fn is_empty(&self) -> bool {
        self.registry.live.is_empty()
    }

    /// How many connection tasks are still running (a task outlives its registry entry
    /// only while it unwinds).
    pub fn tasks(&self) -> usize {
        self.registry.tasks.len()
    }

    /// The live peers, in no particular order.
    pub fn peers(&self) -> Vec<Peer> {
        self.registry
            .live
            .iter()
            .map(|e| e.value().peer.clone())
            .collect()
    }

    /// The peer of live connection `id`.
    pub fn get(&self, id: u64) -> Option<Peer> {
        self.registry.live.get(&id).map(|e| e.peer.clone())
    }

    /// Cancelled when shutdown begins: a connection's cue to finish what it is doing.
    pub fn closing(&self) -> CancellationToken {
        self.registry.closing.clone()
    }

    /// Registers a new connection from `peer` (its `id` is set here) and runs `work` for it
    /// in a tracked task. The entry leaves the registry when `work` ends or is cancelled.
    pub(crate) fn spawn<F>(&self, mut peer: Peer, work: impl FnOnce(Peer, Guard) -> F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let r = &self.registry;
        let id = r.next_id.fetch_add(1, Ordering::Relaxed);
        peer.id = id;
        r.accepted.fetch_add(1, Ordering::Relaxed);
        debug!(%peer, "accepted");
        r.live.insert(
            id,
            Entry {
                peer: peer.clone(),
                abort: None,
            },
        );
        let guard = Guard {
            connections: self.clone(),
            id,
            outcome: Outcome::Cancelled,
        };
        let task = r.tasks.spawn(work(peer, guard));
        // The task may be over already, its entry gone: then there is nothing to abort.
        if let Some(mut entry) = r.live.get_mut(&id) {
            entry.abort = Some(task.abort_handle());
        }
    }

    /// Records what the TLS handshake of connection `id` said of its peer.
    pub(crate) fn set_tls_subject(&self, id: u64, subject: Option<String>) {
        if let Some(mut entry) = self.registry.live.get_mut(&id) {
            entry.peer.tls_subject = subject;
        }
    }

    /// Graceful shutdown of every live connection: `closing` is cancelled, connections have
    /// until `deadline` to end, then the rest are cut (their tasks aborted).
    ///
    /// Stop accepting first ([`Serving::shutdown`](crate::Serving::shutdown) does both).
    pub async fn shutdown(&self, deadline: Duration) -> Shutdown {
        let r = &self.registry;
        let live = r.live.len();
        r.closing.cancel();
        r.tasks.close();
        let in_time = tokio::time::timeout(deadline, r.tasks.wait()).await.is_ok();
        let mut cancelled = 0;
        if !in_time {
            for entry in r.live.iter() {
                if let Some(abort) = &entry.abort {
                    debug!(peer = %entry.peer, "cut at the shutdown deadline");
                    abort.abort();
                    cancelled += 1;
                }
            }
            r.tasks.wait().await;
        }
        Shutdown {
            finished: live.saturating_sub(cancelled),
            cancelled,
        }
    }
}

/// How a connection's task ended, as its guard records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Finished,
    Failed,
    /// Dropped before either: cut at shutdown, or its handler panicked.
    Cancelled,
}

/// Held by a connection's task: when it drops (the task ended, however), the connection
/// leaves the registry.
pub(crate) struct Guard {
    connections: Connections,
    id: u64,
    outcome: Outcome,
}

impl Guard {
    pub fn id(&self) -> u64 {
        self.id
    }

    pub fn connections(&self) -> &Connections {
        &self.connections
    }

    pub fn set(&mut self, outcome: Outcome) {
        self.outcome = outcome;
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let r = &self.connections.registry;
        let counter = match self.outcome {
            Outcome::Finished => &r.finished,
            Outcome::Failed => &r.failed,
            Outcome::Cancelled => &r.cancelled,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        if let Some((_, entry)) = r.live.remove(&self.id) {
            debug!(peer = %entry.peer, outcome = ?self.outcome, "connection ended");
        }
    }
}
