//! The server's sans-IO session (RFC 9051 section 3, "State and Flow Diagram").
//!
//! ```text
//!        connection, greeting
//!               |
//!               v
//!   +---------------------+  LOGIN / AUTHENTICATE OK   +-----------------+
//!   |  not authenticated  | -------------------------> |  authenticated  | <-+
//!   +---------------------+                            +-----------------+   |
//!               |                     SELECT/EXAMINE OK  |        ^          | CLOSE, UNSELECT,
//!               |                                        v        |          | failed SELECT
//!               |                                    +-----------------+     |
//!               |                                    |    selected     | ----+
//!               |                                    +-----------------+
//!               |   LOGOUT, autologout, too many errors       |
//!               +------------------> logout <-----------------+
//! ```
//!
//! Call order: create with [`ServerSession::new`] (the greeting is queued), then repeat:
//! [`ServerSession::handle_input`] with received octets, drain [`ServerSession::poll_event`]
//! and answer each [`Event`] that carries a [`Token`] with [`ServerSession::respond`], drain
//! [`ServerSession::poll_transmit`] and send it, and call [`ServerSession::handle_timeout`] at
//! [`ServerSession::poll_timeout`]. Commands are handled one at a time: while one waits for its
//! answer, later (pipelined) commands stay buffered, so responses go out in order and a command
//! is checked against the state that the earlier ones left.
//!
//! The session itself answers CAPABILITY, LOGOUT, STARTTLS, ENABLE, IDLE/DONE, the SASL PLAIN
//! exchange of AUTHENTICATE, literal continuation requests, state checks and syntax errors;
//! everything else becomes an [`Event`] for the application (the mailbox backend).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::codec::Encode;
use crate::codec::base64;
use crate::framing::{CommandFramer, FrameEvent, FramingLimits};
use crate::types::{
    Atom, Code, Command, CommandBody, Continue, Data, DateTime, Flag, Mailbox, Response, Secret,
    StatusKind, StatusResponse, Tag,
};

/// The session's state (RFC 9051 section 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Before LOGIN or AUTHENTICATE.
    NotAuthenticated,
    /// Logged in, no mailbox selected.
    Authenticated,
    /// A mailbox is selected.
    Selected {
        /// Selected by EXAMINE.
        read_only: bool,
    },
    /// The connection is to be closed once the queued output is sent.
    Logout,
}

impl State {
    fn describe(self) -> &'static str {
        match self {
            State::NotAuthenticated => "the not authenticated state",
            State::Authenticated => "the authenticated state",
            State::Selected { .. } => "the selected state",
            State::Logout => "the logout state",
        }
    }
}

/// Settings of a session.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Text of the greeting (`* OK [CAPABILITY ...] text`).
    pub greeting: String,
    /// Announce the capabilities in the greeting (saves clients a round trip).
    pub greeting_capabilities: bool,
    /// Capabilities always announced (STARTTLS, LOGINDISABLED and AUTH=PLAIN are added by the
    /// session as they apply).
    pub capabilities: Vec<Atom>,
    /// Offer STARTTLS.
    pub starttls: bool,
    /// Refuse LOGIN and AUTHENTICATE until TLS is active (`LOGINDISABLED`).
    pub login_requires_tls: bool,
    /// Capabilities a client may ENABLE (`UTF8=ACCEPT`, `IMAP4rev2`, ...).
    pub enableable: Vec<Atom>,
    /// Framing limits.
    pub limits: FramingLimits,
    /// Inactivity before the server logs the client out: at least 30 minutes (RFC 9051 section
    /// 5.4).
    pub autologout: Duration,
    /// Malformed commands in a row before the server hangs up.
    pub max_bad_commands: u32,
    /// APPEND messages sent as a synchronising literal of at least this many octets are
    /// streamed to the application ([`Event::AppendStart`], [`Event::AppendData`],
    /// [`Event::AppendEnd`]) instead of being gathered in memory. `None`: always gathered (up
    /// to `limits.max_literal`) and delivered whole in [`Event::Command`].
    pub stream_append_from: Option<u64>,
}

fn atoms(list: &[&str]) -> Vec<Atom> {
    list.iter().filter_map(|s| Atom::new(*s).ok()).collect()
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            greeting: "IMAP4rev2 server ready".into(),
            greeting_capabilities: true,
            capabilities: atoms(&[
                "IMAP4rev2",
                "IMAP4rev1",
                "LITERAL-",
                "SASL-IR",
                "ENABLE",
                "IDLE",
                "ID",
                "NAMESPACE",
                "UNSELECT",
                "UIDPLUS",
                "MOVE",
                "ESEARCH",
                "SPECIAL-USE",
                "LIST-EXTENDED",
                "LIST-STATUS",
            ]),
            starttls: false,
            login_requires_tls: false,
            enableable: atoms(&["IMAP4rev2", "UTF8=ACCEPT"]),
            limits: FramingLimits::default(),
            autologout: Duration::from_secs(30 * 60),
            max_bad_commands: 10,
            stream_append_from: None,
        }
    }
}

/// Proof that an event needs exactly one answer: [`ServerSession::respond`] consumes it.
#[derive(Debug, PartialEq, Eq)]
pub struct Token {
    id: u64,
}

