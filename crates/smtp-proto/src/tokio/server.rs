//! [`Server`]: accepts SMTP connections on a `TcpListener` and drives one
//! [`ServerSession`] per connection, asking a [`Handler`] for every decision.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use crate::server::{Credentials, Event, ServerConfig, ServerSession};
use crate::types::address::{ForwardPath, Host, ReversePath};
use crate::types::param::{MailParams, RcptParams};
use crate::types::reply::{Reply, ReplyCode};

/// Stop reading from a client while this many reply octets wait to be written: a client
/// that pipelines without reading its replies is throttled instead of growing our buffer.
const OUTPUT_HIGH_WATER: usize = 64 * 1024;
/// Octets read from the socket at a time.
const READ_BUFFER: usize = 16 * 1024;
/// How long the last replies (a 421, a 221) may take to leave before the socket is closed.
const FINAL_FLUSH: Duration = Duration::from_secs(10);

/// What the handler knows about one connection, and the state it keeps for it.
#[derive(Debug)]
pub struct Context<S> {
    /// The client's address.
    pub peer: SocketAddr,
    /// Whether the connection is under TLS.
    pub tls: bool,
    /// The name given in the last EHLO/HELO.
    pub helo: Option<Host>,
    /// The user name the client authenticated as.
    pub authenticated: Option<String>,
    /// The accepted sender of the open transaction.
    pub from: Option<ReversePath>,
    /// The accepted recipients of the open transaction, in order.
    pub recipients: Vec<ForwardPath>,
    /// The handler's own state for this connection (for example the spool file of the
    /// message being received).
    pub state: S,
}

impl<S> Context<S> {
    fn clear_envelope(&mut self) {
        self.from = None;
        self.recipients.clear();
    }
}

/// The application's side of an SMTP server: one instance shared (through an `Arc`) by all
/// connections; per-connection data lives in [`Context::state`].
///
/// Every method may take its time (a policy lookup, an fsync): the connection waits for
/// the answer, and replies stay in order.
pub trait Handler: Send + Sync + 'static {
    /// Per-connection state kept in [`Context::state`]; `()` when not needed.
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

    /// Accepts or refuses `RCPT TO:`. Default: accept.
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

    /// The content is complete (`size` octets): store it durably, then return its queue id
    /// (`250 2.0.0 Ok: queued as ID`), or the refusal.
    fn data_end(
        &self,
        ctx: &mut Context<Self::State>,
        size: u64,
    ) -> impl Future<Output = Result<String, Reply>> + Send;

    /// The transaction ended without a message (RSET, a refused message, the connection
    /// closing): drop what was received for it. Default: nothing.
    fn reset(&self, ctx: &mut Context<Self::State>) -> impl Future<Output = ()> + Send {
        let _ = ctx;
        async {}
    }

    /// Checks AUTH credentials. Default: refuse (`535 5.7.8`).
    fn auth(
        &self,
        ctx: &mut Context<Self::State>,
        credentials: &Credentials,
    ) -> impl Future<Output = Result<(), Reply>> + Send {
        let _ = (ctx, credentials);
        async {
            Err(Reply::new(
                ReplyCode::AUTH_FAILED,
                "5.7.8 Error: authentication failed",
            ))
        }
    }
}

/// An SMTP server over tokio: accepts connections and drives one [`ServerSession`] each.
///
/// ```no_run
/// use bytes::Bytes;
/// use mailroom_smtp_proto::Reply;
/// use mailroom_smtp_proto::server::ServerConfig;
/// use mailroom_smtp_proto::tokio::{Context, Handler, Server};
///
/// struct Sink;
/// impl Handler for Sink {
///     type State = ();
///     async fn data_chunk(&self, _: &mut Context<()>, _: Bytes) {}
///     async fn data_end(&self, _: &mut Context<()>, size: u64) -> Result<String, Reply> {
///         Ok(format!("{size}"))
///     }
/// }
///
/// # async fn run() -> std::io::Result<()> {
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:2525").await?;
/// Server::new(ServerConfig::new("mx.example.org"), Sink).serve(listener).await
/// # }
/// ```
pub struct Server<H: Handler> {
    config: ServerConfig,
    handler: Arc<H>,
    tls: Option<TlsAcceptor>,
    implicit_tls: bool,
    max_connections: usize,
    per_client: Option<PerClient>,
    grace_period: Duration,
}

