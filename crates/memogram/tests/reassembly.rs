//! Reassembly: hio's rules (spec §2.1 to §2.3), and the bounds, timeouts and checks hio lacks.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use bytes::Bytes;
use memogram::{
    Config, Encoding, Error, GRAM_COST, Keys, MEMO_COST, Memo, Mid, Reassembly, SOURCE_COST, Seed,
    Shape, Signer, VidCode, segment,
};
use proptest::prelude::*;

mod common;
use common::handmade;

fn cut(memo: &[u8], size: usize, signer: Option<&Signer>) -> (Mid, Vec<Bytes>) {
    let mid = Mid::fresh();
    let shape = Shape {
        size,
        encoding: Encoding::Base64,
    };
    let grams = segment(memo, mid, &shape, signer, &Config::default()).unwrap();
    (mid, grams)
}

fn signer(n: u8) -> Signer {
    Signer::from_seed(&Seed::new([n; 32]))
}

/// Feeds `grams` from `source` at `now`, and returns the memos handed out; errors panic.
fn feed(
    r: &mut Reassembly<&'static str>,
    grams: &[Bytes],
    now: Instant,
) -> Vec<Memo<&'static str>> {
    grams
        .iter()
        .filter_map(|g| r.receive(g.clone(), "a", now).unwrap())
        .collect()
}

#[test]
fn duplicates_are_ignored_and_the_first_copy_wins() {
    let (mid, grams) = cut(b"one two three four five six", 36, None);
    assert!(grams.len() >= 3);
    let now = Instant::now();
    // As hio does (no replay window): a memo whole again from second copies is handed out.
    let mut r = Reassembly::new(Config {
        replay_window: 0,
        ..Config::default()
    });
    // A forged copy of gram 1 comes first, then the real one: the forged one is kept.
    let forged = handmade("bAAB", 1, mid, b"XXXX");
    assert_eq!(r.receive(forged, "a", now).unwrap(), None);
    let mut memos = Vec::new();
    for gram in grams.iter().chain(&grams) {
        memos.extend(r.receive(gram.clone(), "a", now).unwrap());
    }
    assert_eq!(
        memos.len(),
        2,
        "whole once, then again from the second copies"
    );
    assert!(memos[0].body().starts_with(b"one"));
    assert!(memos[0].text().unwrap().contains("XXXX"));
    assert_eq!(memos[1].text().unwrap(), "one two three four five six");
    assert!(r.stats().duplicates >= 1);
    // With the default replay window, the second copies are a replay: dropped, counted.
    let mut r = Reassembly::new(Config::default());
    let mut memos = Vec::new();
    for gram in grams.iter().chain(&grams) {
        memos.extend(r.receive(gram.clone(), "a", now).unwrap());
    }
    assert_eq!(memos.len(), 1);
    assert_eq!(r.stats().replayed, grams.len() as u64);
}

#[test]
fn a_replayed_memo_is_handed_out_again_as_hio_does_without_a_replay_window() {
    let (_, grams) = cut(b"replay me please, twice", 36, None);
    let mut r = Reassembly::new(Config {
        replay_window: 0,
        ..Config::default()
    });
    let now = Instant::now();
    assert_eq!(feed(&mut r, &grams, now).len(), 1);
    assert_eq!(feed(&mut r, &grams, now).len(), 1);
    assert_eq!(r.stats().memos, 2);
}

#[test]
fn a_replayed_memo_is_counted_not_delivered_twice_within_the_replay_window() {
    let (_, grams) = cut(b"replay me please, twice", 36, None);
    let (_, single) = cut(b"one gram", 1000, None);
    assert_eq!(single.len(), 1);
    let mut r = Reassembly::new(Config {
        replay_window: 2,
        ..Config::default()
    });
    let now = Instant::now();
    assert_eq!(feed(&mut r, &grams, now).len(), 1);
    assert_eq!(feed(&mut r, &grams, now).len(), 0, "the replay is dropped");
    assert_eq!(r.stats().replayed, grams.len() as u64);
    assert_eq!(feed(&mut r, &single, now).len(), 1);
    assert_eq!(feed(&mut r, &single, now).len(), 0, "a one-gram memo too");
    // The same mid from another source is another memo.
    assert!(r.receive(single[0].clone(), "b", now).unwrap().is_some());
    // The window holds the last 2 memos delivered: the first has been forgotten.
    assert_eq!(feed(&mut r, &grams, now).len(), 1);
    assert_eq!(r.stats().memos, 4);
}

