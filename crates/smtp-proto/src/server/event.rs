//! What a [`ServerSession`](crate::server::ServerSession) tells the application, and the
//! tokens the application answers with.

use bytes::Bytes;

use crate::types::address::{ForwardPath, Host, ReversePath};
use crate::types::command::Mechanism;
use crate::types::param::{MailParams, RcptParams};
use crate::types::secret::Secret;

/// Something the application must know or decide, from
/// [`ServerSession::poll_event`](crate::server::ServerSession::poll_event).
///
/// The variants holding a token need an answer: the session reads no further command until
/// the token comes back through the matching `answer_*` method.
#[derive(Debug)]
#[non_exhaustive]
pub enum Event {
    /// The client said `EHLO`, `HELO` or `LHLO` and got `250`. Any transaction is gone.
    Hello {
        /// The name the client gave.
        host: Host,
        /// `EHLO` or `LHLO` (true), `HELO` (false).
        extended: bool,
    },
    /// `MAIL FROM:` passed the session's checks; accept or refuse it with
    /// [`ServerSession::answer_mail`](crate::server::ServerSession::answer_mail).
    Mail(MailRequest),
    /// `RCPT TO:` passed the session's checks; answer with
    /// [`ServerSession::answer_rcpt`](crate::server::ServerSession::answer_rcpt).
    Rcpt(RcptRequest),
    /// The next piece of the message content (DATA after dot-unstuffing, or BDAT octets),
    /// shared with the session's input buffer without copying. Pieces concatenate to the
    /// message; they come between [`Event::Rcpt`] answers and [`Event::MessageEnd`] or
    /// [`Event::Reset`].
    DataChunk(Bytes),
    /// The message content is complete and passed the session's checks; answer with
    /// [`ServerSession::answer_message`](crate::server::ServerSession::answer_message) once
    /// it is on stable storage. The transaction ends with the answer.
    MessageEnd(MessageEnd),
    /// The transaction ended without a message to deliver (RSET, a new EHLO, STARTTLS, a
    /// refused message, the connection closing): forget its envelope and any content
    /// received for it.
    Reset,
    /// The client authenticated with a mechanism; check the credentials and answer with
    /// [`ServerSession::answer_auth`](crate::server::ServerSession::answer_auth).
    Auth(AuthRequest),
    /// `220 Ready to start TLS` is queued: write every pending transmit, then run the TLS
    /// handshake on the connection and call
    /// [`ServerSession::handle_tls_established`](crate::server::ServerSession::handle_tls_established).
    /// Input received until then is plaintext sent before the handshake, and dropped.
    StartTls,
    /// The session is over (QUIT, a timeout, too many errors, the peer closed): write the
    /// pending transmits, then close the connection. The last event.
    Closed,
}

/// Answers one [`Event::Mail`]. Not `Clone`: one token, one answer.
#[derive(Debug, PartialEq, Eq)]
pub struct MailToken(pub(crate) u64);

/// Answers one [`Event::Rcpt`].
#[derive(Debug, PartialEq, Eq)]
pub struct RcptToken(pub(crate) u64);

/// Answers one [`Event::MessageEnd`].
#[derive(Debug, PartialEq, Eq)]
pub struct MessageToken(pub(crate) u64);

/// Answers one [`Event::Auth`].
#[derive(Debug, PartialEq, Eq)]
pub struct AuthToken(pub(crate) u64);

/// A `MAIL FROM:` for the application to judge.
#[derive(Debug)]
pub struct MailRequest {
    /// The reverse-path.
    pub from: ReversePath,
    /// Its parameters; those the server does not offer were already refused.
    pub params: MailParams,
    /// The answer's token.
    pub token: MailToken,
}

/// A `RCPT TO:` for the application to judge.
#[derive(Debug)]
pub struct RcptRequest {
    /// The forward-path.
    pub to: ForwardPath,
    /// Its parameters; those the server does not offer were already refused.
    pub params: RcptParams,
    /// The answer's token.
    pub token: RcptToken,
}

/// The end of a message's content.
#[derive(Debug)]
pub struct MessageEnd {
    /// Octets of content (after dot-unstuffing for DATA).
    pub size: u64,
    /// How many recipients were accepted in the transaction. In LMTP mode the answer
    /// carries one result per accepted recipient, in the order they were accepted.
    pub recipients: usize,
    /// The answer's token.
    pub token: MessageToken,
}

/// An authentication attempt.
#[derive(Debug)]
pub struct AuthRequest {
    /// What the client sent.
    pub credentials: Credentials,
    /// The answer's token.
    pub token: AuthToken,
}

/// Credentials from a SASL exchange (PLAIN, RFC 4616, or LOGIN).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The mechanism used.
    pub mechanism: Mechanism,
    /// PLAIN's authorization identity, when the client asked to act as someone else.
    pub authzid: Option<String>,
    /// The authentication identity (the user name).
    pub username: String,
    /// The password.
    pub password: Secret<String>,
}
