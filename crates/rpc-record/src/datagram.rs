//! [`RecordDatagram`]: the datagram transporter, one RPC message per datagram with no record
//! mark (Ocamlnet's `datagram_rpc_multiplex_controller`), over UDP and Unix datagram sockets.

use std::future::poll_fn;
use std::io;
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::io::ReadBuf;
use tokio::net::UdpSocket;
use tracing::{debug, trace};

use crate::{AcceptAll, Admission, Config, Error, Fragment, PeerAddr, Record, Rule, Xid};

/// A datagram socket RPC can run over: [`UdpSocket`] and, on Unix, `UnixDatagram`.
pub trait DatagramSocket {
    /// Receives one datagram into `buf` and says where it came from.
    fn poll_recv_from(
        &self,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<PeerAddr>>;
    /// Sends `buf` as one datagram to `dest`.
    fn poll_send_to(
        &self,
        cx: &mut Context<'_>,
        buf: &[u8],
        dest: &PeerAddr,
    ) -> Poll<io::Result<usize>>;
}

impl DatagramSocket for UdpSocket {
    fn poll_recv_from(
        &self,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<PeerAddr>> {
        UdpSocket::poll_recv_from(self, cx, buf).map_ok(PeerAddr::Inet)
    }

    fn poll_send_to(
        &self,
        cx: &mut Context<'_>,
        buf: &[u8],
        dest: &PeerAddr,
    ) -> Poll<io::Result<usize>> {
        match dest {
            PeerAddr::Inet(addr) => UdpSocket::poll_send_to(self, cx, buf, *addr),
            PeerAddr::Unix(_) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a UDP socket cannot send to a Unix address",
            ))),
        }
    }
}

#[cfg(unix)]
impl DatagramSocket for tokio::net::UnixDatagram {
    fn poll_recv_from(
        &self,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<PeerAddr>> {
        tokio::net::UnixDatagram::poll_recv_from(self, cx, buf).map_ok(PeerAddr::from)
    }

    fn poll_send_to(
        &self,
        cx: &mut Context<'_>,
        buf: &[u8],
        dest: &PeerAddr,
    ) -> Poll<io::Result<usize>> {
        match dest {
            PeerAddr::Unix(Some(path)) => {
                tokio::net::UnixDatagram::poll_send_to(self, cx, buf, path)
            }
            _ => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("a Unix datagram socket cannot send to {dest}"),
            ))),
        }
    }
}

/// RPC messages over a datagram socket: one message per datagram, no record mark, at most
/// [`Config::max_datagram`] bytes. Admission is asked once per datagram, after it has
/// arrived (the whole datagram is one fragment of its record).
///
/// Receiving is cancel-safe (a datagram is taken whole or not at all); so is sending.
///
/// ```
/// use rpc_record::{Config, PeerAddr, RecordDatagram};
/// use tokio::net::UdpSocket;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let mut server = RecordDatagram::new(UdpSocket::bind("127.0.0.1:0").await?, &Config::default());
/// let client = RecordDatagram::new(UdpSocket::bind("127.0.0.1:0").await?, &Config::default());
/// client.send_to(b"\0\0\0\x01call", &PeerAddr::Inet(server.get_ref().local_addr()?)).await?;
/// let (call, source) = server.recv().await?;
/// assert_eq!(&call[..], b"\0\0\0\x01call");
/// server.send_to(b"\0\0\0\x01reply", &source).await?; // the answer goes to the source
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct RecordDatagram<S> {
    socket: S,
    buf: Vec<u8>,
    max: usize,
    /// The limits `serve_datagram` applies.
    pub(crate) config: ServeLimits,
}

/// What a serving loop takes from [`Config`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct ServeLimits {
    pub max_calls: usize,
    pub reply_cache: usize,
    pub reply_cache_bytes: usize,
}

impl ServeLimits {
    pub fn of(config: &Config) -> ServeLimits {
        ServeLimits {
            max_calls: config.max_calls.max(1),
            reply_cache: config.reply_cache,
            reply_cache_bytes: config.reply_cache_bytes,
        }
    }
}

