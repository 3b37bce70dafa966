//! The session alone, on virtual time: no socket, no task, no clock. Every close path and
//! every backpressure path, driven by hand the way the driver drives it.

use std::time::Duration;

use tokio_util::codec::{Decoder, Encoder};

use super::*;
use crate::MIN_PACKET;
use crate::in_flight::tests::{Count, waker};

fn woken(count: &Count) -> usize {
    count.woken()
}

/// A session with the peer's side of the wire beside it: what the peer sends is encoded
/// into `inbox` (the driver's read buffer), what the session writes is decoded from
/// `written`.
struct Wire {
    s: Session,
    inbox: BytesMut,
    codec: PacketCodec,
    now: Instant,
    wakers: Vec<Waker>,
}

impl Wire {
    fn new(config: Config, serving: bool) -> Wire {
        config.validate().unwrap();
        Wire {
            codec: PacketCodec::new(config.max_packet),
            s: Session::new(config, serving),
            inbox: BytesMut::new(),
            now: Instant::now(),
            wakers: Vec::new(),
        }
    }

    fn serving(config: Config) -> Wire {
        Wire::new(config, true)
    }

    /// The peer sends `packets`; the session reads them.
    fn peer_sends(&mut self, packets: &[Packet]) {
        let mut fresh = 0;
        for p in packets {
            let before = self.inbox.len();
            self.codec.encode(p, &mut self.inbox).unwrap();
            fresh += self.inbox.len() - before;
        }
        self.s.handle_read(&mut self.inbox, fresh, self.now);
        self.wake();
    }

    /// The session reads again what it left in the buffer (as the driver does each round).
    fn reread(&mut self) {
        self.s.handle_read(&mut self.inbox, 0, self.now);
    }

    /// The stream ends after what was sent.
    fn peer_ends(&mut self) {
        self.s.handle_read_eof(&mut self.inbox, self.now);
        self.wake();
    }

    /// Everything the session has to write, written: the packets the peer reads.
    fn peer_reads(&mut self) -> Vec<Packet> {
        let mut out = BytesMut::new();
        self.s.take_transmit(&mut out, self.now);
        let n = out.len();
        self.s.transmitted(n);
        self.wake();
        let mut packets = Vec::new();
        while let Some(p) = self.codec.decode(&mut out).unwrap() {
            packets.push(p);
        }
        assert!(out.is_empty());
        packets
    }

    /// Moves virtual time on by `d`, and lets the session act on it.
    fn advance(&mut self, d: Duration) {
        self.now += d;
        self.s.handle_timeout(self.now);
        self.wake();
    }

    fn wake(&mut self) {
        self.s.swap_wakers(&mut self.wakers);
        self.wakers.drain(..).for_each(Waker::wake);
    }

    /// A handler is done with `job`: its reply goes out as the driver sends it.
    fn reply(&mut self, job: Job, reply: Option<Reply>) {
        let mut replies = BytesMut::new();
        encode_reply(self.s.config(), job, reply, &mut replies);
        self.s.handle_replies(&mut vec![job], &mut replies);
    }

    /// The requests taken since the last call, for handlers.
    fn start_all(&mut self) -> Vec<(Job, Request)> {
        let mut taken = VecDeque::new();
        self.s.take_requests(&mut taken);
        taken.into()
    }

    /// Sends a request of this side, expecting room.
    fn submit(&mut self, rq_type: u64, payload: &'static [u8], owner: Owner) -> u64 {
        let (_, w) = waker();
        let packet =
            Session::outgoing(self.s.config(), 0, rq_type, 0, Bytes::from_static(payload)).unwrap();
        match self.s.submit(&mut Some(packet), owner, &mut None, &w) {
            Poll::Ready(Ok(tag)) => tag,
            other => panic!("expected room, got {other:?}"),
        }
    }
}

fn request(tag: u64, payload: &'static [u8]) -> Packet {
    Packet::request(0, tag, 0, 0, Bytes::from_static(payload)).unwrap()
}

fn response(tag: u64, flags: u64) -> Packet {
    Packet::response(0, tag, true, flags, Bytes::new()).unwrap()
}

/// A request of this side that may have to wait for room, with a waker that counts.
struct Waiting {
    request: Option<Outgoing>,
    ticket: Option<u64>,
    count: Arc<Count>,
    waker: Waker,
}

