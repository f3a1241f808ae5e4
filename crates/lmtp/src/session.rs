//! The sans-IO LMTP server session: smtp-proto's [`ServerSession`] in LMTP mode, with the end
//! of a message answered through a [`Delivery`].

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use mailroom_smtp_proto::server::{
    AnswerError, Event as SmtpEvent, MailRequest, MailToken, RcptRequest, RcptToken, ServerConfig,
    ServerSession,
};
use mailroom_smtp_proto::{ForwardPath, Host, Reply};

use crate::delivery::{Answer, Delivery};

/// The settings of an LMTP server named `hostname`: smtp-proto's defaults (SIZE 10240000,
/// PIPELINING, ENHANCEDSTATUSCODES, 8BITMIME, SMTPUTF8, CHUNKING, BINARYMIME, DSN) with
/// [`ServerConfig::lmtp`] on, the greeting `LMTP server ready` (RFC 2033 §4.2's example), and
/// neither STARTTLS nor AUTH: LMTP runs between trusted hosts or over a Unix socket (RFC 2033
/// §5: "LMTP is not appropriate for use over wide area networks").
pub fn server_config(hostname: impl Into<String>) -> ServerConfig {
    let mut config = ServerConfig::new(hostname);
    config.greeting = "LMTP server ready".into();
    lmtp_only(&mut config);
    config
}

fn lmtp_only(config: &mut ServerConfig) {
    config.lmtp = true;
    config.starttls = false;
    config.auth_mechanisms.clear();
}

/// Something the application must know or decide, from [`Session::poll_event`].
#[derive(Debug)]
#[non_exhaustive]
pub enum Event {
    /// The client said `LHLO` and got `250`. Any transaction is gone.
    Lhlo {
        /// The name the client gave.
        host: Host,
    },
    /// `MAIL FROM:`; answer with [`Session::answer_mail`].
    Mail(MailRequest),
    /// `RCPT TO:`; answer with [`Session::answer_rcpt`]. The recipients accepted here are the
    /// ones the [`Delivery`] holds.
    Rcpt(RcptRequest),
    /// The next piece of the message content (DATA after dot-unstuffing, or BDAT octets).
    DataChunk(Bytes),
    /// The content is complete: deliver it to each recipient, then answer with
    /// [`Session::answer`] and the [`Answer`] built from this [`Delivery`].
    Deliver(Delivery),
    /// The transaction ended without a message (RSET, LHLO, a refused message, the
    /// connection closing): forget its envelope and content.
    Reset,
    /// The session is over: write the pending transmits, then close. The last event.
    Closed,
}

/// The sans-IO server side of one LMTP connection (RFC 2033).
///
/// The call order is [`ServerSession`]'s:
///
/// ```text
///   new(config, now) ── queues the 220 greeting
///   loop {
///     handle_input(bytes) / handle_timeout(now) / handle_eof()
///     poll_event() until None ── Mail, Rcpt and Deliver need an answer
///        (answer_mail, answer_rcpt, answer(delivery.answer(..))) before more is parsed
///     poll_transmit() ── write it all;  poll_timeout() ── when to call handle_timeout
///   } until Event::Closed
/// ```
///
/// What it adds to [`ServerSession`]: it remembers the accepted recipients, so that the end
/// of a message comes as a [`Delivery`] listing them, and the only answer it takes is an
/// [`Answer`] holding one reply per recipient (RFC 2033 §4.2).
///
/// # Examples
///
/// ```
/// use std::time::Instant;
/// use mailroom_lmtp::{Event, Session, server_config};
///
/// let mut session = Session::new(server_config("mda.example").into(), Instant::now());
/// session.handle_input(
///     b"LHLO mx.example\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.com>\r\n\
///       RCPT TO:<c@example.com>\r\nDATA\r\nhello\r\n.\r\n",
/// );
/// while let Some(event) = session.poll_event() {
///     match event {
///         Event::Mail(m) => session.answer_mail(m.token, Ok(())).unwrap(),
///         Event::Rcpt(r) => session.answer_rcpt(r.token, Ok(())).unwrap(),
///         Event::Deliver(d) => session.answer(d.answer(|i, _| Ok(format!("m{i}")))).unwrap(),
///         _ => {}
///     }
/// }
/// let out = session.poll_transmit().unwrap();
/// assert!(out.ends_with(b"250 2.0.0 Ok: queued as m0\r\n250 2.0.0 Ok: queued as m1\r\n"));
/// ```
#[derive(Debug)]
pub struct Session {
    inner: ServerSession,
    /// The accepted recipients of the open transaction, in order.
    recipients: Vec<ForwardPath>,
    /// The forward-path of the RCPT waiting for its answer.
    pending_rcpt: Option<ForwardPath>,
}

