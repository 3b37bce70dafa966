//! transport in one page: a TLS echo server behind an `Interface` on loopback, a client
//! that pushes TLS onto its TCP stream and talks through it, and a graceful shutdown.
//!
//! Run with `cargo run --example transport`.

use std::time::Duration;

use rcgen::{CertificateParams, KeyPair};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use strata::transport::{
    self, Accepted, Address, Interface, Listener, Stack, TlsClient, TlsServer,
};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // A self-signed certificate for localhost, made on the spot.
    let key = KeyPair::generate()?;
    let cert = CertificateParams::new(vec!["localhost".to_owned()])?
        .self_signed(&key)?
        .der()
        .clone();
    let private = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));

    // The server: TCP on loopback, TLS pushed on every connection, one task each.
    let mut interface = Interface::new(transport::Config::default());
    let listener = Listener::tcp("127.0.0.1:0").await?;
    let Address::Tcp(addr) = listener.local_addr()? else {
        return Err("a TCP listener has a TCP address".into());
    };
    interface.listen(listener);
    interface.tls(TlsServer::with_identity(vec![cert.clone()], private)?);
    let serving = interface.serve(|connection: Accepted| async move {
        // Echo each line back, upper-cased, until the client closes.
        let (read, mut write) = tokio::io::split(connection.stack);
        let mut lines = BufReader::new(read).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            let reply = format!("{}\n", line.to_uppercase());
            if write.write_all(reply.as_bytes()).await.is_err() {
                break;
            }
        }
        // Closing sends close_notify, then shuts the socket's write side.
        let _ = write.shutdown().await;
    });
    println!("serving TLS on {addr}");

    // The client: a TCP stream, TLS pushed onto it, verifying the server's certificate.
    let mut stack = Stack::new(TcpStream::connect(addr).await?);
    stack
        .push(TlsClient::verifying([cert], "localhost")?)
        .await?;
    stack.write_all(b"hello over tls\n").await?;
    let mut reply = String::new();
    let mut reader = BufReader::new(&mut stack);
    reader.read_line(&mut reply).await?;
    print!("the server said: {reply}");
    assert_eq!(reply, "HELLO OVER TLS\n");
    stack.shutdown().await?;

    // A graceful shutdown: stop accepting, let connections end within a deadline.
    let report = serving.shutdown(Duration::from_secs(5)).await;
    println!(
        "shut down: of the connections open then, {} finished in time and {} were cut",
        report.finished, report.cancelled
    );
    Ok(())
}
