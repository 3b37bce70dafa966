//! The duplicate-request cache of a datagram server: a retransmitted call is answered with
//! the reply already sent, or dropped while the first one still runs, instead of running
//! twice (libtirpc's `svc_dg_enablecache`, keyed the same way: source, xid, program,
//! version, procedure). Bounded in entries and in bytes, in total and per source: a source
//! past its share (a quarter of each bound) loses its own oldest reply, and when the whole
//! cache is full the oldest reply of the source holding the most goes, so that one source's
//! flood of calls cannot push out another source's replies.

use std::collections::{HashMap, VecDeque};

use bytes::Bytes;

use crate::PeerAddr;

/// A call as the cache knows it: its source, and the first 24 bytes of its header (xid,
/// message type, RPC version, program, version, procedure).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct CallKey {
    source: PeerAddr,
    header: [u8; 24],
}

impl CallKey {
    /// The key of `message` from `source`; `None` for a message too short to be a call.
    pub fn of(source: &PeerAddr, message: &[u8]) -> Option<CallKey> {
        Some(CallKey {
            source: source.clone(),
            header: message.get(..24)?.try_into().ok()?,
        })
    }
}

/// What the cache knows of a call.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Seen {
    /// New: run it (the cache now marks it in progress).
    New,
    /// It runs already: drop the retransmission.
    Running,
    /// Answered: send this reply again.
    Answered(Bytes),
}

/// The replies one source has in the cache, oldest first, and their bytes.
#[derive(Debug, Default)]
struct Share {
    order: VecDeque<CallKey>,
    bytes: usize,
}

#[derive(Debug)]
pub(crate) struct ReplyCache {
    entries: HashMap<CallKey, Option<Bytes>, foldhash::fast::RandomState>,
    /// Each source's answered calls.
    shares: HashMap<PeerAddr, Share, foldhash::fast::RandomState>,
    /// Answered calls kept, and their bytes, over all sources.
    kept: usize,
    bytes: usize,
    max_entries: usize,
    max_bytes: usize,
}

impl ReplyCache {
    pub fn new(max_entries: usize, max_bytes: usize) -> ReplyCache {
        ReplyCache {
            entries: HashMap::default(),
            shares: HashMap::default(),
            kept: 0,
            bytes: 0,
            max_entries,
            max_bytes,
        }
    }

    /// A source's share: a quarter of each bound, at least one reply.
    fn share_limits(&self) -> (usize, usize) {
        ((self.max_entries / 4).max(1), (self.max_bytes / 4).max(1))
    }

    /// Looks `key` up, marking a new call in progress.
    pub fn seen(&mut self, key: &CallKey) -> Seen {
        if self.max_entries == 0 {
            return Seen::New;
        }
        match self.entries.get(key) {
            Some(Some(reply)) => Seen::Answered(reply.clone()),
            Some(None) => Seen::Running,
            None => {
                self.entries.insert(key.clone(), None);
                Seen::New
            }
        }
    }

    /// Call `key` was answered with `reply` (`None`: no reply, forget it).
    pub fn answered(&mut self, key: CallKey, reply: Option<Bytes>) {
        if self.max_entries == 0 {
            return;
        }
        let (share_entries, share_bytes) = self.share_limits();
        let Some(reply) = reply.filter(|r| r.len() <= share_bytes) else {
            self.entries.remove(&key);
            return;
        };
        let source = key.source.clone();
        let share = self.shares.entry(source.clone()).or_default();
        share.bytes += reply.len();
        share.order.push_back(key.clone());
        self.kept += 1;
        self.bytes += reply.len();
        self.entries.insert(key, Some(reply));
        // Past its share, a source makes room from its own replies.
        while self
            .shares
            .get(&source)
            .is_some_and(|s| s.order.len() > share_entries || s.bytes > share_bytes)
        {
            self.evict_oldest_of(&source);
        }
        // The cache is full: the source holding the most gives up its oldest.
        while self.kept > self.max_entries || self.bytes > self.max_bytes {
            let largest = self
                .shares
                .iter()
                .max_by_key(|(_, s)| (s.order.len(), s.bytes))
                .map(|(source, _)| source.clone());
            match largest {
                Some(source) => self.evict_oldest_of(&source),
                None => break,
            }
        }
    }

