//! The TLS options: `packet serve` and `rpc serve` with `--tls-cert --tls-key`, `packet call`
//! and `rpc ping` with `--tls-ca`, with certificates made by the test.

use std::path::PathBuf;
use std::process::{Command, Output};

mod common;
#[path = "../../transport/tests/support/mod.rs"]
mod support;

use common::{Server, rpc_serve_with};
use support::{Ca, write_pem_files};

/// A fresh directory with ca.pem, cert.pem (for localhost and 127.0.0.1) and key.pem, and
/// another CA's certificate as other-ca.pem.
struct Pki {
    dir: PathBuf,
    ca: String,
    cert: String,
    key: String,
    other_ca: String,
}

impl Pki {
    fn new(name: &str) -> Pki {
        let dir = std::env::temp_dir().join(format!("strata-cli-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (ca, cert, key) = write_pem_files(&Ca::new("Strata test CA"), &dir);
        let other = dir.join("other");
        std::fs::create_dir_all(&other).unwrap();
        let (other_ca, _, _) = write_pem_files(&Ca::new("another CA"), &other);
        let text = |p: PathBuf| p.to_str().unwrap().to_owned();
        Pki {
            dir,
            ca: text(ca),
            cert: text(cert),
            key: text(key),
            other_ca: text(other_ca),
        }
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn strata(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(args)
        .output()
        .expect("strata runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn packet_call_over_tls_verifies_the_server_by_its_ip_address() {
    let pki = Pki::new("packet");
    let server = Server::start(&["--tls-cert", &pki.cert, "--tls-key", &pki.key]);
    let addr = server.addr.as_str();
    let out = strata(&[
        "packet",
        "call",
        addr,
        "0",
        "--payload",
        "hi",
        "--tls-ca",
        &pki.ca,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "{\"ok\":true,\"flags\":0,\"payload_hex\":\"6869\"}\n"
    );

    // The wrong CA: the handshake fails and says why.
    let out = strata(&["packet", "call", addr, "0", "--tls-ca", &pki.other_ca]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("TLS") && err.contains("UnknownIssuer"),
        "{err}"
    );

    // Plain packets to a TLS server get nowhere, and the server goes on serving.
    let out = strata(&["packet", "call", addr, "0", "--timeout", "5"]);
    assert_ne!(out.status.code(), Some(0));
    let out = strata(&["packet", "call", addr, "4", "--tls-ca", &pki.ca]);
    assert_eq!(
        text(&out.stdout),
        "{\"ok\":true,\"flags\":0,\"payload_hex\":\"68c3a96c6c6f\"}\n"
    );
}

#[test]
fn rpc_ping_over_tls() {
    let pki = Pki::new("rpc");
    let (_serve, tcp, _udp) = rpc_serve_with(
        300001,
        "1",
        &["--tls-cert", &pki.cert, "--tls-key", &pki.key],
    );
    let out = strata(&[
        "rpc", "ping", "--tcp", &tcp, "300001", "1", "--tls-ca", &pki.ca,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "program 300001 version 1 ready and waiting\n"
    );
    let out = strata(&[
        "rpc",
        "ping",
        "--tcp",
        &tcp,
        "300001",
        "1",
        "--tls-ca",
        &pki.other_ca,
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("UnknownIssuer"));
}

#[test]
fn tls_options_outside_tcp_are_usage_errors() {
    let pki = Pki::new("usage");
    let path = pki.dir.join("s.sock");
    let unix = path.to_str().unwrap();
    for args in [
        vec![
            "packet",
            "serve",
            "--unix",
            unix,
            "--tls-cert",
            &pki.cert,
            "--tls-key",
            &pki.key,
        ],
        vec!["packet", "call", "--unix", unix, "0", "--tls-ca", &pki.ca],
        vec![
            "rpc",
            "ping",
            "--udp",
            "127.0.0.1:1",
            "1",
            "--tls-ca",
            &pki.ca,
        ],
        vec!["packet", "serve", "--tls-cert", &pki.cert],
    ] {
        let out = strata(&args);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
}
