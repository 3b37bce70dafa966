//! The duplicate-request cache of a datagram server: a retransmitted call is answered with
//! the reply already sent, or dropped while the first one still runs, instead of running
//! twice (libtirpc's `svc_dg_enablecache`, keyed the same way: source, xid, program,
//! version, procedure). Bounded in entries and in bytes; the oldest reply goes first.

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

#[derive(Debug)]
pub(crate) struct ReplyCache {
    entries: HashMap<CallKey, Option<Bytes>, foldhash::fast::RandomState>,
    /// Answered calls, oldest first.
    order: VecDeque<CallKey>,
    bytes: usize,
    max_entries: usize,
    max_bytes: usize,
}

impl ReplyCache {
    pub fn new(max_entries: usize, max_bytes: usize) -> ReplyCache {
        ReplyCache {
            entries: HashMap::default(),
            order: VecDeque::new(),
            bytes: 0,
            max_entries,
            max_bytes,
        }
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
        let Some(reply) = reply.filter(|r| r.len() <= self.max_bytes) else {
            self.entries.remove(&key);
            return;
        };
        self.bytes += reply.len();
        self.entries.insert(key.clone(), Some(reply));
        self.order.push_back(key);
        while self.order.len() > self.max_entries || self.bytes > self.max_bytes {
            let Some(oldest) = self.order.pop_front() else {
                break;
            };
            if let Some(Some(reply)) = self.entries.remove(&oldest) {
                self.bytes -= reply.len();
            }
        }
    }

    /// The replies kept, and their bytes.
    #[cfg(test)]
    pub fn size(&self) -> (usize, usize) {
        (self.order.len(), self.bytes)
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
    fn bounded_in_entries_and_bytes_oldest_first() {
        let mut cache = ReplyCache::new(2, 10);
        for xid in 0..3 {
            cache.seen(&key(1, xid));
            cache.answered(key(1, xid), Some(Bytes::from_static(b"1234")));
        }
        assert_eq!(cache.size(), (2, 8));
        assert_eq!(cache.seen(&key(1, 0)), Seen::New);
        cache.seen(&key(1, 9));
        cache.answered(key(1, 9), Some(Bytes::from(vec![0; 8])));
        assert_eq!(cache.size(), (1, 8));
        // A reply larger than the whole cache is not kept.
        cache.seen(&key(1, 10));
        cache.answered(key(1, 10), Some(Bytes::from(vec![0; 11])));
        assert_eq!(cache.size(), (1, 8));
        assert_eq!(cache.seen(&key(1, 10)), Seen::New);
    }
}
