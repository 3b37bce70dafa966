//! [`MemoryNet`] and [`MemoryLink`]: datagram sockets in memory, for tests.

use std::collections::HashMap;
use std::io;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::io::ReadBuf;
use tokio::sync::mpsc;
use tracing::debug;

use crate::Link;

type Inbox = mpsc::Sender<(Bytes, u64)>;

/// A network of in-memory datagram sockets, each bound to a number.
///
/// Like a real datagram network it drops rather than blocks: a datagram sent to a socket
/// whose queue is full is lost (with a `debug` event). Sending to a number nothing is bound
/// to fails with `ConnectionRefused`, as UDP on loopback does.
#[derive(Debug, Clone)]
pub struct MemoryNet {
    sockets: Arc<Mutex<HashMap<u64, Inbox>>>,
    capacity: usize,
}

impl MemoryNet {
    /// A network whose sockets each queue at most `capacity` datagrams.
    pub fn new(capacity: usize) -> MemoryNet {
        MemoryNet {
            sockets: Arc::default(),
            capacity: capacity.max(1),
        }
    }

    /// A socket bound to `addr`, replacing whatever was bound there.
    pub fn bind(&self, addr: u64) -> MemoryLink {
        let (tx, rx) = mpsc::channel(self.capacity);
        self.lock().insert(addr, tx);
        MemoryLink {
            addr,
            net: self.clone(),
            inbox: Mutex::new(rx),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Inbox>> {
        self.sockets.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// One socket of a [`MemoryNet`].
#[derive(Debug)]
pub struct MemoryLink {
    addr: u64,
    net: MemoryNet,
    inbox: Mutex<mpsc::Receiver<(Bytes, u64)>>,
}

impl MemoryLink {
    /// The number it is bound to.
    pub fn addr(&self) -> u64 {
        self.addr
    }
}

impl Drop for MemoryLink {
    fn drop(&mut self) {
        let mut sockets = self.net.lock();
        if sockets.get(&self.addr).is_some_and(|tx| tx.is_closed()) {
            sockets.remove(&self.addr);
        }
    }
}

impl Link for MemoryLink {
    type Addr = u64;
    const GRAM_SIZE: usize = 65535;
    const MAX_GRAM_SIZE: usize = 65535;

    async fn send_to(&self, datagram: &[u8], dst: &u64) -> io::Result<usize> {
        let Some(inbox) = self.net.lock().get(dst).cloned() else {
            return Err(io::ErrorKind::ConnectionRefused.into());
        };
        match inbox.try_send((Bytes::copy_from_slice(datagram), self.addr)) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                debug!(dst, "memory link queue full: datagram lost");
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                return Err(io::ErrorKind::ConnectionRefused.into());
            }
        }
        Ok(datagram.len())
    }

    fn poll_recv_from(&self, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<u64>> {
        let mut inbox = self.inbox.lock().unwrap_or_else(|p| p.into_inner());
        match inbox.poll_recv(cx) {
            Poll::Ready(Some((datagram, src))) => {
                // Truncated to the buffer, as a datagram socket does.
                let n = datagram.len().min(buf.remaining());
                buf.put_slice(&datagram[..n]);
                Poll::Ready(Ok(src))
            }
            // Never: this socket holds a sender to itself through the net.
            Poll::Ready(None) => Poll::Ready(Err(io::ErrorKind::NotConnected.into())),
            Poll::Pending => Poll::Pending,
        }
    }
}