#[test]
fn the_same_mid_from_two_sources_is_two_memos() {
    let (_, grams) = cut(b"from here and from there", 36, None);
    let mut r = Reassembly::new(Config::default());
    let now = Instant::now();
    for gram in &grams[1..] {
        assert_eq!(r.receive(gram.clone(), "a", now).unwrap(), None);
        assert_eq!(r.receive(gram.clone(), "b", now).unwrap(), None);
    }
    assert_eq!(r.pending().memos, 2);
    let a = r.receive(grams[0].clone(), "a", now).unwrap().unwrap();
    assert_eq!((*a.source(), r.pending().memos), ("a", 1));
}

#[test]
fn signed_later_grams_that_come_first_are_held_and_checked() {
    let signer = signer(1);
    let (_, grams) = cut(&[0x42; 500], 200, Some(&signer));
    assert!(grams.len() >= 4);
    let mut r = Reassembly::new(Config::default());
    let now = Instant::now();
    // Gram 2 comes first, tampered; gram 1 comes first, intact; then gram 0 and the rest.
    let mut bad = grams[2].to_vec();
    bad[100] ^= 1;
    assert_eq!(r.receive(Bytes::from(bad), "a", now).unwrap(), None);
    assert_eq!(r.receive(grams[1].clone(), "a", now).unwrap(), None);
    assert_eq!(r.receive(grams[0].clone(), "a", now).unwrap(), None);
    assert_eq!(
        r.stats().rejected,
        1,
        "the tampered held gram is refused once gram 0 is in"
    );
    let memos = feed(&mut r, &grams[2..], now);
    assert_eq!(memos.len(), 1);
    assert_eq!(&memos[0].body()[..], &[0x42; 500][..]);
    assert_eq!(memos[0].vid(), Some(signer.vid()));
}

#[test]
fn signed_and_unsigned_grams_do_not_mix() {
    let signer = signer(1);
    let (mid, grams) = cut(&[7; 400], 200, Some(&signer));
    let now = Instant::now();
    let mut r = Reassembly::new(Config::default());
    r.receive(grams[0].clone(), "a", now).unwrap();
    // hio takes an unsigned later gram into a signed memo; here it is refused.
    let unsigned = handmade("bAAB", 1, mid, &[7; 40]);
    assert!(matches!(
        r.receive(unsigned, "a", now),
        Err(Error::Unsigned { .. })
    ));
    // An unsigned first gram, then a signed later gram: no vid to check it by (hio drops it).
    let (mid, plain) = cut(&[7; 100], 40, None);
    r.receive(plain[0].clone(), "b", now).unwrap();
    let (_, signed) = cut(&[7; 400], 200, Some(&signer));
    let mut later = signed[1].to_vec();
    later[8..32].copy_from_slice(mid.to_qb64().as_bytes());
    assert!(matches!(
        r.receive(Bytes::from(later), "b", now),
        Err(Error::BadSignature { .. })
    ));
}

#[test]
fn a_gram_numbered_past_the_count_is_an_error_not_a_crash() {
    let mid = Mid::fresh();
    let now = Instant::now();
    let mut r = Reassembly::new(Config::default());
    // hio: gc = 2 and gns {0, 5} kill the process in fuse.
    r.receive(handmade("bAAA", 2, mid, b"ab"), "a", now)
        .unwrap();
    assert_eq!(
        r.receive(handmade("bAAB", 5, mid, b"cd"), "a", now),
        Err(Error::GramNumber {
            number: 5,
            count: 2
        })
    );
    // The memo still completes from its real gram 1.
    let memo = r
        .receive(handmade("bAAB", 1, mid, b"cd"), "a", now)
        .unwrap();
    assert_eq!(&memo.unwrap().body()[..], b"abcd");
    // Gram 5 first, then gram 0 with a count of 2: gram 5 alone is dropped (it may be
    // forged), and the memo completes from its real gram 1.
    let mid = Mid::fresh();
    r.receive(handmade("bAAB", 5, mid, b"cd"), "a", now)
        .unwrap();
    let rejected = r.stats().rejected;
    assert_eq!(
        r.receive(handmade("bAAA", 2, mid, b"ab"), "a", now),
        Ok(None)
    );
    assert_eq!(r.stats().rejected, rejected + 1);
    let memo = r.receive(handmade("bAAB", 1, mid, b"cd"), "a", now);
    assert_eq!(&memo.unwrap().unwrap().body()[..], b"abcd");
    assert_eq!(r.pending().memos, 0);
    // A later gram numbered 0.
    assert!(matches!(
        r.receive(handmade("bAAB", 0, Mid::fresh(), b"x"), "a", now),
        Err(Error::GramNumber { number: 0, .. })
    ));
}

