//! The server session's state machine.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use bytes::{Buf, Bytes, BytesMut};

use crate::bdat::{BdatConfig, BdatEvent, BdatReader};
use crate::codec::base64;
use crate::codec::line::{Line, next_line};
use crate::data::{DataConfig, DataDecoder, DataEvent, DataOutcome, DataRejection};
use crate::server::config::ServerConfig;
use crate::server::event::{
    AuthRequest, AuthToken, Credentials, Event, MailRequest, MailToken, MessageEnd, MessageToken,
    RcptRequest, RcptToken,
};
use crate::server::sasl;
use crate::types::address::Host;
use crate::types::command::{Command, Mechanism};
use crate::types::extension::Extensions;
use crate::types::param::{Body, Hold, MailParams, RcptParams};
use crate::types::reply::{Reply, ReplyCode};
use crate::types::secret::Secret;

/// Input is copied into the session's buffer at most this many octets at a time, so a
/// huge `handle_input` slice never makes the buffer huge: each piece is parsed before the
/// next is copied.
const INPUT_PIECE: usize = 4096;

/// Above this many buffered input octets, [`ServerSession::wants_input`] says no: the
/// adapter should stop reading until the application has answered.
const INPUT_HIGH_WATER: usize = 64 * 1024;

/// RFC 4954 §4: "a server implementation MUST be able to accept" SASL response lines of
/// "at least 12288 octets".
const SASL_LINE: usize = 12288 + 2;

/// An answer that does not fit the session's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AnswerError {
    /// The token is not the one the session waits for (it belongs to another session, or
    /// the session closed in the meantime). Nothing was sent.
    #[error("the session is not waiting for this token")]
    UnexpectedToken,
    /// An LMTP answer with a number of results other than the accepted recipients.
    #[error("expected {expected} per-recipient results, got {got}")]
    RecipientCount {
        /// Accepted recipients in the transaction.
        expected: usize,
        /// Results given.
        got: usize,
    },
}

/// The sans-IO server side of one SMTP (or LMTP) connection.
///
/// # Call order
///
/// ```text
///            new(config, now) ── queues the 220 greeting
///                  │
///   ┌──────────────▼───────────────────────────────────────────────────────┐
///   │ handle_input(bytes) / handle_timeout(now) / handle_eof()              │
///   │ loop { poll_event() } ── Mail/Rcpt/MessageEnd/Auth carry a token:     │
///   │                          answer_*(token, ..) before more is parsed    │
///   │ poll_transmit() ── write it all                                       │
///   │ poll_timeout() ── sleep until then (or read), then handle_timeout(now)│
///   └──────────────┬──────────────────────────────┬────────────────────────┘
///                  │ Event::StartTls               │ Event::Closed
///                  ▼                               ▼
///    write transmits, TLS handshake,        write transmits, close
///    handle_tls_established()
/// ```
///
/// Commands are parsed one at a time and answered in order (RFC 2920 §3.1: replies in the
/// order of the commands). While an answer from the application is pending, the session
/// parses nothing more: a pipelined `DATA` behind a `RCPT` waits for that `RCPT`'s answer,
/// so the application never sees a command past a decision it has not made. After `354`
/// the bytes that follow are message content, after a BDAT command its octets, after the
/// STARTTLS `220` nothing: the buffered plaintext is dropped (RFC 3207 §4.2).
///
/// `poll_timeout` may return an instant that has already passed: then call
/// `handle_timeout(now)` at once; the session uses that call to read the clock and start the
/// next timer (it is given no clock otherwise).
///
/// # Examples
///
/// ```
/// use std::time::Instant;
/// use mailroom_smtp_proto::server::{Event, ServerConfig, ServerSession};
///
/// let mut session = ServerSession::new(ServerConfig::new("mx.example.org").into(), Instant::now());
/// session.handle_input(b"EHLO client.example\r\nMAIL FROM:<a@example.com>\r\n");
/// while let Some(event) = session.poll_event() {
///     if let Event::Mail(mail) = event {
///         session.answer_mail(mail.token, Ok(())).unwrap();
///     }
/// }
/// let out = session.poll_transmit().unwrap();
/// assert!(out.starts_with(b"220 mx.example.org ESMTP"));
/// assert!(out.ends_with(b"250 2.1.0 Ok\r\n"));
/// ```
#[derive(Debug)]
pub struct ServerSession {
    config: Arc<ServerConfig>,
    input: BytesMut,
    out: Vec<u8>,
    events: VecDeque<Event>,
    state: State,
    /// `Some(extended)` after a successful EHLO/LHLO (true) or HELO (false).
    hello: Option<bool>,
    tls: bool,
    authenticated: bool,
    transaction: Option<Transaction>,
    errors: u32,
    seq: u64,
    now: Instant,
    deadline: Option<Instant>,
    shutting_down: bool,
}

#[derive(Debug)]
enum State {
    Command,
    /// A line was too long: drop input through the next LF, then send the reply.
    DiscardLine {
        auth: bool,
    },
    Data(DataDecoder),
    Bdat(BdatReader),
    /// A refused BDAT: read and drop its octets, then send `reply`.
    BdatDiscard {
        reader: BdatReader,
        reply: Reply,
    },
    Sasl(Sasl),
    Awaiting(Pending),
    /// `220 Ready to start TLS` queued; waiting for the adapter's handshake.
    Tls,
    Closed,
}

