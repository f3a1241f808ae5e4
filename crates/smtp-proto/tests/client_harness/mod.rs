//! A scripted application around `ClientSession` for the client tests: it sends queued
//! messages when the session is ready, feeds their content in chunks, records events, and
//! replays `S:`/`C:` transcripts on a fake clock.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use mailroom_smtp_proto::client::{
    ClientConfig, ClientError, ClientSession, DataPermit, Envelope, Event, MessageResult,
    TlsUpgrade,
};
use mailroom_smtp_proto::{ForwardPath, Host, ReversePath};

/// The application: what it still has to send, and what happened.
pub(crate) struct App {
    pub(crate) session: ClientSession,
    pub(crate) now: Instant,
    pub(crate) messages: VecDeque<(Envelope, Vec<u8>)>,
    /// Content is fed in pieces of this size.
    pub(crate) chunk: usize,
    /// QUIT once every message is done.
    pub(crate) quit: bool,
    pub(crate) results: Vec<MessageResult>,
    pub(crate) errors: Vec<ClientError>,
    /// One word per event, in order (`greeting`, `hello`, `ready`, `rcpt 250`, ...).
    pub(crate) log: Vec<String>,
    pub(crate) closed: bool,
    pub(crate) tls: Option<TlsUpgrade>,
    /// The content of the message under way, until its `DataReady`.
    waiting: Option<Vec<u8>>,
    /// The permit, the content and how much of it was fed.
    content: Option<(DataPermit, Vec<u8>, usize)>,
}

pub(crate) fn config() -> ClientConfig {
    ClientConfig::new("client.example".parse::<Host>().unwrap())
}

pub(crate) fn from(s: &str) -> ReversePath {
    if s.is_empty() {
        ReversePath::Null
    } else {
        ReversePath::Mailbox(s.parse().unwrap())
    }
}

pub(crate) fn to(s: &str) -> ForwardPath {
    ForwardPath::Mailbox(s.parse().unwrap())
}

pub(crate) fn envelope(sender: &str, recipients: &[&str]) -> Envelope {
    Envelope::new(from(sender), recipients.iter().map(|r| to(r)))
}

impl App {
    pub(crate) fn new(config: ClientConfig) -> Self {
        let now = Instant::now();
        Self {
            session: ClientSession::new(config, now),
            now,
            messages: VecDeque::new(),
            chunk: 7,
            quit: true,
            results: Vec::new(),
            errors: Vec::new(),
            log: Vec::new(),
            closed: false,
            tls: None,
            waiting: None,
            content: None,
        }
    }

    pub(crate) fn message(mut self, envelope: Envelope, content: &[u8]) -> Self {
        self.messages.push_back((envelope, content.to_vec()));
        self
    }

    fn next_message(&mut self) {
        if let Some((envelope, content)) = self.messages.pop_front() {
            // The session may have moved on (failed) since the event was queued.
            match self.session.send_message(envelope) {
                Ok(()) => self.waiting = Some(content),
                Err(e) => self.log.push(format!("send error {e}")),
            }
        } else if self.quit && self.session.is_ready() {
            self.session.quit().unwrap();
        }
    }

    /// Runs the application until it has nothing more to do; returns what the client sent.
    pub(crate) fn pump(&mut self) -> Vec<u8> {
        let mut wire = Vec::new();
        loop {
            let mut progress = false;
            while let Some(event) = self.session.poll_event() {
                progress = true;
                self.on_event(event);
            }
            if let Some((permit, content, sent)) = self.content.as_mut() {
                while *sent < content.len() && self.session.can_send_data() {
                    let end = (*sent + self.chunk).min(content.len());
                    self.session
                        .send_data(permit, &content[*sent..end])
                        .unwrap();
                    *sent = end;
                    progress = true;
                    // Take the bytes out as an adapter would before feeding more.
                    while let Some(bytes) = self.session.poll_transmit(self.now) {
                        wire.extend_from_slice(&bytes);
                    }
                }
                if *sent == content.len() || self.session.is_content_refused() {
                    let (permit, _, _) = self.content.take().unwrap();
                    self.session.finish_data(permit).unwrap();
                    progress = true;
                }
            }
            while let Some(bytes) = self.session.poll_transmit(self.now) {
                wire.extend_from_slice(&bytes);
                progress = true;
            }
            if !progress {
                return wire;
            }
        }
    }

