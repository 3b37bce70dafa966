//! The stack with TLS pushed on live connections: handshakes with certificates made here,
//! what the layers report, STARTTLS with and without injected bytes, popping, and the close.

mod support;

use std::io;
use std::sync::Arc;

use futures_util::{SinkExt, StreamExt};
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use strata_transport::{Error, Layer, Stack, TlsClient, TlsInfo, TlsServer};
use support::Ca;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::codec::{Framed, LinesCodec};

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A CA, a server identity for `localhost` and 127.0.0.1, and a client that trusts the CA.
fn tls_pair(ca: &Ca) -> (TlsClient, TlsServer) {
    let (certs, key) = ca.identity("strata server", &["localhost", "127.0.0.1"]);
    let client = TlsClient::verifying([ca.cert.clone()], "localhost").unwrap();
    (client, TlsServer::with_identity(certs, key).unwrap())
}

/// Pushes `client` and `server` on the two ends of a fresh pipe at once.
async fn tls_stacks(client: TlsClient, server: TlsServer) -> (Stack, Stack) {
    let (a, b) = tokio::io::duplex(64 * 1024);
    let (mut c, mut s) = (Stack::new(a), Stack::new(b));
    let (pc, ps) = tokio::join!(c.push(client), s.push(server));
    pc.unwrap();
    ps.unwrap();
    (c, s)
}

#[tokio::test]
async fn tls_pushed_on_both_ends_carries_data_and_reports_the_peer() {
    let ca = Ca::new("Strata test CA");
    let (client, server) = tls_pair(&ca);
    let (mut c, mut s) = tls_stacks(client, server).await;
    assert_eq!(c.names(), ["tls", "endpoint"]);
    c.write_all(b"through tls").await.unwrap();
    c.flush().await.unwrap();
    let mut got = [0; 11];
    s.read_exact(&mut got).await.unwrap();
    assert_eq!(&got, b"through tls");

    let info = c.get::<TlsInfo>().expect("the client's TLS layer");
    assert_eq!(
        info.protocol_version,
        Some(rustls::ProtocolVersion::TLSv1_3)
    );
    assert_eq!(info.server_name.as_deref(), Some("localhost"));
    assert_eq!(info.peer_subject.as_deref(), Some("CN=strata server"));
    let seen = s.get::<TlsInfo>().expect("the server's TLS layer");
    assert_eq!(seen.server_name.as_deref(), Some("localhost"), "the SNI");
    assert!(
        seen.peer_certificates.is_empty(),
        "no client certificate was asked"
    );
    assert!(s.get::<String>().is_none());
}

#[tokio::test]
async fn a_server_is_verified_by_ip_address_over_tcp() {
    let ca = Ca::new("Strata test CA");
    let (_, server) = tls_pair(&ca);
    let client = TlsClient::verifying([ca.cert.clone()], "127.0.0.1").unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let serving = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        // A fixed stack: the layer wraps the socket directly, with no box.
        let mut tls = server.wrap(tcp).await.map_err(|(e, _)| e).unwrap();
        let mut line = [0; 4];
        tls.read_exact(&mut line).await.unwrap();
        tls.write_all(&line).await.unwrap();
        tls.shutdown().await.unwrap();
    });
    let mut stack = Stack::new(TcpStream::connect(addr).await.unwrap());
    stack.push(client).await.unwrap();
    stack.write_all(b"ping").await.unwrap();
    let mut echoed = Vec::new();
    stack.read_to_end(&mut echoed).await.unwrap();
    assert_eq!(echoed, b"ping");
    assert_eq!(
        stack.get::<TlsInfo>().unwrap().server_name.as_deref(),
        Some("127.0.0.1")
    );
    serving.await.unwrap();
}

#[tokio::test]
async fn a_client_certificate_names_the_peer_on_the_server() {
    let ca = Ca::new("Strata test CA");
    let (server_certs, server_key) = ca.identity("strata server", &["localhost"]);
    let (client_certs, client_key) = ca.identity("alice", &[]);
    let mut roots = RootCertStore::empty();
    roots.add(ca.cert.clone()).unwrap();
    let roots = Arc::new(roots);
    let verifier =
        rustls::server::WebPkiClientVerifier::builder_with_provider(roots.clone(), provider())
            .build()
            .unwrap();
    let server = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(server_certs, server_key)
        .unwrap();
    let client = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_client_auth_cert(client_certs, client_key)
        .unwrap();
    let (c, s) = tls_stacks(
        TlsClient::new(Arc::new(client), ServerName::try_from("localhost").unwrap()),
        TlsServer::new(Arc::new(server)),
    )
    .await;
    let seen = s.get::<TlsInfo>().unwrap();
    assert_eq!(seen.peer_subject.as_deref(), Some("CN=alice"));
    assert_eq!(seen.peer_certificates.len(), 1);
    assert_eq!(
        c.get::<TlsInfo>().unwrap().peer_subject.as_deref(),
        Some("CN=strata server")
    );
}

