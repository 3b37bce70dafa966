//! transport's Chunked layer reading any stream: nothing panics, it never hands out more than
//! came in, and a chunk over its limit is an error before anything is allocated for it.

#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use strata_transport::{Chunked, Stack};
use tokio::io::AsyncReadExt;

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime")
    })
}

fuzz_target!(|data: &[u8]| {
    let max_chunk = 1 + usize::from(data.first().copied().unwrap_or(0)) * 64;
    let input = data.get(1..).unwrap_or_default().to_vec();
    runtime().block_on(async move {
        let io = tokio::io::join(std::io::Cursor::new(input.clone()), tokio::io::sink());
        let mut stack = Stack::new(io);
        stack
            .push(Chunked::new(max_chunk))
            .await
            .expect("Chunked starts on anything");
        let mut out = Vec::new();
        let mut piece = [0u8; 512];
        loop {
            match stack.read(&mut piece).await {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&piece[..n]),
            }
            assert!(out.len() <= input.len(), "more out than in");
        }
    });
});
