//! [`Server`]: the tokio adapter of the LMTP server. It accepts connections on a TCP or Unix
//! listener (or takes any stream) and drives one [`Session`] per connection, asking a
//! [`Handler`] for every decision. It makes no protocol decision of its own.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};
use mailroom_smtp_proto::server::ServerConfig;
use mailroom_smtp_proto::{ForwardPath, Host, MailParams, RcptParams, Reply, ReversePath};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use crate::address::Address;
use crate::delivery::{Answer, Delivery};
use crate::session::{Event, Session};

/// Stop reading while this many reply octets wait to be written: a client that pipelines
/// without reading is throttled instead of growing our buffer.
const OUTPUT_HIGH_WATER: usize = 64 * 1024;
/// Octets read from the socket at a time.
const READ_BUFFER: usize = 16 * 1024;
/// How long the last replies (a 421, a 221) may take to leave before the socket is closed.
const FINAL_FLUSH: Duration = Duration::from_secs(10);

/// Who is on the other end of a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Peer {
    /// A TCP client.
    Tcp(SocketAddr),
    /// A client of a Unix socket (its credentials are the socket's permissions' business).
    Unix,
    /// A stream given to [`Server::serve_connection`].
    Other,
}

/// What the handler knows about one connection, and the state it keeps for it.
#[derive(Debug)]
pub struct Context<S> {
    /// The client.
    pub peer: Peer,
    /// The name given in the last LHLO.
    pub lhlo: Option<Host>,
    /// The accepted sender of the open transaction.
    pub from: Option<ReversePath>,
    /// The handler's own state for this connection (for example the spool of the message
    /// being received).
    pub state: S,
}

/// The application's side of an LMTP server: one instance shared by all connections;
/// per-connection data lives in [`Context::state`].
///
/// Every method may take its time (a user lookup, an fsync): the connection waits for the
/// answer, and replies stay in order.
pub trait Handler: Send + Sync + 'static {
    /// Per-connection state kept in [`Context::state`].
    type State: Default + Send + 'static;

    /// Accepts or refuses `MAIL FROM:`. Default: accept.
    fn mail(
        &self,
        ctx: &mut Context<Self::State>,
        from: &ReversePath,
        params: &MailParams,
    ) -> impl Future<Output = Result<(), Reply>> + Send {
        let _ = (ctx, from, params);
        async { Ok(()) }
    }

    /// Accepts or refuses `RCPT TO:` (`550 5.1.1` for an unknown user). Default: accept.
    fn rcpt(
        &self,
        ctx: &mut Context<Self::State>,
        to: &ForwardPath,
        params: &RcptParams,
    ) -> impl Future<Output = Result<(), Reply>> + Send {
        let _ = (ctx, to, params);
        async { Ok(()) }
    }

    /// The next piece of the message content (never the whole message at once).
    fn data_chunk(
        &self,
        ctx: &mut Context<Self::State>,
        chunk: Bytes,
    ) -> impl Future<Output = ()> + Send;

    /// The content is complete: deliver it to each of `delivery.recipients()` and answer with
    /// [`Delivery::answer`], one reply per recipient (`Ok` only once that recipient's copy is
    /// on stable storage).
    fn deliver(
        &self,
        ctx: &mut Context<Self::State>,
        delivery: Delivery,
    ) -> impl Future<Output = Answer> + Send;

    /// The transaction ended without a message: drop what was received for it. Default:
    /// nothing.
    fn reset(&self, ctx: &mut Context<Self::State>) -> impl Future<Output = ()> + Send {
        let _ = ctx;
        async {}
    }
}

/// A listening socket: TCP or Unix.
#[derive(Debug)]
pub enum Listener {
    /// A TCP listener.
    Tcp(TcpListener),
    /// A Unix stream socket listener.
    Unix(UnixListener),
}

impl Listener {
    /// Binds `address`. A Unix socket path that exists is not removed: remove a stale one
    /// first (a running server's socket must not be stolen).
    ///
    /// # Errors
    ///
    /// When the address cannot be bound.
    pub async fn bind(address: &Address) -> io::Result<Self> {
        Ok(match address {
            Address::Tcp(a) => Listener::Tcp(TcpListener::bind(a.as_str()).await?),
            Address::Unix(p) => Listener::Unix(UnixListener::bind(p)?),
        })
    }

    /// Binds a Unix socket at `path`.
    ///
    /// # Errors
    ///
    /// When the path cannot be bound.
    pub fn bind_unix(path: impl AsRef<Path>) -> io::Result<Self> {
        Ok(Listener::Unix(UnixListener::bind(path)?))
    }
}

impl From<TcpListener> for Listener {
    fn from(l: TcpListener) -> Self {
        Listener::Tcp(l)
    }
}