impl<S: DatagramSocket> RecordDatagram<S> {
    /// A transporter over `socket` with `config`'s datagram limit.
    pub fn new(socket: S, config: &Config) -> RecordDatagram<S> {
        RecordDatagram {
            socket,
            buf: Vec::new(),
            max: config.max_datagram,
            config: ServeLimits::of(config),
        }
    }

    /// Receives the next message and its source. A datagram over the limit is
    /// [`Error::DatagramTooLarge`]: it is gone, and the next call receives the next one.
    pub async fn recv(&mut self) -> Result<(Bytes, PeerAddr), Error> {
        loop {
            if let (Record::Accept(message), source) = self.recv_with(&mut AcceptAll).await? {
                return Ok((message, source));
            }
        }
    }

    /// Receives the next datagram and decides what it becomes through `admission`, asked
    /// once with the datagram's length.
    pub async fn recv_with(
        &mut self,
        admission: &mut impl Admission,
    ) -> Result<(Record, PeerAddr), Error> {
        poll_fn(|cx| self.poll_recv_with(cx, admission)).await
    }

    /// [`recv_with`](RecordDatagram::recv_with) as a poll, for hand-written drivers.
    pub fn poll_recv_with(
        &mut self,
        cx: &mut Context<'_>,
        admission: &mut impl Admission,
    ) -> Poll<Result<(Record, PeerAddr), Error>> {
        // One byte more than the limit, to tell a datagram that fits from one cut to fit.
        // The buffer is zeroed once and reused; each message is copied out of it.
        self.buf.resize(self.max + 1, 0);
        let mut read = ReadBuf::new(&mut self.buf);
        let source = match self.socket.poll_recv_from(cx, &mut read) {
            Poll::Ready(Ok(source)) => source,
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e.into())),
            Poll::Pending => return Poll::Pending,
        };
        let datagram = read.filled();
        let len = datagram.len();
        if len > self.max {
            debug!(%source, max = self.max, "datagram too large: dropped");
            return Poll::Ready(Err(Error::DatagramTooLarge { len, max: self.max }));
        }
        let fragment = Fragment {
            len: len as u32, // at most max_datagram, far below 2^31
            last: true,
            index: 0,
            so_far: len as u64,
        };
        let xid = || match datagram {
            [a, b, c, d, ..] => Ok(Xid(u32::from_be_bytes([*a, *b, *c, *d]))),
            _ => Err(Error::ShortRecord { len: len as u64 }),
        };
        let record = match admission.admit(&fragment) {
            Rule::Accept => Record::Accept(Bytes::copy_from_slice(datagram)),
            Rule::Deny => Record::Deny,
            Rule::Drop => Record::Drop,
            Rule::Reject => Record::Reject { xid: xid()? },
            Rule::RejectWith(error) => Record::RejectWith { xid: xid()?, error },
        };
        trace!(%source, %record, "in");
        Poll::Ready(Ok((record, source)))
    }

    /// Sends `message` as one datagram to `dest`.
    pub async fn send_to(&self, message: &[u8], dest: &PeerAddr) -> Result<(), Error> {
        poll_fn(|cx| self.poll_send_to(cx, message, dest)).await
    }

    /// [`send_to`](RecordDatagram::send_to) as a poll, for hand-written drivers.
    pub fn poll_send_to(
        &self,
        cx: &mut Context<'_>,
        message: &[u8],
        dest: &PeerAddr,
    ) -> Poll<Result<(), Error>> {
        if message.len() > self.max {
            return Poll::Ready(Err(Error::DatagramTooLarge {
                len: message.len(),
                max: self.max,
            }));
        }
        let sent = std::task::ready!(self.socket.poll_send_to(cx, message, dest))?;
        if sent < message.len() {
            return Poll::Ready(Err(Error::DatagramCut {
                sent,
                len: message.len(),
            }));
        }
        trace!(%dest, len = sent, "out");
        Poll::Ready(Ok(()))
    }

    /// The socket.
    pub fn get_ref(&self) -> &S {
        &self.socket
    }
}
