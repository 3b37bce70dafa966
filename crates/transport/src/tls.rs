//! The TLS layer: [`TlsClient`] and [`TlsServer`] (rustls through tokio-rustls, with the
//! `ring` provider), the [`Tls`] stream they make, and the [`TlsInfo`] it keeps.

use std::any::Any;
use std::io::{self, Read};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use std::path::Path;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, CommonState, ProtocolVersion, RootCertStore, ServerConfig};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_rustls::{TlsAcceptor, TlsConnector, TlsStream};
use tracing::debug;

use crate::Error;
use crate::layer::{Io, Layer, Layered, Residue};

/// The name of the TLS layer.
const NAME: &str = "tls";

/// What a TLS layer knows once its handshake is done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsInfo {
    /// The protocol version agreed (`TLSv1_3`, `TLSv1_2`).
    pub protocol_version: Option<ProtocolVersion>,
    /// The application protocol agreed by ALPN, if any.
    pub alpn: Option<Vec<u8>>,
    /// The server name: on a client, the name it verified the server by; on a server, the
    /// SNI the client sent, if any.
    pub server_name: Option<String>,
    /// The peer's certificate chain, its own certificate first; empty when the peer sent none
    /// (a client without a client certificate).
    pub peer_certificates: Vec<CertificateDer<'static>>,
    /// The subject of the peer's certificate, in RFC 4514 form (`CN=client,O=Strata`).
    pub peer_subject: Option<String>,
}

impl TlsInfo {
    fn of(common: &CommonState, server_name: Option<String>) -> TlsInfo {
        let peer_certificates: Vec<_> = common
            .peer_certificates()
            .map(|chain| chain.iter().map(|c| c.clone().into_owned()).collect())
            .unwrap_or_default();
        let peer_subject = peer_certificates.first().and_then(|der| {
            x509_parser::parse_x509_certificate(der)
                .ok()
                .map(|(_, cert)| cert.subject().to_string())
        });
        TlsInfo {
            protocol_version: common.protocol_version(),
            alpn: common.alpn_protocol().map(<[u8]>::to_vec),
            server_name,
            peer_certificates,
            peer_subject,
        }
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The client side of TLS: verifies the server's certificate by name, then speaks TLS.
#[derive(Clone)]
pub struct TlsClient {
    config: Arc<ClientConfig>,
    server_name: ServerName<'static>,
}

impl std::fmt::Debug for TlsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsClient")
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

impl TlsClient {
    /// A client with its own rustls config, verifying the server as `server_name`.
    pub fn new(config: Arc<ClientConfig>, server_name: ServerName<'static>) -> TlsClient {
        TlsClient {
            config,
            server_name,
        }
    }

    /// A client that trusts only the CA certificates `roots`, and verifies the server by
    /// `server_name`: a DNS name, or an IP address (`127.0.0.1`, `::1`).
    pub fn verifying(
        roots: impl IntoIterator<Item = CertificateDer<'static>>,
        server_name: &str,
    ) -> Result<TlsClient, Error> {
        let mut store = RootCertStore::empty();
        for root in roots {
            store.add(root)?;
        }
        let config = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .with_root_certificates(store)
            .with_no_client_auth();
        let server_name =
            ServerName::try_from(server_name.to_owned()).map_err(|_| Error::ServerName {
                name: server_name.to_owned(),
            })?;
        Ok(TlsClient::new(Arc::new(config), server_name))
    }

    /// [`verifying`](TlsClient::verifying) with the CA certificates of the PEM file `ca`.
    pub fn from_pem_ca(ca: impl AsRef<Path>, server_name: &str) -> Result<TlsClient, Error> {
        TlsClient::verifying(certificates_from_pem(ca.as_ref())?, server_name)
    }
}

/// The certificates of a PEM file, in order.
fn certificates_from_pem(path: &Path) -> Result<Vec<CertificateDer<'static>>, Error> {
    let pem = |e: rustls::pki_types::pem::Error| Error::Pem {
        path: path.to_owned(),
        reason: e.to_string(),
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(pem)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(pem)?;
    if certs.is_empty() {
        return Err(Error::Pem {
            path: path.to_owned(),
            reason: "no certificate in it".into(),
        });
    }
    Ok(certs)
}

impl Layer for TlsClient {
    type Wrapped<S: Io> = Tls<S>;
    const NAME: &'static str = NAME;
    const REQUIRES_CLEAN_BOUNDARY: bool = true;

    async fn wrap<S: Io>(self, inner: S) -> Result<Tls<S>, (Error, S)> {
        let name = self.server_name.to_str().into_owned();
        let connecting = TlsConnector::from(self.config).connect(self.server_name, inner);
        match connecting.into_fallible().await {
            Ok(stream) => {
                let info = TlsInfo::of(stream.get_ref().1, Some(name));
                debug!(?info.protocol_version, server = ?info.server_name, "TLS client handshake done");
                Ok(Tls::new(stream.into(), info))
            }
            Err((source, inner)) => Err((handshake_failed(source), inner)),
        }
    }
}

/// The server side of TLS: presents a certificate, and verifies a client's if its config
/// asks for one.
#[derive(Clone)]
pub struct TlsServer {
    config: Arc<ServerConfig>,
}

impl std::fmt::Debug for TlsServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsServer").finish_non_exhaustive()
    }
}

