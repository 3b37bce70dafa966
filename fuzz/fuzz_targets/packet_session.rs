//! packetstream's protocol core (the sans-I/O session) fed any sequence of peer bytes,
//! handler ends, partial writes, our own requests, time, close, EOF and abort: nothing
//! panics, and what it holds for its peer stays within the bound its `Config` documents.
//! The driver lives in the crate (`session_fuzz`, built under cargo-fuzz's `cfg(fuzzing)`).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| packetstream::session_fuzz::run(data));
