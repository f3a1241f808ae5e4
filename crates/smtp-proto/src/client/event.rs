//! What the client session tells the application.

use crate::types::address::ForwardPath;
use crate::types::extension::Extensions;
use crate::types::reply::Reply;

use super::error::ClientError;

/// Something the application should know or act on, from
/// [`ClientSession::poll_event`](super::ClientSession::poll_event).
#[derive(Debug)]
#[non_exhaustive]
pub enum Event {
    /// The server's 220 greeting.
    Greeting(Reply),
    /// EHLO, HELO or LHLO was answered; after STARTTLS this comes again with the extensions
    /// the server offers over TLS (the old ones are forgotten, RFC 3207 §4.2).
    Hello {
        /// The reply (its first line is the server's name).
        reply: Reply,
        /// What the server offers (empty after HELO).
        extensions: Extensions,
        /// Whether EHLO/LHLO was answered (false after the fallback to HELO).
        esmtp: bool,
    },
    /// The server accepted STARTTLS and nothing followed its 220: do the TLS handshake on the
    /// connection, then call [`ClientSession::tls_established`](super::ClientSession::tls_established)
    /// with this token.
    StartTls(TlsUpgrade),
    /// AUTH succeeded (235).
    Authenticated(Reply),
    /// Greeting, hello, TLS and AUTH are done: the session takes a message
    /// ([`ClientSession::send_message`](super::ClientSession::send_message)).
    Ready,
    /// A RCPT command was answered (in the order sent). The final status of each recipient is
    /// in [`Event::MessageDone`].
    Recipient {
        /// The recipient's position in the envelope.
        index: usize,
        /// The server's reply.
        reply: Reply,
    },
    /// The server waits for the content (354 to DATA, or BDAT may begin): feed it with
    /// [`ClientSession::send_data`](super::ClientSession::send_data), then end it with
    /// [`ClientSession::finish_data`](super::ClientSession::finish_data), which consumes the
    /// permit.
    DataReady(DataPermit),
    /// The transaction is over, with a result for every recipient. The session takes the next
    /// message (or QUIT).
    MessageDone(MessageResult),
    /// RSET (asked by the application) was answered with 250.
    Reset(Reply),
    /// QUIT was answered (or the server closed the connection after QUIT): the session is
    /// over.
    Closed(Option<Reply>),
    /// The session failed and is over. Bytes still queued for sending (a QUIT) may be sent,
    /// then the connection closed.
    Error(ClientError),
}

/// The token of [`Event::StartTls`], consumed by `tls_established`: the session resumes only
/// once the application says the handshake is done.
#[derive(Debug)]
pub struct TlsUpgrade {
    pub(super) _private: (),
}

/// The token of [`Event::DataReady`], consumed by `finish_data`: one end of content per
/// message, by construction.
#[derive(Debug)]
pub struct DataPermit {
    pub(super) message: u64,
}

/// The final status of one recipient.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// The server took responsibility for the message (2yz after the content).
    Accepted,
    /// A temporary failure (4yz): try again later (Postfix: deferred).
    Temporary,
    /// A permanent failure (5yz): do not try again (Postfix: bounced).
    Permanent,
}

/// Which command's reply decided a recipient's fate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// MAIL was refused: the reply applies to every recipient.
    Mail,
    /// RCPT was refused.
    Rcpt,
    /// The reply after the content (DATA, or the BDAT chunk that failed); with LMTP, the
    /// recipient's own reply.
    Data,
}

/// The result for one recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecipientResult {
    /// The recipient.
    pub path: ForwardPath,
    /// The reply that decided its fate.
    pub reply: Reply,
    /// Which command that reply answered.
    pub stage: Stage,
}

impl RecipientResult {
    /// Accepted, temporary or permanent failure, from the reply's first digit.
    pub fn status(&self) -> Status {
        let code = self.reply.code();
        if code.is_positive() {
            Status::Accepted
        } else if code.is_transient() {
            Status::Temporary
        } else {
            Status::Permanent
        }
    }
}

/// The result of one transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageResult {
    /// The reply to MAIL.
    pub mail: Reply,
    /// One result per recipient, in envelope order.
    pub recipients: Vec<RecipientResult>,
    /// The reply after the content, when the content was sent (with LMTP, the first
    /// recipient's).
    pub data: Option<Reply>,
}

impl MessageResult {
    /// Whether every recipient was accepted.
    pub fn all_accepted(&self) -> bool {
        self.recipients
            .iter()
            .all(|r| r.status() == Status::Accepted)
    }

    /// The recipients with the given status.
    pub fn with_status(&self, status: Status) -> impl Iterator<Item = &RecipientResult> {
        self.recipients.iter().filter(move |r| r.status() == status)
    }
}