/// Whether a client is exempt from the per-client connection limit.
type Exempt = Arc<dyn Fn(IpAddr) -> bool + Send + Sync>;

/// The per-client connection limit and the open connections by client address.
struct PerClient {
    max: usize,
    exempt: Exempt,
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

/// One open connection counted for its client; uncounted when dropped.
struct ClientSlot {
    ip: IpAddr,
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        let mut open = self
            .open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(n) = open.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

impl PerClient {
    /// Counts a new connection from `ip`: `Ok` with its slot (or `None` when exempt), `Err`
    /// when the client already has `max` connections open.
    fn admit(&self, ip: IpAddr) -> Result<Option<ClientSlot>, ()> {
        if (self.exempt)(ip) {
            return Ok(None);
        }
        let mut open = self
            .open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let n = open.entry(ip).or_insert(0);
        if *n >= self.max {
            return Err(());
        }
        *n += 1;
        Ok(Some(ClientSlot {
            ip,
            open: Arc::clone(&self.open),
        }))
    }
}

impl<H: Handler> Server<H> {
    /// A server with `config` and `handler`, at most 100 connections (Postfix
    /// `default_process_limit`) and a 30-second grace period at shutdown.
    pub fn new(config: ServerConfig, handler: H) -> Self {
        Self::with_shared_handler(config, Arc::new(handler))
    }

    /// Like [`Server::new`] with a handler the application keeps a handle to.
    pub fn with_shared_handler(config: ServerConfig, handler: Arc<H>) -> Self {
        Self {
            config,
            handler,
            tls: None,
            implicit_tls: false,
            max_connections: 100,
            per_client: None,
            grace_period: Duration::from_secs(30),
        }
    }

    /// Offers STARTTLS with this rustls configuration (build it with the ring provider).
    #[must_use]
    pub fn with_tls(mut self, tls: Arc<rustls::ServerConfig>) -> Self {
        self.config.starttls = true;
        self.tls = Some(TlsAcceptor::from(tls));
        self
    }

    /// Serves TLS from the first octet (RFC 8314 implicit TLS, the submissions port 465) with
    /// this rustls configuration: the handshake comes before the greeting, and STARTTLS is not
    /// offered. A failed or slow (past `command_timeout`) handshake closes the connection.
    #[must_use]
    pub fn with_implicit_tls(mut self, tls: Arc<rustls::ServerConfig>) -> Self {
        self.config.starttls = false;
        self.tls = Some(TlsAcceptor::from(tls));
        self.implicit_tls = true;
        self
    }

    /// The most connections served at once; one more gets `421 4.7.0` and is closed.
    #[must_use]
    pub fn max_connections(mut self, max: usize) -> Self {
        self.max_connections = max;
        self
    }

    /// The most connections one client address may have open at once (Postfix's
    /// `smtpd_client_connection_count_limit`; 0 means no limit); one more gets
    /// `421 4.7.0 <hostname> Error: too many connections from <ip>` and is closed. Clients for
    /// which `exempt` is true are not counted (Postfix's
    /// `smtpd_client_event_limit_exceptions`, `$mynetworks` by default).
    #[must_use]
    pub fn max_connections_per_client(
        mut self,
        max: usize,
        exempt: impl Fn(IpAddr) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.per_client = (max > 0).then(|| PerClient {
            max,
            exempt: Arc::new(exempt),
            open: Arc::new(Mutex::new(HashMap::new())),
        });
        self
    }

    /// How long [`Server::serve_with_shutdown`] lets open sessions finish after the
    /// shutdown signal before cutting them off.
    #[must_use]
    pub fn grace_period(mut self, grace: Duration) -> Self {
        self.grace_period = grace;
        self
    }

    /// Serves until the process ends.
    ///
    /// # Errors
    ///
    /// Never in practice: accept errors (out of file descriptors, a connection reset
    /// before accept) are waited out, not returned.
    pub async fn serve(self, listener: TcpListener) -> io::Result<()> {
        self.serve_with_shutdown(listener, std::future::pending())
            .await
    }

