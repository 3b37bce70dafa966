//! [`Reassembly`]: grams in, whole memos out. A state machine with no I/O: the caller hands
//! it each datagram with its source and the time, and asks it to expire old state.

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::fmt;
use std::hash::Hash;
use std::ops::Range;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use foldhash::fast::RandomState;
use tracing::{debug, trace};

use crate::{Config, Error, Gram, Memo, Mid, Trust, Vid, verify};

/// What one stored gram costs against [`Config::max_pending_bytes`] beyond its datagram's
/// length: the bookkeeping around it (its entry in its memo's B-tree, about 80 bytes with the
/// nodes' slack, and its datagram's allocation and reference count). It bounds the number of
/// grams held, not only their bytes, so a flood of empty grams is bounded too.
pub const GRAM_COST: usize = 128;

/// What one incomplete memo costs against [`Config::max_pending_bytes`] beyond its grams:
/// its state, its slot in the memo map (with the map's spare room), the first node of its
/// grams' B-tree (room for 11), its entries in the arrival orders. Measured by
/// `tests/memory.rs`, as the heap's growth under floods of memos that never complete.
pub const MEMO_COST: usize = 1536;

/// What one source with incomplete memos costs beyond them (its share's entry and the first
/// node of its memos' order), counted while it has any.
pub const SOURCE_COST: usize = 512;

/// What reassembly has done so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Datagrams handed in.
    pub grams: u64,
    /// Memos handed out.
    pub memos: u64,
    /// Grams refused with an error, held grams dropped when their memo's first gram showed
    /// them wrong included.
    pub rejected: u64,
    /// Copies of a gram already held (the first copy wins, as in hio).
    pub duplicates: u64,
    /// Incomplete memos dropped because [`Config::timeout`] passed.
    pub expired: u64,
    /// Incomplete memos dropped to stay within the pending bounds (a source's share, then
    /// the totals).
    pub evicted: u64,
    /// Datagrams longer than [`Config::max_gram_size`], dropped unread by the
    /// [`Receiver`](crate::Receiver).
    pub oversize: u64,
    /// Grams of a memo already delivered (by source and mid, within
    /// [`Config::replay_window`]), dropped: a replay, or a duplicate the network made.
    pub replayed: u64,
}

/// How much incomplete state is held now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pending {
    /// Incomplete memos.
    pub memos: usize,
    /// Their cost, as [`Config::max_pending_bytes`] counts it.
    pub bytes: usize,
}

/// The signer a memo's first gram named, and the key behind it.
#[derive(Debug, Clone, Copy)]
struct Signer {
    vid: Vid,
    key: [u8; 32],
}

/// A memo whose grams are not all in yet.
#[derive(Debug)]
struct Partial {
    /// Its place in arrival order, the key of [`Reassembly::order`].
    seq: u64,
    /// `Some` once the first gram (which gives the count) is in.
    count: Option<u32>,
    /// The first gram's signer; `None` for an unsigned memo or before the first gram.
    signer: Option<Signer>,
    /// By gram number. Before the first gram arrives the later grams here are unchecked.
    grams: BTreeMap<u32, Held>,
    /// Before the first gram: other copies of signed grams already held, which may be the
    /// real ones (the first copy may be forged); sorted out when the first gram comes.
    alternates: Vec<(u32, Held)>,
    /// Signed grams held unchecked, alternates included.
    early: usize,
    body_len: u64,
    cost: usize,
}

/// A gram held for its memo: its datagram and where the body lies in it. A quarter of a
/// [`Gram`]'s size, and no second reference to count.
#[derive(Debug)]
struct Held {
    wire: Bytes,
    body: Range<usize>,
}

impl Held {
    fn new(gram: Gram) -> Held {
        let start = gram.code().header_len(gram.encoding());
        let body = start..start + gram.body().len();
        Held {
            wire: gram.into_wire(),
            body,
        }
    }

    fn body(&self) -> &[u8] {
        self.wire.get(self.body.clone()).unwrap_or_default()
    }

    /// What holding it costs against the bounds.
    fn cost(&self) -> usize {
        self.wire.len() + GRAM_COST
    }

    /// The gram again, to check a signature once its signer is known. It was read once, so
    /// it reads again.
    fn gram(&self) -> Result<Gram, Error> {
        Gram::decode(self.wire.clone())
    }

