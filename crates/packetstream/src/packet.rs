//! The wire unit: [`Packet`], its body layout, and its one-line `Display`.
//!
//! A frame is `BSUInt(len(body))` then the body. The body is `BSUInt tag`, `BSUInt flagsword`,
//! `[BSUInt channel]`, `[BSUInt rq_type]`, then the payload (everything left). The flagsword is
//! `has_channel | is_request << 1 | F << 2`, where `F` is the request's flags, or
//! `flags << 1 | ok` for a response. A request carries `rq_type + 1` on the wire: wire
//! rq_type 0 is reserved for the EOF and ERQ control packets.

use std::fmt;

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::{Error, bsuint};

/// The longest head (length prefix and integers) that [`Packet::encode_to`] copies as one
/// block of this size.
const SHORT_HEAD: usize = 16;

/// The largest flags a request can carry: its flagsword (`flags << 2 | 0b10 | has_channel`)
/// must fit in a `u64`.
pub const MAX_REQUEST_FLAGS: u64 = u64::MAX >> 2;
/// The largest flags a response can carry: its flagsword is `(flags << 1 | ok) << 2 | has_channel`.
pub const MAX_RESPONSE_FLAGS: u64 = u64::MAX >> 3;
/// The largest handler rq_type: the wire carries `rq_type + 1`.
pub const MAX_RQ_TYPE: u64 = u64::MAX - 1;

#[inline]
fn check_flags(flags: u64, max: u64) -> Result<(), Error> {
    if flags > max {
        return Err(Error::FlagsTooLarge { flags, max });
    }
    Ok(())
}

/// Request or response, with what each carries beyond the common fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A request with its wire rq_type (handler rq_type + 1; 0 for control packets).
    Request { wire_rq_type: u64, flags: u64 },
    /// A response: success or failure, and its flags.
    Response { ok: bool, flags: u64 },
}

/// What the front of a packet's body holds before its payload ([`Packet::decode_head`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct BodyHead {
    pub channel: u64,
    pub tag: u64,
    kind: Kind,
    /// The bytes it took.
    pub len: usize,
}

impl BodyHead {
    /// A request's handler rq_type and flags, unless it is a response or a control packet.
    #[inline]
    pub fn handler_request(&self) -> Option<(u64, u64)> {
        match self.kind {
            Kind::Request {
                wire_rq_type,
                flags,
            } if wire_rq_type > 0 => Some((wire_rq_type - 1, flags)),
            _ => None,
        }
    }

    /// The packet, with `payload`.
    #[inline]
    fn with_payload(self, payload: Bytes) -> Packet {
        Packet {
            channel: self.channel,
            tag: self.tag,
            kind: self.kind,
            payload,
        }
    }
}

/// One packet of a cs.packetstream connection: a request or a response.
///
/// Every `Packet` that can be built can be encoded, and a decoded one is valid: the
/// constructors refuse flags and rq_types the wire cannot carry. Requests and responses are
/// correlated by `(channel, tag)`; the `is_request` bit keeps the two directions apart.
///
/// ```
/// use bytes::Bytes;
/// use packetstream::Packet;
///
/// let p = Packet::request(0, 4, 2, 0, Bytes::from_static(b"hello"))?;
/// assert_eq!(p.to_string(), "Packet req ch=0 tag=4 rq=2 flags=0x0 len=5");
/// assert_eq!(p.rq_type(), Some(2));
/// assert_eq!(p.wire_rq_type(), Some(3));
/// assert!(Packet::EOF.is_eof());
/// # Ok::<(), packetstream::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    channel: u64,
    tag: u64,
    kind: Kind,
    payload: Bytes,
}

impl Packet {
    /// The EOF packet (`03 00 02 00`): "I will send nothing more".
    pub const EOF: Packet = Packet::control(0);
    /// The ERQ packet (`03 01 02 00`): "I will send no more requests".
    pub const ERQ: Packet = Packet::control(1);

    const fn control(tag: u64) -> Packet {
        Packet {
            channel: 0,
            tag,
            kind: Kind::Request {
                wire_rq_type: 0,
                flags: 0,
            },
            payload: Bytes::new(),
        }
    }

    /// A request for handler `rq_type` (sent as `rq_type + 1`).
    ///
    /// Fails when `rq_type` exceeds [`MAX_RQ_TYPE`] or `flags` exceeds [`MAX_REQUEST_FLAGS`].
    #[inline]
    pub fn request(
        channel: u64,
        tag: u64,
        rq_type: u64,
        flags: u64,
        payload: Bytes,
    ) -> Result<Packet, Error> {
        if rq_type > MAX_RQ_TYPE {
            return Err(Error::RqTypeTooLarge { rq_type });
        }
        check_flags(flags, MAX_REQUEST_FLAGS)?;
        Ok(Packet {
            channel,
            tag,
            kind: Kind::Request {
                wire_rq_type: rq_type + 1,
                flags,
            },
            payload,
        })
    }

