//! Series and terminals: termination, interrupt, faults, backpressure, valves, dispatch.

use std::convert::Infallible;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt, sink, stream};
use kernel_flows::{Channel, Dispatch, Emit, Exit, Fault, Reason, Series, Valve, batch, map};
use proptest::prelude::*;
use tokio::sync::mpsc;
use tokio_util::sync::PollSender;

/// Groups of `width`, the partial one flushed on terminate.
fn group(width: usize) -> kernel_flows::Batch<u32, Infallible> {
    batch(width)
}

/// Emits each group's items one by one again.
fn ungroup() -> impl Channel<In = Vec<u32>, Out = u32, Error = Infallible> {
    struct Ungroup;
    impl Channel for Ungroup {
        type In = Vec<u32>;
        type Out = u32;
        type Error = Infallible;
        fn transfer(&mut self, group: Vec<u32>, out: &mut Emit<u32>) -> Result<(), Infallible> {
            out.extend(group);
            Ok(())
        }
    }
    Ungroup
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a current-thread runtime")
}

const LONG: Duration = Duration::from_secs(10);

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Graceful terminate at any point, with any grouping and any sink capacity: the sink gets
    /// exactly the items taken from the source, in order, none lost and none twice.
    #[test]
    fn terminate_anywhere_loses_and_duplicates_nothing(
        total in 0u32..300,
        width in 1usize..9,
        capacity in 1usize..8,
        high_water in 1usize..16,
        terminate_after in 0u32..300,
    ) {
        let delivered = runtime().block_on(async move {
            let (src_tx, src_rx) = mpsc::unbounded_channel();
            for n in 0..total {
                src_tx.send(n).expect("receiver alive");
            }
            // Keep the source open, so only terminate can end the flow.
            let source = tokio_stream_from(src_rx);
            let (tx, mut rx) = mpsc::channel(capacity);
            let chain = map(|n: u32| n).then(group(width)).then(ungroup());
            let mut terminal = Series::new(source, chain, PollSender::new(tx))
                .high_water(high_water)
                .spawn();
            let mut got = Vec::new();
            while got.len() < terminate_after.min(total) as usize {
                match tokio::time::timeout(Duration::from_millis(50), rx.recv()).await {
                    Ok(Some(n)) => got.push(n),
                    // A partial group waits in the chain: only terminate flushes it.
                    _ => break,
                }
            }
            terminal.terminate();
            let collector = async {
                while let Some(n) = rx.recv().await {
                    got.push(n);
                }
                got
            };
            let ((exit, stats), got) = tokio::join!(terminal.exit(), collector);
            drop(src_tx);
            (exit, stats, got)
        });
        let (exit, stats, got) = delivered;
        prop_assert!(matches!(exit, Exit::Completed), "{:?}", exit);
        let expected: Vec<u32> = (0..stats.items_in as u32).collect();
        prop_assert_eq!(&got, &expected);
        prop_assert_eq!(stats.items_out, stats.items_in);
    }

    /// Interrupt at any point: what reached the sink is a prefix of what was taken, in order,
    /// with nothing twice.
    #[test]
    fn interrupt_anywhere_delivers_an_ordered_prefix(
        total in 1u32..300,
        width in 1usize..6,
        capacity in 1usize..8,
        interrupt_after in 0usize..300,
    ) {
        let (exit, stats, got) = runtime().block_on(async move {
            let (tx, mut rx) = mpsc::channel(capacity);
            let chain = group(width).then(ungroup());
            let mut terminal = Series::new(stream::iter(0..total).chain(stream::pending()), chain, PollSender::new(tx)).spawn();
            let mut got = Vec::new();
            while got.len() < interrupt_after {
                match tokio::time::timeout(Duration::from_millis(20), rx.recv()).await {
                    Ok(Some(n)) => got.push(n),
                    _ => break,
                }
            }
            terminal.interrupt();
            let (exit, stats) = terminal.exit().await;
            while let Some(n) = rx.recv().await {
                got.push(n);
            }
            (exit, stats, got)
        });
        prop_assert!(matches!(exit, Exit::Interrupted), "{:?}", exit);
        let expected: Vec<u32> = (0..got.len() as u32).collect();
        prop_assert_eq!(&got, &expected);
        prop_assert!(got.len() as u64 <= stats.items_in);
        prop_assert_eq!(stats.items_out, got.len() as u64);
    }
}

