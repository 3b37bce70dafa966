//! Why things fail: [`Unanswered`] for a correlated request, [`Fault`] for a series.
//!
//! kernel-flows is generic over its users' errors, so it has one error type per way of
//! failing rather than one enum: each carries the user's error where there is one.

/// Why a request got no reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Unanswered<E> {
    /// The request failed with this error: [`Correlator::fail`](crate::Correlator::fail) failed it alone, or
    /// [`Correlator::fail_all`](crate::Correlator::fail_all) failed the link.
    #[error("{0}")]
    Failed(E),
    /// Every tag up to `u64::MAX - 1` has been issued: tags never wrap, so that a late reply
    /// can never reach a new request. Make a new correlator.
    #[error("every tag has been issued")]
    Exhausted,
    /// The [`Pending`](crate::Pending) was polled again after it had resolved: its reply was taken already.
    #[error("the reply was taken already: the request was polled after it resolved")]
    Spent,
}

/// Why a series faulted: a channel of its chain, or its sink.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Fault<C, K> {
    /// A channel's `transfer` or `terminate` failed.
    #[error("channel failed: {0}")]
    Channel(C),
    /// The sink refused an item, a flush or the close.
    #[error("sink failed: {0}")]
    Sink(K),
    /// A channel, the source or the sink panicked, with the panic's message (a series in a
    /// [`Dispatch`](crate::Dispatch) reports it so; a [`Terminal`](crate::Terminal) resumes the panic).
    #[error("the series panicked: {0}")]
    Panicked(String),
}
