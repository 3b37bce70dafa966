//! What the connection's handles and its driver task share: the correlators, the requests
//! waiting to be written, the counters, and how the connection ended.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::Waker;

use bytes::{Bytes, BytesMut};
use futures_util::task::AtomicWaker;
use kernel_flows::{Correlator, Order};
use tokio::sync::watch;
use tracing::trace;

use crate::pipeline::{Inbox, Route};
use crate::{Config, Ended, Error, Packet, Response};

/// What a request's [`Pending`](kernel_flows::Pending) resolves to: the peer's response, or
/// an error the driver hands to this one request.
pub(crate) type Answer = Result<Response, Error>;

/// The correlator of one channel.
pub(crate) type Requests = Correlator<Answer, Error>;

/// The traffic counters of a connection (what cs.packetstream's `tick` was for).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Packets read (control packets included).
    pub packets_in: u64,
    /// Packets written.
    pub packets_out: u64,
    /// Bytes read from the stream.
    pub bytes_in: u64,
    /// Bytes written to the stream.
    pub bytes_out: u64,
    /// Requests this side sent.
    pub requests_sent: u64,
    /// The peer's requests this side answered through its handler.
    pub requests_served: u64,
    /// The peer's requests refused (no handler, after ERQ, unknown channel, tag in use).
    pub requests_refused: u64,
    /// Responses nobody waited for: unknown tags, late replies to cancelled or timed-out
    /// requests, responses on unknown channels.
    pub orphans: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub packets_in: AtomicU64,
    pub packets_out: AtomicU64,
    pub bytes_in: AtomicU64,
    pub bytes_out: AtomicU64,
    pub requests_sent: AtomicU64,
    pub requests_served: AtomicU64,
    pub requests_refused: AtomicU64,
    pub orphans: AtomicU64,
}

impl Counters {
    /// Adds `tally` to the counters and zeroes it.
    pub fn publish(&self, tally: &mut Stats) {
        let add = |counter: &AtomicU64, n: u64| {
            if n > 0 {
                counter.fetch_add(n, Ordering::Relaxed);
            }
        };
        add(&self.packets_in, tally.packets_in);
        add(&self.packets_out, tally.packets_out);
        add(&self.bytes_in, tally.bytes_in);
        add(&self.bytes_out, tally.bytes_out);
        add(&self.requests_sent, tally.requests_sent);
        add(&self.requests_served, tally.requests_served);
        add(&self.requests_refused, tally.requests_refused);
        add(&self.orphans, tally.orphans);
        *tally = Stats::default();
    }

    pub fn snapshot(&self) -> Stats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Stats {
            packets_in: get(&self.packets_in),
            packets_out: get(&self.packets_out),
            bytes_in: get(&self.bytes_in),
            bytes_out: get(&self.bytes_out),
            requests_sent: get(&self.requests_sent),
            requests_served: get(&self.requests_served),
            requests_refused: get(&self.requests_refused),
            orphans: get(&self.orphans),
        }
    }
}

#[derive(Default)]
struct Channels {
    others: HashMap<u64, Requests>,
    /// The inboxes of the pipelines, to fail when the link ends.
    pipelines: Vec<Weak<Inbox>>,
    failure: Option<Error>,
}

/// Request frames the handles have encoded and the driver has not taken yet, in the order
/// they were made. Callers encode their own requests, on their own threads; the driver only
/// moves the bytes into its write buffer, once per wake.
#[derive(Default)]
struct Outbox {
    frames: BytesMut,
    /// How many requests `frames` holds.
    requests: u64,
    /// Changes to the driver's table of pipelines, to apply before `frames` is written.
    routes: Vec<Route>,
    /// Set when this side sends ERQ (or the driver ends): no request may follow.
    sealed: bool,
}

pub(crate) struct Shared {
    pub config: Config,
    channel0: Requests,
    channels: Mutex<Channels>,
    outbox: Mutex<Outbox>,
    /// Set (under the outbox's lock) when the outbox stops being empty; cleared by the driver
    /// as it takes the outbox. The driver looks at this, not the lock, on each round.
    queued: AtomicBool,
    /// The driver task, woken when the outbox stops being empty.
    driver: AtomicWaker,
    pub counters: Counters,
    /// Set once this side has sent ERQ: no new requests.
    pub closing: AtomicBool,
    /// `Some` once the driver has ended: how it ended.
    pub ended: watch::Sender<Option<Result<(), Error>>>,
}