/// An unbounded mpsc receiver as a stream (tokio-stream would be one more dependency).
fn tokio_stream_from<T: Send + 'static>(
    rx: mpsc::UnboundedReceiver<T>,
) -> impl futures_util::Stream<Item = T> + Send + 'static {
    stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    })
}

#[tokio::test]
async fn a_source_that_ends_completes_after_flushing_the_chain_and_closing_the_sink() {
    let (tx, mut rx) = mpsc::channel(2);
    let chain = group(4);
    let mut terminal = Series::new(stream::iter(0..10u32), chain, PollSender::new(tx))
        .measure(|group: &Vec<u32>| group.len() * 4)
        .spawn();
    let (exit, stats) = tokio::time::timeout(LONG, async {
        let collect = async {
            let mut groups = Vec::new();
            while let Some(group) = rx.recv().await {
                groups.push(group);
            }
            groups
        };
        let (ended, groups) = tokio::join!(terminal.exit(), collect);
        assert_eq!(
            groups,
            vec![vec![0, 1, 2, 3], vec![4, 5, 6, 7], vec![8, 9]],
            "the partial group is flushed by terminate"
        );
        ended
    })
    .await
    .expect("the series completes");
    assert!(matches!(exit, Exit::Completed), "{exit:?}");
    assert_eq!(stats.items_in, 10);
    assert_eq!(stats.items_out, 3);
    assert_eq!(stats.bytes_out, 40);
}

#[tokio::test]
async fn a_failing_channel_faults_the_series_with_its_error() {
    let (tx, _rx) = mpsc::channel::<u32>(16);
    let source = stream::iter(vec![Ok(1u32), Ok(2), Err("frame 3 is corrupt"), Ok(4)]);
    let mut terminal = Series::new(
        source,
        kernel_flows::results().then(map(|n: u32| n * 2)),
        PollSender::new(tx),
    )
    .spawn();
    let (exit, stats) = terminal.exit().await;
    match exit {
        Exit::Faulted(Fault::Channel(e)) => assert_eq!(e, "frame 3 is corrupt"),
        other => panic!("expected a channel fault, got {other:?}"),
    }
    assert_eq!(stats.items_in, 3);
    assert_eq!(stats.items_out, 2);
}

#[tokio::test]
async fn a_closed_sink_faults_the_series() {
    let (tx, rx) = mpsc::channel::<u32>(1);
    drop(rx);
    let mut terminal = Series::new(
        stream::iter(0..5u32),
        map::<_, _, _, Infallible>(|n: u32| n),
        PollSender::new(tx),
    )
    .spawn();
    let (exit, _) = terminal.exit().await;
    assert!(matches!(exit, Exit::Faulted(Fault::Sink(_))), "{exit:?}");
}

#[tokio::test(start_paused = true)]
async fn a_slow_sink_stops_the_pump_at_the_high_water_mark_and_counts_obstruction() {
    let (tx, mut rx) = mpsc::channel::<u32>(1);
    let mut terminal = Series::new(
        stream::iter(0..1000u32),
        map::<_, _, _, Infallible>(|n: u32| n),
        PollSender::new(tx),
    )
    .high_water(4)
    .spawn();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let stats = terminal.stats();
    // One item in the mpsc, and at most the high-water mark waiting in the pump.
    assert!(stats.items_in <= 1 + 4, "the pump kept reading: {stats}");
    assert!(!terminal.is_finished());
    let reader = tokio::spawn(async move {
        let mut n = 0;
        while rx.recv().await.is_some() {
            n += 1;
        }
        n
    });
    let (exit, stats) = terminal.exit().await;
    assert!(matches!(exit, Exit::Completed), "{exit:?}");
    assert_eq!(reader.await.unwrap(), 1000);
    assert!(
        stats.obstructed >= Duration::from_millis(100),
        "obstructed only {:?}",
        stats.obstructed
    );
}

