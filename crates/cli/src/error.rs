//! What can go wrong in the `strata` tool, each said in one sentence.

/// A failure of a `strata` command.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The tokio runtime could not be built.
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
    /// One or more demo steps failed; the table on stdout says which.
    #[error("{failed} of {total} demo steps failed (see the table above)")]
    Demo {
        /// How many steps failed.
        failed: usize,
        /// How many steps ran.
        total: usize,
    },
    /// Some workloads of `strata bench` failed.
    #[error("{failed} of {total} bench workloads failed")]
    Bench {
        /// How many workloads failed.
        failed: usize,
        /// How many ran.
        total: usize,
    },
    /// A listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// What was asked for.
        addr: String,
        /// Why it failed.
        source: std::io::Error,
    },
    /// A connection could not be made.
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        /// What was asked for.
        addr: String,
        /// Why it failed.
        source: std::io::Error,
    },
    /// Accepting or setting up a connection failed.
    #[error("cannot accept or set up a connection: {0}")]
    Accept(std::io::Error),
    /// TLS could not be set up: a PEM file, a handshake.
    #[error("TLS: {0}")]
    Tls(#[from] strata_transport::Error),
    /// The packet connection failed.
    #[error("the packet connection failed: {0}")]
    Packet(packetstream::Error),
    /// Sending or receiving memos failed.
    #[error("memo: {0}")]
    Memo(memogram::Error),
    /// `memo listen --timeout` passed before `--count` memos came (exit code 2).
    #[error("timed out after {seen} memos")]
    Timeout {
        /// How many memos came in time.
        seen: u64,
    },
    /// An RPC call or transporter failed.
    #[error("rpc: {0}")]
    Rpc(rpc_record::Error),
    /// A program version refused a ping, as rpcinfo reports it.
    #[error("program {prog} version {vers} is not available: {why}")]
    NotAvailable {
        /// The program.
        prog: u32,
        /// The version.
        vers: u32,
        /// The server's answer.
        why: rpc_record::ServerError,
    },
    /// A versionless ping found more versions than it goes through.
    #[error(
        "program {prog} says it has versions {low} to {high}; a ping goes through at most {max}"
    )]
    TooManyVersions {
        /// The program.
        prog: u32,
        /// The lowest version.
        low: u32,
        /// The highest version.
        high: u32,
        /// The limit that applied.
        max: u32,
    },
    /// An address could not be understood or resolved.
    #[error("cannot use the address {addr}: {why}")]
    Address {
        /// What was given.
        addr: String,
        /// Why it failed.
        why: String,
    },
    /// `--args-hex` was not hex digits in pairs.
    #[error("--args-hex {0:?} is not hex digits in pairs")]
    BadHex(String),
    /// `--auth-sys` on a system where this process's credentials cannot be read.
    #[error("cannot read this process's credentials for AUTH_SYS (Linux's /proc is needed)")]
    NoCredentials,
    /// SIGINT or SIGTERM could not be caught.
    #[error("cannot catch signals: {0}")]
    Signal(std::io::Error),
}