impl Waiting {
    fn new(s: &Session, payload: usize) -> Waiting {
        let (count, waker) = waker();
        let payload = Bytes::from(vec![0; payload]);
        Waiting {
            request: Some(Session::outgoing(s.config(), 0, 0, 0, payload).unwrap()),
            ticket: None,
            count,
            waker,
        }
    }

    fn send(&mut self, s: &mut Session) -> Poll<Result<u64, Error>> {
        s.submit(
            &mut self.request,
            Owner::Call,
            &mut self.ticket,
            &self.waker,
        )
    }

    fn woken(&self) -> usize {
        woken(&self.count)
    }
}

fn kinds(packets: &[Packet]) -> Vec<String> {
    packets
        .iter()
        .map(|p| match p {
            p if p.is_erq() => "ERQ".to_string(),
            p if p.is_eof() => "EOF".to_string(),
            p if p.is_request() => format!("req {}", p.tag()),
            p if p.ok() == Some(true) => format!("ok {}", p.tag()),
            p => format!("fail {}", p.tag()),
        })
        .collect()
}

fn echo() -> Option<Reply> {
    Some(Reply::ok(0, Bytes::from_static(b"r")))
}

// ---- closing ----

#[test]
fn a_server_closes_after_the_peers_eof_replies_first_then_erq_and_eof() {
    let mut w = Wire::serving(Config::default());
    w.peer_sends(&[request(2, b"a"), Packet::EOF]);
    assert_eq!(w.s.phase(), Phase::Closing);
    let started = w.start_all();
    assert_eq!(started.len(), 1);
    assert!(
        w.peer_reads().is_empty(),
        "nothing before the handler answers"
    );
    w.reply(started[0].0, echo());
    assert_eq!(kinds(&w.peer_reads()), ["ok 2", "ERQ", "EOF"]);
    assert!(w.s.must_shutdown(), "both EOFs exchanged, all written");
    w.s.shutdown_done();
    assert!(matches!(w.s.outcome(), Some(Ok(()))));
}

#[test]
fn a_client_close_sends_erq_and_eof_and_still_takes_its_responses() {
    let mut w = Wire::new(Config::default(), false);
    let (count, waker) = waker();
    let tag = w.submit(0, b"q", Owner::Call);
    assert!(w.s.poll_call(tag, &waker).is_none());
    w.s.close(w.now);
    assert_eq!(
        kinds(&w.peer_reads()),
        [format!("req {tag}"), "ERQ".into(), "EOF".into()]
    );
    assert_eq!(w.s.phase(), Phase::EofSent);
    w.peer_sends(&[response(tag, 7), Packet::ERQ, Packet::EOF]);
    assert_eq!(woken(&count), 1);
    assert_eq!(w.s.poll_call(tag, &waker).unwrap().unwrap().flags, 7);
    assert!(w.s.must_shutdown());
    w.s.shutdown_done();
    assert!(matches!(w.s.outcome(), Some(Ok(()))));
}

#[test]
fn a_close_the_peer_never_answers_is_cut_at_its_deadline() {
    let config = Config {
        close_timeout: Duration::from_secs(3),
        ..Config::default()
    };
    let mut w = Wire::new(config, false);
    w.s.close(w.now);
    assert_eq!(kinds(&w.peer_reads()), ["ERQ", "EOF"]);
    assert_eq!(w.s.poll_timeout(), Some(w.now + Duration::from_secs(3)));
    w.advance(Duration::from_millis(2999));
    assert!(w.s.outcome().is_none());
    w.advance(Duration::from_millis(1));
    assert!(matches!(w.s.outcome(), Some(Err(Error::CloseTimeout(_)))));
    assert_eq!(w.s.poll_timeout(), None);
}

#[test]
fn a_close_against_a_peer_that_never_reads_is_cut_at_its_deadline() {
    let mut w = Wire::new(Config::default(), false);
    let tag = w.submit(0, &[0; 100], Owner::Call);
    w.s.close(w.now);
    // The driver took the bytes but could write none of them.
    let mut out = BytesMut::new();
    w.s.take_transmit(&mut out, w.now);
    assert!(!out.is_empty());
    w.advance(Duration::from_secs(5));
    assert!(matches!(w.s.outcome(), Some(Err(Error::CloseTimeout(_)))));
    let (_, waker) = waker();
    assert!(matches!(
        w.s.poll_call(tag, &waker),
        Some(Err(Error::Ended(Ended::Failed(e)))) if matches!(*e, Error::CloseTimeout(_))
    ));
}

