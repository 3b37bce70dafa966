//! [`Trust`]: whom a receiver believes (keys, allow-list, `authic`), and [`TrustHandle`], to
//! change it while the receiver runs.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::{Config, Keys, Vid};

/// Whom a receiver believes: hio's `keep` (verification half) and `authic`, and an
/// allow-list of signers beyond hio.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Trust {
    /// The keys behind the vids signed grams name ([`Config::keys`]).
    pub keys: Keys,
    /// When set, signed memos are accepted only from these vids ([`Config::allowed`]).
    pub allowed: Option<HashSet<Vid>>,
    /// Accept signed grams only ([`Config::authic`]).
    pub authic: bool,
}

impl Trust {
    /// The trust `config` starts with.
    pub fn of(config: &Config) -> Trust {
        Trust {
            keys: config.keys.clone(),
            allowed: config.allowed.clone(),
            authic: config.authic,
        }
    }
}

/// A handle on a running [`Receiver`](crate::Receiver)'s trust: [`set`](TrustHandle::set)
/// replaces its keys, allow-list and `authic` at once, taking effect from the next datagram
/// it reads. Memos whose first gram was already verified keep their signer. Cheap to clone;
/// the receiver looks for a change with one atomic load a poll.
///
/// ```
/// use std::sync::Arc;
/// use memogram::{Config, Keys, MemoryNet, Receiver, Trust, Vid, VidCode};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let net = MemoryNet::new(8);
/// let receiver = Receiver::new(Arc::new(net.bind(1)), Config::default());
/// let trust = receiver.trust();
/// let mut keys = Keys::default();
/// keys.insert(Vid::new(VidCode::E, [1; 32]), [2; 32]);
/// trust.set(Trust { keys, allowed: None, authic: true });
/// assert!(trust.get().authic);
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct TrustHandle {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    /// Bumped by every `set`.
    version: AtomicU64,
    trust: Mutex<Trust>,
}

impl TrustHandle {
    pub(crate) fn new(trust: Trust) -> TrustHandle {
        TrustHandle {
            shared: Arc::new(Shared {
                version: AtomicU64::new(0),
                trust: Mutex::new(trust),
            }),
        }
    }

    /// Replaces the receiver's trust.
    pub fn set(&self, trust: Trust) {
        *self.shared.trust.lock().unwrap_or_else(|p| p.into_inner()) = trust;
        self.shared.version.fetch_add(1, Ordering::Release);
    }

    /// The trust as last set.
    pub fn get(&self) -> Trust {
        self.shared
            .trust
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The trust, if it changed since `seen` (then `seen` is brought up to date).
    pub(crate) fn changed(&self, seen: &mut u64) -> Option<Trust> {
        let version = self.shared.version.load(Ordering::Acquire);
        if version == *seen {
            return None;
        }
        *seen = version;
        Some(self.get())
    }
}
