//! Grams that make hio 0.7.20's receiver die (spec §2.3) are errors here, and no datagram
//! makes the decoder panic.

use bytes::Bytes;
use memogram::{Config, Encoding, Error, Gram, Mid, Seed, Shape, Signer, segment};
use proptest::prelude::*;

const MID: &str = "0AD5s502N14R8bWw8qyvRW-S";

fn decode(bytes: &[u8]) -> Result<Gram, Error> {
    Gram::decode(Bytes::copy_from_slice(bytes))
}

#[test]
fn the_grams_that_kill_hio_are_errors() {
    // Unknown code starting with `b`: KeyError in hio.
    let unknown = format!("bAAKAAAB{MID}hi");
    assert!(matches!(
        decode(unknown.as_bytes()),
        Err(Error::UnknownCode { .. })
    ));
    // The ack codes: UnboundLocalError in hio.
    for code in ["bAAI", "bAAJ"] {
        let ack = format!("{code}AAAB{MID}hi");
        assert!(
            matches!(decode(ack.as_bytes()), Err(Error::AckCode { .. })),
            "{code}"
        );
    }
    assert!(matches!(
        decode(&[0x6c, 0, 8, 0, 0, 1]),
        Err(Error::AckCode { .. })
    ));
    // A neck outside base64url: KeyError in hio.
    let neck = format!("bAAA===={MID}hi");
    assert!(matches!(
        decode(neck.as_bytes()),
        Err(Error::BadField { field: "neck", .. })
    ));
}

#[test]
fn grams_hio_drops_are_errors_too() {
    assert!(matches!(
        decode(b"0AAAAAAB"),
        Err(Error::NotAGram { first: b'0' })
    ));
    assert!(matches!(decode(b""), Err(Error::BadField { .. })));
    // One byte short of the header: too short. Exactly the header: an empty body.
    let header = format!("bAAAAAAB{MID}");
    assert!(matches!(
        decode(&header.as_bytes()[..31]),
        Err(Error::TooShort {
            len: 31,
            min: 32,
            ..
        })
    ));
    assert_eq!(decode(header.as_bytes()).unwrap().body().len(), 0);
    // A signed gram too short for its vid and signature.
    let signed = format!("bAACAAAB{MID}hi");
    assert!(matches!(
        decode(signed.as_bytes()),
        Err(Error::TooShort { min: 164, .. })
    ));
    // A bad mid character.
    assert!(matches!(
        decode(b"bAAAAAAB0AD5s502N14R8bWw8qyvRW=Shi"),
        Err(Error::BadField { field: "mid", .. })
    ));
}

proptest! {
    #[test]
    fn arbitrary_datagrams_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = decode(&bytes);
    }

    #[test]
    fn datagrams_with_a_gram_header_never_panic(
        code in 0u8..12,
        binary: bool,
        rest in proptest::collection::vec(any::<u8>(), 0..300),
    ) {
        let mut bytes = if binary { vec![0x6c, 0, code] } else { format!("bAA{}", char::from(b"ABCDEFGHIJKL"[usize::from(code)])).into_bytes() };
        bytes.extend_from_slice(&rest);
        let _ = decode(&bytes);
    }

    /// Any memo, cut any way, reads back: the bodies of its grams, in order, are the memo.
    #[test]
    fn memos_cut_and_read_back(
        memo in proptest::collection::vec(any::<u8>(), 1..1200),
        size in 0usize..400,
        binary: bool,
        signed: bool,
    ) {
        let signer = Signer::from_seed(&Seed::new([3; 32]));
        let encoding = if binary { Encoding::Base2 } else { Encoding::Base64 };
        let shape = Shape { size, encoding };
        let config = Config::default();
        let grams = segment(&memo, Mid::fresh(), &shape, signed.then_some(&signer), &config).unwrap();
        let size = shape.clamped_size(signed, &config);
        let mut joined = Vec::new();
        for (n, wire) in grams.iter().enumerate() {
            prop_assert!(wire.len() <= size);
            let gram = Gram::decode(wire.clone()).unwrap();
            prop_assert_eq!(gram.number(), n as u32);
            if n == 0 {
                prop_assert_eq!(gram.count(), Some(grams.len() as u32));
            }
            if signed {
                memogram::verify(&gram, signer.vid().raw()).unwrap();
            }
            joined.extend_from_slice(gram.body());
        }
        prop_assert_eq!(joined, memo);
    }
}