#[test]
fn a_close_with_a_handler_that_never_finishes_is_cut_at_its_deadline() {
    let mut w = Wire::serving(Config::default());
    w.peer_sends(&[request(2, b"forever")]);
    let running = w.start_all();
    assert_eq!(running.len(), 1);
    w.s.close(w.now);
    assert_eq!(kinds(&w.peer_reads()), ["ERQ"], "EOF waits for the handler");
    w.peer_sends(&[Packet::EOF]);
    w.advance(Duration::from_secs(4));
    assert!(w.s.outcome().is_none());
    w.advance(Duration::from_secs(1));
    assert!(matches!(w.s.outcome(), Some(Err(Error::CloseTimeout(_)))));
    // The handler the driver drops never reports; if it did, nothing would be sent.
    w.reply(running[0].0, echo());
    assert!(w.peer_reads().is_empty());
}

#[test]
fn the_deadline_covers_a_close_begun_by_the_peers_eof() {
    let mut w = Wire::serving(Config::default());
    w.peer_sends(&[request(2, b"slow"), Packet::EOF]);
    let _running = w.start_all();
    w.advance(Duration::from_secs(5));
    assert!(matches!(w.s.outcome(), Some(Err(Error::CloseTimeout(_)))));
}

#[test]
fn abort_cuts_at_once_and_fails_everything_waiting() {
    let config = Config {
        max_in_flight: 1,
        ..Config::default()
    };
    let mut w = Wire::new(config, false);
    let (count, waker) = waker();
    let tag = w.submit(0, b"q", Owner::Call);
    assert!(w.s.poll_call(tag, &waker).is_none());
    let mut second = Waiting::new(&w.s, 0);
    assert!(second.send(&mut w.s).is_pending(), "it waits for room");
    w.s.abort();
    w.wake();
    assert_eq!((woken(&count), second.woken()), (1, 1));
    assert!(matches!(
        w.s.poll_call(tag, &waker),
        Some(Err(Error::Ended(Ended::Aborted)))
    ));
    assert!(matches!(
        second.send(&mut w.s),
        Poll::Ready(Err(Error::Ended(Ended::Aborted)))
    ));
    assert!(matches!(w.s.outcome(), Some(Err(Error::Aborted))));
    assert!(w.peer_reads().is_empty(), "nothing is written after a cut");
}

#[test]
fn a_request_after_our_eof_is_dropped_and_never_handed_to_a_handler() {
    let mut w = Wire::serving(Config::default());
    w.s.close(w.now);
    assert_eq!(kinds(&w.peer_reads()), ["ERQ", "EOF"]);
    w.peer_sends(&[request(2, b"late")]);
    assert!(w.start_all().is_empty());
    assert!(w.peer_reads().is_empty(), "no refusal either: EOF is out");
    assert_eq!(w.s.stats().requests_refused, 1);
    assert_eq!(w.s.stats().received_bytes, 0);
}

#[test]
fn requests_while_closing_are_still_served_before_eof() {
    let mut w = Wire::serving(Config::default());
    w.peer_sends(&[request(2, b"a")]);
    let first = w.start_all();
    w.s.close(w.now);
    w.peer_sends(&[request(3, b"b")]);
    let second = w.start_all();
    assert_eq!(second.len(), 1);
    w.reply(first[0].0, echo());
    assert_eq!(kinds(&w.peer_reads()), ["ERQ", "ok 2"]);
    w.reply(second[0].0, echo());
    assert_eq!(kinds(&w.peer_reads()), ["ok 3", "EOF"]);
}

#[test]
fn the_peers_eof_fails_our_waiting_requests_at_once() {
    let mut w = Wire::new(Config::default(), false);
    let (count, waker) = waker();
    let tag = w.submit(0, b"q", Owner::Call);
    w.s.poll_call(tag, &waker);
    w.peer_reads();
    w.peer_sends(&[Packet::EOF]);
    assert_eq!(woken(&count), 1);
    assert!(matches!(
        w.s.poll_call(tag, &waker),
        Some(Err(Error::Ended(Ended::PeerEof)))
    ));
    assert!(matches!(w.s.read_end(), Some(Ended::PeerEof)));
    assert_eq!(kinds(&w.peer_reads()), ["ERQ", "EOF"]);
    assert!(w.s.must_shutdown());
}