impl TlsServer {
    /// A server with its own rustls config.
    pub fn new(config: Arc<ServerConfig>) -> TlsServer {
        TlsServer { config }
    }

    /// A server presenting the certificate chain `certs` (its own first) with `key`, asking
    /// no client certificate.
    pub fn with_identity(
        certs: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> Result<TlsServer, Error> {
        let config = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(certs, key)?;
        Ok(TlsServer::new(Arc::new(config)))
    }

    /// [`with_identity`](TlsServer::with_identity) from PEM files: the certificate chain in
    /// `cert` (the server's own first) and its private key in `key` (PKCS#8, PKCS#1 or SEC1).
    pub fn from_pem_files(
        cert: impl AsRef<Path>,
        key: impl AsRef<Path>,
    ) -> Result<TlsServer, Error> {
        let certs = certificates_from_pem(cert.as_ref())?;
        let key_path = key.as_ref();
        let key = PrivateKeyDer::from_pem_file(key_path).map_err(|e| Error::Pem {
            path: key_path.to_owned(),
            reason: e.to_string(),
        })?;
        TlsServer::with_identity(certs, key)
    }
}

impl Layer for TlsServer {
    type Wrapped<S: Io> = Tls<S>;
    const NAME: &'static str = NAME;
    const REQUIRES_CLEAN_BOUNDARY: bool = true;

    async fn wrap<S: Io>(self, inner: S) -> Result<Tls<S>, (Error, S)> {
        let accepting = TlsAcceptor::from(self.config).accept(inner);
        match accepting.into_fallible().await {
            Ok(stream) => {
                let conn = stream.get_ref().1;
                let info = TlsInfo::of(conn, conn.server_name().map(str::to_owned));
                debug!(?info.protocol_version, peer = ?info.peer_subject, "TLS server handshake done");
                Ok(Tls::new(stream.into(), info))
            }
            Err((source, inner)) => Err((handshake_failed(source), inner)),
        }
    }
}

fn handshake_failed(source: io::Error) -> Error {
    debug!(error = %source, "TLS handshake failed");
    Error::Handshake {
        layer: NAME,
        source,
    }
}

/// A TLS stream over `S`, made by [`TlsClient`] or [`TlsServer`].
///
/// Reading the end of `S` without the peer's close_notify is an error of kind
/// `UnexpectedEof` holding [`Error::Truncated`]. Shutting it down sends close_notify, then
/// shuts `S`'s write side; reading goes on until the peer's close_notify (a half-close).
pub struct Tls<S> {
    stream: TlsStream<S>,
    info: TlsInfo,
}

impl<S> std::fmt::Debug for Tls<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

impl<S> Tls<S> {
    fn new(stream: TlsStream<S>, info: TlsInfo) -> Tls<S> {
        Tls { stream, info }
    }

    /// What the handshake established.
    pub fn info(&self) -> &TlsInfo {
        &self.info
    }

    /// The stream below.
    pub fn get_ref(&self) -> &S {
        self.stream.get_ref().0
    }
}

impl<S: Io> AsyncRead for Tls<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match ready!(Pin::new(&mut self.stream).poll_read(cx, buf)) {
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                debug!("the stream ended without close_notify");
                Poll::Ready(Err(Error::Truncated { layer: NAME }.into_io()))
            }
            other => Poll::Ready(other),
        }
    }
}

impl<S: Io> AsyncWrite for Tls<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

impl Layered for Tls<Box<dyn Layered>> {
    fn name(&self) -> &'static str {
        NAME
    }

    fn meta(&self) -> Option<&(dyn Any + Send + Sync)> {
        Some(&self.info)
    }

    fn below(&self) -> Option<&dyn Layered> {
        Some(&**self.get_ref())
    }

    fn peel(self: Box<Self>) -> Result<(Box<dyn Layered>, Residue), Box<dyn Layered>> {
        // close_notify goes out with the residue's unsent records: the peer sees TLS end
        // cleanly, not a truncation.
        let (inner, residue) = match self.stream {
            TlsStream::Client(s) => {
                let (inner, mut conn) = s.into_inner();
                conn.send_close_notify();
                (inner, residue_of(&mut conn))
            }
            TlsStream::Server(s) => {
                let (inner, mut conn) = s.into_inner();
                conn.send_close_notify();
                (inner, residue_of(&mut conn))
            }
        };
        Ok((inner, residue))
    }
}

/// The plaintext a TLS connection decrypted that nobody read, and the records it made that
/// were not written.
fn residue_of<D>(conn: &mut rustls::ConnectionCommon<D>) -> Residue {
    let mut unread = Vec::new();
    let mut chunk = [0; 4096];
    // The reader ends with WouldBlock (nothing more buffered) or an end-of-stream error.
    while let Ok(n @ 1..) = conn.reader().read(&mut chunk) {
        unread.extend_from_slice(&chunk[..n]);
    }
    let mut unsent = Vec::new();
    while conn.wants_write() {
        if conn.write_tls(&mut unsent).is_err() {
            break;
        }
    }
    Residue {
        unread: unread.into(),
        unsent: unsent.into(),
    }
}
