//! The tokio [`Client`]: drives a [`ClientSession`] over TCP, upgrading with STARTTLS through
//! tokio-rustls when the session asks.
//!
//! It holds no protocol decision: commands, replies, timeouts and results all come from the
//! session. It reads and writes in the same poll, so a server that writes replies while the
//! client is still writing (PIPELINING, BDAT) can never deadlock it, and it feeds the message
//! body in bounded pieces (64 KiB), so a large message is never whole in memory.

use std::future::{Future, poll_fn};
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpStream, ToSocketAddrs};
use tokio::time::Sleep;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::client::{
    ClientConfig, ClientError, ClientSession, Envelope, Event, MessageResult, SendError, TlsPolicy,
    TlsUpgrade,
};
use crate::types::extension::Extensions;
use crate::types::reply::Reply;

/// How much of the message body is read (and encoded) at a time.
const BODY_PIECE: usize = 64 * 1024;
/// How much is read from the socket at a time.
const READ_PIECE: usize = 16 * 1024;

/// TLS for STARTTLS: the rustls configuration (built with the ring provider, trusting the
/// roots the caller chose) and the name the server's certificate must carry.
#[derive(Clone, Debug)]
pub struct ClientTls {
    /// The rustls client configuration.
    pub config: Arc<rustls::ClientConfig>,
    /// The name checked against the server's certificate (for SMTP relay, the MX host name).
    pub server_name: ServerName<'static>,
}

/// The settings of a [`Client`] connection.
#[derive(Clone, Debug)]
pub struct ClientOptions {
    /// The session's settings (EHLO name, TLS policy, credentials, LMTP, limits, timeouts).
    pub session: ClientConfig,
    /// How long to wait for the TCP connection (Postfix's `smtp_connect_timeout`, 30 s).
    pub connect_timeout: Duration,
    /// How long the TLS handshake may take (Postfix's `smtp_starttls_timeout`, 300 s).
    pub tls_handshake_timeout: Duration,
    /// TLS for STARTTLS. Without it an opportunistic policy sends no STARTTLS, and a policy
    /// that requires TLS fails at once ([`ConnectionError::TlsNotConfigured`]).
    pub tls: Option<ClientTls>,
}

impl ClientOptions {
    /// Options with `session` settings, Postfix's connect and handshake timeouts, no TLS.
    pub fn new(session: ClientConfig) -> Self {
        Self {
            session,
            connect_timeout: Duration::from_secs(30),
            tls_handshake_timeout: Duration::from_secs(300),
            tls: None,
        }
    }

    /// Adds TLS for STARTTLS.
    #[must_use]
    pub fn with_tls(
        mut self,
        config: Arc<rustls::ClientConfig>,
        server_name: ServerName<'static>,
    ) -> Self {
        self.tls = Some(ClientTls {
            config,
            server_name,
        });
        self
    }
}

