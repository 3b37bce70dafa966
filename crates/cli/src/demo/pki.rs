//! Certificates for the TLS step, made on the spot: a CA, and a server certificate it signs
//! for `localhost` and 127.0.0.1. Nothing is written to disk.

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use strata_transport::{TlsClient, TlsServer};

/// A client that trusts only a fresh CA, and a server with a certificate from it.
pub fn tls_pair() -> Result<(TlsClient, TlsServer), String> {
    let fail = |e: rcgen::Error| e.to_string();
    let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(fail)?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "strata demo CA");
    let ca_key = KeyPair::generate().map_err(fail)?;
    let ca_cert = ca.self_signed(&ca_key).map_err(fail)?;
    let issuer = Issuer::new(ca, ca_key);

    let mut leaf = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
        .map_err(fail)?;
    leaf.distinguished_name
        .push(DnType::CommonName, "strata demo server");
    let key = KeyPair::generate().map_err(fail)?;
    let cert = leaf.signed_by(&key, &issuer).map_err(fail)?;
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));

    let client =
        TlsClient::verifying([ca_cert.der().clone()], "127.0.0.1").map_err(|e| e.to_string())?;
    let server =
        TlsServer::with_identity(vec![cert.der().clone()], key).map_err(|e| e.to_string())?;
    Ok((client, server))
}