#[test]
fn a_count_of_0_from_hio_base2_delivers_the_body() {
    // hio in base2 sends "Hi" as one gram with gc = 0: code, neck 0, mid, body.
    let mid = Mid::fresh();
    let mut gram = vec![0x6c, 0x00, 0x00, 0x00, 0x00, 0x00];
    gram.extend_from_slice(&mid.to_qb2());
    gram.extend_from_slice(b"Hi");
    let mut r = Reassembly::new(Config::default());
    let memo = r.receive(Bytes::from(gram), "hio", Instant::now()).unwrap();
    assert_eq!(memo.unwrap().text().unwrap(), "Hi");
}

#[test]
fn authic_refuses_unsigned_grams() {
    let config = Config {
        authic: true,
        ..Config::default()
    };
    let mut r = Reassembly::new(config);
    let now = Instant::now();
    let (_, plain) = cut(b"hello", 1240, None);
    assert!(matches!(
        r.receive(plain[0].clone(), "a", now),
        Err(Error::Unsigned { .. })
    ));
    let (_, signed) = cut(b"hello", 1240, Some(&signer(1)));
    let memo = r.receive(signed[0].clone(), "a", now).unwrap().unwrap();
    assert_eq!(memo.vid(), Some(signer(1).vid()));
}

#[test]
fn the_allow_list_refuses_other_signers() {
    let config = Config {
        allowed: Some(HashSet::from([signer(1).vid()])),
        ..Config::default()
    };
    let mut r = Reassembly::new(config);
    let now = Instant::now();
    let (_, other) = cut(b"hello", 1240, Some(&signer(2)));
    assert_eq!(
        r.receive(other[0].clone(), "a", now),
        Err(Error::NotAllowed {
            vid: signer(2).vid()
        })
    );
    let (_, ours) = cut(b"hello", 1240, Some(&signer(1)));
    assert!(r.receive(ours[0].clone(), "a", now).unwrap().is_some());
}

#[test]
fn d_and_e_vids_verify_through_the_key_store() {
    let now = Instant::now();
    for code in [VidCode::D, VidCode::E] {
        let named = signer(4).named(code);
        assert_eq!(named.vid().code(), code);
        let (_, grams) = cut(&[1; 300], 200, Some(&named));
        let mut r = Reassembly::new(Config::default());
        assert_eq!(
            r.receive(grams[0].clone(), "a", now),
            Err(Error::UnknownVid { vid: named.vid() })
        );
        let mut keys = Keys::default();
        keys.add(*signer(4).vid().raw());
        let mut r = Reassembly::new(Config {
            keys,
            ..Config::default()
        });
        let memos = feed(&mut r, &grams, now);
        assert_eq!(memos.len(), 1);
        assert_eq!(memos[0].vid(), Some(named.vid()));
    }
}

#[test]
fn incomplete_memos_expire_after_the_timeout() {
    let (_, grams) = cut(b"never finished, never delivered", 36, None);
    let mut r = Reassembly::new(Config::default());
    let t0 = Instant::now();
    r.receive(grams[0].clone(), "a", t0).unwrap();
    let deadline = r.next_deadline().unwrap();
    assert_eq!(deadline, t0 + Duration::from_secs(30));
    assert_eq!(r.expire(t0 + Duration::from_secs(29)), 0);
    assert_eq!(r.pending().memos, 1);
    assert_eq!(r.expire(deadline), 1);
    assert_eq!((r.pending().memos, r.pending().bytes), (0, 0));
    assert_eq!(r.next_deadline(), None);
    // The rest arriving late starts over and cannot complete without gram 0.
    assert!(feed(&mut r, &grams[1..], deadline).is_empty());
    assert_eq!(r.stats().expired, 1);
}

