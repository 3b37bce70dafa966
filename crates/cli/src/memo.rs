//! `strata memo listen`, `strata memo send` and `strata memo keygen`: an hio 0.7.20 memo
//! peer on the command line.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use memogram::{Config, Encoding, Link, Memo, Receiver, Seed, Sender, Signer, Vid};
use serde_json::json;

use crate::error::CliError;

/// `strata memo ...`
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Receive memos and print one JSON line per memo: {"memo":…,"src":…,"vid":…}.
    ///
    /// Prints `listening ADDR` first. Exits 0 after --count memos, 2 when --timeout passes
    /// first. A memo that is not UTF-8 prints "memo":null and its bytes as "memo_hex".
    #[command(override_usage = "strata memo listen (--udp ADDR | --uxd PATH) [OPTIONS]")]
    Listen(Listen),
    /// Send each MEMO in turn, and print one JSON line per memo: {"mid":…,"len":…}.
    #[command(
        override_usage = "strata memo send (--udp DEST [--bind ADDR] | --uxd DEST [--bind PATH]) [OPTIONS] MEMO..."
    )]
    Send(Send),
    /// Make a new signing seed and print it with its vid: {"seed":…,"vid":…} (qb64).
    Keygen,
}

#[derive(Debug, clap::Args)]
struct Listen {
    /// The UDP address to listen on.
    #[arg(
        long,
        value_name = "ADDR",
        required_unless_present = "uxd",
        conflicts_with = "uxd"
    )]
    udp: Option<SocketAddr>,
    /// The Unix datagram socket path to listen on (made, and removed on exit).
    #[arg(long, value_name = "PATH")]
    uxd: Option<PathBuf>,
    /// Accept signed grams only (hio's authic).
    #[arg(long)]
    authic: bool,
    /// Hold VERKEY as the key of VID, whatever the vid (hio's keep): memos signed under VID
    /// verify with it. Both in qb64 as hio writes them (VID a `B`, `D` or `E` vid; VERKEY a
    /// `B` or `D` verifying key). Repeatable.
    #[arg(long, value_name = "VID=VERKEY", value_parser = parse_keep)]
    keep: Vec<(Vid, [u8; 32])>,
    /// Exit after this many memos.
    #[arg(long, value_name = "N")]
    count: Option<u64>,
    /// Exit with code 2 if the memos have not all come after this many seconds.
    #[arg(long, value_name = "SECS")]
    timeout: Option<f64>,
}

#[derive(Debug, clap::Args)]
struct Send {
    /// Send over UDP to this address.
    #[arg(
        long,
        value_name = "DEST",
        required_unless_present = "uxd",
        conflicts_with = "uxd"
    )]
    udp: Option<SocketAddr>,
    /// Send over a Unix datagram socket to this path.
    #[arg(long, value_name = "DEST")]
    uxd: Option<PathBuf>,
    /// Bind the sending socket here: an address for UDP (default: port 0 on the loopback of
    /// DEST's family), a path for UXD (default: unbound, so the receiver sees no source).
    #[arg(long, value_name = "ADDR|PATH")]
    bind: Option<String>,
    /// The gram size (default 1232 for UDP, which an IPv6 path with a 1280-byte MTU carries
    /// whole; hio's 65535 for UXD).
    #[arg(long, value_name = "N")]
    size: Option<usize>,
    /// Binary headers (hio's curt mode).
    #[arg(long)]
    curt: bool,
    /// Sign every gram with this seed (qb64, as `memo keygen` prints it).
    #[arg(long, value_name = "SEED", value_parser = parse_seed)]
    sign: Option<Seed>,
    /// Sign under this vid (qb64) instead of the seed's `B` vid: any vid the receivers hold
    /// the seed's key for (hio's keep), such as a `D` or `E` vid.
    #[arg(long, value_name = "VID", requires = "sign", value_parser = parse_vid)]
    vid: Option<Vid>,
    /// The memos, each sent as its UTF-8 bytes.
    #[arg(value_name = "MEMO", required = true)]
    memos: Vec<String>,
}

/// Runs `strata memo ...`.
pub async fn run(args: Args) -> Result<(), CliError> {
    match args.command {
        Command::Listen(listen) => run_listen(listen).await,
        Command::Send(send) => run_send(send).await,
        Command::Keygen => {
            let seed = Seed::generate().map_err(CliError::Memo)?;
            let vid = Signer::from_seed(&seed).vid();
            println!("{}", json!({"seed": seed.to_qb64(), "vid": vid.to_qb64()}));
            Ok(())
        }
    }
}

async fn run_listen(args: Listen) -> Result<(), CliError> {
    let mut config = Config {
        authic: args.authic,
        ..Config::default()
    };
    for (vid, key) in &args.keep {
        config.keys.insert(*vid, *key);
    }
    let timeout = args.timeout.map(Duration::from_secs_f64);
    match (args.udp, &args.uxd) {
        (Some(addr), _) => {
            let socket = memogram::bind_udp(addr)
                .await
                .map_err(|e| listen_error(addr.to_string(), e))?;
            let local = socket
                .local_addr()
                .map_err(|e| listen_error(addr.to_string(), e))?;
            println!("listening {local}");
            let receiver = Receiver::new(Arc::new(socket), config);
            print_memos(receiver, args.count, timeout, |src| json!(src.to_string())).await
        }
        (None, Some(path)) => {
            let socket = memogram::bind_uxd(Some(path))
                .map_err(|e| listen_error(path.display().to_string(), e))?;
            println!("listening {}", path.display());
            let receiver = Receiver::new(Arc::new(socket), config);
            let printed = print_memos(receiver, args.count, timeout, |src: &PathBuf| {
                match src.as_os_str().is_empty() {
                    true => serde_json::Value::Null,
                    false => json!(src.display().to_string()),
                }
            })
            .await;
            // The socket file goes with the socket.
            printed
        }
        (None, None) => crate::packet::usage("give --udp or --uxd"),
    }
}

