//! The envelope of a queued message and the delivery status of each recipient.

use std::time::SystemTime;

use mailroom_smtp_proto::{
    EnhancedCode, ForwardPath, Notify, Orcpt, Reply, Ret, ReversePath, XText,
};

/// At most this many characters of diagnostic text are kept (the rest is cut): remote servers
/// choose this text, and it ends up in DSN headers and the queue file.
pub const MAX_DIAGNOSTIC_LEN: usize = 1000;

/// Why a recipient was deferred or bounced: an RFC 3463 status code and the diagnostic text.
///
/// The text is cleaned when built: CR, LF, NUL and every other control character become a
/// space, so text from a remote server can never start a new header line in a DSN (RFC 3464
/// §2.3.6 puts it in a `Diagnostic-Code:` field).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Diagnostic {
    status: EnhancedCode,
    text: String,
}

impl Diagnostic {
    /// A diagnostic from a status code and text; the text is cleaned and cut to
    /// [`MAX_DIAGNOSTIC_LEN`] characters.
    pub fn new(status: EnhancedCode, text: &str) -> Self {
        let text: String = text
            .chars()
            .take(MAX_DIAGNOSTIC_LEN)
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        Self {
            status,
            text: text.trim().to_owned(),
        }
    }

    /// The diagnostic for an SMTP or LMTP reply: its enhanced code (or `4.0.0` / `5.0.0` from
    /// its class when it has none) and the reply on one line, such as `550 5.1.1 no such user`.
    pub fn from_reply(reply: &Reply) -> Self {
        let fallback = if reply.code().is_permanent() {
            EnhancedCode::new(5, 0, 0)
        } else {
            EnhancedCode::new(4, 0, 0)
        };
        let status = reply.enhanced().or(fallback).unwrap_or(DEFAULT_TEMPORARY);
        Self::new(status, &reply.to_string())
    }

    /// The RFC 3463 status code.
    pub fn status(&self) -> EnhancedCode {
        self.status
    }

    /// The cleaned text.
    pub fn text(&self) -> &str {
        &self.text
    }
}

/// `4.0.0`: a temporary failure with no detail.
pub(crate) const DEFAULT_TEMPORARY: EnhancedCode = match EnhancedCode::new(4, 0, 0) {
    Some(c) => c,
    None => panic!("4.0.0 is a valid enhanced code"),
};

/// The delivery status of one recipient.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub enum RcptStatus {
    /// Not tried yet.
    #[default]
    Pending,
    /// Delivered; never tried again.
    Delivered,
    /// Tried and failed temporarily; tried again after the back-off.
    Deferred(Diagnostic),
    /// Failed permanently (or expired); reported in a bounce, never tried again.
    Bounced(Diagnostic),
}

impl RcptStatus {
    /// Whether no further delivery attempt will be made (delivered or bounced).
    pub fn is_final(&self) -> bool {
        matches!(self, RcptStatus::Delivered | RcptStatus::Bounced(_))
    }
}

/// One recipient of a queued message.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Recipient {
    /// The forward-path to deliver to.
    pub path: ForwardPath,
    /// `ORCPT=` (RFC 3461 §4.2): the recipient as the client first gave it, for the DSN.
    pub orcpt: Option<Orcpt>,
    /// `NOTIFY=` (RFC 3461 §4.1); `None` means the default (failure and, optionally, delay).
    pub notify: Option<Notify>,
    /// Where delivery to this recipient stands.
    pub status: RcptStatus,
}

impl Recipient {
    /// A pending recipient without DSN parameters.
    pub fn new(path: ForwardPath) -> Self {
        Self {
            path,
            orcpt: None,
            notify: None,
            status: RcptStatus::Pending,
        }
    }

    /// Whether a failure DSN is wanted for this recipient (RFC 3461 §4.1: without NOTIFY, the
    /// default is to report failures).
    pub fn wants_failure_notice(&self) -> bool {
        self.notify.is_none_or(|n| n.failure)
    }
}

/// The envelope of a queued message: who it is from, who it is for, and the queue's bookkeeping.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Envelope {
    /// The reverse-path (`MAIL FROM:`); bounces go there, never for the null path.
    pub reverse_path: ReversePath,
    /// The recipients, each with its own status.
    pub recipients: Vec<Recipient>,
    /// `ENVID=` (RFC 3461 §4.4), returned in the DSN.
    pub envid: Option<XText>,
    /// `RET=` (RFC 3461 §4.3): how much of the message a failure DSN returns.
    pub ret: Option<Ret>,
    /// `SMTPUTF8` (RFC 6531) was given on `MAIL FROM:`.
    pub smtputf8: bool,
    /// When the queue accepted the message (set by the queue on enqueue).
    pub arrival: SystemTime,
    /// Delivery attempts that ended in a deferral (set by the queue).
    pub attempts: u32,
    /// Not before this time is the message tried again (set by the queue).
    pub next_attempt: SystemTime,
    /// The size of the content in bytes (set by the queue on enqueue).
    pub size: u64,
    /// A delay warning went to the sender (set by the queue; at most one per message).
    pub delay_warned: bool,
}

impl Envelope {
    /// An envelope for a new message, with pending recipients and no DSN parameters; the queue
    /// fills in the arrival time, attempts and size on enqueue.
    pub fn new(reverse_path: ReversePath, recipients: Vec<ForwardPath>) -> Self {
        Self {
            reverse_path,
            recipients: recipients.into_iter().map(Recipient::new).collect(),
            envid: None,
            ret: None,
            smtputf8: false,
            arrival: SystemTime::UNIX_EPOCH,
            attempts: 0,
            next_attempt: SystemTime::UNIX_EPOCH,
            size: 0,
            delay_warned: false,
        }
    }

    /// Whether every recipient is delivered or bounced.
    pub fn is_done(&self) -> bool {
        self.recipients.iter().all(|r| r.status.is_final())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mailroom_smtp_proto::ReplyCode;

    #[test]
    fn diagnostic_text_loses_line_breaks_and_nul() {
        let reply = Reply::new(
            ReplyCode::MAILBOX_UNAVAILABLE,
            "5.1.1 no such user\r\nX-Evil: 1\0",
        );
        let d = Diagnostic::from_reply(&reply);
        assert_eq!(d.status().to_string(), "5.1.1");
        assert!(!d.text().contains(['\r', '\n', '\0']), "{:?}", d.text());
        let d = Diagnostic::new(DEFAULT_TEMPORARY, "a\r\nb\0c\x0bd");
        assert_eq!(d.text(), "a  b c d");
    }

    #[test]
    fn reply_without_enhanced_code_gets_one_from_its_class() {
        let d = Diagnostic::from_reply(&Reply::new(ReplyCode::MAILBOX_BUSY, "try later"));
        assert_eq!(d.status().to_string(), "4.0.0");
        let d = Diagnostic::from_reply(&Reply::new(ReplyCode::TRANSACTION_FAILED, "no"));
        assert_eq!(d.status().to_string(), "5.0.0");
    }

    #[test]
    fn long_text_is_cut() {
        let d = Diagnostic::new(DEFAULT_TEMPORARY, &"x".repeat(5000));
        assert_eq!(d.text().len(), MAX_DIAGNOSTIC_LEN);
    }
}
