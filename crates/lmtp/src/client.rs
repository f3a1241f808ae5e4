//! [`Client`]: the LMTP client over tokio, on TCP or a Unix socket. It drives smtp-proto's
//! sans-IO [`ClientSession`] in LMTP mode and returns each recipient's outcome.
//!
//! It holds no protocol decision: commands, replies, timeouts and per-recipient results come
//! from the session. It reads and writes in the same poll (a server replying while the client
//! writes cannot deadlock it) and feeds the content in bounded pieces.

use std::future::{Future, poll_fn};
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};
use mailroom_smtp_proto::client::{
    self as smtp_client, ClientConfig, ClientSession, Envelope, Event, MessageResult, SendError,
    Stage, Status, TlsPolicy,
};
use mailroom_smtp_proto::{ForwardPath, Host, Reply, ReversePath};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpStream, UnixStream};
use tokio::time::Sleep;

use crate::address::Address;

/// How much of the message body is read (and encoded) at a time.
const BODY_PIECE: usize = 64 * 1024;
/// How much is read from the socket at a time.
const READ_PIECE: usize = 16 * 1024;

/// The settings of a [`Client`] connection.
#[derive(Clone, Debug)]
pub struct ClientOptions {
    /// The session's settings: the LHLO name, reply timeouts (RFC 5321 §4.5.3.2, Postfix's
    /// `lmtp_*_timeout`), limits, BDAT. `lmtp` is forced on and TLS off.
    pub session: ClientConfig,
    /// How long to wait for the connection (Postfix's `lmtp_connect_timeout`, 0 = the
    /// kernel's; here 30 s, its `smtp_connect_timeout`).
    pub connect_timeout: Duration,
}

impl ClientOptions {
    /// Options for a client calling itself `hostname` in LHLO, with RFC 5321's reply timeouts
    /// and a 30-second connect timeout.
    pub fn new(hostname: Host) -> Self {
        let mut session = ClientConfig::new(hostname);
        session.lmtp = true;
        session.tls = TlsPolicy::Never;
        Self {
            session,
            connect_timeout: Duration::from_secs(30),
        }
    }
}

impl Default for ClientOptions {
    /// A client calling itself `localhost`.
    fn default() -> Self {
        let mut options = Self::new(ClientConfig::default().hostname);
        options.session.lmtp = true;
        options
    }
}

/// Why a [`Client`] call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The connection could not be made.
    #[error("cannot connect to {address}: {source}")]
    Connect {
        /// Where.
        address: Address,
        /// The operating system's error.
        source: io::Error,
    },
    /// The connection took longer than the connect timeout.
    #[error("connecting to {address} timed out after {timeout:?}")]
    ConnectTimeout {
        /// Where.
        address: Address,
        /// The timeout.
        timeout: Duration,
    },
    /// Reading from or writing to the server failed; the connection is unusable.
    #[error("i/o error while {doing}: {source}")]
    Io {
        /// `"reading from the server"`, `"writing to the server"`.
        doing: &'static str,
        /// The error.
        source: io::Error,
    },
    /// Reading the message body from the application failed; the connection is unusable.
    #[error("cannot read the message body: {0}")]
    Body(#[source] io::Error),
    /// The session failed (refused greeting or LHLO, a reply timeout, a 421, a malformed
    /// reply, the server closing); the connection is unusable.
    #[error(transparent)]
    Session(#[from] smtp_client::ClientError),
    /// The session cannot take this message (no recipient, SMTPUTF8 not offered, larger than
    /// the server's SIZE); nothing was sent and the connection is still usable.
    #[error(transparent)]
    Refused(#[from] SendError),
    /// The session is over: no more messages on this connection.
    #[error("the lmtp session is closed")]
    Closed,
}

impl ClientError {
    /// Whether the connection can still take a message after this error.
    pub fn is_connection_usable(&self) -> bool {
        matches!(self, ClientError::Refused(_))
    }
}

/// What happened to one recipient.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The server delivered the message for this recipient (2yz after the data).
    Delivered,
    /// A temporary failure (4yz at MAIL, RCPT or after the data): try again later.
    TemporaryFailure,
    /// A permanent failure (5yz): do not try again; bounce.
    PermanentFailure,
}

/// One recipient's outcome, with the server's reply that decided it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecipientOutcome {
    /// The recipient.
    pub recipient: ForwardPath,
    /// Delivered, temporary or permanent failure.
    pub outcome: Outcome,
    /// The server's reply (to MAIL when MAIL failed, to RCPT when it was refused, else the
    /// recipient's own reply after the data).
    pub reply: Reply,
    /// Which command that reply answered.
    pub stage: Stage,
}

