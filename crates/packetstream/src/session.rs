//! The protocol state of one connection, with no I/O: what each incoming packet means.
//!
//! The driver feeds every decoded packet to [`Session::receive`] and acts on the
//! [`Incoming`] it gets back. All of cs.packetstream's request checks live here, with its
//! exact failure texts, in its order.

use std::collections::HashSet;

use bytes::Bytes;
use foldhash::fast::RandomState;

use crate::Packet;

/// A request from the peer that passed every check and waits for a handler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Request {
    pub channel: u64,
    pub tag: u64,
    pub rq_type: u64,
    pub flags: u64,
    pub payload: Bytes,
}

/// What an incoming packet asks of the driver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Incoming {
    /// The peer will send nothing more: stop reading. `malformed` when it was a request with
    /// wire rq_type 0 that is not exactly EOF or ERQ (cs treats it as EOF too).
    Eof { malformed: bool },
    /// The peer will send no more requests.
    Erq,
    /// A request to run.
    Serve(Request),
    /// A request refused: send this failure response.
    Reject(Packet),
    /// A response to one of our requests.
    Response(Packet),
}

/// The per-connection protocol state.
#[derive(Debug)]
pub(crate) struct Session {
    serving: bool,
    channels: bool,
    requests_allowed: bool,
    /// The peer's requests held by the driver (waiting for a handler or running) and not yet
    /// answered, by (channel, tag). The peer picks the tags, so the hash is seeded
    /// (foldhash's random state), not a fixed function.
    in_flight: HashSet<(u64, u64), RandomState>,
}

impl Session {
    /// `serving`: this side has a handler. `channels`: channels other than 0 are on.
    pub fn new(serving: bool, channels: bool) -> Session {
        Session {
            serving,
            channels,
            requests_allowed: true,
            in_flight: HashSet::default(),
        }
    }

    /// What `packet` means.
    ///
    /// A request served is not yet counted as in flight: the driver [`hold`](Self::hold)s it
    /// if it must wait or run on, and a request answered before the next packet is received
    /// needs no holding, since no packet can name its tag in between. This spares most
    /// requests a hash insert and remove.
    #[inline]
    pub fn receive(&mut self, packet: Packet) -> Incoming {
        if packet.is_eof() {
            return Incoming::Eof { malformed: false };
        }
        if packet.is_erq() {
            self.requests_allowed = false;
            return Incoming::Erq;
        }
        let Some(rq_type) = packet.rq_type() else {
            return if packet.is_control() {
                Incoming::Eof { malformed: true }
            } else {
                Incoming::Response(packet)
            };
        };
        let (channel, tag) = (packet.channel(), packet.tag());
        let refuse = |text: Bytes| Incoming::Reject(Packet::failure(channel, tag, text));
        if !self.serving {
            return refuse(Bytes::from_static(b"no request handler"));
        }
        if !self.requests_allowed {
            return refuse(Bytes::from_static(b"requests no longer allowed"));
        }
        if channel != 0 && !self.channels {
            // cs never fills in its format string.
            return refuse(Bytes::from_static(b"unknown channel %d"));
        }
        if self.in_flight.contains(&(channel, tag)) {
            return refuse(format!("channel {channel}: tag already in use: {tag}").into());
        }
        let flags = packet.flags();
        Incoming::Serve(Request {
            channel,
            tag,
            rq_type,
            flags,
            payload: packet.into_payload(),
        })
    }

    /// The request `(channel, tag)` waits for a handler or runs on: its tag is in use until
    /// it is [`answered`](Self::answered).
    #[inline]
    pub fn hold(&mut self, channel: u64, tag: u64) {
        self.in_flight.insert((channel, tag));
    }

    /// The held request `(channel, tag)` has been answered: its tag may come again.
    #[inline]
    pub fn answered(&mut self, channel: u64, tag: u64) {
        self.in_flight.remove(&(channel, tag));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(channel: u64, tag: u64) -> Packet {
        Packet::request(channel, tag, 0, 0, Bytes::from_static(b"q")).unwrap()
    }

    fn refused(incoming: Incoming) -> (u64, u64, Bytes) {
        match incoming {
            Incoming::Reject(p) => {
                assert_eq!((p.ok(), p.flags()), (Some(false), 0));
                (p.channel(), p.tag(), p.into_payload())
            }
            other => panic!("expected a rejection, got {other:?}"),
        }
    }

    #[test]
    fn without_a_handler_every_request_is_refused() {
        let mut s = Session::new(false, false);
        assert_eq!(
            refused(s.receive(request(0, 2))),
            (0, 2, Bytes::from_static(b"no request handler"))
        );
    }

    #[test]
    fn after_erq_requests_are_refused() {
        let mut s = Session::new(true, false);
        assert_eq!(s.receive(Packet::ERQ), Incoming::Erq);
        assert_eq!(
            refused(s.receive(request(0, 2))).2,
            Bytes::from_static(b"requests no longer allowed")
        );
    }

    #[test]
    fn unknown_channels_get_cs_literal_text_on_their_channel() {
        let mut s = Session::new(true, false);
        assert_eq!(
            refused(s.receive(request(5, 7))),
            (5, 7, Bytes::from_static(b"unknown channel %d"))
        );
        let mut on = Session::new(true, true);
        assert!(matches!(on.receive(request(5, 7)), Incoming::Serve(r) if r.channel == 5));
    }

    #[test]
    fn a_tag_held_is_refused_until_answered() {
        let mut s = Session::new(true, false);
        assert!(matches!(s.receive(request(0, 9)), Incoming::Serve(_)));
        // Not held (answered at once): the tag may come again.
        assert!(matches!(s.receive(request(0, 9)), Incoming::Serve(_)));
        s.hold(0, 9);
        assert_eq!(
            refused(s.receive(request(0, 9))).2,
            Bytes::from_static(b"channel 0: tag already in use: 9")
        );
        s.answered(0, 9);
        assert!(matches!(s.receive(request(0, 9)), Incoming::Serve(_)));
    }

    #[test]
    fn tags_zero_and_one_are_ordinary_requests_when_rq_type_is_set() {
        let mut s = Session::new(true, false);
        assert!(matches!(s.receive(request(0, 0)), Incoming::Serve(r) if r.tag == 0));
        assert!(matches!(s.receive(request(0, 1)), Incoming::Serve(r) if r.tag == 1));
    }

    #[test]
    fn control_packets() {
        let mut s = Session::new(true, false);
        assert_eq!(s.receive(Packet::EOF), Incoming::Eof { malformed: false });
        // A request with wire rq_type 0 and a payload: cs's "malformed EOF".
        let bad = Packet::decode_body(Bytes::from_static(&[0x05, 0x02, 0x00, 0x78])).unwrap();
        assert_eq!(s.receive(bad), Incoming::Eof { malformed: true });
        let resp = Packet::response(0, 2, true, 0, Bytes::new()).unwrap();
        assert_eq!(s.receive(resp.clone()), Incoming::Response(resp));
    }
}
