//! Series and terminals: driving a chain from a source to a sink, and learning how it ended.
//!
//! fault.kernel.io's `Transfer` builds a flow with `io_flow`, starts it with `io_execute`, stops
//! it gracefully with `io_terminate`, and learns of its end through the flow's `Terminal`. Here
//! [`Series::new`] is `io_flow`, [`Series::spawn`] is `io_execute`, [`Terminal::terminate`] is
//! `io_terminate`, and [`Terminal::exit`] resolves to the [`Exit`] and the [`Stats`].

use std::borrow::Cow;
use std::fmt;
use std::future::{Future, poll_fn};
use std::pin::{Pin, pin};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::Instant;

use futures_util::{Sink, Stream};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use crate::channel::{Channel, Emit};
use crate::error::Fault;
use crate::valve::Valve;

/// How many items a series moves in one wake before it yields to the scheduler, so a source
/// that is always ready cannot starve other tasks or delay an interrupt.
const BUDGET: usize = 256;

/// How a flow ended and what it moved.
type Outcome<F> = (Exit<F>, Stats);

/// How a flow ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exit<E> {
    /// The source ended (or the flow was terminated), every item was drained into the sink,
    /// and the sink was closed.
    Completed,
    /// The flow was interrupted: whatever was in flight was discarded and the sink was left
    /// unclosed.
    Interrupted,
    /// A channel or the sink failed; the flow stopped there.
    Faulted(E),
}

impl<E> Exit<E> {
    /// Whether the flow completed.
    pub fn is_completed(&self) -> bool {
        matches!(self, Exit::Completed)
    }

    /// Converts the fault, keeping the other outcomes.
    pub fn map_fault<F>(self, f: impl FnOnce(E) -> F) -> Exit<F> {
        match self {
            Exit::Completed => Exit::Completed,
            Exit::Interrupted => Exit::Interrupted,
            Exit::Faulted(e) => Exit::Faulted(f(e)),
        }
    }
}

impl<E: fmt::Display> fmt::Display for Exit<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Exit::Completed => f.write_str("completed"),
            Exit::Interrupted => f.write_str("interrupted"),
            Exit::Faulted(e) => write!(f, "faulted: {e}"),
        }
    }
}

/// What a series moved, counted by its pump.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Items taken from the source.
    pub items_in: u64,
    /// Items accepted by the sink.
    pub items_out: u64,
    /// Bytes accepted by the sink, as [`Series::measure`] counts them (0 without it).
    pub bytes_out: u64,
    /// Time spent obstructed: the sink not ready, or the valve held.
    pub obstructed: Duration,
}

impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "in={} out={} bytes={} obstructed={:?}",
            self.items_in, self.items_out, self.bytes_out, self.obstructed
        )
    }
}

/// The two ways to stop a flow from outside: graceful terminate and interrupt.
#[derive(Debug, Clone, Default)]
pub(crate) struct Control {
    pub(crate) terminate: CancellationToken,
    pub(crate) interrupt: CancellationToken,
}

/// A flow from a [`Stream`] source through a [`Channel`] chain into a [`Sink`].
///
/// The pump takes an item from the source only while fewer than the high-water mark of items
/// wait for the sink (counting what the chain holds), so a slow sink slows the source instead
/// of growing a buffer. With a [`Valve`], the pump takes nothing from the source while the
/// valve is held. Obstruction is advisory, as in fault: items already in the chain still go
/// on to the sink.
///
/// ```
/// use futures_util::stream;
/// use kernel_flows::{Channel, Exit, Series, map};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let (tx, mut rx) = tokio::sync::mpsc::channel::<String>(8);
/// let sink = tokio_util::sync::PollSender::new(tx);
/// // No stage can fail here, so the chain's error type is named once, on its first stage.
/// let chain = map::<_, _, _, std::convert::Infallible>(|n: u32| n * n)
///     .then(map(|n: u32| format!("{n}")));
/// let mut terminal = Series::new(stream::iter(1..=3u32), chain, sink)
///     .named("squares")
///     .measure(|s: &String| s.len())
///     .spawn();
///
/// let (exit, stats) = terminal.exit().await;
/// assert!(matches!(exit, Exit::Completed));
/// assert_eq!((stats.items_in, stats.items_out, stats.bytes_out), (3, 3, 3));
/// assert_eq!(rx.recv().await.as_deref(), Some("1"));
/// # }
/// ```
pub struct Series<S, C: Channel, K> {
    pub(crate) name: Cow<'static, str>,
    source: S,
    chain: C,
    sink: K,
    high_water: usize,
    measure: Option<fn(&C::Out) -> usize>,
    valve: Option<Valve>,
}