#[tokio::test(start_paused = true)]
async fn a_held_valve_stops_the_source_until_the_last_hold_drops() {
    let valve = Valve::new("pause");
    let hold = valve.hold(Reason::new("test", "not yet"));
    let (tx, mut rx) = mpsc::channel::<u32>(100);
    let mut terminal = Series::new(
        stream::iter(0..10u32),
        map::<_, _, _, Infallible>(|n: u32| n),
        PollSender::new(tx),
    )
    .valve(valve.clone())
    .spawn();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(terminal.stats().items_in, 0, "nothing taken while held");
    let second = valve.hold(Reason::new("test", "still not"));
    drop(hold);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(terminal.stats().items_in, 0, "one hold remains");
    drop(second);
    let (exit, stats) = terminal.exit().await;
    assert!(matches!(exit, Exit::Completed), "{exit:?}");
    assert_eq!(stats.items_in, 10);
    assert!(stats.obstructed >= Duration::from_millis(100));
    let mut n = 0;
    while rx.recv().await.is_some() {
        n += 1;
    }
    assert_eq!(n, 10);
}

#[tokio::test]
async fn terminate_while_the_valve_is_held_still_drains_and_completes() {
    let valve = Valve::new("pause");
    let _hold = valve.hold(Reason::new("test", "held forever"));
    let mut terminal = Series::new(stream::iter(0..10u32), group(100), sink::drain())
        .valve(valve)
        .spawn();
    terminal.terminate();
    let (exit, _) = tokio::time::timeout(LONG, terminal.exit())
        .await
        .expect("terminate does not wait for the valve");
    assert!(matches!(exit, Exit::Completed), "{exit:?}");
}

#[tokio::test]
async fn dropping_the_terminal_interrupts_the_series() {
    let (tx, mut rx) = mpsc::channel::<u32>(1);
    let terminal = Series::new(
        stream::pending::<u32>(),
        map::<_, _, _, Infallible>(|n: u32| n),
        PollSender::new(tx),
    )
    .spawn();
    drop(terminal);
    // The sink is dropped with the series' task, which ends the receiver.
    let ended = tokio::time::timeout(LONG, rx.recv()).await;
    assert_eq!(ended, Ok(None));
}

#[tokio::test]
async fn run_drives_the_series_in_the_calling_task() {
    let (tx, mut rx) = mpsc::channel(8);
    let (exit, stats) = Series::new(
        stream::iter(0..5u32),
        map::<_, _, _, Infallible>(|n: u32| n + 1),
        PollSender::new(tx),
    )
    .run()
    .await;
    assert!(matches!(exit, Exit::Completed), "{exit:?}");
    assert_eq!(stats.items_out, 5);
    let mut out = Vec::new();
    while let Some(n) = rx.recv().await {
        out.push(n);
    }
    assert_eq!(out, vec![1, 2, 3, 4, 5]);
}

#[tokio::test]
async fn a_fault_in_one_series_interrupts_the_whole_dispatch() {
    let mut unit: Dispatch<String> = Dispatch::new();
    let (tx, _rx) = mpsc::channel::<u32>(1);
    unit.spawn(
        Series::new(
            stream::pending::<u32>(),
            map::<_, _, _, Infallible>(|n: u32| n),
            PollSender::new(tx),
        )
        .named("idle"),
        |fault| fault.to_string(),
    );
    unit.spawn(
        Series::new(
            stream::iter(vec![Ok(1u32), Err("bad input")]),
            kernel_flows::results(),
            sink::drain().sink_map_err(|e: Infallible| match e {}),
        )
        .named("faulty"),
        |fault| fault.to_string(),
    );
    let ended = tokio::time::timeout(LONG, unit.ended())
        .await
        .expect("the fault ends the unit");
    assert_eq!(ended[0].name, "idle");
    assert_eq!(ended[0].exit, Exit::Interrupted);
    assert_eq!(ended[1].name, "faulty");
    assert_eq!(
        ended[1].exit,
        Exit::Faulted("channel failed: bad input".to_owned())
    );
    assert_eq!(ended[1].to_string().lines().count(), 1);
}