#[tokio::test]
async fn a_handshake_against_the_wrong_ca_names_the_cause_and_leaves_the_stack() {
    let (_, server) = tls_pair(&Ca::new("the server's CA"));
    let client = TlsClient::verifying([Ca::new("another CA").cert], "localhost").unwrap();
    let (a, b) = tokio::io::duplex(64 * 1024);
    let (mut c, mut s) = (Stack::new(a), Stack::new(b));
    let (pc, ps) = tokio::join!(c.push(client), s.push(server));
    let e = pc.unwrap_err();
    assert!(matches!(e, Error::Handshake { layer: "tls", .. }), "{e}");
    let text = e.to_string();
    assert!(text.contains("UnknownIssuer"), "{text}");
    // The server hears the client's alert.
    assert!(matches!(ps, Err(Error::Handshake { .. })));
    assert_eq!(c.names(), ["endpoint"]);
}

#[tokio::test]
async fn garbage_instead_of_a_client_hello_is_a_handshake_error() {
    let (_, server) = tls_pair(&Ca::new("Strata test CA"));
    let (mut a, b) = tokio::io::duplex(1024);
    let mut s = Stack::new(b);
    a.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let e = s.push(server).await.unwrap_err();
    assert!(matches!(e, Error::Handshake { .. }), "{e}");
}

/// A plaintext exchange on lines, as SMTP's: the client asks `STARTTLS` (with `extra` sent
/// in the same write), the server answers `GO` and pushes TLS. Returns the server's push.
async fn starttls(extra: &str) -> (Result<(), Error>, Stack, Stack) {
    let (client, server) = tls_pair(&Ca::new("Strata test CA"));
    let (a, b) = tokio::io::duplex(64 * 1024);
    let mut c = Stack::new(a);
    let serving = tokio::spawn(async move {
        let mut lines = Framed::new(Stack::new(b), LinesCodec::new());
        assert_eq!(lines.next().await.unwrap().unwrap(), "STARTTLS");
        lines.send(String::from("GO")).await.unwrap();
        // The codec may have read past the command: those bytes go back to the stack.
        let parts = lines.into_parts();
        let mut stack = parts.io;
        stack.put_back(&parts.read_buf);
        let pushed = stack.push(server).await;
        (pushed, stack)
    });
    c.write_all(format!("STARTTLS\r\n{extra}").as_bytes())
        .await
        .unwrap();
    let mut go = [0; 3];
    c.read_exact(&mut go).await.unwrap();
    assert_eq!(&go, b"GO\n");
    let (pushed, s) = if extra.is_empty() {
        let (client_push, served) = tokio::join!(c.push(client), serving);
        client_push.unwrap();
        served.unwrap()
    } else {
        serving.await.unwrap()
    };
    (pushed, c, s)
}

#[tokio::test]
async fn starttls_on_a_clean_boundary_goes_on_in_tls() {
    let (pushed, mut c, mut s) = starttls("").await;
    pushed.unwrap();
    assert_eq!(s.names(), ["tls", "endpoint"]);
    c.write_all(b"MAIL FROM:<a@b>\r\n").await.unwrap();
    let mut line = [0; 17];
    s.read_exact(&mut line).await.unwrap();
    assert_eq!(&line, b"MAIL FROM:<a@b>\r\n");
}

#[tokio::test]
async fn starttls_refuses_commands_injected_before_the_handshake() {
    let injected = "MAIL FROM:<evil@x>\r\n";
    let (pushed, _, s) = starttls(injected).await;
    let e = pushed.unwrap_err();
    assert!(
        matches!(e, Error::UnreadResidue { layer: "tls", bytes } if bytes == injected.len()),
        "{e}"
    );
    // Nothing was pushed, and the injected bytes are still there to inspect, never as TLS.
    assert_eq!(s.names(), ["endpoint"]);
    assert_eq!(s.unread(), injected.as_bytes());
}

#[tokio::test]
async fn a_half_close_passes_through_tls() {
    let (client, server) = tls_pair(&Ca::new("Strata test CA"));
    let (mut c, mut s) = tls_stacks(client, server).await;
    c.write_all(b"question").await.unwrap();
    // close_notify, then the pipe's write side: the client can still read.
    c.shutdown().await.unwrap();
    let mut asked = Vec::new();
    s.read_to_end(&mut asked).await.unwrap();
    assert_eq!(asked, b"question");
    s.write_all(b"answer").await.unwrap();
    s.shutdown().await.unwrap();
    let mut answer = Vec::new();
    c.read_to_end(&mut answer).await.unwrap();
    assert_eq!(answer, b"answer");
}

