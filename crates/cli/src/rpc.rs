//! `strata rpc serve`, `strata rpc ping`, `strata rpc dump` and `strata rpc call`: ONC RPC on
//! the command line, as rpcbind answers and as rpcinfo asks.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use rpc_record::pmap::{
    IPPROTO_TCP, IPPROTO_UDP, Mapping, PMAP_PORT, PMAP_PROG, PMAP_VERS, PMAPPROC_DUMP,
};
use rpc_record::{
    AuthSys, Budget, Client, Config, Peer, PeerAddr, Program, RecordDatagram, RecordStream,
    Rpcbind, ServerError, Service, serve_datagram, serve_stream,
};
use strata_transport::Accepted;
use tokio::net::{TcpStream, UdpSocket};
use tracing::{debug, info};

use crate::error::CliError;
use crate::tls::{CallTls, ServeTls};

/// `strata rpc ...`
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Answer pings (procedure 0) of program PROG in the versions given, over TCP, UDP or
    /// both, as rpcbind answers: PROG_UNAVAIL, PROG_MISMATCH, PROC_UNAVAIL for the rest.
    ///
    /// Prints one `listening ADDR` line per transport, TCP first, then serves until SIGINT
    /// or SIGTERM, then closes open connections in order and exits 0.
    Serve(Serve),
    /// Ping a program as `rpcinfo -T tcp|udp` does, printing
    /// `program P version V ready and waiting`. Without VERS, asks for version 0 to learn
    /// the range from PROG_MISMATCH and pings each version in it, on one connection.
    #[command(override_usage = "strata rpc ping (--tcp | --udp) HOST:PORT PROG [VERS]")]
    Ping(Ping),
    /// List a portmapper's registrations, as `rpcinfo -p` does (PMAPPROC_DUMP over TCP).
    Dump(Dump),
    /// Call procedure PROC of program PROG version VERS on HOST and print the reply as one
    /// JSON line: `{"reply":"accepted","status":"SUCCESS","result":"HEX"}`, or the
    /// refusal (`"status":"PROG_MISMATCH","low":1,"high":2`, `"reply":"denied",
    /// "status":"AUTH_ERROR","auth_stat":5`, ...). The port is looked up through HOST's
    /// rpcbind (GETPORT) unless --port gives it. Exits 0 on SUCCESS, 1 on a refusal.
    #[command(
        override_usage = "strata rpc call HOST PROG VERS PROC [--tcp | --udp] [--port N] [--args-hex HEX] [--auth-sys]"
    )]
    Call(CallArgs),
}

#[derive(Debug, clap::Args)]
struct CallArgs {
    /// The server's host.
    host: String,
    /// The program number.
    prog: u32,
    /// The version.
    vers: u32,
    /// The procedure.
    procedure: u32,
    /// Over TCP (the default).
    #[arg(long, conflicts_with = "udp")]
    tcp: bool,
    /// Over UDP.
    #[arg(long)]
    udp: bool,
    /// The port; without it, HOST's rpcbind says.
    #[arg(long, value_name = "N")]
    port: Option<u16>,
    /// The arguments, XDR-encoded, in hex.
    #[arg(long, value_name = "HEX", default_value = "")]
    args_hex: String,
    /// Send AUTH_SYS credentials of this process (as authunix_create_default does).
    #[arg(long)]
    auth_sys: bool,
    /// Give up on the reply after this many seconds.
    #[arg(long, value_name = "SECS", default_value_t = 10)]
    timeout: u64,
}

#[derive(Debug, clap::Args)]
struct Serve {
    /// The TCP address to listen on (the default when neither --tcp nor --udp is given is
    /// 127.0.0.1:0).
    #[arg(long, value_name = "ADDR")]
    tcp: Option<String>,
    /// The UDP address to listen on.
    #[arg(long, value_name = "ADDR")]
    udp: Option<String>,
    /// The program number.
    #[arg(long, value_name = "P")]
    prog: u32,
    /// The versions served, comma-separated.
    #[arg(long, value_name = "V[,V...]", value_delimiter = ',', required = true)]
    vers: Vec<u32>,
    /// TLS on the TCP listener (UDP stays plain).
    #[command(flatten)]
    tls: ServeTls,
    #[command(flatten)]
    limits: crate::serve::Limits,
    /// Register every version on each transport with the local rpcbind (127.0.0.1:111), and
    /// unregister at exit.
    #[arg(long)]
    register: bool,
}

