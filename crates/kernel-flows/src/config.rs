//! The limits of the crate's one configurable part, the correlator: [`Config`] and [`Order`].
//!
//! The other parts take no configuration: a [`Series`](crate::Series)'s high-water mark and
//! a [`Valve`](crate::Valve)'s name are given where they are built.

/// How replies find their requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Order {
    /// Each reply names its tag (packetstream's tags, ONC RPC's xids). Replies may come in any
    /// order.
    #[default]
    Tagged,
    /// The n-th reply answers the n-th request sent (HTTP/1.1 pipelining, fault's
    /// Invocations): a request takes its turn when [`Correlator::sent`](crate::Correlator::sent) says it went on the
    /// wire, so one cancelled before it was sent takes none.
    Fifo,
}

/// Limits and numbering of a [`Correlator`](crate::Correlator).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// How replies are matched to requests.
    pub order: Order,
    /// How many requests may await replies at once; [`Correlator::allocate`](crate::Correlator::allocate) waits beyond it,
    /// callers served in the order they came. From 1 to 65 536 (values outside are taken as
    /// the nearest). The table of slots grows with the requests in flight, to at most twice
    /// this.
    pub max_in_flight: usize,
    /// The first tag handed out.
    pub first_tag: u64,
}

impl Default for Config {
    /// Tagged, 64 in flight, tags from 1.
    fn default() -> Self {
        Config {
            order: Order::Tagged,
            max_in_flight: 64,
            first_tag: 1,
        }
    }
}