/// What the application must know or do.
#[derive(Debug)]
#[non_exhaustive]
pub enum Event {
    /// A command for the backend. Answer with [`ServerSession::respond`]: untagged data, then the
    /// tagged status the session writes with the command's tag.
    Command {
        /// The answer's ticket.
        token: Token,
        /// The command.
        command: Command,
    },
    /// LOGIN or AUTHENTICATE PLAIN: check the credentials and answer OK (the session moves to
    /// authenticated) or NO.
    Login {
        /// The answer's ticket.
        token: Token,
        /// The authorization identity (PLAIN's authzid), if any.
        authzid: Option<Vec<u8>>,
        /// The user name.
        username: Vec<u8>,
        /// The password.
        password: Secret<Vec<u8>>,
    },
    /// STARTTLS was accepted: run the TLS handshake now, before feeding any more octets. The
    /// plaintext the client sent after STARTTLS has been thrown away.
    StartTls,
    /// IDLE started: untagged updates may be pushed with [`ServerSession::send_untagged`].
    Idle,
    /// The client ended IDLE with DONE (the session answered it).
    IdleDone,
    /// The client enabled these extensions (RFC 5161).
    Enabled(Vec<Atom>),
    /// The session ended (LOGOUT, autologout or too many errors): send what is queued, then close.
    Logout,
    /// A large APPEND begins (see [`ServerConfig::stream_append_from`]): the message follows in
    /// [`Event::AppendData`] events, then [`Event::AppendEnd`]. Answer with the token after
    /// `AppendEnd`, or earlier to refuse (the rest of the message is then skipped, and the
    /// `AppendData`/`AppendEnd` events not yet polled are dropped).
    AppendStart {
        /// The answer's ticket.
        token: Token,
        /// Destination.
        mailbox: Mailbox,
        /// Flags to set; `None` when no flag list was given.
        flags: Option<Vec<Flag>>,
        /// INTERNALDATE to set.
        date: Option<DateTime>,
        /// The message's size in octets.
        size: u64,
        /// Sent as `literal8` (BINARY).
        binary: bool,
    },
    /// The next octets of the streamed message.
    AppendData(Vec<u8>),
    /// The streamed message is complete: store it durably, then answer.
    AppendEnd,
    /// The streamed APPEND was broken off (its command did not end after the message); the
    /// session answered BAD and the token is void: discard what was received.
    AppendAborted,
}

/// The application's answer to a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// Untagged responses sent before the tagged one.
    pub untagged: Vec<Response>,
    /// OK, NO or BAD.
    pub kind: StatusKind,
    /// Response code of the tagged response.
    pub code: Option<Code>,
    /// Text of the tagged response.
    pub text: String,
}

impl Answer {
    /// `OK text`.
    pub fn ok(text: impl Into<String>) -> Self {
        Self::new(StatusKind::Ok, text)
    }
    /// `NO text`.
    pub fn no(text: impl Into<String>) -> Self {
        Self::new(StatusKind::No, text)
    }
    /// `BAD text`.
    pub fn bad(text: impl Into<String>) -> Self {
        Self::new(StatusKind::Bad, text)
    }
    fn new(kind: StatusKind, text: impl Into<String>) -> Self {
        Self {
            untagged: Vec::new(),
            kind,
            code: None,
            text: text.into(),
        }
    }
    /// With a response code.
    pub fn with_code(mut self, code: Code) -> Self {
        self.code = Some(code);
        self
    }
    /// With untagged data before the tagged response.
    pub fn with_data(mut self, data: impl IntoIterator<Item = Data>) -> Self {
        self.untagged.extend(data.into_iter().map(Response::Data));
        self
    }
}

/// Misuse of the session by the application.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// The token does not belong to the command waiting for an answer.
    #[error("the token does not match the command waiting for an answer")]
    UnknownToken,
    /// PREAUTH, BYE or a continuation request cannot answer a command.
    #[error("a command is answered with OK, NO or BAD")]
    InvalidAnswer,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PendingKind {
    Login,
    Select { read_only: bool },
    Close,
    Append,
    Other,
}

#[derive(Debug)]
struct Pending {
    id: u64,
    tag: Tag,
    kind: PendingKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Mode {
    Commands,
    /// Waiting for the client's SASL response line.
    Sasl(Tag),
    /// Waiting for DONE.
    Idle(Tag),
    /// Handing a large APPEND's message to the application; `answered` once it answered early.
    AppendStream {
        tag: Tag,
        answered: bool,
    },
    /// After the streamed message: the rest of the APPEND line, which must be empty.
    AppendTail {
        tag: Tag,
        answered: bool,
    },
}

/// The server side of one IMAP connection. See the [module documentation](self).
#[derive(Debug)]
pub struct ServerSession {
    config: ServerConfig,
    state: State,
    mode: Mode,
    framer: CommandFramer,
    tls: bool,
    utf8_accept: bool,
    enabled: Vec<Atom>,
    pending: Option<Pending>,
    next_id: u64,
    events: VecDeque<Event>,
    out: Vec<u8>,
    deadline: Instant,
    bad_commands: u32,
}

impl ServerSession {
    /// A new connection at time `now`; the greeting is queued.
    pub fn new(config: ServerConfig, now: Instant) -> Self {
        let framer = CommandFramer::new(config.limits.clone());
        let deadline = now + config.autologout;
        let mut s = Self {
            config,
            state: State::NotAuthenticated,
            mode: Mode::Commands,
            framer,
            tls: false,
            utf8_accept: false,
            enabled: Vec::new(),
            pending: None,
            next_id: 0,
            events: VecDeque::new(),
            out: Vec::new(),
            deadline,
            bad_commands: 0,
        };
        s.greet();
        s
    }

    fn greet(&mut self) {
        let mut greeting = StatusResponse::untagged(StatusKind::Ok, self.config.greeting.clone());
        if self.config.greeting_capabilities {
            greeting = greeting.with_code(Code::Capability(self.capabilities()));
        }
        self.send(&Response::Status(greeting));
    }

