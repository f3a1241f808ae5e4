//! The client session's errors: those that end the session, and calls made at the wrong time.

use crate::error::ReplyDecodeError;
use crate::types::reply::Reply;

/// Why a client session ended without a QUIT. Carried by
/// [`Event::Error`](super::Event::Error); after it the session sends nothing more (except,
/// where noted, a polite `QUIT`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The greeting was not 220 (RFC 5321 §3.1: a 554 greeting means "no SMTP service here";
    /// the client sends QUIT).
    #[error("server refused the session: {0}")]
    GreetingRefused(Reply),
    /// EHLO (and HELO after it), or LHLO, was refused. QUIT is sent.
    #[error("server refused the hello: {0}")]
    HelloRefused(Reply),
    /// The policy requires TLS and the server does not offer STARTTLS. QUIT is sent.
    #[error("server does not offer STARTTLS and the policy requires tls")]
    TlsNotOffered,
    /// The policy requires TLS and the server refused STARTTLS. QUIT is sent.
    #[error("server refused STARTTLS: {0}")]
    StartTlsRefused(Reply),
    /// The server sent bytes after its `220` to STARTTLS, before the TLS handshake. They would
    /// be read as replies of the encrypted session (STARTTLS response injection,
    /// CVE-2011-0411): the connection is dropped.
    #[error("server sent {octets} octets after its STARTTLS reply, before the tls handshake")]
    StartTlsInjection {
        /// How many octets were waiting.
        octets: usize,
    },
    /// Credentials are set and the server offers neither PLAIN nor LOGIN. QUIT is sent.
    #[error("server offers no AUTH mechanism this client speaks (PLAIN, LOGIN)")]
    AuthNotOffered,
    /// Credentials are set, the connection is not TLS and plaintext AUTH is not allowed.
    /// QUIT is sent.
    #[error("refusing to send credentials over a connection without tls")]
    AuthNeedsTls,
    /// AUTH was refused (RFC 4954: 535 bad credentials, 534, 538, 454 ...). QUIT is sent.
    #[error("authentication failed: {0}")]
    AuthFailed(Reply),
    /// The server sent `421`: it is closing the connection (RFC 5321 §3.8).
    #[error("server is closing the connection: {0}")]
    ServiceClosing(Reply),
    /// A reply arrived when none was expected.
    #[error("unexpected reply: {0}")]
    UnexpectedReply(Reply),
    /// RSET after a failed transaction was refused. QUIT is sent.
    #[error("server refused RSET: {0}")]
    RsetFailed(Reply),
    /// A reply could not be read (malformed, a line longer than the limit, too many lines).
    #[error("bad reply from server: {0}")]
    BadReply(#[from] ReplyDecodeError),
    /// No reply in time (RFC 5321 §4.5.3.2).
    #[error("timed out waiting for {waiting_for}")]
    Timeout {
        /// What the client was waiting for (`"the greeting"`, `"the reply to RCPT"`, ...).
        waiting_for: &'static str,
    },
    /// The server closed the connection in the middle of the session.
    #[error("server closed the connection")]
    ConnectionClosed,
}

/// A message or a call the session cannot take now. Nothing was sent; the session goes on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// The session is not in a state for this call (a message before `Ready`, data outside
    /// the data phase, a second message during the first, anything after the end).
    #[error("the session is not ready for {0}")]
    NotReady(&'static str),
    /// The envelope has no recipient.
    #[error("the envelope has no recipient")]
    NoRecipients,
    /// The transaction needs SMTPUTF8 and the server does not offer it (RFC 6531 §3.4: the
    /// client must not send a UTF-8 envelope to it).
    #[error("the message needs SMTPUTF8 and the server does not offer it")]
    Smtputf8NotOffered,
    /// BINARYMIME content and the server does not offer BINARYMIME and CHUNKING (RFC 3030 §3).
    #[error("the message is BINARYMIME and the server does not offer BINARYMIME with CHUNKING")]
    BinaryMimeNotOffered,
    /// `REQUIRETLS` was asked for and the server does not offer it, or the connection is not
    /// TLS (RFC 8689 §4.1).
    #[error("the message requires REQUIRETLS and the server does not offer it over tls")]
    RequireTlsNotOffered,
    /// The message is larger than the SIZE the server announced (RFC 1870 §6.1).
    #[error("message of {size} octets is larger than the server's limit of {limit}")]
    TooLarge {
        /// The message's size.
        size: u64,
        /// The server's limit.
        limit: u64,
    },
    /// Every BDAT chunk the window allows is awaiting its reply: read replies first
    /// ([`ClientSession::can_send_data`](super::ClientSession::can_send_data)).
    #[error("too many BDAT chunks awaiting their reply")]
    Busy,
    /// The data permit is from another message.
    #[error("the data permit belongs to another message")]
    WrongPermit,
}
