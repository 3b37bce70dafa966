//! The packetstream steps: `strata packet serve`'s handlers (echo first) over loopback TCP, plain
//! and through a TLS stack, called with 64 requests in flight.

use std::sync::Arc;

use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use packetstream::{Config, PacketConnection};
use strata_transport::{TlsClient, TlsInfo, TlsServer};
use tokio::net::{TcpListener, TcpStream};

use super::Report;
use crate::packet::table;
use crate::tls::stack;

/// Pipelined echo requests (64 in flight) over TCP on 127.0.0.1, checked one by one, then a
/// clean close from both sides.
pub async fn pipelined(scale: u32) -> Result<Report, String> {
    exchange(20_000 * u64::from(scale), None).await
}

/// The same over a TLS stack on each end, the server's certificate made here and verified
/// by the client against the CA that signed it.
pub async fn over_tls(scale: u32) -> Result<Report, String> {
    let (client, server) = super::pki::tls_pair().map_err(|e| format!("no certificate: {e}"))?;
    exchange(10_000 * u64::from(scale), Some((client, server))).await
}

async fn exchange(total: u64, tls: Option<(TlsClient, TlsServer)>) -> Result<Report, String> {
    const IN_FLIGHT: usize = 64;
    let (client_tls, server_tls) = tls.unzip();
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| format!("cannot listen on loopback: {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let server = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.map_err(|e| e.to_string())?;
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        let stack = stack(stream, server_tls).await.map_err(|e| e.to_string())?;
        let conn = PacketConnection::with_handler(stack, Config::default(), table)
            .map_err(|e| e.to_string())?;
        let ended = conn.closed().await;
        Ok::<_, String>((ended, conn.stats()))
    });

    let stream = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    let stack = stack(stream, client_tls).await.map_err(|e| e.to_string())?;
    let over = match stack.get::<TlsInfo>() {
        Some(tls) => format!(
            "over {} ({}) on TCP",
            tls.protocol_version
                .map_or_else(|| "TLS".to_owned(), |v| format!("{v:?}")),
            tls.peer_subject.as_deref().unwrap_or("no subject")
        ),
        None => "over TCP".to_owned(),
    };
    let client = Arc::new(
        PacketConnection::new(stack, Config::default()).map_err(|e| format!("no client: {e}"))?,
    );

    let call = |i: u64| {
        let client = Arc::clone(&client);
        async move {
            let payload = Bytes::from(i.to_be_bytes().repeat(8));
            let response = client.request(0, i, payload.clone()).await;
            match response {
                Ok(r) if r.ok && r.flags == i && r.payload == payload => Ok(()),
                Ok(r) => Err(format!("request {i} came back wrong: {r}")),
                Err(e) => Err(format!("request {i} failed: {e}")),
            }
        }
    };
    let mut in_flight = FuturesUnordered::new();
    let mut sent = 0;
    while sent < total.min(IN_FLIGHT as u64) {
        in_flight.push(call(sent));
        sent += 1;
    }
    while let Some(done) = in_flight.next().await {
        done?;
        if sent < total {
            in_flight.push(call(sent));
            sent += 1;
        }
    }
    client
        .close()
        .await
        .map_err(|e| format!("the client's close failed: {e}"))?;
    let (ended, server_stats) = server
        .await
        .map_err(|e| format!("the server task failed: {e}"))?
        .map_err(|e| format!("the server could not set up: {e}"))?;
    ended.map_err(|e| format!("the server's side failed: {e}"))?;
    let stats = client.stats();
    if server_stats.requests_served != total || stats.orphans != 0 {
        return Err(format!(
            "the server answered {} of {total} requests, {} orphans",
            server_stats.requests_served, stats.orphans
        ));
    }
    Ok(Report {
        detail: format!(
            "{total} echo requests of 64 bytes, {IN_FLIGHT} in flight, {over} {addr}; \
             {} packets and {} bytes out, 0 orphans; closed cleanly (ERQ, EOF both ways)",
            stats.packets_out, stats.bytes_out
        ),
        units: total,
        unit: "requests",
    })
}