    fn on_event(&mut self, event: Event) {
        match event {
            Event::Greeting(r) => self.log.push(format!("greeting {}", r.code())),
            Event::Hello { esmtp, .. } => {
                self.log
                    .push(if esmtp { "hello esmtp" } else { "hello" }.into());
            }
            Event::StartTls(upgrade) => {
                self.log.push("starttls".into());
                self.tls = Some(upgrade);
            }
            Event::Authenticated(_) => self.log.push("authenticated".into()),
            Event::Ready => {
                self.log.push("ready".into());
                self.next_message();
            }
            Event::Recipient { index, reply } => {
                self.log.push(format!("rcpt {index} {}", reply.code()));
            }
            Event::DataReady(permit) => {
                self.log.push("data".into());
                let content = self.waiting.take().expect("content for the message");
                self.content = Some((permit, content, 0));
            }
            Event::MessageDone(result) => {
                self.log.push("done".into());
                self.results.push(result);
                self.waiting = None;
                self.content = None;
                self.next_message();
            }
            Event::Reset(_) => self.log.push("reset".into()),
            Event::Closed(reply) => {
                self.log
                    .push(format!("closed {:?}", reply.map(|r| r.code().get())));
                self.closed = true;
            }
            Event::Error(e) => {
                self.log.push(format!("error {e}"));
                self.errors.push(e);
            }
            other => self.log.push(format!("{other:?}")),
        }
    }

    /// The server sends `bytes`; returns what the client sends in response.
    pub(crate) fn server(&mut self, bytes: &[u8]) -> Vec<u8> {
        self.session.handle_input(bytes);
        self.pump()
    }

    /// The clock moves on by `d`.
    pub(crate) fn advance(&mut self, d: Duration) -> Vec<u8> {
        self.now += d;
        self.session.handle_timeout(self.now);
        self.pump()
    }

    /// The TLS handshake after `Event::StartTls` is done.
    pub(crate) fn tls_done(&mut self) -> Vec<u8> {
        let upgrade = self.tls.take().expect("a STARTTLS upgrade to finish");
        self.session.tls_established(upgrade);
        self.pump()
    }

    /// Replays a transcript: `S: line` is sent by the server (consecutive lines in one
    /// write), `C: line` is what the client must have sent (consecutive lines together),
    /// `T: secs` moves the clock, `TLS` finishes a STARTTLS handshake. Lines keep their CRLF.
    pub(crate) fn run(&mut self, script: &str) {
        let mut server = Vec::new();
        let mut client = Vec::new();
        let mut sent = self.pump();
        let lines: Vec<&str> = script.lines().map(str::trim_start).collect();
        for (n, line) in lines.iter().enumerate() {
            if line.is_empty() {
                continue;
            }
            if let Some(text) = line.strip_prefix("S: ").or(line.strip_prefix("S:")) {
                if !client.is_empty() {
                    self.check(&mut sent, &mut client, n);
                }
                server.extend_from_slice(text.as_bytes());
                server.extend_from_slice(b"\r\n");
                continue;
            }
            if !server.is_empty() {
                sent.extend(self.server(&std::mem::take(&mut server)));
            }
            if let Some(text) = line.strip_prefix("C: ").or(line.strip_prefix("C:")) {
                client.extend_from_slice(text.as_bytes());
                client.extend_from_slice(b"\r\n");
            } else if let Some(secs) = line.strip_prefix("T: ") {
                self.check(&mut sent, &mut client, n);
                sent.extend(self.advance(Duration::from_secs(secs.parse().unwrap())));
            } else if *line == "TLS" {
                self.check(&mut sent, &mut client, n);
                sent.extend(self.tls_done());
            } else {
                panic!("bad transcript line {n}: {line}");
            }
        }
        if !server.is_empty() {
            sent.extend(self.server(&server));
        }
        self.check(&mut sent, &mut client, lines.len());
    }

    fn check(&mut self, sent: &mut Vec<u8>, client: &mut Vec<u8>, line: usize) {
        assert_eq!(
            String::from_utf8_lossy(sent),
            String::from_utf8_lossy(client),
            "client output before transcript line {line}; events: {:?}",
            self.log
        );
        sent.clear();
        client.clear();
    }
}
