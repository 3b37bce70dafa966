//! Arbitrary bytes into every message decoder: an error or a value, never a panic; and
//! calls and replies built from arbitrary fields survive the round trip.

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use rpc_record::pmap::Mapping;
use std::sync::Arc;

use rpc_record::{Answer, Call, OpaqueAuth, Program, Reply, ServerError, Service, Xid};

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic_a_message_decoder(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let bytes = Bytes::from(bytes);
        let _ = Call::decode(bytes.clone());
        let _ = Reply::decode(bytes.clone());
        let _ = Mapping::decode_dump(bytes.clone());
        // A server answers arbitrary input with a well-formed reply or not at all.
        let service = Service::from(Program::new(300000, [1, 2]));
        if let Answer::Now(Some(reply)) = service.answer(bytes, &Arc::default()) {
            let mut wire = BytesMut::new();
            reply.encode(&mut wire);
            prop_assert_eq!(Reply::decode(wire.freeze()).unwrap(), reply);
        }
    }

    #[test]
    fn words_that_look_like_headers_never_panic_either(
        words in proptest::collection::vec(prop_oneof![0u32..8, any::<u32>()], 0..24)
    ) {
        // Small values reach deeper: valid msg_types, statuses and short lengths.
        let bytes: Bytes = words.iter().flat_map(|w| w.to_be_bytes()).collect();
        let _ = Call::decode(bytes.clone());
        let _ = Reply::decode(bytes.clone());
        let _ = Mapping::decode_dump(bytes);
    }

    #[test]
    fn calls_round_trip(
        xid: u32, prog: u32, vers: u32, procedure: u32, flavor: u32,
        cred in proptest::collection::vec(any::<u8>(), 0..=400),
        args in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        let call = Call {
            cred: OpaqueAuth::new(flavor, Bytes::from(cred)).unwrap(),
            ..Call::new(Xid(xid), prog, vers, procedure, Bytes::from(args))
        };
        let mut wire = BytesMut::new();
        call.encode(&mut wire);
        prop_assert_eq!(wire.len(), call.encoded_len());
        prop_assert_eq!(Call::decode(wire.freeze()).unwrap(), call);
    }

    #[test]
    fn replies_round_trip(xid: u32, low: u32, high: u32, stat in 0u32..20, results in proptest::collection::vec(any::<u8>(), 0..64)) {
        let outcome = match stat % 4 {
            0 => Ok(Bytes::from(results)),
            1 => Err(ServerError::ProgMismatch { low, high }),
            2 => Err(ServerError::RpcMismatch { low, high }),
            _ => Err(ServerError::AuthError(rpc_record::AuthStat::from_code(stat))),
        };
        let reply = Reply { xid: Xid(xid), outcome };
        let mut wire = BytesMut::new();
        reply.encode(&mut wire);
        prop_assert_eq!(wire.len(), reply.encoded_len());
        prop_assert_eq!(Reply::decode(wire.freeze()).unwrap(), reply);
    }
}
