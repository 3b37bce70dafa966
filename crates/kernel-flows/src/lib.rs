#![doc = include_str!("../README.md")]

mod channel;
mod config;
mod correlator;
mod dispatch;
mod error;
mod gate;
mod series;
mod sync;
mod valve;

pub use channel::{Batch, Chain, Channel, Emit, Results, Transformation, batch, map, results};
pub use config::{Config, Order};
pub use correlator::{Correlator, Orphan, OrphanKind, Pending, Tag};
pub use dispatch::{Dispatch, Ended};
pub use error::{Fault, Unanswered};
pub use series::{Exit, Series, Stats, Terminal};
pub use valve::{Hold, HoldInfo, Reason, Valve};