#[tokio::test]
async fn the_end_of_the_stream_without_close_notify_is_truncation() {
    let (client, server) = tls_pair(&Ca::new("Strata test CA"));
    let (a, b, cut) = support::cuttable_pipe();
    let (mut c, mut s) = (Stack::new(a), Stack::new(b));
    let (pc, ps) = tokio::join!(c.push(client), s.push(server));
    pc.unwrap();
    ps.unwrap();
    c.write_all(b"partial").await.unwrap();
    c.flush().await.unwrap();
    let mut got = [0; 7];
    s.read_exact(&mut got).await.unwrap();
    assert_eq!(&got, b"partial");
    // The stream below ends with no close_notify: an attacker's FIN.
    cut.cancel();
    let mut more = Vec::new();
    let e = s.read_to_end(&mut more).await.unwrap_err();
    assert!(more.is_empty());
    assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
    assert!(
        matches!(Error::from_io(&e), Some(Error::Truncated { layer: "tls" })),
        "{e}"
    );
}

#[tokio::test]
async fn popping_tls_sends_close_notify_and_plaintext_goes_on_below() {
    let (client, server) = tls_pair(&Ca::new("Strata test CA"));
    let (mut c, mut s) = tls_stacks(client, server).await;
    c.write_all(b"last secret").await.unwrap();
    c.pop().await.unwrap();
    assert_eq!(c.names(), ["endpoint"]);
    // The server reads TLS to its clean end (close_notify, not a truncation), pops its own.
    let mut got = Vec::new();
    s.read_to_end(&mut got).await.unwrap();
    assert_eq!(got, b"last secret");
    let residue = s.pop().await.unwrap();
    assert!(residue.unread.is_empty());
    // Plaintext both ways on the stream below (each side's close_notify was read).
    c.write_all(b"plain").await.unwrap();
    c.flush().await.unwrap();
    let mut plain = [0; 5];
    s.read_exact(&mut plain).await.unwrap();
    assert_eq!(&plain, b"plain");
}

#[tokio::test]
async fn pop_returns_what_the_layer_decoded_and_nobody_read() {
    let (client, server) = tls_pair(&Ca::new("Strata test CA"));
    let (mut c, mut s) = tls_stacks(client, server).await;
    s.write_all(b"abcdef").await.unwrap();
    s.flush().await.unwrap();
    // One byte read: TLS decrypted the whole record and holds the rest.
    let mut first = [0; 1];
    c.read_exact(&mut first).await.unwrap();
    c.put_back(b"a");
    let residue = c.pop().await.unwrap();
    assert_eq!(&residue.unread[..], b"abcdef");
    assert!(
        residue.unsent.is_empty(),
        "pop writes its last records below"
    );
    assert_eq!(c.names(), ["endpoint"]);
    assert!(c.unread().is_empty());
    assert!(matches!(c.pop().await, Err(Error::NothingToPop)));
}

#[tokio::test]
async fn tls_from_pem_files() {
    let dir = std::env::temp_dir().join(format!("strata-pem-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca = Ca::new("Strata test CA");
    let (ca_pem, cert_pem, key_pem) = support::write_pem_files(&ca, &dir);
    let server = TlsServer::from_pem_files(&cert_pem, &key_pem).unwrap();
    let client = TlsClient::from_pem_ca(&ca_pem, "localhost").unwrap();
    let (c, _s) = tls_stacks(client, server).await;
    assert_eq!(
        c.get::<TlsInfo>().unwrap().peer_subject.as_deref(),
        Some("CN=strata server")
    );
    let missing = dir.join("missing.pem");
    let e = TlsClient::from_pem_ca(&missing, "localhost").unwrap_err();
    assert!(
        matches!(&e, Error::Pem { path, .. } if *path == missing),
        "{e}"
    );
    // A key file where the certificates should be holds no certificate.
    let e = TlsServer::from_pem_files(&key_pem, &key_pem).unwrap_err();
    assert!(e.to_string().contains("no certificate"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn alpn_is_reported_on_both_ends() {
    let ca = Ca::new("Strata test CA");
    let (certs, key) = ca.identity("strata server", &["localhost"]);
    let mut roots = RootCertStore::empty();
    roots.add(ca.cert.clone()).unwrap();
    let mut client = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    client.alpn_protocols = vec![b"strata/1".to_vec(), b"h2".to_vec()];
    let mut server = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    server.alpn_protocols = vec![b"strata/1".to_vec()];
    let (c, s) = tls_stacks(
        TlsClient::new(Arc::new(client), ServerName::try_from("localhost").unwrap()),
        TlsServer::new(Arc::new(server)),
    )
    .await;
    for stack in [&c, &s] {
        let info = stack.get::<TlsInfo>().unwrap();
        assert_eq!(info.alpn.as_deref(), Some(&b"strata/1"[..]));
    }
}
