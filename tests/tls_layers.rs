//! Layers combined: packetstream and rpc-record over a TLS stack that `transport` built over
//! TCP, with the server side behind an `Interface`.

#[path = "../crates/transport/tests/support/mod.rs"]
mod support;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use strata::packetstream::{Config, PacketConnection, Request};
use strata::rpc_record::{self, Client, Peer, Program, RecordStream, Service, serve_stream};
use strata::transport::{
    self, Accepted, Address, Interface, Listener, Stack, TlsClient, TlsServer,
};
use support::Ca;
use tokio::net::TcpStream;

/// An interface on 127.0.0.1 serving TLS with `server`; returns it and its address.
async fn tls_interface(server: TlsServer) -> (Interface, String) {
    let mut interface = Interface::new(transport::Config::default());
    let listener = Listener::tcp("127.0.0.1:0").await.unwrap();
    let Address::Tcp(addr) = listener.local_addr().unwrap() else {
        panic!("a TCP address");
    };
    interface.listen(listener);
    interface.tls(server);
    (interface, addr.to_string())
}

async fn tls_client_stack(addr: &str, client: TlsClient) -> Stack {
    let mut stack = Stack::new(TcpStream::connect(addr).await.unwrap());
    stack.push(client).await.unwrap();
    stack
}

#[tokio::test]
async fn packetstream_over_a_tls_stack_over_tcp() {
    let ca = Ca::new("Strata test CA");
    let (certs, key) = ca.identity("strata server", &["localhost"]);
    let (interface, addr) = tls_interface(TlsServer::with_identity(certs, key).unwrap()).await;
    let serving = interface.serve(|c: Accepted| async move {
        let conn =
            PacketConnection::with_handler(c.stack, Config::default(), |rq: Request| async move {
                Ok::<_, Infallible>((rq.flags, rq.payload))
            })
            .unwrap();
        conn.closed().await.unwrap();
    });
    let client = TlsClient::verifying([ca.cert.clone()], "localhost").unwrap();
    let conn =
        PacketConnection::new(tls_client_stack(&addr, client).await, Config::default()).unwrap();
    let big = Bytes::from((0..200 * 1024).map(|i| i as u8).collect::<Vec<u8>>());
    let calls = (0..16u64).map(|i| {
        let (conn, big) = (conn.clone(), big.clone());
        async move { conn.request(0, i, big).await }
    });
    for (i, response) in futures_util::future::join_all(calls)
        .await
        .into_iter()
        .enumerate()
    {
        let response = response.unwrap();
        assert!(response.ok && response.flags == i as u64 && response.payload == big);
    }
    // The clean close goes through TLS both ways: ERQ, EOF, close_notify.
    conn.close().await.unwrap();
    let report = serving.shutdown(Duration::from_secs(5)).await;
    assert_eq!(
        (report.finished, report.cancelled),
        (0, 0),
        "the server ended on its own"
    );
}

#[tokio::test]
async fn rpc_over_tls_names_the_client_by_its_certificate() {
    let ca = Ca::new("Strata test CA");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    roots.add(ca.cert.clone()).unwrap();
    let roots = Arc::new(roots);
    let (server_certs, server_key) = ca.identity("strata server", &["localhost"]);
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        roots.clone(),
        provider.clone(),
    )
    .build()
    .unwrap();
    let server = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(server_certs, server_key)
        .unwrap();
    let (interface, addr) = tls_interface(TlsServer::new(Arc::new(server))).await;
    let (seen_tx, mut seen) = tokio::sync::mpsc::unbounded_channel();
    let serving = interface.serve(move |c: Accepted| {
        let seen_tx = seen_tx.clone();
        async move {
            // The transporter's peer: the address, and the certificate's subject as the
            // user name.
            let peer = Peer {
                user_name: c.peer.tls_subject.clone(),
                ..Peer::default()
            };
            let stream = RecordStream::new(c.stack, &rpc_record::Config::default()).with_peer(peer);
            seen_tx.send(stream.peer().user_name.clone()).unwrap();
            let _ = serve_stream(&mut { stream }, &Service::from(Program::new(300_000, [1]))).await;
        }
    });

    let (client_certs, client_key) = ca.identity("alice", &[]);
    let client = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_client_auth_cert(client_certs, client_key)
        .unwrap();
    let client = TlsClient::new(Arc::new(client), ServerName::try_from("localhost").unwrap());
    let stack = tls_client_stack(&addr, client).await;
    let config = rpc_record::Config::default();
    let rpc = Client::stream(RecordStream::new(stack, &config), &config);
    let reply = rpc.call(300_000, 1, 0, Bytes::new()).await.unwrap();
    assert!(reply.outcome.is_ok(), "{reply:?}");
    assert_eq!(seen.recv().await.unwrap().as_deref(), Some("CN=alice"));
    let peers = serving.connections().peers();
    assert_eq!(peers.len(), 1);
    assert_eq!(peers[0].tls_subject.as_deref(), Some("CN=alice"));
    drop(rpc);
    serving.shutdown(Duration::from_secs(5)).await;
}
