//! rpc-record in one page: an ONC RPC server and client on loopback, over TCP and UDP. The
//! program adds two numbers and greets a caller by its AUTH_SYS credentials; the client calls
//! it with XDR types, and sees the refusals a server gives.
//!
//! Run with `cargo run --example rpc_record` (and `examples/rpc_echo.rs` for a service to
//! run on its own, registered with rpcbind).

use std::sync::Arc;
use std::time::Duration;

use strata::rpc_record::{
    AuthStat, AuthSys, CallContext, Client, Config, PeerAddr, Program, RecordDatagram,
    RecordStream, ServerError, Service, serve_datagram, serve_stream,
};
use tokio::net::{TcpListener, TcpStream, UdpSocket};

const PROG: u32 = 0x2000_0042;

fn service() -> Service {
    let program = Program::new(PROG, [1])
        // ADD: (int, int) -> int.
        .procedure(1, 1, |_: CallContext, (a, b): (i32, i32)| async move {
            a.checked_add(b).ok_or(ServerError::GarbageArgs)
        })
        // HELLO: void -> string, for AUTH_SYS callers only.
        .procedure(1, 2, |call: CallContext, ()| async move {
            match call.auth_sys {
                Some(who) => Ok(format!("hello, uid {} on {}", who.uid, who.machine_name)),
                None => Err(ServerError::AuthError(AuthStat::TooWeak)),
            }
        });
    Service::new().program(program)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let service = Arc::new(service());
    let config = Config::default();

    // The server: every TCP connection in a task of its own, and one UDP socket.
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let tcp = listener.local_addr()?;
    let on_tcp = Arc::clone(&service);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let mut stream = RecordStream::new(stream, &Config::default());
            let service = Arc::clone(&on_tcp);
            tokio::spawn(async move { serve_stream(&mut stream, &service).await });
        }
    });
    let udp_socket = UdpSocket::bind("127.0.0.1:0").await?;
    let udp = udp_socket.local_addr()?;
    let mut datagrams = RecordDatagram::new(udp_socket, &config);
    tokio::spawn(async move { serve_datagram(&mut datagrams, &service).await });

    // Clients over both.
    let by_tcp = Client::stream(
        RecordStream::new(TcpStream::connect(tcp).await?, &config),
        &config,
    );
    let by_udp = Client::datagram(
        RecordDatagram::new(UdpSocket::bind("127.0.0.1:0").await?, &config),
        PeerAddr::Inet(udp),
        Duration::from_millis(500),
        &config,
    );
    for (name, client) in [("tcp", &by_tcp), ("udp", &by_udp)] {
        let sum: Result<i32, _> = client.call_xdr(PROG, 1, 1, &(40, 2)).await?;
        println!("{name}: 40 + 2 = {sum:?}");
        assert_eq!(sum, Ok(42));
    }

    // AUTH_SYS: refused without it, greeted with it.
    let anonymous: Result<String, _> = by_tcp.call_xdr(PROG, 1, 2, &()).await?;
    println!("without credentials: {anonymous:?}");
    let me = AuthSys {
        uid: 1000,
        machine_name: "example".into(),
        ..AuthSys::default()
    };
    let greeted: Result<String, _> = by_tcp
        .with_cred(me.to_cred()?)
        .call_xdr(PROG, 1, 2, &())
        .await?;
    println!("with AUTH_SYS: {greeted:?}");
    assert_eq!(greeted.as_deref(), Ok("hello, uid 1000 on example"));

    // The refusals a server gives, as the client reads them.
    let other_version = by_tcp.call(PROG, 7, 0, Default::default()).await?;
    println!("version 7: {}", other_version);
    let no_such = by_tcp.call(PROG, 1, 9, Default::default()).await?;
    println!("procedure 9: {}", no_such);
    Ok(())
}