/// Why a [`Client`] call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectionError {
    /// The TCP connection could not be made.
    #[error("cannot connect: {0}")]
    Connect(#[source] io::Error),
    /// The TCP connection took longer than the connect timeout.
    #[error("connect timed out after {0:?}")]
    ConnectTimeout(Duration),
    /// The policy requires TLS and no TLS configuration was given.
    #[error("the tls policy requires tls and no tls configuration was given")]
    TlsNotConfigured,
    /// The TLS handshake after STARTTLS failed.
    #[error("tls handshake failed: {0}")]
    TlsHandshake(#[source] io::Error),
    /// Reading from or writing to the server failed.
    #[error("i/o error while {doing}: {source}")]
    Io {
        /// `"reading from the server"`, `"writing to the server"`.
        doing: &'static str,
        /// The error.
        source: io::Error,
    },
    /// Reading the message body from the application failed; the session is left in the
    /// middle of the data and must be dropped.
    #[error("cannot read the message body: {0}")]
    Body(#[source] io::Error),
    /// The session failed (refused greeting, STARTTLS injection, timeout, 421, ...).
    #[error(transparent)]
    Session(#[from] ClientError),
    /// The session cannot take this message (SMTPUTF8 not offered, too large, ...); nothing
    /// was sent and the connection is still usable.
    #[error(transparent)]
    Refused(#[from] SendError),
    /// The session is over: no more messages on this connection.
    #[error("the session is closed")]
    Closed,
}

/// The connection: the stream and what is still to be written to it.
#[derive(Debug)]
enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
    /// During the TLS handshake, or after a failed one.
    Gone,
}

impl Stream {
    fn pin_io(&mut self) -> Option<Pin<&mut dyn AsyncReadWrite>> {
        match self {
            Stream::Plain(tcp) => Some(Pin::new(tcp)),
            Stream::Tls(tls) => Some(Pin::new(&mut **tls)),
            Stream::Gone => None,
        }
    }
}

trait AsyncReadWrite: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> AsyncReadWrite for T {}

/// What one turn of I/O did.
enum Io {
    Read(usize),
    Wrote,
    Timer,
}

/// An SMTP (or LMTP) client connection over tokio.
///
/// # Examples
///
/// ```no_run
/// use mailroom_smtp_proto::client::{ClientConfig, Envelope, TlsPolicy};
/// use mailroom_smtp_proto::tokio::{Client, ClientOptions};
/// use mailroom_smtp_proto::{ForwardPath, Mailbox, ReversePath};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let mut config = ClientConfig::new("client.example.org".parse()?);
/// config.tls = TlsPolicy::Never;
/// let mut client = Client::connect("127.0.0.1:2525", ClientOptions::new(config)).await?;
/// let from: Mailbox = "alice@example.org".parse()?;
/// let to: Mailbox = "bob@example.com".parse()?;
/// let envelope = Envelope::new(ReversePath::from(from), [ForwardPath::from(to)]);
/// let result = client.send_bytes(envelope, b"Subject: hi\r\n\r\nhello\r\n").await?;
/// assert!(result.all_accepted());
/// client.quit().await?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct Client {
    session: ClientSession,
    stream: Stream,
    /// Bytes for the server not yet written.
    out: BytesMut,
    /// The stream has data written but not flushed (TLS records held by rustls).
    flush: bool,
    read_buf: Box<[u8]>,
    tls: Option<ClientTls>,
    tls_handshake_timeout: Duration,
    greeting: Option<Reply>,
}

impl Client {
    /// Connects to `addr`, reads the greeting, says EHLO (or LHLO), does STARTTLS and AUTH as
    /// the options say, and returns once the session is ready for a message.
    ///
    /// # Errors
    ///
    /// [`ConnectionError`] when the connection, the TLS handshake or the session fails.
    pub async fn connect(
        addr: impl ToSocketAddrs,
        options: ClientOptions,
    ) -> Result<Self, ConnectionError> {
        if options.tls.is_none() && options.session.tls == TlsPolicy::Required {
            return Err(ConnectionError::TlsNotConfigured);
        }
        let timeout = options.connect_timeout;
        let tcp = tokio::time::timeout(timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| ConnectionError::ConnectTimeout(timeout))?
            .map_err(ConnectionError::Connect)?;
        Self::start(tcp, options).await
    }

    /// Like [`connect`](Self::connect) on a TCP connection the caller made (to try the MX
    /// hosts in turn, or to bind a source address); `connect_timeout` is not used.
    ///
    /// # Errors
    ///
    /// [`ConnectionError`] when the TLS handshake or the session fails.
    pub async fn start(tcp: TcpStream, options: ClientOptions) -> Result<Self, ConnectionError> {
        let ClientOptions {
            mut session,
            tls_handshake_timeout,
            tls,
            ..
        } = options;
        if tls.is_none() {
            match session.tls {
                TlsPolicy::Required => return Err(ConnectionError::TlsNotConfigured),
                TlsPolicy::Opportunistic => session.tls = TlsPolicy::Never,
                TlsPolicy::Never => {}
            }
        }
        // Commands are small and latency matters more than packet count.
        tcp.set_nodelay(true).map_err(ConnectionError::Connect)?;
        let mut client = Self {
            session: ClientSession::new(session, Instant::now()),
            stream: Stream::Plain(tcp),
            out: BytesMut::new(),
            flush: false,
            read_buf: vec![0; READ_PIECE].into_boxed_slice(),
            tls,
            tls_handshake_timeout,
            greeting: None,
        };
        loop {
            match client.next_event().await? {
                Event::Greeting(reply) => client.greeting = Some(reply),
                Event::StartTls(upgrade) => client.start_tls(upgrade).await?,
                Event::Ready => return Ok(client),
                Event::Error(e) => return Err(client.failed(e).await),
                Event::Closed(_) => return Err(ConnectionError::Closed),
                _ => {}
            }
        }
    }

    /// The server's greeting.
    pub fn greeting(&self) -> Option<&Reply> {
        self.greeting.as_ref()
    }

    /// What the server offers (after TLS, what it offers over TLS).
    pub fn extensions(&self) -> &Extensions {
        self.session.extensions()
    }

    /// Whether the connection is encrypted.
    pub fn is_tls(&self) -> bool {
        self.session.is_tls()
    }

    /// The session, to look at its state.
    pub fn session(&self) -> &ClientSession {
        &self.session
    }

    /// Sends one message whose content is `body`, read in pieces of 64 KiB, and returns the
    /// result per recipient. The connection can then send another message, or QUIT.
    ///
    /// # Errors
    ///
    /// [`ConnectionError::Refused`] when the session cannot take the message (nothing was
    /// sent; the connection is still usable); any other error leaves the connection unusable.
    pub async fn send<R: AsyncRead + Unpin>(
        &mut self,
        envelope: Envelope,
        mut body: R,
    ) -> Result<MessageResult, ConnectionError> {
        if self.session.is_closed() {
            return Err(ConnectionError::Closed);
        }
        self.session.send_message(envelope)?;
        let permit = loop {
            match self.next_event().await? {
                Event::DataReady(permit) => break permit,
                Event::MessageDone(result) => return Ok(result),
                Event::Error(e) => return Err(self.failed(e).await),
                _ => {}
            }
        };
        let mut piece = vec![0; BODY_PIECE];
        loop {
            // Bounded memory: the previous piece is on the wire before the next is read, and
            // BDAT waits for the window.
            while !self.out.is_empty()
                || !(self.session.can_send_data() || self.session.is_content_refused())
            {
                self.turn().await?;
                if let Some(outcome) = self.event_during_data().await {
                    return outcome;
                }
            }
            if self.session.is_content_refused() {
                break;
            }
            let n = body.read(&mut piece).await.map_err(ConnectionError::Body)?;
            if n == 0 {
                break;
            }
            self.session.send_data(&permit, &piece[..n])?;
            self.take_transmit();
        }
        self.session.finish_data(permit)?;
        loop {
            match self.next_event().await? {
                Event::MessageDone(result) => return Ok(result),
                Event::Error(e) => return Err(self.failed(e).await),
                _ => {}
            }
        }
    }

    /// [`send`](Self::send) with the content in memory.
    ///
    /// # Errors
    ///
    /// As [`send`](Self::send).
    pub async fn send_bytes(
        &mut self,
        envelope: Envelope,
        content: &[u8],
    ) -> Result<MessageResult, ConnectionError> {
        self.send(envelope, content).await
    }

    /// Sends RSET and waits for its 250 (to check a connection before reusing it).
    ///
    /// # Errors
    ///
    /// [`ConnectionError`] when the server refuses or the connection fails.
    pub async fn rset(&mut self) -> Result<Reply, ConnectionError> {
        self.session.rset()?;
        loop {
            match self.next_event().await? {
                Event::Reset(reply) => return Ok(reply),
                Event::Error(e) => return Err(self.failed(e).await),
                _ => {}
            }
        }
    }

    /// Sends QUIT, waits for the 221 (or the server closing), and closes the connection.
    ///
    /// # Errors
    ///
    /// [`ConnectionError`] when the connection fails first.
    pub async fn quit(mut self) -> Result<Option<Reply>, ConnectionError> {
        self.session.quit()?;
        loop {
            match self.next_event().await? {
                Event::Closed(reply) => {
                    if let Some(io) = self.stream.pin_io() {
                        // The session is over either way; a failed shutdown changes nothing.
                        let _ = io.get_mut().shutdown().await;
                    }
                    return Ok(reply);
                }
                Event::Error(e) => return Err(self.failed(e).await),
                _ => {}
            }
        }
    }

    // ---- driving the session -------------------------------------------------------------

    /// Events that may come while the content is being written: the end of the session.
    async fn event_during_data(&mut self) -> Option<Result<MessageResult, ConnectionError>> {
        while let Some(event) = self.session.poll_event() {
            match event {
                // A 421 in the middle: the recipients are deferred.
                Event::MessageDone(result) => return Some(Ok(result)),
                Event::Error(e) => return Some(Err(self.failed(e).await)),
                _ => {}
            }
        }
        None
    }

    /// The next event, doing I/O until there is one.
    async fn next_event(&mut self) -> Result<Event, ConnectionError> {
        loop {
            if let Some(event) = self.session.poll_event() {
                return Ok(event);
            }
            if self.session.is_closed() {
                return Err(ConnectionError::Closed);
            }
            self.turn().await?;
        }
    }

    /// Writes what the session queued (best effort: a QUIT after an error), then gives the
    /// error back.
    async fn failed(&mut self, error: ClientError) -> ConnectionError {
        self.take_transmit();
        if !self.out.is_empty()
            && let Some(io) = self.stream.pin_io()
        {
            let io = io.get_mut();
            let quick = async {
                io.write_all(&self.out).await?;
                io.flush().await
            };
            // Best effort, briefly: the session has already failed.
            let _ = tokio::time::timeout(Duration::from_secs(5), quick).await;
            self.out.clear();
        }
        ConnectionError::Session(error)
    }

    fn take_transmit(&mut self) {
        while let Some(bytes) = self.session.poll_transmit(Instant::now()) {
            self.out.extend_from_slice(&bytes);
        }
    }

    /// One turn: write what is queued, read what came, or let the session's timer fire.
    async fn turn(&mut self) -> Result<(), ConnectionError> {
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
        let io = poll_fn(|cx| poll_io(stream, out, flush, read_buf, sleep.as_mut(), cx)).await;
        match io {
            Ok(Io::Read(0)) => self.session.handle_eof(),
            Ok(Io::Read(n)) => {
                let input = self.read_buf.get(..n).unwrap_or_default();
                self.session.handle_input(input);
            }
            Ok(Io::Wrote) => {}
            Ok(Io::Timer) => self.session.handle_timeout(Instant::now()),
            Err(e) => return Err(e),
        }
        self.take_transmit();
        Ok(())
    }

    async fn start_tls(&mut self, upgrade: TlsUpgrade) -> Result<(), ConnectionError> {
        let Some(tls) = self.tls.clone() else {
            return Err(ConnectionError::TlsNotConfigured);
        };
        // STARTTLS was written and answered: nothing is pending.
        let Stream::Plain(tcp) = std::mem::replace(&mut self.stream, Stream::Gone) else {
            return Err(ConnectionError::Closed);
        };
        let connector = TlsConnector::from(tls.config);
        let handshake = connector.connect(tls.server_name, tcp);
        let stream = tokio::time::timeout(self.tls_handshake_timeout, handshake)
            .await
            .map_err(|_| {
                ConnectionError::TlsHandshake(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "tls handshake timed out",
                ))
            })?
            .map_err(ConnectionError::TlsHandshake)?;
        self.stream = Stream::Tls(Box::new(stream));
        self.session.tls_established(upgrade);
        Ok(())
    }
}

/// Polls writing, flushing, reading and the timer together: whichever is ready first.
fn poll_io(
    stream: &mut Stream,
    out: &mut BytesMut,
    flush: &mut bool,
    read_buf: &mut [u8],
    sleep: Option<&mut Pin<Box<Sleep>>>,
    cx: &mut Context<'_>,
) -> Poll<Result<Io, ConnectionError>> {
    let write_error = |source| ConnectionError::Io {
        doing: "writing to the server",
        source,
    };
    let Some(mut io) = stream.pin_io() else {
        return Poll::Ready(Err(ConnectionError::Closed));
    };
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
            return Poll::Ready(Err(ConnectionError::Io {
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