#[test]
fn the_stream_ending_inside_a_packet_is_truncated_and_still_closes_cleanly() {
    let mut w = Wire::new(Config::default(), false);
    w.inbox.extend_from_slice(&[0x08, 0x02, 0x04]);
    w.peer_ends();
    assert_eq!(kinds(&w.peer_reads()), ["ERQ", "EOF"]);
    w.s.shutdown_done();
    assert!(matches!(
        w.s.outcome(),
        Some(Err(Error::Truncated { buffered: 3 }))
    ));
    // At a packet boundary it is a plain end.
    let mut w = Wire::new(Config::default(), false);
    w.peer_ends();
    assert!(matches!(w.s.read_end(), Some(Ended::StreamEnd)));
}

#[test]
fn a_stream_ending_after_the_80_bytes_of_a_length_prefix_is_truncated_too() {
    // Found by scripts/differential: cs reads "80 80 80" then EOF as a cut packet, and so
    // must we, though the codec drops such bytes as they come and holds nothing.
    let mut w = Wire::new(Config::default(), false);
    w.inbox.extend_from_slice(&[0x80, 0x80, 0x80]);
    w.peer_ends();
    w.peer_reads();
    w.s.shutdown_done();
    assert!(
        matches!(w.s.outcome(), Some(Err(Error::Truncated { buffered: 3 }))),
        "{:?}",
        w.s.outcome()
    );
}

#[test]
fn a_length_prefix_over_max_packet_ends_reading_before_its_body() {
    let config = Config {
        max_packet: 1024,
        max_received: 1024,
        max_unsent: 1024,
        ..Config::default()
    };
    let mut w = Wire::serving(config);
    // 2^40 bytes announced.
    w.inbox
        .extend_from_slice(&[0xa0, 0x80, 0x80, 0x80, 0x80, 0x00]);
    w.reread();
    assert!(matches!(w.s.read_end(), Some(Ended::Failed(_))));
    assert_eq!(w.s.read_want(&w.inbox), None);
    assert_eq!(kinds(&w.peer_reads()), ["ERQ", "EOF"]);
}

#[test]
fn a_request_with_wire_rq_type_zero_is_eof_and_what_follows_is_ignored() {
    let mut w = Wire::serving(Config::default());
    let bad = Packet::decode_body(Bytes::from_static(&[0x09, 0x02, 0x00, 0x78])).unwrap();
    w.peer_sends(&[bad, request(2, b"ignored")]);
    assert!(matches!(w.s.read_end(), Some(Ended::PeerEof)));
    assert!(w.start_all().is_empty());
    assert_eq!(kinds(&w.peer_reads()), ["ERQ", "EOF"]);
}

// ---- backpressure and budgets ----

#[test]
fn requests_beyond_max_received_stay_unread_until_handlers_finish() {
    let config = Config {
        max_packet: 1000,
        max_received: 3000,
        ..Config::default()
    };
    let mut w = Wire::serving(config);
    let big = vec![0u8; 700];
    let packets: Vec<Packet> = (2..12)
        .map(|tag| Packet::request(0, tag, 0, 0, Bytes::from(big.clone())).unwrap())
        .collect();
    w.peer_sends(&packets);
    let held = w.s.stats().received_bytes;
    assert!(held <= 3000, "{held}");
    assert_eq!(held / (700 + 5 + REQUEST_COST), 3, "three fit");
    assert_eq!(w.s.read_want(&w.inbox), None, "reading waits");
    let mut taken = w.start_all();
    assert_eq!(taken.len(), 3);
    w.reread();
    assert!(
        w.start_all().is_empty(),
        "nothing more until a handler is done"
    );
    let (job, _) = taken.remove(0);
    w.reply(job, echo());
    w.reread();
    assert_eq!(
        w.s.stats().received_bytes,
        held,
        "one answered, one more taken"
    );
    assert_eq!(w.start_all().len(), 1);
    assert_eq!(w.s.stats().requests_served, 1);
}

#[test]
fn a_peer_that_never_reads_stops_being_read_at_max_unsent() {
    let config = Config {
        max_packet: 1000,
        max_received: 2000,
        max_unsent: 2000,
        ..Config::default()
    };
    let mut w = Wire::serving(config);
    let payload = Bytes::from(vec![1u8; 900]);
    // The peer sends and never reads; each handler echoes.
    for tag in 2..22 {
        let p = Packet::request(0, tag, 0, 0, payload.clone()).unwrap();
        w.peer_sends(&[p]);
        for (job, rq) in w.start_all() {
            w.reply(job, Some(Reply::ok(0, rq.payload)));
        }
    }
    let stats = w.s.stats();
    // Requests are taken while fewer than 2000 bytes wait (one reply can go beyond); then
    // reading stops.
    assert!(stats.unsent_bytes < 2000 + 1000, "{stats:?}");
    assert!(stats.received_bytes <= 2000, "{stats:?}");
    assert_eq!(w.s.read_want(&w.inbox), None);
    assert!(stats.requests_served < 20);
    // The peer reads: the request left in the buffer is taken, handlers start again, and
    // reading goes on.
    w.peer_reads();
    w.reread();
    assert!(!w.start_all().is_empty());
    assert!(w.s.stats().requests_served < 20);
}

