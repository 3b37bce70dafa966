//! [`PacketCodec`]: frames [`Packet`]s for tokio-util's `Framed`, with the size limit checked
//! before anything is allocated.

use bytes::{Buf, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use crate::{Error, Packet, bsuint};

/// Decodes and encodes length-prefixed [`Packet`] frames.
///
/// ```
/// use bytes::{Bytes, BytesMut};
/// use packetstream::{Packet, PacketCodec};
/// use tokio_util::codec::{Decoder, Encoder};
///
/// let mut codec = PacketCodec::new(1024);
/// let mut buf = BytesMut::new();
/// codec.encode(Packet::request(0, 2, 0, 0, Bytes::new())?, &mut buf)?;
/// assert_eq!(&buf[..], [0x03, 0x02, 0x02, 0x01]);
/// let packet = codec.decode(&mut buf)?.expect("a whole frame");
/// assert_eq!(packet.rq_type(), Some(0));
/// # Ok::<(), packetstream::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct PacketCodec {
    max_packet: usize,
    /// Leading `80` bytes of the length prefix in progress that were dropped as they came:
    /// a stream that ends after them ends inside a packet, though nothing is buffered.
    dropped: usize,
}

impl PacketCodec {
    /// A codec that refuses bodies longer than `max_packet` bytes, both ways.
    pub fn new(max_packet: usize) -> PacketCodec {
        PacketCodec {
            max_packet,
            dropped: 0,
        }
    }

    /// The limit on a packet body, in bytes.
    pub fn max_packet(&self) -> usize {
        self.max_packet
    }
}

impl Default for PacketCodec {
    /// The default limit of [`Config::max_packet`](crate::Config::max_packet), 4 MiB.
    fn default() -> Self {
        PacketCodec::new(crate::Config::default().max_packet)
    }
}

/// What [`PacketCodec::decode_frame`] found at the front of the buffer.
#[derive(Debug)]
pub(crate) enum Frame {
    /// A whole packet.
    Packet(Packet),
    /// Not a whole frame yet: at least this many more bytes are needed.
    Need(usize),
}

/// The head of the frame at the front of a buffer: how long its prefix and body are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Head {
    /// The length prefix's bytes.
    pub prefix: usize,
    /// The body's length, checked against `max_packet`.
    pub body: usize,
}

impl Head {
    /// The whole frame's length.
    pub fn len(&self) -> usize {
        self.prefix + self.body
    }

    /// The flagsword's request bit of the frame at the front of `src`; `None` until its tag
    /// and flagsword have come.
    pub fn is_request(&self, src: &[u8]) -> Option<bool> {
        let start = src.get(self.prefix..src.len().min(self.len()))?;
        let (_, tag_len) = bsuint::get(start).ok()??;
        let (flagsword, _) = bsuint::get(start.get(tag_len..)?).ok()??;
        Some(flagsword & 0b10 != 0)
    }
}

impl PacketCodec {
    /// Reads the head of the frame at the front of `src`, without taking anything but the
    /// leading `80` bytes of its length prefix: they add nothing to its value (cs accepts such
    /// non-minimal encodings), and are dropped as they come so that no run of them can make
    /// the buffer grow. `None` until the whole prefix has come. A prefix over `max_packet` is
    /// an error before anything is allocated for its body.
    #[inline]
    pub(crate) fn peek(&mut self, src: &mut BytesMut) -> Result<Option<Head>, Error> {
        if src.first() == Some(&0x80) {
            let zeros = src.iter().take_while(|&&b| b == 0x80).count();
            src.advance(zeros);
            self.dropped = self.dropped.saturating_add(zeros);
        }
        self.head(src)
    }

    /// Takes the frame `head` describes off the front of `src` (it is all there): its body.
    #[inline]
    pub(crate) fn take(&mut self, src: &mut BytesMut, head: Head) -> bytes::Bytes {
        self.took();
        let mut frame = src.split_to(head.len()).freeze();
        frame.advance(head.prefix);
        frame
    }

    /// Frames were taken off the front of the buffer by someone else (the driver's lane):
    /// the `80` bytes dropped belonged to one of them.
    pub(crate) fn took(&mut self) {
        self.dropped = 0;
    }

