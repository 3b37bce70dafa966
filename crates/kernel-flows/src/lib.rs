#![doc = include_str!("../README.md")]

mod channel;
mod correlator;
mod dispatch;
mod gate;
mod series;
mod sync;
mod valve;

pub use channel::{Batch, Chain, Channel, Emit, Results, Transformation, batch, map, results};
pub use correlator::{Config, Correlator, Order, Orphan, OrphanKind, Pending, Tag, Unanswered};
pub use dispatch::{Dispatch, Ended};
pub use series::{Exit, Fault, Series, Stats, Terminal};
pub use valve::{Hold, HoldInfo, Reason, Valve};
