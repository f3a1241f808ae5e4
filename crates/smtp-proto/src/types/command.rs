//! SMTP commands (RFC 5321 §4.1.1) and the extension commands this crate speaks.

use std::fmt;

use crate::error::ParamError;
use crate::types::address::{ForwardPath, Host, ReversePath};
use crate::types::param::{MailParams, RcptParams};
use crate::types::secret::Secret;

/// A command, as the client sends it and the server receives it.
///
/// Encode with [`Command::encode`] (client side), decode with [`Command::decode`] (server side).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// `helo = "HELO" SP Domain CRLF`
    Helo(Host),
    /// `ehlo = "EHLO" SP ( Domain / address-literal ) CRLF`
    Ehlo(Host),
    /// `LHLO` (RFC 2033 §4.1): LMTP's EHLO.
    Lhlo(Host),
    /// `mail = "MAIL FROM:" Reverse-path [SP Mail-parameters] CRLF`
    Mail {
        /// The sender.
        from: ReversePath,
        /// ESMTP parameters.
        params: MailParams,
    },
    /// `rcpt = "RCPT TO:" ( "<Postmaster@" Domain ">" / "<Postmaster>" / Forward-path )
    /// [SP Rcpt-parameters] CRLF`
    Rcpt {
        /// The recipient.
        to: ForwardPath,
        /// ESMTP parameters.
        params: RcptParams,
    },
    /// `data = "DATA" CRLF`
    Data,
    /// `bdat-cmd = "BDAT" SP chunk-size [ SP end-marker ] CR LF` (RFC 3030 §2)
    Bdat {
        /// The number of octets that follow the command line.
        size: u64,
        /// `end-marker = "LAST"`: this chunk ends the message.
        last: bool,
    },
    /// `rset = "RSET" CRLF`
    Rset,
    /// `noop = "NOOP" [ SP String ] CRLF`
    Noop(Option<String>),
    /// `quit = "QUIT" CRLF`
    Quit,
    /// `vrfy = "VRFY" SP String CRLF`
    Vrfy(String),
    /// `expn = "EXPN" SP String CRLF`
    Expn(String),
    /// `help = "HELP" [ SP String ] CRLF`
    Help(Option<String>),
    /// `STARTTLS` (RFC 3207 §4)
    StartTls,
    /// `auth-command = "AUTH" SP sasl-mech [SP initial-response]` (RFC 4954 §4)
    Auth {
        /// The SASL mechanism.
        mechanism: Mechanism,
        /// `initial-response = base64 / "="`: `Some("")` for `=` (an empty response).
        initial_response: Option<Secret<String>>,
    },
}

impl Command {
    /// The command verb in upper case, for logs and error replies.
    pub fn verb(&self) -> &'static str {
        match self {
            Command::Helo(_) => "HELO",
            Command::Ehlo(_) => "EHLO",
            Command::Lhlo(_) => "LHLO",
            Command::Mail { .. } => "MAIL",
            Command::Rcpt { .. } => "RCPT",
            Command::Data => "DATA",
            Command::Bdat { .. } => "BDAT",
            Command::Rset => "RSET",
            Command::Noop(_) => "NOOP",
            Command::Quit => "QUIT",
            Command::Vrfy(_) => "VRFY",
            Command::Expn(_) => "EXPN",
            Command::Help(_) => "HELP",
            Command::StartTls => "STARTTLS",
            Command::Auth { .. } => "AUTH",
        }
    }
}

/// A SASL mechanism name: `sasl-mech = 1*20mech-char`, `mech-char = UPPER-ALPHA / DIGIT / "-" /
/// "_"` (RFC 4422 §3.1). Stored in upper case: clients may send it in any case.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Mechanism(String);

impl Mechanism {
    /// `PLAIN` (RFC 4616).
    pub fn plain() -> Self {
        Self("PLAIN".into())
    }

    /// `LOGIN` (draft-murchison-sasl-login).
    pub fn login() -> Self {
        Self("LOGIN".into())
    }

    /// Validates a mechanism name.
    ///
    /// # Errors
    ///
    /// [`ParamError::Mechanism`] when `name` is not a `sasl-mech`.
    pub fn new(name: &str) -> Result<Self, ParamError> {
        let ok = (1..=20).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if ok {
            Ok(Self(name.to_ascii_uppercase()))
        } else {
            Err(ParamError::Mechanism)
        }
    }

    /// The name in upper case.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Mechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Mechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Mechanism({})", self.0)
    }
}
