//! What every `strata ... serve` shares: listeners run by `strata_transport::Interface` (a cap on
//! connections, the TLS handshake deadline, accept errors such as EMFILE survived), and a
//! graceful shutdown on SIGINT or SIGTERM.

use std::time::Duration;

use strata_transport::{Address, Interface, Listener, Serving, TlsServer};
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio_util::sync::CancellationToken;

use crate::error::CliError;

/// The flags of every server.
#[derive(Debug, Clone, clap::Args)]
pub struct Limits {
    /// The most connections served at once; more wait in the kernel's backlog until one ends.
    #[arg(long, value_name = "N", default_value_t = 1024)]
    max_connections: usize,
    /// How long a TLS handshake may take, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 10)]
    handshake_timeout: u64,
    /// On SIGINT or SIGTERM, how long open connections get to finish, in seconds, before
    /// they are cut.
    #[arg(long, value_name = "SECS", default_value_t = 5)]
    shutdown_timeout: u64,
}

impl Limits {
    /// An interface with these limits, serving TLS when `tls` is given.
    pub fn interface(&self, tls: Option<TlsServer>) -> Interface {
        let mut interface = Interface::new(strata_transport::Config {
            max_connections: self.max_connections.max(1),
            handshake_timeout: Duration::from_secs(self.handshake_timeout.max(1)),
        });
        if let Some(tls) = tls {
            interface.tls(tls);
        }
        interface
    }

    fn shutdown_timeout(&self) -> Duration {
        Duration::from_secs(self.shutdown_timeout)
    }
}

/// SIGINT and SIGTERM, caught from the moment this is made (before the `listening` line, so
/// that a signal sent right after it is not lost).
pub struct Signals {
    interrupt: Signal,
    terminate: Signal,
}

impl Signals {
    /// Starts catching SIGINT and SIGTERM.
    pub fn catch() -> Result<Signals, CliError> {
        Ok(Signals {
            interrupt: signal(SignalKind::interrupt()).map_err(CliError::Signal)?,
            terminate: signal(SignalKind::terminate()).map_err(CliError::Signal)?,
        })
    }

    /// The name of the next signal to come.
    async fn next(&mut self) -> &'static str {
        tokio::select! {
            _ = self.interrupt.recv() => "SIGINT",
            _ = self.terminate.recv() => "SIGTERM",
        }
    }
}

/// Binds a TCP listener at `addr`, or a Unix one at `path`, and prints `listening ADDR`
/// (the path alone for a Unix socket).
pub async fn listen(addr: &str, unix: Option<&std::path::Path>) -> Result<Listener, CliError> {
    let listener = match unix {
        Some(path) => Listener::unix(path).map_err(|source| CliError::Listen {
            addr: path.display().to_string(),
            source,
        })?,
        None => Listener::tcp(addr)
            .await
            .map_err(|source| CliError::Listen {
                addr: addr.to_owned(),
                source,
            })?,
    };
    match listener.local_addr().map_err(CliError::Accept)? {
        Address::Unix(Some(path)) => println!("listening {}", path.display()),
        local => println!("listening {local}"),
    }
    Ok(listener)
}

/// Serves until a signal comes, or `done` is cancelled (`--once`), or `side` (another
/// transport served beside the interface, such as UDP) fails; then stops accepting, gives
/// open connections the shutdown timeout to finish, and cuts the rest. After a signal, one
/// line on stderr says what became of the connections, and the exit is a success.
pub async fn run(
    serving: Serving,
    limits: &Limits,
    mut signals: Signals,
    done: CancellationToken,
    side: impl Future<Output = Result<(), CliError>>,
) -> Result<(), CliError> {
    let connections = serving.connections().clone();
    let (stopped_by, failed) = tokio::select! {
        signal = signals.next() => (Some(signal), None),
        () = done.cancelled() => (None, None),
        result = side => (None, result.err()),
    };
    let deadline = limits.shutdown_timeout();
    let open = connections.len();
    let report = serving.shutdown(deadline).await;
    if let Some(signal) = stopped_by {
        let counts = connections.counts();
        eprintln!(
            "strata: {signal}: shut down; {} connections served, {open} open at the signal, \
             {} of them closed in time, {} cut at the {}s deadline",
            counts.accepted,
            report.finished,
            report.cancelled,
            deadline.as_secs(),
        );
    }
    failed.map_or(Ok(()), Err)
}
