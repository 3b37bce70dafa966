//! memogram's gram parser fed any datagram: what it accepts is consistent (the body lies in
//! the datagram, a first gram has a count, a signed one a signature), and nothing panics.

#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use memogram::{Gram, Seed, Signer, verify};

fuzz_target!(|data: &[u8]| {
    let Ok(gram) = Gram::decode(Bytes::copy_from_slice(data)) else {
        return;
    };
    assert!(gram.body().len() <= data.len());
    assert!(gram.signed_bytes().len() <= data.len());
    if gram.count().is_some() {
        assert_eq!(gram.number(), 0, "a first gram is gram 0");
    }
    assert_eq!(gram.code().is_signed(), gram.signature().is_some());
    if gram.count().is_some() {
        assert_eq!(gram.vid().is_some(), gram.code().is_signed());
    }
    // Checking a signature against any key says yes or no.
    if gram.code().is_signed() {
        let _ = verify(&gram, &[7; 32]);
        let _ = verify(&gram, Signer::from_seed(&Seed::new([7; 32])).vid().raw());
    }
});