#[derive(Debug)]
enum Sasl {
    PlainResponse,
    LoginUser,
    LoginPassword { username: String },
}

#[derive(Debug)]
enum Pending {
    Mail {
        seq: u64,
        smtputf8: bool,
        body: Option<Body>,
    },
    Rcpt {
        seq: u64,
    },
    Message {
        seq: u64,
        recipients: usize,
    },
    Auth {
        seq: u64,
    },
}

#[derive(Debug)]
struct Transaction {
    smtputf8: bool,
    body: Option<Body>,
    recipients: usize,
    refused_recipients: usize,
    /// The message's BDAT reader, between chunks.
    bdat: Option<BdatReader>,
}

fn reply(code: ReplyCode, text: &str) -> Reply {
    Reply::new(code, text)
}

impl ServerSession {
    /// A session for a new connection; the greeting is queued for [`poll_transmit`].
    ///
    /// `now` starts the first command timer.
    ///
    /// [`poll_transmit`]: ServerSession::poll_transmit
    pub fn new(config: Arc<ServerConfig>, now: Instant) -> Self {
        let mut session = Self {
            input: BytesMut::new(),
            out: Vec::new(),
            events: VecDeque::new(),
            state: State::Command,
            hello: None,
            tls: false,
            authenticated: false,
            transaction: None,
            errors: 0,
            seq: 0,
            deadline: Some(now + config.command_timeout),
            now,
            shutting_down: false,
            config,
        };
        let greeting = format!("{} {}", session.config.hostname, session.config.greeting);
        session.send(reply(ReplyCode::SERVICE_READY, greeting.trim_end()));
        session
    }

    /// A session on a connection that is under TLS from its first octet (RFC 8314 §3,
    /// implicit TLS: the submissions port): as [`ServerSession::new`] with TLS active, so
    /// STARTTLS is not offered and AUTH that requires TLS is. Call it once the handshake is
    /// done; the greeting is queued.
    pub fn new_tls(config: Arc<ServerConfig>, now: Instant) -> Self {
        let mut session = Self::new(config, now);
        session.tls = true;
        session
    }

    /// The settings this session runs with.
    pub fn config(&self) -> &ServerConfig {
        &self.config
    }

    /// Whether TLS is active (after [`handle_tls_established`](Self::handle_tls_established)).
    pub fn is_tls(&self) -> bool {
        self.tls
    }

    /// Whether the client has authenticated.
    pub fn is_authenticated(&self) -> bool {
        self.authenticated
    }

    /// Whether the session is over: write the last transmits and close.
    pub fn is_closed(&self) -> bool {
        matches!(self.state, State::Closed)
    }

    /// Whether a mail transaction is open (after an accepted MAIL, until its end).
    pub fn in_transaction(&self) -> bool {
        self.transaction.is_some()
    }

    /// Whether the adapter should read more input now. False while the session waits for the
    /// application, for a TLS handshake, after the end, or when much input is already
    /// buffered: reading then would only grow the buffer.
    pub fn wants_input(&self) -> bool {
        !matches!(self.state, State::Awaiting(_) | State::Tls | State::Closed)
            && self.input.len() < INPUT_HIGH_WATER
    }

    /// The capacity of the session's input buffer, in octets (for tests that check memory
    /// stays bounded).
    pub fn buffer_capacity(&self) -> usize {
        self.input.capacity()
    }

    /// Bytes received from the client.
    ///
    /// Parsing stops at each decision the application must make; the rest stays buffered
    /// until the answer. Input after the STARTTLS `220` (and before
    /// [`handle_tls_established`](Self::handle_tls_established)) or after the end is dropped.
    pub fn handle_input(&mut self, mut data: &[u8]) {
        if !data.is_empty() {
            self.deadline = None;
        }
        while !data.is_empty() {
            match &self.state {
                State::Tls | State::Closed => return,
                State::Awaiting(_) => {
                    self.input.extend_from_slice(data);
                    return;
                }
                State::DiscardLine { auth } if self.input.is_empty() => {
                    // Drop the over-long line without copying it.
                    let auth = *auth;
                    match memchr::memchr(b'\n', data) {
                        Some(lf) => {
                            data = &data[lf + 1..];
                            self.state = State::Command;
                            self.line_too_long(auth);
                        }
                        None => return,
                    }
                }
                _ => {
                    let take = data.len().min(INPUT_PIECE);
                    self.input.extend_from_slice(&data[..take]);
                    data = &data[take..];
                    self.process();
                }
            }
        }
        self.process();
    }

    /// The peer closed its side (end of file). A transaction in progress is abandoned.
    pub fn handle_eof(&mut self) {
        if !self.is_closed() {
            self.close();
        }
    }

    /// The clock, when [`poll_timeout`](Self::poll_timeout)'s instant has come (or whenever
    /// the adapter likes). Past the deadline the session sends `421 4.4.2` and closes (RFC
    /// 5321 §4.5.3.2).
    pub fn handle_timeout(&mut self, now: Instant) {
        self.now = now;
        let Some(duration) = self.timer_duration() else {
            return;
        };
        match self.deadline {
            None => self.deadline = Some(now + duration),
            Some(deadline) if now >= deadline => {
                let text = format!("4.4.2 {} Error: timeout exceeded", self.config.hostname);
                self.send(reply(ReplyCode::SERVICE_NOT_AVAILABLE, &text));
                self.close();
            }
            Some(_) => {}
        }
    }

