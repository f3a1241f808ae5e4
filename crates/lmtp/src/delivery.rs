//! The end of a message and the application's answer to it: one reply per accepted recipient,
//! by construction.

use mailroom_smtp_proto::server::MessageToken;
use mailroom_smtp_proto::{ForwardPath, Reply, ReplyCode};

/// What the application says for one recipient after the end of the data: `Ok(id)` once the
/// message is on stable storage for that recipient (sent as `250 2.0.0 Ok: queued as <id>`),
/// or the reply that refuses it (`452 4.2.2`, `552 5.2.2`, `451 4.3.0`, ...).
pub type RecipientAnswer = Result<String, Reply>;

/// The end of a message's content, with the recipients it must be delivered to.
///
/// RFC 2033 §4.2: "after the final ".", the server returns one reply for each of the
/// previously successful RCPT commands in the mail transaction, in the order that the RCPT
/// commands were issued." A `Delivery` holds those recipients, and the only way to answer it
/// is [`Delivery::answer`] or [`Delivery::answer_all`], which consume it and produce an
/// [`Answer`] with exactly one reply per recipient: the count is a fact of the types, not a
/// check at run time. The `Delivery` is not `Clone`, so a message is answered once.
#[derive(Debug)]
pub struct Delivery {
    token: MessageToken,
    size: u64,
    recipients: Vec<ForwardPath>,
    /// How many replies the session expects (the number of accepted RCPTs it counted).
    expected: usize,
}

/// The answer to one [`Delivery`]: one reply per accepted recipient, in order. Built only by
/// [`Delivery::answer`] and [`Delivery::answer_all`]; give it to
/// [`Session::answer`](crate::Session::answer) (or return it from
/// [`Handler::deliver`](crate::Handler::deliver)).
#[derive(Debug)]
pub struct Answer {
    pub(crate) token: MessageToken,
    pub(crate) replies: Vec<RecipientAnswer>,
}

impl Answer {
    /// The replies, one per accepted recipient, in the order the RCPTs were accepted.
    pub fn replies(&self) -> &[RecipientAnswer] {
        &self.replies
    }
}

impl Delivery {
    pub(crate) fn new(
        token: MessageToken,
        size: u64,
        recipients: Vec<ForwardPath>,
        expected: usize,
    ) -> Self {
        Self {
            token,
            size,
            recipients,
            expected,
        }
    }

    /// The content's size in octets (after dot-unstuffing).
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The accepted recipients, in the order their RCPT commands were accepted.
    pub fn recipients(&self) -> &[ForwardPath] {
        &self.recipients
    }

    /// Answers each recipient with `reply(index, recipient)`, called once per accepted
    /// recipient in order.
    ///
    /// # Examples
    ///
    /// ```
    /// # use mailroom_lmtp::{Delivery, Answer};
    /// # use mailroom_smtp_proto::{Reply, ReplyCode};
    /// fn answer(delivery: Delivery) -> Answer {
    ///     delivery.answer(|_, rcpt| match rcpt.mailbox() {
    ///         Some(m) if m.local_part().as_str() == "full" => {
    ///             Err(Reply::new(ReplyCode::EXCEEDED_STORAGE, "5.2.2 Mailbox full"))
    ///         }
    ///         _ => Ok("stored".into()),
    ///     })
    /// }
    /// ```
    pub fn answer(self, mut reply: impl FnMut(usize, &ForwardPath) -> RecipientAnswer) -> Answer {
        let mut replies: Vec<RecipientAnswer> = self
            .recipients
            .iter()
            .enumerate()
            .map(|(i, r)| reply(i, r))
            .collect();
        // The session and this list count the same RCPT answers, so the lengths agree; should
        // they not, the session's count wins and the missing recipients get a temporary failure
        // (never a false 250).
        replies.resize_with(self.expected, || {
            Err(Reply::new(
                ReplyCode::LOCAL_ERROR,
                "4.3.0 Internal error: recipient lost",
            ))
        });
        replies.truncate(self.expected);
        Answer {
            token: self.token,
            replies,
        }
    }

    /// Answers every recipient the same way (a message refused as a whole, a failed spool).
    pub fn answer_all(self, reply: RecipientAnswer) -> Answer {
        self.answer(|_, _| reply.clone())
    }
}
