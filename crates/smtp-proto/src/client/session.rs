//! The sans-IO client session.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};

use crate::data::DataEncoder;
use crate::types::command::{Command, Mechanism};
use crate::types::extension::Extensions;
use crate::types::param::Body;
use crate::types::reply::{Reply, ReplyCode};

use super::auth;
use super::config::{ClientConfig, TlsPolicy};
use super::envelope::{Envelope, Recipient};
use super::error::{ClientError, SendError};
use super::event::{DataPermit, Event, MessageResult, RecipientResult, Stage, TlsUpgrade};

/// Input is taken in pieces of this size, so the buffer of unread replies never holds more
/// than one piece beyond the largest reply the limits allow.
const INPUT_PIECE: usize = 4096;

/// The client end of an SMTP (or LMTP) session, without I/O.
///
/// It reads the server's replies, writes commands and content, and tells the application what
/// happened; the application (or the tokio adapter) moves the bytes, keeps the clock and feeds
/// the message content.
///
/// # Call order
///
/// ```text
///  new(config, now)
///    │    ┌──────────────────────────────────────────────────────────────────────────┐
///    ▼    ▼                                                                          │
///  loop: poll_transmit(now) -> write the bytes;  poll_event() until None;            │
///        wait for input or poll_timeout();  handle_input(bytes) / handle_eof() /      │
///        handle_timeout(now) ───────────────────────────────────────────────────────┘
///
///  greeting ─> EHLO ─┬─> [STARTTLS ─> Event::StartTls(token) ─ handshake ─>
///   (220)     (HELO) │       tls_established(token) ─> EHLO again] ─> [AUTH] ─> Event::Ready
///                    └─> Event::Ready
///  Ready ─ send_message(envelope) ─> MAIL, RCPT... (pipelined with DATA when offered)
///        ─> Event::Recipient per RCPT ─> Event::DataReady(permit)
///        ─ send_data(&permit, chunk)* ─ finish_data(permit) ─> Event::MessageDone ─> Ready
///  Ready ─ quit() ─> Event::Closed
/// ```
///
/// `poll_transmit(now)` takes the time because a reply's timeout starts when its command
/// leaves: call it after every other call. `handle_timeout(now)` when `poll_timeout()`
/// passes. Any [`Event::Error`] ends the session: write out what `poll_transmit` still gives
/// (at most a `QUIT`), then close the connection.
///
/// The session decides the protocol: EHLO with the fall-back to HELO on 5yz (RFC 5321 §3.2,
/// §4.1.4), STARTTLS per [`TlsPolicy`] with every byte after the 220 an error
/// ([`ClientError::StartTlsInjection`]), AUTH PLAIN or LOGIN, the MAIL parameters (SIZE, BODY,
/// SMTPUTF8), PIPELINING (RFC 2920: MAIL, every RCPT and DATA in one write, replies read in
/// order), DATA with dot-stuffing or BDAT, RSET after a failed transaction, and the results
/// per recipient. Memory is bounded: replies by [`Limits`](crate::Limits) `reply_line` and
/// `reply_lines`, content by what the application feeds between two `poll_transmit` calls.
///
/// # Examples
///
/// ```
/// use std::time::Instant;
/// use mailroom_smtp_proto::client::{ClientConfig, ClientSession, Envelope, Event};
/// use mailroom_smtp_proto::{ForwardPath, Mailbox, ReversePath};
///
/// let now = Instant::now();
/// let mut session = ClientSession::new(ClientConfig::default(), now);
/// session.handle_input(b"220 mx.example.org ESMTP\r\n");
/// assert_eq!(&session.poll_transmit(now).unwrap()[..], b"EHLO localhost\r\n");
/// session.handle_input(b"250-mx.example.org\r\n250 PIPELINING\r\n");
/// while let Some(event) = session.poll_event() {
///     if let Event::Ready = event {
///         let from: Mailbox = "a@example.com".parse().unwrap();
///         let to: Mailbox = "b@example.org".parse().unwrap();
///         let envelope = Envelope::new(ReversePath::from(from), [ForwardPath::from(to)]);
///         session.send_message(envelope).unwrap();
///     }
/// }
/// assert_eq!(
///     &session.poll_transmit(now).unwrap()[..],
///     b"MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n"
/// );
/// ```
#[derive(Debug)]
pub struct ClientSession {
    config: ClientConfig,
    phase: Phase,
    /// Bytes from the server not yet read as replies.
    input: BytesMut,
    /// Bytes for the server not yet taken by `poll_transmit`.
    output: BytesMut,
    events: VecDeque<Event>,
    /// Commands sent whose reply is awaited, oldest first.
    expect: VecDeque<Awaited>,
    /// Serial number of the next awaited reply (timers are keyed on it).
    next_serial: u64,
    extensions: Extensions,
    esmtp: bool,
    tls_active: bool,
    /// STARTTLS was refused and the policy let the session go on in plaintext.
    starttls_declined: bool,
    authenticated: bool,
    txn: Option<Transaction>,
    messages: u64,
    timer: Option<Armed>,
    /// Bumped whenever content leaves in the data phase (the data block timer restarts).
    data_serial: u64,
}

/// Where the session is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Greeting, hello, STARTTLS or AUTH under way.
    Setup,
    /// STARTTLS accepted; waiting for `tls_established`. No input may arrive.
    TlsHandshake,
    /// Idle: a message may start.
    Ready,
    /// MAIL and RCPT under way, DATA perhaps.
    Envelope,
    /// The application feeds the content.
    Data,
    /// The content is sent (or the transaction failed); final replies and RSET awaited.
    Finishing,
    /// RSET asked by the application.
    Resetting,
    /// QUIT sent.
    Quitting,
    /// Over.
    Closed,
}