    /// Whether it belongs in a memo of `count` grams whose first gram named `signer`.
    fn check(&self, number: u32, count: u32, signer: Option<&Signer>) -> Result<(), Error> {
        if number >= count {
            return Err(Error::GramNumber { number, count });
        }
        check_later(signer, &self.gram()?)
    }
}

impl Partial {
    /// Holds gram `number` unless a copy is held already (`Ok(None)`: the first copy wins,
    /// but for a signed gram before the first gram, kept aside in case the first copy was
    /// forged). Once the first gram is in, a later gram must be signed as it says. Returns
    /// the cost added.
    fn hold(&mut self, number: u32, gram: Gram, max_early: usize) -> Result<Option<usize>, Error> {
        let counted = self.count.is_some();
        if number != 0 && counted {
            check_later(self.signer.as_ref(), &gram)?;
        }
        let unchecked = !counted && gram.code().is_signed();
        if unchecked && self.early >= max_early {
            return Err(Error::TooEarly { max: max_early });
        }
        let held = Held::new(gram);
        let cost = held.cost();
        match self.grams.entry(number) {
            Entry::Vacant(slot) => {
                self.body_len += held.body.len() as u64;
                slot.insert(held);
            }
            Entry::Occupied(first) if unchecked && first.get().wire != held.wire => {
                self.alternates.push((number, held));
            }
            Entry::Occupied(_) => return Ok(None),
        }
        self.early += usize::from(unchecked);
        self.cost += cost;
        Ok(Some(cost))
    }

    /// The first gram has given the count and the signer: the grams that came before it are
    /// checked (at most `max_early` signatures), the real copy of each kept, the others
    /// dropped. Returns how many were refused and the cost freed.
    fn sort_early(&mut self) -> (u64, usize) {
        let (Some(count), signer) = (self.count, self.signer.as_ref()) else {
            return (0, 0);
        };
        let mut refused = 0;
        let mut freed = 0;
        let mut alternates = std::mem::take(&mut self.alternates);
        let numbers: Vec<u32> = self.grams.keys().copied().collect();
        for number in numbers {
            let Some(held) = self.grams.get(&number) else {
                continue;
            };
            let Err(e) = held.check(number, count, signer) else {
                continue;
            };
            debug!(number, error = %e, "held gram refused");
            refused += 1;
            let Some(held) = self.grams.remove(&number) else {
                continue;
            };
            freed += held.cost();
            self.body_len -= held.body.len() as u64;
            // Another copy may be the real one.
            while let Some(at) = alternates.iter().position(|(n, _)| *n == number) {
                let (_, other) = alternates.swap_remove(at);
                if other.check(number, count, signer).is_ok() {
                    self.body_len += other.body.len() as u64;
                    self.grams.insert(number, other);
                    break;
                }
                refused += 1;
                freed += other.cost();
            }
        }
        freed += alternates
            .iter()
            .map(|(_, held)| held.cost())
            .sum::<usize>();
        self.early = 0;
        self.cost -= freed;
        (refused, freed)
    }

    /// Whether every gram is in.
    fn is_whole(&self) -> bool {
        self.count == Some(self.grams.len() as u32)
    }
}

/// What one source holds: its incomplete memos, oldest first, and their cost.
#[derive(Debug)]
struct Share {
    /// Its incomplete memos by arrival order.
    memos: BTreeMap<u64, Mid>,
    /// What they cost, and [`SOURCE_COST`].
    cost: usize,
}

