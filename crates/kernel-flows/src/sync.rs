//! The atomics and locks of the correlator and its gate: std's, or loom's when the crate is
//! built with `--cfg kernel_flows_loom` for the model checks in `tests/loom.rs` (a cfg of its
//! own, so that tokio, which has loom paths of its own, is built as usual).

#[cfg(not(kernel_flows_loom))]
pub(crate) use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
#[cfg(not(kernel_flows_loom))]
pub(crate) use std::sync::{Mutex, MutexGuard};

#[cfg(kernel_flows_loom)]
pub(crate) use loom::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
#[cfg(kernel_flows_loom)]
pub(crate) use loom::sync::{Mutex, MutexGuard};

/// Marks a store-buffering pattern (a store, then a load of another location, on each of two
/// threads, where one of them must see the other's store). The accesses around it are
/// `SeqCst`, which orders them in the C++ model, and the RMWs among them are full barriers on
/// the hardware; nothing more is emitted. Loom, though, models `SeqCst` accesses as `AcqRel`
/// and cannot see that order, so under loom a `SeqCst` fence stands in for it here (without
/// it, `tests/loom.rs` finds the patterns unproven: a request left waiting in `allocate`
/// against `fail_all`, a lost wake-up in the gate).
#[inline(always)]
pub(crate) fn store_buffering() {
    #[cfg(kernel_flows_loom)]
    loom::sync::atomic::fence(Ordering::SeqCst);
}

#[cfg(not(kernel_flows_loom))]
pub(crate) use tokio::sync::Notify;

#[cfg(kernel_flows_loom)]
pub(crate) use model::Notify;

/// Under loom, a `Notify` with tokio's semantics as the gate uses them, on loom's lock, so
/// that its waits and wakes are part of the model: waiters are woken first in, first out;
/// `notify_one` with nobody waiting is kept for the next waiter; a waiter dropped after it
/// was notified passes the notification on; `notify_waiters` wakes those waiting now.
#[cfg(kernel_flows_loom)]
mod model {
    use std::collections::VecDeque;
    use std::future::Future;
    use std::pin::Pin;
    use std::task::{Context, Poll, Waker};

    use loom::sync::{Arc, Mutex};

    #[derive(Debug, Default)]
    struct State {
        /// A `notify_one` that found nobody waiting.
        stored: bool,
        next_id: u64,
        /// Waiting, by id, with their waker and whether they were notified.
        waiters: VecDeque<(u64, Option<Waker>, bool)>,
    }

    #[derive(Debug, Default)]
    pub(crate) struct Notify {
        state: Arc<Mutex<State>>,
    }

    impl Notify {
        pub(crate) fn new() -> Notify {
            Notify::default()
        }

        pub(crate) fn notified(&self) -> Notified {
            Notified {
                state: Arc::clone(&self.state),
                id: None,
                done: false,
            }
        }

        pub(crate) fn notify_one(&self) {
            let mut state = self.state.lock().unwrap();
            notify_first(&mut state);
        }

        pub(crate) fn notify_waiters(&self) {
            let mut state = self.state.lock().unwrap();
            for (_, waker, notified) in state.waiters.iter_mut() {
                *notified = true;
                if let Some(w) = waker.take() {
                    w.wake();
                }
            }
        }
    }

    fn notify_first(state: &mut State) {
        match state.waiters.iter_mut().find(|(_, _, notified)| !*notified) {
            Some((_, waker, notified)) => {
                *notified = true;
                if let Some(w) = waker.take() {
                    w.wake();
                }
            }
            None => state.stored = true,
        }
    }

    #[derive(Debug)]
    pub(crate) struct Notified {
        state: Arc<Mutex<State>>,
        id: Option<u64>,
        done: bool,
    }

    impl Notified {
        /// Joins the line now (tokio's `enable`): a notification from here on is not lost.
        pub(crate) fn enable(self: Pin<&mut Self>) {
            let this = self.get_mut();
            if this.id.is_some() || this.done {
                return;
            }
            let mut state = this.state.lock().unwrap();
            if state.stored {
                state.stored = false;
                this.done = true;
                return;
            }
            let id = state.next_id;
            state.next_id += 1;
            state.waiters.push_back((id, None, false));
            this.id = Some(id);
        }
    }

    impl Future for Notified {
        type Output = ();

        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            self.as_mut().enable();
            let this = self.get_mut();
            if this.done {
                return Poll::Ready(());
            }
            let mut state = this.state.lock().unwrap();
            let Some(at) = state
                .waiters
                .iter()
                .position(|(id, _, _)| Some(*id) == this.id)
            else {
                return Poll::Ready(());
            };
            if state.waiters[at].2 {
                state.waiters.remove(at);
                this.done = true;
                return Poll::Ready(());
            }
            state.waiters[at].1 = Some(cx.waker().clone());
            Poll::Pending
        }
    }

    impl Drop for Notified {
        fn drop(&mut self) {
            let Some(id) = self.id else { return };
            if self.done {
                return;
            }
            let mut state = self.state.lock().unwrap();
            if let Some(at) = state.waiters.iter().position(|(w, _, _)| *w == id) {
                let (_, _, notified) = state.waiters.remove(at).expect("found");
                // Notified but never woke to it: the next waiter gets it.
                if notified {
                    notify_first(&mut state);
                }
            }
        }
    }
}
