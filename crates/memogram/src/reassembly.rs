//! [`Reassembly`]: grams in, whole memos out. A state machine with no I/O: the caller hands
//! it each datagram with its source and the time, and asks it to expire old state.

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::hash::Hash;
use std::ops::Range;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use foldhash::fast::RandomState;
use tracing::{debug, trace};

use crate::{Config, Error, Gram, Memo, Mid, Vid, verify};

/// What one stored gram costs against [`Config::max_pending_bytes`] beyond its datagram's
/// length: the bookkeeping around it (its entry in its memo's B-tree, about 80 bytes with the
/// nodes' slack, and its datagram's allocation and reference count). It bounds the number of
/// grams held, not only their bytes, so a flood of empty grams is bounded too.
pub const GRAM_COST: usize = 128;

/// What one incomplete memo costs against [`Config::max_pending_bytes`] beyond its grams.
pub const MEMO_COST: usize = 256;

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
    /// Incomplete memos dropped, oldest first, to stay within the pending bounds.
    pub evicted: u64,
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

    /// The gram again, to check a signature once its signer is known. It was read once, so
    /// it reads again.
    fn gram(&self) -> Result<Gram, Error> {
        Gram::decode(self.wire.clone())
    }
}

impl Partial {
    /// Holds gram `number` unless a copy is held already (`Ok(None)`: the first copy wins).
    /// Once the first gram is in, a later gram must be signed as it says. Returns the cost
    /// added.
    fn hold(&mut self, number: u32, gram: Gram) -> Result<Option<usize>, Error> {
        let Entry::Vacant(slot) = self.grams.entry(number) else {
            return Ok(None);
        };
        if number != 0 && self.count.is_some() {
            check_later(self.signer.as_ref(), &gram)?;
        }
        let cost = gram.wire().len() + GRAM_COST;
        self.body_len += gram.body().len() as u64;
        self.cost += cost;
        slot.insert(Held::new(gram));
        Ok(Some(cost))
    }

    /// Whether every gram is in.
    fn is_whole(&self) -> bool {
        self.count == Some(self.grams.len() as u32)
    }
}

/// Reassembly of memos from grams, keyed by (source, mid), with hio's rules and the bounds hio
/// lacks.
///
/// - **Order and duplicates.** Grams may come in any order; the first copy of each gram
///   number wins and later copies are ignored, as in hio. Later grams must be numbered from
///   1 to the count less one.
/// - **Signing.** A memo is signed when its first gram is, and then every gram must be
///   signed by that gram's vid: signed later grams that arrive first are held and checked
///   once it arrives (hio drops them), and unsigned grams in a signed memo are refused (hio
///   mixes them in). `D` and `E` vids are looked up in [`Config::keys`]. With
///   [`Config::authic`] unsigned grams are refused; with [`Config::allowed`] signers not on
///   the list are.
/// - **A count of 0**, which hio's binary mode sends for memos of 8 bytes or less, is taken as
///   1: the first gram's body is the memo (hio hands out an empty memo instead).
/// - **Bounds.** An incomplete memo is dropped [`Config::timeout`] after its first gram
///   arrived. Past [`Config::max_pending_memos`] or [`Config::max_pending_bytes`], the oldest
///   incomplete memo is dropped (the one whose first gram came first), until both hold.
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
    /// expire or be evicted.
    order: BTreeMap<u64, ((S, Mid), Instant)>,
    next_seq: u64,
    /// The latest time seen, so that state is ordered even if the clock handed in goes back.
    latest: Option<Instant>,
    cost: usize,
    stats: Stats,
}

impl<S: Clone + Eq + Hash + fmt::Debug> Reassembly<S> {
    /// Empty reassembly state with `config`'s limits and trust.
    pub fn new(config: Config) -> Reassembly<S> {
        Reassembly {
            config,
            memos: HashMap::default(),
            order: BTreeMap::new(),
            next_seq: 0,
            latest: None,
            cost: 0,
            stats: Stats::default(),
        }
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
        if let Err(e) = &result {
            self.stats.rejected += 1;
            debug!(?source, error = %e, "gram refused");
        }
        result
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

    /// When the oldest incomplete memo expires: the time to call [`expire`](Self::expire) next.
    pub fn next_deadline(&self) -> Option<Instant> {
        let (_, (_, started)) = self.order.first_key_value()?;
        Some(*started + self.config.timeout)
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
        if let Some(beyond) = partial.grams.range(count..).next().map(|(n, _)| *n) {
            self.remove(&key);
            return Err(Error::GramNumber {
                number: beyond,
                count,
            });
        }
        // The later grams that came first are checked now that the signer is known.
        let refused: Vec<(u32, Error)> = partial
            .grams
            .iter()
            .filter_map(|(number, held)| {
                held.gram()
                    .and_then(|gram| check_later(partial.signer.as_ref(), &gram))
                    .err()
                    .map(|e| (*number, e))
            })
            .collect();
        for (number, e) in refused {
            self.drop_gram(&key, number);
            self.stats.rejected += 1;
            debug!(source = ?key.0, mid = %key.1, number, error = %e, "held gram refused");
        }
        // Gram 0 is never held before this: a later gram numbered 0 is refused.
        let Some(partial) = self.memos.get_mut(&key) else {
            return Ok(None);
        };
        let added = partial.hold(0, gram)?.unwrap_or(0);
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
        let partial = self.open(&key, now);
        if let Some(count) = partial.count.filter(|&count| number >= count) {
            return Err(Error::GramNumber { number, count });
        }
        let Some(added) = partial.hold(number, gram)? else {
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
        self.memos.entry(key.clone()).or_insert_with(|| {
            let seq = *next_seq;
            *next_seq += 1;
            order.insert(seq, (key.clone(), now));
            *cost += MEMO_COST;
            Partial {
                seq,
                count: None,
                signer: None,
                grams: BTreeMap::new(),
                body_len: 0,
                cost: MEMO_COST,
            }
        })
    }

    /// Takes gram `number` out of `key`'s memo.
    fn drop_gram(&mut self, key: &(S, Mid), number: u32) {
        let Some(partial) = self.memos.get_mut(key) else {
            return;
        };
        if let Some(held) = partial.grams.remove(&number) {
            let cost = held.wire.len() + GRAM_COST;
            partial.cost -= cost;
            partial.body_len -= held.body.len() as u64;
            self.cost -= cost;
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
        self.cost += added;
        let max = self.config.max_memo_size;
        if body_len > max {
            self.remove(&key);
            return Err(Error::MemoTooLarge { len: body_len, max });
        }
        if whole {
            return Ok(self.fuse(key));
        }
        self.bound(&key);
        Ok(None)
    }

    /// Drops the oldest incomplete memos until both pending bounds hold.
    fn bound(&mut self, current: &(S, Mid)) {
        while self.memos.len() > self.config.max_pending_memos
            || self.cost > self.config.max_pending_bytes
        {
            let Some((key, partial)) = self.pop_oldest() else {
                break;
            };
            self.stats.evicted += 1;
            debug!(
                source = ?key.0,
                mid = %key.1,
                grams = partial.grams.len(),
                current = (&key == current),
                "incomplete memo evicted: pending bounds reached"
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
        let (_, (key, _)) = self.order.pop_first()?;
        let partial = self.memos.remove(&key)?;
        self.cost -= partial.cost;
        Some((key, partial))
    }

    fn remove(&mut self, key: &(S, Mid)) -> Option<Partial> {
        let partial = self.memos.remove(key)?;
        self.order.remove(&partial.seq);
        self.cost -= partial.cost;
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