impl Shared {
    pub fn new(config: Config) -> Shared {
        Shared {
            channel0: new_requests(&config),
            channels: Mutex::new(Channels::default()),
            outbox: Mutex::new(Outbox::default()),
            queued: AtomicBool::new(false),
            driver: AtomicWaker::new(),
            counters: Counters::default(),
            closing: AtomicBool::new(false),
            ended: watch::Sender::new(None),
            config,
        }
    }

    /// Queues a request (its tag allocated) to be written, and wakes the driver if it was
    /// not already due to run. `false` once the outbox is sealed: ERQ is out, so the request
    /// must not follow it.
    pub fn push_request(&self, packet: &Packet) -> bool {
        let body_len = packet.body_len();
        let mut outbox = self.outbox.lock().unwrap_or_else(|p| p.into_inner());
        if outbox.sealed {
            return false;
        }
        let idle = outbox.is_empty();
        packet.encode_to(body_len, &mut outbox.frames);
        outbox.requests += 1;
        if idle {
            self.queued.store(true, Ordering::Release);
        }
        drop(outbox);
        trace!(%packet, "queued");
        if idle {
            self.driver.wake();
        }
        true
    }

    /// Queues a pipeline's batch: `requests` encoded requests in `frames`, and its route
    /// changes. `false`, leaving `frames` as it is, once the outbox is sealed and there were
    /// requests. The route changes are always taken, and dropped once the outbox is sealed:
    /// no request can open a route then, and the driver forgets a dropped pipeline's routes
    /// when it next has responses for it. So nothing piles up in an outbox the driver will
    /// never take again.
    pub fn push_batch(
        &self,
        frames: &mut BytesMut,
        requests: u64,
        routes: &mut Vec<Route>,
    ) -> bool {
        let mut outbox = self.outbox.lock().unwrap_or_else(|p| p.into_inner());
        if outbox.sealed {
            routes.clear();
            return requests == 0;
        }
        let idle = outbox.is_empty();
        if outbox.frames.is_empty() {
            std::mem::swap(&mut outbox.frames, frames);
        } else {
            outbox.frames.extend_from_slice(frames);
            frames.clear();
        }
        outbox.requests += requests;
        outbox.routes.append(routes);
        let wake = idle && !outbox.is_empty();
        if wake {
            self.queued.store(true, Ordering::Release);
        }
        drop(outbox);
        if wake {
            self.driver.wake();
        }
        true
    }

    /// Registers the driver's task to be woken when the outbox stops being empty. Called once
    /// per wake of the driver, before it looks at the outbox.
    pub fn register_driver(&self, driver: &Waker) {
        self.driver.register(driver);
    }

    /// Moves the queued request frames to the end of `buf`, and the route changes to the end
    /// of `routes`, and returns how many requests they were. With `seal`, no request is
    /// queued after these. Takes the lock only when something was queued (or to seal).
    pub fn take_requests(&self, buf: &mut BytesMut, seal: bool, routes: &mut Vec<Route>) -> u64 {
        if !seal && !self.queued.load(Ordering::Acquire) {
            return 0;
        }
        // Cleared before the lock: a request queued after the swap below sets it again.
        self.queued.store(false, Ordering::Relaxed);
        let mut outbox = self.outbox.lock().unwrap_or_else(|p| p.into_inner());
        outbox.sealed |= seal;
        routes.append(&mut outbox.routes);
        if buf.is_empty() {
            // Swapped, not copied: the buffers trade places and keep their capacity.
            std::mem::swap(buf, &mut outbox.frames);
        } else {
            buf.extend_from_slice(&outbox.frames);
            outbox.frames.clear();
        }
        std::mem::take(&mut outbox.requests)
    }

    /// No request is queued from now on; the ones queued are dropped (their callers are
    /// failed by [`fail_all`](Self::fail_all)).
    pub fn seal(&self) {
        let mut outbox = self.outbox.lock().unwrap_or_else(|p| p.into_inner());
        outbox.sealed = true;
        outbox.frames = BytesMut::new();
        outbox.requests = 0;
        outbox.routes = Vec::new();
    }

