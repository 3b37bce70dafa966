//! What a connection's handles and its driver task share: the [`Session`] behind one lock,
//! the driver's waker, and how many handles are left.
//!
//! Every lock is short and does no I/O. The wakers the session collects while it is locked
//! (requests answered, room freed) are woken once the lock is let go.

use std::ops::{Deref, DerefMut};
use std::sync::{Mutex, MutexGuard};
use std::task::Waker;
use std::time::Instant;

use tokio::sync::Notify;

use crate::session::Session;
use crate::{Config, Stats};

/// The state under the lock.
pub(crate) struct State {
    pub session: Session,
    /// The driver's task.
    driver: Option<Waker>,
    /// The driver was woken and has not locked the state since: no need to wake it again.
    driver_due: bool,
    /// Live [`PacketConnection`](crate::PacketConnection) handles (pipelines included).
    handles: usize,
}

impl State {
    /// Wakes the driver, unless it is due to run anyway.
    #[inline]
    pub fn wake_driver(&mut self) {
        if !self.driver_due {
            self.driver_due = true;
            if let Some(driver) = &self.driver {
                driver.wake_by_ref();
            }
        }
    }

    /// The driver is running with `waker`: later changes must wake it.
    #[inline]
    pub fn driver_runs(&mut self, waker: &Waker) {
        self.driver_due = false;
        if !self.driver.as_ref().is_some_and(|w| w.will_wake(waker)) {
            self.driver = Some(waker.clone());
        }
    }
}

pub(crate) struct Shared {
    state: Mutex<State>,
    /// The config the connection runs with (also in the session; here to read without the
    /// lock).
    pub config: Config,
    /// Notified when the connection has ended.
    pub ended: Notify,
    /// Notified when reading has ended: the peer's EOF, or the stream's end.
    pub read_ended: Notify,
}

impl Shared {
    pub fn new(session: Session) -> Shared {
        Shared {
            config: session.config().clone(),
            state: Mutex::new(State {
                session,
                driver: None,
                // The driver runs once it is spawned, before anything could wake it.
                driver_due: true,
                handles: 1,
            }),
            ended: Notify::new(),
            read_ended: Notify::new(),
        }
    }

    /// Locks the state. The wakers collected meanwhile are woken when the guard is dropped.
    #[inline]
    pub fn lock(&self) -> Guard<'_> {
        // Every update under the lock leaves the session whole (a panic cannot stop one
        // halfway that matters), so a poisoned lock is safe to go on with.
        Guard(Some(self.state.lock().unwrap_or_else(|p| p.into_inner())))
    }

    /// Another handle.
    pub fn add_handle(&self) {
        self.lock().handles += 1;
    }

    /// A handle is gone; the last one begins the close.
    pub fn drop_handle(&self) {
        let mut state = self.lock();
        state.handles -= 1;
        if state.handles == 0 && !state.session.is_closing() {
            tracing::debug!("every handle dropped: closing");
            state.session.close(now());
            state.wake_driver();
        }
    }

    pub fn stats(&self) -> Stats {
        self.lock().session.stats()
    }
}

/// The locked state; wakes what the session collected when dropped.
pub(crate) struct Guard<'a>(Option<MutexGuard<'a, State>>);

impl Deref for Guard<'_> {
    type Target = State;

    #[inline]
    fn deref(&self) -> &State {
        self.0.as_ref().expect("present until dropped")
    }
}

impl DerefMut for Guard<'_> {
    #[inline]
    fn deref_mut(&mut self) -> &mut State {
        self.0.as_mut().expect("present until dropped")
    }
}

impl Drop for Guard<'_> {
    #[inline]
    fn drop(&mut self) {
        let Some(mut state) = self.0.take() else {
            return;
        };
        if !state.session.has_wakers() {
            return;
        }
        let mut wakers = Vec::new();
        state.session.swap_wakers(&mut wakers);
        drop(state);
        wakers.into_iter().for_each(Waker::wake);
    }
}

/// The time now, on tokio's clock (which tests can pause and advance).
pub(crate) fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}
