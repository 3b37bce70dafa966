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
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::codec::{Decoder, Encoder, FramedRead, FramedWrite};
use tokio_util::sync::CancellationToken;
use tracing::debug;

use crate::config::AdapterConfig;
use crate::{Error, Stack, Upgrade};

/// What the inbox carries, in order: frames to send and commands that apply after every
/// frame queued before them.
pub enum Outgoing<T> {
    /// Encode and send a frame.
    Send(T),
    /// Write everything queued so far to the stream, and flush it (reading goes on).
    Flush,
    /// Stop reading, flush, then start a layer on top, within
    /// [`AdapterConfig::handshake_timeout`]: the client side of STARTTLS, after it has read
    /// the server's go-ahead. A security layer is refused, and the adapter faults, if the
    /// peer sent bytes past the frames read so far: they came before the handshake.
    Upgrade(Box<dyn Upgrade>),
    /// Send this frame (the go-ahead) and start the layer right behind it: the server side
    /// of STARTTLS. Reading stops before the frame goes out, so the peer's handshake, sent as
    /// soon as it has the frame, reaches the layer and not the codec, while bytes that came
    /// before the frame are refused as for [`Upgrade`](Outgoing::Upgrade).
    SendThenUpgrade(T, Box<dyn Upgrade>),
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
            Outgoing::SendThenUpgrade(_, layer) => {
                write!(f, "SendThenUpgrade(.., {})", layer.name())
            }
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

/// The end of an adapter: awaits how it ended. [`Exit::Interrupted`] when its task was
/// aborted, or its [`Running`] future dropped, before it ended.
#[derive(Debug)]
pub struct Done(Ending);

#[derive(Debug)]
enum Ending {
    /// Run by [`SocketAdapter::spawn`]: a panic in the task is resumed here.
    Task(JoinHandle<Exit<Error>>),
    /// Run by whoever awaits the [`Running`] of [`SocketAdapter::new`].
    Local(oneshot::Receiver<Exit<Error>>),
}

impl Future for Done {
    type Output = Exit<Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Exit<Error>> {
        match &mut self.0 {
            Ending::Task(task) => Pin::new(task).poll(cx).map(|joined| match joined {
                Ok(exit) => exit,
                Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                Err(_) => Exit::Interrupted,
            }),
            Ending::Local(ended) => Pin::new(ended)
                .poll(cx)
                .map(|ended| ended.unwrap_or(Exit::Interrupted)),
        }
    }
}

/// The work of an adapter made by [`SocketAdapter::new`], to await (or spawn) where the
/// connection belongs: in the handler of an [`Interface`](crate::Interface), it counts
/// against the connection cap and is cut at the shutdown deadline with its connection.
/// Resolves when the adapter ends, with what [`SocketAdapter::done`] also says.
pub struct Running(Pin<Box<dyn Future<Output = ()> + Send>>);

impl fmt::Debug for Running {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Running(..)")
    }
}

impl Future for Running {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.0.as_mut().poll(cx)
    }
}

