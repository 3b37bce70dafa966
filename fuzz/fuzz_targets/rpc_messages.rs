//! rpc-record's call, reply and portmap decoders fed any message: what they read writes back
//! and reads back the same, and nothing panics.

#![no_main]

use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use rpc_record::pmap::Mapping;
use rpc_record::{Call, Reply};

fuzz_target!(|data: &[u8]| {
    let message = Bytes::copy_from_slice(data);
    if let Ok(call) = Call::decode(message.clone()) {
        let mut wire = BytesMut::new();
        call.encode(&mut wire);
        assert_eq!(wire.len(), call.encoded_len());
        assert_eq!(Call::decode(wire.freeze()).expect("reads back"), call);
    }
    if let Ok(reply) = Reply::decode(message.clone()) {
        let mut wire = BytesMut::new();
        reply.encode(&mut wire);
        assert_eq!(wire.len(), reply.encoded_len());
        let again = Reply::decode(wire.freeze()).expect("reads back");
        assert_eq!((again.xid, again.outcome), (reply.xid, reply.outcome));
    }
    if let Ok(mappings) = Mapping::decode_dump(message) {
        // Each entry is a flag and 4 words, and a flag ends the list: no more than the
        // bytes allow.
        assert!(mappings.len() * 20 + 4 <= data.len());
    }
});
