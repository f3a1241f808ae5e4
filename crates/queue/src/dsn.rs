//! Delivery status notifications (RFC 3464): the bounce sent to the reverse-path when
//! recipients fail permanently or expire.
//!
//! A DSN is a `multipart/report; report-type=delivery-status` message (RFC 3462, now RFC 6522)
//! with three parts: a readable explanation, a `message/delivery-status` part with one
//! per-message block (Reporting-MTA, Original-Envelope-Id, Arrival-Date) and one per-recipient
//! block per failed recipient (Final-Recipient, Original-Recipient, Action, Status,
//! Diagnostic-Code), and the original message (`message/rfc822`, RET=FULL) or only its header
//! (`text/rfc822-headers`, otherwise). It is queued with the null reverse-path (RFC 5321
//! §4.5.5), and never sent for a message whose reverse-path is null, so bounces cannot loop.

use std::io::{self, Read};
use std::time::UNIX_EPOCH;

use mailroom_smtp_proto::{ForwardPath, Mailbox, Ret, ReversePath};

use crate::envelope::{Diagnostic, Envelope, RcptStatus, Recipient};
use crate::id::QueueId;
use crate::queue::Config;

/// At most this many bytes of the original header are returned with RET=HDRS.
const MAX_RETURNED_HEADER: u64 = 256 << 10;