#[derive(Debug, clap::Args)]
struct Ping {
    /// Over TCP.
    #[arg(long, conflicts_with = "udp", required_unless_present = "udp")]
    tcp: bool,
    /// Over UDP.
    #[arg(long)]
    udp: bool,
    /// Where the program is: HOST:PORT.
    #[arg(value_name = "HOST:PORT")]
    addr: String,
    /// The program number.
    prog: u32,
    /// The version; without it, every version the program says it has.
    vers: Option<u32>,
    /// Give up on a reply after this many seconds.
    #[arg(long, value_name = "SECS", default_value_t = 10)]
    timeout: u64,
    /// TLS, over TCP only.
    #[command(flatten)]
    tls: CallTls,
}

#[derive(Debug, clap::Args)]
struct Dump {
    /// The portmapper: HOST or HOST:PORT (port 111 when not given).
    #[arg(value_name = "HOST[:PORT]")]
    host: String,
    /// Give up on the reply after this many seconds.
    #[arg(long, value_name = "SECS", default_value_t = 10)]
    timeout: u64,
}

/// The most versions a versionless ping goes through (rpcinfo would try four billion).
const MAX_PING_VERSIONS: u32 = 1024;

/// Runs `strata rpc ...`.
pub async fn run(args: Args) -> Result<(), CliError> {
    match args.command {
        Command::Serve(serve) => run_serve(serve).await,
        Command::Ping(ping) => run_ping(ping).await,
        Command::Dump(dump) => run_dump(dump).await,
        Command::Call(call) => run_call(call).await,
    }
}

async fn run_serve(args: Serve) -> Result<(), CliError> {
    let service = Arc::new(Service::from(Program::new(
        args.prog,
        args.vers.iter().copied(),
    )));
    let tcp = match (&args.tcp, &args.udp) {
        (None, None) => Some("127.0.0.1:0".to_owned()),
        (tcp, _) => tcp.clone(),
    };
    let tls = args.tls.server()?;
    if tls.is_some() && tcp.is_none() {
        crate::packet::usage("--tls-cert and --tls-key serve TLS on the TCP listener: give --tcp");
    }
    let signals = crate::serve::Signals::catch()?;
    let config = Config::default();
    let mut interface = args.limits.interface(tls);
    let mut tcp_addr = None;
    if let Some(addr) = &tcp {
        let listener = crate::serve::listen(addr, None).await?;
        if let Ok(strata_transport::Address::Tcp(addr)) = listener.local_addr() {
            tcp_addr = Some(addr);
        }
        interface.listen(listener);
    }
    let udp = match &args.udp {
        Some(addr) => {
            let socket = UdpSocket::bind(addr)
                .await
                .map_err(|source| CliError::Listen {
                    addr: addr.clone(),
                    source,
                })?;
            println!(
                "listening {}",
                socket.local_addr().map_err(CliError::Accept)?
            );
            Some(socket)
        }
        None => None,
    };
    let udp_addr = udp.as_ref().and_then(|socket| socket.local_addr().ok());
    let udp = udp.map(|socket| RecordDatagram::new(socket, &config));
    let registration = match args.register {
        true => {
            let local = SocketAddr::from(([127, 0, 0, 1], PMAP_PORT));
            let rpcbind = Rpcbind::connect(local, &config)
                .await
                .map_err(CliError::Rpc)?;
            let registration = rpcbind
                .register(&service, tcp_addr, udp_addr)
                .await
                .map_err(CliError::Rpc)?;
            Some(registration)
        }
        false => None,
    };
    // Every connection reads within one budget.
    let budget = Budget::new(config.server_budget);
    let serving = {
        let service = Arc::clone(&service);
        interface.serve(move |accepted: Accepted| {
            serve_connection(accepted, Arc::clone(&service), budget.clone())
        })
    };
    let datagrams = async move {
        match udp {
            Some(mut socket) => serve_datagram(&mut socket, &service)
                .await
                .map_err(CliError::Rpc),
            None => std::future::pending().await,
        }
    };
    let never_done = tokio_util::sync::CancellationToken::new();
    let served = crate::serve::run(serving, &args.limits, signals, never_done, datagrams).await;
    if let Some(registration) = registration {
        if let Err(e) = registration.unregister().await {
            tracing::warn!(error = %e, "could not unregister from rpcbind");
        }
    }
    served
}