fn listen_error(addr: String, source: std::io::Error) -> CliError {
    CliError::Listen { addr, source }
}

/// Prints each memo as a JSON line until `count` memos have come, or `timeout` passes.
async fn print_memos<L: Link>(
    mut receiver: Receiver<L>,
    count: Option<u64>,
    timeout: Option<Duration>,
    source: impl Fn(&L::Addr) -> serde_json::Value,
) -> Result<(), CliError> {
    let deadline = timeout.map(|t| tokio::time::Instant::now() + t);
    let mut seen = 0;
    while count.is_none_or(|count| seen < count) {
        let memo = match deadline {
            Some(deadline) => tokio::time::timeout_at(deadline, receiver.recv())
                .await
                .map_err(|_| CliError::Timeout { seen })?,
            None => receiver.recv().await,
        }
        .map_err(CliError::Memo)?;
        println!("{}", memo_line(&memo, &source));
        seen += 1;
    }
    Ok(())
}

fn memo_line<A>(memo: &Memo<A>, source: impl Fn(&A) -> serde_json::Value) -> serde_json::Value {
    let vid = memo.vid().map(|vid| vid.to_qb64());
    match memo.text() {
        Ok(text) => json!({"memo": text, "src": source(memo.source()), "vid": vid}),
        Err(_) => json!({
            "memo": null,
            "memo_hex": crate::packet::hex(memo.body()),
            "src": source(memo.source()),
            "vid": vid,
        }),
    }
}

async fn run_send(args: Send) -> Result<(), CliError> {
    let config = Config::default();
    let encoding = match args.curt {
        true => Encoding::Base2,
        false => Encoding::Base64,
    };
    match (args.udp, &args.uxd) {
        (Some(dest), _) => {
            let bind = match &args.bind {
                Some(bind) => bind.parse().map_err(|e| CliError::Address {
                    addr: bind.clone(),
                    why: format!("{e}"),
                })?,
                None if dest.is_ipv6() => SocketAddr::from(([0, 0, 0, 0, 0, 0, 0, 1], 0)),
                None => SocketAddr::from(([127, 0, 0, 1], 0)),
            };
            let socket = memogram::bind_udp(bind)
                .await
                .map_err(|e| listen_error(bind.to_string(), e))?;
            let sender = shape(Sender::new(Arc::new(socket), config), &args, encoding);
            send_all(&sender, &args.memos, &dest).await
        }
        (None, Some(dest)) => {
            let bind = args.bind.as_ref().map(PathBuf::from);
            let socket = memogram::bind_uxd(bind.as_deref()).map_err(|e| {
                let at = bind
                    .as_ref()
                    .map_or("an unbound socket".into(), |p| p.display().to_string());
                listen_error(at, e)
            })?;
            let sender = shape(Sender::new(Arc::new(socket), config), &args, encoding);
            // A bound socket's file goes with the socket.
            send_all(&sender, &args.memos, dest).await
        }
        (None, None) => crate::packet::usage("give --udp or --uxd"),
    }
}

fn shape<L: Link>(mut sender: Sender<L>, args: &Send, encoding: Encoding) -> Sender<L> {
    sender = sender.encoding(encoding);
    if let Some(size) = args.size {
        sender = sender.size(size);
    }
    if let Some(seed) = &args.sign {
        let signer = Signer::from_seed(seed);
        sender = sender.signer(match args.vid {
            Some(vid) => signer.with_vid(vid),
            None => signer,
        });
    }
    sender
}

async fn send_all<L: Link>(
    sender: &Sender<L>,
    memos: &[String],
    dest: &L::Addr,
) -> Result<(), CliError> {
    for memo in memos {
        let mid = sender
            .send(memo.as_bytes(), dest)
            .await
            .map_err(CliError::Memo)?;
        println!("{}", json!({"mid": mid.to_qb64(), "len": memo.len()}));
    }
    Ok(())
}

fn parse_vid(text: &str) -> Result<Vid, String> {
    Vid::from_qb64(text.trim().as_bytes()).map_err(|e| e.to_string())
}

/// `VID=VERKEY`: a vid, and the verifying key it names (a `B` or `D` qb64 key, as hio's
/// `Keyage.qvk`).
fn parse_keep(text: &str) -> Result<(Vid, [u8; 32]), String> {
    let (vid, key) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?} is not VID=VERKEY"))?;
    let key = parse_vid(key).map_err(|e| format!("VERKEY: {e}"))?;
    if key.code() == memogram::VidCode::E {
        return Err("VERKEY: a key is qb64 with code B or D, not E (a digest)".into());
    }
    Ok((parse_vid(vid).map_err(|e| format!("VID: {e}"))?, *key.raw()))
}

fn parse_seed(text: &str) -> Result<Seed, String> {
    Seed::from_qb64(text.trim().as_bytes()).map_err(|e| e.to_string())
}
