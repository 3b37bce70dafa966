//! The chunked framing layer: on the wire, its end marker, truncation, its limit, popping it
//! with the stream below going on, and bytes given back before it starts.

use std::io;

use strata_transport::{Chunked, Error, Stack};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn chunks_on_the_wire_and_the_end_marker_as_a_half_close() {
    let (a, mut b) = tokio::io::duplex(1024);
    let mut stack = Stack::new(a);
    stack.push(Chunked::new(4)).await.unwrap();
    assert_eq!(stack.names(), ["chunked", "endpoint"]);
    stack.write_all(b"hello").await.unwrap();
    stack.shutdown().await.unwrap();
    let mut wire = Vec::new();
    b.read_to_end(&mut wire).await.unwrap();
    // Chunks of at most 4 bytes, then the zero-length end marker, then the pipe's end.
    assert_eq!(wire, b"\0\0\0\x04hell\0\0\0\x01o\0\0\0\0");
    // Our side still reads: the peer answers in chunks, and ends with its marker.
    b.write_all(b"\0\0\0\x02ok\0\0\0\0").await.unwrap();
    let mut answer = Vec::new();
    stack.read_to_end(&mut answer).await.unwrap();
    assert_eq!(answer, b"ok");
}

#[tokio::test]
async fn the_stream_ending_without_the_marker_is_truncation() {
    let (a, mut b) = tokio::io::duplex(1024);
    let mut stack = Stack::new(a);
    stack.push(Chunked::default()).await.unwrap();
    b.write_all(b"\0\0\0\x05hel").await.unwrap();
    drop(b);
    let mut got = Vec::new();
    let e = stack.read_to_end(&mut got).await.unwrap_err();
    assert_eq!(got, b"hel");
    assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
    assert!(matches!(
        Error::from_io(&e),
        Some(Error::Truncated { layer: "chunked" })
    ));
}

#[tokio::test]
async fn a_length_over_the_limit_is_an_error_naming_it() {
    let (a, mut b) = tokio::io::duplex(1024);
    let mut stack = Stack::new(a);
    stack.push(Chunked::new(1024)).await.unwrap();
    b.write_all(&[0xff, 0xff, 0xff, 0xff, 0]).await.unwrap();
    let mut buf = [0; 16];
    let e = stack.read(&mut buf).await.unwrap_err();
    assert!(
        matches!(Error::from_io(&e), Some(Error::ChunkTooLarge { len, max: 1024 }) if *len == u32::MAX as usize),
        "{e}"
    );
}

#[tokio::test]
async fn popped_after_its_end_the_stream_below_goes_on() {
    let (a, mut b) = tokio::io::duplex(1024);
    let mut stack = Stack::new(a);
    stack.push(Chunked::default()).await.unwrap();
    // One write: a chunk, the end marker, then plain bytes of the stream below.
    b.write_all(b"\0\0\0\x02hi\0\0\0\0after").await.unwrap();
    let mut framed = Vec::new();
    stack.read_to_end(&mut framed).await.unwrap();
    assert_eq!(framed, b"hi");
    let residue = stack.pop().await.unwrap();
    assert!(residue.is_empty(), "{residue:?}");
    assert_eq!(stack.names(), ["endpoint"]);
    // The bytes read past the marker are read again, from the stream below.
    let mut after = [0; 5];
    stack.read_exact(&mut after).await.unwrap();
    assert_eq!(&after, b"after");
}

#[tokio::test]
async fn bytes_given_back_before_the_push_are_read_through_the_layer() {
    let (a, mut b) = tokio::io::duplex(1024);
    let mut stack = Stack::new(a);
    // A reader above read the start of the first chunk before the layer was pushed.
    stack.put_back(b"\0\0\0\x05he");
    stack.push(Chunked::default()).await.unwrap();
    assert!(stack.unread().is_empty());
    b.write_all(b"llo\0\0\0\0").await.unwrap();
    let mut got = Vec::new();
    stack.read_to_end(&mut got).await.unwrap();
    assert_eq!(got, b"hello");
}

#[tokio::test]
async fn popped_mid_chunk_the_residue_is_the_payload_read() {
    let (a, mut b) = tokio::io::duplex(1024);
    let mut stack = Stack::new(a);
    stack.push(Chunked::default()).await.unwrap();
    b.write_all(b"\0\0\0\x06abcdef").await.unwrap();
    let mut first = [0; 2];
    stack.read_exact(&mut first).await.unwrap();
    let residue = stack.pop().await.unwrap();
    assert_eq!(&residue.unread[..], b"cdef");
}

proptest::proptest! {
    #[test]
    fn arbitrary_bytes_below_never_panic(data: Vec<u8>, max in 1usize..64) {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        rt.block_on(async {
            let (a, mut b) = tokio::io::duplex(64 * 1024);
            let mut stack = Stack::new(a);
            stack.push(Chunked::new(max)).await.unwrap();
            b.write_all(&data).await.unwrap();
            drop(b);
            let mut got = Vec::new();
            match stack.read_to_end(&mut got).await {
                // Only a well-framed stream with its end marker reads to the end.
                Ok(_) => proptest::prop_assert!(got.len() + 4 <= data.len()),
                Err(e) => proptest::prop_assert!(Error::from_io(&e).is_some(), "{e}"),
            }
            Ok(())
        })?;
    }
}