    /// Why a new request is refused once this side is closing: how the connection ended, or
    /// that it is closing.
    pub fn refusal(&self) -> Error {
        match self.ended.borrow().as_ref() {
            Some(Err(e @ Error::Closed(_))) => e.clone(),
            Some(Err(e)) => Error::Closed(Ended::Failed(Arc::new(e.clone()))),
            Some(Ok(())) => Error::Closed(Ended::Local),
            None => Error::Closing,
        }
    }

    /// A request to send on `channel`, tag still 0, after the checks every request passes
    /// before it takes a tag: the channel exists, the packet can be sent whatever its tag,
    /// and this side is not closing.
    #[inline]
    pub fn request_packet(
        &self,
        channel: u64,
        rq_type: u64,
        flags: u64,
        payload: Bytes,
    ) -> Result<Packet, Error> {
        let config = &self.config;
        if channel != 0 && !config.channels {
            return Err(Error::UnknownChannel { channel });
        }
        let packet = Packet::request(channel, 0, rq_type, flags, payload)?;
        // A larger tag than 0 adds at most nine bytes.
        let longest = packet.body_len() + crate::bsuint::MAX_LEN - 1;
        if longest > config.max_packet {
            return Err(Error::PacketTooLarge {
                len: longest as u64,
                max: config.max_packet,
            });
        }
        if self.closing.load(Ordering::Acquire) {
            return Err(self.refusal());
        }
        Ok(packet)
    }

    /// Keeps a pipeline's inbox to fail when the link ends; failed at once if it has.
    pub fn register_pipeline(&self, inbox: &Arc<Inbox>) {
        let mut channels = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(e) = &channels.failure {
            inbox.fail(e);
        }
        channels.pipelines.retain(|p| p.strong_count() > 0);
        channels.pipelines.push(Arc::downgrade(inbox));
    }

    /// Runs `f` with the correlator of `channel`, made on first use when `create`; `f` gets
    /// `None` for a channel this side has never sent on.
    #[inline]
    pub fn with_requests<T>(
        &self,
        channel: u64,
        create: bool,
        f: impl FnOnce(Option<&Requests>) -> T,
    ) -> T {
        if channel == 0 {
            return f(Some(&self.channel0));
        }
        f(self.requests(channel, create).as_ref())
    }

    /// The correlator of channel 0, which always exists.
    pub fn channel0(&self) -> &Requests {
        &self.channel0
    }

    /// The correlator of `channel` (a clone of the handle), made on first use when `create`.
    pub fn requests(&self, channel: u64, create: bool) -> Option<Requests> {
        if channel == 0 {
            return Some(self.channel0.clone());
        }
        let mut channels = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(requests) = channels.others.get(&channel) {
            return Some(requests.clone());
        }
        if !create {
            return None;
        }
        let requests = new_requests(&self.config);
        if let Some(e) = &channels.failure {
            requests.fail_all(e.clone());
        }
        channels.others.insert(channel, requests.clone());
        Some(requests)
    }

    /// Fails every request waiting on any channel, and every later one.
    pub fn fail_all(&self, error: &Error) -> usize {
        let mut failed = self.channel0.fail_all(error.clone());
        let mut channels = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        channels.failure.get_or_insert_with(|| error.clone());
        for requests in channels.others.values() {
            failed += requests.fail_all(error.clone());
        }
        for inbox in channels.pipelines.iter().filter_map(Weak::upgrade) {
            inbox.fail(error);
        }
        failed
    }
}

impl Outbox {
    /// Nothing queued: the driver is not due to take anything.
    fn is_empty(&self) -> bool {
        self.frames.is_empty() && self.routes.is_empty()
    }
}

fn new_requests(config: &Config) -> Requests {
    Correlator::new(kernel_flows::Config {
        order: Order::Tagged,
        max_in_flight: config.max_in_flight,
        // cs.packetstream reserves tags 0 and 1 (EOF and ERQ) on channel 0.
        first_tag: 2,
    })
}