    /// The bytes of a frame begun and not finished, when the stream has ended with `src`
    /// left over: 0 at a clean end between frames.
    pub(crate) fn unfinished(&self, src: &[u8]) -> usize {
        src.len().saturating_add(self.dropped)
    }

    /// [`peek`](Self::peek) without dropping anything: the head of the frame at the front of
    /// `src`.
    #[inline]
    pub(crate) fn head(&self, src: &[u8]) -> Result<Option<Head>, Error> {
        let Some((len, prefix)) = bsuint::get(src)? else {
            return Ok(None);
        };
        if len > self.max_packet as u64 {
            return Err(Error::PacketTooLarge {
                len,
                max: self.max_packet,
            });
        }
        // Checked against max_packet just above, so it fits in usize.
        let body = len as usize;
        Ok(Some(Head { prefix, body }))
    }

    /// Decodes the frame at the front of `src`, if it is all there, without growing `src`:
    /// the driver decides how its read buffer grows.
    #[inline]
    pub(crate) fn decode_frame(&mut self, src: &mut BytesMut) -> Result<Frame, Error> {
        let Some(head) = self.peek(src)? else {
            return Ok(Frame::Need(1));
        };
        if src.len() < head.len() {
            return Ok(Frame::Need(head.len() - src.len()));
        }
        let frame = self.take(src, head);
        Packet::decode_body(frame).map(Frame::Packet)
    }
}

impl Decoder for PacketCodec {
    type Item = Packet;
    type Error = Error;

    #[inline]
    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Packet>, Error> {
        match self.decode_frame(src)? {
            Frame::Packet(packet) => Ok(Some(packet)),
            Frame::Need(more) => {
                // Room for the rest of the frame (its length was checked against
                // max_packet), but never more than has arrived of it already, doubling as it
                // comes: a declared length alone reserves nothing.
                src.reserve(more.min(src.len().max(8 * 1024)));
                Ok(None)
            }
        }
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Packet>, Error> {
        // No reserve here: nothing more is coming to fill it.
        match self.decode_frame(src)? {
            Frame::Packet(packet) => Ok(Some(packet)),
            Frame::Need(_) => match self.unfinished(src) {
                0 => Ok(None),
                buffered => Err(Error::Truncated { buffered }),
            },
        }
    }
}

impl Encoder<&Packet> for PacketCodec {
    type Error = Error;

    #[inline]
    fn encode(&mut self, packet: &Packet, dst: &mut BytesMut) -> Result<(), Error> {
        let body_len = packet.body_len();
        if body_len > self.max_packet {
            return Err(Error::PacketTooLarge {
                len: body_len as u64,
                max: self.max_packet,
            });
        }
        packet.encode_to(body_len, dst);
        Ok(())
    }
}

impl Encoder<Packet> for PacketCodec {
    type Error = Error;

