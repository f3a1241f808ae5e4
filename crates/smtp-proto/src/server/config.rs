//! The settings of a [`ServerSession`](crate::server::ServerSession).

use std::time::Duration;

use crate::data::BareNewline;
use crate::types::command::Mechanism;
use crate::types::limits::Limits;
use crate::types::param::Keyword;

/// What a server session offers and enforces. Build it with [`ServerConfig::new`] and change
/// the fields you need; the defaults follow Postfix's `smtpd` (named beside each field).
///
/// ```
/// use mailroom_smtp_proto::server::ServerConfig;
///
/// let mut config = ServerConfig::new("mx.example.org");
/// config.max_message_size = Some(25 * 1024 * 1024);
/// config.starttls = true; // the adapter has a TLS certificate
/// assert!(config.auth_requires_tls);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerConfig {
    /// The server's name, first word of the greeting and of the EHLO reply
    /// (Postfix `myhostname`).
    pub hostname: String,
    /// The text after the name in the greeting (Postfix `smtpd_banner`: `$myhostname ESMTP`).
    pub greeting: String,
    /// Line, path and recipient limits (RFC 5321 §4.5.3.1). `limits.recipients` is the number
    /// of accepted recipients per transaction; the next one gets `452 4.5.3` (Postfix
    /// `smtpd_recipient_limit`, 1000).
    pub limits: Limits,
    /// `SIZE` (RFC 1870): the largest message accepted, announced in the EHLO reply and
    /// enforced while the content streams (Postfix `message_size_limit`, 10240000). `None`
    /// announces nothing and accepts any size.
    pub max_message_size: Option<u64>,
    /// Offer `8BITMIME` (RFC 6152).
    pub eight_bit_mime: bool,
    /// Offer `SMTPUTF8` (RFC 6531): UTF-8 addresses in transactions that ask for it.
    pub smtputf8: bool,
    /// Offer `CHUNKING` (RFC 3030): the BDAT command.
    pub chunking: bool,
    /// Offer `BINARYMIME` (RFC 3030 §3); only together with `chunking`.
    pub binary_mime: bool,
    /// Offer `DSN` (RFC 3461): the RET, ENVID, NOTIFY and ORCPT parameters.
    pub dsn: bool,
    /// Offer `ENHANCEDSTATUSCODES` (RFC 2034). When off, replies carry no `x.y.z` code.
    pub enhanced_status_codes: bool,
    /// Offer `PIPELINING` (RFC 2920). The session reads pipelined commands either way (and
    /// answers them in order); this only says whether the EHLO reply announces it.
    pub pipelining: bool,
    /// Offer `STARTTLS` (RFC 3207): set it when the adapter can upgrade the connection.
    pub starttls: bool,
    /// SASL mechanisms offered by `AUTH` (RFC 4954): PLAIN and LOGIN are understood; empty
    /// turns AUTH off. The application checks the credentials.
    pub auth_mechanisms: Vec<Mechanism>,
    /// Offer AUTH only under TLS (Postfix `smtpd_tls_auth_only`): before TLS it is not
    /// announced, and an attempt gets `538 5.7.11`. Default true.
    pub auth_requires_tls: bool,
    /// MAIL and RCPT parameters the application understands beyond those this crate knows:
    /// they reach the application in `params.other`. Any other unknown parameter gets
    /// `555 5.5.4 Unsupported option` (RFC 5321 §4.1.1.11).
    pub extra_parameters: Vec<Keyword>,
    /// Error replies after which the session ends with `421 4.7.0 ... Error: too many
    /// errors` (Postfix `smtpd_hard_error_limit`, 20).
    pub max_errors: u32,
    /// How long the session waits for a command line (RFC 5321 §4.5.3.2.7 "Server Timeout:
    /// 5 Minutes"; Postfix `smtpd_timeout`, 300s). Past it: `421 4.4.2` and close.
    pub command_timeout: Duration,
    /// How long the session waits for each block of message content (RFC 5321 §4.5.3.2.5
    /// "DATA Block: 3 Minutes").
    pub data_timeout: Duration,
    /// What a bare CR or LF inside DATA content does (default: the message is read to its
    /// end and refused with `550 5.5.2`, Postfix `smtpd_forbid_bare_newline = yes`).
    pub bare_newline: BareNewline,
    /// LMTP mode (RFC 2033): the greeting says LMTP, `LHLO` replaces `EHLO`/`HELO` (which
    /// get `500`), and the end of a message gets one reply per accepted recipient.
    pub lmtp: bool,
}

impl ServerConfig {
    /// The defaults, for a server named `hostname`: SIZE 10240000, 8BITMIME, SMTPUTF8,
    /// CHUNKING, BINARYMIME, DSN, ENHANCEDSTATUSCODES, PIPELINING; no STARTTLS (the adapter
    /// turns it on when it has a certificate); AUTH PLAIN and LOGIN, only under TLS.
    pub fn new(hostname: impl Into<String>) -> Self {
        Self {
            hostname: hostname.into(),
            greeting: "ESMTP mailroom".into(),
            limits: Limits::default(),
            max_message_size: Some(10_240_000),
            eight_bit_mime: true,
            smtputf8: true,
            chunking: true,
            binary_mime: true,
            dsn: true,
            enhanced_status_codes: true,
            pipelining: true,
            starttls: false,
            auth_mechanisms: vec![Mechanism::plain(), Mechanism::login()],
            auth_requires_tls: true,
            extra_parameters: Vec::new(),
            max_errors: 20,
            command_timeout: Duration::from_secs(300),
            data_timeout: Duration::from_secs(180),
            bare_newline: BareNewline::Reject,
            lmtp: false,
        }
    }
}