/// A connection run by one task, talked to through boxes (Kamaelia's
/// ConnectedSocketAdapter, without its faults):
///
/// - `inbox`: frames and commands, applied in order ([`Outgoing`]). Send with
///   `inbox.reserve().await` then `permit.send(..)` for a cancel-safe send.
/// - `outbox`: the frames read, bounded: while it is full, the socket is not read, and the
///   task sleeps (no busy loop).
/// - `control`: cancel it to stop at once ([`Exit::Interrupted`]), whatever the adapter is
///   doing (a flush to a peer that does not read, a handshake).
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
/// use strata_transport::{AdapterConfig, Outgoing, SocketAdapter, Stack};
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
    /// Runs `stack` with `codec` in a task of its own (untracked: inside an
    /// [`Interface`](crate::Interface)'s handler, prefer [`new`](SocketAdapter::new)).
    pub fn spawn<C>(stack: Stack, codec: C, config: AdapterConfig) -> SocketAdapter<In, Out>
    where
        C: Decoder<Item = In> + Encoder<Out> + Clone + Send + 'static,
        <C as Decoder>::Error: std::error::Error + Send + Sync + 'static,
        <C as Encoder<Out>>::Error: std::error::Error + Send + Sync + 'static,
    {
        let (task, with_done) = SocketAdapter::parts(stack, codec, config);
        with_done(Done(Ending::Task(tokio::spawn(task.run()))))
    }

    /// The adapter, and its work to await in the caller's own task: a connection handler
    /// that runs its adapter this way keeps it within the [`Interface`](crate::Interface)'s
    /// connection cap and shutdown.
    ///
    /// ```
    /// use tokio_util::codec::LinesCodec;
    /// use strata_transport::{AdapterConfig, Outgoing, SocketAdapter, Stack};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use tokio::io::AsyncReadExt;
    ///
    /// let (ours, mut theirs) = tokio::io::duplex(1024);
    /// let (adapter, running): (SocketAdapter<String, String>, _) =
    ///     SocketAdapter::new(Stack::new(ours), LinesCodec::new(), AdapterConfig::default());
    /// let talk = async move {
    ///     adapter.inbox.send(Outgoing::Send("hi".into())).await.unwrap();
    ///     adapter.inbox.send(Outgoing::FinishSending).await.unwrap();
    ///     let mut heard = String::new();
    ///     theirs.read_to_string(&mut heard).await.unwrap();
    ///     assert_eq!(heard, "hi\n");
    ///     drop(theirs);
    ///     adapter.done.await
    /// };
    /// let (exit, ()) = tokio::join!(talk, running);
    /// assert!(matches!(exit, kernel_flows::Exit::Completed));
    /// # }
    /// ```
    pub fn new<C>(
        stack: Stack,
        codec: C,
        config: AdapterConfig,
    ) -> (SocketAdapter<In, Out>, Running)
    where
        C: Decoder<Item = In> + Encoder<Out> + Clone + Send + 'static,
        <C as Decoder>::Error: std::error::Error + Send + Sync + 'static,
        <C as Encoder<Out>>::Error: std::error::Error + Send + Sync + 'static,
    {
        let (task, with_done) = SocketAdapter::parts(stack, codec, config);
        let (ended, done) = oneshot::channel();
        let adapter = with_done(Done(Ending::Local(done)));
        let running = Running(Box::pin(async move {
            let _ = ended.send(task.run().await);
        }));
        (adapter, running)
    }

    /// The adapter's task, and the adapter once it is given how its end is awaited.
    fn parts<C>(
        stack: Stack,
        codec: C,
        config: AdapterConfig,
    ) -> (Task<C, Out>, impl FnOnce(Done) -> SocketAdapter<In, Out>)
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
            io: Some(Halves::new(stack, codec.clone(), codec.clone())),
            fresh: codec,
            inbox: inbox_rx,
            outbox: Some(outbox_tx),
            control: control.clone(),
            signal: signal_tx,
            config,
            read_open: true,
            write_open: true,
            unflushed: false,
            finishing: false,
            upgrade: None,
        };
        let with_done = move |done| SocketAdapter {
            inbox,
            outbox,
            control,
            signal,
            done,
        };
        (task, with_done)
    }
}

/// The stack split for reading and writing at once, each half with a codec of its own.
struct Halves<C> {
    reader: FramedRead<Watched, C>,
    writer: FramedWrite<WriteHalf<Stack>, C>,
}

impl<C> Halves<C> {
    fn new(stack: Stack, decoder: C, encoder: C) -> Halves<C> {
        let (read, write) = tokio::io::split(stack);
        Halves {
            reader: FramedRead::new(
                Watched {
                    inner: read,
                    seen: None,
                },
                decoder,
            ),
            writer: FramedWrite::new(write, encoder),
        }
    }
}

