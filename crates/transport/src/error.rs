//! The one error type of the crate.

use std::io;

/// What went wrong in a protocol stack, naming the layer it happened in.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A security layer was pushed while bytes read ahead of it were still unread: those
    /// bytes arrived before the handshake, so they must not be taken as protected (the
    /// STARTTLS injection class, CVE-2011-0411).
    #[error(
        "{bytes} bytes were read ahead before the {layer} layer started: a security layer \
         starts only on a clean boundary, and the bytes sent before it must not be trusted"
    )]
    UnreadResidue {
        /// The layer that refused to start.
        layer: &'static str,
        /// How many bytes were waiting.
        bytes: usize,
    },
    /// A security layer was queued on a socket adapter while frames decoded before it were
    /// still in the outbox: the application would take them as protected.
    #[error(
        "{frames} frames read before the {layer} layer were not yet taken from the outbox: a \
         security layer starts only once everything before it has been read"
    )]
    UnreadFrames {
        /// The layer that refused to start.
        layer: &'static str,
        /// How many frames were waiting.
        frames: usize,
    },
    /// A layer's handshake failed; the stack is left as it was before the push.
    #[error("the {layer} handshake failed: {source}")]
    Handshake {
        /// The layer whose handshake failed.
        layer: &'static str,
        /// Why, as the layer reported it (for TLS, rustls's alert or certificate error).
        #[source]
        source: io::Error,
    },
    /// A layer's handshake did not finish in time; the connection is given up.
    #[error("the {layer} handshake took longer than {after:?}")]
    HandshakeTimeout {
        /// The layer whose handshake was cut.
        layer: &'static str,
        /// The limit that applied.
        after: std::time::Duration,
    },
    /// The stream below ended without the layer's own end marker (for TLS, close_notify):
    /// what was read may have been cut short by an attacker.
    #[error("the stream ended without the {layer} layer's end marker: the data may be truncated")]
    Truncated {
        /// The layer whose end marker is missing.
        layer: &'static str,
    },
    /// A TLS configuration was refused by rustls (a bad certificate or key, a CA that cannot
    /// be a trust anchor).
    #[error("TLS configuration: {0}")]
    TlsConfig(#[from] rustls::Error),
    /// A PEM file that cannot be read, or holds nothing usable.
    #[error("cannot use the PEM file {path}: {reason}")]
    Pem {
        /// The file.
        path: std::path::PathBuf,
        /// What was wrong.
        reason: String,
    },
    /// A server name that is neither a DNS name nor an IP address.
    #[error("{name:?} is neither a DNS name nor an IP address to verify a server by")]
    ServerName {
        /// The name given.
        name: String,
    },
    /// A chunk's length prefix is over [`Chunked`](crate::Chunked)'s limit.
    #[error("a chunk of {len} bytes exceeds max_chunk ({max} bytes)")]
    ChunkTooLarge {
        /// The length the prefix announced.
        len: usize,
        /// The limit in force.
        max: usize,
    },
    /// `pop` on a stack that has only its endpoint left.
    #[error("the stack has no layer to pop: only its endpoint is left")]
    NothingToPop,
    /// A `push` or `pop` was cancelled midway, and the stack's layers went with it.
    #[error("the stack lost its layers: a push or pop was cancelled midway")]
    Lost,
    /// A socket adapter's codec failed to decode or encode a frame.
    #[error("the codec failed: {0}")]
    Codec(Box<dyn std::error::Error + Send + Sync>),
    /// Reading or writing through the stack failed.
    #[error("i/o error: {0}")]
    Io(#[from] io::Error),
}

impl Error {
    /// The error as an `io::Error`, for `AsyncRead`/`AsyncWrite`: the kind says what happened
    /// (`UnexpectedEof` for truncation), and the source is this error.
    pub(crate) fn into_io(self) -> io::Error {
        let kind = match &self {
            Error::Truncated { .. } => io::ErrorKind::UnexpectedEof,
            Error::Io(e) => e.kind(),
            _ => io::ErrorKind::Other,
        };
        match self {
            Error::Io(e) => e,
            other => io::Error::new(kind, other),
        }
    }

    /// The transport error inside an `io::Error` that a stack returned, if it holds one:
    /// how a reader of a [`Stack`](crate::Stack) tells truncation from other failures.
    pub fn from_io(e: &io::Error) -> Option<&Error> {
        e.get_ref().and_then(|inner| inner.downcast_ref::<Error>())
    }
}