/// Reassembly of memos from grams, keyed by (source, mid), with hio's rules and the bounds hio
/// lacks.
///
/// - **Order and duplicates.** Grams may come in any order; the first copy of each gram
///   number wins and later copies are ignored, as in hio. Later grams must be numbered from
///   1 to the count less one.
/// - **Signing.** A memo is signed when its first gram is, and then every gram must be
///   signed by that gram's vid: unsigned grams in a signed memo are refused (hio mixes them
///   in). Signed later grams that arrive first (only the first gram names the signer) are
///   held, at most [`Config::max_early_grams`] a memo, and checked when it arrives (hio drops
///   them); a second, different copy of such a gram is held beside the first, so that a
///   forged copy that came first cannot take the real one's place, and a gram that turns out
///   wrong (forged, or numbered past the count) is dropped alone. `D` and `E` vids are looked
///   up in [`Config::keys`]. With [`Config::authic`] unsigned grams are refused; with
///   [`Config::allowed`] signers not on the list are.
/// - **A count of 0**, which hio's binary mode sends for memos of 8 bytes or less, is taken as
///   1: the first gram's body is the memo (hio hands out an empty memo instead).
/// - **Bounds, fair between sources.** An incomplete memo is dropped [`Config::timeout`]
///   after its first gram arrived. A source past [`Config::max_source_memos`] or
///   [`Config::max_source_bytes`] loses its own oldest incomplete memo, so that a flood from
///   one source evicts nobody else's. Past [`Config::max_pending_memos`] or
///   [`Config::max_pending_bytes`] (many sources at once), the oldest memo of a source
///   holding more than the average goes (among the 16 oldest; else the oldest), until both
///   hold.
///
/// Every gram refused is an [`Error`] and a `debug` event; nothing refused ever panics.
/// A complete memo's state is deleted as it is handed out, so a replayed memo is handed out
/// again (as in hio).
///
/// ```
/// use std::time::Instant;
/// use memogram::{Config, Encoding, Mid, Reassembly, Shape, segment};
///
/// let config = Config::default();
/// let shape = Shape { size: 40, encoding: Encoding::Base64 };
/// let grams = segment(b"See ya later alligator!", Mid::fresh(), &shape, None, &config)?;
/// let mut reassembly = Reassembly::new(config);
/// let now = Instant::now();
/// // Out of order: nothing is whole until the last gram is in.
/// let mut memos = Vec::new();
/// for gram in grams.into_iter().rev() {
///     memos.extend(reassembly.receive(gram, "peer", now)?);
/// }
/// assert_eq!(memos.len(), 1);
/// assert_eq!(memos[0].text()?, "See ya later alligator!");
/// assert_eq!(reassembly.pending().memos, 0);
/// # Ok::<(), memogram::Error>(())
/// ```
#[derive(Debug)]
pub struct Reassembly<S> {
    config: Config,
    /// Seeded per map (foldhash's random state): sources and mids come from the wire, so the
    /// hash must not be a fixed function.
    memos: HashMap<(S, Mid), Partial, RandomState>,
    /// Incomplete memos by arrival order, with when each started: the front is the next to
    /// expire.
    order: BTreeMap<u64, ((S, Mid), Instant)>,
    /// What each source holds.
    shares: HashMap<S, Share, RandomState>,
    next_seq: u64,
    /// The latest time seen, so that state is ordered even if the clock handed in goes back.
    latest: Option<Instant>,
    cost: usize,
    stats: Stats,
    /// Memos delivered, by source and mid, the oldest first ([`Config::replay_window`]).
    delivered: HashSet<(S, Mid), RandomState>,
    delivered_order: VecDeque<(S, Mid)>,
}

impl<S: Clone + Eq + Hash + fmt::Debug> Reassembly<S> {
    /// Empty reassembly state with `config`'s limits and trust.
    pub fn new(config: Config) -> Reassembly<S> {
        Reassembly {
            config,
            memos: HashMap::default(),
            order: BTreeMap::new(),
            shares: HashMap::default(),
            next_seq: 0,
            latest: None,
            cost: 0,
            stats: Stats::default(),
            delivered: HashSet::default(),
            delivered_order: VecDeque::new(),
        }
    }

    /// Replaces whom it believes: keys, allow-list and `authic` (see
    /// [`TrustHandle`](crate::TrustHandle)). Memos whose first gram was verified already keep
    /// their signer.
    pub fn set_trust(&mut self, trust: Trust) {
        self.config.keys = trust.keys;
        self.config.allowed = trust.allowed;
        self.config.authic = trust.authic;
    }

    /// Takes one datagram from `source` at time `now`, and hands out the memo it completes.
    ///
    /// `Ok(None)` means the gram was kept (or was a duplicate) and its memo is not whole yet.
    /// An error means this gram was refused; the memo it belongs to may still complete. State
    /// past its timeout is expired first.
    pub fn receive(
        &mut self,
        datagram: Bytes,
        source: S,
        now: Instant,
    ) -> Result<Option<Memo<S>>, Error> {
        let now = self.clock(now);
        self.expire(now);
        self.stats.grams += 1;
        let result = self.take(datagram, &source, now);
        match &result {
            Err(e) => {
                self.stats.rejected += 1;
                debug!(?source, error = %e, "gram refused");
            }
            Ok(Some(memo)) => self.remember(source, memo.mid()),
            Ok(None) => {}
        }
        result
    }