    /// A response to the request `(channel, tag)`: `ok` for success, with its flags.
    ///
    /// Fails when `flags` exceeds [`MAX_RESPONSE_FLAGS`].
    #[inline]
    pub fn response(
        channel: u64,
        tag: u64,
        ok: bool,
        flags: u64,
        payload: Bytes,
    ) -> Result<Packet, Error> {
        check_flags(flags, MAX_RESPONSE_FLAGS)?;
        Ok(Packet {
            channel,
            tag,
            kind: Kind::Response { ok, flags },
            payload,
        })
    }

    /// A failure response with flags 0, as cs.packetstream sends for refused requests and
    /// failed handlers.
    pub fn failure(channel: u64, tag: u64, payload: Bytes) -> Packet {
        Packet {
            channel,
            tag,
            kind: Kind::Response {
                ok: false,
                flags: 0,
            },
            payload,
        }
    }

    /// The same packet with another tag (a request's tag is known only once it is allocated).
    pub(crate) fn set_tag(&mut self, tag: u64) {
        self.tag = tag;
    }

    /// The channel (0 unless both peers enabled channels).
    pub fn channel(&self) -> u64 {
        self.channel
    }

    /// The tag, chosen by the requester and copied into the response.
    pub fn tag(&self) -> u64 {
        self.tag
    }

    /// Whether this is a request (control packets included).
    pub fn is_request(&self) -> bool {
        matches!(self.kind, Kind::Request { .. })
    }

    /// The handler rq_type of a request (wire rq_type − 1); `None` for responses and for
    /// control packets (wire rq_type 0).
    pub fn rq_type(&self) -> Option<u64> {
        self.wire_rq_type().and_then(|w| w.checked_sub(1))
    }

    /// The rq_type as it is on the wire, for requests.
    pub fn wire_rq_type(&self) -> Option<u64> {
        match self.kind {
            Kind::Request { wire_rq_type, .. } => Some(wire_rq_type),
            Kind::Response { .. } => None,
        }
    }

    /// For a response, whether it reports success; `None` for requests.
    pub fn ok(&self) -> Option<bool> {
        match self.kind {
            Kind::Response { ok, .. } => Some(ok),
            Kind::Request { .. } => None,
        }
    }

    /// The user flags (for a response, without the ok bit).
    pub fn flags(&self) -> u64 {
        match self.kind {
            Kind::Request { flags, .. } | Kind::Response { flags, .. } => flags,
        }
    }

    /// The payload.
    pub fn payload(&self) -> &Bytes {
        &self.payload
    }

    /// Takes the payload out of the packet.
    pub fn into_payload(self) -> Bytes {
        self.payload
    }

    /// A request with wire rq_type 0: EOF, ERQ, or what cs calls a "malformed EOF" (any other
    /// such request, which cs and this crate treat as EOF).
    pub fn is_control(&self) -> bool {
        self.wire_rq_type() == Some(0)
    }

    /// Exactly the EOF packet.
    pub fn is_eof(&self) -> bool {
        *self == Packet::EOF
    }

    /// Exactly the ERQ packet.
    pub fn is_erq(&self) -> bool {
        *self == Packet::ERQ
    }

    #[inline]
    fn flagsword(&self) -> u64 {
        let has_channel = u64::from(self.channel != 0);
        match self.kind {
            Kind::Request { flags, .. } => flags << 2 | 0b10 | has_channel,
            Kind::Response { ok, flags } => (flags << 1 | u64::from(ok)) << 2 | has_channel,
        }
    }

    /// The length of the body (the frame without its length prefix).
    #[inline]
    pub fn body_len(&self) -> usize {
        let mut len = bsuint::encoded_len(self.tag) + bsuint::encoded_len(self.flagsword());
        if self.channel != 0 {
            len += bsuint::encoded_len(self.channel);
        }
        if let Kind::Request { wire_rq_type, .. } = self.kind {
            len += bsuint::encoded_len(wire_rq_type);
        }
        len + self.payload.len()
    }

    /// The length of the whole frame, length prefix included.
    pub fn frame_len(&self) -> usize {
        let body = self.body_len();
        bsuint::encoded_len(body as u64) + body
    }