    /// A session on a connection that is already TLS (port 993): STARTTLS is not offered.
    pub fn new_tls(config: ServerConfig, now: Instant) -> Self {
        let mut config = config;
        config.starttls = false;
        let mut s = Self::new(config, now);
        s.tls = true;
        // The greeting was computed before `tls` was set; LOGINDISABLED must not be in it.
        s.out.clear();
        s.greet();
        s
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// Whether the client enabled UTF8=ACCEPT (mailbox names are then UTF-8, not modified
    /// UTF-7).
    pub fn utf8_accept(&self) -> bool {
        self.utf8_accept
    }

    /// The extensions the client enabled.
    pub fn enabled(&self) -> &[Atom] {
        &self.enabled
    }

    /// The capabilities as announced now.
    pub fn capabilities(&self) -> Vec<Atom> {
        let mut caps = self.config.capabilities.clone();
        if self.state == State::NotAuthenticated {
            if self.config.starttls && !self.tls {
                caps.extend(Atom::new("STARTTLS"));
            }
            if self.config.login_requires_tls && !self.tls {
                caps.extend(Atom::new("LOGINDISABLED"));
            } else {
                caps.extend(Atom::new("AUTH=PLAIN"));
            }
        }
        caps
    }

    /// Whether the adapter should read more from the connection. False while a command waits
    /// for the application's answer and a whole command's worth of pipelined input is already
    /// buffered: the adapter stops reading (TCP back-pressure) instead of the buffer growing
    /// without bound. Also false after logout.
    pub fn wants_input(&self) -> bool {
        self.state != State::Logout
            && (self.pending.is_none() || self.framer.buffered() < self.config.limits.max_frame)
    }

    /// Feeds received octets at time `now`.
    pub fn handle_input(&mut self, now: Instant, data: &[u8]) {
        if self.state == State::Logout {
            return;
        }
        self.deadline = now + self.config.autologout;
        self.framer.push(data);
        self.process();
    }

    /// The time at which [`Self::handle_timeout`] must be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        (self.state != State::Logout).then_some(self.deadline)
    }