/// A reply the session waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Awaited {
    what: Pending,
    serial: u64,
}

/// The command a reply answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pending {
    Greeting,
    Ehlo,
    Helo,
    Lhlo,
    StartTls,
    /// The final reply to AUTH (235, or a failure).
    Auth,
    /// `334` to `AUTH LOGIN`: the user name is next.
    AuthLoginUser,
    /// `334` after the user name: the password is next.
    AuthLoginPassword,
    Mail,
    Rcpt(usize),
    Data,
    /// `.` sent after a 354 that came although no recipient was accepted (RFC 2920 §3.1).
    DiscardedData,
    /// A non-last BDAT chunk.
    Bdat,
    /// The reply after the content (final `.` or `BDAT LAST`); with LMTP one per accepted
    /// recipient, the n-th for the n-th accepted one.
    Final,
    /// RSET after a failed transaction.
    RsetAfterFailure,
    /// RSET asked by the application.
    Rset,
    Quit,
}

impl Pending {
    fn describe(self) -> &'static str {
        match self {
            Pending::Greeting => "the greeting",
            Pending::Ehlo => "the reply to EHLO",
            Pending::Helo => "the reply to HELO",
            Pending::Lhlo => "the reply to LHLO",
            Pending::StartTls => "the reply to STARTTLS",
            Pending::Auth | Pending::AuthLoginUser | Pending::AuthLoginPassword => {
                "the reply to AUTH"
            }
            Pending::Mail => "the reply to MAIL",
            Pending::Rcpt(_) => "the reply to RCPT",
            Pending::Data => "the reply to DATA",
            Pending::DiscardedData | Pending::Final => "the reply after the message content",
            Pending::Bdat => "the reply to BDAT",
            Pending::RsetAfterFailure | Pending::Rset => "the reply to RSET",
            Pending::Quit => "the reply to QUIT",
        }
    }
}

/// An armed timer: what it is for, and when it fires.
#[derive(Debug, Clone, Copy)]
struct Armed {
    key: TimerKey,
    deadline: Instant,
    waiting_for: &'static str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TimerKey {
    Reply(u64),
    DataBlock(u64),
}

/// How the content goes: DATA with dot-stuffing, or BDAT chunks.
#[derive(Debug)]
enum Transfer {
    Data(DataEncoder),
    Bdat(Newlines),
}

/// One message under way.
#[derive(Debug)]
struct Transaction {
    id: u64,
    recipients: Vec<Recipient>,
    /// RCPT replies, by recipient.
    rcpt: Vec<Option<Reply>>,
    /// The decisive reply per recipient, once known.
    outcome: Vec<Option<(Reply, Stage)>>,
    mail: Option<Reply>,
    pipelined: bool,
    transfer: Transfer,
    /// BDAT chunks awaiting their reply.
    bdat_outstanding: usize,
    /// `finish_data` was called while the BDAT window was full: `BDAT LAST` goes out once a
    /// reply frees a place.
    bdat_last_pending: bool,
    /// The content was refused part-way (a BDAT chunk's reply): the rest is dropped.
    content_failure: Option<Reply>,
    /// The first reply after the content.
    data: Option<Reply>,
    /// Final replies received (LMTP: one per accepted recipient).
    finals: usize,
    /// Whether the transaction ends with RSET (it failed somewhere).
    needs_rset: bool,
}

impl Transaction {
    fn mail_ok(&self) -> bool {
        self.mail.as_ref().is_some_and(Reply::is_positive)
    }

    fn accepted(&self) -> impl Iterator<Item = usize> + '_ {
        self.rcpt
            .iter()
            .enumerate()
            .filter(|(_, r)| r.as_ref().is_some_and(Reply::is_positive))
            .map(|(i, _)| i)
    }

    fn any_accepted(&self) -> bool {
        self.mail_ok() && self.accepted().next().is_some()
    }
}

/// Turns every bare CR and bare LF into CRLF, across chunk boundaries (for BDAT content that
/// is not BINARYMIME: RFC 3030 §2 still wants CRLF lines, and the next hop may use DATA).
#[derive(Debug, Default)]
struct Newlines {
    pending_cr: bool,
    binary: bool,
}

impl Newlines {
    fn encode(&mut self, chunk: &[u8], out: &mut Vec<u8>) {
        if self.binary {
            out.extend_from_slice(chunk);
            return;
        }
        let mut rest = chunk;
        if self.pending_cr && !rest.is_empty() {
            self.pending_cr = false;
            out.extend_from_slice(b"\r\n");
            if rest.first() == Some(&b'\n') {
                rest = &rest[1..];
            }
        }
        while let Some(at) = memchr::memchr2(b'\r', b'\n', rest) {
            out.extend_from_slice(&rest[..at]);
            if rest[at] == b'\n' {
                out.extend_from_slice(b"\r\n");
                rest = &rest[at + 1..];
            } else {
                match rest.get(at + 1) {
                    None => {
                        self.pending_cr = true;
                        return;
                    }
                    Some(b'\n') => {
                        out.extend_from_slice(b"\r\n");
                        rest = &rest[at + 2..];
                    }
                    Some(_) => {
                        out.extend_from_slice(b"\r\n");
                        rest = &rest[at + 1..];
                    }
                }
            }
        }
        out.extend_from_slice(rest);
    }