    /// Writes the whole frame (length prefix and body), exactly as cs.packetstream does.
    pub fn encode(&self, buf: &mut impl BufMut) {
        let mut head = [0; 5 * bsuint::MAX_LEN];
        let len = self.write_head(self.body_len(), &mut head);
        buf.put_slice(&head[..len]);
        buf.put_slice(&self.payload);
    }

    /// Writes the frame whose body is `body_len` bytes long (as [`body_len`](Self::body_len)
    /// computed it) to the end of `dst`, reserving room for all of it first: one allocation
    /// at most. The head is made on the stack and copied in once.
    ///
    /// When `dst` has the room, the head (up to [`SHORT_HEAD`] bytes, the usual) is copied as
    /// a block of that size, the bytes past it cut off again: a copy of known length,
    /// inlined, where one of the head's own length would be a call to `memcpy`.
    #[inline]
    pub(crate) fn encode_to(&self, body_len: usize, dst: &mut BytesMut) {
        let mut head = [0; 5 * bsuint::MAX_LEN];
        let head_len = self.write_head(body_len, &mut head);
        // Exactly what the frame takes: a reservation of more would change how the buffer
        // grows (and what a budget full of small replies holds).
        dst.reserve(head_len + self.payload.len());
        let room = dst.capacity() - dst.len() >= SHORT_HEAD + self.payload.len();
        let short = head.first_chunk::<SHORT_HEAD>();
        if let (true, Some(short)) = (room && head_len <= SHORT_HEAD, short) {
            let at = dst.len();
            dst.extend_from_slice(short);
            dst.truncate(at + head_len);
        } else {
            dst.extend_from_slice(&head[..head_len]);
        }
        dst.extend_from_slice(&self.payload);
    }

    /// Writes the length prefix of a `body_len`-byte body and the body's integers to the
    /// front of `out`, and returns how many bytes that took.
    #[inline]
    fn write_head(&self, body_len: usize, out: &mut [u8]) -> usize {
        let mut at = bsuint::write(body_len as u64, out);
        at += bsuint::write(self.tag, &mut out[at..]);
        at += bsuint::write(self.flagsword(), &mut out[at..]);
        if self.channel != 0 {
            at += bsuint::write(self.channel, &mut out[at..]);
        }
        if let Kind::Request { wire_rq_type, .. } = self.kind {
            at += bsuint::write(wire_rq_type, &mut out[at..]);
        }
        at
    }

    /// Parses a body (the frame without its length prefix). The payload shares `body`'s
    /// memory.
    ///
    /// A body that ends inside one of its integers is [`Error::Malformed`]; an integer beyond
    /// `u64` is [`Error::VarintOverflow`].
    #[inline]
    pub fn decode_body(mut body: Bytes) -> Result<Packet, Error> {
        let head = Packet::decode_head(&body)?;
        // `advance`, not `split_to`: no reference count touched.
        body.advance(head.len);
        Ok(head.with_payload(body))
    }

    /// Parses the integers at the front of a body: everything but the payload, and how many
    /// bytes they took. The errors of [`decode_body`](Self::decode_body).
    #[inline]
    pub(crate) fn decode_head(body: &[u8]) -> Result<BodyHead, Error> {
        let mut at = 0;
        let mut field = |name: &'static str| -> Result<u64, Error> {
            match bsuint::get(&body[at..])? {
                Some((value, used)) => {
                    at += used;
                    Ok(value)
                }
                None => Err(Error::Malformed {
                    len: body.len(),
                    field: name,
                }),
            }
        };
        let tag = field("tag")?;
        let flagsword = field("flagsword")?;
        let channel = if flagsword & 1 == 1 {
            field("channel")?
        } else {
            0
        };
        let kind = if flagsword & 0b10 != 0 {
            Kind::Request {
                wire_rq_type: field("rq_type")?,
                flags: flagsword >> 2,
            }
        } else {
            Kind::Response {
                ok: (flagsword >> 2) & 1 == 1,
                flags: flagsword >> 3,
            }
        };
        Ok(BodyHead {
            channel,
            tag,
            kind,
            len: at,
        })
    }
}