    /// Advances the clock: after the autologout time without input, the server says BYE.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.state != State::Logout && now >= self.deadline {
            self.send(&Response::Status(StatusResponse::untagged(
                StatusKind::Bye,
                "Autologout; idle for too long",
            )));
            self.logout();
        }
    }

    /// The next event for the application.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Octets to send, if any.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        (!self.out.is_empty()).then(|| std::mem::take(&mut self.out))
    }

    /// Ends the session from the server's side (shutdown, too many failed logins): sends
    /// `* BYE text` (RFC 9051 7.1.5) and moves to the logout state; the application sends
    /// what is queued and closes. Nothing more is read.
    pub fn bye(&mut self, text: &str) {
        if self.state == State::Logout {
            return;
        }
        self.send(&Response::Status(StatusResponse::untagged(
            StatusKind::Bye,
            text,
        )));
        self.logout();
    }

    /// Sends an untagged response now (an update while idling, an EXISTS after NOOP, ...).
    pub fn send_untagged(&mut self, data: Data) {
        self.send(&Response::Data(data));
    }

    /// Answers the command that `token` stands for.
    ///
    /// # Errors
    ///
    /// [`SessionError::UnknownToken`] when `token` is not the pending command's;
    /// [`SessionError::InvalidAnswer`] when the status is PREAUTH or BYE.
    pub fn respond(&mut self, token: Token, answer: Answer) -> Result<(), SessionError> {
        let Some(p) = self.pending.take_if(|p| p.id == token.id) else {
            return Err(SessionError::UnknownToken);
        };
        if !matches!(
            answer.kind,
            StatusKind::Ok | StatusKind::No | StatusKind::Bad
        ) {
            self.pending = Some(p);
            return Err(SessionError::InvalidAnswer);
        }
        for r in &answer.untagged {
            self.send(r);
        }
        let ok = answer.kind == StatusKind::Ok;
        match p.kind {
            PendingKind::Login if ok => self.state = State::Authenticated,
            PendingKind::Select { read_only } if ok => self.state = State::Selected { read_only },
            // RFC 9051 6.3.2: a failed SELECT leaves no mailbox selected.
            PendingKind::Select { .. } => self.state = State::Authenticated,
            PendingKind::Close if ok => self.state = State::Authenticated,
            _ => {}
        }
        let status = StatusResponse {
            tag: Some(p.tag),
            kind: answer.kind,
            code: answer.code,
            text: crate::types::response::clean_text(answer.text),
        };
        self.send(&Response::Status(status));
        // Answered while the message is still arriving: the rest of it is skipped, including
        // what is already queued and not yet polled.
        if p.kind == PendingKind::Append {
            self.events
                .retain(|e| !matches!(e, Event::AppendData(_) | Event::AppendEnd));
        }
        if let Mode::AppendStream { answered, .. } | Mode::AppendTail { answered, .. } =
            &mut self.mode
        {
            *answered = true;
        }
        self.process();
        Ok(())
    }

    fn send(&mut self, r: &Response) {
        r.encode(&mut self.out);
    }

    fn tagged(&mut self, tag: Option<Tag>, kind: StatusKind, code: Option<Code>, text: String) {
        let status = StatusResponse {
            tag,
            kind,
            code,
            text: crate::types::response::clean_text(text),
        };
        self.send(&Response::Status(status));
    }

    fn logout(&mut self) {
        self.state = State::Logout;
        self.pending = None;
        self.framer.discard_buffered();
        self.events.push_back(Event::Logout);
    }

    fn bad(&mut self, tag: Option<Tag>, text: String) {
        self.tagged(tag, StatusKind::Bad, None, text);
        self.bad_commands += 1;
        if self.bad_commands >= self.config.max_bad_commands {
            self.send(&Response::Status(StatusResponse::untagged(
                StatusKind::Bye,
                "Too many invalid commands",
            )));
            self.logout();
        }
    }

    fn token(&mut self, tag: Tag, kind: PendingKind) -> Token {
        self.next_id += 1;
        self.pending = Some(Pending {
            id: self.next_id,
            tag,
            kind,
        });
        Token { id: self.next_id }
    }

    fn process(&mut self) {
        while self.state != State::Logout
            && (self.pending.is_none()
                || matches!(
                    self.mode,
                    Mode::AppendStream { .. } | Mode::AppendTail { .. }
                ))
        {
            match self.mode.clone() {
                Mode::AppendStream { tag, answered } => match self.framer.next_event() {
                    FrameEvent::LiteralData { data, last } => {
                        if !answered && !data.is_empty() {
                            self.events.push_back(Event::AppendData(data));
                        }
                        if last {
                            self.mode = Mode::AppendTail { tag, answered };
                        }
                    }
                    _ => return,
                },
                Mode::AppendTail { tag, answered } => {
                    let line = match self.framer.take_line() {
                        Ok(None) => return,
                        Ok(Some(line)) => Some(line),
                        Err(_) => None,
                    };
                    self.mode = Mode::Commands;
                    match (line.as_deref(), answered) {
                        (Some([]), false) => self.events.push_back(Event::AppendEnd),
                        (_, true) => {}
                        (_, false) => {
                            self.pending = None;
                            self.events.push_back(Event::AppendAborted);
                            self.bad(
                                Some(tag),
                                "expected CRLF after the APPEND message (MULTIAPPEND is not supported)"
                                    .into(),
                            );
                        }
                    }
                }
                Mode::Idle(tag) => match self.framer.take_line() {
                    Ok(None) => return,
                    Ok(Some(line)) => {
                        self.mode = Mode::Commands;
                        self.events.push_back(Event::IdleDone);
                        if line.eq_ignore_ascii_case(b"DONE") {
                            self.tagged(Some(tag), StatusKind::Ok, None, "IDLE terminated".into());
                        } else {
                            self.bad(Some(tag), "expected DONE to end IDLE".into());
                        }
                    }
                    Err(e) => {
                        self.mode = Mode::Commands;
                        self.events.push_back(Event::IdleDone);
                        self.bad(Some(tag), format!("expected DONE to end IDLE: {e}"));
                    }
                },
                Mode::Sasl(tag) => match self.framer.take_line() {
                    Ok(None) => return,
                    Ok(Some(line)) => {
                        self.mode = Mode::Commands;
                        if line == b"*" {
                            self.bad(Some(tag), "AUTHENTICATE cancelled".into());
                        } else {
                            match base64::decode(&line) {
                                Some(data) => self.sasl_plain(tag, &data),
                                None => {
                                    self.bad(Some(tag), "the SASL response is not base64".into())
                                }
                            }
                        }
                    }
                    Err(e) => {
                        self.mode = Mode::Commands;
                        self.bad(Some(tag), format!("SASL response: {e}"));
                    }
                },
                Mode::Commands => match self.framer.next_event() {
                    FrameEvent::Incomplete => return,
                    FrameEvent::Command(frame) => self.handle_frame(&frame),
                    FrameEvent::LiteralAnnounced { size, partial } => {
                        self.literal_announced(size, &partial)
                    }
                    FrameEvent::Rejected { tag, error } => self.bad(tag, error.to_string()),
                    // Only after `stream_literal`, which switches the mode.
                    FrameEvent::LiteralData { .. } => {}
                },
            }
        }
    }

    /// The server's decision on a synchronising literal: `+` when the limits and the state allow
    /// the command, else a tagged NO or BAD (and the client does not send the octets).
    fn literal_announced(&mut self, size: u64, partial: &[u8]) {
        let (tag, name) = command_name(partial);
        let verdict = match self.framer.check_literal(size) {
            Err(e) => Err((StatusKind::No, Code::other("TOOBIG").ok(), e.to_string())),
            Ok(()) => match name.as_deref().map(|n| check_state(self.state, n)) {
                Some(Err(text)) => Err((StatusKind::Bad, None, text)),
                _ => Ok(()),
            },
        };
        let stream = match (verdict.is_ok(), self.config.stream_append_from) {
            (true, Some(from)) if size >= from => {
                crate::codec::command::append_announcement(partial)
            }
            _ => None,
        };
        if let Some((tag, (mailbox, flags, date), binary)) = stream {
            self.framer.stream_literal();
            self.send(&Response::Continue(Continue {
                code: None,
                text: "Ready for literal data".into(),
            }));
            self.bad_commands = 0;
            let token = self.token(tag.clone(), PendingKind::Append);
            self.events.push_back(Event::AppendStart {
                token,
                mailbox,
                flags,
                date,
                size,
                binary,
            });
            self.mode = Mode::AppendStream {
                tag,
                answered: false,
            };
            return;
        }
        match verdict {
            Ok(()) => {
                self.framer.accept_literal();
                self.send(&Response::Continue(Continue {
                    code: None,
                    text: "Ready for literal data".into(),
                }));
            }
            Err((kind, code, text)) => {
                self.framer.reject_literal();
                self.tagged(tag, kind, code, text);
            }
        }
    }

    fn handle_frame(&mut self, frame: &[u8]) {
        let command = match crate::parse_command(frame) {
            Ok(c) => c,
            Err(e) => {
                let (tag, _) = command_name(frame);
                self.bad(tag, e.to_string());
                return;
            }
        };
        if let Err(text) = check_state(self.state, command.body.name()) {
            self.bad(Some(command.tag), text);
            return;
        }
        self.bad_commands = 0;
        let tag = command.tag.clone();
        match command.body {
            CommandBody::Capability => {
                let caps = self.capabilities();
                self.send(&Response::Data(Data::Capability(caps)));
                self.tagged(
                    Some(tag),
                    StatusKind::Ok,
                    None,
                    "CAPABILITY completed".into(),
                );
            }
            CommandBody::Noop if self.state == State::NotAuthenticated => {
                self.tagged(Some(tag), StatusKind::Ok, None, "NOOP completed".into());
            }
            CommandBody::Logout => {
                self.send(&Response::Status(StatusResponse::untagged(
                    StatusKind::Bye,
                    "IMAP4rev2 server terminating connection",
                )));
                self.tagged(Some(tag), StatusKind::Ok, None, "LOGOUT completed".into());
                self.logout();
            }
            CommandBody::StartTls => {
                if !self.config.starttls || self.tls {
                    self.tagged(
                        Some(tag),
                        StatusKind::No,
                        None,
                        "STARTTLS is not offered".into(),
                    );
                    return;
                }
                self.tagged(
                    Some(tag),
                    StatusKind::Ok,
                    None,
                    "Begin TLS negotiation now".into(),
                );
                // RFC 9051 6.2.1 / RFC 3207-style injection defence: octets the client sent
                // after STARTTLS in plaintext must never be read as commands under TLS.
                self.framer.discard_buffered();
                self.tls = true;
                self.events.push_back(Event::StartTls);
            }
            CommandBody::Authenticate {
                mechanism,
                initial_response,
            } => {
                if self.config.login_requires_tls && !self.tls {
                    self.tagged(
                        Some(tag),
                        StatusKind::No,
                        Code::other("PRIVACYREQUIRED").ok(),
                        "authentication is disabled until STARTTLS".into(),
                    );
                } else if !mechanism.as_str().eq_ignore_ascii_case("PLAIN") {
                    self.tagged(
                        Some(tag),
                        StatusKind::No,
                        Code::other("CANNOT").ok(),
                        format!(
                            "unsupported authentication mechanism {mechanism} (supported: PLAIN)"
                        ),
                    );
                } else if let Some(ir) = initial_response {
                    self.sasl_plain(tag, ir.expose());
                } else {
                    self.send(&Response::Continue(Continue {
                        code: None,
                        text: String::new(),
                    }));
                    self.mode = Mode::Sasl(tag);
                }
            }
            CommandBody::Login { username, password } => {
                if self.config.login_requires_tls && !self.tls {
                    self.tagged(
                        Some(tag),
                        StatusKind::No,
                        Code::other("PRIVACYREQUIRED").ok(),
                        "LOGIN is disabled until STARTTLS".into(),
                    );
                    return;
                }
                let token = self.token(tag, PendingKind::Login);
                self.events.push_back(Event::Login {
                    token,
                    authzid: None,
                    username: username.as_bytes().to_vec(),
                    password: Secret::new(password.expose().as_bytes().to_vec()),
                });
            }
            CommandBody::Enable(caps) => {
                let mut newly = Vec::new();
                for c in caps {
                    if self
                        .config
                        .enableable
                        .iter()
                        .any(|e| e.as_str().eq_ignore_ascii_case(c.as_str()))
                    {
                        if c.as_str().eq_ignore_ascii_case("UTF8=ACCEPT") {
                            self.utf8_accept = true;
                        }
                        if !self.enabled.contains(&c) {
                            self.enabled.push(c.clone());
                            newly.push(c);
                        }
                    }
                }
                self.send(&Response::Data(Data::Enabled(newly.clone())));
                self.tagged(Some(tag), StatusKind::Ok, None, "ENABLE completed".into());
                if !newly.is_empty() {
                    self.events.push_back(Event::Enabled(newly));
                }
            }
            CommandBody::Idle => {
                self.send(&Response::Continue(Continue {
                    code: None,
                    text: "idling".into(),
                }));
                self.mode = Mode::Idle(tag);
                self.events.push_back(Event::Idle);
            }
            body => {
                let kind = match &body {
                    CommandBody::Select(_) => PendingKind::Select { read_only: false },
                    CommandBody::Examine(_) => PendingKind::Select { read_only: true },
                    CommandBody::Close | CommandBody::Unselect => PendingKind::Close,
                    _ => PendingKind::Other,
                };
                let token = self.token(tag.clone(), kind);
                self.events.push_back(Event::Command {
                    token,
                    command: Command { tag, body },
                });
            }
        }
    }

    /// `message = [authzid] UTF8NUL authcid UTF8NUL passwd` (RFC 4616 section 2).
    fn sasl_plain(&mut self, tag: Tag, data: &[u8]) {
        let mut parts = data.split(|&b| b == 0);
        match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some(authzid), Some(authcid), Some(passwd), None)
                if !authcid.is_empty() && authcid.len() <= 255 && passwd.len() <= 255 =>
            {
                let token = self.token(tag, PendingKind::Login);
                self.events.push_back(Event::Login {
                    token,
                    authzid: (!authzid.is_empty()).then(|| authzid.to_vec()),
                    username: authcid.to_vec(),
                    password: Secret::new(passwd.to_vec()),
                });
            }
            _ => self.bad(
                Some(tag),
                "malformed PLAIN response (expected authzid NUL authcid NUL password)".into(),
            ),
        }
    }
}