impl<S, C: Channel, K> fmt::Debug for Series<S, C, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Series")
            .field("name", &self.name)
            .field("high_water", &self.high_water)
            .finish_non_exhaustive()
    }
}

impl<S, C, K> Series<S, C, K>
where
    S: Stream<Item = C::In> + Send + 'static,
    C: Channel + Send + 'static,
    C::Out: Send,
    C::Error: Send + 'static,
    K: Sink<C::Out> + Send + 'static,
    K::Error: Send + 'static,
{
    /// The default high-water mark, in items.
    pub const DEFAULT_HIGH_WATER: usize = 64;

    /// Connects `source` through `chain` into `sink` (fault's `io_flow`). Nothing moves until
    /// the series is spawned or run.
    pub fn new(source: S, chain: C, sink: K) -> Self {
        Series {
            name: Cow::Borrowed("series"),
            source,
            chain,
            sink,
            high_water: Self::DEFAULT_HIGH_WATER,
            measure: None,
            valve: None,
        }
    }

    /// Names the series in trace events and in [`Ended`](crate::Ended).
    pub fn named(mut self, name: impl Into<Cow<'static, str>>) -> Self {
        self.name = name.into();
        self
    }

    /// Sets the high-water mark: how many items may wait for the sink before the pump stops
    /// taking from the source. At least 1.
    pub fn high_water(mut self, items: usize) -> Self {
        self.high_water = items.max(1);
        self
    }

    /// Counts `bytes_out` with `size` for each item the sink accepts.
    pub fn measure(mut self, size: fn(&C::Out) -> usize) -> Self {
        self.measure = Some(size);
        self
    }

    /// Takes nothing from the source while `valve` is held.
    pub fn valve(mut self, valve: Valve) -> Self {
        self.valve = Some(valve);
        self
    }

    /// Starts the flow on its own tokio task (fault's `io_execute`).
    ///
    /// Must be called within a tokio runtime.
    pub fn spawn(self) -> Terminal<Fault<C::Error, K::Error>> {
        self.spawn_with(Control::default(), None)
    }

    /// Starts the flow on a task tracked by `tracker`, so that `tracker.wait()` covers it.
    pub fn spawn_on(self, tracker: &TaskTracker) -> Terminal<Fault<C::Error, K::Error>> {
        self.spawn_with(Control::default(), Some(tracker))
    }

    /// Runs the flow in the calling task until the source ends or something faults.
    pub async fn run(self) -> (Exit<Fault<C::Error, K::Error>>, Stats) {
        let live = Arc::default();
        self.drive(Control::default(), live).await
    }

    fn spawn_with(
        self,
        control: Control,
        tracker: Option<&TaskTracker>,
    ) -> Terminal<Fault<C::Error, K::Error>> {
        let live: Arc<Mutex<Stats>> = Arc::default();
        let name = self.name.clone();
        let flow = self.drive(control.clone(), Arc::clone(&live));
        let handle = match tracker {
            Some(tracker) => tracker.spawn(flow),
            None => tokio::spawn(flow),
        };
        Terminal {
            name,
            control,
            handle: Some(handle),
            live,
        }
    }

    /// The pump: fault's Transfer, with terminate and interrupt kept apart.
    pub(crate) fn drive(
        self,
        control: Control,
        live: Arc<Mutex<Stats>>,
    ) -> impl Future<Output = Outcome<Fault<C::Error, K::Error>>> + Send + 'static {
        let Series {
            name,
            source,
            chain,
            sink,
            high_water,
            measure,
            valve,
        } = self;
        let span = tracing::debug_span!("series", name = %name);
        async move {
            let mut pump = Pump {
                source: Box::pin(source),
                chain,
                sink: Box::pin(sink),
                pending: Emit::new(),
                high_water,
                measure,
                valve,
                source_done: false,
                terminating: false,
                chain_terminated: false,
                unflushed: false,
                obstructed_since: None,
                stats: Stats::default(),
            };
            let mut interrupted = pin!(control.interrupt.cancelled());
            let mut terminated = pin!(control.terminate.cancelled());
            let exit = loop {
                let step = poll_fn(|cx| {
                    if interrupted.as_mut().poll(cx).is_ready() {
                        return Poll::Ready(Step::Interrupted);
                    }
                    if !pump.terminating && terminated.as_mut().poll(cx).is_ready() {
                        tracing::debug!("terminate: draining");
                        pump.terminating = true;
                    }
                    pump.poll_flow(cx)
                })
                .await;
                pump.publish(&live);
                match step {
                    Step::Completed => break Exit::Completed,
                    Step::Faulted(fault) => break Exit::Faulted(fault),
                    Step::Interrupted => {
                        pump.pending.clear();
                        break Exit::Interrupted;
                    }
                    Step::ValveHeld(valve) => {
                        pump.obstruct();
                        tokio::select! {
                            _ = valve.opened() => {}
                            _ = interrupted.as_mut() => {
                                pump.pending.clear();
                                break Exit::Interrupted;
                            }
                            _ = terminated.as_mut(), if !pump.terminating => {
                                pump.terminating = true;
                            }
                        }
                        pump.unobstruct();
                    }
                }
            };
            pump.unobstruct();
            pump.publish(&live);
            tracing::debug!(exit = exit_name(&exit), stats = %pump.stats, "series ended");
            (exit, pump.stats)
        }
        .instrument(span)
    }
}

