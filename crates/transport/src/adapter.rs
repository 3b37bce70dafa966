//! [`SocketAdapter`]: Kamaelia's ConnectedSocketAdapter done right. One task owns a stack
//! and a codec; an ordered inbox carries frames and commands, a bounded outbox carries what
//! was read, a token cancels, a watch reports state changes, and a terminal says how it
//! ended.

use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::{Sink, StreamExt};
use kernel_flows::Exit;
use tokio::io::{AsyncRead, AsyncWriteExt, ReadBuf, ReadHalf, WriteHalf};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::codec::{Decoder, Encoder, FramedRead, FramedWrite};
use tokio_util::sync::CancellationToken;
use tracing::debug;

use crate::{Error, Stack, Upgrade};

/// What the inbox carries, in order: frames to send and commands that apply after every
/// frame queued before them.
pub enum Outgoing<T> {
    /// Encode and send a frame.
    Send(T),
    /// Write everything queued so far to the stream, and flush it.
    Flush,
    /// Flush, then start a layer on top (STARTTLS). A security layer is refused, and the
    /// adapter faults, if the peer sent bytes past the frames read so far: they came before
    /// the handshake.
    Upgrade(Box<dyn Upgrade>),
    /// Flush, then shut the write side (through every layer: TLS sends close_notify). Reading
    /// goes on until the peer closes its side: a real half-close.
    FinishSending,
}

impl<T> fmt::Debug for Outgoing<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outgoing::Send(_) => f.write_str("Send(..)"),
            Outgoing::Flush => f.write_str("Flush"),
            Outgoing::Upgrade(layer) => write!(f, "Upgrade({})", layer.name()),
            Outgoing::FinishSending => f.write_str("FinishSending"),
        }
    }
}

/// Where the connection is, as the signal reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Both directions are open.
    Open,
    /// Both directions are open, and this layer was pushed last.
    Upgraded(&'static str),
    /// The peer closed its side (or the outbox was dropped); sending goes on.
    ReadClosed,
    /// This side finished sending; reading goes on.
    WriteClosed,
    /// Both directions are closed, or the adapter stopped.
    Closed,
}

/// What the signal watch holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Signal {
    /// The connection's state.
    pub phase: Phase,
    /// How many times the idle timeout has passed with no reading or writing (Ocamlnet's
    /// `set_timeout` notification): it counts up each time, and activity restarts the wait.
    pub idle: u64,
}

/// Sizes and the idle timeout of a [`SocketAdapter`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdapterConfig {
    /// How many frames the inbox holds (default 64): sends wait beyond it.
    pub inbox: usize,
    /// How many decoded frames the outbox holds (default 64): reading the socket stops while
    /// it is full.
    pub outbox: usize,
    /// While more than this many encoded bytes wait to be written, no frame is taken from the
    /// inbox (default 64 KiB).
    pub write_high_water: usize,
    /// Notify (in [`Signal::idle`]) when nothing was read or written for this long (default:
    /// never).
    pub idle_timeout: Option<Duration>,
}

impl Default for AdapterConfig {
    fn default() -> Self {
        AdapterConfig {
            inbox: 64,
            outbox: 64,
            write_high_water: 64 * 1024,
            idle_timeout: None,
        }
    }
}

/// The end of an adapter's task: awaits how it ended.
#[derive(Debug)]
pub struct Done(JoinHandle<Exit<Error>>);

impl Future for Done {
    type Output = Exit<Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Exit<Error>> {
        Pin::new(&mut self.0).poll(cx).map(|joined| match joined {
            Ok(exit) => exit,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => Exit::Interrupted,
        })
    }
}