    /// Remembers a delivered memo within the replay window.
    fn remember(&mut self, source: S, mid: Mid) {
        if self.config.replay_window == 0 {
            return;
        }
        let key = (source, mid);
        if self.delivered.insert(key.clone()) {
            self.delivered_order.push_back(key);
        }
        while self.delivered_order.len() > self.config.replay_window {
            if let Some(oldest) = self.delivered_order.pop_front() {
                self.delivered.remove(&oldest);
            }
        }
    }

    /// Drops the incomplete memos whose timeout has passed at `now`; returns how many.
    pub fn expire(&mut self, now: Instant) -> usize {
        let now = self.clock(now);
        let mut expired = 0;
        while let Some(deadline) = self.next_deadline() {
            if deadline > now {
                break;
            }
            if let Some((key, partial)) = self.pop_oldest() {
                debug!(source = ?key.0, mid = %key.1, grams = partial.grams.len(), "incomplete memo expired");
            }
            expired += 1;
        }
        self.stats.expired += expired as u64;
        expired
    }

    /// When the oldest incomplete memo expires: the time to call [`expire`](Self::expire) next
    /// (`None` when nothing is held, or nothing expires within the clock's range).
    pub fn next_deadline(&self) -> Option<Instant> {
        let (_, (_, started)) = self.order.first_key_value()?;
        started.checked_add(self.config.timeout)
    }

    /// Counts a datagram too long to be a gram, dropped before it was read.
    pub(crate) fn oversize(&mut self) {
        self.stats.grams += 1;
        self.stats.oversize += 1;
    }

    /// How much incomplete state is held now.
    pub fn pending(&self) -> Pending {
        Pending {
            memos: self.memos.len(),
            bytes: self.cost,
        }
    }

