//! Property: after the end of the data the server sends exactly one reply per accepted
//! recipient, whatever the application answers (MAIL, each RCPT, each recipient after the
//! data), with DATA or BDAT, however the input is split.

// Integration tests: a failed step should stop the test with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use mailroom_lmtp::Event;
use mailroom_smtp_proto::{Reply, ReplyCode};
use proptest::prelude::*;

fn any_reply() -> impl Strategy<Value = Result<String, Reply>> {
    prop_oneof![
        "[a-z0-9]{1,8}".prop_map(Ok),
        (400u16..=599).prop_map(|c| Err(Reply::new(
            ReplyCode::new(c).unwrap_or(ReplyCode::LOCAL_ERROR),
            "refused"
        ))),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]
    #[test]
    fn replies_after_data_match_accepted_recipients(
        rcpts in proptest::collection::vec(any::<bool>(), 1..12),
        answers in proptest::collection::vec(any_reply(), 12),
        bdat in any::<bool>(),
        split in 1usize..64,
        body in "[ -~]{0,200}",
    ) {
        let mut session = common::session();
        let mut input = b"LHLO client.example\r\nMAIL FROM:<a@b.example>\r\n".to_vec();
        for i in 0..rcpts.len() {
            input.extend_from_slice(format!("RCPT TO:<u{i}@foo.edu>\r\n").as_bytes());
        }
        let content = format!("Subject: t\r\n\r\n{body}\r\n");
        if bdat {
            input.extend_from_slice(format!("BDAT {} LAST\r\n{content}", content.len()).as_bytes());
        } else {
            input.extend_from_slice(format!("DATA\r\n{content}.\r\n").as_bytes());
        }
        let accepted = rcpts.iter().filter(|a| **a).count();
        let mut out = Vec::new();
        let mut delivered = 0;
        for piece in input.chunks(split) {
            session.handle_input(piece);
            while let Some(event) = session.poll_event() {
                match event {
                    Event::Mail(m) => session.answer_mail(m.token, Ok(())).unwrap(),
                    Event::Rcpt(r) => {
                        let local = r.to.mailbox().unwrap().local_part().as_str().to_owned();
                        let i: usize = local[1..].parse().unwrap();
                        let answer = if rcpts[i] { Ok(()) } else {
                            Err(Reply::new(ReplyCode::MAILBOX_UNAVAILABLE, "5.1.1 unknown"))
                        };
                        session.answer_rcpt(r.token, answer).unwrap();
                    }
                    Event::Deliver(d) => {
                        prop_assert_eq!(d.recipients().len(), accepted);
                        let answer = d.answer(|i, _| answers[i].clone());
                        prop_assert_eq!(answer.replies().len(), accepted);
                        delivered += 1;
                        session.answer(answer).unwrap();
                    }
                    _ => {}
                }
            }
            while let Some(b) = session.poll_transmit() {
                out.extend_from_slice(&b);
            }
        }
        let replies = common::replies(&out);
        // greeting, LHLO, MAIL, one per RCPT, the 354 for DATA, then the replies after the data.
        let before = 3 + rcpts.len() + usize::from(!bdat);
        let after = replies.len() - before;
        if accepted == 0 {
            // No valid recipient: DATA/BDAT is refused (554) and nothing is delivered (with
            // DATA, the content lines that follow are then read as commands and refused too).
            prop_assert_eq!(delivered, 0);
            prop_assert_eq!(&replies[3 + rcpts.len()][0][..3], "554");
        } else {
            prop_assert_eq!(delivered, 1);
            prop_assert_eq!(after, accepted, "{:#?}", replies);
            for (reply, answer) in replies[before..].iter().zip(&answers) {
                match answer {
                    Ok(id) => prop_assert_eq!(&reply[0], &format!("250 2.0.0 Ok: queued as {id}")),
                    Err(r) => prop_assert_eq!(&reply[0][..3], &r.code().get().to_string()[..]),
                }
            }
        }
    }
}