    fn finish(&mut self) -> &'static [u8] {
        if std::mem::take(&mut self.pending_cr) {
            b"\r\n"
        } else {
            b""
        }
    }
}

impl ClientSession {
    /// A session on a connection just opened at `now`; it waits for the greeting.
    pub fn new(config: ClientConfig, now: Instant) -> Self {
        let mut session = Self {
            config,
            phase: Phase::Setup,
            input: BytesMut::new(),
            output: BytesMut::new(),
            events: VecDeque::new(),
            expect: VecDeque::new(),
            next_serial: 0,
            extensions: Extensions::default(),
            esmtp: false,
            tls_active: false,
            starttls_declined: false,
            authenticated: false,
            txn: None,
            messages: 0,
            timer: None,
            data_serial: 0,
        };
        session.await_reply(Pending::Greeting);
        session.arm(now);
        session
    }

    /// The settings.
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// What the server offers (from the latest EHLO/LHLO; empty before it and after HELO).
    pub fn extensions(&self) -> &Extensions {
        &self.extensions
    }

    /// Whether TLS is active (after `tls_established`).
    pub fn is_tls(&self) -> bool {
        self.tls_active
    }

    /// Whether AUTH succeeded.
    pub fn is_authenticated(&self) -> bool {
        self.authenticated
    }

    /// Whether a message may start now.
    pub fn is_ready(&self) -> bool {
        self.phase == Phase::Ready
    }

    /// Whether the session is over (after [`Event::Closed`] or [`Event::Error`]).
    pub fn is_closed(&self) -> bool {
        self.phase == Phase::Closed
    }

    /// Whether `send_data` takes a chunk now: in the data phase, and for BDAT, while fewer
    /// chunks than the window await their reply.
    pub fn can_send_data(&self) -> bool {
        self.phase == Phase::Data
            && self.txn.as_ref().is_some_and(|t| match t.transfer {
                Transfer::Data(_) => true,
                Transfer::Bdat(_) => t.bdat_outstanding < self.bdat_window(),
            })
    }

    /// How many received octets wait to be read as a reply. Never more than one reply's worth
    /// under the limits (`reply_line` × `reply_lines`) plus one input piece (4 KiB): a hostile
    /// server cannot make the session buffer more.
    pub fn buffered(&self) -> usize {
        self.input.len()
    }

    /// Whether the content of the current message has been refused part-way (a BDAT chunk
    /// failed): further content is dropped, so the application may call `finish_data` now.
    pub fn is_content_refused(&self) -> bool {
        self.txn
            .as_ref()
            .is_some_and(|t| t.content_failure.is_some())
    }

    // ---- input --------------------------------------------------------------------------

    /// Feeds bytes received from the server.
    pub fn handle_input(&mut self, input: &[u8]) {
        for piece in input.chunks(INPUT_PIECE) {
            match self.phase {
                Phase::Closed => return,
                Phase::TlsHandshake => {
                    // RFC 3207 §4.2 / CVE-2011-0411: nothing may come between the 220 and the
                    // handshake; whatever did would be taken as a reply inside TLS.
                    let octets = self.input.len() + input.len();
                    self.fail(ClientError::StartTlsInjection { octets }, false);
                    return;
                }
                _ => {}
            }
            self.input.extend_from_slice(piece);
            if memchr::memchr(b'\n', piece).is_some() {
                self.read_replies();
            } else if self.input.len() > self.max_reply_octets() {
                // Reply::decode would say the same; no need to scan again.
                self.read_replies();
            }
        }
    }

    /// The server closed the connection (read returned 0).
    pub fn handle_eof(&mut self) {
        match self.phase {
            Phase::Closed => {}
            Phase::Quitting => {
                // RFC 5321 §4.1.1.10 wants a 221 first; a server that just closes has still
                // ended the session.
                self.phase = Phase::Closed;
                self.expect.clear();
                self.timer = None;
                self.events.push_back(Event::Closed(None));
            }
            _ => self.fail(ClientError::ConnectionClosed, false),
        }
    }

    /// Lets time pass: a reply not received by its deadline ends the session with
    /// [`ClientError::Timeout`].
    pub fn handle_timeout(&mut self, now: Instant) {
        self.arm(now);
        if let Some(armed) = self.timer
            && armed.deadline <= now
        {
            let waiting_for = armed.waiting_for;
            self.fail(ClientError::Timeout { waiting_for }, false);
        }
    }

