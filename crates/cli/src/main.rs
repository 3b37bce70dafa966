//! `strata`: the command-line tool of the Strata workspace.
//!
//! Each subcommand lives in its own module; `strata demo` runs a tour of every layer that
//! exists and prints a summary table.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod bench;
mod columns;
mod demo;
mod error;
mod memo;
mod packet;
mod rpc;
mod serve;
mod tls;

use error::CliError;

/// Focused I/O layers for people who build their own network links.
#[derive(Debug, Parser)]
#[command(
    name = "strata",
    version,
    about,
    after_help = "Exit codes: 0 success; 1 a command failed (one sentence on stderr says why); \
                  2 bad usage, or `memo listen --timeout` passed first.\nSet STRATA_LOG (e.g. STRATA_LOG=debug) for trace events on stderr."
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run every layer end to end on loopback and in memory, then print a summary table.
    Demo(demo::Args),
    /// Serve or call a cs.packetstream-compatible packet connection.
    Packet(packet::Args),
    /// Send and receive hio-compatible memos over UDP and Unix datagram sockets.
    Memo(memo::Args),
    /// Serve, ping, call or list ONC RPC programs, as rpcbind, rpcinfo and rpcgen clients do.
    Rpc(rpc::Args),
    /// Measure each layer beside its baseline (quick rounds in this process, on loopback),
    /// showing progress on stderr, then print a table of rates and ratios.
    Bench(bench::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("STRATA_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("strata: {e}");
            match e {
                CliError::Timeout { .. } => ExitCode::from(2),
                _ => ExitCode::from(1),
            }
        }
    }
}

fn run(cli: Cli) -> Result<(), CliError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(CliError::Runtime)?;
    runtime.block_on(async {
        match cli.command {
            Command::Demo(args) => demo::run(args).await,
            Command::Packet(args) => packet::run(args).await,
            Command::Memo(args) => memo::run(args).await,
            Command::Rpc(args) => rpc::run(args).await,
            Command::Bench(args) => bench::run(args).await,
        }
    })
}
