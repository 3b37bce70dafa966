//! The rpc-record step: a service over loopback TCP and UDP, pinged as rpcinfo pings it,
//! then NULL and ECHO calls pipelined 16 deep.

use std::collections::VecDeque;

use bytes::Bytes;
use rpc_record::{
    CallContext, Client, Config, PeerAddr, Program, RecordDatagram, RecordStream, ServerError,
    Service, serve_datagram, serve_stream,
};
use tokio::net::{TcpListener, TcpStream, UdpSocket};

use super::Report;

const PROG: u32 = 300000;

/// A versionless ping over UDP and TCP, then pipelined calls over TCP (NULL of version 2,
/// and ECHO of version 3: a string in, the same string back, through the XDR codec and a
/// handler), each reply checked.
pub async fn pipelined(scale: u32) -> Result<Report, String> {
    const IN_FLIGHT: usize = 16;
    let total = 20_000 * u64::from(scale);
    let program = Service::from(Program::new(PROG, [2, 3]).procedure(
        3,
        1,
        |_: CallContext, text: String| async move { Ok::<_, ServerError>(text) },
    ));
    let config = Config::default();
    let loopback = |e: std::io::Error| format!("cannot use loopback: {e}");

    let listener = TcpListener::bind("127.0.0.1:0").await.map_err(loopback)?;
    let tcp = listener.local_addr().map_err(loopback)?;
    let served = program.clone();
    let server = tokio::spawn(async move {
        let (stream, _) = listener.accept().await?;
        stream.set_nodelay(true)?;
        Ok::<_, std::io::Error>(
            serve_stream(&mut RecordStream::new(stream, &Config::default()), &served).await,
        )
    });
    let udp_socket = UdpSocket::bind("127.0.0.1:0").await.map_err(loopback)?;
    let udp = udp_socket.local_addr().map_err(loopback)?;
    let datagram_server = tokio::spawn(async move {
        let mut socket = RecordDatagram::new(udp_socket, &Config::default());
        serve_datagram(&mut socket, &program).await
    });

    // rpcinfo's versionless ping, over UDP: version 0 gives the range.
    let socket = UdpSocket::bind("127.0.0.1:0").await.map_err(loopback)?;
    let retry = std::time::Duration::from_millis(200);
    let by_udp = Client::datagram(
        RecordDatagram::new(socket, &config),
        PeerAddr::Inet(udp),
        retry,
        &config,
    );
    let range = null(&by_udp, 0).await?;
    if range != Err(ServerError::ProgMismatch { low: 2, high: 3 }) {
        return Err(format!(
            "version 0 over UDP: expected PROG_MISMATCH(2..=3), got {range:?}"
        ));
    }
    for vers in 2..=3 {
        null(&by_udp, vers)
            .await?
            .map_err(|e| format!("version {vers} over UDP: {e}"))?;
    }
    datagram_server.abort();

    let stream = TcpStream::connect(tcp)
        .await
        .map_err(|e| format!("cannot connect to {tcp}: {e}"))?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    let client = Client::stream(RecordStream::new(stream, &config), &config);
    let mut in_flight = VecDeque::with_capacity(IN_FLIGHT);
    for i in 0..total {
        if in_flight.len() == IN_FLIGHT {
            let call: tokio::task::JoinHandle<_> = in_flight.pop_front().expect("a full window");
            call.await.map_err(|e| e.to_string())??;
        }
        let client = client.clone();
        in_flight.push_back(tokio::spawn(async move {
            if i % 2 == 0 {
                return match client.call(PROG, 2, 0, Bytes::new()).await {
                    Ok(reply) if reply.outcome == Ok(Bytes::new()) => Ok(()),
                    Ok(reply) => Err(format!("call {i} came back wrong: {reply}")),
                    Err(e) => Err(format!("call {i} failed: {e}")),
                };
            }
            let text = format!("call {i}");
            match client.call_xdr::<str, String>(PROG, 3, 1, &text).await {
                Ok(Ok(echoed)) if echoed == text => Ok(()),
                Ok(echoed) => Err(format!("ECHO {i} came back wrong: {echoed:?}")),
                Err(e) => Err(format!("ECHO {i} failed: {e}")),
            }
        }));
    }
    for call in in_flight {
        call.await.map_err(|e| e.to_string())??;
    }
    let skipped = client.skipped();
    drop(client);
    server
        .await
        .map_err(|e| format!("the server task failed: {e}"))?
        .map_err(|e| format!("the server could not accept: {e}"))?
        .map_err(|e| format!("the server failed: {e}"))?;
    if skipped != 0 {
        return Err(format!("{skipped} replies matched no call"));
    }
    Ok(Report {
        detail: format!(
            "versionless ping over UDP {udp} (PROG_MISMATCH 2..=3, then versions 2 and 3 ready); \
             {total} calls (NULL, and ECHO through a handler), {IN_FLIGHT} in flight, over TCP \
             {tcp}, every xid matched and every echo checked"
        ),
        units: total,
        unit: "calls",
    })
}

async fn null(client: &Client, vers: u32) -> Result<Result<Bytes, ServerError>, String> {
    let call = client.call(PROG, vers, 0, Bytes::new());
    match tokio::time::timeout(std::time::Duration::from_secs(5), call).await {
        Ok(Ok(reply)) => Ok(reply.outcome),
        Ok(Err(e)) => Err(format!("version {vers}: {e}")),
        Err(_) => Err(format!("version {vers}: no reply within 5 s")),
    }
}
