//! `strata packet serve` and `strata packet call`: a cs.packetstream peer on the command line.

use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use packetstream::{Config, PacketConnection, Reply, Request};
use strata_transport::Accepted;
use tokio::net::{TcpStream, UnixStream};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::error::CliError;
use crate::tls::{CallTls, ServeTls};

/// `strata packet ...`
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Serve requests by rq_type: 0 echo, 1 reverse with flags 0x11, 2 nothing,
    /// 3 flags+1, 4 "héllo", 5 failure, 6 sleep PAYLOAD ms then echo, others failure.
    ///
    /// Prints `listening ADDR` first, then serves until SIGINT or SIGTERM (or, with --once,
    /// until the first connection ends), then closes open connections in order and exits 0.
    Serve(Serve),
    /// Send one request and print its response as one JSON line:
    /// {"ok":…,"flags":…,"payload_hex":"…"}.
    #[command(override_usage = "strata packet call (ADDR | --unix PATH) RQ_TYPE [OPTIONS]")]
    Call(Call),
}

#[derive(Debug, clap::Args)]
struct Serve {
    /// The TCP address to listen on.
    #[arg(
        long,
        value_name = "ADDR",
        default_value = "127.0.0.1:0",
        conflicts_with = "unix"
    )]
    listen: String,
    /// Listen on this Unix socket path instead.
    #[arg(long, value_name = "PATH")]
    unix: Option<PathBuf>,
    /// Exit when the first connection ends.
    #[arg(long)]
    once: bool,
    /// Serve channels other than 0 too (off is cs-compatible: they are refused).
    #[arg(long)]
    channels: bool,
    #[command(flatten)]
    tls: ServeTls,
    #[command(flatten)]
    limits: crate::serve::Limits,
}

#[derive(Debug, clap::Args)]
struct Call {
    /// ADDR (host:port) then RQ_TYPE; with --unix, RQ_TYPE alone.
    #[arg(value_name = "ADDR RQ_TYPE", num_args = 1..=2, required = true)]
    targets: Vec<String>,
    /// Connect to this Unix socket path instead of a TCP address.
    #[arg(long, value_name = "PATH")]
    unix: Option<PathBuf>,
    /// The request's flags.
    #[arg(long, default_value_t = 0)]
    flags: u64,
    /// The payload, as text.
    #[arg(long, value_name = "TEXT", conflicts_with = "payload_hex")]
    payload: Option<String>,
    /// The payload, as hex.
    #[arg(long, value_name = "HEX", value_parser = parse_hex)]
    payload_hex: Option<Bytes>,
    /// The channel (other than 0 needs a peer that serves channels).
    #[arg(long, default_value_t = 0)]
    channel: u64,
    /// Give up on the reply after this many seconds.
    #[arg(long, value_name = "SECS", default_value_t = 10)]
    timeout: u64,
    #[command(flatten)]
    tls: CallTls,
}

/// Runs `strata packet ...`.
pub async fn run(args: Args) -> Result<(), CliError> {
    match args.command {
        Command::Serve(serve) => run_serve(serve).await,
        Command::Call(call) => run_call(call).await,
    }
}

/// What `strata packet serve` answers, by rq_type: 0 echo, 1 reverse with flags 0x11, 2
/// nothing, 3 flags+1, 4 "héllo", 6 sleep PAYLOAD ms then echo, anything else a failure.
pub async fn table(request: Request) -> Result<Reply, String> {
    let Request {
        rq_type,
        flags,
        payload,
        ..
    } = request;
    match rq_type {
        0 => Ok(Reply::from((flags, payload))),
        1 => Ok(Reply::from((
            0x11,
            payload.iter().rev().copied().collect::<Vec<u8>>(),
        ))),
        2 => Ok(Reply::from(())),
        3 => Ok(Reply::from(flags.wrapping_add(1))),
        4 => Ok(Reply::from("héllo")),
        6 => {
            let ms: u64 = std::str::from_utf8(&payload)
                .ok()
                .and_then(|text| text.trim().parse().ok())
                .ok_or("rq 6 wants a number of milliseconds as its payload")?;
            tokio::time::sleep(Duration::from_millis(ms.min(60_000))).await;
            Ok(Reply::from((flags, payload)))
        }
        other => Err(format!("rq_type {other} fails by design")),
    }
}

