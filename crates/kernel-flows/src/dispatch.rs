//! Dispatch: several series run as one unit of work.
//!
//! fault's `io.dispatch(xact, *series)` gives each series its own Transfer inside one
//! transaction; a fault in any of them interrupts the whole sector. A [`Dispatch`] does the
//! same with a tokio `TaskTracker` and `CancellationToken`s: one place to terminate or
//! interrupt them all, and one place to await how each ended.

use std::borrow::Cow;
use std::fmt;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};

use futures_util::{FutureExt, Sink, Stream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::channel::Channel;
use crate::error::Fault;
use crate::series::{Control, Exit, Series, Stats};

/// Each series' end, with its spawn index.
type Endings<E> = Arc<Mutex<Vec<(usize, Ended<E>)>>>;

/// How one series of a [`Dispatch`] ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ended<E> {
    /// The name given by [`Series::named`].
    pub name: Cow<'static, str>,
    /// How it ended.
    pub exit: Exit<E>,
    /// What it moved.
    pub stats: Stats,
}

impl<E: fmt::Display> fmt::Display for Ended<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} ({})", self.name, self.exit, self.stats)
    }
}

/// Several series run as one unit: terminated together, interrupted together, awaited
/// together. A fault in one interrupts the others, as a fault in fault's sector does.
///
/// Every series' fault converts into one error type `E`, so they can be awaited together.
///
/// ```
/// use std::convert::Infallible;
/// use futures_util::{SinkExt, sink, stream};
/// use kernel_flows::{Dispatch, Exit, Series, results};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let mut unit: Dispatch<String> = Dispatch::new();
/// for name in ["rx", "tx"] {
///     let frames = stream::iter((0..10u32).map(Ok::<u32, String>));
///     let sink = sink::drain().sink_map_err(|never: Infallible| match never {});
///     unit.spawn(Series::new(frames, results(), sink).named(name), |f| f.to_string());
/// }
/// let ended = unit.ended().await;
/// assert_eq!(ended.len(), 2);
/// assert!(ended.iter().all(|e| e.exit == Exit::Completed && e.stats.items_out == 10));
/// assert_eq!(ended[0].to_string(), "rx completed (in=10 out=10 bytes=0 obstructed=0ns)");
/// # }
/// ```
pub struct Dispatch<E> {
    tracker: TaskTracker,
    control: Control,
    ended: Endings<E>,
    spawned: usize,
}

impl<E> fmt::Debug for Dispatch<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dispatch")
            .field("spawned", &self.spawned)
            .field("running", &self.tracker.len())
            .finish()
    }
}

impl<E: Send + 'static> Default for Dispatch<E> {
    fn default() -> Self {
        Dispatch::new()
    }
}

impl<E: Send + 'static> Dispatch<E> {
    /// An empty unit of work.
    pub fn new() -> Self {
        Dispatch {
            tracker: TaskTracker::new(),
            control: Control::default(),
            ended: Arc::default(),
            spawned: 0,
        }
    }

    /// Starts `series` as part of this unit; `fault` converts its fault into `E`.
    ///
    /// Must be called within a tokio runtime.
    pub fn spawn<S, C, K>(
        &mut self,
        series: Series<S, C, K>,
        fault: impl FnOnce(Fault<C::Error, K::Error>) -> E + Send + 'static,
    ) where
        S: Stream<Item = C::In> + Send + 'static,
        C: Channel + Send + 'static,
        C::Out: Send,
        C::Error: Send + 'static,
        K: Sink<C::Out> + Send + 'static,
        K::Error: Send + 'static,
    {
        let index = self.spawned;
        self.spawned += 1;
        let control = Control {
            terminate: self.control.terminate.child_token(),
            interrupt: self.control.interrupt.child_token(),
        };
        let name = series.name.clone();
        let live = Arc::<Mutex<Stats>>::default();
        let flow = series.drive(control, Arc::clone(&live));
        let interrupt_all: CancellationToken = self.control.interrupt.clone();
        let ended = Arc::clone(&self.ended);
        self.tracker.spawn(async move {
            // A panic is this series' fault, reported and interrupting the unit like any
            // other, not a task that vanishes from `ended`.
            let (exit, stats) = match AssertUnwindSafe(flow).catch_unwind().await {
                Ok(ended) => ended,
                Err(panic) => {
                    let message = panic_message(panic.as_ref());
                    tracing::warn!(series = %name, %message, "series panicked");
                    let stats = *live.lock().unwrap_or_else(|p| p.into_inner());
                    (Exit::Faulted(Fault::Panicked(message)), stats)
                }
            };
            if let Exit::Faulted(_) = exit {
                tracing::debug!(series = %name, "fault: interrupting the unit");
                interrupt_all.cancel();
            }
            let exit = exit.map_fault(fault);
            let mut ended = ended.lock().unwrap_or_else(|p| p.into_inner());
            ended.push((index, Ended { name, exit, stats }));
        });
    }

    /// Terminates every series gracefully: each drains and completes.
    pub fn terminate(&self) {
        self.control.terminate.cancel();
    }

    /// Interrupts every series at once.
    pub fn interrupt(&self) {
        self.control.interrupt.cancel();
    }

    /// How many series have not ended yet.
    pub fn running(&self) -> usize {
        self.tracker.len()
    }

    /// Waits until every series has ended and says how each did, in the order they were
    /// spawned.
    ///
    /// Dropping this future leaves the series running; dropping the `Dispatch` itself does
    /// too, until they end by themselves. Call [`interrupt`](Dispatch::interrupt) first to
    /// stop them.
    pub async fn ended(self) -> Vec<Ended<E>> {
        self.tracker.close();
        self.tracker.wait().await;
        let mut ended = std::mem::take(&mut *self.ended.lock().unwrap_or_else(|p| p.into_inner()));
        ended.sort_by_key(|(index, _)| *index);
        ended.into_iter().map(|(_, ended)| ended).collect()
    }
}

/// What a panic said, if it said it as text.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    match (panic.downcast_ref::<&str>(), panic.downcast_ref::<String>()) {
        (Some(text), _) => (*text).to_owned(),
        (_, Some(text)) => text.clone(),
        _ => "a panic with no message".to_owned(),
    }
}
