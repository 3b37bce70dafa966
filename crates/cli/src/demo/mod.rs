//! `strata demo`: a tour of every layer, ending with a summary table.
//!
//! Each layer adds its steps in its own module and one line to [`STEPS`]. A step returns a
//! [`Report`] saying what it did and how fast, or an error sentence.

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use crate::error::CliError;

mod flows;
mod memo;
mod packet;
mod pki;
mod rpc;

/// Options of `strata demo`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Scale every step's workload by this factor (1 is the default tour).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub scale: u32,
}

/// What a step did, for the summary table.
#[derive(Debug)]
pub struct Report {
    /// What was moved, e.g. `100000 items through 3 stages`.
    pub detail: String,
    /// How many units the rate counts.
    pub units: u64,
    /// The unit's name, e.g. `items` or `round trips`.
    pub unit: &'static str,
}

type StepFuture = Pin<Box<dyn Future<Output = Result<Report, String>> + Send>>;

/// One step of the tour: its name, its layer, and how to run it at a scale.
struct Step {
    name: &'static str,
    layer: &'static str,
    run: fn(u32) -> StepFuture,
}

/// Every step, in the order of the tour.
const STEPS: &[Step] = &[
    Step {
        name: "flow pipeline",
        layer: "kernel-flows",
        run: |scale| Box::pin(flows::pipeline(scale)),
    },
    Step {
        name: "correlated exchange",
        layer: "kernel-flows",
        run: |scale| Box::pin(flows::exchange(scale)),
    },
    Step {
        name: "packet requests",
        layer: "packetstream",
        run: |scale| Box::pin(packet::pipelined(scale)),
    },
    Step {
        name: "packet requests over TLS",
        layer: "transport",
        run: |scale| Box::pin(packet::over_tls(scale)),
    },
    Step {
        name: "memos",
        layer: "memogram",
        run: |scale| Box::pin(memo::memos(scale)),
    },
    Step {
        name: "rpc calls",
        layer: "rpc-record",
        run: |scale| Box::pin(rpc::pipelined(scale)),
    },
];

struct Row {
    name: &'static str,
    layer: &'static str,
    outcome: Result<(Report, Duration), String>,
}

/// Runs every step, prints what each did and the table, and fails if any step failed.
pub async fn run(args: Args) -> Result<(), CliError> {
    println!("strata demo: every layer end to end, in memory and on loopback\n");
    let mut rows = Vec::new();
    for step in STEPS {
        println!("== {} ({})", step.name, step.layer);
        let started = Instant::now();
        let outcome = (step.run)(args.scale).await.map(|r| (r, started.elapsed()));
        match &outcome {
            Ok((report, _)) => println!("   {}\n", report.detail),
            Err(why) => println!("   FAILED: {why}\n"),
        }
        rows.push(Row {
            name: step.name,
            layer: step.layer,
            outcome,
        });
    }
    print!("{}", table(&rows));
    let failed = rows.iter().filter(|r| r.outcome.is_err()).count();
    if failed > 0 {
        return Err(CliError::Demo {
            failed,
            total: rows.len(),
        });
    }
    Ok(())
}

fn rate(units: u64, elapsed: Duration, unit: &str) -> String {
    let per_second = units as f64 / elapsed.as_secs_f64().max(1e-9);
    if per_second >= 1e6 {
        format!("{:.2} M {unit}/s", per_second / 1e6)
    } else if per_second >= 1e3 {
        format!("{:.1} k {unit}/s", per_second / 1e3)
    } else {
        format!("{per_second:.0} {unit}/s")
    }
}

fn table(rows: &[Row]) -> String {
    let header = ["step", "layer", "result", "time", "rate"];
    let cells: Vec<[String; 5]> = rows
        .iter()
        .map(|row| match &row.outcome {
            Ok((report, elapsed)) => [
                row.name.to_owned(),
                row.layer.to_owned(),
                "ok".to_owned(),
                format!("{:.1} ms", elapsed.as_secs_f64() * 1e3),
                rate(report.units, *elapsed, report.unit),
            ],
            Err(_) => [
                row.name.to_owned(),
                row.layer.to_owned(),
                "FAILED".to_owned(),
                "-".to_owned(),
                "-".to_owned(),
            ],
        })
        .collect();
    let mut out = crate::columns::render(header, &cells);
    let ok = rows.iter().filter(|r| r.outcome.is_ok()).count();
    out.push_str(&format!("\n{ok} of {} steps ok\n", rows.len()));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_aligns_columns_and_counts_failures() {
        let rows = vec![
            Row {
                name: "a",
                layer: "kernel-flows",
                outcome: Ok((
                    Report {
                        detail: String::new(),
                        units: 2_000,
                        unit: "items",
                    },
                    Duration::from_millis(1),
                )),
            },
            Row {
                name: "longer step",
                layer: "x",
                outcome: Err("broke".to_owned()),
            },
        ];
        let text = table(&rows);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "step         layer         result  time    rate");
        assert_eq!(
            lines[2],
            "a            kernel-flows  ok      1.0 ms  2.00 M items/s"
        );
        assert_eq!(lines[3], "longer step  x             FAILED  -       -");
        assert_eq!(lines.last(), Some(&"1 of 2 steps ok"));
    }
}
