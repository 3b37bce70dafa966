//! Flow channels, the bottom layer of Strata: fault.kernel.flows and fault.kernel.io in Rust.
//!
//! - [`Channel`]: a synchronous transformer (one item in, zero or more out; flush on
//!   terminate), composed statically inside one task with [`Channel::then`].
//! - [`Series`] and [`Terminal`]: a pump that drives a chain from a `Stream` to a `Sink` under
//!   a high-water mark, and the handle that terminates it (drain), interrupts it (discard),
//!   and resolves to its [`Exit`] and [`Stats`].
//! - [`Valve`]: obstruction with reasons; holds are released on drop and listed on demand.
//! - [`Correlator`]: request/response correlation by [`Tag`] or in FIFO order, with a bound on
//!   requests in flight, orphan replies counted instead of fatal, and [`Correlator::fail_all`]
//!   so that no caller hangs when a link dies.
//! - [`Dispatch`]: several series as one unit of work, ended together.
//!
//! Inside one task, fault's synchronous push chain is what you want: cheap, batchable, no
//! locks. Between tasks and at the socket, tokio's readiness is: a series starts from any
//! `Stream` and ends in any `Sink` (a `tokio_util::sync::PollSender` makes an mpsc sender
//! one), so series chain across tasks through bounded channels.
//!
//! ```
//! use futures_util::stream;
//! use kernel_flows::{Channel, Emit, Exit, Series, map};
//!
//! /// Joins words into lines of `width` words; flushes a short last line on terminate.
//! struct Lines { width: usize, line: Vec<String> }
//! impl Channel for Lines {
//!     type In = String;
//!     type Out = String;
//!     type Error = std::convert::Infallible;
//!     fn transfer(&mut self, word: String, out: &mut Emit<String>) -> Result<(), Self::Error> {
//!         self.line.push(word);
//!         if self.line.len() == self.width {
//!             out.push(self.line.drain(..).collect::<Vec<_>>().join(" "));
//!         }
//!         Ok(())
//!     }
//!     fn terminate(&mut self, out: &mut Emit<String>) -> Result<(), Self::Error> {
//!         if !self.line.is_empty() {
//!             out.push(self.line.drain(..).collect::<Vec<_>>().join(" "));
//!         }
//!         Ok(())
//!     }
//!     fn buffered(&self) -> usize { self.line.len() }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let words = stream::iter("a flow of typed messages like unix pipes".split(' ').map(String::from));
//! let chain = map(|w: String| w.to_uppercase()).then(Lines { width: 3, line: Vec::new() });
//! let (tx, mut rx) = tokio::sync::mpsc::channel(4);
//! let terminal = Series::new(words, chain, tokio_util::sync::PollSender::new(tx)).spawn();
//!
//! let (exit, stats) = terminal.exit().await;
//! assert_eq!(exit, Exit::Completed);
//! assert_eq!((stats.items_in, stats.items_out), (8, 3));
//! assert_eq!(rx.recv().await.as_deref(), Some("A FLOW OF"));
//! assert_eq!(rx.recv().await.as_deref(), Some("TYPED MESSAGES LIKE"));
//! assert_eq!(rx.recv().await.as_deref(), Some("UNIX PIPES"));
//! # }
//! ```

mod channel;
mod correlator;
mod dispatch;
mod gate;
mod series;
mod valve;

pub use channel::{Chain, Channel, Emit, Results, Transformation, map, results};
pub use correlator::{Config, Correlator, Order, Orphan, OrphanKind, Pending, Tag, Unanswered};
pub use dispatch::{Dispatch, Ended};
pub use series::{Exit, Fault, Series, Stats, Terminal};
pub use valve::{Hold, HoldInfo, Reason, Valve};
