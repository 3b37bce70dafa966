//! The atomics and locks of the correlator and its gate: std's, or loom's when the crate is
//! built with `--cfg kernel_flows_loom` for the model checks in `tests/loom.rs` (a cfg of its
//! own, so that tokio, which has loom paths of its own, is built as usual).

#[cfg(not(kernel_flows_loom))]
pub(crate) use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering, fence};
#[cfg(not(kernel_flows_loom))]
pub(crate) use std::sync::{Mutex, MutexGuard};

#[cfg(kernel_flows_loom)]
pub(crate) use loom::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering, fence};
#[cfg(kernel_flows_loom)]
pub(crate) use loom::sync::{Mutex, MutexGuard};
