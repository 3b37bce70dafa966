//! rpc-record's call, reply, credential, portmap and XDR decoders, and a service's dispatch,
//! fed any message: what they read writes back and reads back the same, every answer is a
//! well-formed reply to the call's xid, and nothing panics.

#![no_main]

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use rpc_record::pmap::{Mapping, Rpcb};
use rpc_record::xdr::{self, Decode, Encode};
use rpc_record::{Answer, AuthSys, Call, CallContext, Program, Reply, ServerError, Service};

/// Reads a `T` from `data`; if it is one, its encoding reads back as the same value.
fn round_trips<T: Decode + Encode + PartialEq + std::fmt::Debug>(data: &[u8]) {
    if let Ok(value) = xdr::from_bytes::<T>(data) {
        let wire = xdr::to_bytes(&value);
        assert_eq!(wire.len(), value.encoded_len());
        assert_eq!(xdr::from_bytes::<T>(&wire).expect("reads back"), value);
    }
}

fuzz_target!(|data: &[u8]| {
    let message = Bytes::copy_from_slice(data);
    if let Ok(call) = Call::decode(message.clone()) {
        let mut wire = BytesMut::new();
        call.encode(&mut wire);
        assert_eq!(wire.len(), call.encoded_len());
        assert_eq!(Call::decode(wire.freeze()).expect("reads back"), call);
        if let Ok(Some(sys)) = AuthSys::from_cred(&call.cred) {
            let cred = sys.to_cred().expect("within its limits, as it was read");
            assert_eq!(AuthSys::from_cred(&cred).expect("reads back"), Some(sys));
        }
        // The service answers the call with a reply to its xid, at once (its handler is
        // ready at once), whatever the call says.
        let service = Service::from(Program::new(call.prog, [call.vers]).procedure(
            call.vers,
            1,
            |_: CallContext, args: (String, Vec<u32>)| async move { Ok::<_, ServerError>(args) },
        ));
        let answer = service.answer(message.clone(), &Arc::default());
        let reply = futures_util::FutureExt::now_or_never(answer.reply())
            .expect("the handler is ready at once")
            .expect("a call gets a reply");
        assert_eq!(reply.xid, call.xid);
        if let (1, Ok(results)) = (call.procedure, &reply.outcome) {
            // The echo: the same values (the padding of what came may not be zero).
            type Args = (String, Vec<u32>);
            let sent = xdr::from_bytes::<Args>(&call.args).expect("they were accepted");
            assert_eq!(
                xdr::from_bytes::<Args>(results).expect("our encoding"),
                sent
            );
        }
    } else {
        let answer = Service::new().answer(message.clone(), &Arc::default());
        if let Answer::Now(Some(reply)) = answer {
            assert_eq!(reply.outcome, Err(ServerError::RPC_MISMATCH));
        }
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
    round_trips::<Rpcb>(data);
    round_trips::<(String, Vec<Bytes>, Option<Box<(u32, i64)>>)>(data);
    round_trips::<([u8; 5], [i32; 2], bool, Vec<Option<u32>>)>(data);
});