fn outcomes(result: MessageResult) -> Vec<RecipientOutcome> {
    result
        .recipients
        .into_iter()
        .map(|r| RecipientOutcome {
            outcome: match r.status() {
                Status::Accepted => Outcome::Delivered,
                Status::Temporary => Outcome::TemporaryFailure,
                Status::Permanent => Outcome::PermanentFailure,
            },
            recipient: r.path,
            reply: r.reply,
            stage: r.stage,
        })
        .collect()
}

trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// What one turn of I/O did.
enum Io {
    Read(usize),
    Wrote,
    Timer,
}

/// An LMTP client connection (RFC 2033) over TCP or a Unix socket.
///
/// One connection carries any number of messages, one after the other (connection reuse:
/// keep the `Client` and call [`deliver`](Self::deliver) again; [`rset`](Self::rset) checks
/// an idle connection first). Each message goes to many recipients in one transaction, and
/// comes back with one [`RecipientOutcome`] per recipient.
///
/// # Examples
///
/// ```no_run
/// use mailroom_lmtp::{Address, Client, ClientOptions, Outcome};
/// use mailroom_smtp_proto::{ForwardPath, Mailbox, ReversePath};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let address: Address = "unix:/run/dovecot/lmtp".parse()?;
/// let mut client = Client::connect(&address, ClientOptions::default()).await?;
/// let from = ReversePath::from("alice@example.org".parse::<Mailbox>()?);
/// let to = ["bob@example.com", "carol@example.com"]
///     .map(|m| ForwardPath::from(m.parse::<Mailbox>().unwrap()));
/// let results = client.deliver(from, to, b"Subject: hi\r\n\r\nhello\r\n").await?;
/// for r in &results {
///     if r.outcome != Outcome::Delivered {
///         eprintln!("{}: {}", r.recipient, r.reply);
///     }
/// }
/// client.quit().await?;
/// # Ok(())
/// # }
/// ```
pub struct Client {
    session: ClientSession,
    stream: Option<Box<dyn Stream>>,
    out: BytesMut,
    flush: bool,
    read_buf: Box<[u8]>,
    greeting: Option<Reply>,
    hello: Option<Reply>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("session", &self.session)
            .field("greeting", &self.greeting)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Connects to `address` (TCP or Unix socket), reads the greeting, says LHLO and returns
    /// once the session is ready for a message.
    ///
    /// # Errors
    ///
    /// [`ClientError`] when the connection or the session set-up fails.
    pub async fn connect(address: &Address, options: ClientOptions) -> Result<Self, ClientError> {
        let timeout = options.connect_timeout;
        let connect = async {
            Ok::<Box<dyn Stream>, io::Error>(match address {
                Address::Tcp(a) => {
                    let tcp = TcpStream::connect(a.as_str()).await?;
                    // Commands are small and latency matters more than packet count.
                    tcp.set_nodelay(true)?;
                    Box::new(tcp)
                }
                Address::Unix(p) => Box::new(UnixStream::connect(p).await?),
            })
        };
        let io = tokio::time::timeout(timeout, connect)
            .await
            .map_err(|_| ClientError::ConnectTimeout {
                address: address.clone(),
                timeout,
            })?
            .map_err(|source| ClientError::Connect {
                address: address.clone(),
                source,
            })?;
        Self::start_boxed(io, options).await
    }

