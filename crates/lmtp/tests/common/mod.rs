//! Helpers shared by the session tests: a reply splitter and a scripted application.
#![allow(dead_code)] // each test file uses a part of it

use std::time::Instant;

use mailroom_lmtp::{Event, Session, server_config};
use mailroom_smtp_proto::{Reply, ReplyCode};

/// Splits server output into replies (multi-line replies joined), each as its lines.
pub(crate) fn replies(out: &[u8]) -> Vec<Vec<String>> {
    let text = String::from_utf8_lossy(out);
    let mut all = Vec::new();
    let mut current = Vec::new();
    for line in text.split("\r\n").filter(|l| !l.is_empty()) {
        current.push(line.to_owned());
        if line.as_bytes().get(3) != Some(&b'-') {
            all.push(std::mem::take(&mut current));
        }
    }
    all
}

/// A new session for `foo.edu`, as in RFC 2033's example.
pub(crate) fn session() -> Session {
    Session::new(server_config("foo.edu").into(), Instant::now())
}

/// Runs the events of `session` through an application that refuses the recipients whose
/// local part is in `refuse_rcpt` (550) and fails those in `fail_after_data` after the data
/// (452); returns everything transmitted so far.
pub(crate) fn drive(
    session: &mut Session,
    refuse_rcpt: &[&str],
    fail_after_data: &[&str],
) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let mut progressed = false;
        while let Some(event) = session.poll_event() {
            progressed = true;
            match event {
                Event::Mail(m) => session.answer_mail(m.token, Ok(())).unwrap(),
                Event::Rcpt(r) => {
                    let local = r.to.mailbox().unwrap().local_part().as_str().to_owned();
                    let answer = if refuse_rcpt.contains(&local.as_str()) {
                        Err(Reply::new(
                            ReplyCode::MAILBOX_UNAVAILABLE,
                            "No such user here",
                        ))
                    } else {
                        Ok(())
                    };
                    session.answer_rcpt(r.token, answer).unwrap();
                }
                Event::Deliver(d) => {
                    let answer = d.answer(|_, rcpt| {
                        let m = rcpt.mailbox().unwrap();
                        if fail_after_data.contains(&m.local_part().as_str()) {
                            Err(Reply::new(
                                ReplyCode::INSUFFICIENT_STORAGE,
                                &format!("<{m}> is temporarily over quota"),
                            ))
                        } else {
                            Ok("x".into())
                        }
                    });
                    session.answer(answer).unwrap();
                }
                _ => {}
            }
        }
        while let Some(bytes) = session.poll_transmit() {
            progressed = true;
            out.extend_from_slice(&bytes);
        }
        if !progressed {
            return out;
        }
    }
}
