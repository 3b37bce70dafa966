//! An ONC RPC service in one page: program 300002 version 1, as a `.x` file would say it:
//!
//! ```text
//! program ECHO_PROG {
//!     version ECHO_VERS {
//!         void NULL(void) = 0;
//!         string ECHO(string) = 1;       /* the same string back */
//!         unsigned int WHOAMI(void) = 2; /* the caller's AUTH_SYS uid */
//!     } = 1;
//! } = 300002;
//! ```
//!
//! WHOAMI rejects a call without AUTH_SYS credentials with AUTH_ERROR(AUTH_TOOWEAK).
//!
//! ```text
//! cargo run --example rpc_echo -- [--tcp ADDR] [--udp ADDR] [--register]
//! ```
//!
//! It prints `listening ADDR` for each socket it bound (TCP first; port 0 picks one), then
//! serves until SIGINT or SIGTERM. With `--register` it registers both transports with the
//! local rpcbind (127.0.0.1:111), and unregisters when it stops. With neither `--tcp` nor
//! `--udp` it listens on TCP at 127.0.0.1:0.

use std::net::SocketAddr;
use std::sync::Arc;

use strata::rpc_record::{
    AuthStat, Budget, CallContext, Config, Peer, Program, RecordDatagram, RecordStream, Rpcbind,
    ServerError, Service, serve_datagram, serve_stream,
};
use tokio::net::{TcpListener, UdpSocket};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::Semaphore;

/// The service: NULL, ECHO and WHOAMI of program 300002 version 1.
fn echo_service() -> Service {
    let program = Program::new(300002, [1])
        .procedure(1, 1, |_: CallContext, text: String| async move {
            Ok::<_, ServerError>(text)
        })
        .procedure(1, 2, |call: CallContext, ()| async move {
            match call.auth_sys {
                Some(credentials) => Ok(credentials.uid),
                None => Err(ServerError::AuthError(AuthStat::TooWeak)),
            }
        });
    Service::new().program(program)
}

/// At most this many connections at once; more wait in the listener's backlog.
const MAX_CONNECTIONS: usize = 1024;

struct Args {
    tcp: Option<String>,
    udp: Option<String>,
    register: bool,
}

fn args() -> Result<Args, String> {
    let mut args = Args {
        tcp: None,
        udp: None,
        register: false,
    };
    let mut given = std::env::args().skip(1);
    while let Some(flag) = given.next() {
        match flag.as_str() {
            "--tcp" => args.tcp = Some(given.next().ok_or("--tcp needs an address")?),
            "--udp" => args.udp = Some(given.next().ok_or("--udp needs an address")?),
            "--register" => args.register = true,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if args.tcp.is_none() && args.udp.is_none() {
        args.tcp = Some("127.0.0.1:0".into());
    }
    Ok(args)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = args().map_err(|e| format!("rpc_echo: {e}"))?;
    let service = Arc::new(echo_service());
    let config = Config::default();
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;

    let tcp = match &args.tcp {
        Some(addr) => Some(TcpListener::bind(addr).await?),
        None => None,
    };
    let udp = match &args.udp {
        Some(addr) => Some(UdpSocket::bind(addr).await?),
        None => None,
    };
    let tcp_addr = tcp.as_ref().map(TcpListener::local_addr).transpose()?;
    let udp_addr = udp.as_ref().map(UdpSocket::local_addr).transpose()?;
    for addr in tcp_addr.iter().chain(&udp_addr) {
        println!("listening {addr}");
    }

    let registration = match args.register {
        true => {
            let rpcbind = Rpcbind::connect(SocketAddr::from(([127, 0, 0, 1], 111)), &config);
            Some(
                rpcbind
                    .await?
                    .register(&service, tcp_addr, udp_addr)
                    .await?,
            )
        }
        false => None,
    };

    if let Some(listener) = tcp {
        tokio::spawn(accept(listener, Arc::clone(&service), config.clone()));
    }
    if let Some(socket) = udp {
        let service = Arc::clone(&service);
        let mut socket = RecordDatagram::new(socket, &config);
        tokio::spawn(async move { serve_datagram(&mut socket, &service).await });
    }

    tokio::select! {
        _ = interrupt.recv() => {}
        _ = terminate.recv() => {}
    }
    if let Some(registration) = registration {
        registration.unregister().await?;
    }
    Ok(())
}

/// Accepts connections and serves each in a task of its own, every one reading within one
/// budget, at most [`MAX_CONNECTIONS`] at once.
async fn accept(listener: TcpListener, service: Arc<Service>, config: Config) {
    let budget = Budget::new(config.server_budget);
    let connections = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok(permit) = Arc::clone(&connections).acquire_owned().await else {
            return;
        };
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                eprintln!("rpc_echo: accept: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let peer = Peer::of_tcp(&stream);
        let mut stream = RecordStream::new(stream, &config)
            .with_peer(peer)
            .with_budget(&budget);
        let service = Arc::clone(&service);
        tokio::spawn(async move {
            let _ = serve_stream(&mut stream, &service).await;
            drop(permit);
        });
    }
}