struct Task<C: Decoder, Out> {
    /// `None` only if an upgrade failed midway, which ends the task.
    io: Option<Halves<C>>,
    /// The codec as it was given, for a reader that must start afresh after an upgrade.
    fresh: C,
    inbox: mpsc::Receiver<Outgoing<Out>>,
    /// Dropped when reading closes, so that the application's `recv` ends.
    outbox: Option<mpsc::Sender<C::Item>>,
    control: CancellationToken,
    signal: watch::Sender<Signal>,
    config: AdapterConfig,
    read_open: bool,
    write_open: bool,
    /// Bytes were written through the codec since the stack was last flushed: they may sit
    /// in a layer (TLS, Chunked) even when the codec's own buffer is empty.
    unflushed: bool,
    /// `FinishSending` came: the write side shuts once everything is flushed.
    finishing: bool,
    /// An upgrade to start once everything is flushed; reading stops meanwhile.
    upgrade: Option<Box<dyn Upgrade>>,
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
        let control = self.control.clone();
        loop {
            if control.is_cancelled() {
                return Exit::Interrupted;
            }
            if !self.read_open && !self.write_open {
                return Exit::Completed;
            }
            let Some(io) = self.io.as_mut() else {
                return Exit::Faulted(Error::Lost);
            };
            let buffered = io.writer.write_buffer().len();
            let flushing = self.unflushed || buffered > 0;
            if !flushing && (self.upgrade.is_some() || (self.finishing && self.write_open)) {
                // Everything is out: the upgrade or the half-close, which may wait on the
                // peer (a handshake, a flush through TLS), so under the cancel token.
                let step = async {
                    match self.upgrade.take() {
                        Some(layer) => self.upgrade(layer).await,
                        None => self.finish_sending().await,
                    }
                };
                let done = tokio::select! {
                    () = control.cancelled() => return Exit::Interrupted,
                    done = step => done,
                };
                if let Err(e) = done {
                    return Exit::Faulted(e);
                }
                if let Some(timeout) = idle_timeout {
                    idle.as_mut().reset(Instant::now() + timeout);
                }
                continue;
            }
            let take = self.write_open
                && !self.finishing
                && self.upgrade.is_none()
                && buffered < self.config.write_high_water.max(1);
            // Reading stops once an upgrade is queued: what comes next is its handshake.
            let reading = self.read_open && self.upgrade.is_none();
            // Unbiased: a peer that keeps the socket readable cannot starve the writes.
            let event = tokio::select! {
                () = control.cancelled() => return Exit::Interrupted,
                read = read_one(&mut io.reader, self.outbox.as_ref()), if reading => match read {
                    Read::Frame(permit, frame) => {
                        permit.send(frame);
                        Event::Read
                    }
                    Read::End => Event::ReadEnd("the peer closed its side"),
                    Read::OutboxGone => Event::ReadEnd("the outbox was dropped"),
                    Read::Failed(e) => return Exit::Faulted(e),
                },
                flushed = flush(&mut io.writer), if flushing => match flushed {
                    Ok(()) => {
                        self.unflushed = false;
                        Event::Wrote
                    }
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
                    if let Err(e) = self.apply(command) {
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

    /// Takes one inbox item (`None`: every sender is gone, so sending is finished). Nothing
    /// here waits: flushing, the half-close and upgrades happen in the loop, which goes on
    /// reading (but for an upgrade) and heeds the cancel token meanwhile.
    fn apply(&mut self, command: Option<Outgoing<Out>>) -> Result<(), Error> {
        match command {
            Some(Outgoing::Send(frame)) => self.encode(frame),
            Some(Outgoing::Flush) => {
                self.unflushed = true;
                Ok(())
            }
            Some(Outgoing::Upgrade(layer)) => {
                self.unflushed = true;
                self.upgrade = Some(layer);
                Ok(())
            }
            Some(Outgoing::SendThenUpgrade(frame, layer)) => {
                self.upgrade = Some(layer);
                self.encode(frame)
            }
            Some(Outgoing::FinishSending) | None => {
                self.unflushed = true;
                self.finishing = true;
                Ok(())
            }
        }
    }

    /// Encodes `frame` into the writer's buffer.
    fn encode(&mut self, frame: Out) -> Result<(), Error> {
        let writer = &mut self.io()?.writer;
        // The encoder and the buffer are both the writer's: take the buffer out (no copy)
        // to encode into it.
        let mut buffer = std::mem::take(writer.write_buffer_mut());
        let encoded = writer.encoder_mut().encode(frame, &mut buffer);
        *writer.write_buffer_mut() = buffer;
        self.unflushed = true;
        encoded.map_err(codec_error)
    }

    /// Everything is flushed: shuts the write side (through every layer).
    async fn finish_sending(&mut self) -> Result<(), Error> {
        self.io()?.writer.get_mut().shutdown().await?;
        self.write_open = false;
        let phase = if self.read_open {
            Phase::WriteClosed
        } else {
            Phase::Closed
        };
        self.set_phase(phase);
        Ok(())
    }

    /// Everything is flushed: puts the stack back together with the bytes read past the
    /// last frame, pushes `layer` (which a security layer refuses if there are any) within
    /// the handshake timeout, and splits it again.
    async fn upgrade(&mut self, layer: Box<dyn Upgrade>) -> Result<(), Error> {
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
        // Each half keeps its own codec, the writer its encoder's state. Bytes read ahead go
        // back below the new layer and are read through it again, so a decoder midway
        // through them (LinesCodec's scan position) starts afresh.
        let unread = reader.read_buffer().clone();
        let decoder = match unread.is_empty() {
            true => reader.decoder().clone(),
            false => self.fresh.clone(),
        };
        let encoder = writer.encoder().clone();
        let mut stack = reader.into_inner().inner.unsplit(writer.into_inner());
        stack.put_back(&unread);
        let after = self.config.handshake_timeout;
        match tokio::time::timeout(after, stack.push_boxed(layer)).await {
            Ok(pushed) => pushed?,
            Err(_) => {
                debug!(layer = name, ?after, "handshake timed out");
                return Err(Error::HandshakeTimeout { layer: name, after });
            }
        }
        debug!(layer = name, "upgraded");
        self.io = Some(Halves::new(stack, decoder, encoder));
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