fn exit_name<E>(exit: &Exit<E>) -> &'static str {
    match exit {
        Exit::Completed => "completed",
        Exit::Interrupted => "interrupted",
        Exit::Faulted(_) => "faulted",
    }
}

enum Step<F> {
    Completed,
    Interrupted,
    Faulted(F),
    ValveHeld(Valve),
}

struct Pump<S, C: Channel, K> {
    source: Pin<Box<S>>,
    chain: C,
    sink: Pin<Box<K>>,
    pending: Emit<C::Out>,
    high_water: usize,
    measure: Option<fn(&C::Out) -> usize>,
    valve: Option<Valve>,
    source_done: bool,
    terminating: bool,
    chain_terminated: bool,
    unflushed: bool,
    obstructed_since: Option<Instant>,
    stats: Stats,
}

impl<S, C, K> Pump<S, C, K>
where
    S: Stream<Item = C::In>,
    C: Channel,
    K: Sink<C::Out>,
{
    fn obstruct(&mut self) {
        if self.obstructed_since.is_none() {
            self.obstructed_since = Some(Instant::now());
        }
    }

    fn unobstruct(&mut self) {
        if let Some(since) = self.obstructed_since.take() {
            self.stats.obstructed += since.elapsed();
        }
    }

    fn publish(&self, live: &Mutex<Stats>) {
        let mut stats = live.lock().unwrap_or_else(|p| p.into_inner());
        *stats = self.stats;
    }

    /// Moves what waits into the sink while it is ready. Returns whether the sink took all.
    fn poll_deliver(&mut self, cx: &mut Context<'_>) -> Result<bool, K::Error> {
        while self.pending.peek().is_some() {
            match self.sink.as_mut().poll_ready(cx) {
                Poll::Ready(Ok(())) => {
                    self.unobstruct();
                    let Some(item) = self.pending.pop() else {
                        break;
                    };
                    if let Some(size) = self.measure {
                        self.stats.bytes_out += size(&item) as u64;
                    }
                    self.sink.as_mut().start_send(item)?;
                    self.stats.items_out += 1;
                    self.unflushed = true;
                }
                Poll::Ready(Err(e)) => return Err(e),
                Poll::Pending => {
                    self.obstruct();
                    return Ok(false);
                }
            }
        }
        Ok(true)
    }

    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Result<(), K::Error> {
        if self.unflushed {
            if let Poll::Ready(result) = self.sink.as_mut().poll_flush(cx) {
                result?;
                self.unflushed = false;
            }
        }
        Ok(())
    }

    fn poll_flow(&mut self, cx: &mut Context<'_>) -> Poll<Step<Fault<C::Error, K::Error>>> {
        let mut moved = 0;
        loop {
            match self.poll_deliver(cx) {
                Ok(_) => {}
                Err(e) => return Poll::Ready(Step::Faulted(Fault::Sink(e))),
            }
            if self.source_done || self.terminating {
                if !self.chain_terminated {
                    self.chain_terminated = true;
                    if let Err(e) = self.chain.terminate(&mut self.pending) {
                        return Poll::Ready(Step::Faulted(Fault::Channel(e)));
                    }
                    continue;
                }
                if !self.pending.is_empty() {
                    return Poll::Pending;
                }
                return match self.sink.as_mut().poll_close(cx) {
                    Poll::Ready(Ok(())) => Poll::Ready(Step::Completed),
                    Poll::Ready(Err(e)) => Poll::Ready(Step::Faulted(Fault::Sink(e))),
                    Poll::Pending => Poll::Pending,
                };
            }
            // At the high-water mark with the sink not ready: the sink's readiness wakes us.
            // While nothing waits for the sink the source is always read, so that a chain
            // holding a partial batch can never stall the flow.
            let waiting = self.pending.len() + self.chain.buffered();
            if !self.pending.is_empty() && waiting >= self.high_water {
                return match self.poll_flush(cx) {
                    Ok(()) => Poll::Pending,
                    Err(e) => Poll::Ready(Step::Faulted(Fault::Sink(e))),
                };
            }
            if let Some(valve) = self.valve.as_ref().filter(|v| !v.is_open()).cloned() {
                if let Err(e) = self.poll_flush(cx) {
                    return Poll::Ready(Step::Faulted(Fault::Sink(e)));
                }
                return Poll::Ready(Step::ValveHeld(valve));
            }
            if moved == BUDGET {
                cx.waker().wake_by_ref();
                return match self.poll_flush(cx) {
                    Ok(()) => Poll::Pending,
                    Err(e) => Poll::Ready(Step::Faulted(Fault::Sink(e))),
                };
            }
            match self.source.as_mut().poll_next(cx) {
                Poll::Ready(Some(item)) => {
                    moved += 1;
                    self.stats.items_in += 1;
                    if let Err(e) = self.chain.transfer(item, &mut self.pending) {
                        return Poll::Ready(Step::Faulted(Fault::Channel(e)));
                    }
                }
                Poll::Ready(None) => {
                    tracing::trace!("source ended");
                    self.source_done = true;
                }
                Poll::Pending => {
                    return match self.poll_flush(cx) {
                        Ok(()) => Poll::Pending,
                        Err(e) => Poll::Ready(Step::Faulted(Fault::Sink(e))),
                    };
                }
            }
        }
    }
}

