//! The TLS options of the servers and clients: `--tls-cert FILE --tls-key FILE` to serve TLS,
//! `--tls-ca FILE` to call a TLS server, verified against that CA.

use std::path::PathBuf;

use strata_transport::{Stack, TlsClient, TlsServer};

use crate::error::CliError;

/// `--tls-cert` and `--tls-key` of a server.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeTls {
    /// Serve TLS with this PEM certificate chain (the server's own first); needs --tls-key.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
}

impl ServeTls {
    /// The TLS server layer asked for, if any.
    pub fn server(&self) -> Result<Option<TlsServer>, CliError> {
        match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => Ok(Some(TlsServer::from_pem_files(cert, key)?)),
            _ => Ok(None),
        }
    }
}

/// `--tls-ca` of a client.
#[derive(Debug, Clone, clap::Args)]
pub struct CallTls {
    /// Speak TLS, verifying the server's certificate against the CA certificates in this
    /// PEM file, by the host of the address (a DNS name or an IP address).
    #[arg(long, value_name = "FILE")]
    tls_ca: Option<PathBuf>,
}

impl CallTls {
    /// The TLS client layer asked for, verifying the server named by the host of `addr`
    /// (`HOST:PORT`, `[V6]:PORT`).
    pub fn client(&self, addr: &str) -> Result<Option<TlsClient>, CliError> {
        let Some(ca) = &self.tls_ca else {
            return Ok(None);
        };
        let host = addr.rsplit_once(':').map_or(addr, |(host, _)| host);
        let host = host.trim_start_matches('[').trim_end_matches(']');
        Ok(Some(TlsClient::from_pem_ca(ca, host)?))
    }

    /// Whether TLS was asked for.
    pub fn is_on(&self) -> bool {
        self.tls_ca.is_some()
    }
}

/// A stack over `io`, with TLS pushed when `layer` is given.
pub async fn stack(
    io: impl strata_transport::Io,
    layer: Option<impl strata_transport::Upgrade>,
) -> Result<Stack, CliError> {
    let mut stack = Stack::new(io);
    if let Some(layer) = layer {
        stack.push(layer).await?;
    }
    Ok(stack)
}