#[test]
fn a_flood_of_refused_requests_stops_at_max_unsent() {
    let config = Config {
        max_packet: 1000,
        max_received: 1000,
        max_unsent: 1000,
        ..Config::default()
    };
    let mut w = Wire::new(config, false);
    let flood: Vec<Packet> = (2..1000).map(|tag| request(tag, b"")).collect();
    w.peer_sends(&flood);
    let stats = w.s.stats();
    // Each refusal is 23 bytes ("no request handler" and its head).
    assert!(stats.unsent_bytes < 1000 + 30, "{stats:?}");
    assert!(stats.requests_refused < 50, "{stats:?}");
    assert_eq!(w.s.read_want(&w.inbox), None);
}

#[test]
fn responses_are_read_even_while_our_unsent_budget_is_full() {
    let config = Config {
        max_packet: 1000,
        max_unsent: 1000,
        ..Config::default()
    };
    let mut w = Wire::new(config, false);
    let (_, waker) = waker();
    let tag = w.submit(0, &[0; 900], Owner::Call);
    // Not written: the peer does not read. Its response still comes through.
    w.peer_sends(&[response(tag, 3)]);
    assert_eq!(w.s.poll_call(tag, &waker).unwrap().unwrap().flags, 3);
    assert_eq!(w.s.read_want(&w.inbox), Some(1));
}

/// A session with room for one request, which one request holds, and two more waiting.
fn one_held_two_waiting() -> (Wire, u64, Waiting, Waiting) {
    let config = Config {
        max_in_flight: 1,
        ..Config::default()
    };
    let mut w = Wire::new(config, false);
    let held = w.submit(0, b"a", Owner::Call);
    let (mut first, mut second) = (Waiting::new(&w.s, 0), Waiting::new(&w.s, 0));
    assert!(first.send(&mut w.s).is_pending());
    assert!(second.send(&mut w.s).is_pending());
    (w, held, first, second)
}

#[test]
fn sending_waits_for_room_in_turn_and_nobody_overtakes() {
    let (mut w, held, mut first, mut second) = one_held_two_waiting();
    w.peer_reads();
    w.peer_sends(&[response(held, 0)]);
    let (_, taker) = waker();
    w.s.poll_call(held, &taker).unwrap().unwrap();
    w.wake();
    assert_eq!((first.woken(), second.woken()), (1, 0));
    // The second may not take the room the first was woken for.
    assert!(second.send(&mut w.s).is_pending());
    assert!(matches!(first.send(&mut w.s), Poll::Ready(Ok(_))));
    // The first gives up its tag: the second's turn.
    let sent = w.peer_reads().pop().unwrap().tag();
    w.s.cancel(sent);
    w.wake();
    assert_eq!(second.woken(), 1);
    assert!(matches!(second.send(&mut w.s), Poll::Ready(Ok(_))));
}

#[test]
fn a_waiter_that_gives_up_passes_its_turn_on() {
    let (mut w, held, mut first, mut second) = one_held_two_waiting();
    w.s.cancel(held);
    w.s.forget_ticket(first.ticket.take());
    w.wake();
    assert_eq!(second.woken(), 1);
    assert!(matches!(second.send(&mut w.s), Poll::Ready(Ok(_))));
}

#[test]
fn sending_waits_for_room_in_max_unsent() {
    let config = Config {
        max_packet: 1000,
        max_unsent: 1500,
        ..Config::default()
    };
    let mut w = Wire::new(config, false);
    w.submit(0, &[0; 900], Owner::Call);
    let mut next = Waiting::new(&w.s, 900);
    assert!(next.send(&mut w.s).is_pending());
    w.peer_reads();
    assert_eq!(next.woken(), 1, "written: room");
    assert!(next.send(&mut w.s).is_ready());
}