/// A connection run by one task, talked to through boxes (Kamaelia's
/// ConnectedSocketAdapter, without its faults):
///
/// - `inbox`: frames and commands, applied in order ([`Outgoing`]). Send with
///   `inbox.reserve().await` then `permit.send(..)` for a cancel-safe send.
/// - `outbox`: the frames read, bounded: while it is full, the socket is not read, and the
///   task sleeps (no busy loop).
/// - `control`: cancel it to stop at once ([`Exit::Interrupted`]).
/// - `signal`: the [`Phase`] and the idle count, on every change.
/// - `done`: how it ended: [`Exit::Completed`] once both directions closed cleanly (the peer
///   closed and this side finished sending), [`Exit::Faulted`] with the error otherwise.
///
/// Dropping the inbox sender finishes sending (as [`Outgoing::FinishSending`]); dropping the
/// outbox receiver stops reading.
///
/// ```
/// use kernel_flows::Exit;
/// use tokio::io::{AsyncReadExt, AsyncWriteExt};
/// use tokio_util::codec::LinesCodec;
/// use transport::{AdapterConfig, Outgoing, SocketAdapter, Stack};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let (ours, mut theirs) = tokio::io::duplex(1024);
/// let mut adapter: SocketAdapter<String, String> =
///     SocketAdapter::spawn(Stack::new(ours), LinesCodec::new(), AdapterConfig::default());
/// let permit = adapter.inbox.reserve().await.unwrap();
/// permit.send(Outgoing::Send("hello".into()));
/// adapter.inbox.send(Outgoing::FinishSending).await.unwrap();
/// let mut said = String::new();
/// theirs.read_to_string(&mut said).await.unwrap();
/// assert_eq!(said, "hello\n");
/// theirs.write_all(b"bye\n").await.unwrap();
/// drop(theirs);
/// assert_eq!(adapter.outbox.recv().await.as_deref(), Some("bye"));
/// assert_eq!(adapter.outbox.recv().await, None);
/// assert!(matches!(adapter.done.await, Exit::Completed));
/// # }
/// ```
#[derive(Debug)]
pub struct SocketAdapter<In, Out> {
    /// Frames and commands to the connection.
    pub inbox: mpsc::Sender<Outgoing<Out>>,
    /// Frames from the connection.
    pub outbox: mpsc::Receiver<In>,
    /// Cancels the connection.
    pub control: CancellationToken,
    /// State changes.
    pub signal: watch::Receiver<Signal>,
    /// How it ended.
    pub done: Done,
}

impl<In: Send + 'static, Out: Send + 'static> SocketAdapter<In, Out> {
    /// Runs `stack` with `codec` in a task of its own.
    pub fn spawn<C>(stack: Stack, codec: C, config: AdapterConfig) -> SocketAdapter<In, Out>
    where
        C: Decoder<Item = In> + Encoder<Out> + Clone + Send + 'static,
        <C as Decoder>::Error: std::error::Error + Send + Sync + 'static,
        <C as Encoder<Out>>::Error: std::error::Error + Send + Sync + 'static,
    {
        let (inbox, inbox_rx) = mpsc::channel(config.inbox.max(1));
        let (outbox_tx, outbox) = mpsc::channel(config.outbox.max(1));
        let control = CancellationToken::new();
        let (signal_tx, signal) = watch::channel(Signal {
            phase: Phase::Open,
            idle: 0,
        });
        let task = Task {
            io: Some(Halves::new(stack, codec)),
            inbox: inbox_rx,
            outbox: Some(outbox_tx),
            control: control.clone(),
            signal: signal_tx,
            config,
            read_open: true,
            write_open: true,
        };
        let done = Done(tokio::spawn(task.run()));
        SocketAdapter {
            inbox,
            outbox,
            control,
            signal,
            done,
        }
    }
}

/// The stack split for reading and writing at once, each half with its codec.
struct Halves<C> {
    reader: FramedRead<Watched, C>,
    writer: FramedWrite<WriteHalf<Stack>, C>,
}

impl<C: Clone> Halves<C> {
    fn new(stack: Stack, codec: C) -> Halves<C> {
        let (read, write) = tokio::io::split(stack);
        Halves {
            reader: FramedRead::new(
                Watched {
                    inner: read,
                    seen: None,
                },
                codec.clone(),
            ),
            writer: FramedWrite::new(write, codec),
        }
    }
}

struct Task<C: Decoder, Out> {
    /// `None` only if an upgrade failed midway, which ends the task.
    io: Option<Halves<C>>,
    inbox: mpsc::Receiver<Outgoing<Out>>,
    /// Dropped when reading closes, so that the application's `recv` ends.
    outbox: Option<mpsc::Sender<C::Item>>,
    control: CancellationToken,
    signal: watch::Sender<Signal>,
    config: AdapterConfig,
    read_open: bool,
    write_open: bool,
}

