//! Valves: obstruction made visible.
//!
//! fault.kernel.flows keys every obstruction by who made it and stores a `Condition` naming
//! why, so a stalled flow can explain itself; it reopens only when the last obstruction
//! clears. A [`Valve`] keeps that and makes the clearing RAII: each [`Hold`] carries a
//! [`Reason`] and releases it when dropped, so a forgotten `f_clear` cannot leak (the lesson of
//! h2's leaked stream capacity).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use tokio::sync::watch;

/// Why a flow is held: who holds it and a readable detail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reason {
    /// The party holding the flow, e.g. `"writer"` or `"operator"`.
    pub by: Cow<'static, str>,
    /// What the party is waiting for, e.g. `"64 KiB queued, limit 64 KiB"`.
    pub detail: Cow<'static, str>,
}

impl Reason {
    /// A reason from a holder and a detail.
    pub fn new(by: impl Into<Cow<'static, str>>, detail: impl Into<Cow<'static, str>>) -> Self {
        Reason {
            by: by.into(),
            detail: detail.into(),
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.by, self.detail)
    }
}

/// One current hold on a valve, as [`Valve::holds`] lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HoldInfo {
    /// Why the flow is held.
    pub reason: Reason,
    /// When the hold was taken.
    pub since: Instant,
}

#[derive(Debug)]
struct Holds {
    next_id: u64,
    by_id: BTreeMap<u64, HoldInfo>,
}

#[derive(Debug)]
struct Shared {
    name: Cow<'static, str>,
    holds: Mutex<Holds>,
    open: watch::Sender<bool>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Holds> {
        // A panic while the lock was held cannot leave the map inconsistent (every update is a
        // single insert or remove), so a poisoned lock is still safe to use.
        self.holds
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A shared obstruction point: open while nobody holds it, closed while anyone does.
///
/// Cloning gives another handle to the same valve. Sources await [`opened`](Valve::opened)
/// before producing; anyone who must stop the flow takes a [`hold`](Valve::hold) and drops it
/// to release. The valve closes on the first hold and opens when the last one drops, and
/// [`holds`](Valve::holds) says who holds it and since when.
///
/// ```
/// use kernel_flows::{Reason, Valve};
///
/// let valve = Valve::new("tx");
/// let queue_full = valve.hold(Reason::new("writer", "16 frames queued, limit 16"));
/// let paused = valve.hold(Reason::new("operator", "paused from the console"));
/// assert!(!valve.is_open());
/// assert_eq!(valve.holds().len(), 2);
///
/// drop(queue_full);
/// assert!(!valve.is_open(), "still held by the operator");
/// drop(paused);
/// assert!(valve.is_open());
/// ```
#[derive(Debug, Clone)]
pub struct Valve {
    shared: Arc<Shared>,
}

/// A hold on a [`Valve`]; dropping it releases the hold.
#[must_use = "the hold is released as soon as it is dropped"]
#[derive(Debug)]
pub struct Hold {
    shared: Arc<Shared>,
    id: u64,
}

impl Valve {
    /// An open valve; `name` appears in trace events.
    pub fn new(name: impl Into<Cow<'static, str>>) -> Self {
        let (open, _) = watch::channel(true);
        Valve {
            shared: Arc::new(Shared {
                name: name.into(),
                holds: Mutex::new(Holds {
                    next_id: 0,
                    by_id: BTreeMap::new(),
                }),
                open,
            }),
        }
    }

    /// Holds the flow for `reason` until the returned [`Hold`] is dropped.
    pub fn hold(&self, reason: Reason) -> Hold {
        let mut holds = self.shared.lock();
        let id = holds.next_id;
        holds.next_id += 1;
        let first = holds.by_id.is_empty();
        tracing::trace!(valve = %self.shared.name, %reason, "hold");
        holds.by_id.insert(
            id,
            HoldInfo {
                reason,
                since: Instant::now(),
            },
        );
        if first {
            tracing::debug!(valve = %self.shared.name, "valve closed");
            self.shared.open.send_replace(false);
        }
        Hold {
            shared: Arc::clone(&self.shared),
            id,
        }
    }

    /// Whether nobody holds the valve.
    pub fn is_open(&self) -> bool {
        *self.shared.open.borrow()
    }

    /// Waits until the valve is open; ready at once if it is. Cancel-safe.
    pub async fn opened(&self) {
        let mut open = self.shared.open.subscribe();
        // The sender lives in `self.shared`, which outlives this future, so the wait can only
        // end with the valve open.
        let _ = open.wait_for(|open| *open).await;
    }

    /// Who holds the valve and since when, oldest first.
    pub fn holds(&self) -> Vec<HoldInfo> {
        self.shared.lock().by_id.values().cloned().collect()
    }

    /// The name given to [`Valve::new`].
    pub fn name(&self) -> &str {
        &self.shared.name
    }
}

impl fmt::Display for Valve {
    /// One line: the name, then `open`, or `held by` and each reason.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let holds = self.shared.lock();
        if holds.by_id.is_empty() {
            return write!(f, "valve {} open", self.shared.name);
        }
        write!(f, "valve {} held by", self.shared.name)?;
        for (i, info) in holds.by_id.values().enumerate() {
            let sep = if i == 0 { " " } else { "; " };
            write!(f, "{sep}{}", info.reason)?;
        }
        Ok(())
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        let mut holds = self.shared.lock();
        holds.by_id.remove(&self.id);
        if holds.by_id.is_empty() {
            tracing::debug!(valve = %self.shared.name, "valve opened");
            self.shared.open.send_replace(true);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::FutureExt;
    use proptest::prelude::*;

    #[test]
    fn holds_list_reasons_oldest_first_and_display_in_one_line() {
        let valve = Valve::new("tx");
        assert_eq!(valve.to_string(), "valve tx open");
        let _a = valve.hold(Reason::new("writer", "queue full"));
        let _b = valve.hold(Reason::new("operator", "paused"));
        let holds = valve.holds();
        assert_eq!(holds[0].reason.by, "writer");
        assert_eq!(holds[1].reason.by, "operator");
        assert!(holds[0].since <= holds[1].since);
        assert_eq!(
            valve.to_string(),
            "valve tx held by writer: queue full; operator: paused"
        );
    }

    #[tokio::test]
    async fn opened_waits_for_the_last_release() {
        let valve = Valve::new("rx");
        let hold = valve.hold(Reason::new("test", "held"));
        let waiter = tokio::spawn({
            let valve = valve.clone();
            async move { valve.opened().await }
        });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        drop(hold);
        tokio::time::timeout(std::time::Duration::from_secs(5), waiter)
            .await
            .expect("opened() resolves once the hold drops")
            .unwrap();
    }

    proptest! {
        /// Whatever order holds are taken and dropped in, the valve is open exactly when no
        /// hold is alive, and `opened()` is ready exactly then.
        #[test]
        fn valve_opens_only_when_the_last_hold_drops(ops in proptest::collection::vec(any::<(bool, u8)>(), 1..64)) {
            let valve = Valve::new("prop");
            let mut alive: Vec<Hold> = Vec::new();
            for (take, pick) in ops {
                if take || alive.is_empty() {
                    alive.push(valve.hold(Reason::new("p", format!("{pick}"))));
                } else {
                    let index = usize::from(pick) % alive.len();
                    drop(alive.swap_remove(index));
                }
                prop_assert_eq!(valve.is_open(), alive.is_empty());
                prop_assert_eq!(valve.holds().len(), alive.len());
                prop_assert_eq!(valve.opened().now_or_never().is_some(), alive.is_empty());
            }
            alive.clear();
            prop_assert!(valve.is_open());
        }
    }
}