#[test]
fn a_request_timeout_fails_the_request_on_virtual_time_and_its_late_reply_is_an_orphan() {
    let config = Config {
        request_timeout: Some(Duration::from_millis(250)),
        ..Config::default()
    };
    let mut w = Wire::new(config, false);
    let (count, waker) = waker();
    let tag = w.submit(0, b"q", Owner::Call);
    w.s.poll_call(tag, &waker);
    assert_eq!(
        w.s.poll_timeout(),
        None,
        "the timeout starts when it is written"
    );
    w.peer_reads();
    assert_eq!(w.s.poll_timeout(), Some(w.now + Duration::from_millis(250)));
    w.advance(Duration::from_millis(250));
    assert_eq!(woken(&count), 1);
    assert!(matches!(
        w.s.poll_call(tag, &waker),
        Some(Err(Error::Timeout(_)))
    ));
    w.peer_sends(&[response(tag, 0)]);
    let stats = w.s.stats();
    assert_eq!((stats.timeouts, stats.orphans), (1, 1));
}

#[test]
fn a_grace_holds_writes_until_it_has_passed() {
    let config = Config {
        grace: Duration::from_millis(10),
        ..Config::default()
    };
    let mut w = Wire::new(config, false);
    w.submit(0, b"a", Owner::Call);
    assert!(w.peer_reads().is_empty());
    assert_eq!(w.s.poll_timeout(), Some(w.now + Duration::from_millis(10)));
    w.submit(0, b"b", Owner::Call);
    w.advance(Duration::from_millis(10));
    assert_eq!(w.peer_reads().len(), 2, "both in one write");
}

#[test]
fn duplicate_and_stray_responses_are_orphans_on_every_path() {
    let mut w = Wire::new(Config::default(), false);
    let (_, waker) = waker();
    let call = w.submit(0, b"c", Owner::Call);
    let pipe = w.s.open_pipe();
    let piped = w.submit(0, b"p", Owner::Pipe(pipe));
    w.peer_reads();
    w.peer_sends(&[
        response(call, 1),
        response(call, 2),
        response(piped, 3),
        response(piped, 4),
        response(99, 5),
        Packet::response(7, call, true, 6, Bytes::new()).unwrap(),
    ]);
    assert_eq!(w.s.stats().orphans, 4);
    assert_eq!(w.s.poll_call(call, &waker).unwrap().unwrap().flags, 1);
    let mut got = VecDeque::new();
    w.s.take_pipe(pipe, &mut got, &waker);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].1.as_ref().unwrap().flags, 3);
}

#[test]
fn cs_refusals_keep_cs_texts_and_a_tag_in_use_is_refused() {
    let mut w = Wire::serving(Config::default());
    w.peer_sends(&[
        request(9, b"first"),
        request(9, b"again"),
        Packet::request(5, 7, 0, 0, Bytes::new()).unwrap(),
        Packet::ERQ,
        request(10, b"late"),
    ]);
    let texts: Vec<Bytes> = w
        .peer_reads()
        .into_iter()
        .map(Packet::into_payload)
        .collect();
    assert_eq!(
        texts,
        [
            &b"channel 0: tag already in use: 9"[..],
            b"unknown channel %d",
            b"requests no longer allowed"
        ]
    );
    assert_eq!(w.start_all().len(), 1);
}

#[test]
fn a_quiet_session_gives_its_memory_back() {
    let mut w = Wire::serving(Config::default());
    assert!(w.s.is_quiet());
    w.peer_sends(&[request(2, b"a")]);
    assert!(!w.s.is_quiet());
    let (job, _) = w.start_all().pop().unwrap();
    w.reply(job, echo());
    assert!(!w.s.is_quiet(), "the reply waits to be written");
    w.peer_reads();
    assert!(w.s.is_quiet());
    w.s.release_idle();
    assert_eq!(w.s.outbound.capacity(), 0);
}

/// What a driver holding large buffers reports: over [`LIGHT`] whatever the session holds.
const HEAVY: usize = LIGHT + 1;

