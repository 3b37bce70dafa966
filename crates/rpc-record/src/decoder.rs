//! [`RecordDecoder`]: record marking as a state machine fed bytes, with the admission rule
//! asked at each fragment header before the fragment's payload is read.

use bytes::{Buf, BytesMut};
use tracing::{debug, warn};

use crate::{Admission, Config, Error, Fragment, Mark, Record, Rule, Xid};

/// Where the decoder is in the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Collecting a record mark (it may arrive a byte at a time).
    Mark,
    /// Inside a fragment's payload.
    Payload {
        /// Payload bytes of the fragment not yet consumed.
        remaining: u32,
        /// Whether the fragment is the record's last.
        last: bool,
    },
}

/// What a fragment header led to.
enum Begun {
    /// The whole record, taken in one step (its header and payload are consumed).
    Record(Record),
    /// Read the fragment's payload.
    Payload,
    /// Decided at the header (only the header is consumed).
    Decided(Result<Option<Record>, Error>),
}

/// Decodes records from a byte buffer, asking an [`Admission`] rule at each fragment header.
///
/// - **Accept** reassembles the record. A record that comes as one fragment is handed out as
///   a slice of the input buffer, with no copy; a multi-fragment one is joined into a buffer
///   reserved fragment by fragment, each time after the record's running length has been
///   checked against [`Config::max_record`].
/// - **Deny** is reported at once; **Drop** when the record ends. Both discard the payload
///   as it arrives, buffering none of it, so a record of any length streams through.
/// - **Reject** keeps only the xid, gathered across fragments however short they are.
///
/// A record of one fragment that is already buffered whole (the usual case) is decided and
/// taken in one step; anything else goes fragment by fragment. Both ways decide alike. Every
/// record comes back to the caller as a [`Record`] saying what became of it, so nothing is
/// discarded unseen; denials and the limits hit are traced as well.
///
/// Empty fragments, last or not, and empty records are accepted (an empty record is handed
/// over as an empty [`Record::Accept`]): peers disagree on these (spec §1.3), and reading
/// leniently costs nothing. A fragment that ends exactly at the end of the input completes
/// at once, without waiting for more bytes.
///
/// ```
/// use bytes::BytesMut;
/// use rpc_record::{Config, Record, RecordDecoder, Rule, Xid};
///
/// let mut decoder = RecordDecoder::new(&Config::default());
/// // Two records: "ping" in one fragment, then 8 bytes in 2 fragments.
/// let mut wire = BytesMut::from(&b"\x80\x00\x00\x04ping\x00\x00\x00\x04\x00\x00\x00\x51\x80\x00\x00\x04more"[..]);
/// let record = decoder.decode(&mut wire, &mut |_: &_| Rule::Accept)?;
/// assert_eq!(record, Some(Record::Accept("ping".into())));
/// let record = decoder.decode(&mut wire, &mut |_: &_| Rule::Reject)?;
/// assert_eq!(record, Some(Record::Reject { xid: Xid(0x51) }));
/// assert!(wire.is_empty() && decoder.is_idle());
/// # Ok::<(), rpc_record::Error>(())
/// ```
#[derive(Debug)]
pub struct RecordDecoder {
    max_record: usize,
    max_fragments: u32,
    state: State,
    /// The rule for the record in progress; asked again at each header while `Accept`.
    rule: Rule,
    /// Fragments seen in the record in progress.
    fragments: u32,
    /// The record's length so far, declared lengths included.
    so_far: u64,
    /// The joined payload of an accepted record that came in more than one fragment.
    parts: BytesMut,
    /// The record's first bytes, up to 4: its xid, should a later header reject it.
    xid: [u8; 4],
    xid_len: usize,
    /// How many more bytes the input needs before the decoder can go on.
    wanted: usize,
}

impl RecordDecoder {
    /// A decoder with the limits of `config`.
    pub fn new(config: &Config) -> RecordDecoder {
        RecordDecoder {
            max_record: config.max_record,
            max_fragments: config.max_fragments,
            state: State::Mark,
            rule: Rule::Accept,
            fragments: 0,
            so_far: 0,
            parts: BytesMut::new(),
            xid: [0; 4],
            xid_len: 0,
            wanted: 4,
        }
    }