#[tokio::test]
async fn dispatch_terminate_drains_every_series() {
    let mut unit: Dispatch<String> = Dispatch::new();
    let mut receivers = Vec::new();
    for name in ["a", "b", "c"] {
        let (tx, rx) = mpsc::channel::<Vec<u32>>(16);
        receivers.push(rx);
        let source = stream::iter(0..5u32).chain(stream::pending());
        let chain = group(100);
        unit.spawn(
            Series::new(source, chain, PollSender::new(tx)).named(name),
            |fault| fault.to_string(),
        );
    }
    tokio::task::yield_now().await;
    assert_eq!(unit.running(), 3);
    unit.terminate();
    let ended = tokio::time::timeout(LONG, unit.ended())
        .await
        .expect("all drain");
    assert!(ended.iter().all(|e| e.exit == Exit::Completed));
    for mut rx in receivers {
        // Each series was terminated after taking what was ready; its partial group is flushed.
        let group = rx.recv().await.expect("a flushed group");
        assert_eq!(group, (0..group.len() as u32).collect::<Vec<_>>());
        assert!(!group.is_empty());
    }
}

#[tokio::test]
async fn a_timed_out_exit_leaves_the_terminal_able_to_stop_the_series() {
    let (tx, mut rx) = mpsc::channel::<u32>(1);
    let mut terminal = Series::new(
        stream::iter(0..).map(|n: u32| n),
        map::<_, _, _, Infallible>(|n: u32| n),
        PollSender::new(tx),
    )
    .spawn();
    assert_eq!(rx.recv().await, Some(0));
    // Waiting for the end gives up: the series still runs, and the terminal still holds it.
    let waited = tokio::time::timeout(Duration::from_millis(50), terminal.exit()).await;
    assert!(waited.is_err());
    assert!(!terminal.is_finished());
    terminal.interrupt();
    let (exit, _) = tokio::time::timeout(LONG, terminal.exit())
        .await
        .expect("the series stops");
    assert!(matches!(exit, Exit::Interrupted), "{exit:?}");
}

#[tokio::test]
async fn a_panicking_series_is_reported_as_faulted_and_interrupts_its_dispatch() {
    let mut unit: Dispatch<String> = Dispatch::new();
    let panicking = map::<_, _, _, Infallible>(|n: u32| {
        assert!(n < 3, "item {n} is cursed");
        n
    });
    unit.spawn(
        Series::new(stream::iter(0..10u32), panicking, sink::drain()).named("cursed"),
        |f| f.to_string(),
    );
    // Another series that would run for ever.
    unit.spawn(
        Series::new(
            stream::pending::<u32>(),
            map::<_, _, _, Infallible>(|n: u32| n),
            sink::drain(),
        )
        .named("patient"),
        |f| f.to_string(),
    );
    let ended = tokio::time::timeout(LONG, unit.ended())
        .await
        .expect("the panic interrupts the unit");
    assert_eq!(ended.len(), 2, "the panicked series is reported");
    match &ended[0].exit {
        Exit::Faulted(why) => assert!(why.contains("item 3 is cursed"), "{why}"),
        other => panic!("expected a fault, got {other:?}"),
    }
    // Its counters as of its last wake before the panic.
    assert!(ended[0].stats.items_in <= 4, "{:?}", ended[0].stats);
    assert!(matches!(ended[1].exit, Exit::Interrupted));
}