#[test]
fn a_quiet_connection_holding_little_keeps_it_with_no_deadline() {
    let mut w = Wire::serving(Config::default());
    w.peer_sends(&[request(2, b"a")]);
    let (job, _) = w.start_all().pop().unwrap();
    w.reply(job, echo());
    w.peer_reads();
    assert!(w.s.held() < LIGHT, "{} bytes", w.s.held());
    assert!(!w.s.quiet(w.now, true, 100));
    assert_eq!(w.s.poll_timeout(), None, "no timer for a light connection");
    w.now += IDLE_RELEASE * 10;
    assert!(!w.s.quiet(w.now, true, 100), "nothing to give back");
    assert_eq!(w.s.poll_timeout(), None);
    // The same with a driver that holds much: released after IDLE_RELEASE.
    assert!(!w.s.quiet(w.now, true, HEAVY));
    assert_eq!(w.s.poll_timeout(), Some(w.now + IDLE_RELEASE));
    w.now += IDLE_RELEASE;
    assert!(w.s.quiet(w.now, true, HEAVY));
}

#[test]
fn a_quiet_connection_gives_its_memory_back_once_and_then_sleeps() {
    let mut w = Wire::serving(Config::default());
    w.peer_sends(&[request(2, b"a")]);
    let (job, _) = w.start_all().pop().unwrap();
    w.reply(job, echo());
    w.peer_reads();
    assert!(
        !w.s.quiet(w.now, false, HEAVY),
        "the driver is busy: no spell"
    );
    assert_eq!(w.s.poll_timeout(), None);
    // Quiet from now: the release is due after IDLE_RELEASE, not before.
    assert!(!w.s.quiet(w.now, true, HEAVY));
    assert_eq!(w.s.poll_timeout(), Some(w.now + IDLE_RELEASE));
    w.now += IDLE_RELEASE / 2;
    assert!(!w.s.quiet(w.now, true, HEAVY));
    // Activity ends the spell; a new one starts from the next quiet moment.
    w.peer_sends(&[request(3, b"b")]);
    let (job, _) = w.start_all().pop().unwrap();
    w.reply(job, echo());
    w.peer_reads();
    assert!(!w.s.quiet(w.now, true, HEAVY));
    w.now += IDLE_RELEASE - Duration::from_millis(1);
    assert!(!w.s.quiet(w.now, true, HEAVY));
    w.now += Duration::from_millis(1);
    assert!(
        w.s.quiet(w.now, true, HEAVY),
        "quiet for IDLE_RELEASE: released"
    );
    assert_eq!(w.s.outbound.capacity(), 0);
    // Once per spell: no deadline left to wake an idle connection.
    assert_eq!(w.s.poll_timeout(), None);
    w.now += IDLE_RELEASE * 10;
    assert!(!w.s.quiet(w.now, true, HEAVY));
    assert_eq!(w.s.poll_timeout(), None);
}

// ---- a pipeline's batch ----

/// A pipeline on `w` with `want` tags set aside: its number and its batch.
fn pipe_with_batch(w: &mut Wire, want: usize) -> (u32, Batch) {
    let id = w.s.open_pipe();
    let mut batch = Batch {
        want,
        ..Batch::default()
    };
    assert!(w.s.refill(id, &mut batch));
    (id, batch)
}

/// A pipeline on `w` with a batch of `n` requests, encoded without the session as a
/// pipeline does: its number, its batch and the requests' tags.
fn batch_of(w: &mut Wire, n: usize) -> (u32, Batch, Vec<u64>) {
    let (id, mut batch) = pipe_with_batch(w, n);
    let tags = (0..n)
        .map(|_| {
            let payload = Bytes::from_static(b"q");
            let mut request = Some(Session::outgoing(w.s.config(), 0, 0, 0, payload).unwrap());
            batch.push(&mut request).expect("room in the batch")
        })
        .collect();
    (id, batch, tags)
}

#[test]
fn a_batch_goes_out_only_once_handed_over_and_its_tags_take_no_response_before() {
    let config = Config {
        request_timeout: Some(Duration::from_secs(1)),
        ..Config::default()
    };
    let mut w = Wire::new(config, false);
    let (id, mut batch, tags) = batch_of(&mut w, 3);
    assert_eq!(w.s.unsent(), MAX_GRANT, "the share counts in the budget");
    assert!(w.peer_reads().is_empty(), "nothing queued yet");
    // A response to a tag not sent is an orphan; no timeout runs for it.
    w.peer_sends(&[response(tags[0], 9)]);
    assert_eq!(w.s.stats().orphans, 1);
    w.advance(Duration::from_secs(5));
    assert_eq!(w.s.stats().timeouts, 0);
    w.s.hand_over(&mut batch);
    assert!(batch.is_empty());
    let sent = w.peer_reads();
    assert_eq!(kinds(&sent), ["req 2", "req 3", "req 4"]);
    assert_eq!(w.s.unsent(), 0, "written, and the share given back");
    assert_eq!(w.s.pipe_in_flight(id), 3);
    w.peer_sends(&[response(tags[1], 1)]);
    let mut got = VecDeque::new();
    let (_, taker) = waker();
    w.s.take_pipe(id, &mut got, &taker);
    assert_eq!(
        got.pop_front().map(|(t, o)| (t, o.unwrap().flags)),
        Some((tags[1], 1))
    );
    // The timeout starts when they are written.
    w.advance(Duration::from_secs(1));
    assert_eq!(w.s.stats().timeouts, 2);
}