    /// Like [`connect`](Self::connect) on a stream the caller opened (any
    /// `AsyncRead + AsyncWrite`, for example a socket pair in a test); `connect_timeout` is
    /// not used.
    ///
    /// # Errors
    ///
    /// [`ClientError`] when the session set-up fails.
    pub async fn start<IO>(io: IO, options: ClientOptions) -> Result<Self, ClientError>
    where
        IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        Self::start_boxed(Box::new(io), options).await
    }

    async fn start_boxed(io: Box<dyn Stream>, options: ClientOptions) -> Result<Self, ClientError> {
        let mut config = options.session;
        config.lmtp = true;
        config.tls = TlsPolicy::Never;
        let mut client = Self {
            session: ClientSession::new(config, Instant::now()),
            stream: Some(io),
            out: BytesMut::new(),
            flush: false,
            read_buf: vec![0; READ_PIECE].into_boxed_slice(),
            greeting: None,
            hello: None,
        };
        loop {
            match client.next_event().await? {
                Event::Greeting(reply) => client.greeting = Some(reply),
                Event::Hello { reply, .. } => client.hello = Some(reply),
                Event::Ready => return Ok(client),
                Event::Error(e) => return Err(client.failed(e).await),
                Event::Closed(_) => return Err(ClientError::Closed),
                _ => {}
            }
        }
    }

    /// The server's greeting.
    pub fn greeting(&self) -> Option<&Reply> {
        self.greeting.as_ref()
    }

    /// The server's reply to LHLO (its extensions are in
    /// [`session().extensions()`](ClientSession::extensions)).
    pub fn lhlo_reply(&self) -> Option<&Reply> {
        self.hello.as_ref()
    }

    /// The session, to look at its state.
    pub fn session(&self) -> &ClientSession {
        &self.session
    }

    /// Whether the connection can take another message now.
    pub fn is_ready(&self) -> bool {
        self.session.is_ready() && self.stream.is_some()
    }

    /// Delivers `content` from `from` to every recipient in one transaction and returns each
    /// recipient's outcome, in the order given. The connection can then take another message.
    ///
    /// # Errors
    ///
    /// [`ClientError::Refused`] when the session cannot take the message (nothing was sent,
    /// the connection is still usable); any other error leaves the connection unusable and
    /// every recipient undelivered as far as the caller knows (treat them as temporary
    /// failures).
    pub async fn deliver(
        &mut self,
        from: ReversePath,
        recipients: impl IntoIterator<Item = ForwardPath>,
        content: &[u8],
    ) -> Result<Vec<RecipientOutcome>, ClientError> {
        let mut envelope = Envelope::new(from, recipients);
        envelope.size = Some(content.len() as u64);
        envelope.body = smtp_client::body_of(content);
        self.deliver_envelope(envelope, content).await
    }

    /// [`deliver`](Self::deliver) with a full envelope (RCPT and MAIL parameters) and the
    /// content read from `body` in 64 KiB pieces: a large message is never whole in memory.
    ///
    /// # Errors
    ///
    /// As [`deliver`](Self::deliver); [`ClientError::Body`] when reading `body` fails.
    pub async fn deliver_envelope<R: AsyncRead + Unpin>(
        &mut self,
        envelope: Envelope,
        mut body: R,
    ) -> Result<Vec<RecipientOutcome>, ClientError> {
        if self.session.is_closed() {
            return Err(ClientError::Closed);
        }
        self.session.send_message(envelope)?;
        let permit = loop {
            match self.next_event().await? {
                Event::DataReady(permit) => break permit,
                Event::MessageDone(result) => return Ok(outcomes(result)),
                Event::Error(e) => return Err(self.failed(e).await),
                _ => {}
            }
        };
        let mut piece = vec![0; BODY_PIECE];
        loop {
            // Bounded memory: the previous piece is on the wire before the next is read.
            while !self.out.is_empty()
                || !(self.session.can_send_data() || self.session.is_content_refused())
            {
                self.turn().await?;
                while let Some(event) = self.session.poll_event() {
                    match event {
                        Event::MessageDone(result) => return Ok(outcomes(result)),
                        Event::Error(e) => return Err(self.failed(e).await),
                        _ => {}
                    }
                }
            }
            if self.session.is_content_refused() {
                break;
            }
            let n = body.read(&mut piece).await.map_err(ClientError::Body)?;
            if n == 0 {
                break;
            }
            self.session
                .send_data(&permit, piece.get(..n).unwrap_or_default())?;
            self.take_transmit();
        }
        self.session.finish_data(permit)?;
        loop {
            match self.next_event().await? {
                Event::MessageDone(result) => return Ok(outcomes(result)),
                Event::Error(e) => return Err(self.failed(e).await),
                _ => {}
            }
        }
    }

    /// Sends RSET and waits for its 250: checks that an idle connection still works before it
    /// is reused.
    ///
    /// # Errors
    ///
    /// [`ClientError`] when the server refuses or the connection fails.
    pub async fn rset(&mut self) -> Result<Reply, ClientError> {
        self.session.rset()?;
        loop {
            match self.next_event().await? {
                Event::Reset(reply) => return Ok(reply),
                Event::Error(e) => return Err(self.failed(e).await),
                _ => {}
            }
        }
    }

    /// Sends QUIT, waits for the 221 (or the server closing) and closes the connection.
    ///
    /// # Errors
    ///
    /// [`ClientError`] when the connection fails first.
    pub async fn quit(mut self) -> Result<Option<Reply>, ClientError> {
        self.session.quit()?;
        loop {
            match self.next_event().await? {
                Event::Closed(reply) => {
                    if let Some(io) = self.stream.as_mut() {
                        // The session is over either way.
                        let _ = io.shutdown().await;
                    }
                    return Ok(reply);
                }
                Event::Error(e) => return Err(self.failed(e).await),
                _ => {}
            }
        }
    }

    // ---- driving the session ---------------------------------------------------------

    async fn next_event(&mut self) -> Result<Event, ClientError> {
        loop {
            if let Some(event) = self.session.poll_event() {
                return Ok(event);
            }
            if self.session.is_closed() {
                return Err(ClientError::Closed);
            }
            self.turn().await?;
        }
    }

    /// Writes what the session still queued (a QUIT after an error), briefly, then gives the
    /// error back.
    async fn failed(&mut self, error: smtp_client::ClientError) -> ClientError {
        self.take_transmit();
        if !self.out.is_empty()
            && let Some(io) = self.stream.as_mut()
        {
            let quick = async {
                io.write_all(&self.out).await?;
                io.flush().await
            };
            let _ = tokio::time::timeout(Duration::from_secs(5), quick).await;
            self.out.clear();
        }
        ClientError::Session(error)
    }

    fn take_transmit(&mut self) {
        while let Some(bytes) = self.session.poll_transmit(Instant::now()) {
            self.out.extend_from_slice(&bytes);
        }
    }

    /// One turn: write what is queued, read what came, or let the session's timer fire.
    async fn turn(&mut self) -> Result<(), ClientError> {
        self.take_transmit();
        let mut sleep = self
            .session
            .poll_timeout()
            .map(|deadline| Box::pin(tokio::time::sleep_until(deadline.into())));
        let Self {
            stream,
            out,
            flush,
            read_buf,
            ..
        } = self;
        let Some(stream) = stream.as_mut() else {
            return Err(ClientError::Closed);
        };
        let io = poll_fn(|cx| poll_io(stream, out, flush, read_buf, sleep.as_mut(), cx)).await;
        match io {
            Ok(Io::Read(0)) => self.session.handle_eof(),
            Ok(Io::Read(n)) => {
                let input = self.read_buf.get(..n).unwrap_or_default();
                self.session.handle_input(input);
            }
            Ok(Io::Wrote) => {}
            Ok(Io::Timer) => self.session.handle_timeout(Instant::now()),
            Err(e) => {
                self.stream = None;
                return Err(e);
            }
        }
        self.take_transmit();
        Ok(())
    }
}