/// What woke the adapter's loop.
enum Event<Out> {
    Read,
    ReadEnd(&'static str),
    Wrote,
    Command(Option<Outgoing<Out>>),
    Idle,
}

/// What one turn of reading brought.
enum Read<'a, T> {
    Frame(mpsc::Permit<'a, T>, T),
    End,
    OutboxGone,
    Failed(Error),
}

/// The read half, keeping the stack's own error when it passes one on (truncation, a chunk
/// over its limit): a codec may wrap the `io::Error` in a type of its own that hides it, as
/// tokio-util's `LinesCodecError` does, and the adapter still reports it as itself.
struct Watched {
    inner: ReadHalf<Stack>,
    seen: Option<Error>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Err(e)) = &polled {
            self.seen = match Error::from_io(e) {
                Some(&Error::Truncated { layer }) => Some(Error::Truncated { layer }),
                Some(&Error::ChunkTooLarge { len, max }) => Some(Error::ChunkTooLarge { len, max }),
                _ => None,
            };
        }
        polled
    }
}

fn codec_error(e: impl std::error::Error + Send + Sync + 'static) -> Error {
    let e: Box<dyn std::error::Error + Send + Sync> = Box::new(e);
    // An I/O error the codec passed on may hold this crate's own (truncation).
    match e.downcast::<io::Error>() {
        Ok(io) => match io.into_inner().map(|inner| inner.downcast::<Error>()) {
            Some(Ok(ours)) => *ours,
            Some(Err(other)) => Error::Io(io::Error::other(other)),
            None => Error::Io(io::ErrorKind::Other.into()),
        },
        Err(other) => Error::Codec(other),
    }
}