    /// Consumes bytes from the front of `src` until a record is complete (or denied), and
    /// returns it; `None` when `src` ran out first (what was consumed is remembered).
    ///
    /// The errors are about one record; the decoder stays in step and holds nothing of it
    /// (a record over a limit is discarded as the rest of it streams past, should decoding
    /// go on). A peer over the limits is usually best disconnected all the same.
    #[inline]
    pub fn decode(
        &mut self,
        src: &mut BytesMut,
        admission: &mut impl Admission,
    ) -> Result<Option<Record>, Error> {
        loop {
            // The header just read, not yet advanced past: one advance per fragment is
            // cheaper than two.
            let mut at = 0;
            if self.state == State::Mark {
                if src.len() < 4 {
                    self.wanted = 4 - src.len();
                    return Ok(None);
                }
                let mark = Mark::from_bytes([src[0], src[1], src[2], src[3]]);
                at = 4;
                let begun = if self.fragments == 0 && mark.is_last() {
                    self.begin_record(mark, src, admission)
                } else {
                    self.begin_fragment(mark, admission)
                };
                match begun {
                    Begun::Record(record) => return Ok(Some(record)),
                    Begun::Payload => {}
                    Begun::Decided(done) => {
                        src.advance(4);
                        return done;
                    }
                }
            }
            let State::Payload { remaining, last } = self.state else {
                unreachable!("a fragment has begun")
            };
            let available = src.len() - at;
            if last && self.parts.is_empty() && self.rule == Rule::Accept {
                // The record is this one fragment: hand out a slice, no copy.
                let len = remaining as usize;
                src.advance(at);
                if available < len {
                    self.wanted = len - available;
                    return Ok(None);
                }
                let payload = src.split_to(len).freeze();
                self.reset();
                return Ok(Some(Record::Accept(payload)));
            }
            let take = available.min(remaining as usize);
            self.consume(&src[at..at + take]);
            src.advance(at + take);
            // `take` is at most `remaining`, a u32.
            let remaining = remaining - take as u32;
            if remaining > 0 {
                self.state = State::Payload { remaining, last };
                self.wanted = 1;
                return Ok(None);
            }
            if !last {
                self.state = State::Mark;
                continue;
            }
            if let Some(record) = self.finish()? {
                return Ok(Some(record));
            }
        }
    }

    /// [`decode`](RecordDecoder::decode) when the stream has ended: a record still
    /// incomplete once `src` is used up is [`Error::Truncated`]; `None` is a clean end
    /// between records.
    pub fn decode_eof(
        &mut self,
        src: &mut BytesMut,
        admission: &mut impl Admission,
    ) -> Result<Option<Record>, Error> {
        match self.decode(src, admission)? {
            Some(record) => Ok(Some(record)),
            None if src.is_empty() && self.is_idle() => Ok(None),
            None => {
                let buffered = src.len() + self.held();
                warn!(buffered, "EOF within message");
                Err(Error::Truncated { buffered })
            }
        }
    }

    /// Whether the decoder is between records: EOF here is a clean end.
    pub fn is_idle(&self) -> bool {
        self.state == State::Mark && self.fragments == 0
    }

    /// How many more input bytes the decoder needs before it can go on (a hint for how
    /// much to reserve: the rest of a single-fragment record, which is read in place).
    pub fn wanted(&self) -> usize {
        self.wanted
    }

    /// The bytes the decoder has allocated for the record in progress (a joined record's
    /// buffer may be up to twice its length).
    pub fn allocated(&self) -> usize {
        self.parts.capacity()
    }

    /// The bytes the decoder holds for the record in progress (a joined multi-fragment
    /// record, or up to 4 xid bytes). Discarded records hold nothing.
    pub fn held(&self) -> usize {
        self.parts.len() + self.xid_len
    }

    /// The header of a record that is one fragment (the commonest case): when the whole
    /// fragment is buffered, the rule is asked and the record taken in one step, without
    /// going through the fragment-by-fragment states.
    #[inline]
    fn begin_record(
        &mut self,
        mark: Mark,
        src: &mut BytesMut,
        admission: &mut impl Admission,
    ) -> Begun {
        let len = mark.len() as usize;
        if src.len() - 4 < len || self.max_fragments == 0 {
            return self.begin_fragment(mark, admission);
        }
        let fragment = Fragment {
            len: mark.len(),
            last: true,
            index: 0,
            so_far: u64::from(mark.len()),
        };
        let rule = admission.admit(&fragment);
        let record = match rule {
            Rule::Accept if len <= self.max_record => {
                src.advance(4);
                self.wanted = 4;
                return Begun::Record(Record::Accept(src.split_to(len).freeze()));
            }
            Rule::Drop => Record::Drop,
            Rule::Deny => {
                debug!(?rule, so_far = len, "record not accepted");
                Record::Deny
            }
            Rule::Reject | Rule::RejectWith(_) if len >= 4 => {
                let xid = Xid(u32::from_be_bytes([src[4], src[5], src[6], src[7]]));
                match rule {
                    Rule::RejectWith(error) => Record::RejectWith { xid, error },
                    _ => Record::Reject { xid },
                }
            }
            // Over the limit, or too short to reject: the fragment-by-fragment way says
            // so, with the rule already asked.
            rule => {
                self.enter_fragment(mark);
                return self.apply(rule);
            }
        };
        src.advance(4 + len);
        self.wanted = 4;
        Begun::Record(record)
    }