impl fmt::Display for Packet {
    /// One line, tcpdump-style: `Packet req ch=0 tag=7 rq=2 flags=0x11 len=5`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (ch, tag, len) = (self.channel, self.tag, self.payload.len());
        match self.kind {
            _ if self.is_eof() => write!(f, "Packet EOF"),
            _ if self.is_erq() => write!(f, "Packet ERQ"),
            Kind::Request {
                wire_rq_type: 0,
                flags,
            } => write!(
                f,
                "Packet malformed-eof ch={ch} tag={tag} flags={flags:#x} len={len}"
            ),
            Kind::Request {
                wire_rq_type,
                flags,
            } => {
                let rq = wire_rq_type - 1;
                write!(
                    f,
                    "Packet req ch={ch} tag={tag} rq={rq} flags={flags:#x} len={len}"
                )
            }
            Kind::Response { ok, flags } => {
                let ok = if ok { "ok" } else { "fail" };
                write!(
                    f,
                    "Packet resp {ok} ch={ch} tag={tag} flags={flags:#x} len={len}"
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(p: &Packet) -> Vec<u8> {
        let mut out = Vec::new();
        p.encode(&mut out);
        assert_eq!(out.len(), p.frame_len());
        out
    }

    #[test]
    fn control_packets_match_the_wire() {
        assert_eq!(frame(&Packet::EOF), [0x03, 0x00, 0x02, 0x00]);
        assert_eq!(frame(&Packet::ERQ), [0x03, 0x01, 0x02, 0x00]);
        assert_eq!(Packet::EOF.to_string(), "Packet EOF");
        assert_eq!(Packet::ERQ.to_string(), "Packet ERQ");
    }

    #[test]
    fn explicit_channel_zero_decodes_as_channel_zero_and_reencodes_compactly() {
        // tag 2, flagsword 0b11 (request, has_channel), channel 0, wire rq 1.
        let p = Packet::decode_body(Bytes::from_static(&[0x02, 0x03, 0x00, 0x01])).unwrap();
        assert_eq!(p, Packet::request(0, 2, 0, 0, Bytes::new()).unwrap());
        assert_eq!(frame(&p), [0x03, 0x02, 0x02, 0x01]);
    }

    #[test]
    fn flags_beyond_the_flagsword_are_refused() {
        assert!(Packet::request(0, 2, 0, MAX_REQUEST_FLAGS, Bytes::new()).is_ok());
        assert!(matches!(
            Packet::request(0, 2, 0, MAX_REQUEST_FLAGS + 1, Bytes::new()),
            Err(Error::FlagsTooLarge { .. })
        ));
        assert!(Packet::response(0, 2, true, MAX_RESPONSE_FLAGS, Bytes::new()).is_ok());
        assert!(matches!(
            Packet::response(0, 2, true, MAX_RESPONSE_FLAGS + 1, Bytes::new()),
            Err(Error::FlagsTooLarge { .. })
        ));
        assert!(matches!(
            Packet::request(0, 2, u64::MAX, 0, Bytes::new()),
            Err(Error::RqTypeTooLarge { .. })
        ));
    }

    #[test]
    fn largest_flags_round_trip() {
        for p in [
            Packet::request(
                u64::MAX,
                u64::MAX,
                MAX_RQ_TYPE,
                MAX_REQUEST_FLAGS,
                Bytes::new(),
            )
            .unwrap(),
            Packet::response(u64::MAX, u64::MAX, true, MAX_RESPONSE_FLAGS, Bytes::new()).unwrap(),
        ] {
            let f = frame(&p);
            let (len, used) = bsuint::get(&f).unwrap().unwrap();
            assert_eq!(len as usize, f.len() - used);
            let back = Packet::decode_body(Bytes::copy_from_slice(&f[used..])).unwrap();
            assert_eq!(back, p);
        }
    }

    #[test]
    fn short_bodies_are_malformed() {
        for body in [
            &[][..],
            &[0x05],
            &[0x02, 0x03],
            &[0x02, 0x02],
            &[0x02, 0x82],
        ] {
            assert!(
                matches!(
                    Packet::decode_body(Bytes::copy_from_slice(body)),
                    Err(Error::Malformed { .. })
                ),
                "{body:02x?}"
            );
        }
    }

    #[test]
    fn display_is_one_readable_line() {
        let req = Packet::request(0, 7, 2, 0x11, Bytes::from_static(b"hello")).unwrap();
        assert_eq!(
            req.to_string(),
            "Packet req ch=0 tag=7 rq=2 flags=0x11 len=5"
        );
        let resp = Packet::response(5, 7, false, 0, Bytes::from_static(b"no")).unwrap();
        assert_eq!(
            resp.to_string(),
            "Packet resp fail ch=5 tag=7 flags=0x0 len=2"
        );
        let bad = Packet::decode_body(Bytes::from_static(&[0x09, 0x02, 0x00, 0x41])).unwrap();
        assert!(bad.is_control() && !bad.is_eof());
        assert_eq!(
            bad.to_string(),
            "Packet malformed-eof ch=0 tag=9 flags=0x0 len=1"
        );
    }
}
