//! The settings of a [`ClientSession`](super::ClientSession).

use std::time::Duration;

use crate::types::address::{Domain, Host};
use crate::types::limits::Limits;
use crate::types::secret::Secret;

/// Whether the client upgrades the connection with STARTTLS (RFC 3207), in Postfix's
/// `smtp_tls_security_level` terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TlsPolicy {
    /// Never send STARTTLS (`none`).
    Never,
    /// Send STARTTLS when the server offers it; go on in plaintext when it does not, or when it
    /// refuses the command (`may`).
    #[default]
    Opportunistic,
    /// Send STARTTLS, and fail the session when the server does not offer it or refuses it
    /// (`encrypt`).
    Required,
}

/// A user name and password for AUTH PLAIN (RFC 4616) or LOGIN.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credentials {
    /// The authentication identity (`authcid`).
    pub username: String,
    /// The password; its `Debug` never shows it.
    pub password: Secret<String>,
}

impl Credentials {
    /// A user name and password.
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Self {
        Self {
            username: username.into(),
            password: Secret::new(password.into()),
        }
    }
}

/// How long the client waits for each reply: RFC 5321 §4.5.3.2, "An SMTP client MUST provide a
/// timeout mechanism" with at least these values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// §4.5.3.2.1 "Initial 220 Message: 5 Minutes".
    pub greeting: Duration,
    /// §4.5.3.2.2 "MAIL Command: 5 Minutes".
    pub mail: Duration,
    /// §4.5.3.2.3 "RCPT Command: 5 Minutes".
    pub rcpt: Duration,
    /// §4.5.3.2.4 "DATA Initiation: 2 Minutes" (waiting for the 354).
    pub data_init: Duration,
    /// §4.5.3.2.5 "Data Block: 3 Minutes": the longest gap between two pieces of content on the
    /// wire (the application feeding nothing counts too, since the server is waiting).
    pub data_block: Duration,
    /// §4.5.3.2.6 "DATA Termination: 10 Minutes": waiting for the reply after the final `.`
    /// or a BDAT chunk ("the server may need to do substantial processing").
    pub data_end: Duration,
    /// EHLO, HELO, STARTTLS, AUTH, RSET and QUIT, for which the RFC names no figure; Postfix
    /// waits 300 s for most (`smtp_helo_timeout`, `smtp_starttls_timeout`, `smtp_quit_timeout`).
    pub other: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        let minutes = |m: u64| Duration::from_secs(60 * m);
        Self {
            greeting: minutes(5),
            mail: minutes(5),
            rcpt: minutes(5),
            data_init: minutes(2),
            data_block: minutes(3),
            data_end: minutes(10),
            other: minutes(5),
        }
    }
}

/// The settings of one client session.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// The name the client gives in EHLO/HELO/LHLO (RFC 5321 §4.1.1.1: "the fully-qualified
    /// domain name of the SMTP client if one is available", else an address literal).
    pub hostname: Host,
    /// STARTTLS policy.
    pub tls: TlsPolicy,
    /// Credentials for AUTH; `None` sends no AUTH.
    pub credentials: Option<Credentials>,
    /// Allow AUTH over a connection that is not TLS. Off by default: a password in plaintext
    /// is readable by anyone on the path (Postfix's `smtp_sasl_tls_security_options`).
    pub allow_plaintext_auth: bool,
    /// Speak LMTP (RFC 2033): LHLO instead of EHLO, no HELO fallback, and one reply per
    /// accepted recipient after the content.
    pub lmtp: bool,
    /// Send the content with BDAT (RFC 3030) when the server offers CHUNKING. Content declared
    /// [`Body::BinaryMime`](crate::Body::BinaryMime) always goes with BDAT.
    pub prefer_chunking: bool,
    /// How many BDAT chunks may await their reply at once when the server offers PIPELINING
    /// (without it, one: RFC 3030 §4.2 has the client wait for each reply). Bounds the replies
    /// the server has to hold back while the client writes.
    pub bdat_window: usize,
    /// Reply size limits (`reply_line`, `reply_lines`).
    pub limits: Limits,
    /// Reply timeouts.
    pub timeouts: Timeouts,
}

impl ClientConfig {
    /// The defaults for a client calling itself `hostname`: opportunistic TLS, no AUTH, SMTP,
    /// DATA rather than BDAT, RFC 5321 limits and timeouts.
    pub fn new(hostname: Host) -> Self {
        Self {
            hostname,
            tls: TlsPolicy::default(),
            credentials: None,
            allow_plaintext_auth: false,
            lmtp: false,
            prefer_chunking: false,
            bdat_window: 8,
            limits: Limits::default(),
            timeouts: Timeouts::default(),
        }
    }
}

impl Default for ClientConfig {
    /// A client calling itself `localhost`.
    fn default() -> Self {
        Self::new(Host::Domain(Domain::from_validated("localhost".to_owned())))
    }
}