impl From<UnixListener> for Listener {
    fn from(l: UnixListener) -> Self {
        Listener::Unix(l)
    }
}

trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

impl Listener {
    async fn accept(&self) -> io::Result<(Box<dyn Stream>, Peer)> {
        match self {
            Listener::Tcp(l) => {
                let (tcp, peer) = l.accept().await?;
                // Replies are small and the client waits for each batch of them.
                let _ = tcp.set_nodelay(true);
                Ok((Box::new(tcp), Peer::Tcp(peer)))
            }
            Listener::Unix(l) => {
                let (unix, _) = l.accept().await?;
                Ok((Box::new(unix), Peer::Unix))
            }
        }
    }
}

/// An LMTP server over tokio: accepts connections and drives one [`Session`] each.
///
/// ```no_run
/// use bytes::Bytes;
/// use mailroom_lmtp::{Answer, Context, Delivery, Handler, Listener, Server, server_config};
///
/// struct Sink;
/// impl Handler for Sink {
///     type State = ();
///     async fn data_chunk(&self, _: &mut Context<()>, _: Bytes) {}
///     async fn deliver(&self, _: &mut Context<()>, delivery: Delivery) -> Answer {
///         delivery.answer_all(Ok("discarded".into()))
///     }
/// }
///
/// # async fn run() -> std::io::Result<()> {
/// let listener = Listener::bind_unix("/tmp/lmtp.sock")?;
/// Server::new(server_config("mda.example"), Sink).serve(listener).await
/// # }
/// ```
pub struct Server<H: Handler> {
    config: Arc<ServerConfig>,
    handler: Arc<H>,
    max_connections: usize,
    grace_period: Duration,
}

impl<H: Handler> Server<H> {
    /// A server with `config` (used in LMTP mode, see [`Session::new`]) and `handler`, at
    /// most 100 connections (Postfix `default_process_limit`, Dovecot's lmtp
    /// `process_limit` is similar) and a 30-second grace period at shutdown.
    pub fn new(config: ServerConfig, handler: H) -> Self {
        Self::with_shared_handler(config, Arc::new(handler))
    }

    /// Like [`Server::new`] with a handler the application keeps a handle to.
    pub fn with_shared_handler(mut config: ServerConfig, handler: Arc<H>) -> Self {
        config.lmtp = true;
        config.starttls = false;
        config.auth_mechanisms.clear();
        Self {
            config: Arc::new(config),
            handler,
            max_connections: 100,
            grace_period: Duration::from_secs(30),
        }
    }

    /// The most connections served at once; one more gets `421 4.7.0` and is closed.
    #[must_use]
    pub fn max_connections(mut self, max: usize) -> Self {
        self.max_connections = max;
        self
    }

    /// How long [`Server::serve_with_shutdown`] lets open sessions finish their transaction
    /// after the shutdown signal.
    #[must_use]
    pub fn grace_period(mut self, grace: Duration) -> Self {
        self.grace_period = grace;
        self
    }

    /// Serves `listener` until the process ends.
    ///
    /// # Errors
    ///
    /// Never in practice: accept errors (out of file descriptors) are waited out.
    pub async fn serve(self, listener: impl Into<Listener>) -> io::Result<()> {
        self.serve_with_shutdown(listener, std::future::pending())
            .await
    }

    /// Serves until `shutdown` completes; then stops accepting, lets each session finish its
    /// current transaction (idle sessions get `421 4.3.2` at once) for up to the grace
    /// period, and closes the rest.
    ///
    /// # Errors
    ///
    /// As [`Server::serve`].
    pub async fn serve_with_shutdown(
        self,
        listener: impl Into<Listener>,
        shutdown: impl Future<Output = ()>,
    ) -> io::Result<()> {
        let listener = listener.into();
        let permits = Arc::new(Semaphore::new(self.max_connections));
        let (stop, stopped) = watch::channel(false);
        let mut tasks = JoinSet::new();
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                accepted = listener.accept() => {
                    let Ok((io, peer)) = accepted else {
                        // EMFILE and friends: wait instead of spinning.
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    };
                    match Arc::clone(&permits).try_acquire_owned() {
                        Ok(permit) => {
                            let config = Arc::clone(&self.config);
                            let handler = Arc::clone(&self.handler);
                            let stopped = stopped.clone();
                            tasks.spawn(async move {
                                run(config, handler, io, peer, stopped).await;
                                drop(permit);
                            });
                        }
                        Err(_) => {
                            let text = format!("421 4.7.0 {} Error: too many connections\r\n", self.config.hostname);
                            tasks.spawn(refuse(io, text));
                        }
                    }
                }
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            }
        }
        drop(listener);
        let _ = stop.send(true);
        let drained = async { while tasks.join_next().await.is_some() {} };
        if tokio::time::timeout(self.grace_period, drained)
            .await
            .is_err()
        {
            tasks.shutdown().await;
        }
        Ok(())
    }

    /// Serves one connection on any stream (a socket pair, a stream from another listener,
    /// inetd-style stdin/stdout) until the session ends.
    pub async fn serve_connection<IO>(&self, io: IO, peer: Peer)
    where
        IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (_stop, stopped) = watch::channel(false);
        run(
            Arc::clone(&self.config),
            Arc::clone(&self.handler),
            Box::new(io),
            peer,
            stopped,
        )
        .await;
    }
}