    /// When to call `handle_timeout` next, if a reply (or content) is awaited.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timer.map(|t| t.deadline)
    }

    /// The next event for the application.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The bytes to send to the server now, if any. `now` starts the timer of the reply they
    /// ask for (RFC 5321 §4.5.3.2 counts from the command).
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Bytes> {
        if self.output.is_empty() {
            self.arm(now);
            return None;
        }
        if self.phase == Phase::Data {
            self.data_serial += 1;
        }
        self.arm(now);
        Some(self.output.split().freeze())
    }

    // ---- the application's calls -------------------------------------------------------

    /// The TLS handshake after [`Event::StartTls`] succeeded: the session sends EHLO again
    /// and forgets what it learnt before (RFC 3207 §4.2: "The client MUST discard any
    /// knowledge obtained from the server ... which was not obtained from the TLS negotiation
    /// itself").
    pub fn tls_established(&mut self, upgrade: TlsUpgrade) {
        let TlsUpgrade { _private: () } = upgrade;
        if self.phase != Phase::TlsHandshake {
            return;
        }
        self.phase = Phase::Setup;
        self.tls_active = true;
        self.extensions = Extensions::default();
        self.esmtp = false;
        self.input.clear();
        self.send_hello(false);
    }

    /// Starts a message: sends MAIL, and with PIPELINING every RCPT and DATA in the same
    /// write (RFC 2920 §3.1).
    ///
    /// # Errors
    ///
    /// [`SendError`] when the session is not [ready](Self::is_ready) or the server cannot
    /// take this message (SMTPUTF8, BINARYMIME, REQUIRETLS not offered; larger than its SIZE).
    /// Nothing is sent then.
    pub fn send_message(&mut self, envelope: Envelope) -> Result<(), SendError> {
        if self.phase != Phase::Ready {
            return Err(SendError::NotReady("a message"));
        }
        if envelope.recipients.is_empty() {
            return Err(SendError::NoRecipients);
        }
        let ext = &self.extensions;
        // RFC 6531 §3.4: a UTF-8 envelope only to a server that offers SMTPUTF8.
        let smtputf8 = envelope.needs_smtputf8();
        if smtputf8 && !ext.smtputf8 {
            return Err(SendError::Smtputf8NotOffered);
        }
        // RFC 3030 §3: BINARYMIME needs both BINARYMIME and CHUNKING.
        let binary = envelope.body == Body::BinaryMime;
        if binary && !(ext.binary_mime && ext.chunking) {
            return Err(SendError::BinaryMimeNotOffered);
        }
        // RFC 8689 §4.1: REQUIRETLS only over TLS to a server that offers it.
        if envelope.params.requiretls && !(ext.requiretls && self.tls_active) {
            return Err(SendError::RequireTlsNotOffered);
        }
        // RFC 1870 §6.1: do not send what the server already said it will refuse.
        if let (Some(limit), Some(size)) = (ext.size, envelope.size)
            && limit > 0
            && size > limit
        {
            return Err(SendError::TooLarge { size, limit });
        }

        let mut params = envelope.params;
        params.size = envelope.size.filter(|_| ext.size.is_some());
        params.body = match envelope.body {
            // RFC 6152: BODY=8BITMIME only when offered. Like Postfix, 8-bit content goes to a
            // server without 8BITMIME unlabelled rather than not at all (no conversion here).
            Body::EightBitMime if ext.eight_bit_mime => Some(Body::EightBitMime),
            Body::BinaryMime => Some(Body::BinaryMime),
            _ => None,
        };
        params.smtputf8 = smtputf8;
        // Parameters of extensions the server does not offer would get a 555.
        if !ext.dsn {
            params.ret = None;
            params.envid = None;
        }
        if !ext.mt_priority {
            params.mt_priority = None;
        }
        let mut recipients = envelope.recipients;
        if !ext.dsn {
            for r in &mut recipients {
                r.params.notify = None;
                r.params.orcpt = None;
            }
        }
        let use_bdat = binary || (self.config.prefer_chunking && ext.chunking);
        let pipelined = ext.pipelining;
        self.messages += 1;
        let count = recipients.len();
        let transfer = if use_bdat {
            Transfer::Bdat(Newlines {
                pending_cr: false,
                binary,
            })
        } else {
            Transfer::Data(DataEncoder::new())
        };
        let from = envelope.from;
        self.write_command(&Command::Mail { from, params });
        self.await_reply(Pending::Mail);
        if pipelined {
            for (i, r) in recipients.iter().enumerate() {
                self.write_command(&Command::Rcpt {
                    to: r.path.clone(),
                    params: r.params.clone(),
                });
                self.await_reply(Pending::Rcpt(i));
            }
            if !use_bdat {
                // RFC 2920 §3.1: DATA may end the group; its reply tells whether to go on.
                self.write_command(&Command::Data);
                self.await_reply(Pending::Data);
            }
        }
        self.txn = Some(Transaction {
            id: self.messages,
            recipients,
            rcpt: vec![None; count],
            outcome: vec![None; count],
            mail: None,
            pipelined,
            transfer,
            bdat_outstanding: 0,
            bdat_last_pending: false,
            content_failure: None,
            data: None,
            finals: 0,
            needs_rset: false,
        });
        self.phase = Phase::Envelope;
        Ok(())
    }

    /// Sends the next piece of the content, after [`Event::DataReady`].
    ///
    /// With DATA the piece is dot-stuffed and every bare CR or LF becomes CRLF
    /// ([`DataEncoder`]); with BDAT it becomes one chunk (newlines made CRLF unless the body is
    /// BINARYMIME). Take the bytes with `poll_transmit` before feeding more: the session keeps
    /// what it is given until then.
    ///
    /// # Errors
    ///
    /// [`SendError::NotReady`] outside the data phase, [`SendError::WrongPermit`] for the
    /// permit of another message, [`SendError::Busy`] when BDAT chunks fill the window.
    pub fn send_data(&mut self, permit: &DataPermit, chunk: &[u8]) -> Result<(), SendError> {
        if self.phase != Phase::Data {
            return Err(SendError::NotReady("content"));
        }
        let window = self.bdat_window();
        let Some(txn) = self.txn.as_mut() else {
            return Err(SendError::NotReady("content"));
        };
        if txn.id != permit.message {
            return Err(SendError::WrongPermit);
        }
        if txn.content_failure.is_some() {
            return Ok(());
        }
        match &mut txn.transfer {
            Transfer::Data(encoder) => {
                encoder.encode(chunk, &mut self.output);
            }
            Transfer::Bdat(newlines) => {
                if txn.bdat_outstanding >= window {
                    return Err(SendError::Busy);
                }
                let mut body = Vec::with_capacity(chunk.len() + chunk.len() / 32 + 2);
                newlines.encode(chunk, &mut body);
                if body.is_empty() {
                    return Ok(());
                }
                txn.bdat_outstanding += 1;
                let size = body.len() as u64;
                let command = Command::Bdat { size, last: false }.to_bytes();
                self.output.extend_from_slice(&command);
                self.output.extend_from_slice(&body);
                self.await_reply(Pending::Bdat);
            }
        }
        Ok(())
    }

    /// Ends the content: the final `.` after DATA, or `BDAT n LAST`. The session then reads
    /// the reply (with LMTP, one per accepted recipient) and reports [`Event::MessageDone`].
    ///
    /// # Errors
    ///
    /// [`SendError::NotReady`] outside the data phase, [`SendError::WrongPermit`] for another
    /// message's permit.
    pub fn finish_data(&mut self, permit: DataPermit) -> Result<(), SendError> {
        if self.phase != Phase::Data {
            return Err(SendError::NotReady("the end of content"));
        }
        let window = self.bdat_window();
        let Some(txn) = self.txn.as_mut() else {
            return Err(SendError::NotReady("the end of content"));
        };
        if txn.id != permit.message {
            return Err(SendError::WrongPermit);
        }
        self.phase = Phase::Finishing;
        let finals = if self.config.lmtp {
            txn.accepted().count()
        } else {
            1
        };
        if txn.content_failure.is_some() {
            self.maybe_finish_transaction();
            return Ok(());
        }
        let transfer = std::mem::replace(&mut txn.transfer, Transfer::Bdat(Newlines::default()));
        match transfer {
            Transfer::Data(encoder) => {
                encoder.finish(&mut self.output);
                for _ in 0..finals {
                    self.await_reply(Pending::Final);
                }
            }
            Transfer::Bdat(newlines) => {
                txn.transfer = Transfer::Bdat(newlines);
                if txn.bdat_outstanding >= window {
                    txn.bdat_last_pending = true;
                } else {
                    self.send_bdat_last();
                }
            }
        }
        Ok(())
    }

    /// Sends RSET (RFC 5321 §4.1.1.5) when the session is ready, for example to check a
    /// cached connection before reusing it; [`Event::Reset`] follows. (After a failed
    /// transaction the session sends RSET by itself.)
    ///
    /// # Errors
    ///
    /// [`SendError::NotReady`] unless the session is ready.
    pub fn rset(&mut self) -> Result<(), SendError> {
        if self.phase != Phase::Ready {
            return Err(SendError::NotReady("RSET"));
        }
        self.write_command(&Command::Rset);
        self.await_reply(Pending::Rset);
        self.phase = Phase::Resetting;
        Ok(())
    }

    /// Sends QUIT; [`Event::Closed`] follows.
    ///
    /// # Errors
    ///
    /// [`SendError::NotReady`] unless the session is ready (between messages).
    pub fn quit(&mut self) -> Result<(), SendError> {
        if self.phase != Phase::Ready {
            return Err(SendError::NotReady("QUIT"));
        }
        self.write_command(&Command::Quit);
        self.await_reply(Pending::Quit);
        self.phase = Phase::Quitting;
        Ok(())
    }

    // ---- internals ---------------------------------------------------------------------

    fn bdat_window(&self) -> usize {
        if self.extensions.pipelining {
            self.config.bdat_window.max(1)
        } else {
            1
        }
    }

    /// The most octets one reply may span under the limits.
    fn max_reply_octets(&self) -> usize {
        let limits = &self.config.limits;
        limits.reply_line.saturating_mul(limits.reply_lines.max(1))
    }

    fn write_command(&mut self, command: &Command) {
        self.output.extend_from_slice(&command.to_bytes());
    }

    fn await_reply(&mut self, what: Pending) {
        self.expect.push_back(Awaited {
            what,
            serial: self.next_serial,
        });
        self.next_serial += 1;
    }

    /// Brings the timer in line with what is awaited, starting a new one at `now`.
    fn arm(&mut self, now: Instant) {
        let timeouts = self.config.timeouts;
        let wanted: Option<(TimerKey, Duration, &'static str)> = match self.phase {
            Phase::Closed | Phase::TlsHandshake | Phase::Ready => None,
            Phase::Data if self.expect.is_empty() => Some((
                TimerKey::DataBlock(self.data_serial),
                timeouts.data_block,
                "the application to send content",
            )),
            _ => self.expect.front().map(|a| {
                let duration = match a.what {
                    Pending::Greeting => timeouts.greeting,
                    Pending::Mail => timeouts.mail,
                    Pending::Rcpt(_) => timeouts.rcpt,
                    Pending::Data => timeouts.data_init,
                    Pending::Final | Pending::DiscardedData | Pending::Bdat => timeouts.data_end,
                    _ => timeouts.other,
                };
                (TimerKey::Reply(a.serial), duration, a.what.describe())
            }),
        };
        self.timer = match (wanted, self.timer) {
            (None, _) => None,
            (Some((key, _, _)), Some(armed)) if armed.key == key => Some(armed),
            (Some((key, duration, waiting_for)), _) => Some(Armed {
                key,
                deadline: now + duration,
                waiting_for,
            }),
        };
    }

    fn read_replies(&mut self) {
        loop {
            if matches!(self.phase, Phase::Closed | Phase::TlsHandshake) {
                return;
            }
            match Reply::decode(&self.input, &self.config.limits) {
                Ok(Some((reply, used))) => {
                    self.input.advance(used);
                    self.on_reply(reply);
                }
                Ok(None) => return,
                Err(e) => {
                    self.fail(ClientError::BadReply(e), false);
                    return;
                }
            }
        }
    }

    /// Ends the session with `error`; a polite QUIT is queued when the server is sane.
    fn fail(&mut self, error: ClientError, quit: bool) {
        self.phase = Phase::Closed;
        self.expect.clear();
        self.input.clear();
        self.timer = None;
        self.txn = None;
        if quit {
            self.write_command(&Command::Quit);
        }
        self.events.push_back(Event::Error(error));
    }

    fn on_reply(&mut self, reply: Reply) {
        let Some(awaited) = self.expect.pop_front() else {
            if reply.code() == ReplyCode::SERVICE_NOT_AVAILABLE {
                // A 421 while the content is being written (or while idle): the recipients
                // of a message under way are deferred.
                self.server_closing(Pending::Final, reply);
            } else {
                self.fail(ClientError::UnexpectedReply(reply), false);
            }
            return;
        };
        if reply.code() == ReplyCode::SERVICE_NOT_AVAILABLE && awaited.what != Pending::Quit {
            // RFC 5321 §3.8: 421 and the server closes; nothing else will be answered.
            self.server_closing(awaited.what, reply);
            return;
        }
        match awaited.what {
            Pending::Greeting => {
                if reply.code() == ReplyCode::SERVICE_READY {
                    self.events.push_back(Event::Greeting(reply));
                    self.send_hello(false);
                } else {
                    // RFC 5321 §3.1: after a 554 greeting "the client SHOULD send QUIT".
                    self.fail(ClientError::GreetingRefused(reply), true);
                }
            }
            Pending::Ehlo | Pending::Helo | Pending::Lhlo => self.on_hello(awaited.what, reply),
            Pending::StartTls => self.on_starttls(reply),
            Pending::AuthLoginUser | Pending::AuthLoginPassword
                if reply.code() == ReplyCode::AUTH_CONTINUE =>
            {
                let Some(credentials) = self.config.credentials.as_ref() else {
                    self.fail(ClientError::AuthNotOffered, true);
                    return;
                };
                let response = if awaited.what == Pending::AuthLoginUser {
                    auth::login_response(&credentials.username)
                } else {
                    auth::login_response(credentials.password.expose())
                };
                self.output.extend_from_slice(response.expose().as_bytes());
                self.output.extend_from_slice(b"\r\n");
                self.await_reply(if awaited.what == Pending::AuthLoginUser {
                    Pending::AuthLoginPassword
                } else {
                    Pending::Auth
                });
            }
            Pending::Auth | Pending::AuthLoginUser | Pending::AuthLoginPassword => {
                if reply.code() == ReplyCode::AUTH_SUCCEEDED {
                    self.authenticated = true;
                    self.events.push_back(Event::Authenticated(reply));
                    self.after_hello();
                } else {
                    self.fail(ClientError::AuthFailed(reply), true);
                }
            }
            Pending::Mail => self.on_mail(reply),
            Pending::Rcpt(i) => self.on_rcpt(i, reply),
            Pending::Data => self.on_data(reply),
            Pending::DiscardedData => self.maybe_finish_transaction(),
            Pending::Bdat => self.on_bdat(reply),
            Pending::Final => self.on_final(reply),
            Pending::RsetAfterFailure => {
                self.finish_transaction();
                if reply.is_positive() {
                    self.phase = Phase::Ready;
                } else {
                    self.fail(ClientError::RsetFailed(reply), true);
                }
            }
            Pending::Rset => {
                if reply.is_positive() {
                    self.phase = Phase::Ready;
                    self.events.push_back(Event::Reset(reply));
                } else {
                    self.fail(ClientError::RsetFailed(reply), true);
                }
            }
            Pending::Quit => {
                self.phase = Phase::Closed;
                self.expect.clear();
                self.timer = None;
                self.events.push_back(Event::Closed(Some(reply)));
            }
        }
    }

    /// 421: every recipient without a result gets this reply, then the session is over.
    fn server_closing(&mut self, what: Pending, reply: Reply) {
        if let Some(mut txn) = self.txn.take() {
            let stage = match what {
                Pending::Mail => Stage::Mail,
                Pending::Rcpt(_) => Stage::Rcpt,
                _ => Stage::Data,
            };
            if txn.mail.is_none() {
                txn.mail = Some(reply.clone());
            }
            for outcome in &mut txn.outcome {
                if outcome.is_none() {
                    *outcome = Some((reply.clone(), stage));
                }
            }
            self.events.push_back(Event::MessageDone(result_of(txn)));
        }
        self.fail(ClientError::ServiceClosing(reply), false);
    }

    fn send_hello(&mut self, helo: bool) {
        let host = self.config.hostname.clone();
        let (command, what) = if self.config.lmtp {
            (Command::Lhlo(host), Pending::Lhlo)
        } else if helo {
            (Command::Helo(host), Pending::Helo)
        } else {
            (Command::Ehlo(host), Pending::Ehlo)
        };
        self.write_command(&command);
        self.await_reply(what);
    }

    fn on_hello(&mut self, what: Pending, reply: Reply) {
        if reply.is_positive() {
            let esmtp = what != Pending::Helo;
            self.extensions = if esmtp {
                Extensions::from_lines(reply.lines().get(1..).unwrap_or_default())
            } else {
                Extensions::default()
            };
            self.esmtp = esmtp;
            self.events.push_back(Event::Hello {
                reply,
                extensions: self.extensions.clone(),
                esmtp,
            });
            self.after_hello();
        } else if what == Pending::Ehlo && reply.code().is_permanent() {
            // RFC 5321 §3.2: a server without extensions answers EHLO with an error ("500,
            // 501, 502, or 550", §4.1.4); the client then uses HELO.
            self.send_hello(true);
        } else {
            self.fail(ClientError::HelloRefused(reply), true);
        }
    }

    /// After a hello (or AUTH): STARTTLS, then AUTH, then ready.
    fn after_hello(&mut self) {
        if !self.tls_active && self.config.tls != TlsPolicy::Never && !self.starttls_declined {
            if self.extensions.starttls {
                self.write_command(&Command::StartTls);
                self.await_reply(Pending::StartTls);
                return;
            }
            if self.config.tls == TlsPolicy::Required {
                self.fail(ClientError::TlsNotOffered, true);
                return;
            }
        }
        if let Some(credentials) = self.config.credentials.as_ref()
            && !self.authenticated
        {
            if !self.tls_active && !self.config.allow_plaintext_auth {
                self.fail(ClientError::AuthNeedsTls, true);
                return;
            }
            let offered = &self.extensions.auth;
            if offered.contains(&Mechanism::plain()) {
                let initial_response = Some(auth::plain_response(credentials));
                self.write_command(&Command::Auth {
                    mechanism: Mechanism::plain(),
                    initial_response,
                });
                self.await_reply(Pending::Auth);
            } else if offered.contains(&Mechanism::login()) {
                self.write_command(&Command::Auth {
                    mechanism: Mechanism::login(),
                    initial_response: None,
                });
                self.await_reply(Pending::AuthLoginUser);
            } else {
                self.fail(ClientError::AuthNotOffered, true);
            }
            return;
        }
        self.phase = Phase::Ready;
        self.events.push_back(Event::Ready);
    }

    fn on_starttls(&mut self, reply: Reply) {
        if reply.code() == ReplyCode::SERVICE_READY {
            if !self.input.is_empty() {
                let octets = self.input.len();
                self.fail(ClientError::StartTlsInjection { octets }, false);
                return;
            }
            self.phase = Phase::TlsHandshake;
            self.timer = None;
            self.events
                .push_back(Event::StartTls(TlsUpgrade { _private: () }));
        } else if self.config.tls == TlsPolicy::Required {
            self.fail(ClientError::StartTlsRefused(reply), true);
        } else {
            // Opportunistic: go on in plaintext (Postfix's `may`).
            self.starttls_declined = true;
            self.after_hello();
        }
    }

    fn on_mail(&mut self, reply: Reply) {
        let Some(txn) = self.txn.as_mut() else { return };
        let ok = reply.is_positive();
        if !ok {
            for outcome in &mut txn.outcome {
                *outcome = Some((reply.clone(), Stage::Mail));
            }
        }
        txn.mail = Some(reply);
        if txn.pipelined {
            // The RCPT and DATA replies follow.
            return;
        }
        if ok {
            self.send_rcpt(0);
        } else {
            // No transaction was opened: nothing to reset.
            self.finish_transaction();
            self.phase = Phase::Ready;
        }
    }

    fn send_rcpt(&mut self, i: usize) {
        let Some(txn) = self.txn.as_ref() else { return };
        let Some(r) = txn.recipients.get(i) else {
            return;
        };
        let command = Command::Rcpt {
            to: r.path.clone(),
            params: r.params.clone(),
        };
        self.write_command(&command);
        self.await_reply(Pending::Rcpt(i));
    }

    fn on_rcpt(&mut self, i: usize, reply: Reply) {
        let Some(txn) = self.txn.as_mut() else { return };
        let mail_ok = txn.mail_ok();
        if mail_ok {
            if !reply.is_positive()
                && let Some(outcome) = txn.outcome.get_mut(i)
            {
                *outcome = Some((reply.clone(), Stage::Rcpt));
            }
            if let Some(slot) = txn.rcpt.get_mut(i) {
                *slot = Some(reply.clone());
            }
            self.events.push_back(Event::Recipient { index: i, reply });
        }
        let Some(txn) = self.txn.as_ref() else { return };
        let last = i + 1 == txn.recipients.len();
        if !txn.pipelined && !last {
            self.send_rcpt(i + 1);
            return;
        }
        if !last {
            return;
        }
        let use_bdat = matches!(txn.transfer, Transfer::Bdat(_));
        if txn.any_accepted() {
            if use_bdat {
                self.start_content();
            } else if !txn.pipelined {
                self.write_command(&Command::Data);
                self.await_reply(Pending::Data);
            }
        } else if !mail_ok && txn.pipelined && !use_bdat {
            // MAIL failed: the DATA reply (a 503) is still to come.
        } else if txn.pipelined && !use_bdat {
            // RFC 2920 §3.1: the DATA already sent gets its 503/554; then RSET.
        } else {
            // Every recipient refused: no DATA (RFC 5321 §3.3), RSET instead.
            self.reset_after_failure();
        }
    }

    fn on_data(&mut self, reply: Reply) {
        let Some(txn) = self.txn.as_mut() else { return };
        if reply.code() == ReplyCode::START_MAIL_INPUT {
            if txn.any_accepted() {
                self.start_content();
            } else {
                // RFC 2920 §3.1: "If the DATA command was accepted the SMTP client should send
                // a single dot."
                txn.needs_rset = true;
                self.output.extend_from_slice(b".\r\n");
                self.await_reply(Pending::DiscardedData);
                self.phase = Phase::Finishing;
            }
            return;
        }
        if txn.any_accepted() {
            for i in txn.accepted().collect::<Vec<_>>() {
                if let Some(outcome) = txn.outcome.get_mut(i) {
                    *outcome = Some((reply.clone(), Stage::Data));
                }
            }
            txn.data = Some(reply);
        }
        self.reset_after_failure();
    }

    fn start_content(&mut self) {
        let Some(txn) = self.txn.as_ref() else { return };
        let permit = DataPermit { message: txn.id };
        self.phase = Phase::Data;
        self.events.push_back(Event::DataReady(permit));
    }

    fn send_bdat_last(&mut self) {
        let Some(txn) = self.txn.as_mut() else { return };
        txn.bdat_last_pending = false;
        let tail = match &mut txn.transfer {
            Transfer::Bdat(newlines) => newlines.finish(),
            Transfer::Data(_) => b"",
        };
        let finals = if self.config.lmtp {
            txn.accepted().count()
        } else {
            1
        };
        let command = Command::Bdat {
            size: tail.len() as u64,
            last: true,
        }
        .to_bytes();
        self.output.extend_from_slice(&command);
        self.output.extend_from_slice(tail);
        for _ in 0..finals {
            self.await_reply(Pending::Final);
        }
    }

    fn on_bdat(&mut self, reply: Reply) {
        let Some(txn) = self.txn.as_mut() else { return };
        txn.bdat_outstanding = txn.bdat_outstanding.saturating_sub(1);
        if !reply.is_positive() && txn.content_failure.is_none() {
            // RFC 3030 §2: a failed chunk fails the transaction; the rest is not sent.
            for i in txn.accepted().collect::<Vec<_>>() {
                if let Some(outcome) = txn.outcome.get_mut(i) {
                    *outcome = Some((reply.clone(), Stage::Data));
                }
            }
            txn.data = Some(reply.clone());
            txn.content_failure = Some(reply);
            txn.needs_rset = true;
            txn.bdat_last_pending = false;
        }
        if txn.bdat_last_pending {
            self.send_bdat_last();
        } else if self.phase == Phase::Finishing {
            self.maybe_finish_transaction();
        }
    }

    fn on_final(&mut self, reply: Reply) {
        let lmtp = self.config.lmtp;
        let Some(txn) = self.txn.as_mut() else { return };
        let n = txn.finals;
        txn.finals += 1;
        if txn.content_failure.is_none() {
            let accepted: Vec<usize> = txn.accepted().collect();
            let targets: Vec<usize> = if lmtp {
                // RFC 2033 §4.2: one reply per successful RCPT, in RCPT order.
                accepted.get(n).copied().into_iter().collect()
            } else {
                accepted
            };
            for i in targets {
                if let Some(outcome) = txn.outcome.get_mut(i) {
                    *outcome = Some((reply.clone(), Stage::Data));
                }
            }
            if !reply.is_positive() {
                txn.needs_rset = true;
            }
            if txn.data.is_none() {
                txn.data = Some(reply);
            }
        }
        self.maybe_finish_transaction();
    }

    /// Queues RSET after a failed transaction; the result is reported after its reply.
    fn reset_after_failure(&mut self) {
        if let Some(txn) = self.txn.as_mut() {
            txn.needs_rset = true;
        }
        self.phase = Phase::Finishing;
        self.maybe_finish_transaction();
    }

    /// Once no reply of the transaction is outstanding: RSET if it failed, else report.
    fn maybe_finish_transaction(&mut self) {
        let Some(txn) = self.txn.as_ref() else { return };
        let pending = self.expect.iter().any(|a| {
            matches!(
                a.what,
                Pending::Mail
                    | Pending::Rcpt(_)
                    | Pending::Data
                    | Pending::DiscardedData
                    | Pending::Bdat
                    | Pending::Final
                    | Pending::RsetAfterFailure
            )
        });
        if pending || self.phase == Phase::Data {
            return;
        }
        if txn.needs_rset {
            self.write_command(&Command::Rset);
            self.await_reply(Pending::RsetAfterFailure);
            if let Some(txn) = self.txn.as_mut() {
                txn.needs_rset = false;
            }
            self.phase = Phase::Finishing;
            return;
        }
        if self.finish_transaction() {
            self.phase = Phase::Ready;
        }
    }

    /// Reports the transaction's result. Returns whether there was one.
    fn finish_transaction(&mut self) -> bool {
        match self.txn.take() {
            Some(txn) => {
                self.events.push_back(Event::MessageDone(result_of(txn)));
                true
            }
            None => false,
        }
    }
}

fn result_of(txn: Transaction) -> MessageResult {
    let fallback = txn.mail.clone().unwrap_or_else(|| {
        Reply::new(ReplyCode::LOCAL_ERROR, "4.4.2 session ended before a reply")
    });
    let recipients = txn
        .recipients
        .into_iter()
        .zip(txn.outcome)
        .zip(txn.rcpt)
        .map(|((r, outcome), rcpt)| {
            let (reply, stage) = outcome.unwrap_or_else(|| match rcpt {
                // Accepted by RCPT, no later reply (cannot happen after a finished transfer).
                Some(reply) => (reply, Stage::Rcpt),
                None => (fallback.clone(), Stage::Mail),
            });
            RecipientResult {
                path: r.path,
                reply,
                stage,
            }
        })
        .collect();
    MessageResult {
        mail: txn.mail.unwrap_or(fallback),
        recipients,
        data: txn.data,
    }
}
