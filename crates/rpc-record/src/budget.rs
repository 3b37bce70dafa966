//! [`Budget`]: bytes that the connections of one server may hold between them, and the
//! [`Charge`] each connection holds against it.

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::PollSemaphore;
use tracing::trace;

/// The bytes that every connection of a server may hold at once: records being read,
/// replies not yet sent, and the read window of each connection. A connection reads only
/// what its share lets it; when the budget is spent it stops reading (its peer's bytes wait
/// in the kernel) until another connection gives bytes back, and no connection is failed
/// for it. Connections waiting for bytes are served in turn.
///
/// Cheap to clone; clones share the budget. Give one to every stream of a server with
/// [`RecordStream::with_budget`](crate::RecordStream::with_budget).
///
/// ```
/// use rpc_record::Budget;
///
/// let budget = Budget::new(64 * 1024 * 1024);
/// assert_eq!(budget.available(), 64 * 1024 * 1024);
/// ```
#[derive(Clone)]
pub struct Budget {
    bytes: Arc<Semaphore>,
    capacity: usize,
}

impl fmt::Debug for Budget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Budget")
            .field("capacity", &self.capacity)
            .field("available", &self.available())
            .finish()
    }
}

impl Budget {
    /// A budget of `bytes` (at most `usize::MAX >> 3`, tokio's limit; more counts as that).
    pub fn new(bytes: usize) -> Budget {
        let capacity = bytes.min(Semaphore::MAX_PERMITS);
        Budget {
            bytes: Arc::new(Semaphore::new(capacity)),
            capacity,
        }
    }

    /// The budget's size.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The bytes no connection holds now.
    pub fn available(&self) -> usize {
        self.bytes.available_permits()
    }

    pub(crate) fn charge(&self) -> Charge {
        Charge {
            bytes: PollSemaphore::new(Arc::clone(&self.bytes)),
            capacity: self.capacity,
            held: None,
        }
    }
}

/// What one connection holds of a [`Budget`]; given back when dropped.
pub(crate) struct Charge {
    bytes: PollSemaphore,
    capacity: usize,
    held: Option<OwnedSemaphorePermit>,
}

impl fmt::Debug for Charge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Charge({})", self.held())
    }
}

impl Charge {
    /// The bytes held.
    pub fn held(&self) -> usize {
        self.held.as_ref().map_or(0, |p| p.num_permits())
    }

    /// Holds at least `bytes`, or the whole budget when it is smaller: `Pending` (the task
    /// woken in turn) until the budget has room.
    pub fn poll_hold(&mut self, cx: &mut Context<'_>, bytes: usize) -> Poll<()> {
        let bytes = bytes.min(self.capacity);
        let held = self.held();
        if bytes <= held {
            return Poll::Ready(());
        }
        // A stream's wants are far below 4 GiB; a want above it waits for ever, never panics.
        let more = u32::try_from(bytes - held).unwrap_or(u32::MAX);
        match self.bytes.poll_acquire_many(cx, more) {
            Poll::Ready(Some(permit)) => {
                match &mut self.held {
                    Some(held) => held.merge(permit),
                    None => self.held = Some(permit),
                }
                Poll::Ready(())
            }
            // The semaphore is never closed.
            Poll::Ready(None) => Poll::Pending,
            Poll::Pending => {
                trace!(held, wanted = bytes, "budget spent: reading waits");
                Poll::Pending
            }
        }
    }

    /// Gives back what is held beyond `bytes`.
    pub fn release_to(&mut self, bytes: usize) {
        let Some(held) = &mut self.held else { return };
        let excess = held.num_permits().saturating_sub(bytes);
        if excess > 0 {
            drop(held.split(excess));
        }
    }
}