/// Over the connection limit: say so and close.
async fn refuse(mut io: Box<dyn Stream>, text: String) {
    let _ = tokio::time::timeout(FINAL_FLUSH, async {
        io.write_all(text.as_bytes()).await?;
        io.shutdown().await
    })
    .await;
}

async fn run<H: Handler>(
    config: Arc<ServerConfig>,
    handler: Arc<H>,
    io: Box<dyn Stream>,
    peer: Peer,
    mut stopped: watch::Receiver<bool>,
) {
    let mut session = Session::new(config, Instant::now());
    let mut ctx = Context {
        peer,
        lhlo: None,
        from: None,
        state: H::State::default(),
    };
    drive(&*handler, io, &mut session, &mut ctx, &mut stopped).await;
    if ctx.from.take().is_some() {
        handler.reset(&mut ctx).await;
    }
}

/// Runs the session over `io` until it closes. Reads and writes concurrently, so a peer that
/// writes a lot while our replies wait cannot deadlock us.
async fn drive<H: Handler>(
    handler: &H,
    io: Box<dyn Stream>,
    session: &mut Session,
    ctx: &mut Context<H::State>,
    stopped: &mut watch::Receiver<bool>,
) {
    let (mut reader, mut writer) = tokio::io::split(io);
    let mut out = BytesMut::new();
    let mut buf = vec![0u8; READ_BUFFER];
    let mut stop_seen = *stopped.borrow();
    if stop_seen {
        session.handle_shutdown();
    }
    loop {
        let mut closed = false;
        while let Some(event) = session.poll_event() {
            match event {
                Event::Closed => closed = true,
                other => {
                    if !handle(handler, other, session, ctx).await {
                        // An answer the session would not take: it can only wait forever
                        // for the right one, so the connection ends (the client retries).
                        return;
                    }
                }
            }
        }
        while let Some(bytes) = session.poll_transmit() {
            out.extend_from_slice(&bytes);
        }
        if closed {
            let _ = tokio::time::timeout(FINAL_FLUSH, async {
                writer.write_all(&out).await?;
                writer.flush().await?;
                writer.shutdown().await
            })
            .await;
            return;
        }
        let deadline = session.poll_timeout();
        let can_read = session.wants_input() && out.len() < OUTPUT_HIGH_WATER;
        let timer = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(tokio::time::Instant::from_std(d)).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            changed = stopped.changed(), if !stop_seen => {
                stop_seen = true;
                if changed.is_err() || *stopped.borrow() {
                    session.handle_shutdown();
                }
            }
            () = timer => session.handle_timeout(Instant::now()),
            written = writer.write(&out), if !out.is_empty() => match written {
                Ok(n) if n > 0 => out.advance(n),
                _ => {
                    session.handle_eof();
                    out.clear();
                }
            },
            read = reader.read(&mut buf), if can_read => match read {
                Ok(0) | Err(_) => session.handle_eof(),
                Ok(n) => session.handle_input(buf.get(..n).unwrap_or_default()),
            },
        }
    }
}

/// Hands one event to the handler and its answer back to the session; false when the
/// session refused the answer.
async fn handle<H: Handler>(
    h: &H,
    event: Event,
    session: &mut Session,
    ctx: &mut Context<H::State>,
) -> bool {
    let answered = match event {
        Event::Lhlo { host } => {
            ctx.from = None;
            ctx.lhlo = Some(host);
            Ok(())
        }
        Event::Mail(m) => {
            let answer = h.mail(ctx, &m.from, &m.params).await;
            if answer.is_ok() {
                ctx.from = Some(m.from);
            }
            session.answer_mail(m.token, answer)
        }
        Event::Rcpt(r) => {
            let answer = h.rcpt(ctx, &r.to, &r.params).await;
            session.answer_rcpt(r.token, answer)
        }
        Event::DataChunk(chunk) => {
            h.data_chunk(ctx, chunk).await;
            Ok(())
        }
        Event::Deliver(delivery) => {
            let answer = h.deliver(ctx, delivery).await;
            ctx.from = None;
            session.answer(answer)
        }
        Event::Reset => {
            ctx.from = None;
            h.reset(ctx).await;
            Ok(())
        }
        _ => Ok(()),
    };
    answered.is_ok()
}