/// Removes what must not reach a header line: CR, LF, NUL and other control characters
/// become spaces (the remote server chose this text).
fn clean(s: &str, max: usize) -> String {
    s.chars()
        .take(max)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

fn rfc822_address(p: &ForwardPath) -> String {
    match p.mailbox() {
        Some(m) => m.to_string(),
        None => "postmaster".into(),
    }
}

/// RFC 5322 dates, from the workspace's one formatter (re-exported: `queue_tool` and the
/// server print queue times with it).
pub use mailroom_smtp_proto::date::rfc5322_date;

/// The recipients a DSN reports: bounced (deferred, for a delay warning), and NOTIFY did not
/// exclude it (RFC 3461 §4.1: without NOTIFY, failures and, at the MTA's choice, delays).
fn reported(env: &Envelope, delay: bool) -> Vec<(&Recipient, &Diagnostic)> {
    env.recipients
        .iter()
        .filter_map(|r| match &r.status {
            RcptStatus::Bounced(d) if !delay && r.wants_failure_notice() => Some((r, d)),
            RcptStatus::Deferred(d) if delay && r.notify.is_none_or(|n| n.delay) => Some((r, d)),
            _ => None,
        })
        .collect()
}

/// A DSN ready to queue: its envelope, the bytes before the original content, the bytes after
/// it, and whether only the original's header goes between them.
pub(crate) type Report = (Envelope, Vec<u8>, Vec<u8>, bool);

/// Builds the failure DSN for message `id`, if one is due. `None` when the reverse-path is
/// null or no bounced recipient wants a notice.
pub(crate) fn failure_report(config: &Config, id: QueueId, env: &Envelope) -> Option<Report> {
    report(config, id, env, false)
}

/// Builds the delay DSN (`Action: delayed`, `delay_warning_time`) for message `id`, if one is
/// due; the original's header is returned. `None` when the reverse-path is null or no deferred
/// recipient wants a notice.
pub(crate) fn delay_report(config: &Config, id: QueueId, env: &Envelope) -> Option<Report> {
    report(config, id, env, true)
}

fn report(config: &Config, id: QueueId, env: &Envelope, delay: bool) -> Option<Report> {
    let ReversePath::Mailbox(sender) = &env.reverse_path else {
        return None;
    };
    let failed = reported(env, delay);
    if failed.is_empty() {
        return None;
    }
    let now = config.clock.now();
    let host = clean(&config.myhostname, 255);
    let boundary = format!(
        "{id}.{}/{host}",
        now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
    );
    let headers_only = delay || env.ret != Some(Ret::Full);
    let mut p = String::with_capacity(2048);
    let mut line = |s: &str| {
        p.push_str(s);
        p.push_str("\r\n");
    };
    line(&format!(
        "From: MAILER-DAEMON@{host} (Mail Delivery System)"
    ));
    line(&format!("To: {}", clean(&sender.to_string(), 998)));
    line(if delay {
        "Subject: Delayed Mail (still being retried)"
    } else {
        "Subject: Undelivered Mail Returned to Sender"
    });
    line(&format!("Date: {}", rfc5322_date(now)));
    line(&format!("Message-ID: <{id}.bounce@{host}>"));
    line("Auto-Submitted: auto-replied");
    line("MIME-Version: 1.0");
    line(&format!(
        "Content-Type: multipart/report; report-type=delivery-status;\r\n\tboundary=\"{boundary}\""
    ));
    line("");
    line("This is a MIME-encapsulated message.");
    line("");
    line(&format!("--{boundary}"));
    line("Content-Description: Notification");
    line("Content-Type: text/plain; charset=utf-8");
    line("");
    line(&format!("This is the mail system at host {host}."));
    line("");
    let until = env.arrival + config.backoff.maximal_queue_lifetime;
    if delay {
        line("####### THIS IS A WARNING ONLY.  YOU DO NOT NEED TO RESEND YOUR MESSAGE. #######");
        line("");
        line("Your message could not be delivered yet to the recipients below.");
        line(&format!(
            "It will be retried until {}.",
            rfc5322_date(until)
        ));
    } else {
        line("I'm sorry to have to inform you that your message could not");
        line("be delivered to one or more recipients. It's attached below.");
    }
    line("");
    for (r, d) in &failed {
        line(&format!(
            "<{}>: {}",
            rfc822_address(&r.path),
            clean(d.text(), 900)
        ));
    }
    line("");
    line(&format!("--{boundary}"));
    line("Content-Description: Delivery report");
    line("Content-Type: message/delivery-status");
    line("");
    // RFC 3464 §2.2: the per-message fields.
    line(&format!("Reporting-MTA: dns; {host}"));
    line(&format!("X-Mailroom-Queue-ID: {id}"));
    if let Some(envid) = &env.envid {
        line(&format!(
            "Original-Envelope-Id: {}",
            clean(&String::from_utf8_lossy(&envid.decode()), 100)
        ));
    }
    line(&format!("Arrival-Date: {}", rfc5322_date(env.arrival)));
    // RFC 3464 §2.3: one block per recipient, each after a blank line.
    for (r, d) in &failed {
        line("");
        line(&format!(
            "Final-Recipient: rfc822; {}",
            clean(&rfc822_address(&r.path), 998)
        ));
        if let Some(o) = &r.orcpt {
            line(&format!(
                "Original-Recipient: {}; {}",
                clean(o.addr_type(), 64),
                clean(&String::from_utf8_lossy(&o.address().decode()), 900)
            ));
        }
        line(if delay {
            "Action: delayed"
        } else {
            "Action: failed"
        });
        // A deferral that expired keeps its 4.x.x code in the report (RFC 3463 4.4.7), but the
        // Action is "failed": the MTA gave up.
        line(&format!("Status: {}", d.status()));
        let text = clean(d.text(), 900);
        let kind = if text.len() >= 3 && text.as_bytes()[..3].iter().all(u8::is_ascii_digit) {
            "smtp"
        } else {
            "X-mailroom"
        };
        line(&format!("Diagnostic-Code: {kind}; {text}"));
        if delay {
            line(&format!("Will-Retry-Until: {}", rfc5322_date(until)));
        }
    }
    line("");
    line(&format!("--{boundary}"));
    if headers_only {
        line("Content-Description: Undelivered Message Headers");
        line("Content-Type: text/rfc822-headers");
    } else {
        line("Content-Description: Undelivered Message");
        line("Content-Type: message/rfc822");
    }
    line("");
    let suffix = format!("\r\n--{boundary}--\r\n").into_bytes();
    let dsn_env = Envelope::new(
        ReversePath::Null,
        vec![ForwardPath::Mailbox(Mailbox::clone(sender))],
    );
    Some((dsn_env, p.into_bytes(), suffix, headers_only))
}

/// Reads the header of a message (up to and including the empty line that ends it, at most
/// 256 KiB), then reports the end.
#[derive(Debug)]
pub(crate) struct HeaderOnly<R> {
    inner: io::Take<R>,
    last: [u8; 3],
    done: bool,
}

impl<R: Read> HeaderOnly<R> {
    pub(crate) fn new(inner: R) -> Self {
        Self {
            inner: inner.take(MAX_RETURNED_HEADER),
            last: [0; 3],
            done: false,
        }
    }
}

impl<R: Read> Read for HeaderOnly<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.done || buf.is_empty() {
            return Ok(0);
        }
        // One byte at a time is slow but simple, and a header is small.
        let mut byte = [0u8; 1];
        let mut n = 0;
        while n < buf.len() {
            if self.inner.read(&mut byte)? == 0 {
                self.done = true;
                break;
            }
            buf[n] = byte[0];
            n += 1;
            let [a, b, c] = self.last;
            self.last = [b, c, byte[0]];
            if (a, b, c, byte[0]) == (b'\r', b'\n', b'\r', b'\n') || (c, byte[0]) == (b'\n', b'\n')
            {
                self.done = true;
                break;
            }
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::Diagnostic;
    use mailroom_smtp_proto::{EnhancedCode, Notify, Orcpt, XText};
    use std::time::Duration;

    #[test]
    fn dates() {
        let t = UNIX_EPOCH + Duration::from_secs(1_795_228_966);
        assert_eq!(rfc5322_date(t), "Sat, 21 Nov 2026 02:42:46 +0000");
        assert_eq!(rfc5322_date(UNIX_EPOCH), "Thu, 01 Jan 1970 00:00:00 +0000");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(rfc5322_date(leap), "Tue, 29 Feb 2000 00:00:00 +0000");
    }

    fn env() -> Envelope {
        let mut env = Envelope::new(
            ReversePath::Mailbox("alice@example.org".parse().unwrap()),
            vec![
                ForwardPath::Mailbox("bob@example.net".parse().unwrap()),
                ForwardPath::Mailbox("carol@example.net".parse().unwrap()),
                ForwardPath::Mailbox("dave@example.net".parse().unwrap()),
            ],
        );
        let code = EnhancedCode::new(5, 1, 1).unwrap();
        env.recipients[0].status = RcptStatus::Bounced(Diagnostic::new(
            code,
            "550 5.1.1 no such user\r\nX-Injected: yes\0",
        ));
        env.recipients[0].orcpt =
            Some(Orcpt::new("rfc822", XText::new("Bob@Example.NET").unwrap()).unwrap());
        env.recipients[1].status = RcptStatus::Delivered;
        env.recipients[2].status = RcptStatus::Bounced(Diagnostic::new(code, "gone"));
        env.recipients[2].notify = Some(Notify::NEVER);
        env
    }

    #[test]
    fn report_has_the_rfc_3464_fields_and_no_injected_header() {
        let (dsn_env, prefix, suffix, headers_only) =
            failure_report(&Config::default(), QueueId::from_u64(1), &env()).unwrap();
        assert!(dsn_env.reverse_path.is_null());
        assert_eq!(dsn_env.recipients.len(), 1);
        assert!(headers_only);
        let text = String::from_utf8(prefix).unwrap();
        for want in [
            "Content-Type: multipart/report; report-type=delivery-status;",
            "Content-Type: message/delivery-status",
            "Reporting-MTA: dns; localhost",
            "Final-Recipient: rfc822; bob@example.net",
            "Original-Recipient: rfc822; Bob@Example.NET",
            "Action: failed",
            "Status: 5.1.1",
            "Diagnostic-Code: smtp; 550 5.1.1 no such user  X-Injected: yes",
            "Content-Type: text/rfc822-headers",
        ] {
            assert!(text.contains(want), "missing {want:?} in\n{text}");
        }
        assert!(!text.contains("\r\nX-Injected"));
        assert!(!text.contains('\0'));
        assert!(!text.contains("dave@"), "NOTIFY=NEVER recipient reported");
        assert!(!text.contains("carol@"), "delivered recipient reported");
        assert!(
            text.replace("\r\n", "").find(['\r', '\n']).is_none(),
            "bare CR or LF"
        );
        assert!(String::from_utf8(suffix).unwrap().ends_with("--\r\n"));
    }

    #[test]
    fn no_bounce_for_the_null_reverse_path() {
        let mut e = env();
        e.reverse_path = ReversePath::Null;
        assert!(failure_report(&Config::default(), QueueId::from_u64(1), &e).is_none());
    }

    #[test]
    fn header_only_stops_at_the_empty_line() {
        let msg = b"Subject: x\r\nFrom: a@b\r\n\r\nbody\r\n";
        let mut out = Vec::new();
        HeaderOnly::new(&msg[..]).read_to_end(&mut out).unwrap();
        assert_eq!(out, b"Subject: x\r\nFrom: a@b\r\n\r\n");
        let mut out = Vec::new();
        HeaderOnly::new(&b"A: b\n\nbody"[..])
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, b"A: b\n\n");
    }
}