    /// What reassembly has done so far.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// The config it runs with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    fn clock(&mut self, now: Instant) -> Instant {
        let latest = self.latest.map_or(now, |latest| latest.max(now));
        self.latest = Some(latest);
        latest
    }

    fn take(
        &mut self,
        datagram: Bytes,
        source: &S,
        now: Instant,
    ) -> Result<Option<Memo<S>>, Error> {
        let gram = Gram::decode(datagram)?;
        if self.config.authic && !gram.code().is_signed() {
            return Err(Error::Unsigned {
                why: "only signed grams are accepted (authic)",
            });
        }
        let key = (source.clone(), gram.mid());
        if self.delivered.contains(&key) {
            self.stats.replayed += 1;
            debug!(?source, mid = %key.1, "a gram of a memo already delivered: dropped (replay)");
            return Ok(None);
        }
        match gram.count() {
            Some(count) => self.take_first(key, gram, count, now),
            None => self.take_later(key, gram, now),
        }
    }

    fn take_first(
        &mut self,
        key: (S, Mid),
        gram: Gram,
        count: u32,
        now: Instant,
    ) -> Result<Option<Memo<S>>, Error> {
        // hio's binary mode sends a count of 0 for memos of 8 bytes or less.
        let count = count.max(1);
        if count > self.config.max_gram_count {
            return Err(Error::TooManyGrams {
                count,
                max: self.config.max_gram_count,
            });
        }
        let signer = match gram.vid() {
            Some(vid) => Some(self.signer(vid, &gram)?),
            None => None,
        };
        if count == 1 && !self.memos.contains_key(&key) {
            // A memo of one gram (the usual small memo) never becomes state.
            let (len, max) = (gram.body().len() as u64, self.config.max_memo_size);
            if len > max {
                return Err(Error::MemoTooLarge { len, max });
            }
            self.stats.memos += 1;
            let (source, mid) = key;
            return Ok(Some(Memo::new(
                mid,
                source,
                signer.map(|s| s.vid),
                gram.body().clone(),
            )));
        }
        let partial = self.open(&key, now);
        if partial.count.is_some() {
            self.stats.duplicates += 1;
            trace!(source = ?key.0, mid = %key.1, "first gram again: ignored");
            return Ok(None);
        }
        partial.count = Some(count);
        partial.signer = signer;
        // The grams that came first are checked now that the count and signer are known.
        let (refused, freed) = partial.sort_early();
        self.stats.rejected += refused;
        self.charge(&key.0, 0, freed);
        // Gram 0 is never held before this: a later gram numbered 0 is refused.
        let Some(partial) = self.memos.get_mut(&key) else {
            return Ok(None);
        };
        let max_early = self.config.max_early_grams;
        let added = partial.hold(0, gram, max_early)?.unwrap_or(0);
        let (body_len, whole) = (partial.body_len, partial.is_whole());
        self.settle(key, added, body_len, whole)
    }

    fn take_later(
        &mut self,
        key: (S, Mid),
        gram: Gram,
        now: Instant,
    ) -> Result<Option<Memo<S>>, Error> {
        let number = gram.number();
        if number == 0 {
            let count = self.memos.get(&key).and_then(|p| p.count).unwrap_or(0);
            return Err(Error::GramNumber { number, count });
        }
        // One map lookup a gram: the memo's state is found (or made) once.
        let max_early = self.config.max_early_grams;
        let partial = self.open(&key, now);
        if let Some(count) = partial.count.filter(|&count| number >= count) {
            return Err(Error::GramNumber { number, count });
        }
        let Some(added) = partial.hold(number, gram, max_early)? else {
            self.stats.duplicates += 1;
            trace!(source = ?key.0, mid = %key.1, number, "gram again: ignored");
            return Ok(None);
        };
        let (body_len, whole) = (partial.body_len, partial.is_whole());
        self.settle(key, added, body_len, whole)
    }

    /// The signer a signed first gram names, once its vid is allowed and known, and the
    /// gram's signature verifies.
    fn signer(&self, vid: Vid, gram: &Gram) -> Result<Signer, Error> {
        if let Some(allowed) = &self.config.allowed {
            if !allowed.contains(&vid) {
                return Err(Error::NotAllowed { vid });
            }
        }
        let key = self
            .config
            .keys
            .key(&vid)
            .ok_or(Error::UnknownVid { vid })?;
        verify(gram, &key)?;
        Ok(Signer { vid, key })
    }

    /// The state of `key`'s memo, made if there is none.
    fn open(&mut self, key: &(S, Mid), now: Instant) -> &mut Partial {
        let (order, next_seq, cost) = (&mut self.order, &mut self.next_seq, &mut self.cost);
        let shares = &mut self.shares;
        self.memos.entry(key.clone()).or_insert_with(|| {
            let seq = *next_seq;
            *next_seq += 1;
            order.insert(seq, (key.clone(), now));
            *cost += MEMO_COST;
            let share = shares.entry(key.0.clone()).or_insert_with(|| {
                *cost += SOURCE_COST;
                Share {
                    memos: BTreeMap::new(),
                    cost: SOURCE_COST,
                }
            });
            share.memos.insert(seq, key.1);
            share.cost += MEMO_COST;
            Partial {
                seq,
                count: None,
                signer: None,
                grams: BTreeMap::new(),
                alternates: Vec::new(),
                early: 0,
                body_len: 0,
                cost: MEMO_COST,
            }
        })
    }

    /// Counts `added` bytes more and `freed` bytes fewer held for `source`, in its share and
    /// in the total.
    fn charge(&mut self, source: &S, added: usize, freed: usize) {
        self.cost = self.cost + added - freed;
        if let Some(share) = self.shares.get_mut(source) {
            share.cost = share.cost + added - freed;
        }
    }

    /// Counts `added` bytes of a gram just held in `key`'s memo, keeps within the bounds, and
    /// hands out the memo if it is now `whole`.
    fn settle(
        &mut self,
        key: (S, Mid),
        added: usize,
        body_len: u64,
        whole: bool,
    ) -> Result<Option<Memo<S>>, Error> {
        // One lookup of the source's share a gram: counted and checked at once.
        self.cost += added;
        let over_share = self.shares.get_mut(&key.0).is_some_and(|share| {
            share.cost += added;
            share.memos.len() > self.config.max_source_memos
                || share.cost > self.config.max_source_bytes
        });
        let max = self.config.max_memo_size;
        if body_len > max {
            self.remove(&key);
            return Err(Error::MemoTooLarge { len: body_len, max });
        }
        if whole {
            return Ok(self.fuse(key));
        }
        if over_share {
            self.bound_share(&key);
        }
        self.bound_totals(&key);
        Ok(None)
    }

    /// Drops the oldest memos of `current`'s source until it is within its share.
    fn bound_share(&mut self, current: &(S, Mid)) {
        let (max_memos, max_bytes) = (self.config.max_source_memos, self.config.max_source_bytes);
        while let Some(share) = self.shares.get(&current.0)
            && (share.memos.len() > max_memos || share.cost > max_bytes)
        {
            let Some((_, &mid)) = share.memos.first_key_value() else {
                break;
            };
            self.evict((current.0.clone(), mid), "the source's share", current);
        }
    }

    /// Drops memos until the totals hold (see [`victim`](Self::victim)).
    fn bound_totals(&mut self, current: &(S, Mid)) {
        while self.memos.len() > self.config.max_pending_memos
            || self.cost > self.config.max_pending_bytes
        {
            let Some(key) = self.victim() else {
                break;
            };
            self.evict(key, "the pending totals", current);
        }
    }

    /// The memo to drop when the totals are reached: the oldest of a source that holds more
    /// than the average, among the 16 oldest memos; else the oldest.
    fn victim(&self) -> Option<(S, Mid)> {
        let average = self.cost / self.shares.len().max(1);
        let heavy = |source: &S| self.shares.get(source).is_some_and(|s| s.cost > average);
        let mut oldest = self.order.values().map(|(key, _)| key);
        let first = oldest.clone().next()?;
        let key = oldest.by_ref().take(16).find(|key| heavy(&key.0));
        Some(key.unwrap_or(first).clone())
    }

    fn evict(&mut self, key: (S, Mid), bound: &'static str, current: &(S, Mid)) {
        if let Some(partial) = self.remove(&key) {
            self.stats.evicted += 1;
            debug!(
                source = ?key.0,
                mid = %key.1,
                grams = partial.grams.len(),
                current = (&key == current),
                bound,
                "incomplete memo evicted"
            );
        }
    }

    /// Hands out `key`'s memo, whose grams are all in, and deletes its state.
    fn fuse(&mut self, key: (S, Mid)) -> Option<Memo<S>> {
        let partial = self.remove(&key)?;
        let body = match partial.grams.len() {
            1 => {
                let held = partial.grams.into_values().next()?;
                held.wire.slice(held.body)
            }
            _ => {
                // Bounded: body_len is at most max_memo_size and max_pending_bytes.
                let mut body = BytesMut::with_capacity(partial.body_len as usize);
                for held in partial.grams.values() {
                    body.extend_from_slice(held.body());
                }
                body.freeze()
            }
        };
        self.stats.memos += 1;
        let (source, mid) = key;
        Some(Memo::new(mid, source, partial.signer.map(|s| s.vid), body))
    }

    fn pop_oldest(&mut self) -> Option<((S, Mid), Partial)> {
        let (_, (key, _)) = self.order.first_key_value()?;
        let key = key.clone();
        let partial = self.remove(&key)?;
        Some((key, partial))
    }

    fn remove(&mut self, key: &(S, Mid)) -> Option<Partial> {
        let partial = self.memos.remove(key)?;
        self.order.remove(&partial.seq);
        self.cost -= partial.cost;
        if let Some(share) = self.shares.get_mut(&key.0) {
            share.memos.remove(&partial.seq);
            share.cost -= partial.cost;
            if share.memos.is_empty() {
                self.shares.remove(&key.0);
                self.cost -= SOURCE_COST;
            }
        }
        Some(partial)
    }
}

/// Whether a later gram belongs in a memo whose first gram named `signer` (`None`: unsigned).
fn check_later(signer: Option<&Signer>, gram: &Gram) -> Result<(), Error> {
    match (signer, gram.code().is_signed()) {
        (Some(signer), true) => verify(gram, &signer.key),
        (Some(_), false) => Err(Error::Unsigned {
            why: "the memo's first gram is signed, so every gram must be",
        }),
        (None, true) => Err(Error::BadSignature {
            why: "the memo's first gram is unsigned, so there is no vid to check it against",
        }),
        (None, false) => Ok(()),
    }
}