/// The tag and the command name (`UID FETCH` for the UID forms) at the start of a frame.
fn command_name(frame: &[u8]) -> (Option<Tag>, Option<String>) {
    let Ok((rest, tag)) = crate::codec::core::tag(frame) else {
        return (None, None);
    };
    let Some(rest) = rest.strip_prefix(b" ") else {
        return (Some(tag), None);
    };
    let word = |b: &[u8]| {
        let n = b
            .iter()
            .position(|&c| !c.is_ascii_alphanumeric())
            .unwrap_or(b.len());
        (String::from_utf8_lossy(&b[..n]).to_ascii_uppercase(), n)
    };
    let (first, n) = word(rest);
    if first == "UID"
        && let Some(r) = rest[n..].strip_prefix(b" ")
    {
        return (Some(tag), Some(format!("UID {}", word(r).0)));
    }
    (Some(tag), Some(first))
}

/// Which command is valid in which state (RFC 9051 sections 6.1 to 6.4), with a helpful text.
fn check_state(state: State, name: &str) -> Result<(), String> {
    const ANY: &[&str] = &["CAPABILITY", "NOOP", "LOGOUT", "ID"];
    const NONAUTH: &[&str] = &["STARTTLS", "AUTHENTICATE", "LOGIN"];
    const AUTH: &[&str] = &[
        "ENABLE",
        "SELECT",
        "EXAMINE",
        "CREATE",
        "DELETE",
        "RENAME",
        "SUBSCRIBE",
        "UNSUBSCRIBE",
        "LIST",
        "LSUB",
        "NAMESPACE",
        "STATUS",
        "APPEND",
        "IDLE",
    ];
    if ANY.contains(&name) {
        return Ok(());
    }
    let nonauth = NONAUTH.contains(&name);
    let auth = AUTH.contains(&name);
    let selected = !nonauth && !auth;
    match state {
        State::Logout => Err(format!("{name} is not valid after LOGOUT")),
        State::NotAuthenticated if nonauth => Ok(()),
        State::NotAuthenticated if auth => {
            Err(format!("{name} is not valid before LOGIN or AUTHENTICATE"))
        }
        State::NotAuthenticated => Err(format!(
            "{name} is not valid in {}: LOGIN and SELECT a mailbox first",
            state.describe()
        )),
        _ if nonauth => Err(format!("{name} is not valid after authentication")),
        State::Selected { .. } if name == "ENABLE" => {
            Err("ENABLE is only valid before a mailbox is selected".into())
        }
        State::Authenticated if selected => Err(format!(
            "{name} is not valid in {}: SELECT or EXAMINE a mailbox first",
            state.describe()
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session() -> (ServerSession, Instant) {
        let now = Instant::now();
        let config = ServerConfig {
            starttls: true,
            ..ServerConfig::default()
        };
        let mut s = ServerSession::new(config, now);
        s.poll_transmit();
        (s, now)
    }

    fn out(s: &mut ServerSession) -> String {
        String::from_utf8(s.poll_transmit().unwrap_or_default()).unwrap()
    }

    #[test]
    fn state_checks_answer_bad_with_help() {
        let (mut s, now) = session();
        s.handle_input(now, b"a1 FETCH 1 FLAGS\r\na2 SELECT INBOX\r\n");
        let o = out(&mut s);
        assert!(
            o.contains("a1 BAD FETCH is not valid in the not authenticated state"),
            "{o}"
        );
        assert!(o.contains("a2 BAD SELECT is not valid before LOGIN"), "{o}");
        assert!(s.poll_event().is_none());
    }

    #[test]
    fn starttls_discards_buffered_plaintext() {
        let (mut s, now) = session();
        // An attacker appends a command after STARTTLS in the same plaintext packet: it must
        // never run once TLS is up.
        s.handle_input(now, b"a STARTTLS\r\nb LOGIN evil pass\r\nc CAPABILITY\r\n");
        assert_eq!(out(&mut s), "a OK Begin TLS negotiation now\r\n");
        assert!(matches!(s.poll_event(), Some(Event::StartTls)));
        assert!(s.poll_event().is_none());
        // After the handshake, the client's first real command.
        s.handle_input(now, b"d CAPABILITY\r\n");
        let o = out(&mut s);
        assert!(
            o.starts_with("* CAPABILITY ") && !o.contains("STARTTLS"),
            "{o}"
        );
        assert!(o.ends_with("d OK CAPABILITY completed\r\n"), "{o}");
        assert!(s.poll_event().is_none());
    }

    #[test]
    fn authenticate_plain_with_continuation_and_sasl_ir() {
        let (mut s, now) = session();
        s.handle_input(now, b"a AUTHENTICATE PLAIN\r\n");
        assert_eq!(out(&mut s), "+ \r\n");
        s.handle_input(now, b"AHVzZXIAcGFzcw==\r\n");
        let Some(Event::Login {
            token,
            username,
            password,
            authzid: None,
        }) = s.poll_event()
        else {
            panic!()
        };
        assert_eq!(
            (&username[..], &password.expose()[..]),
            (&b"user"[..], &b"pass"[..])
        );
        s.respond(token, Answer::no("[AUTHENTICATIONFAILED] wrong"))
            .unwrap();
        assert_eq!(out(&mut s), "a NO [AUTHENTICATIONFAILED] wrong\r\n");
        assert_eq!(s.state(), State::NotAuthenticated);

        s.handle_input(now, b"b AUTHENTICATE PLAIN AHVzZXIAcGFzcw==\r\n");
        let Some(Event::Login { token, .. }) = s.poll_event() else {
            panic!()
        };
        s.respond(token, Answer::ok("Logged in")).unwrap();
        assert_eq!(s.state(), State::Authenticated);

        let (mut s, now) = session();
        s.handle_input(now, b"c AUTHENTICATE PLAIN\r\n*\r\n");
        assert_eq!(out(&mut s), "+ \r\nc BAD AUTHENTICATE cancelled\r\n");
    }

    #[test]
    fn pipelined_commands_wait_for_answers_in_order() {
        let (mut s, now) = session();
        s.handle_input(now, b"a LOGIN u p\r\nb SELECT INBOX\r\nc FETCH 1 UID\r\n");
        let Some(Event::Login { token, .. }) = s.poll_event() else {
            panic!()
        };
        assert!(s.poll_event().is_none(), "b waits for a's answer");
        s.respond(token, Answer::ok("Logged in")).unwrap();
        let Some(Event::Command { token, command }) = s.poll_event() else {
            panic!()
        };
        assert_eq!(command.body.name(), "SELECT");
        s.respond(token, Answer::ok("done").with_data([Data::Exists(1)]))
            .unwrap();
        assert_eq!(s.state(), State::Selected { read_only: false });
        let Some(Event::Command { token, .. }) = s.poll_event() else {
            panic!()
        };
        assert_eq!(
            s.respond(Token { id: 999 }, Answer::ok("x")),
            Err(SessionError::UnknownToken)
        );
        s.respond(token, Answer::ok("FETCH completed")).unwrap();
        assert_eq!(
            out(&mut s),
            "a OK Logged in\r\n* 1 EXISTS\r\nb OK done\r\nc OK FETCH completed\r\n"
        );
    }

    #[test]
    fn literal_continuation_is_the_servers_decision() {
        let (mut s, now) = session();
        s.handle_input(now, b"a LOGIN {4}\r\n");
        assert_eq!(out(&mut s), "+ Ready for literal data\r\n");
        s.handle_input(now, b"user pass\r\n");
        assert!(matches!(s.poll_event(), Some(Event::Login { .. })));

        let (mut s, now) = session();
        s.handle_input(now, b"a APPEND INBOX {10}\r\n");
        assert_eq!(
            out(&mut s),
            "a BAD APPEND is not valid before LOGIN or AUTHENTICATE\r\n"
        );
        s.handle_input(now, b"b APPEND INBOX {999999999999}\r\n");
        let o = out(&mut s);
        assert!(
            o.starts_with("b NO [TOOBIG] literal of 999999999999 octets"),
            "{o}"
        );
        // A too large non-synchronising literal: BAD, and its octets are never a command.
        s.handle_input(now, b"c LOGIN {5000+}\r\n");
        s.handle_input(now, &b"d LOGOUT\r\n".repeat(500));
        // The rest of the LOGIN line, after the literal.
        s.handle_input(now, b" pw\r\ne NOOP\r\n");
        let o = out(&mut s);
        assert_eq!(
            o,
            "c BAD literal of 5000 octets is larger than the limit of 4096 octets\r\ne OK NOOP completed\r\n"
        );
    }

    #[test]
    fn idle_and_done() {
        let (mut s, now) = session();
        s.handle_input(now, b"a LOGIN u p\r\n");
        let Some(Event::Login { token, .. }) = s.poll_event() else {
            panic!()
        };
        s.respond(token, Answer::ok("ok")).unwrap();
        out(&mut s);
        s.handle_input(now, b"b IDLE\r\n");
        assert_eq!(out(&mut s), "+ idling\r\n");
        assert!(matches!(s.poll_event(), Some(Event::Idle)));
        s.send_untagged(Data::Exists(5));
        s.handle_input(now, b"done\r\nc NOOP\r\n");
        assert!(matches!(s.poll_event(), Some(Event::IdleDone)));
        assert!(matches!(s.poll_event(), Some(Event::Command { .. })));
        assert_eq!(out(&mut s), "* 5 EXISTS\r\nb OK IDLE terminated\r\n");
    }

    #[test]
    fn autologout_and_too_many_errors() {
        let (mut s, now) = session();
        assert_eq!(s.poll_timeout(), Some(now + Duration::from_secs(1800)));
        s.handle_timeout(now + Duration::from_secs(1799));
        assert_eq!(s.state(), State::NotAuthenticated);
        s.handle_timeout(now + Duration::from_secs(1800));
        assert_eq!(out(&mut s), "* BYE Autologout; idle for too long\r\n");
        assert_eq!(s.state(), State::Logout);
        assert!(matches!(s.poll_event(), Some(Event::Logout)));

        let (mut s, now) = session();
        s.handle_input(now, &b"x BOGUS\r\n".repeat(20));
        let o = out(&mut s);
        assert_eq!(o.matches("x BAD").count(), 10, "{o}");
        assert!(o.ends_with("* BYE Too many invalid commands\r\n"));
        assert_eq!(s.state(), State::Logout);
    }

    #[test]
    fn bye_from_the_server_ends_the_session() {
        let (mut s, now) = session();
        out(&mut s);
        s.bye("Server shutting down.");
        assert_eq!(out(&mut s), "* BYE Server shutting down.\r\n");
        assert_eq!(s.state(), State::Logout);
        assert!(matches!(s.poll_event(), Some(Event::Logout)));
        assert!(!s.wants_input());
        // Input after BYE is not read; a second BYE says nothing.
        s.handle_input(now, b"a NOOP\r\n");
        s.bye("again");
        assert_eq!(s.poll_transmit(), None);
        assert!(s.poll_event().is_none());
    }

    #[test]
    fn back_pressure_while_a_command_waits() {
        let now = Instant::now();
        let config = ServerConfig {
            limits: FramingLimits {
                max_frame: 100,
                ..FramingLimits::default()
            },
            ..ServerConfig::default()
        };
        let mut s = ServerSession::new(config, now);
        s.handle_input(now, b"a LOGIN u p\r\n");
        assert!(s.wants_input());
        s.handle_input(now, &b"b NOOP\r\n".repeat(20));
        assert!(
            !s.wants_input(),
            "120 octets buffered behind a pending command"
        );
        let Some(Event::Login { token, .. }) = s.poll_event() else {
            panic!()
        };
        s.respond(token, Answer::ok("ok")).unwrap();
        // The NOOPs now go to the application one at a time.
        assert!(matches!(s.poll_event(), Some(Event::Command { .. })));
    }

    #[test]
    fn tls_from_the_start_offers_no_starttls() {
        let now = Instant::now();
        let config = ServerConfig {
            starttls: true,
            login_requires_tls: true,
            ..ServerConfig::default()
        };
        let mut s = ServerSession::new_tls(config, now);
        let greeting = out(&mut s);
        assert!(!greeting.contains("STARTTLS") && !greeting.contains("LOGINDISABLED"));
        assert!(greeting.contains("AUTH=PLAIN]"), "{greeting}");
        s.handle_input(now, b"a STARTTLS\r\nb LOGIN u p\r\n");
        assert_eq!(out(&mut s), "a NO STARTTLS is not offered\r\n");
        assert!(matches!(s.poll_event(), Some(Event::Login { .. })));
    }

    fn streaming_session() -> (ServerSession, Instant) {
        let now = Instant::now();
        let config = ServerConfig {
            stream_append_from: Some(10),
            ..ServerConfig::default()
        };
        let mut s = ServerSession::new(config, now);
        s.handle_input(now, b"a LOGIN u p\r\n");
        let Some(Event::Login { token, .. }) = s.poll_event() else {
            panic!()
        };
        s.respond(token, Answer::ok("ok")).unwrap();
        s.poll_transmit();
        (s, now)
    }

    #[test]
    fn large_append_streams_to_the_application() {
        let (mut s, now) = streaming_session();
        s.handle_input(now, b"b APPEND INBOX (\\Seen) {18}\r\n");
        assert_eq!(out(&mut s), "+ Ready for literal data\r\n");
        let Some(Event::AppendStart {
            token,
            mailbox,
            flags: Some(flags),
            size: 18,
            binary: false,
            ..
        }) = s.poll_event()
        else {
            panic!()
        };
        assert!(mailbox.is_inbox() && flags == [Flag::Seen]);
        s.handle_input(now, b"Subject: x\r\n");
        s.handle_input(now, b"\r\nhi\r\n\r\nc NOOP\r\n");
        let mut message = Vec::new();
        loop {
            match s.poll_event() {
                Some(Event::AppendData(d)) => message.extend(d),
                Some(Event::AppendEnd) => break,
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(message, b"Subject: x\r\n\r\nhi\r\n");
        assert!(s.poll_event().is_none(), "c waits for b's answer");
        s.respond(token, Answer::ok("APPEND completed")).unwrap();
        assert!(matches!(s.poll_event(), Some(Event::Command { .. })));
        assert_eq!(out(&mut s), "b OK APPEND completed\r\n");
    }

    #[test]
    fn streamed_append_refused_early_skips_the_rest() {
        let (mut s, now) = streaming_session();
        s.handle_input(now, b"b APPEND INBOX {30}\r\n0123456789");
        let Some(Event::AppendStart { token, .. }) = s.poll_event() else {
            panic!()
        };
        assert!(matches!(s.poll_event(), Some(Event::AppendData(_))));
        s.respond(token, Answer::no("[OVERQUOTA] mailbox is full"))
            .unwrap();
        // The rest of the message looks like commands, but is never read as such.
        s.handle_input(now, b"x LOGOUT\r\nx LOGOUT\r\n\r\nc NOOP\r\n");
        let Some(Event::Command { command, .. }) = s.poll_event() else {
            panic!()
        };
        assert_eq!(command.tag.as_str(), "c");
        assert!(s.poll_event().is_none());
        assert_eq!(
            out(&mut s),
            "+ Ready for literal data\r\nb NO [OVERQUOTA] mailbox is full\r\n"
        );
    }

    #[test]
    fn streamed_append_without_crlf_after_the_message_is_aborted() {
        let (mut s, now) = streaming_session();
        s.handle_input(now, b"b APPEND INBOX {10}\r\n0123456789 {5}\r\nc NOOP\r\n");
        let Some(Event::AppendStart { token, .. }) = s.poll_event() else {
            panic!()
        };
        assert!(matches!(s.poll_event(), Some(Event::AppendData(_))));
        assert!(matches!(s.poll_event(), Some(Event::AppendAborted)));
        assert_eq!(
            s.respond(token, Answer::ok("x")),
            Err(SessionError::UnknownToken)
        );
        assert!(matches!(s.poll_event(), Some(Event::Command { .. })));
        let o = out(&mut s);
        assert!(
            o.ends_with(
                "b BAD expected CRLF after the APPEND message (MULTIAPPEND is not supported)\r\n"
            ),
            "{o}"
        );
        // Small APPENDs are still gathered and delivered whole.
        let (mut s, now) = streaming_session();
        s.handle_input(now, b"d APPEND INBOX {3}\r\nabc\r\n");
        assert!(matches!(
            s.poll_event(),
            Some(Event::Command {
                command: Command {
                    body: CommandBody::Append { .. },
                    ..
                },
                ..
            })
        ));
    }

    #[test]
    fn login_disabled_before_tls() {
        let now = Instant::now();
        let config = ServerConfig {
            starttls: true,
            login_requires_tls: true,
            ..ServerConfig::default()
        };
        let mut s = ServerSession::new(config, now);
        let greeting = out(&mut s);
        assert!(greeting.contains("STARTTLS LOGINDISABLED]"), "{greeting}");
        s.handle_input(now, b"a LOGIN u p\r\n");
        assert_eq!(
            out(&mut s),
            "a NO [PRIVACYREQUIRED] LOGIN is disabled until STARTTLS\r\n"
        );
    }
}