    #[inline]
    fn encode(&mut self, packet: Packet, dst: &mut BytesMut) -> Result<(), Error> {
        self.encode(&packet, dst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use proptest::prelude::*;

    #[test]
    fn oversized_prefix_is_refused_before_allocating() {
        let mut codec = PacketCodec::new(1024);
        // A prefix announcing 2^63 bytes.
        let mut buf =
            BytesMut::from(&[0x81, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00][..]);
        let before = buf.capacity();
        assert!(matches!(
            codec.decode(&mut buf),
            Err(Error::PacketTooLarge { len, max: 1024 }) if len == 1 << 63
        ));
        assert_eq!(buf.capacity(), before);
        // Just over the limit.
        let mut buf = BytesMut::from(&[0x88, 0x01][..]);
        assert!(matches!(
            codec.decode(&mut buf),
            Err(Error::PacketTooLarge { len: 1025, .. })
        ));
    }

    #[test]
    fn prefix_overflow_is_an_error() {
        let mut codec = PacketCodec::default();
        let mut buf = BytesMut::from(&[0xff; 11][..]);
        assert!(matches!(codec.decode(&mut buf), Err(Error::VarintOverflow)));
    }

    #[test]
    fn leading_zero_groups_never_accumulate() {
        let mut codec = PacketCodec::default();
        let mut buf = BytesMut::from(&[0x80; 100_000][..]);
        assert_eq!(codec.decode(&mut buf).unwrap(), None);
        assert!(buf.is_empty());
        // The frame they started still decodes: `80 .. 80 03` then tag 2, request, rq 1.
        buf.extend_from_slice(&[0x03, 0x02, 0x02, 0x01]);
        let p = codec.decode(&mut buf).unwrap().unwrap();
        assert_eq!((p.tag(), p.rq_type()), (2, Some(0)));
    }

    #[test]
    fn partial_frames_wait_and_eof_inside_one_is_truncated() {
        let mut codec = PacketCodec::default();
        let mut buf = BytesMut::from(&[0x08, 0x04, 0x02, 0x03, 0x68][..]);
        assert_eq!(codec.decode(&mut buf).unwrap(), None);
        assert!(buf.capacity() >= 9);
        assert!(matches!(
            codec.decode_eof(&mut buf),
            Err(Error::Truncated { buffered: 5 })
        ));
        let mut empty = BytesMut::new();
        assert_eq!(codec.decode_eof(&mut empty).unwrap(), None);
        // The 80 bytes a prefix may start with are dropped as they come, but a stream that
        // ends after them still ends inside a packet (as cs reads it).
        let mut codec = PacketCodec::default();
        let mut zeros = BytesMut::from(&[0x80, 0x80][..]);
        assert_eq!(codec.decode(&mut zeros).unwrap(), None);
        assert!(zeros.is_empty());
        assert!(matches!(
            codec.decode_eof(&mut zeros),
            Err(Error::Truncated { buffered: 2 })
        ));
    }

    #[test]
    fn a_declared_length_reserves_only_what_has_arrived() {
        let mut codec = PacketCodec::default();
        // A header for a 4 MiB body, and 1 byte of it.
        let mut buf = BytesMut::new();
        buf.extend_from_slice(&[0x81, 0xff, 0xff, 0x7f, 0x00]);
        assert_eq!(codec.decode(&mut buf).unwrap(), None);
        assert!(buf.capacity() <= 16 * 1024, "{}", buf.capacity());
    }

    #[test]
    fn encoder_refuses_packets_over_the_limit() {
        let mut codec = PacketCodec::new(8);
        let big = Packet::request(0, 2, 0, 0, Bytes::from_static(&[0; 8])).unwrap();
        let mut buf = BytesMut::new();
        assert!(matches!(
            codec.encode(&big, &mut buf),
            Err(Error::PacketTooLarge { len: 11, max: 8 })
        ));
        assert!(buf.is_empty());
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(data: Vec<u8>, cut in 0usize..64) {
            let mut codec = PacketCodec::new(4096);
            let mut buf = BytesMut::new();
            // Feed in two pieces, as a socket might.
            let cut = cut.min(data.len());
            for piece in [&data[..cut], &data[cut..]] {
                buf.extend_from_slice(piece);
                while let Ok(Some(p)) = codec.decode(&mut buf) {
                    // Whatever decodes re-encodes to a frame that decodes to the same packet.
                    let mut again = BytesMut::new();
                    codec.encode(&p, &mut again).unwrap();
                    prop_assert_eq!(codec.decode(&mut again).unwrap(), Some(p));
                }
                prop_assert!(buf.capacity() <= 2 * 4096 + data.len() + 64);
            }
        }

        #[test]
        fn packets_round_trip(
            request: bool, channel: u64, tag: u64, rq_type in 0..u64::MAX, flags: u64, ok: bool,
            payload in proptest::collection::vec(any::<u8>(), 0..300),
        ) {
            let payload = Bytes::from(payload);
            let p = if request {
                Packet::request(channel, tag, rq_type, flags >> 2, payload)
            } else {
                Packet::response(channel, tag, ok, flags >> 3, payload)
            }.unwrap();
            let mut codec = PacketCodec::default();
            let mut buf = BytesMut::new();
            codec.encode(&p, &mut buf).unwrap();
            prop_assert_eq!(buf.len(), p.frame_len());
            prop_assert_eq!(codec.decode(&mut buf).unwrap(), Some(p));
            prop_assert!(buf.is_empty());
        }
    }
}