#[test]
fn tags_a_batch_did_not_use_go_back_and_are_never_answered() {
    let config = Config {
        max_in_flight: 4,
        ..Config::default()
    };
    let mut w = Wire::new(config, false);
    let (_, mut batch) = pipe_with_batch(&mut w, 4);
    assert_eq!(batch.free.len(), 4);
    let mut waiting = Waiting::new(&w.s, 1);
    assert!(
        waiting.send(&mut w.s).is_pending(),
        "the batch holds every place"
    );
    let mut request =
        Some(Session::outgoing(w.s.config(), 0, 0, 0, Bytes::from_static(b"q")).unwrap());
    let tag = batch.push(&mut request).unwrap();
    w.s.hand_over(&mut batch);
    w.wake();
    assert_eq!(waiting.woken(), 1, "three places came back");
    assert!(matches!(waiting.send(&mut w.s), Poll::Ready(Ok(t)) if t > tag + 3));
    assert_eq!(
        kinds(&w.peer_reads()),
        [format!("req {tag}"), "req 6".into()]
    );
    // The tags set aside and not used are strays.
    w.peer_sends(&[response(tag + 1, 0), response(tag + 2, 0)]);
    assert_eq!(w.s.stats().orphans, 2);
}

#[test]
fn a_batch_handed_over_after_the_close_began_fails_with_closing_and_sends_nothing() {
    let mut w = Wire::new(Config::default(), false);
    let (id, mut batch, tags) = batch_of(&mut w, 2);
    w.s.close(w.now);
    // The close does not wait for the batch, nor does its end fail it.
    assert_eq!(kinds(&w.peer_reads()), ["ERQ", "EOF"]);
    assert!(
        !w.s.refill(id, &mut Batch::default()),
        "no new batch once closing"
    );
    w.s.hand_over(&mut batch);
    let mut got = VecDeque::new();
    let (_, taker) = waker();
    w.s.take_pipe(id, &mut got, &taker);
    let got: Vec<(u64, bool)> = got
        .into_iter()
        .map(|(t, o)| (t, matches!(o, Err(Error::Closing))))
        .collect();
    assert_eq!(got, [(tags[0], true), (tags[1], true)]);
    assert!(w.peer_reads().is_empty());
    assert_eq!((w.s.unsent(), w.s.stats().requests_sent), (0, 0));
}

#[test]
fn a_pipeline_closed_with_a_batch_gives_its_places_and_share_back() {
    let mut w = Wire::new(Config::default(), false);
    let (id, mut batch, _) = batch_of(&mut w, 3);
    w.s.close_pipe(id, &mut batch);
    assert_eq!((w.s.unsent(), w.s.in_flight.live()), (0, 0));
    assert!(w.s.is_quiet());
    assert!(w.peer_reads().is_empty());
}

#[test]
fn a_batch_takes_no_more_than_its_share_of_max_unsent() {
    let config = Config {
        max_packet: MIN_PACKET,
        max_unsent: MIN_PACKET,
        ..Config::default()
    };
    let mut w = Wire::new(config, false);
    let (id, mut batch) = pipe_with_batch(&mut w, 8);
    assert_eq!(batch.grant, MIN_PACKET);
    let mut sent = 0;
    loop {
        let mut request =
            Some(Session::outgoing(w.s.config(), 0, 0, 0, Bytes::from(vec![0; 40])).unwrap());
        if batch.push(&mut request).is_none() {
            assert!(
                request.is_some(),
                "a request that does not fit stays with its sender"
            );
            break;
        }
        sent += 1;
    }
    // Each frame is 44 bytes (a length, a tag, a flags word and an rq_type of one byte).
    assert_eq!(sent, 2, "two frames of 44 bytes in {MIN_PACKET}");
    assert_eq!(batch.bytes.len(), 88);
    assert!(
        !w.s.refill(id, &mut Batch::default()),
        "the budget is all set aside"
    );
}
