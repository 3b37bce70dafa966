//! [`UdpLink`]: a UDP socket that sends and receives several grams a syscall (UDP GSO and
//! GRO, and recvmmsg, where the kernel has them), through `quinn-udp`.

use std::io::{self, IoSliceMut};
use std::net::SocketAddr;
use std::ops::Range;
use std::task::{Context, Poll};

use bytes::Bytes;
use quinn_udp::{BATCH_SIZE, RecvMeta, Transmit, UdpSockRef, UdpSocketState};
use tokio::io::{Interest, ReadBuf};
use tokio::net::UdpSocket;

use crate::Link;

/// The receive buffer a [`Receiver`](crate::Receiver) gives a link: room for a batch of
/// coalesced datagrams (GRO gives up to 64 KiB of segments in one).
pub const RECV_BUFFER: usize = SLICES * 65536;

/// How many datagrams (each up to 64 KiB of coalesced grams) one `recvmmsg` takes.
const SLICES: usize = 4;

/// A UDP socket as memogram drives it: a memo's grams go out several to a `sendmsg` (UDP
/// generic segmentation offload: one syscall, and on loopback one trip through the stack,
/// for up to 64 grams of one size), and arrive several to a `recvmmsg`, coalesced by the
/// kernel where it can (GRO). The grams on the wire are the same datagrams, so hio peers
/// see no difference. Where the kernel has neither, it sends and receives one datagram a
/// syscall. Made by [`bind_udp`](crate::bind_udp).
///
/// Why `quinn-udp`: it is the maintained crate that QUIC stacks use for exactly this (GSO,
/// GRO, recvmmsg, their probing and fallbacks), and it needs no unsafe code here.
#[derive(Debug)]
pub struct UdpLink {
    socket: UdpSocket,
    state: UdpSocketState,
}

impl UdpLink {
    /// A link over `socket`, with the kernel's offloads probed and GRO turned on.
    pub fn new(socket: UdpSocket) -> io::Result<UdpLink> {
        let state = UdpSocketState::new(UdpSockRef::from(&socket))?;
        Ok(UdpLink { socket, state })
    }

    /// How many grams of one size go out in one `sendmsg` (1 where the kernel has no GSO).
    pub fn max_gso_segments(&self) -> usize {
        self.state.max_gso_segments()
    }

    /// Sends `contents`, datagrams of `segment` bytes (the last may be shorter), in one go.
    async fn send_segments(
        &self,
        contents: &[u8],
        segment: usize,
        dst: SocketAddr,
    ) -> io::Result<()> {
        let transmit = Transmit {
            destination: dst,
            ecn: None,
            contents,
            segment_size: (contents.len() > segment).then_some(segment),
            src_ip: None,
        };
        self.socket
            .async_io(Interest::WRITABLE, || {
                self.state
                    .try_send(UdpSockRef::from(&self.socket), &transmit)
            })
            .await
    }
}

impl UdpLink {
    /// The address it is bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// The socket underneath. Its receive side has GRO on: a plain `recv` on it may return
    /// several grams run together, with nothing to tell where each ends, so read through a
    /// [`Receiver`](crate::Receiver) (or [`Link::poll_recv_grams`]); sending on it is fine.
    pub fn get_ref(&self) -> &UdpSocket {
        &self.socket
    }
}

impl Link for UdpLink {
    type Addr = SocketAddr;
    const GRAM_SIZE: usize = <UdpSocket as Link>::GRAM_SIZE;
    const MAX_GRAM_SIZE: usize = <UdpSocket as Link>::MAX_GRAM_SIZE;

    fn send_to<'a>(
        &'a self,
        datagram: &'a [u8],
        dst: &'a SocketAddr,
    ) -> impl Future<Output = io::Result<usize>> + Send + 'a {
        self.socket.send_to(datagram, *dst)
    }

    fn poll_recv_from(
        &self,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<SocketAddr>> {
        self.socket.poll_recv_from(cx, buf)
    }

    /// Runs of grams of one length (all of a memo's but its first and last, as a rule) go
    /// out as one GSO send of up to [`max_gso_segments`](UdpLink::max_gso_segments) grams
    /// and 64 KiB; the rest one by one.
    async fn send_grams(&self, grams: &[Bytes], dst: &SocketAddr) -> io::Result<()> {
        let most = self.max_gso_segments().max(1);
        let mut batch = Vec::new();
        let mut at = 0;
        while at < grams.len() {
            let segment = grams[at].len();
            // The run: grams of this length, and one shorter to end it (GSO allows that).
            let mut end = at + 1;
            while end < grams.len()
                && end - at < most
                && (end - at + 1) * segment <= 65_000
                && grams[end - 1].len() == segment
                && grams[end].len() <= segment
            {
                end += 1;
            }
            if end - at == 1 {
                self.send_segments(&grams[at], segment, *dst).await?;
            } else {
                batch.clear();
                for gram in &grams[at..end] {
                    batch.extend_from_slice(gram);
                }
                self.send_segments(&batch, segment, *dst).await?;
            }
            at = end;
        }
        Ok(())
    }

    fn poll_recv_grams(
        &self,
        cx: &mut Context<'_>,
        buf: &mut [u8],
        got: &mut Vec<(Range<usize>, SocketAddr)>,
    ) -> Poll<io::Result<()>> {
        let chunk = 65536.min(buf.len() / BATCH_SIZE.clamp(1, SLICES)).max(1);
        loop {
            std::task::ready!(self.socket.poll_recv_ready(cx))?;
            let mut metas = [RecvMeta::default(); SLICES];
            // On the stack: a receive allocates nothing.
            let mut chunks = buf.chunks_mut(chunk);
            let mut slices: [IoSliceMut<'_>; SLICES] =
                std::array::from_fn(|_| IoSliceMut::new(chunks.next().unwrap_or_default()));
            let count = slices.iter().take_while(|slice| !slice.is_empty()).count();
            let received = self.socket.try_io(Interest::READABLE, || {
                self.state.recv(
                    UdpSockRef::from(&self.socket),
                    &mut slices[..count],
                    &mut metas[..count],
                )
            });
            match received {
                Ok(n) => {
                    for (i, meta) in metas.iter().take(n).enumerate() {
                        let start = i * chunk;
                        let stride = meta.stride.max(1);
                        let mut at = 0;
                        while at < meta.len {
                            let len = stride.min(meta.len - at);
                            got.push((start + at..start + at + len, meta.addr));
                            at += len;
                        }
                    }
                    return Poll::Ready(Ok(()));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}