    /// When to call [`handle_timeout`](Self::handle_timeout) next; `None` while no timer runs
    /// (waiting for the application or a handshake, or closed).
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timer_duration()?;
        Some(self.deadline.unwrap_or(self.now))
    }

    /// The TLS handshake that followed [`Event::StartTls`] succeeded. RFC 3207 §4.2: "The
    /// server MUST discard any knowledge obtained from the client, such as the argument to
    /// the EHLO command, which was not obtained from the TLS negotiation itself": the session
    /// is back in its state before EHLO, with TLS active.
    pub fn handle_tls_established(&mut self) {
        if !matches!(self.state, State::Tls) {
            return;
        }
        self.input.clear();
        self.hello = None;
        self.authenticated = false;
        self.tls = true;
        self.state = State::Command;
        self.deadline = None;
    }

    /// Stop after the current transaction: at the next command with no transaction open the
    /// session answers `421 4.3.2 ... Service shutting down` and closes (graceful shutdown).
    pub fn handle_shutdown(&mut self) {
        self.shutting_down = true;
        self.process();
    }

    /// The next event for the application.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The bytes to send to the client now (all the replies queued so far), if any.
    pub fn poll_transmit(&mut self) -> Option<Bytes> {
        if self.out.is_empty() {
            None
        } else {
            Some(Bytes::from(std::mem::take(&mut self.out)))
        }
    }

    /// Accepts (`Ok`) or refuses (`Err(reply)`) a `MAIL FROM:` from [`Event::Mail`]. A `421`
    /// refusal ends the session once sent (as for `RCPT` and `AUTH`).
    ///
    /// # Errors
    ///
    /// [`AnswerError::UnexpectedToken`] when the session does not wait for this token.
    pub fn answer_mail(
        &mut self,
        token: MailToken,
        answer: Result<(), Reply>,
    ) -> Result<(), AnswerError> {
        let State::Awaiting(Pending::Mail {
            seq,
            smtputf8,
            body,
        }) = self.state
        else {
            return Err(AnswerError::UnexpectedToken);
        };
        if seq != token.0 {
            return Err(AnswerError::UnexpectedToken);
        }
        self.state = State::Command;
        match answer {
            Ok(()) => {
                self.transaction = Some(Transaction {
                    smtputf8,
                    body,
                    recipients: 0,
                    refused_recipients: 0,
                    bdat: None,
                });
                self.send(reply(ReplyCode::OK, "2.1.0 Ok"));
            }
            Err(refusal) => self.refuse(refusal),
        }
        self.resume();
        Ok(())
    }

    /// Accepts or refuses a `RCPT TO:` from [`Event::Rcpt`]; a `421` refusal ends the
    /// session once sent.
    ///
    /// # Errors
    ///
    /// [`AnswerError::UnexpectedToken`] when the session does not wait for this token.
    pub fn answer_rcpt(
        &mut self,
        token: RcptToken,
        answer: Result<(), Reply>,
    ) -> Result<(), AnswerError> {
        let State::Awaiting(Pending::Rcpt { seq }) = self.state else {
            return Err(AnswerError::UnexpectedToken);
        };
        if seq != token.0 {
            return Err(AnswerError::UnexpectedToken);
        }
        self.state = State::Command;
        let accepted = answer.is_ok();
        if let Some(t) = self.transaction.as_mut() {
            if accepted {
                t.recipients += 1;
            } else {
                t.refused_recipients += 1;
            }
        }
        match answer {
            Ok(()) => self.send(reply(ReplyCode::OK, "2.1.5 Ok")),
            Err(refusal) => self.refuse(refusal),
        }
        self.resume();
        Ok(())
    }

    /// Answers the end of a message from [`Event::MessageEnd`]: `Ok(queue_id)` once the
    /// message is on stable storage (`250 2.0.0 Ok: queued as <queue_id>`), or the refusal.
    /// In LMTP mode the answer is repeated for every accepted recipient. The transaction
    /// ends.
    ///
    /// # Errors
    ///
    /// [`AnswerError::UnexpectedToken`] when the session does not wait for this token.
    pub fn answer_message(
        &mut self,
        token: MessageToken,
        answer: Result<String, Reply>,
    ) -> Result<(), AnswerError> {
        let recipients = self.pending_message(&token)?;
        let count = if self.config.lmtp { recipients } else { 1 };
        self.finish_message(vec![answer; count]);
        Ok(())
    }

    /// LMTP (RFC 2033 §4.2): answers the end of a message with one result per accepted
    /// recipient, in the order they were accepted.
    ///
    /// # Errors
    ///
    /// [`AnswerError::UnexpectedToken`] when the session does not wait for this token;
    /// [`AnswerError::RecipientCount`] when `answers` does not hold one result per accepted
    /// recipient (or, outside LMTP mode, exactly one).
    pub fn answer_message_per_recipient(
        &mut self,
        token: MessageToken,
        answers: Vec<Result<String, Reply>>,
    ) -> Result<(), AnswerError> {
        let recipients = self.pending_message(&token)?;
        let expected = if self.config.lmtp { recipients } else { 1 };
        if answers.len() != expected {
            return Err(AnswerError::RecipientCount {
                expected,
                got: answers.len(),
            });
        }
        self.finish_message(answers);
        Ok(())
    }

    /// Accepts (`235 2.7.0`) or refuses (the reply, typically `535 5.7.8`) the credentials
    /// of [`Event::Auth`]; a `421` refusal (too many failures) ends the session once sent.
    ///
    /// # Errors
    ///
    /// [`AnswerError::UnexpectedToken`] when the session does not wait for this token.
    pub fn answer_auth(
        &mut self,
        token: AuthToken,
        answer: Result<(), Reply>,
    ) -> Result<(), AnswerError> {
        let State::Awaiting(Pending::Auth { seq }) = self.state else {
            return Err(AnswerError::UnexpectedToken);
        };
        if seq != token.0 {
            return Err(AnswerError::UnexpectedToken);
        }
        self.state = State::Command;
        match answer {
            Ok(()) => {
                self.authenticated = true;
                self.send(reply(
                    ReplyCode::AUTH_SUCCEEDED,
                    "2.7.0 Authentication successful",
                ));
            }
            Err(refusal) => self.refuse(refusal),
        }
        self.resume();
        Ok(())
    }

    /// The EHLO keywords this session offers now (STARTTLS and AUTH depend on TLS).
    pub fn extensions(&self) -> Extensions {
        let c = &self.config;
        Extensions {
            pipelining: c.pipelining,
            size: c.max_message_size,
            eight_bit_mime: c.eight_bit_mime,
            binary_mime: c.binary_mime && c.chunking,
            chunking: c.chunking,
            smtputf8: c.smtputf8,
            starttls: c.starttls && !self.tls,
            enhanced_status_codes: c.enhanced_status_codes,
            dsn: c.dsn,
            auth: if self.auth_offered() {
                c.auth_mechanisms.clone()
            } else {
                Vec::new()
            },
            ..Extensions::default()
        }
    }

    fn auth_offered(&self) -> bool {
        !self.config.auth_mechanisms.is_empty() && (self.tls || !self.config.auth_requires_tls)
    }

    fn pending_message(&self, token: &MessageToken) -> Result<usize, AnswerError> {
        match self.state {
            State::Awaiting(Pending::Message { seq, recipients }) if seq == token.0 => {
                Ok(recipients)
            }
            _ => Err(AnswerError::UnexpectedToken),
        }
    }

    fn finish_message(&mut self, answers: Vec<Result<String, Reply>>) {
        self.state = State::Command;
        self.transaction = None;
        for answer in answers {
            match answer {
                Ok(id) => {
                    let text = format!("2.0.0 Ok: queued as {id}");
                    self.send(reply(ReplyCode::OK, &text));
                }
                Err(refusal) => self.send(refusal),
            }
        }
        self.resume();
    }

    /// After an answer: restart the timer and parse what was buffered meanwhile.
    fn resume(&mut self) {
        self.deadline = None;
        self.process();
    }

    fn timer_duration(&self) -> Option<std::time::Duration> {
        match self.state {
            State::Awaiting(_) | State::Tls | State::Closed => None,
            State::Data(_) | State::Bdat(_) | State::BdatDiscard { .. } => {
                Some(self.config.data_timeout)
            }
            State::Command | State::DiscardLine { .. } | State::Sasl(_) => {
                Some(self.config.command_timeout)
            }
        }
    }

    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    /// Queues an application's refusal. RFC 5321 §3.8: "An SMTP server MUST NOT intentionally
    /// close the connection under normal operational circumstances [...] except [...] after
    /// the server returns a 421 response"; so a `421` refusal (Postfix's `421 4.7.0 ... too
    /// many AUTH failures`) ends the session after it is sent.
    fn refuse(&mut self, r: Reply) {
        let closing = r.code() == ReplyCode::SERVICE_NOT_AVAILABLE;
        self.send(r);
        if closing {
            self.close();
        }
    }

    /// Queues a reply. Every 4xx or 5xx reply counts as an error; at the limit the session
    /// ends with `421 4.7.0` (Postfix `smtpd_hard_error_limit`).
    fn send(&mut self, mut r: Reply) {
        if !self.config.enhanced_status_codes && r.enhanced().is_some() {
            r = Reply::from_parts(r.code(), None, r.lines().to_vec());
        }
        r.encode(&mut self.out);
        let code = r.code();
        if (code.is_transient() || code.is_permanent()) && code != ReplyCode::SERVICE_NOT_AVAILABLE
        {
            self.errors += 1;
            if self.errors >= self.config.max_errors && !self.is_closed() {
                let text = format!("4.7.0 {} Error: too many errors", self.config.hostname);
                self.send(reply(ReplyCode::SERVICE_NOT_AVAILABLE, &text));
                self.close();
            }
        }
    }

    /// Ends the session: any transaction is abandoned, buffered input dropped.
    fn close(&mut self) {
        if self.is_closed() {
            return;
        }
        self.reset_transaction();
        self.state = State::Closed;
        self.input = BytesMut::new();
        self.events.push_back(Event::Closed);
    }

    fn reset_transaction(&mut self) {
        if self.transaction.take().is_some() {
            self.events.push_back(Event::Reset);
        }
    }

    fn line_too_long(&mut self, auth: bool) {
        if auth {
            // RFC 4954 §4.
            self.send(reply(
                ReplyCode::SYNTAX_ERROR,
                "5.5.6 Authentication Exchange line is too long",
            ));
        } else {
            self.send(reply(ReplyCode::SYNTAX_ERROR, "5.5.2 Error: line too long"));
        }
    }

    /// Parses buffered input as far as the state allows.
    fn process(&mut self) {
        loop {
            let progress = match &mut self.state {
                State::Awaiting(_) | State::Tls | State::Closed => false,
                State::Command => self.step_command(),
                State::DiscardLine { auth } => {
                    let auth = *auth;
                    match memchr::memchr(b'\n', &self.input) {
                        Some(lf) => {
                            self.input.advance(lf + 1);
                            self.state = State::Command;
                            self.line_too_long(auth);
                            true
                        }
                        None => {
                            self.input.clear();
                            false
                        }
                    }
                }
                State::Data(decoder) => match decoder.decode_buf(&mut self.input) {
                    None => false,
                    Some(DataEvent::Content(piece)) => {
                        self.events.push_back(Event::DataChunk(piece));
                        true
                    }
                    Some(DataEvent::End(outcome)) => {
                        self.state = State::Command;
                        self.message_complete(outcome);
                        true
                    }
                },
                State::Bdat(reader) => match reader.decode_buf(&mut self.input) {
                    None => false,
                    Some(BdatEvent::Content(piece)) => {
                        self.events.push_back(Event::DataChunk(piece));
                        true
                    }
                    Some(BdatEvent::ChunkEnd(end)) => {
                        let State::Bdat(reader) =
                            std::mem::replace(&mut self.state, State::Command)
                        else {
                            return;
                        };
                        if end.last {
                            self.message_complete(end.outcome);
                        } else {
                            if let Some(t) = self.transaction.as_mut() {
                                t.bdat = Some(reader);
                            }
                            match end.outcome.rejection() {
                                Some(reason) => self.send(rejection_reply(reason)),
                                None => {
                                    let text =
                                        format!("2.0.0 Ok: {} octets received", end.chunk_size);
                                    self.send(reply(ReplyCode::OK, &text));
                                }
                            }
                        }
                        true
                    }
                },
                State::BdatDiscard { reader, .. } => match reader.decode_buf(&mut self.input) {
                    None => false,
                    Some(BdatEvent::Content(_)) => true,
                    Some(BdatEvent::ChunkEnd(_)) => {
                        if let State::BdatDiscard { reply, .. } =
                            std::mem::replace(&mut self.state, State::Command)
                        {
                            self.send(reply);
                        }
                        true
                    }
                },
                State::Sasl(_) => self.step_sasl(),
            };
            if !progress {
                break;
            }
        }
    }

    /// The end of a message's content (DATA's final dot, BDAT LAST).
    fn message_complete(&mut self, outcome: DataOutcome) {
        match outcome {
            DataOutcome::Accepted { size } => {
                let recipients = self.transaction.as_ref().map_or(0, |t| t.recipients);
                let seq = self.next_seq();
                self.state = State::Awaiting(Pending::Message { seq, recipients });
                self.events.push_back(Event::MessageEnd(MessageEnd {
                    size,
                    recipients,
                    token: MessageToken(seq),
                }));
            }
            DataOutcome::Rejected { reason, .. } => {
                // The transaction is over: the client starts again with MAIL. LMTP answers
                // once per accepted recipient (RFC 2033 §4.2).
                let recipients = self.transaction.as_ref().map_or(1, |t| t.recipients);
                self.reset_transaction();
                let r = rejection_reply(reason);
                let count = if self.config.lmtp {
                    recipients.max(1)
                } else {
                    1
                };
                for _ in 0..count {
                    self.send(r.clone());
                }
            }
        }
    }

    fn step_command(&mut self) -> bool {
        if self.shutting_down && self.transaction.is_none() {
            let text = format!("4.3.2 {} Service shutting down", self.config.hostname);
            self.send(reply(ReplyCode::SERVICE_NOT_AVAILABLE, &text));
            self.close();
            return false;
        }
        match next_line(&self.input, self.config.limits.max_command_line()) {
            Line::Incomplete => false,
            Line::TooLong => {
                self.state = State::DiscardLine { auth: false };
                true
            }
            Line::BareLf { consumed, .. } => {
                // RFC 5321 §2.3.8: lines end with CRLF. Refuse rather than guess.
                self.input.advance(consumed);
                self.send(reply(
                    ReplyCode::SYNTAX_ERROR,
                    "5.5.2 Error: bare <LF> received",
                ));
                true
            }
            Line::Complete { len, consumed } => {
                let line = self.input.split_to(consumed);
                self.command(&line[..len]);
                true
            }
        }
    }

    fn command(&mut self, line: &[u8]) {
        let command = match Command::decode(line, &self.config.limits, self.config.smtputf8) {
            Ok(command) => command,
            Err(e) => return self.send(e.reply()),
        };
        match command {
            Command::Ehlo(host) | Command::Helo(host) if self.config.lmtp => {
                let _ = host;
                // RFC 2033 §4.1: LMTP servers do not accept HELO or EHLO.
                self.send(reply(
                    ReplyCode::SYNTAX_ERROR,
                    "5.5.1 Error: use LHLO in LMTP",
                ));
            }
            Command::Lhlo(_) if !self.config.lmtp => {
                self.send(reply(
                    ReplyCode::SYNTAX_ERROR,
                    "5.5.2 Error: command not recognized",
                ));
            }
            Command::Ehlo(host) | Command::Lhlo(host) => self.hello(host, true),
            Command::Helo(host) => self.hello(host, false),
            Command::Mail { from, params } => self.mail(from, params),
            Command::Rcpt { to, params } => self.rcpt(to, params),
            Command::Data => self.data(),
            Command::Bdat { size, last } => self.bdat(size, last),
            Command::Rset => {
                self.reset_transaction();
                self.send(reply(ReplyCode::OK, "2.0.0 Ok"));
            }
            Command::Noop(_) => self.send(reply(ReplyCode::OK, "2.0.0 Ok")),
            Command::Quit => {
                self.send(reply(ReplyCode::CLOSING, "2.0.0 Bye"));
                self.close();
            }
            Command::Vrfy(_) => self.send(reply(
                ReplyCode::CANNOT_VERIFY,
                "2.0.0 Cannot VRFY user, but will accept message and attempt delivery",
            )),
            Command::Expn(_) => self.send(reply(
                ReplyCode::NOT_IMPLEMENTED,
                "5.5.1 Error: command not implemented",
            )),
            Command::Help(_) => {
                let code = ReplyCode::new(214).unwrap_or(ReplyCode::OK);
                self.send(reply(
                    code,
                    "2.0.0 See RFC 5321, https://www.rfc-editor.org/rfc/rfc5321",
                ));
            }
            Command::StartTls => self.starttls(),
            Command::Auth {
                mechanism,
                initial_response,
            } => self.auth(mechanism, initial_response),
        }
    }

    fn hello(&mut self, host: Host, extended: bool) {
        // RFC 5321 §4.1.4: EHLO later in a session resets it as RSET does.
        self.reset_transaction();
        self.hello = Some(extended);
        let r = if extended {
            let mut text = self.config.hostname.clone();
            for line in self.extensions().to_lines() {
                text.push('\n');
                text.push_str(&line);
            }
            reply(ReplyCode::OK, &text)
        } else {
            reply(ReplyCode::OK, &self.config.hostname)
        };
        self.send(r);
        self.events.push_back(Event::Hello { host, extended });
    }

    fn sequence_error(&mut self, text: &str) {
        self.send(reply(
            ReplyCode::BAD_SEQUENCE,
            &format!("5.5.1 Error: {text}"),
        ));
    }

    fn unsupported(&mut self, keyword: &str) {
        self.send(reply(
            ReplyCode::PARAMETERS_NOT_RECOGNIZED,
            &format!("5.5.4 Unsupported option: {keyword}"),
        ));
    }

    fn extra_allowed(&self, keyword: &str) -> bool {
        self.config
            .extra_parameters
            .iter()
            .any(|k| k.as_str() == keyword)
    }

    /// The first MAIL parameter of an extension this server does not offer.
    fn unsupported_mail_param(&self, p: &MailParams) -> Option<String> {
        let c = &self.config;
        let refused = [
            (p.size.is_some() && c.max_message_size.is_none(), "SIZE"),
            (
                p.body == Some(Body::EightBitMime) && !c.eight_bit_mime,
                "BODY",
            ),
            (
                p.body == Some(Body::BinaryMime) && !(c.binary_mime && c.chunking),
                "BODY",
            ),
            (p.smtputf8 && !c.smtputf8, "SMTPUTF8"),
            (p.ret.is_some() && !c.dsn, "RET"),
            (p.envid.is_some() && !c.dsn, "ENVID"),
            (p.auth.is_some() && c.auth_mechanisms.is_empty(), "AUTH"),
            (p.requiretls, "REQUIRETLS"),
            (p.mt_priority.is_some(), "MT-PRIORITY"),
            (matches!(p.hold, Some(Hold::For(_))), "HOLDFOR"),
            (matches!(p.hold, Some(Hold::Until(_))), "HOLDUNTIL"),
            (p.by.is_some(), "BY"),
        ];
        if let Some((_, k)) = refused.iter().find(|(refused, _)| *refused) {
            return Some((*k).to_owned());
        }
        p.other
            .iter()
            .find(|o| !self.extra_allowed(o.keyword.as_str()))
            .map(|o| o.keyword.as_str().to_owned())
    }

    fn unsupported_rcpt_param(&self, p: &RcptParams) -> Option<String> {
        if p.notify.is_some() && !self.config.dsn {
            return Some("NOTIFY".into());
        }
        if p.orcpt.is_some() && !self.config.dsn {
            return Some("ORCPT".into());
        }
        p.other
            .iter()
            .find(|o| !self.extra_allowed(o.keyword.as_str()))
            .map(|o| o.keyword.as_str().to_owned())
    }

    fn mail(&mut self, from: crate::types::address::ReversePath, params: MailParams) {
        if self.hello.is_none() {
            return self.sequence_error(if self.config.lmtp {
                "send LHLO first"
            } else {
                "send HELO/EHLO first"
            });
        }
        if self.transaction.is_some() {
            return self.sequence_error("nested MAIL command");
        }
        if let Some(keyword) = self.unsupported_mail_param(&params) {
            return self.unsupported(&keyword);
        }
        // RFC 1870 §6.2: a declared size above the fixed limit gets 552 at once.
        if let (Some(max), Some(size)) = (self.config.max_message_size, params.size)
            && size > max
        {
            return self.send(reply(
                ReplyCode::EXCEEDED_STORAGE,
                "5.3.4 Message size exceeds fixed maximum message size",
            ));
        }
        let seq = self.next_seq();
        self.state = State::Awaiting(Pending::Mail {
            seq,
            smtputf8: params.smtputf8,
            body: params.body,
        });
        self.events.push_back(Event::Mail(MailRequest {
            from,
            params,
            token: MailToken(seq),
        }));
    }

    fn rcpt(&mut self, to: crate::types::address::ForwardPath, params: RcptParams) {
        let Some(t) = &self.transaction else {
            return self.sequence_error("need MAIL command");
        };
        if t.bdat.is_some() {
            return self.sequence_error("message content in progress");
        }
        let (smtputf8, recipients) = (t.smtputf8, t.recipients);
        if let Some(keyword) = self.unsupported_rcpt_param(&params) {
            return self.unsupported(&keyword);
        }
        // RFC 6531 §3.4: a UTF-8 forward-path only in a transaction that asked for SMTPUTF8.
        if !to.is_ascii() && !smtputf8 {
            return self.send(reply(
                ReplyCode::MAILBOX_NAME_NOT_ALLOWED,
                "5.6.7 Non-ASCII address requires SMTPUTF8",
            ));
        }
        // RFC 5321 §4.5.3.1.10: "452 Too many recipients", the enhanced code is RFC 3463's
        // 4.5.3 "too many recipients".
        if recipients >= self.config.limits.recipients {
            return self.send(reply(
                ReplyCode::INSUFFICIENT_STORAGE,
                "4.5.3 Error: too many recipients",
            ));
        }
        let seq = self.next_seq();
        self.state = State::Awaiting(Pending::Rcpt { seq });
        self.events.push_back(Event::Rcpt(RcptRequest {
            to,
            params,
            token: RcptToken(seq),
        }));
    }

    /// Why the transaction cannot take message content now, if it cannot.
    fn content_refusal(&self) -> Option<Reply> {
        let Some(t) = &self.transaction else {
            return Some(reply(
                ReplyCode::BAD_SEQUENCE,
                "5.5.1 Error: need MAIL command",
            ));
        };
        if t.recipients == 0 {
            return Some(if t.refused_recipients > 0 {
                reply(
                    ReplyCode::TRANSACTION_FAILED,
                    "5.5.1 Error: no valid recipients",
                )
            } else {
                reply(ReplyCode::BAD_SEQUENCE, "5.5.1 Error: need RCPT command")
            });
        }
        None
    }

    fn data(&mut self) {
        if let Some(refusal) = self.content_refusal() {
            return self.send(refusal);
        }
        let Some(t) = &self.transaction else { return };
        // RFC 3030 §2: "The DATA and BDAT commands cannot be used in the same transaction."
        if t.bdat.is_some() {
            return self.sequence_error("DATA after BDAT");
        }
        // RFC 3030 §3: a BINARYMIME body can only be sent with BDAT.
        if t.body == Some(Body::BinaryMime) {
            return self.sequence_error("BINARYMIME requires BDAT");
        }
        self.send(reply(
            ReplyCode::START_MAIL_INPUT,
            "End data with <CR><LF>.<CR><LF>",
        ));
        self.state = State::Data(DataDecoder::new(DataConfig {
            max_size: self.config.max_message_size,
            bare_newline: self.config.bare_newline,
        }));
    }

    fn bdat(&mut self, size: u64, last: bool) {
        // A refused BDAT's octets are still read and dropped (RFC 3030 §2), never parsed as
        // commands.
        let refusal = if !self.config.chunking {
            Some(reply(
                ReplyCode::SYNTAX_ERROR,
                "5.5.2 Error: command not recognized",
            ))
        } else {
            self.content_refusal()
        };
        if let Some(reply) = refusal {
            self.state = State::BdatDiscard {
                reader: BdatReader::discarding(size),
                reply,
            };
            return;
        }
        let max_size = self.config.max_message_size;
        let Some(t) = self.transaction.as_mut() else {
            return;
        };
        let mut reader = t
            .bdat
            .take()
            .unwrap_or_else(|| BdatReader::new(BdatConfig { max_size }));
        match reader.begin_chunk(size, last) {
            Ok(()) => self.state = State::Bdat(reader),
            Err(e) => {
                let line = e
                    .reply_line()
                    .unwrap_or("503 5.5.1 Error: bad sequence of commands");
                let r = reply(ReplyCode::BAD_SEQUENCE, line.get(4..).unwrap_or(line));
                t.bdat = Some(reader);
                self.state = State::BdatDiscard {
                    reader: BdatReader::discarding(size),
                    reply: r,
                };
            }
        }
    }

    fn starttls(&mut self) {
        if !self.config.starttls {
            return self.send(reply(
                ReplyCode::NOT_IMPLEMENTED,
                "5.5.1 Error: command not implemented",
            ));
        }
        if self.tls {
            return self.send(reply(
                ReplyCode::TRANSACTION_FAILED,
                "5.5.1 Error: TLS already active",
            ));
        }
        if self.transaction.is_some() {
            return self.sequence_error("MAIL transaction in progress");
        }
        self.send(reply(ReplyCode::SERVICE_READY, "2.0.0 Ready to start TLS"));
        // RFC 3207 §4.2 and CVE-2011-0411: whatever the client pipelined after STARTTLS was
        // sent in plaintext and must never be read as a command under TLS.
        self.input = BytesMut::new();
        self.state = State::Tls;
        self.events.push_back(Event::StartTls);
    }

    fn auth(&mut self, mechanism: Mechanism, initial: Option<Secret<String>>) {
        if self.config.auth_mechanisms.is_empty() {
            return self.send(reply(
                ReplyCode::NOT_IMPLEMENTED,
                "5.5.1 Error: authentication not enabled",
            ));
        }
        if self.hello != Some(true) {
            return self.sequence_error("send EHLO first");
        }
        if self.authenticated {
            return self.sequence_error("already authenticated");
        }
        if self.transaction.is_some() {
            return self.sequence_error("MAIL transaction in progress");
        }
        // RFC 4954 §6: "538 5.7.11 Encryption required for requested authentication
        // mechanism".
        if self.config.auth_requires_tls && !self.tls {
            return self.send(reply(
                ReplyCode::ENCRYPTION_REQUIRED,
                "5.7.11 Encryption required for requested authentication mechanism",
            ));
        }
        if !self.config.auth_mechanisms.contains(&mechanism) {
            return self.send(reply(
                ReplyCode::PARAMETER_NOT_IMPLEMENTED,
                "5.5.4 Unsupported authentication mechanism",
            ));
        }
        let initial = initial.map(Secret::into_inner);
        match (mechanism.as_str(), initial) {
            ("PLAIN", Some(response)) => self.plain_response(response.as_bytes()),
            ("PLAIN", None) => {
                self.send(reply(ReplyCode::AUTH_CONTINUE, ""));
                self.state = State::Sasl(Sasl::PlainResponse);
            }
            ("LOGIN", Some(response)) => match decode_text(response.as_bytes()) {
                Some(username) => self.login_password_prompt(username),
                None => self.malformed_sasl(),
            },
            ("LOGIN", None) => {
                self.send(reply(ReplyCode::AUTH_CONTINUE, "VXNlcm5hbWU6"));
                self.state = State::Sasl(Sasl::LoginUser);
            }
            _ => self.send(reply(
                ReplyCode::PARAMETER_NOT_IMPLEMENTED,
                "5.5.4 Unsupported authentication mechanism",
            )),
        }
    }

    fn login_password_prompt(&mut self, username: String) {
        self.send(reply(ReplyCode::AUTH_CONTINUE, "UGFzc3dvcmQ6"));
        self.state = State::Sasl(Sasl::LoginPassword { username });
    }

    fn malformed_sasl(&mut self) {
        self.state = State::Command;
        self.send(reply(
            ReplyCode::PARAMETER_SYNTAX_ERROR,
            "5.5.2 Error: malformed authentication data",
        ));
    }

    fn plain_response(&mut self, response: &[u8]) {
        let parsed = base64::decode(response).and_then(|m| sasl::plain_message(&m));
        match parsed {
            Some((authzid, username, password)) => self.credentials(Credentials {
                mechanism: Mechanism::plain(),
                authzid,
                username,
                password: Secret::new(password),
            }),
            None => self.malformed_sasl(),
        }
    }

    fn credentials(&mut self, credentials: Credentials) {
        let seq = self.next_seq();
        self.state = State::Awaiting(Pending::Auth { seq });
        self.events.push_back(Event::Auth(AuthRequest {
            credentials,
            token: AuthToken(seq),
        }));
    }

    fn step_sasl(&mut self) -> bool {
        let (len, consumed) = match next_line(&self.input, SASL_LINE) {
            Line::Incomplete => return false,
            Line::TooLong => {
                self.state = State::DiscardLine { auth: true };
                return true;
            }
            Line::BareLf { consumed, .. } => {
                self.input.advance(consumed);
                self.state = State::Command;
                self.send(reply(
                    ReplyCode::SYNTAX_ERROR,
                    "5.5.2 Error: bare <LF> received",
                ));
                return true;
            }
            Line::Complete { len, consumed } => (len, consumed),
        };
        let line = self.input.split_to(consumed);
        let line = &line[..len];
        let State::Sasl(step) = std::mem::replace(&mut self.state, State::Command) else {
            return true;
        };
        // RFC 4954 §4: "If the client wishes to cancel an authentication exchange, it issues
        // a line with a single "*". If the server receives such a response, it MUST reject
        // the AUTH command by sending a 501 reply."
        if line == b"*" {
            self.send(reply(
                ReplyCode::PARAMETER_SYNTAX_ERROR,
                "5.7.0 Authentication aborted",
            ));
            return true;
        }
        match step {
            Sasl::PlainResponse => self.plain_response(line),
            Sasl::LoginUser => match decode_text(line) {
                Some(username) => self.login_password_prompt(username),
                None => self.malformed_sasl(),
            },
            Sasl::LoginPassword { username } => match decode_text(line) {
                Some(password) => self.credentials(Credentials {
                    mechanism: Mechanism::login(),
                    authzid: None,
                    username,
                    password: Secret::new(password),
                }),
                None => self.malformed_sasl(),
            },
        }
        true
    }
}

/// A base64 response holding UTF-8 text.
fn decode_text(response: &[u8]) -> Option<String> {
    base64::decode(response).and_then(|b| String::from_utf8(b).ok())
}

fn rejection_reply(reason: DataRejection) -> Reply {
    let (class, subject, detail) = reason.enhanced_code();
    let code = ReplyCode::new(reason.code()).unwrap_or(ReplyCode::TRANSACTION_FAILED);
    reply(
        code,
        &format!("{class}.{subject}.{detail} {}", reason.reply_text()),
    )
}
