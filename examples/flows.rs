//! kernel-flows in one page: a chain with a buffering stage, a series with a slow sink and a
//! valve, then a terminate that drains it.
//!
//! Run with `cargo run --example flows`.

use std::convert::Infallible;
use std::time::Duration;

use futures_util::stream;
use strata::flows::{Channel, Emit, Reason, Series, Valve, map};
use tokio_util::sync::PollSender;

/// Packs numbers into frames of `per_frame`, flushing a short last frame on terminate.
struct Frames {
    per_frame: usize,
    held: Vec<u32>,
}

impl Channel for Frames {
    type In = u32;
    type Out = Vec<u32>;
    type Error = Infallible;

    fn transfer(&mut self, n: u32, out: &mut Emit<Vec<u32>>) -> Result<(), Infallible> {
        self.held.push(n);
        if self.held.len() == self.per_frame {
            out.push(std::mem::take(&mut self.held));
        }
        Ok(())
    }

    fn terminate(&mut self, out: &mut Emit<Vec<u32>>) -> Result<(), Infallible> {
        if !self.held.is_empty() {
            out.push(std::mem::take(&mut self.held));
        }
        Ok(())
    }

    fn buffered(&self) -> usize {
        self.held.len()
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let valve = Valve::new("example");
    let paused = valve.hold(Reason::new("operator", "waiting for the reader to start"));
    println!("{valve}");

    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<u32>>(2);
    let chain = map(|n: u32| n * n).then(Frames {
        per_frame: 4,
        held: Vec::new(),
    });
    let terminal = Series::new(stream::iter(1..=10u32), chain, PollSender::new(tx))
        .named("squares")
        .measure(|frame: &Vec<u32>| frame.len() * 4)
        .valve(valve.clone())
        .spawn();

    tokio::time::sleep(Duration::from_millis(20)).await;
    println!("while held: {}", terminal.stats());
    drop(paused);

    while let Some(frame) = rx.recv().await {
        println!("frame {frame:?}");
    }
    let (exit, stats) = terminal.exit().await;
    println!("series {exit}: {stats}");
}
