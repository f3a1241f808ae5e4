//! The queue listing in the layout of Postfix's `postqueue -p` (`mailq`).

use std::fmt::Write as _;

use crate::envelope::RcptStatus;
use crate::queue::{QueueState, Summary};

/// Formats `summaries` like `postqueue -p`: per message the ID (followed by `*` when active,
/// `!` when on hold), the size, the arrival time (UTC) and the sender; then each recipient not
/// yet done, under the reason of its last deferral in parentheses; then a total line.
///
/// ```text
/// -Queue ID-       --Size-- ----Arrival Time---- -Sender/Recipient-------
/// 0006250F3A2C1D00     4096 Tue Nov 14 22:13:20  alice@example.org
///                                                (450 4.2.0 mailbox busy)
///                                                bob@example.net
///
/// -- 4 Kbytes in 1 Request.
/// ```
pub fn postqueue_listing(summaries: &[Summary]) -> String {
    if summaries.is_empty() {
        return "Mail queue is empty\n".into();
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "-Queue ID-       --Size-- ----Arrival Time---- -Sender/Recipient-------"
    );
    let pad = " ".repeat(48);
    let mut bytes = 0u64;
    for s in summaries {
        let mark = match s.state {
            QueueState::Active => "*",
            QueueState::Hold => "!",
            _ => " ",
        };
        let c = mailroom_smtp_proto::date::CivilTime::from_system_time(s.envelope.arrival);
        let sender = match s.envelope.reverse_path.mailbox() {
            Some(m) => m.to_string(),
            None => "MAILER-DAEMON".into(),
        };
        let _ = writeln!(
            out,
            "{}{mark}{:>8} {} {} {:>2} {:02}:{:02}:{:02}  {sender}",
            s.id,
            s.envelope.size,
            c.weekday_name(),
            c.month_name(),
            c.day,
            c.hour,
            c.minute,
            c.second
        );
        let mut last_reason: Option<&str> = None;
        for r in &s.envelope.recipients {
            if r.status.is_final() {
                continue;
            }
            if let RcptStatus::Deferred(d) = &r.status
                && last_reason != Some(d.text())
            {
                let _ = writeln!(out, "{pad}({})", d.text());
                last_reason = Some(d.text());
            }
            let to = match r.path.mailbox() {
                Some(m) => m.to_string(),
                None => "postmaster".into(),
            };
            let _ = writeln!(out, "{pad}{to}");
        }
        out.push('\n');
        bytes += s.envelope.size;
    }
    let n = summaries.len();
    let _ = writeln!(
        out,
        "-- {} Kbytes in {n} Request{}.",
        bytes.div_ceil(1024),
        if n == 1 { "" } else { "s" }
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::{DEFAULT_TEMPORARY, Diagnostic, Envelope};
    use crate::id::QueueId;
    use mailroom_smtp_proto::{ForwardPath, ReversePath};
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn looks_like_postqueue() {
        let mut env = Envelope::new(
            ReversePath::Mailbox("alice@example.org".parse().unwrap()),
            vec![
                ForwardPath::Mailbox("bob@example.net".parse().unwrap()),
                ForwardPath::Mailbox("carol@example.net".parse().unwrap()),
            ],
        );
        env.arrival = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        env.size = 4096;
        env.recipients[0].status =
            RcptStatus::Deferred(Diagnostic::new(DEFAULT_TEMPORARY, "450 4.2.0 mailbox busy"));
        env.recipients[1].status = RcptStatus::Delivered;
        let s = Summary {
            id: QueueId::from_u64(0x0006_250F_3A2C_1D00),
            state: QueueState::Hold,
            envelope: env,
        };
        let text = postqueue_listing(&[s]);
        let want = "\
-Queue ID-       --Size-- ----Arrival Time---- -Sender/Recipient-------
0006250F3A2C1D00!    4096 Tue Nov 14 22:13:20  alice@example.org
                                                (450 4.2.0 mailbox busy)
                                                bob@example.net

-- 4 Kbytes in 1 Request.
";
        assert_eq!(text, want);
        assert_eq!(postqueue_listing(&[]), "Mail queue is empty\n");
    }
}