async fn run_serve(args: Serve) -> Result<(), CliError> {
    let config = Config {
        channels: args.channels,
        ..Config::default()
    };
    let tls = args.tls.server()?;
    if tls.is_some() && args.unix.is_some() {
        usage("--tls-cert and --tls-key serve TLS over TCP only");
    }
    let signals = crate::serve::Signals::catch()?;
    let mut interface = args.limits.interface(tls);
    interface.listen(crate::serve::listen(&args.listen, args.unix.as_deref()).await?);
    // With --once, the first connection's end is the server's.
    let done = CancellationToken::new();
    let once = args.once.then(|| done.clone());
    let serving = interface.serve(move |accepted: Accepted| {
        let (config, once) = (config.clone(), once.clone());
        async move {
            serve_one(accepted, config).await;
            if let Some(once) = once {
                once.cancel();
            }
        }
    });
    let unended = std::future::pending();
    crate::serve::run(serving, &args.limits, signals, done, unended).await
}

/// Serves one connection with the handler table until it ends, or until the server shuts
/// down, when it is closed in order (within the connection's own close timeout).
async fn serve_one(accepted: Accepted, config: Config) {
    let Accepted {
        stack,
        peer,
        closing,
    } = accepted;
    let conn = match PacketConnection::with_handler(stack, config, table) {
        Ok(conn) => conn,
        Err(e) => return warn!(%peer, error = %e, "connection refused"),
    };
    info!(%peer, "connection opened");
    let ended = tokio::select! {
        ended = conn.closed() => ended,
        () = closing.cancelled() => conn.close().await,
    };
    let stats = conn.stats();
    match ended {
        Ok(()) => info!(%peer, ?stats, "connection closed"),
        Err(e) => warn!(%peer, error = %e, "connection failed"),
    }
}

async fn run_call(args: Call) -> Result<(), CliError> {
    let (addr, rq_type) = match (&args.unix, &args.targets[..]) {
        (Some(_), [rq]) => (None, rq),
        (None, [addr, rq]) => (Some(addr), rq),
        (Some(_), _) => usage("with --unix, give RQ_TYPE alone"),
        (None, _) => usage("give ADDR and RQ_TYPE (or --unix PATH and RQ_TYPE)"),
    };
    let Ok(rq_type) = rq_type.parse::<u64>() else {
        usage(&format!("RQ_TYPE must be a number, not {rq_type:?}"))
    };
    let payload = match (args.payload, args.payload_hex) {
        (Some(text), _) => Bytes::from(text),
        (None, Some(bytes)) => bytes,
        (None, None) => Bytes::new(),
    };
    let config = Config {
        channels: args.channel != 0,
        request_timeout: Some(Duration::from_secs(args.timeout)),
        ..Config::default()
    };
    if args.tls.is_on() && args.unix.is_some() {
        usage("--tls-ca speaks TLS over TCP only");
    }
    let conn = match (addr, &args.unix) {
        (Some(addr), _) => {
            let stream =
                TcpStream::connect(addr.as_str())
                    .await
                    .map_err(|e| CliError::Connect {
                        addr: addr.clone(),
                        source: e,
                    })?;
            stream.set_nodelay(true).map_err(CliError::Accept)?;
            let tls = args.tls.client(addr)?;
            PacketConnection::new(crate::tls::stack(stream, tls).await?, config)
                .map_err(CliError::Packet)?
        }
        (None, Some(path)) => {
            let stream = UnixStream::connect(path)
                .await
                .map_err(|e| CliError::Connect {
                    addr: path.display().to_string(),
                    source: e,
                })?;
            PacketConnection::new(stream, config).map_err(CliError::Packet)?
        }
        (None, None) => usage("give ADDR or --unix PATH"),
    };
    let response = conn
        .request_on(args.channel, rq_type, args.flags, payload)
        .await
        .map_err(CliError::Packet)?;
    println!(
        "{{\"ok\":{},\"flags\":{},\"payload_hex\":\"{}\"}}",
        response.ok,
        response.flags,
        hex(&response.payload)
    );
    conn.close().await.map_err(CliError::Packet)
}

/// Exits with clap's usage error (exit code 2).
pub(crate) fn usage(message: &str) -> ! {
    use clap::CommandFactory;
    crate::Cli::command()
        .error(clap::error::ErrorKind::WrongNumberOfValues, message)
        .exit()
}

fn parse_hex(text: &str) -> Result<Bytes, String> {
    let text = text.trim();
    if text.len() % 2 != 0 {
        return Err("hex needs an even number of digits".into());
    }
    (0..text.len())
        .step_by(2)
        .map(|i| {
            text.get(i..i + 2)
                .and_then(|pair| u8::from_str_radix(pair, 16).ok())
                .ok_or_else(|| format!("not hex: {text:?}"))
        })
        .collect::<Result<Vec<u8>, String>>()
        .map(Bytes::from)
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut out, b| {
            let _ = write!(out, "{b:02x}");
            out
        })
}
