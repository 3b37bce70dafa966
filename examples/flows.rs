//! kernel-flows in one page: a chain with a batching stage, a series with a slow sink and a
//! valve, then a terminate that drains it.
//!
//! Run with `cargo run --example flows`.

use std::convert::Infallible;
use std::time::Duration;

use futures_util::stream;
use strata::flows::{Channel, Reason, Series, Valve, batch, map};
use tokio_util::sync::PollSender;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let valve = Valve::new("example");
    let paused = valve.hold(Reason::new("operator", "waiting for the reader to start"));
    println!("{valve}");

    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<u32>>(2);
    // Squares, framed 4 to a frame; the short last frame goes out on terminate.
    let chain = map::<_, _, _, Infallible>(|n: u32| n * n).then(batch(4));
    let mut terminal = Series::new(stream::iter(1..=10u32), chain, PollSender::new(tx))
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
