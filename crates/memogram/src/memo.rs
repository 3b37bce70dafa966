//! [`Memo`]: a whole memo as reassembly hands it out.

use std::fmt;

use bytes::Bytes;
use tracing::debug;

use crate::{Error, Mid, Vid};

/// A memo put back together from its grams, with where it came from and who signed it.
///
/// Memos are bytes; [`text`](Memo::text) is the convenience for peers such as hio that only
/// send UTF-8.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Memo<S> {
    mid: Mid,
    source: S,
    vid: Option<Vid>,
    body: Bytes,
}

impl<S> Memo<S> {
    pub(crate) fn new(mid: Mid, source: S, vid: Option<Vid>, body: Bytes) -> Memo<S> {
        Memo {
            mid,
            source,
            vid,
            body,
        }
    }

    /// Its mid.
    pub fn mid(&self) -> Mid {
        self.mid
    }

    /// Where its grams came from.
    pub fn source(&self) -> &S {
        &self.source
    }

    /// Who signed every one of its grams; `None` for an unsigned memo.
    pub fn vid(&self) -> Option<Vid> {
        self.vid
    }

    /// Its bytes.
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// Its bytes as text, or [`Error::NotText`] when they are not UTF-8.
    pub fn text(&self) -> Result<&str, Error> {
        std::str::from_utf8(&self.body).map_err(|e| {
            debug!(mid = %self.mid, valid_up_to = e.valid_up_to(), "memo is not UTF-8");
            Error::NotText {
                valid_up_to: e.valid_up_to(),
            }
        })
    }

    /// Its parts: mid, source, vid, bytes.
    pub fn into_parts(self) -> (Mid, S, Option<Vid>, Bytes) {
        (self.mid, self.source, self.vid, self.body)
    }
}

impl<S: fmt::Debug> fmt::Display for Memo<S> {
    /// `Memo mid=0AD5s502N14R8bWw8qyvRW-S src=127.0.0.1:5000 len=11 vid=BG-R…`, on one line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Memo mid={} src={:?} len={}",
            self.mid,
            self.source,
            self.body.len()
        )?;
        match &self.vid {
            Some(vid) => write!(f, " vid={vid}"),
            None => f.write_str(" unsigned"),
        }
    }
}