#[test]
fn a_flood_of_100_000_mids_stays_within_the_bounds() {
    let config = Config::default();
    let (max_memos, max_bytes) = (config.max_source_memos, config.max_source_bytes);
    let mut r = Reassembly::new(config);
    let now = Instant::now();
    let body = [0u8; 64];
    for _ in 0..100_000 {
        let gram = handmade("bAAB", 1, Mid::fresh(), &body);
        assert_eq!(r.receive(gram, "flood", now).unwrap(), None);
        let pending = r.pending();
        assert!(pending.memos <= max_memos, "{pending:?}");
        assert!(pending.bytes <= max_bytes, "{pending:?}");
    }
    let per_memo = MEMO_COST + GRAM_COST + 32 + body.len();
    assert_eq!(r.pending().memos, max_memos);
    assert_eq!(r.pending().bytes, SOURCE_COST + max_memos * per_memo);
    assert_eq!(r.stats().evicted, 100_000 - max_memos as u64);
    // A real memo still gets through, and the oldest state goes to make room for it.
    let (_, grams) = cut(b"still heard", 36, None);
    assert_eq!(feed(&mut r, &grams, now).len(), 1);
}

/// An honest six-gram memo from `honest`, each of its grams after `per_gram` first grams of
/// fresh memos from the flooding `sources`, in turn; whether it was handed out.
fn honest_memo_through_a_flood(sources: &[&'static str], per_gram: usize) -> bool {
    let mut r = Reassembly::new(Config::default());
    let now = Instant::now();
    let (_, grams) = cut(&[0x33; 200], 66, None);
    assert_eq!(grams.len(), 6);
    let mut delivered = Vec::new();
    let mut flooders = sources.iter().cycle();
    for gram in &grams {
        for _ in 0..per_gram {
            let flood = handmade("bAAA", 2, Mid::fresh(), &[0; 64]);
            let source = *flooders.next().unwrap();
            assert_eq!(r.receive(flood, source, now).unwrap(), None);
        }
        delivered.extend(r.receive(gram.clone(), "honest", now).unwrap());
        let pending = r.pending();
        assert!(pending.memos <= r.config().max_pending_memos, "{pending:?}");
        assert!(pending.bytes <= r.config().max_pending_bytes, "{pending:?}");
    }
    assert!(r.stats().evicted > 0, "the flood reached the bounds");
    delivered.len() == 1 && delivered[0].body()[..] == [0x33; 200]
}

#[test]
fn a_flood_from_one_source_evicts_only_its_own_memos() {
    // The measured case: 9000 fresh mids from another port between each honest gram.
    assert!(honest_memo_through_a_flood(&["flood"], 9000));
}

#[test]
fn floods_from_many_sources_evict_the_heavy_ones_first() {
    // Eight flooders, each under its share but together twice the totals.
    let sources = ["f1", "f2", "f3", "f4", "f5", "f6", "f7", "f8"];
    assert!(honest_memo_through_a_flood(&sources, 9000));
}

#[test]
fn a_forged_early_gram_does_not_take_the_real_ones_place() {
    let signer = signer(1);
    let forger = self::signer(2);
    let (mid, grams) = cut(&[0x42; 500], 200, Some(&signer));
    let now = Instant::now();
    let mut r = Reassembly::new(Config::default());
    // A copy of gram 1 signed by someone else comes first, then the real gram 1.
    let (_, forged) = cut(&[0x66; 500], 200, Some(&forger));
    let mut forged_1 = forged[1].to_vec();
    forged_1[8..32].copy_from_slice(mid.to_qb64().as_bytes());
    assert_eq!(r.receive(Bytes::from(forged_1), "a", now).unwrap(), None);
    assert_eq!(r.receive(grams[1].clone(), "a", now).unwrap(), None);
    // Gram 0 names the signer: the forged copy goes, the real one stays.
    let memos = feed(&mut r, &[grams[0].clone()], now);
    assert!(memos.is_empty());
    assert_eq!(r.stats().rejected, 1);
    let memos = feed(&mut r, &grams[2..], now);
    assert_eq!(memos.len(), 1);
    assert_eq!(&memos[0].body()[..], &[0x42; 500][..]);
}

#[test]
fn early_signed_grams_are_held_in_bounded_number_per_memo() {
    let config = Config {
        max_early_grams: 3,
        ..Config::default()
    };
    let signer = signer(1);
    let (_, grams) = cut(&[0x42; 2000], 200, Some(&signer));
    assert!(grams.len() > 5);
    let now = Instant::now();
    let mut r = Reassembly::new(config);
    for gram in &grams[1..4] {
        assert_eq!(r.receive(gram.clone(), "a", now).unwrap(), None);
    }
    assert_eq!(
        r.receive(grams[4].clone(), "a", now),
        Err(Error::TooEarly { max: 3 })
    );
    // Once gram 0 is in, later grams are checked as they come and no longer count.
    assert_eq!(r.receive(grams[0].clone(), "a", now).unwrap(), None);
    let memos = feed(&mut r, &grams[4..], now);
    assert_eq!(memos.len(), 1);
}

#[test]
fn a_timeout_of_duration_max_never_expires_and_never_panics() {
    let config = Config {
        timeout: Duration::MAX,
        ..Config::default()
    };
    let mut r = Reassembly::new(config);
    let now = Instant::now();
    let (_, grams) = cut(b"one two three four five", 36, None);
    assert_eq!(r.receive(grams[0].clone(), "a", now).unwrap(), None);
    assert_eq!(r.next_deadline(), None);
    let later = now + Duration::from_secs(1_000_000_000);
    assert_eq!(r.expire(later), 0);
    assert_eq!(feed(&mut r, &grams[1..], later).len(), 1);
}

#[test]
fn the_byte_bound_evicts_the_oldest_memo() {
    let config = Config {
        // Room for one source, two memos and four full grams, not for two memos and five.
        max_pending_bytes: SOURCE_COST + 2 * MEMO_COST + 4 * (GRAM_COST + 1240) + 500,
        ..Config::default()
    };
    let mut r = Reassembly::new(config.clone());
    let now = Instant::now();
    let (_, first) = cut(&[1; 5000], 1240, None);
    let (_, second) = cut(&[2; 5000], 1240, None);
    r.receive(first[0].clone(), "a", now).unwrap();
    for gram in &second[..3] {
        r.receive(gram.clone(), "a", now).unwrap();
    }
    assert_eq!(r.stats().evicted, 0);
    // Five grams and two memos are over the bound: the older memo goes.
    r.receive(second[3].clone(), "a", now).unwrap();
    assert_eq!(r.stats().evicted, 1);
    assert!(r.pending().bytes <= config.max_pending_bytes);
    assert_eq!(feed(&mut r, &second[4..], now).len(), 1);
    assert!(feed(&mut r, &first[1..], now).is_empty());
}

#[test]
fn a_memo_over_max_memo_size_is_dropped_in_many_grams_or_in_one() {
    let config = Config {
        max_memo_size: 100,
        ..Config::default()
    };
    let mut r = Reassembly::new(config);
    let (_, grams) = cut(&[1; 300], 60, None);
    let now = Instant::now();
    let errors: Vec<Error> = grams
        .iter()
        .filter_map(|g| r.receive(g.clone(), "a", now).err())
        .collect();
    assert!(matches!(errors[0], Error::MemoTooLarge { max: 100, .. }));
    // A memo of one gram never becomes state, and is held to the limit all the same.
    let (_, one) = cut(&[1; 101], 1240, None);
    assert_eq!(one.len(), 1);
    assert_eq!(
        r.receive(one[0].clone(), "a", now),
        Err(Error::MemoTooLarge { len: 101, max: 100 })
    );
    assert_eq!(r.stats().memos, 0);
    let (_, one) = cut(&[1; 100], 1240, None);
    assert_eq!(feed(&mut r, &one, now).len(), 1);
}

#[test]
fn a_memo_that_is_not_utf8_is_an_error_as_text() {
    let (_, grams) = cut(&[0xff, 0xfe, b'a'], 1240, None);
    let mut r = Reassembly::new(Config::default());
    let memo = r
        .receive(grams[0].clone(), "a", Instant::now())
        .unwrap()
        .unwrap();
    assert_eq!(memo.text(), Err(Error::NotText { valid_up_to: 0 }));
    assert_eq!(&memo.body()[..], &[0xff, 0xfe, b'a']);
}

proptest! {
    /// Any memo, cut any way, its grams shuffled and some duplicated, comes out once and whole.
    #[test]
    fn shuffled_and_duplicated_grams_give_the_memo_once(
        memo in proptest::collection::vec(any::<u8>(), 1..3000),
        size in 33usize..300,
        signed: bool,
        order in proptest::collection::vec(any::<proptest::sample::Index>(), 1..40),
    ) {
        let signer = signer(5);
        let (_, grams) = cut(&memo, size, signed.then_some(&signer));
        let mut sequence: Vec<Bytes> = order.iter().map(|i| i.get(&grams).clone()).collect();
        sequence.extend(grams.iter().cloned());
        let mut r = Reassembly::new(Config::default());
        let now = Instant::now();
        let mut memos = Vec::new();
        for gram in sequence {
            memos.extend(r.receive(gram, "a", now).unwrap());
        }
        prop_assert!(!memos.is_empty());
        for m in &memos {
            prop_assert_eq!(&m.body()[..], &memo[..]);
            prop_assert_eq!(m.vid(), signed.then(|| signer.vid()));
        }
        // What follows the last memo handed out may have begun a new one, never more.
        prop_assert!(r.pending().memos <= 1);
    }

    /// Arbitrary datagrams, some with a gram header and a mid seen before, never panic, and
    /// the pending state stays within its bounds.
    #[test]
    fn arbitrary_datagrams_never_panic_or_overflow(
        datagrams in proptest::collection::vec((0u8..4, 0u32..6, proptest::collection::vec(any::<u8>(), 0..80)), 1..200),
    ) {
        let config = Config { max_pending_memos: 8, max_pending_bytes: 4096, ..Config::default() };
        let mid = Mid::fresh();
        let mut r = Reassembly::new(config);
        let now = Instant::now();
        for (kind, neck, body) in datagrams {
            let datagram = match kind {
                0 => Bytes::from(body),
                1 => handmade("bAAA", neck, mid, &body),
                2 => handmade("bAAB", neck, mid, &body),
                _ => handmade("bAAB", neck, Mid::fresh(), &body),
            };
            let _ = r.receive(datagram, "a", now);
            prop_assert!(r.pending().memos <= 8);
            prop_assert!(r.pending().bytes <= 4096);
        }
    }
}

#[test]
fn bounds_of_zero_keep_nothing_and_never_panic() {
    let zeroes: [fn(&mut Config); 5] = [
        |c| c.max_pending_memos = 0,
        |c| c.max_pending_bytes = 0,
        |c| c.max_source_memos = 0,
        |c| c.max_source_bytes = 0,
        |c| c.timeout = Duration::ZERO,
    ];
    for zero in zeroes {
        let mut config = Config::default();
        zero(&mut config);
        // No incomplete memo outlives the next call, so a memo of several grams never
        // completes, even with all its grams at one instant; a memo of one gram is never
        // state, and comes.
        let mut r = Reassembly::new(config.clone());
        let now = Instant::now();
        let (_, many) = cut(b"one two three four five six", 36, None);
        assert!(feed(&mut r, &many, now).is_empty(), "{config:?}");
        assert!(r.pending().memos <= 1, "{config:?}");
        r.expire(now);
        assert_eq!((r.pending().memos, r.pending().bytes), (0, 0), "{config:?}");
        let (_, one) = cut(b"short", 1240, None);
        assert_eq!(feed(&mut r, &one, now).len(), 1, "{config:?}");
    }
    // No early grams: a signed later gram before gram 0 is refused; in order, all is well.
    let config = Config {
        max_early_grams: 0,
        ..Config::default()
    };
    let mut r = Reassembly::new(config);
    let signer = signer(1);
    let (_, signed) = cut(&[0x42; 500], 200, Some(&signer));
    let now = Instant::now();
    assert_eq!(
        r.receive(signed[1].clone(), "a", now),
        Err(Error::TooEarly { max: 0 })
    );
    assert_eq!(feed(&mut r, &signed, now).len(), 1);
    // No grams, no bytes: nothing is sent and nothing is taken.
    let config = Config {
        max_gram_count: 0,
        ..Config::default()
    };
    let mut r = Reassembly::new(config);
    let (_, one) = cut(b"short", 1240, None);
    assert_eq!(
        r.receive(one[0].clone(), "a", now),
        Err(Error::TooManyGrams { count: 1, max: 0 })
    );
    let config = Config {
        max_memo_size: 0,
        ..Config::default()
    };
    let shape = Shape {
        size: 1240,
        encoding: Encoding::Base64,
    };
    assert_eq!(
        segment(b"abc", Mid::fresh(), &shape, None, &config),
        Err(Error::MemoTooLarge { len: 3, max: 0 })
    );
    let mut r = Reassembly::new(config);
    assert_eq!(
        r.receive(one[0].clone(), "a", now),
        Err(Error::MemoTooLarge { len: 5, max: 0 })
    );
}