/// Serves one connection until the peer closes it, or until the server shuts down, when
/// the replies already made are sent and the connection is closed in order.
async fn serve_connection(accepted: Accepted, service: Arc<Service>, budget: Budget) {
    let Accepted {
        stack,
        peer,
        closing,
    } = accepted;
    // A client certificate's subject is the peer's user name.
    let known = Peer {
        addr: Some(match &peer.addr {
            strata_transport::Address::Tcp(addr) => PeerAddr::Inet(*addr),
            strata_transport::Address::Unix(path) => PeerAddr::Unix(path.clone()),
        }),
        user_name: peer.tls_subject.clone(),
        fd: Some(peer.fd),
    };
    let config = Config::default();
    let mut stream = RecordStream::new(stack, &config)
        .with_peer(known)
        .with_budget(&budget);
    let served = tokio::select! {
        served = serve_stream(&mut stream, &service) => served,
        () = closing.cancelled() => stream.shutdown(SHUTDOWN_LINGER).await,
    };
    match served {
        Ok(()) => info!(%peer, "connection closed"),
        Err(e) => info!(%peer, error = %e, "connection failed"),
    }
}

/// How long a connection closed at shutdown waits for its peer's EOF.
const SHUTDOWN_LINGER: Duration = Duration::from_secs(1);

/// Resolves `HOST:PORT`, or `HOST` with `default_port`.
async fn resolve(text: &str, default_port: Option<u16>) -> Result<SocketAddr, CliError> {
    let bad = |why: String| CliError::Address {
        addr: text.to_owned(),
        why,
    };
    if let (Ok(ip), Some(port)) = (text.parse::<IpAddr>(), default_port) {
        return Ok(SocketAddr::new(ip, port));
    }
    let with_port = match (text.rsplit_once(':'), default_port) {
        (Some((_, port)), _) if port.parse::<u16>().is_ok() && !text.ends_with(']') => {
            text.to_owned()
        }
        (_, Some(port)) => format!("{text}:{port}"),
        (_, None) => return Err(bad("give HOST:PORT".into())),
    };
    tokio::net::lookup_host(&with_port)
        .await
        .map_err(|e| bad(e.to_string()))?
        .next()
        .ok_or_else(|| bad("no address".into()))
}

async fn connect(
    addr: SocketAddr,
    udp: bool,
    timeout: Duration,
    tls: Option<strata_transport::TlsClient>,
) -> Result<Client, CliError> {
    let config = Config::default();
    let connect_error = |source| CliError::Connect {
        addr: addr.to_string(),
        source,
    };
    if udp {
        let local = match addr {
            SocketAddr::V4(_) => "0.0.0.0:0",
            SocketAddr::V6(_) => "[::]:0",
        };
        let socket = UdpSocket::bind(local).await.map_err(connect_error)?;
        let socket = RecordDatagram::new(socket, &config);
        let retry = Duration::from_secs(1).min(timeout);
        return Ok(Client::datagram(
            socket,
            PeerAddr::Inet(addr),
            retry,
            &config,
        ));
    }
    let stream = tokio::time::timeout(timeout, TcpStream::connect(addr))
        .await
        .map_err(|_| connect_error(std::io::ErrorKind::TimedOut.into()))?
        .map_err(connect_error)?;
    let _ = stream.set_nodelay(true);
    let stack = tokio::time::timeout(timeout, crate::tls::stack(stream, tls))
        .await
        .map_err(|_| connect_error(std::io::ErrorKind::TimedOut.into()))??;
    Ok(Client::stream(RecordStream::new(stack, &config), &config))
}