impl Session {
    /// A session for a new connection. `config` is used in LMTP mode whatever it says
    /// (`lmtp` on, STARTTLS and AUTH off); build it with [`server_config`].
    pub fn new(config: Arc<ServerConfig>, now: Instant) -> Self {
        let config = if config.lmtp && !config.starttls && config.auth_mechanisms.is_empty() {
            config
        } else {
            let mut fixed = ServerConfig::clone(&config);
            lmtp_only(&mut fixed);
            Arc::new(fixed)
        };
        Self {
            inner: ServerSession::new(config, now),
            recipients: Vec::new(),
            pending_rcpt: None,
        }
    }

    /// The settings this session runs with.
    pub fn config(&self) -> &ServerConfig {
        self.inner.config()
    }

    /// Whether the session is over.
    pub fn is_closed(&self) -> bool {
        self.inner.is_closed()
    }

    /// Whether a mail transaction is open.
    pub fn in_transaction(&self) -> bool {
        self.inner.in_transaction()
    }

    /// Whether the adapter should read more input now (see
    /// [`ServerSession::wants_input`]).
    pub fn wants_input(&self) -> bool {
        self.inner.wants_input()
    }

    /// Bytes received from the client.
    pub fn handle_input(&mut self, data: &[u8]) {
        self.inner.handle_input(data);
    }

    /// The peer closed its side.
    pub fn handle_eof(&mut self) {
        self.inner.handle_eof();
    }

    /// The clock, when [`poll_timeout`](Self::poll_timeout)'s instant has come.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.inner.handle_timeout(now);
    }

    /// Finish the current transaction, then answer `421 4.3.2` and close.
    pub fn handle_shutdown(&mut self) {
        self.inner.handle_shutdown();
    }

    /// When to call [`handle_timeout`](Self::handle_timeout) next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.inner.poll_timeout()
    }

    /// The bytes to send to the client now, if any.
    pub fn poll_transmit(&mut self) -> Option<Bytes> {
        self.inner.poll_transmit()
    }

    /// The next event for the application.
    pub fn poll_event(&mut self) -> Option<Event> {
        loop {
            let event = self.inner.poll_event()?;
            return Some(match event {
                SmtpEvent::Hello { host, .. } => {
                    self.recipients.clear();
                    Event::Lhlo { host }
                }
                SmtpEvent::Mail(m) => {
                    self.recipients.clear();
                    Event::Mail(m)
                }
                SmtpEvent::Rcpt(r) => {
                    self.pending_rcpt = Some(r.to.clone());
                    Event::Rcpt(r)
                }
                SmtpEvent::DataChunk(chunk) => Event::DataChunk(chunk),
                SmtpEvent::MessageEnd(end) => Event::Deliver(Delivery::new(
                    end.token,
                    end.size,
                    std::mem::take(&mut self.recipients),
                    end.recipients,
                )),
                SmtpEvent::Reset => {
                    self.recipients.clear();
                    Event::Reset
                }
                SmtpEvent::Closed => {
                    self.recipients.clear();
                    Event::Closed
                }
                // STARTTLS and AUTH are never offered in LMTP mode: these cannot come.
                _ => continue,
            });
        }
    }

    /// Accepts (`Ok`) or refuses (`Err(reply)`) a `MAIL FROM:`.
    ///
    /// # Errors
    ///
    /// [`AnswerError::UnexpectedToken`] when the session does not wait for this token.
    pub fn answer_mail(
        &mut self,
        token: MailToken,
        answer: Result<(), Reply>,
    ) -> Result<(), AnswerError> {
        self.inner.answer_mail(token, answer)
    }

    /// Accepts (`Ok`) or refuses (`Err(reply)`, for example `550 5.1.1` for an unknown user)
    /// a `RCPT TO:`.
    ///
    /// # Errors
    ///
    /// [`AnswerError::UnexpectedToken`] when the session does not wait for this token.
    pub fn answer_rcpt(
        &mut self,
        token: RcptToken,
        answer: Result<(), Reply>,
    ) -> Result<(), AnswerError> {
        let accepted = answer.is_ok();
        self.inner.answer_rcpt(token, answer)?;
        if let Some(path) = self.pending_rcpt.take()
            && accepted
        {
            self.recipients.push(path);
        }
        Ok(())
    }

    /// Answers the end of a message: one reply per accepted recipient, in order (RFC 2033
    /// §4.2). The transaction ends.
    ///
    /// # Errors
    ///
    /// [`AnswerError::UnexpectedToken`] when the answer is for another session's delivery.
    pub fn answer(&mut self, answer: Answer) -> Result<(), AnswerError> {
        self.inner
            .answer_message_per_recipient(answer.token, answer.replies)
    }
}