/// Polls writing, flushing, reading and the timer together: whichever is ready first.
fn poll_io(
    stream: &mut Box<dyn Stream>,
    out: &mut BytesMut,
    flush: &mut bool,
    read_buf: &mut [u8],
    sleep: Option<&mut Pin<Box<Sleep>>>,
    cx: &mut Context<'_>,
) -> Poll<Result<Io, ClientError>> {
    let write_error = |source| ClientError::Io {
        doing: "writing to the server",
        source,
    };
    let mut io = Pin::new(&mut **stream);
    if !out.is_empty() {
        match io.as_mut().poll_write(cx, out) {
            Poll::Ready(Ok(0)) => {
                return Poll::Ready(Err(write_error(io::ErrorKind::WriteZero.into())));
            }
            Poll::Ready(Ok(n)) => {
                out.advance(n);
                *flush = true;
                return Poll::Ready(Ok(Io::Wrote));
            }
            Poll::Ready(Err(e)) => return Poll::Ready(Err(write_error(e))),
            Poll::Pending => {}
        }
    } else if *flush {
        match io.as_mut().poll_flush(cx) {
            Poll::Ready(Ok(())) => {
                *flush = false;
                return Poll::Ready(Ok(Io::Wrote));
            }
            Poll::Ready(Err(e)) => return Poll::Ready(Err(write_error(e))),
            Poll::Pending => {}
        }
    }
    let mut buf = ReadBuf::new(read_buf);
    match io.as_mut().poll_read(cx, &mut buf) {
        Poll::Ready(Ok(())) => return Poll::Ready(Ok(Io::Read(buf.filled().len()))),
        Poll::Ready(Err(source)) => {
            return Poll::Ready(Err(ClientError::Io {
                doing: "reading from the server",
                source,
            }));
        }
        Poll::Pending => {}
    }
    if let Some(sleep) = sleep
        && sleep.as_mut().poll(cx).is_ready()
    {
        return Poll::Ready(Ok(Io::Timer));
    }
    Poll::Pending
}

