//! Certificates made in the test with rcgen: a CA and the identities it signs.

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use std::path::{Path, PathBuf};

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// A certificate authority.
pub struct Ca {
    /// Its certificate: what a peer that trusts it puts in its roots.
    pub cert: CertificateDer<'static>,
    issuer: Issuer<'static, KeyPair>,
}

impl Ca {
    /// A new CA named `name`.
    pub fn new(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.distinguished_name.push(DnType::CommonName, name);
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap().der().clone();
        Ca {
            cert,
            issuer: Issuer::new(params, key),
        }
    }

    /// A certificate chain and key for `common_name`, valid for the names `sans` (DNS names
    /// or IP addresses).
    pub fn identity(
        &self,
        common_name: &str,
        sans: &[&str],
    ) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
        let sans: Vec<String> = sans.iter().map(|s| s.to_string()).collect();
        let mut params = CertificateParams::new(sans).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap().der().clone();
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        (vec![cert], key)
    }
}

/// PEM of one DER item.
fn pem(label: &str, der: &[u8]) -> String {
    use base64::Engine;
    let text = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in text.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// Writes the CA certificate and a server identity for `localhost` as PEM files in `dir`:
/// (ca.pem, cert.pem, key.pem).
#[allow(dead_code)]
pub fn write_pem_files(ca: &Ca, dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let (certs, key) = ca.identity("strata server", &["localhost", "127.0.0.1"]);
    let paths = (
        dir.join("ca.pem"),
        dir.join("cert.pem"),
        dir.join("key.pem"),
    );
    std::fs::write(&paths.0, pem("CERTIFICATE", &ca.cert)).unwrap();
    std::fs::write(&paths.1, pem("CERTIFICATE", &certs[0])).unwrap();
    std::fs::write(&paths.2, pem("PRIVATE KEY", key.secret_der())).unwrap();
    paths
}

/// A pipe through a relay that can be cut: `cut` stops what goes from the first end to the
/// second and ends the second's reading there, with no end marker of any layer (an attacker
/// injecting a FIN). The other direction goes on.
#[allow(dead_code)] // Not every test file that shares this module cuts a pipe.
pub fn cuttable_pipe() -> (
    tokio::io::DuplexStream,
    tokio::io::DuplexStream,
    tokio_util::sync::CancellationToken,
) {
    use tokio::io::AsyncWriteExt;
    let (first, first_relay) = tokio::io::duplex(64 * 1024);
    let (second_relay, second) = tokio::io::duplex(64 * 1024);
    let (mut from_first, mut to_first) = tokio::io::split(first_relay);
    let (mut from_second, mut to_second) = tokio::io::split(second_relay);
    let cut = tokio_util::sync::CancellationToken::new();
    let cutting = cut.clone();
    tokio::spawn(async move {
        tokio::select! {
            () = cutting.cancelled() => {}
            _ = tokio::io::copy(&mut from_first, &mut to_second) => {}
        }
        let _ = to_second.shutdown().await;
    });
    tokio::spawn(async move {
        let _ = tokio::io::copy(&mut from_second, &mut to_first).await;
        let _ = to_first.shutdown().await;
    });
    (first, second, cut)
}
