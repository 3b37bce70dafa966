//! The grams hio 0.7.20 made for fixed inputs (`tests/vectors/memogram-hio.json`, copied from
//! the shared vectors): reproduced byte for byte, and read back field by field.

use bytes::Bytes;
use memogram::{
    Code, Config, Encoding, Error, Gram, Mid, Seed, Shape, Signer, Vid, segment, verify,
};
use serde_json::Value;

fn vectors() -> Value {
    serde_json::from_str(include_str!("vectors/memogram-hio.json")).expect("the vectors are JSON")
}

fn hex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex"))
        .collect()
}

fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} is a string"))
}

struct Vector {
    name: String,
    memo: String,
    signed: bool,
    shape: Shape,
    grams: Vec<Vec<u8>>,
}

fn each() -> (Mid, Signer, Vec<Vector>) {
    let all = vectors();
    let mid = Mid::from_qb64(text(&all, "mid").as_bytes()).unwrap();
    let seed = Seed::from_qb64(text(&all, "seed_qss").as_bytes()).unwrap();
    let signer = Signer::from_seed(&seed);
    assert_eq!(signer.vid().to_string(), text(&all, "vid"));
    assert_eq!(hex(text(&all, "seed_hex")), seed.raw());
    assert_eq!(hex(text(&all, "verkey_hex")), signer.vid().raw());
    let vectors = all["vectors"]
        .as_array()
        .expect("a list of vectors")
        .iter()
        .map(|v| {
            let code = text(v, "code");
            assert!(code == "bAAA" || code == "bAAC", "{code}");
            Vector {
                name: text(v, "name").into(),
                memo: text(v, "memo").into(),
                signed: code == "bAAC",
                shape: Shape {
                    size: v["size"].as_u64().expect("a size") as usize,
                    encoding: if v["curt"].as_bool().expect("curt") {
                        Encoding::Base2
                    } else {
                        Encoding::Base64
                    },
                },
                grams: v["grams_hex"]
                    .as_array()
                    .expect("grams")
                    .iter()
                    .map(|g| hex(g.as_str().expect("hex")))
                    .collect(),
            }
        })
        .collect();
    (mid, signer, vectors)
}

#[test]
fn all_nine_vectors_reproduce_byte_for_byte() {
    let (mid, signer, vectors) = each();
    assert_eq!(vectors.len(), 9);
    // The vectors' gram size is hio's; the clamp to UDP's 65507 would change 65535.
    let config = Config {
        max_gram_size: 65535,
        ..Config::default()
    };
    for v in &vectors {
        let signer = v.signed.then_some(&signer);
        let grams = segment(v.memo.as_bytes(), mid, &v.shape, signer, &config).unwrap();
        let grams: Vec<Vec<u8>> = grams.iter().map(|g| g.to_vec()).collect();
        assert_eq!(grams, v.grams, "{}", v.name);
    }
}

#[test]
fn every_vector_gram_reads_back_and_verifies() {
    let (mid, signer, vectors) = each();
    for v in &vectors {
        let mut memo = Vec::new();
        let count = v.grams.len() as u32;
        for (n, wire) in v.grams.iter().enumerate() {
            let gram = Gram::decode(Bytes::from(wire.clone())).unwrap();
            assert_eq!(gram.mid(), mid, "{}", v.name);
            assert_eq!(gram.encoding(), v.shape.encoding, "{}", v.name);
            assert_eq!(gram.number(), n as u32, "{}", v.name);
            let expected = match (n, v.signed) {
                (0, false) => Code::Zero,
                (_, false) => Code::Later,
                (0, true) => Code::AuthZero,
                (_, true) => Code::AuthLater,
            };
            assert_eq!(gram.code(), expected, "{}", v.name);
            assert_eq!(gram.count(), (n == 0).then_some(count), "{}", v.name);
            assert_eq!(gram.vid(), (n == 0 && v.signed).then(|| signer.vid()));
            if v.signed {
                verify(&gram, signer.vid().raw()).unwrap();
            }
            memo.extend_from_slice(gram.body());
        }
        assert_eq!(memo, v.memo.as_bytes(), "{}", v.name);
    }
}

#[test]
fn a_tampered_body_or_signature_does_not_verify() {
    let (_, signer, vectors) = each();
    let signed = vectors.iter().filter(|v| v.signed);
    for v in signed {
        let wire = &v.grams[0];
        let header = Code::AuthZero.header_len(v.shape.encoding);
        for at in [header, wire.len() - 1] {
            let mut bad = wire.clone();
            bad[at] ^= 0x01;
            // A flipped signature byte may also make the text unreadable: either way, refused.
            match Gram::decode(Bytes::from(bad)) {
                Ok(gram) => assert!(
                    matches!(
                        verify(&gram, signer.vid().raw()),
                        Err(Error::BadSignature { .. })
                    ),
                    "{} byte {at}",
                    v.name
                ),
                Err(e) => assert!(matches!(e, Error::BadField { .. }), "{e}"),
            }
        }
        // Another key does not verify it either.
        let other = Signer::from_seed(&Seed::new([9; 32]));
        let gram = Gram::decode(Bytes::from(wire.clone())).unwrap();
        assert!(verify(&gram, other.vid().raw()).is_err());
    }
}

#[test]
fn the_vid_of_the_vectors_reads_in_both_forms() {
    let (_, signer, _) = each();
    let vid = signer.vid();
    assert_eq!(Vid::from_qb64(vid.to_qb64().as_bytes()).unwrap(), vid);
    assert_eq!(Vid::from_qb2(&vid.to_qb2()).unwrap(), vid);
}

#[test]
fn every_vector_reassembles_in_order_and_reversed() {
    let (mid, signer, vectors) = each();
    let now = std::time::Instant::now();
    for v in &vectors {
        let mut reversed: Vec<Bytes> = v
            .grams
            .iter()
            .rev()
            .map(|g| Bytes::from(g.clone()))
            .collect();
        let in_order: Vec<Bytes> = reversed.iter().rev().cloned().collect();
        for grams in [in_order, std::mem::take(&mut reversed)] {
            let mut reassembly = memogram::Reassembly::new(Config::default());
            let mut memos = Vec::new();
            for gram in grams {
                memos.extend(reassembly.receive(gram, "hio", now).unwrap());
            }
            assert_eq!(memos.len(), 1, "{}", v.name);
            assert_eq!(memos[0].text().unwrap(), v.memo, "{}", v.name);
            assert_eq!(memos[0].mid(), mid);
            assert_eq!(memos[0].vid(), v.signed.then(|| signer.vid()), "{}", v.name);
            assert_eq!(reassembly.pending().memos, 0);
        }
    }
}