/// Idle connections to one LMTP server, kept for the next message (connection reuse, as
/// Postfix's connection cache does for its LMTP client).
///
/// [`Pool::deliver`] takes an idle connection that has waited less than the idle time limit
/// (Postfix's `lmtp_connection_cache_time_limit`, 2 s by default: a server may close idle
/// connections, and a stale one costs a failed delivery), or opens a new one; after the
/// message a connection still ready goes back to the pool, up to `max_idle` of them.
///
/// # Examples
///
/// ```no_run
/// use mailroom_lmtp::{Address, ClientOptions, Pool};
/// use mailroom_smtp_proto::{ForwardPath, Mailbox, ReversePath};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let pool = Pool::new("inet:127.0.0.1:24".parse()?, ClientOptions::default());
/// let from = ReversePath::from("a@example.org".parse::<Mailbox>()?);
/// for n in 0..10 {
///     let to = ForwardPath::from("b@example.com".parse::<Mailbox>()?);
///     let body = format!("Subject: {n}\r\n\r\nhello\r\n");
///     pool.deliver(from.clone(), [to], body.as_bytes()).await?; // one connection for all ten
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct Pool {
    address: Address,
    options: ClientOptions,
    idle: std::sync::Mutex<Vec<(Client, Instant)>>,
    idle_time_limit: Duration,
    max_idle: usize,
}

impl Pool {
    /// A pool of connections to `address`, with a 2-second idle time limit and at most 16
    /// idle connections.
    pub fn new(address: Address, options: ClientOptions) -> Self {
        Self {
            address,
            options,
            idle: std::sync::Mutex::new(Vec::new()),
            idle_time_limit: Duration::from_secs(2),
            max_idle: 16,
        }
    }

    /// How long an idle connection may wait before it is closed instead of reused.
    #[must_use]
    pub fn idle_time_limit(mut self, limit: Duration) -> Self {
        self.idle_time_limit = limit;
        self
    }

    /// The most idle connections kept.
    #[must_use]
    pub fn max_idle(mut self, max: usize) -> Self {
        self.max_idle = max;
        self
    }

    /// How many idle connections wait in the pool.
    pub fn idle(&self) -> usize {
        self.idle.lock().map_or(0, |idle| idle.len())
    }

    /// [`Client::deliver`] on a pooled connection.
    ///
    /// # Errors
    ///
    /// As [`Client::connect`] and [`Client::deliver`]; a connection that failed is dropped,
    /// never returned to the pool.
    pub async fn deliver(
        &self,
        from: ReversePath,
        recipients: impl IntoIterator<Item = ForwardPath>,
        content: &[u8],
    ) -> Result<Vec<RecipientOutcome>, ClientError> {
        let mut client = self.take().await?;
        let result = client.deliver(from, recipients, content).await;
        self.put(client);
        result
    }

    async fn take(&self) -> Result<Client, ClientError> {
        let fresh = {
            let mut idle = self.idle.lock().map_err(|_| ClientError::Closed)?;
            let mut fresh = None;
            while let Some((client, since)) = idle.pop() {
                if since.elapsed() < self.idle_time_limit && client.is_ready() {
                    fresh = Some(client);
                    break;
                }
                // Too old: dropped (closing the socket) rather than risked.
            }
            fresh
        };
        match fresh {
            Some(client) => Ok(client),
            None => Client::connect(&self.address, self.options.clone()).await,
        }
    }

    fn put(&self, client: Client) {
        if !client.is_ready() {
            return;
        }
        if let Ok(mut idle) = self.idle.lock()
            && idle.len() < self.max_idle
        {
            idle.push((client, Instant::now()));
        }
    }
}