/// Calls NULL of `prog` `vers`; the server's refusal is `Ok(Err(..))`.
async fn null(
    client: &Client,
    prog: u32,
    vers: u32,
    timeout: Duration,
) -> Result<Result<Bytes, ServerError>, CliError> {
    let reply = tokio::time::timeout(timeout, client.call(prog, vers, 0, Bytes::new()))
        .await
        .map_err(|_| CliError::Rpc(rpc_record::Error::Timeout(timeout)))?
        .map_err(CliError::Rpc)?;
    Ok(reply.outcome)
}

async fn run_ping(args: Ping) -> Result<(), CliError> {
    let timeout = Duration::from_secs(args.timeout.max(1));
    let addr = resolve(&args.addr, None).await?;
    if args.udp && args.tls.is_on() {
        crate::packet::usage("--tls-ca speaks TLS over TCP only");
    }
    let tls = args.tls.client(&args.addr)?;
    let client = connect(addr, args.udp, timeout, tls).await?;
    let prog = args.prog;
    let versions = match args.vers {
        Some(vers) => vers..=vers,
        None => match null(&client, prog, 0, timeout).await? {
            Err(ServerError::ProgMismatch { low, high }) => low..=high,
            Ok(_) => match null(&client, prog, u32::MAX, timeout).await? {
                Err(ServerError::ProgMismatch { high, .. }) => 0..=high,
                Ok(_) => 0..=u32::MAX,
                Err(why) => {
                    return Err(CliError::NotAvailable {
                        prog,
                        vers: u32::MAX,
                        why,
                    });
                }
            },
            Err(why) => return Err(CliError::NotAvailable { prog, vers: 0, why }),
        },
    };
    if versions.end().saturating_sub(*versions.start()) >= MAX_PING_VERSIONS {
        return Err(CliError::TooManyVersions {
            prog,
            low: *versions.start(),
            high: *versions.end(),
            max: MAX_PING_VERSIONS,
        });
    }
    let mut refused = None;
    for vers in versions {
        match null(&client, prog, vers, timeout).await? {
            Ok(_) => println!("program {prog} version {vers} ready and waiting"),
            Err(why) => {
                println!("program {prog} version {vers} is not available");
                debug!(prog, vers, %why, "refused");
                refused.get_or_insert(CliError::NotAvailable { prog, vers, why });
            }
        }
    }
    refused.map_or(Ok(()), Err)
}

async fn run_dump(args: Dump) -> Result<(), CliError> {
    let timeout = Duration::from_secs(args.timeout.max(1));
    let addr = resolve(&args.host, Some(PMAP_PORT)).await?;
    let client = connect(addr, false, timeout, None).await?;
    let reply = tokio::time::timeout(
        timeout,
        client.call(PMAP_PROG, PMAP_VERS, PMAPPROC_DUMP, Bytes::new()),
    )
    .await
    .map_err(|_| CliError::Rpc(rpc_record::Error::Timeout(timeout)))?
    .map_err(CliError::Rpc)?;
    let results = reply.outcome.map_err(|why| CliError::NotAvailable {
        prog: PMAP_PROG,
        vers: PMAP_VERS,
        why,
    })?;
    let mappings = Mapping::decode_dump(results).map_err(CliError::Rpc)?;
    let names = rpc_names();
    println!("   program vers proto   port  service");
    for mapping in mappings {
        match names.iter().find(|(number, _)| *number == mapping.prog) {
            Some((_, name)) => println!("{mapping}  {name}"),
            None => println!("{mapping}"),
        }
    }
    Ok(())
}

