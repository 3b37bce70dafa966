//! `strata bench`: quick measurements of each layer, each beside its baseline in the same run.
//!
//! A [`Pair`] is one workload run two ways: by a baseline that does the same work without
//! the layer (a plain loop, hand-wired channels, a raw echo, bare datagrams, a memcpy), and
//! by the layer. Each round runs both for the same time, the baseline first in every other
//! round, each on a thread of its own with a one-thread runtime (its client and server
//! tasks included); the table gives each side's median rate and the median of the rounds'
//! ratios.
//! This is a quick look, not the criterion benches of `benches/`, whose figures the
//! repository's BENCHMARKS.md gives.

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use crate::error::CliError;

mod flows;
mod memo;
mod packet;
mod rpc;

/// Options of `strata bench`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The layer to measure.
    #[arg(value_enum, default_value_t = Layer::All)]
    pub layer: Layer,
    /// How long each side runs in each round, in seconds.
    #[arg(long, default_value_t = 0.5, value_parser = seconds)]
    pub seconds: f64,
    /// How many rounds each workload runs (the baseline first in every other one).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=50))]
    pub rounds: u32,
}

fn seconds(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(s) if (0.001..=60.0).contains(&s) => Ok(s),
        _ => Err(format!(
            "{text:?} is not a number of seconds from 0.001 to 60"
        )),
    }
}

/// Which layer's workloads to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Layer {
    /// kernel-flows: a series against hand-wired tasks, the correlator against a locked map.
    Flows,
    /// packetstream: requests against a raw length-delimited echo, over loopback TCP.
    Packet,
    /// memogram: memos against bare datagrams, signed grams against bare Ed25519.
    Memo,
    /// rpc-record: record decoding against a memcpy, calls against a bare echo.
    Rpc,
    /// Every layer.
    All,
}

/// What one side did in its time: how many units, in how long (set-up not counted).
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    units: u64,
    elapsed: Duration,
}