/// The end of a running series: stop it, watch it, and await how it ended.
///
/// Dropping a `Terminal` before [`exit`](Terminal::exit) interrupts the series, as there is no
/// async drop to drain it; call [`terminate`](Terminal::terminate) and await `exit` for a
/// graceful end.
#[derive(Debug)]
pub struct Terminal<F> {
    name: Cow<'static, str>,
    control: Control,
    handle: Option<JoinHandle<Outcome<F>>>,
    live: Arc<Mutex<Stats>>,
}

impl<F> Terminal<F> {
    /// Graceful stop (fault's `io_terminate`): take nothing more from the source, drain what
    /// the chain holds into the sink, close the sink, and exit [`Exit::Completed`].
    pub fn terminate(&self) {
        self.control.terminate.cancel();
    }

    /// Hard stop: discard what is in flight and exit [`Exit::Interrupted`] at once.
    pub fn interrupt(&self) {
        self.control.interrupt.cancel();
    }

    /// The counters as of the series' last wake.
    pub fn stats(&self) -> Stats {
        *self.live.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether the series has ended.
    pub fn is_finished(&self) -> bool {
        self.handle.as_ref().is_none_or(JoinHandle::is_finished)
    }

    /// The name given by [`Series::named`].
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Waits for the series to end and says how, with its final counters.
    ///
    /// Cancel-safe: dropping the future (a timeout) leaves the terminal as it was, to
    /// [`interrupt`](Terminal::interrupt) the series or wait again; the series is not left
    /// running out of reach. Once an end has been returned, later calls say
    /// [`Exit::Interrupted`] with the last counters.
    ///
    /// If a channel panicked, the panic resumes here. If the runtime shut down under the
    /// series, it counts as interrupted.
    pub async fn exit(&mut self) -> (Exit<F>, Stats) {
        let Some(handle) = self.handle.as_mut() else {
            return (Exit::Interrupted, self.stats());
        };
        let joined = handle.await;
        // Ended: nothing left to interrupt when the terminal goes.
        self.handle = None;
        match joined {
            Ok(ended) => ended,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => (Exit::Interrupted, self.stats()),
        }
    }
}

impl<F> Drop for Terminal<F> {
    fn drop(&mut self) {
        if self.handle.is_some() {
            self.control.interrupt.cancel();
        }
    }
}