async fn run_call(args: CallArgs) -> Result<(), CliError> {
    let timeout = Duration::from_secs(args.timeout.max(1));
    let args_bytes = hex(&args.args_hex)?;
    let port = match args.port {
        Some(port) => port,
        None => {
            let rpcbind_addr = resolve(&args.host, Some(PMAP_PORT)).await?;
            let client = connect(rpcbind_addr, false, timeout, None).await?;
            let prot = if args.udp { IPPROTO_UDP } else { IPPROTO_TCP };
            let port = tokio::time::timeout(
                timeout,
                Rpcbind::new(client).getport(args.prog, args.vers, prot),
            )
            .await
            .map_err(|_| CliError::Rpc(rpc_record::Error::Timeout(timeout)))?
            .map_err(CliError::Rpc)?;
            port.ok_or(CliError::NotAvailable {
                prog: args.prog,
                vers: args.vers,
                why: ServerError::ProgUnavail,
            })?
        }
    };
    let addr = resolve(&args.host, Some(port)).await?;
    let mut client = connect(addr, args.udp, timeout, None).await?;
    if args.auth_sys {
        let credentials = AuthSys::of_this_process().ok_or(CliError::NoCredentials)?;
        client = client.with_cred(credentials.to_cred().map_err(CliError::Rpc)?);
    }
    let reply = tokio::time::timeout(
        timeout,
        client.call(args.prog, args.vers, args.procedure, args_bytes),
    )
    .await
    .map_err(|_| CliError::Rpc(rpc_record::Error::Timeout(timeout)))?
    .map_err(CliError::Rpc)?;
    println!("{}", reply_json(&reply.outcome));
    match reply.outcome {
        Ok(_) => Ok(()),
        Err(why) => Err(CliError::NotAvailable {
            prog: args.prog,
            vers: args.vers,
            why,
        }),
    }
}

/// A reply as one JSON object.
fn reply_json(outcome: &Result<Bytes, ServerError>) -> serde_json::Value {
    use serde_json::json;
    let hex = |bytes: &[u8]| bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
    let accepted = |status: &str| json!({"reply": "accepted", "status": status});
    match outcome {
        Ok(results) => json!({"reply": "accepted", "status": "SUCCESS", "result": hex(results)}),
        Err(ServerError::ProgUnavail) => accepted("PROG_UNAVAIL"),
        Err(ServerError::ProgMismatch { low, high }) => {
            json!({"reply": "accepted", "status": "PROG_MISMATCH", "low": low, "high": high})
        }
        Err(ServerError::ProcUnavail) => accepted("PROC_UNAVAIL"),
        Err(ServerError::GarbageArgs) => accepted("GARBAGE_ARGS"),
        Err(ServerError::SystemErr) => accepted("SYSTEM_ERR"),
        Err(ServerError::RpcMismatch { low, high }) => {
            json!({"reply": "denied", "status": "RPC_MISMATCH", "low": low, "high": high})
        }
        Err(ServerError::AuthError(stat)) => {
            json!({"reply": "denied", "status": "AUTH_ERROR", "auth_stat": stat.code()})
        }
    }
}

/// Bytes from hex digits (whitespace allowed between pairs).
fn hex(text: &str) -> Result<Bytes, CliError> {
    let digits: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    let bad = || CliError::BadHex(text.to_owned());
    if digits.len() % 2 != 0 {
        return Err(bad());
    }
    digits
        .chunks(2)
        .map(|pair| {
            std::str::from_utf8(pair)
                .ok()
                .and_then(|pair| u8::from_str_radix(pair, 16).ok())
                .ok_or_else(bad)
        })
        .collect::<Result<Vec<u8>, _>>()
        .map(Bytes::from)
}

/// Program names from `/etc/rpc` (`name number aliases...`), as rpcinfo prints them; none
/// when the file is missing.
fn rpc_names() -> Vec<(u32, String)> {
    let text = std::fs::read_to_string("/etc/rpc").unwrap_or_default();
    text.lines()
        .filter_map(|line| {
            let line = line.split('#').next()?;
            let mut fields = line.split_whitespace();
            let name = fields.next()?;
            let number = fields.next()?.parse().ok()?;
            Some((number, name.to_owned()))
        })
        .collect()
}