impl Sample {
    fn rate(&self) -> f64 {
        self.units as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

type SampleFuture = Pin<Box<dyn Future<Output = Result<Sample, String>> + Send>>;

/// One side of a pair: its name, and how to run it for a while.
pub struct Side {
    name: &'static str,
    run: fn(Duration) -> SampleFuture,
}

/// One workload, measured with the layer and with its baseline.
pub struct Pair {
    layer: Layer,
    workload: &'static str,
    /// What the rates count; `B` is shown as bytes a second.
    unit: &'static str,
    baseline: Side,
    strata: Side,
}

/// A side's time: started at set-up's end, over once `budget` has passed.
struct Clock {
    started: Instant,
    budget: Duration,
}

impl Clock {
    fn start(budget: Duration) -> Clock {
        Clock {
            started: Instant::now(),
            budget,
        }
    }

    fn running(&self) -> bool {
        self.started.elapsed() < self.budget
    }

    fn sample(&self, units: u64) -> Sample {
        Sample {
            units,
            elapsed: self.started.elapsed(),
        }
    }
}

/// Runs batches made by `batch` (each returning the units it did) until `budget` has passed;
/// what they did and how long it took.
async fn timed<F, Fut>(budget: Duration, mut batch: F) -> Result<Sample, String>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<u64, String>>,
{
    let clock = Clock::start(budget);
    let mut units = 0;
    while clock.running() {
        units += batch().await?;
    }
    Ok(clock.sample(units))
}

/// The baseline of in-memory work: `bytes` copied into a reused buffer, each copy counted
/// as `units` (what the layer's side counts for the same bytes).
async fn memcpy(budget: Duration, bytes: Vec<u8>, units: u64) -> Result<Sample, String> {
    let mut copy = Vec::with_capacity(bytes.len());
    timed(budget, || {
        copy.clear();
        copy.extend_from_slice(std::hint::black_box(&bytes));
        std::hint::black_box(&copy);
        async move { Ok(units) }
    })
    .await
}

/// How a pair came out over its rounds.
struct Outcome {
    baseline: f64,
    strata: f64,
    ratio: f64,
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

async fn measure(pair: &Pair, args: &Args, index: usize, total: usize) -> Result<Outcome, String> {
    let budget = Duration::from_secs_f64(args.seconds);
    let (mut baseline, mut strata, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..args.rounds {
        eprintln!(
            "bench [{}/{total}] {}: {}, round {} of {}",
            index + 1,
            name(pair.layer),
            pair.workload,
            round + 1,
            args.rounds
        );
        let (b, s) = if round % 2 == 0 {
            let b = on_its_own_thread(&pair.baseline, budget).await?;
            (b, on_its_own_thread(&pair.strata, budget).await?)
        } else {
            let s = on_its_own_thread(&pair.strata, budget).await?;
            (on_its_own_thread(&pair.baseline, budget).await?, s)
        };
        if b.units == 0 || s.units == 0 {
            return Err("a side did no work in its time".to_owned());
        }
        baseline.push(b.rate());
        strata.push(s.rate());
        ratios.push(s.rate() / b.rate());
    }
    Ok(Outcome {
        baseline: median(baseline),
        strata: median(strata),
        ratio: median(ratios),
    })
}

/// Runs a side on a thread of its own, in a runtime of one thread: its client and server
/// tasks share that thread, so the figures compare what each side costs, not where the
/// scheduler happened to put its tasks (which moved round trips by 3x between runs).
async fn on_its_own_thread(side: &Side, budget: Duration) -> Result<Sample, String> {
    let run = side.run;
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("strata-bench".to_owned())
        .spawn(move || {
            let outcome = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| format!("cannot start a runtime: {e}"))
                .and_then(|rt| rt.block_on(run(budget)));
            // The receiver is gone only if the bench was cancelled.
            let _ = tx.send(outcome);
        })
        .map_err(|e| format!("cannot start a thread: {e}"))?;
    rx.await.map_err(|_| format!("{} panicked", side.name))?
}

fn name(layer: Layer) -> &'static str {
    match layer {
        Layer::Flows => "kernel-flows",
        Layer::Packet => "packetstream",
        Layer::Memo => "memogram",
        Layer::Rpc => "rpc-record",
        Layer::All => "all",
    }
}

/// Every pair, in the order of the stack.
fn pairs() -> impl Iterator<Item = &'static Pair> {
    flows::PAIRS
        .iter()
        .chain(packet::PAIRS)
        .chain(memo::PAIRS)
        .chain(rpc::PAIRS)
}

/// Runs the chosen layer's pairs, showing progress on stderr, then prints the table.
pub async fn run(args: Args) -> Result<(), CliError> {
    let chosen: Vec<&Pair> = pairs()
        .filter(|p| args.layer == Layer::All || p.layer == args.layer)
        .collect();
    eprintln!(
        "strata bench: {} workloads, {} rounds of {} s a side each",
        chosen.len(),
        args.rounds,
        args.seconds
    );
    let mut rows = Vec::new();
    for (i, pair) in chosen.iter().enumerate() {
        let outcome = measure(pair, &args, i, chosen.len()).await;
        if let Err(why) = &outcome {
            eprintln!("bench: {} failed: {why}", pair.workload);
        }
        rows.push((*pair, outcome));
    }
    print!("{}", table(&rows));
    let failed = rows.iter().filter(|(_, o)| o.is_err()).count();
    if failed > 0 {
        return Err(CliError::Bench {
            failed,
            total: rows.len(),
        });
    }
    Ok(())
}

/// A rate in its unit, scaled to k, M or G; bytes as B/s.
fn rate(per_second: f64, unit: &str) -> String {
    let (value, prefix) = match per_second {
        r if r >= 1e9 => (r / 1e9, "G"),
        r if r >= 1e6 => (r / 1e6, "M"),
        r if r >= 1e3 => (r / 1e3, "k"),
        r => (r, ""),
    };
    if unit == "B" {
        format!("{value:.2} {prefix}B/s")
    } else {
        format!("{value:.2} {prefix} {unit}/s").replace("  ", " ")
    }
}

fn table(rows: &[(&Pair, Result<Outcome, String>)]) -> String {
    let header = ["layer", "workload", "baseline", "strata", "ratio"];
    let cells: Vec<[String; 5]> = rows
        .iter()
        .map(|(pair, outcome)| {
            let (b, s, ratio) = match outcome {
                Ok(o) => (
                    format!("{}: {}", pair.baseline.name, rate(o.baseline, pair.unit)),
                    format!("{}: {}", pair.strata.name, rate(o.strata, pair.unit)),
                    format!("{:.2}x", o.ratio),
                ),
                Err(_) => (
                    pair.baseline.name.to_owned(),
                    pair.strata.name.to_owned(),
                    "FAILED".to_owned(),
                ),
            };
            [
                name(pair.layer).to_owned(),
                pair.workload.to_owned(),
                b,
                s,
                ratio,
            ]
        })
        .collect();
    let mut out = String::from("\n");
    out.push_str(&crate::columns::render(header, &cells));
    out.push_str(
        "\nratio: strata's rate over the baseline's, the median of the rounds (above 1: faster)\n",
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_run(_: Duration) -> SampleFuture {
        Box::pin(async { Err("not run".to_owned()) })
    }

    const PAIR: Pair = Pair {
        layer: Layer::Packet,
        workload: "w",
        unit: "requests",
        baseline: Side {
            name: "raw",
            run: no_run,
        },
        strata: Side {
            name: "ours",
            run: no_run,
        },
    };

    #[test]
    fn rates_scale_and_bytes_read_as_bytes() {
        assert_eq!(rate(2_500_000.0, "requests"), "2.50 M requests/s");
        assert_eq!(rate(999.0, "calls"), "999.00 calls/s");
        assert_eq!(rate(4.2e9, "B"), "4.20 GB/s");
        assert_eq!(rate(512.0, "B"), "512.00 B/s");
    }

    #[test]
    fn the_median_of_odd_and_even_counts() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
    }

    #[test]
    fn the_table_gives_both_rates_and_the_ratio_and_marks_a_failure() {
        let rows = vec![
            (
                &PAIR,
                Ok(Outcome {
                    baseline: 1_000_000.0,
                    strata: 800_000.0,
                    ratio: 0.8,
                }),
            ),
            (&PAIR, Err("broke".to_owned())),
        ];
        let text = table(&rows);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[1],
            "layer         workload  baseline                strata                     ratio"
        );
        assert_eq!(
            lines[3],
            "packetstream  w         raw: 1.00 M requests/s  ours: 800.00 k requests/s  0.80x"
        );
        assert_eq!(
            lines[4],
            "packetstream  w         raw                     ours                       FAILED"
        );
    }

    #[tokio::test]
    async fn a_failing_side_fails_its_pair_with_its_reason() {
        let args = Args {
            layer: Layer::Packet,
            seconds: 0.01,
            rounds: 1,
        };
        let e = measure(&PAIR, &args, 0, 1).await.err();
        assert_eq!(e.as_deref(), Some("not run"));
    }

    #[test]
    fn every_layer_has_pairs_and_every_pair_names_its_sides() {
        for layer in [Layer::Flows, Layer::Packet, Layer::Memo, Layer::Rpc] {
            assert!(pairs().any(|p| p.layer == layer), "{layer:?}");
        }
        for pair in pairs() {
            assert!(!pair.baseline.name.is_empty() && !pair.strata.name.is_empty());
        }
    }
}