    fn evict_oldest_of(&mut self, source: &PeerAddr) {
        let Some(share) = self.shares.get_mut(source) else {
            return;
        };
        if let Some(oldest) = share.order.pop_front()
            && let Some(Some(reply)) = self.entries.remove(&oldest)
        {
            share.bytes -= reply.len();
            self.kept -= 1;
            self.bytes -= reply.len();
        }
        if share.order.is_empty() {
            self.shares.remove(source);
        }
    }

    /// The replies kept, and their bytes.
    #[cfg(test)]
    pub fn size(&self) -> (usize, usize) {
        (self.kept, self.bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(port: u16, xid: u8) -> CallKey {
        let mut header = [0; 24];
        header[3] = xid;
        CallKey::of(&PeerAddr::Inet(([127, 0, 0, 1], port).into()), &header).unwrap()
    }

    #[test]
    fn a_retransmission_is_dropped_while_running_and_answered_from_the_cache_after() {
        let mut cache = ReplyCache::new(2, 100);
        assert_eq!(cache.seen(&key(1, 1)), Seen::New);
        assert_eq!(cache.seen(&key(1, 1)), Seen::Running);
        // Another source, same xid: another call.
        assert_eq!(cache.seen(&key(2, 1)), Seen::New);
        cache.answered(key(1, 1), Some(Bytes::from_static(b"reply")));
        assert_eq!(
            cache.seen(&key(1, 1)),
            Seen::Answered(Bytes::from_static(b"reply"))
        );
        // No reply: forgotten, so a retransmission runs again.
        cache.answered(key(2, 1), None);
        assert_eq!(cache.seen(&key(2, 1)), Seen::New);
    }

    #[test]
    fn a_source_past_its_share_loses_its_own_oldest_reply() {
        // Shares of 2 replies and 10 bytes.
        let mut cache = ReplyCache::new(8, 40);
        for xid in 0..3 {
            cache.seen(&key(1, xid));
            cache.answered(key(1, xid), Some(Bytes::from_static(b"1234")));
        }
        assert_eq!(cache.size(), (2, 8));
        assert_eq!(cache.seen(&key(1, 0)), Seen::New, "the oldest went");
        assert!(matches!(cache.seen(&key(1, 2)), Seen::Answered(_)));
        // Bytes count too: an 8-byte reply leaves room for nothing else of that source.
        cache.seen(&key(1, 9));
        cache.answered(key(1, 9), Some(Bytes::from(vec![0; 8])));
        assert_eq!(cache.size(), (1, 8));
        // A reply larger than a share is not kept.
        cache.seen(&key(1, 10));
        cache.answered(key(1, 10), Some(Bytes::from(vec![0; 11])));
        assert_eq!(cache.size(), (1, 8));
        assert_eq!(cache.seen(&key(1, 10)), Seen::New);
    }

    #[test]
    fn a_flood_from_one_source_does_not_push_out_another_sources_reply() {
        let mut cache = ReplyCache::new(8, 1 << 20);
        cache.seen(&key(2, 1));
        cache.answered(key(2, 1), Some(Bytes::from_static(b"kept")));
        for xid in 0..200 {
            cache.seen(&key(1, xid));
            cache.answered(key(1, xid), Some(Bytes::from_static(b"flood")));
        }
        assert_eq!(
            cache.seen(&key(2, 1)),
            Seen::Answered(Bytes::from_static(b"kept"))
        );
        assert_eq!(
            cache.size(),
            (3, 4 + 2 * 5),
            "the flood keeps its share only"
        );
    }

    #[test]
    fn a_full_cache_takes_from_the_source_holding_the_most() {
        // Shares of 2 replies; 4 sources fill the 8.
        let mut cache = ReplyCache::new(8, 1 << 20);
        for source in 1..=4 {
            for xid in 0..2 {
                cache.seen(&key(source, xid));
                cache.answered(key(source, xid), Some(Bytes::from_static(b"r")));
            }
        }
        assert_eq!(cache.size(), (8, 8));
        // A fifth source's first reply: one of the sources holding two gives up its oldest,
        // and the newcomer keeps its own.
        cache.seen(&key(5, 0));
        cache.answered(key(5, 0), Some(Bytes::from_static(b"r")));
        assert_eq!(cache.size(), (8, 8));
        assert!(matches!(cache.seen(&key(5, 0)), Seen::Answered(_)));
        let gone = (1..=4)
            .filter(|&source| cache.seen(&key(source, 0)) == Seen::New)
            .count();
        assert_eq!(gone, 1, "exactly one source lost its oldest");
    }
}
