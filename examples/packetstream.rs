//! packetstream in one page: a server and a client over loopback TCP, requests both ways,
//! then a clean close.
//!
//! Run with `cargo run --example packetstream`.

use std::convert::Infallible;

use strata::packetstream::{Config, PacketConnection, Reply, Request};
use tokio::net::{TcpListener, TcpStream};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let server = tokio::spawn(async move {
        let (stream, _) = listener.accept().await?;
        // rq 0 echoes with the request's flags; rq 1 answers how long the payload was.
        let conn =
            PacketConnection::with_handler(stream, Config::default(), |rq: Request| async move {
                Ok::<Reply, Infallible>(match rq.rq_type {
                    0 => Reply::from((rq.flags, rq.payload)),
                    _ => Reply::from(rq.payload.len() as u64),
                })
            })?;
        conn.closed().await?;
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>(conn.stats())
    });

    let client = PacketConnection::new(TcpStream::connect(addr).await?, Config::default())?;
    let echo = client.request(0, 0x11, "hello").await?;
    println!("rq 0 -> {echo} {:?}", echo.payload);
    let length = client.request(1, 0, vec![0u8; 1000]).await?;
    println!("rq 1 -> {length} (flags = payload length)");
    client.close().await?;

    let served = server.await?.map_err(|e| e.to_string())?;
    println!("client: {:?}", client.stats());
    println!("server: {served:?}");
    Ok(())
}
