//! packetstream's frame codec fed any bytes, split anywhere: every frame it reads writes back
//! and reads back the same, and nothing it refuses panics.

#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use packetstream::PacketCodec;
use tokio_util::codec::{Decoder, Encoder};

const MAX_PACKET: usize = 64 * 1024;

fuzz_target!(|data: &[u8]| {
    let mut codec = PacketCodec::new(MAX_PACKET);
    // The stream arrives in two reads, split where the first byte says.
    let split = data.first().map_or(0, |b| usize::from(*b)).min(data.len());
    let mut buf = BytesMut::from(&data[..split]);
    let mut rest = &data[split..];
    loop {
        match codec.decode(&mut buf) {
            Ok(Some(packet)) => {
                let mut again = BytesMut::new();
                codec
                    .encode(&packet, &mut again)
                    .expect("a packet read writes back");
                let mut fresh = PacketCodec::new(MAX_PACKET);
                assert_eq!(
                    fresh.decode(&mut again).expect("and reads back"),
                    Some(packet)
                );
                assert!(again.is_empty(), "one frame, nothing left over");
            }
            Ok(None) if rest.is_empty() => break,
            Ok(None) => {
                buf.extend_from_slice(rest);
                rest = &[];
            }
            Err(_) => break,
        }
        // Nothing is reserved beyond what arrived and one frame's limit.
        assert!(
            buf.capacity() <= data.len() + MAX_PACKET + 64,
            "{}",
            buf.capacity()
        );
    }
});