    /// Serves until `shutdown` completes; then stops accepting, lets each session finish
    /// its current transaction (idle sessions get `421 4.3.2` at once) for up to the grace
    /// period, and closes the rest.
    ///
    /// # Errors
    ///
    /// As [`Server::serve`].
    pub async fn serve_with_shutdown(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> io::Result<()> {
        let config = Arc::new(self.config);
        let permits = Arc::new(Semaphore::new(self.max_connections));
        let (stop, stopped) = watch::channel(false);
        let mut tasks = JoinSet::new();
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                accepted = listener.accept() => {
                    let (tcp, peer) = match accepted {
                        Ok(a) => a,
                        Err(_) => {
                            // EMFILE and friends: wait instead of spinning.
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    };
                    let slot = match self.per_client.as_ref().map(|p| p.admit(peer.ip())) {
                        None | Some(Ok(None)) => None,
                        Some(Ok(Some(slot))) => Some(slot),
                        Some(Err(())) => {
                            let text = format!(
                                "421 4.7.0 {} Error: too many connections from {}\r\n",
                                config.hostname,
                                peer.ip()
                            );
                            tasks.spawn(refuse(tcp, text));
                            continue;
                        }
                    };
                    match Arc::clone(&permits).try_acquire_owned() {
                        Ok(permit) => {
                            let conn = Connection {
                                config: Arc::clone(&config),
                                handler: Arc::clone(&self.handler),
                                tls: self.tls.clone(),
                                implicit_tls: self.implicit_tls,
                                stopped: stopped.clone(),
                            };
                            tasks.spawn(async move {
                                conn.run(tcp, peer).await;
                                drop(permit);
                                drop(slot);
                            });
                        }
                        Err(_) => {
                            let text = format!("421 4.7.0 {} Error: too many connections\r\n", config.hostname);
                            tasks.spawn(refuse(tcp, text));
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
}

/// Over the connection limit: say so and close.
async fn refuse(mut tcp: TcpStream, text: String) {
    let _ = tokio::time::timeout(FINAL_FLUSH, async {
        tcp.write_all(text.as_bytes()).await?;
        tcp.shutdown().await
    })
    .await;
}

struct Connection<H: Handler> {
    config: Arc<ServerConfig>,
    handler: Arc<H>,
    tls: Option<TlsAcceptor>,
    implicit_tls: bool,
    stopped: watch::Receiver<bool>,
}

/// How one run over a stream ended.
enum Outcome<IO> {
    /// STARTTLS: the 220 is written; run the handshake on this stream.
    Upgrade(IO),
    /// The session is over (or the connection failed).
    Done,
}

impl<H: Handler> Connection<H> {
    async fn run(mut self, tcp: TcpStream, peer: SocketAddr) {
        let _ = tcp.set_nodelay(true);
        if self.implicit_tls {
            return self.run_implicit_tls(tcp, peer).await;
        }
        let mut session = ServerSession::new(Arc::clone(&self.config), Instant::now());
        let mut ctx = Context {
            peer,
            tls: false,
            helo: None,
            authenticated: None,
            from: None,
            recipients: Vec::new(),
            state: H::State::default(),
        };
        if let Outcome::Upgrade(tcp) = self.drive(tcp, &mut session, &mut ctx).await
            && let Some(acceptor) = self.tls.clone()
            && let Some(stream) = self.handshake(&acceptor, tcp).await
        {
            session.handle_tls_established();
            ctx.tls = true;
            ctx.helo = None;
            ctx.authenticated = None;
            // Under TLS the session refuses a second STARTTLS: no further upgrade.
            let _ = self.drive(stream, &mut session, &mut ctx).await;
        }
        if ctx.from.is_some() {
            ctx.clear_envelope();
            self.handler.reset(&mut ctx).await;
        }
    }

    /// Runs a TLS handshake, bounded by the command timeout and cut short by shutdown: a
    /// client that never sends its ClientHello must not hold the server's shutdown for the
    /// whole grace period.
    async fn handshake(
        &self,
        acceptor: &TlsAcceptor,
        tcp: TcpStream,
    ) -> Option<tokio_rustls::server::TlsStream<TcpStream>> {
        let mut stopped = self.stopped.clone();
        tokio::select! {
            result = tokio::time::timeout(self.config.command_timeout, acceptor.accept(tcp)) => {
                result.ok()?.ok()
            }
            _ = stopped.wait_for(|&stop| stop) => None,
        }
    }

    /// Implicit TLS: the handshake first, then the whole session over TLS.
    async fn run_implicit_tls(mut self, tcp: TcpStream, peer: SocketAddr) {
        let Some(acceptor) = self.tls.clone() else {
            return;
        };
        let Some(stream) = self.handshake(&acceptor, tcp).await else {
            return;
        };
        let mut session = ServerSession::new_tls(Arc::clone(&self.config), Instant::now());
        let mut ctx = Context {
            peer,
            tls: true,
            helo: None,
            authenticated: None,
            from: None,
            recipients: Vec::new(),
            state: H::State::default(),
        };
        let _ = self.drive(stream, &mut session, &mut ctx).await;
        if ctx.from.is_some() {
            ctx.clear_envelope();
            self.handler.reset(&mut ctx).await;
        }
    }

    /// Runs the session over `io` until it closes or asks for TLS. Reads and writes
    /// concurrently so that a peer writing a lot while our replies wait cannot deadlock us.
    async fn drive<IO>(
        &mut self,
        io: IO,
        session: &mut ServerSession,
        ctx: &mut Context<H::State>,
    ) -> Outcome<IO>
    where
        IO: AsyncRead + AsyncWrite + Unpin + Send,
    {
        let (mut reader, mut writer) = tokio::io::split(io);
        let mut out = BytesMut::new();
        let mut buf = vec![0u8; READ_BUFFER];
        let mut stop_seen = *self.stopped.borrow();
        if stop_seen {
            session.handle_shutdown();
        }
        loop {
            let mut upgrade = false;
            let mut closed = false;
            while let Some(event) = session.poll_event() {
                match event {
                    Event::StartTls => upgrade = true,
                    Event::Closed => closed = true,
                    other => self.handle(other, session, ctx).await,
                }
            }
            while let Some(bytes) = session.poll_transmit() {
                out.extend_from_slice(&bytes);
            }
            if upgrade || closed {
                let flushed = tokio::time::timeout(FINAL_FLUSH, async {
                    writer.write_all(&out).await?;
                    writer.flush().await
                })
                .await;
                if !matches!(flushed, Ok(Ok(()))) {
                    return Outcome::Done;
                }
                if upgrade {
                    return Outcome::Upgrade(reader.unsplit(writer));
                }
                let _ = tokio::time::timeout(FINAL_FLUSH, writer.shutdown()).await;
                return Outcome::Done;
            }
            let deadline = session.poll_timeout();
            let can_read = session.wants_input() && out.len() < OUTPUT_HIGH_WATER;
            let timer = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(tokio::time::Instant::from_std(d)).await,
                    None => std::future::pending().await,
                }
            };
            // Biased: a shutdown signal is seen before more input is parsed, and pending
            // replies leave before more input is read.
            tokio::select! {
                biased;
                changed = self.stopped.changed(), if !stop_seen => {
                    stop_seen = true;
                    if changed.is_err() || *self.stopped.borrow() {
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
                    Ok(n) => session.handle_input(&buf[..n]),
                },
            }
        }
    }

    /// Hands one event to the handler and its answer back to the session.
    async fn handle(&self, event: Event, session: &mut ServerSession, ctx: &mut Context<H::State>) {
        let h = &self.handler;
        // An answer is refused only for a token of another session: impossible here.
        let _ = match event {
            Event::Hello { host, .. } => {
                ctx.clear_envelope();
                ctx.helo = Some(host);
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
                if answer.is_ok() {
                    ctx.recipients.push(r.to);
                }
                session.answer_rcpt(r.token, answer)
            }
            Event::DataChunk(chunk) => {
                h.data_chunk(ctx, chunk).await;
                Ok(())
            }
            Event::MessageEnd(end) => {
                let answer = h.data_end(ctx, end.size).await;
                ctx.clear_envelope();
                session.answer_message(end.token, answer)
            }
            Event::Reset => {
                ctx.clear_envelope();
                h.reset(ctx).await;
                Ok(())
            }
            Event::Auth(a) => {
                let answer = h.auth(ctx, &a.credentials).await;
                if answer.is_ok() {
                    ctx.authenticated = Some(a.credentials.username.clone());
                }
                session.answer_auth(a.token, answer)
            }
            _ => Ok(()),
        };
    }
}
