//! Admission: what the reader decides at each fragment header, and what a record became.

use std::fmt;

use bytes::Bytes;

use crate::ServerError;

/// A fragment header as the admission rule sees it, before any of its payload is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fragment {
    /// The fragment's declared length.
    pub len: u32,
    /// Whether it is the record's last fragment.
    pub last: bool,
    /// Its position in the record, from 0.
    pub index: u32,
    /// The record's length so far, this fragment's declared length included (Ocamlnet's
    /// `before_record` argument: 12 and then 20 for a 12 + 8 byte record).
    pub so_far: u64,
}

/// What to do with the record a fragment belongs to (Ocamlnet's `in_rule`).
///
/// The rule is asked at each fragment header as long as every answer so far was
/// [`Accept`](Rule::Accept); the first other answer holds for the rest of the record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// Read the record and hand it over whole.
    Accept,
    /// A hostile peer: reported at once, so that the connection can be closed; the rest of
    /// the record is discarded as it streams past if decoding goes on.
    Deny,
    /// Forget this record silently: discarded as it streams past, nothing buffered.
    Drop,
    /// Keep only the xid, to answer with an error (AUTH_TOOWEAK, as Ocamlnet does).
    Reject,
    /// Keep only the xid, to answer with this error.
    RejectWith(ServerError),
}

/// The transaction id of an RPC message: its first 4 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Xid(pub u32);

impl fmt::Display for Xid {
    /// `xid 0x11223344`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "xid {:#010x}", self.0)
    }
}

/// What a record became, by the rule that held for it (Ocamlnet's `in_record`, with the
/// xid instead of "the beginning of the message", so nothing more can be kept by mistake).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// The whole record (its fragments joined; the bytes are shared with the read buffer
    /// when it came in one fragment). May be empty: an empty record is legal framing.
    Accept(Bytes),
    /// The rule said [`Rule::Deny`].
    Deny,
    /// The rule said [`Rule::Drop`]; the record has been discarded.
    Drop,
    /// The rule said [`Rule::Reject`]; the record has been discarded but for its xid.
    Reject {
        /// The record's xid.
        xid: Xid,
    },
    /// The rule said [`Rule::RejectWith`].
    RejectWith {
        /// The record's xid.
        xid: Xid,
        /// The error to answer with.
        error: ServerError,
    },
}

impl fmt::Display for Record {
    /// One line: `accept len=40`, `drop`, `reject xid 0x00000051`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Record::Accept(bytes) => write!(f, "accept len={}", bytes.len()),
            Record::Deny => f.write_str("deny"),
            Record::Drop => f.write_str("drop"),
            Record::Reject { xid } => write!(f, "reject {xid}"),
            Record::RejectWith { xid, error } => write!(f, "reject {xid} with {error}"),
        }
    }
}

/// Decides, at each fragment header, what becomes of the record (Ocamlnet's
/// `before_record`). Any `FnMut(&Fragment) -> Rule` is one.
pub trait Admission {
    /// The rule for the record `fragment` belongs to.
    fn admit(&mut self, fragment: &Fragment) -> Rule;
}

impl<F: FnMut(&Fragment) -> Rule> Admission for F {
    fn admit(&mut self, fragment: &Fragment) -> Rule {
        self(fragment)
    }
}

/// Accepts every record (within [`Config::max_record`](crate::Config::max_record)).
#[derive(Debug, Clone, Copy, Default)]
pub struct AcceptAll;

impl Admission for AcceptAll {
    fn admit(&mut self, _: &Fragment) -> Rule {
        Rule::Accept
    }
}