impl<C, Out> Task<C, Out>
where
    C: Decoder + Encoder<Out> + Clone + Send + 'static,
    <C as Decoder>::Error: std::error::Error + Send + Sync + 'static,
    <C as Encoder<Out>>::Error: std::error::Error + Send + Sync + 'static,
{
    async fn run(mut self) -> Exit<Error> {
        let exit = self.drive().await;
        self.set_phase(Phase::Closed);
        match &exit {
            Exit::Faulted(e) => debug!(error = %e, "socket adapter faulted"),
            other => debug!(exit = ?other, "socket adapter ended"),
        }
        exit
    }

    async fn drive(&mut self) -> Exit<Error> {
        let idle_timeout = self.config.idle_timeout;
        let idle = tokio::time::sleep(idle_timeout.unwrap_or(Duration::MAX / 4));
        tokio::pin!(idle);
        loop {
            if self.control.is_cancelled() {
                return Exit::Interrupted;
            }
            if !self.read_open && !self.write_open {
                return Exit::Completed;
            }
            let Some(io) = self.io.as_mut() else {
                return Exit::Faulted(Error::Lost);
            };
            let buffered = io.writer.write_buffer().len();
            let take = self.write_open && buffered < self.config.write_high_water;
            let flushing = buffered > 0;
            // Unbiased: a peer that keeps the socket readable cannot starve the writes.
            let event = tokio::select! {
                () = self.control.cancelled() => return Exit::Interrupted,
                read = read_one(&mut io.reader, self.outbox.as_ref()), if self.read_open => match read {
                    Read::Frame(permit, frame) => {
                        permit.send(frame);
                        Event::Read
                    }
                    Read::End => Event::ReadEnd("the peer closed its side"),
                    Read::OutboxGone => Event::ReadEnd("the outbox was dropped"),
                    Read::Failed(e) => return Exit::Faulted(e),
                },
                flushed = flush(&mut io.writer), if flushing => match flushed {
                    Ok(()) => Event::Wrote,
                    Err(e) => return Exit::Faulted(e),
                },
                command = self.inbox.recv(), if take => Event::Command(command),
                () = &mut idle, if idle_timeout.is_some() => Event::Idle,
            };
            let activity = match event {
                Event::Read | Event::Wrote => true,
                Event::ReadEnd(why) => {
                    self.close_read(why);
                    true
                }
                Event::Command(command) => {
                    if let Err(e) = self.apply(command).await {
                        return Exit::Faulted(e);
                    }
                    true
                }
                Event::Idle => {
                    self.signal.send_modify(|s| s.idle += 1);
                    debug!(timeout = ?idle_timeout, "idle");
                    true
                }
            };
            if let (true, Some(timeout)) = (activity, idle_timeout) {
                idle.as_mut().reset(Instant::now() + timeout);
            }
        }
    }

    fn io(&mut self) -> Result<&mut Halves<C>, Error> {
        self.io.as_mut().ok_or(Error::Lost)
    }

    /// Applies one inbox item (`None`: every sender is gone, so sending is finished).
    async fn apply(&mut self, command: Option<Outgoing<Out>>) -> Result<(), Error> {
        match command {
            Some(Outgoing::Send(frame)) => {
                let writer = &mut self.io()?.writer;
                // The encoder and the buffer are both the writer's: take the buffer out
                // (no copy) to encode into it.
                let mut buffer = std::mem::take(writer.write_buffer_mut());
                let encoded = writer.encoder_mut().encode(frame, &mut buffer);
                *writer.write_buffer_mut() = buffer;
                encoded.map_err(codec_error)
            }
            Some(Outgoing::Flush) => flush(&mut self.io()?.writer).await,
            Some(Outgoing::Upgrade(layer)) => self.upgrade(layer).await,
            Some(Outgoing::FinishSending) | None => {
                let writer = &mut self.io()?.writer;
                flush(writer).await?;
                writer.get_mut().shutdown().await?;
                self.write_open = false;
                let phase = if self.read_open {
                    Phase::WriteClosed
                } else {
                    Phase::Closed
                };
                self.set_phase(phase);
                Ok(())
            }
        }
    }

    /// Flushes, puts the stack back together with the bytes read past the last frame,
    /// pushes `layer` (which a security layer refuses if there are any), and splits it
    /// again.
    async fn upgrade(&mut self, layer: Box<dyn Upgrade>) -> Result<(), Error> {
        flush(&mut self.io()?.writer).await?;
        let name = layer.name();
        // Frames decoded before the upgrade and not yet taken from the outbox would reach the
        // application after it, as if protected: refused, as bytes read ahead are.
        let waiting = self
            .outbox
            .as_ref()
            .map_or(0, |o| o.max_capacity() - o.capacity());
        if layer.requires_clean_boundary() && waiting > 0 {
            debug!(
                layer = name,
                frames = waiting,
                "upgrade refused: frames not yet taken"
            );
            return Err(Error::UnreadFrames {
                layer: name,
                frames: waiting,
            });
        }
        let Halves { reader, writer } = self.io.take().ok_or(Error::Lost)?;
        let codec = reader.decoder().clone();
        let unread = reader.read_buffer().clone();
        let mut stack = reader.into_inner().inner.unsplit(writer.into_inner());
        stack.put_back(&unread);
        stack.push_boxed(layer).await?;
        debug!(layer = name, "upgraded");
        self.io = Some(Halves::new(stack, codec));
        self.set_phase(Phase::Upgraded(name));
        Ok(())
    }

    fn close_read(&mut self, why: &str) {
        debug!(why, "reading closed");
        self.read_open = false;
        self.outbox = None;
        let phase = if self.write_open {
            Phase::ReadClosed
        } else {
            Phase::Closed
        };
        self.set_phase(phase);
    }

    fn set_phase(&self, phase: Phase) {
        self.signal.send_if_modified(|s| {
            let changed = s.phase != phase;
            s.phase = phase;
            changed
        });
    }
}

async fn read_one<'a, C: Decoder>(
    reader: &mut FramedRead<Watched, C>,
    outbox: Option<&'a mpsc::Sender<C::Item>>,
) -> Read<'a, C::Item>
where
    C::Error: std::error::Error + Send + Sync + 'static,
{
    // Capacity first: while the outbox is full, the socket is not read.
    let Some(outbox) = outbox else {
        return Read::OutboxGone;
    };
    let Ok(permit) = outbox.reserve().await else {
        return Read::OutboxGone;
    };
    match reader.next().await {
        Some(Ok(frame)) => Read::Frame(permit, frame),
        Some(Err(e)) => Read::Failed(
            reader
                .get_mut()
                .seen
                .take()
                .unwrap_or_else(|| codec_error(e)),
        ),
        None => Read::End,
    }
}

async fn flush<C, Out>(writer: &mut FramedWrite<WriteHalf<Stack>, C>) -> Result<(), Error>
where
    C: Encoder<Out>,
    C::Error: std::error::Error + Send + Sync + 'static,
{
    std::future::poll_fn(|cx| Sink::<Out>::poll_flush(Pin::new(&mut *writer), cx))
        .await
        .map_err(codec_error)
}