    /// Takes a fragment header: counts it, asks the rule while it is `Accept`, checks the
    /// limits. Decides `Deny` the moment it is asked.
    #[inline]
    fn begin_fragment(&mut self, mark: Mark, admission: &mut impl Admission) -> Begun {
        self.enter_fragment(mark);
        if self.fragments > self.max_fragments {
            warn!(max = self.max_fragments, "too many fragments in one record");
            self.discard_rest();
            return Begun::Decided(Err(Error::TooManyFragments {
                max: self.max_fragments,
            }));
        }
        if self.rule != Rule::Accept {
            return Begun::Payload;
        }
        let rule = admission.admit(&Fragment {
            len: mark.len(),
            last: mark.is_last(),
            index: self.fragments - 1,
            so_far: self.so_far,
        });
        self.apply(rule)
    }

    /// Counts the fragment `mark` announces, and starts on its payload.
    #[inline]
    fn enter_fragment(&mut self, mark: Mark) {
        self.fragments = self.fragments.saturating_add(1);
        self.so_far += u64::from(mark.len());
        self.state = State::Payload {
            remaining: mark.len(),
            last: mark.is_last(),
        };
    }

    /// Takes the rule asked at a fragment header, and checks the record's size.
    #[inline]
    fn apply(&mut self, rule: Rule) -> Begun {
        self.rule = rule;
        match self.rule {
            Rule::Accept => {
                if self.so_far > self.max_record as u64 {
                    warn!(
                        size = self.so_far,
                        max = self.max_record,
                        "record too large"
                    );
                    self.discard_rest();
                    return Begun::Decided(Err(Error::RecordTooLarge {
                        size: self.so_far,
                        max: self.max_record,
                    }));
                }
                // Nothing is reserved for the declared length: the record grows as its
                // bytes arrive, so a header alone costs nothing.
                Begun::Payload
            }
            rule => {
                debug!(?rule, so_far = self.so_far, "record not accepted");
                // Whatever was joined so far goes; its xid bytes were kept aside.
                if self.parts.capacity() > 0 {
                    self.parts = BytesMut::new();
                }
                if rule == Rule::Deny {
                    Begun::Decided(Ok(Some(Record::Deny)))
                } else {
                    Begun::Payload
                }
            }
        }
    }

    /// After a limit was hit: the rest of the record is discarded, should decoding go on,
    /// so that the decoder stays in step and holds nothing.
    fn discard_rest(&mut self) {
        self.rule = Rule::Drop;
        self.parts = BytesMut::new();
        self.xid_len = 0;
    }

    /// Takes payload bytes as the rule says: joined, kept up to the xid, or discarded.
    #[inline]
    fn consume(&mut self, bytes: &[u8]) {
        let keep_xid = matches!(self.rule, Rule::Accept | Rule::Reject | Rule::RejectWith(_));
        if keep_xid && self.xid_len < 4 {
            let n = bytes.len().min(4 - self.xid_len);
            self.xid[self.xid_len..self.xid_len + n].copy_from_slice(&bytes[..n]);
            self.xid_len += n;
        }
        if self.rule == Rule::Accept {
            self.parts.extend_from_slice(bytes);
        }
    }

    /// The record has ended: what it became. `None` for a denied record, already reported.
    fn finish(&mut self) -> Result<Option<Record>, Error> {
        let (rule, len) = (self.rule, self.so_far);
        let xid = (self.xid_len == 4).then(|| Xid(u32::from_be_bytes(self.xid)));
        self.reset();
        let record = match rule {
            Rule::Accept => Record::Accept(std::mem::take(&mut self.parts).freeze()),
            Rule::Deny => return Ok(None),
            Rule::Drop => Record::Drop,
            Rule::Reject | Rule::RejectWith(_) => {
                let Some(xid) = xid else {
                    debug!(len, "record too short to reject: no xid");
                    return Err(Error::ShortRecord { len });
                };
                match rule {
                    Rule::RejectWith(error) => Record::RejectWith { xid, error },
                    _ => Record::Reject { xid },
                }
            }
        };
        Ok(Some(record))
    }

    /// Ready for the next record.
    #[inline]
    fn reset(&mut self) {
        self.state = State::Mark;
        self.rule = Rule::Accept;
        self.fragments = 0;
        self.so_far = 0;
        self.xid_len = 0;
        self.wanted = 4;
    }
}
