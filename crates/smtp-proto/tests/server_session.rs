//! The sans-IO server session: chunking independence (proptest), smuggling, STARTTLS
//! injection, bounded memory, recipient and error limits, random bytes.

// Tests may unwrap: a failed step should stop the test with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Instant;

use mailroom_smtp_proto::data::BareNewline;
use mailroom_smtp_proto::server::{Event, ServerConfig, ServerSession};
use proptest::prelude::*;

/// What a session did: its normalised events (content pieces merged) and its output.
#[derive(Debug, Default, PartialEq, Eq)]
struct Run {
    events: Vec<String>,
    out: Vec<u8>,
    /// Content pieces not yet written as one `CONTENT` event (a UTF-8 character may be split
    /// between pieces).
    content: Vec<u8>,
}

impl Run {
    fn out(&self) -> String {
        String::from_utf8_lossy(&self.out).into_owned()
    }

    fn flush_content(&mut self) {
        if !self.content.is_empty() {
            let text = String::from_utf8_lossy(&self.content).into_owned();
            self.events.push(format!("CONTENT {text}"));
            self.content.clear();
        }
    }

    fn count(&self, prefix: &str) -> usize {
        self.events.iter().filter(|e| e.starts_with(prefix)).count()
    }
}

fn config() -> ServerConfig {
    let mut config = ServerConfig::new("mx.example.org");
    config.starttls = true;
    config.auth_requires_tls = false;
    config
}

fn drive(session: &mut ServerSession, run: &mut Run) {
    loop {
        while let Some(event) = session.poll_event() {
            if let Event::DataChunk(piece) = &event {
                run.content.extend_from_slice(piece);
                continue;
            }
            run.flush_content();
            let text = match event {
                Event::Mail(m) => {
                    let t = format!("MAIL {} {:?}", m.from, m.params);
                    session.answer_mail(m.token, Ok(())).unwrap();
                    t
                }
                Event::Rcpt(r) => {
                    let t = format!("RCPT {}", r.to);
                    session.answer_rcpt(r.token, Ok(())).unwrap();
                    t
                }
                Event::MessageEnd(m) => {
                    let t = format!("END {}", m.size);
                    session.answer_message(m.token, Ok("ID".into())).unwrap();
                    t
                }
                Event::Auth(a) => {
                    let t = format!("AUTH {}", a.credentials.username);
                    session.answer_auth(a.token, Ok(())).unwrap();
                    t
                }
                Event::StartTls => {
                    session.handle_tls_established();
                    "STARTTLS".into()
                }
                other => format!("{other:?}"),
            };
            run.events.push(text);
        }
        match session.poll_transmit() {
            Some(bytes) => run.out.extend_from_slice(&bytes),
            None => break,
        }
    }
}

/// Feeds `input` in pieces of the given sizes (cycled), driving the application between
/// pieces.
fn run_with(config: ServerConfig, input: &[u8], sizes: &[usize]) -> Run {
    let mut session = ServerSession::new(Arc::new(config), Instant::now());
    let mut run = Run::default();
    let mut rest = input;
    let mut sizes = sizes.iter().cycle();
    while !rest.is_empty() {
        let n = (*sizes.next().unwrap()).clamp(1, rest.len());
        session.handle_input(&rest[..n]);
        rest = &rest[n..];
        drive(&mut session, &mut run);
    }
    drive(&mut session, &mut run);
    run.flush_content();
    run
}

fn run(input: &[u8]) -> Run {
    run_with(config(), input, &[usize::MAX])
}

/// A valid session: EHLO, transactions over DATA and BDAT with content holding dots, bare
/// CRs in BDAT and near-end markers, RSET and NOOP, QUIT.
fn valid_session() -> impl Strategy<Value = Vec<u8>> {
    let line = prop::collection::vec(
        prop::sample::select(vec![
            "a",
            ".",
            "..",
            " ",
            "x.y",
            "MAIL FROM:<e@x>",
            "\t",
            "é",
        ]),
        0..6,
    )
    .prop_map(|words| words.concat());
    let content = prop::collection::vec(line, 0..6);
    let transaction = (content, any::<bool>(), 1usize..4, any::<bool>());
    prop::collection::vec(transaction, 1..4).prop_map(|transactions| {
        let mut s = b"EHLO client.example\r\n".to_vec();
        for (i, (lines, bdat, rcpts, rset)) in transactions.into_iter().enumerate() {
            s.extend_from_slice(format!("MAIL FROM:<s{i}@example.com>\r\n").as_bytes());
            for r in 0..rcpts {
                s.extend_from_slice(format!("RCPT TO:<r{r}@example.org>\r\n").as_bytes());
            }
            if rset {
                s.extend_from_slice(b"RSET\r\nNOOP\r\n");
                continue;
            }
            let mut body = Vec::new();
            for l in &lines {
                body.extend_from_slice(l.as_bytes());
                body.extend_from_slice(b"\r\n");
            }
            if bdat {
                let half = body.len() / 2;
                s.extend_from_slice(format!("BDAT {half}\r\n").as_bytes());
                s.extend_from_slice(&body[..half]);
                s.extend_from_slice(format!("BDAT {} LAST\r\n", body.len() - half).as_bytes());
                s.extend_from_slice(&body[half..]);
            } else {
                s.extend_from_slice(b"DATA\r\n");
                for l in &lines {
                    if l.starts_with('.') {
                        s.push(b'.');
                    }
                    s.extend_from_slice(l.as_bytes());
                    s.extend_from_slice(b"\r\n");
                }
                s.extend_from_slice(b".\r\n");
            }
        }
        s.extend_from_slice(b"QUIT\r\n");
        s
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Any chunking of a valid session gives the same events and replies.
    #[test]
    fn chunking_does_not_matter(input in valid_session(), sizes in prop::collection::vec(1usize..40, 1..8)) {
        let whole = run(&input);
        prop_assert!(whole.out().ends_with("221 2.0.0 Bye\r\n"), "{}", whole.out());
        prop_assert!(!whole.out().contains(" 5."), "{}", whole.out());
        let split = run_with(config(), &input, &sizes);
        prop_assert_eq!(whole, split);
    }

    /// Random bytes (mixed with command fragments) never panic and never grow the buffer
    /// without bound; the replies do not depend on the chunking.
    #[test]
    fn random_input_never_panics(
        parts in prop::collection::vec(
            prop_oneof![
                prop::collection::vec(any::<u8>(), 0..64),
                prop::sample::select(vec![
                    b"EHLO x\r\n".to_vec(), b"MAIL FROM:<a@b>\r\n".to_vec(), b"RCPT TO:<c@d>\r\n".to_vec(),
                    b"DATA\r\n".to_vec(), b"\r\n.\r\n".to_vec(), b"BDAT 5\r\n".to_vec(), b"AUTH LOGIN\r\n".to_vec(),
                    b"AUTH PLAIN\r\n".to_vec(), b"*\r\n".to_vec(), b"RSET\r\n".to_vec(), b"\n".to_vec(), b"\r".to_vec(),
                ]),
            ],
            0..24,
        ),
        seed in any::<u8>(),
    ) {
        let mut input = vec![seed];
        for p in parts {
            input.extend_from_slice(&p);
        }
        mailroom_smtp_proto::server::fuzz::server_session(&input);
    }
}

/// Every byte boundary of a fixed session gives the same result as one write.
#[test]
fn split_at_every_byte() {
    let input =
        b"EHLO c.example\r\nMAIL FROM:<a@example.com> SIZE=20\r\nRCPT TO:<b@example.com>\r\n\
DATA\r\n..dot\r\nline\r\n.\r\nMAIL FROM:<> BODY=BINARYMIME\r\nRCPT TO:<b@example.com>\r\n\
BDAT 7\r\n\r\n.\r\nXYBDAT 0 LAST\r\nAUTH LOGIN\r\ndGlt\r\ncGFzcw==\r\nNOOP\r\nQUIT\r\n";
    let whole = run(input);
    assert_eq!(whole.count("END"), 2, "{:?}", whole.events);
    assert_eq!(whole.count("AUTH tim"), 1, "{:?}", whole.events);
    for at in 1..input.len() {
        let mut session = ServerSession::new(Arc::new(config()), Instant::now());
        let mut r = Run::default();
        session.handle_input(&input[..at]);
        drive(&mut session, &mut r);
        session.handle_input(&input[at..]);
        drive(&mut session, &mut r);
        r.flush_content();
        assert_eq!(r, whole, "split at {at}");
    }
}

fn smuggling_input(marker: &[u8]) -> Vec<u8> {
    let mut s =
        b"EHLO c.example\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n\
Subject: first\r\n\r\nbody"
            .to_vec();
    s.extend_from_slice(marker);
    s.extend_from_slice(
        b"MAIL FROM:<evil@example.net>\r\nRCPT TO:<victim@example.org>\r\nDATA\r\n\
Subject: smuggled\r\n\r\nsmuggled\r\n.\r\nQUIT\r\n",
    );
    s
}

const MARKERS: [&[u8]; 5] = [b"\n.\n", b"\n.\r\n", b"\r.\r\n", b"\r\n.\r", b"\r\n.\r\r\n"];

/// SMTP smuggling: none of the near-end markers ends DATA, so no second transaction starts.
/// By default the message (with its bare CR or LF) is refused with 550 after its real end.
#[test]
fn smuggling_markers_never_start_a_second_transaction() {
    for marker in MARKERS {
        for bare_newline in [BareNewline::Reject, BareNewline::Accept] {
            let mut config = config();
            config.bare_newline = bare_newline;
            let r = run_with(config, &smuggling_input(marker), &[usize::MAX]);
            let label = format!("{marker:?} {bare_newline:?}: {:?}", r.events);
            assert_eq!(r.count("MAIL"), 1, "{label}");
            assert_eq!(r.count("RCPT"), 1, "{label}");
            assert!(
                !r.out()
                    .contains("354 End data with <CR><LF>.<CR><LF>\r\n354"),
                "{label}"
            );
            match bare_newline {
                BareNewline::Reject => {
                    assert_eq!(r.count("END"), 0, "{label}");
                    assert!(r.out().contains("550 5.5.2 Error: bare <"), "{label}");
                }
                _ => {
                    assert_eq!(r.count("END"), 1, "{label}");
                    let content = r.events.iter().find(|e| e.starts_with("CONTENT")).unwrap();
                    assert!(content.contains("MAIL FROM:<evil@example.net>"), "{label}");
                }
            }
            assert!(r.out().ends_with("221 2.0.0 Bye\r\n"), "{label}");
        }
    }
}

/// A BDAT chunk holding the markers and a MAIL command: its octets are content, never
/// commands.
#[test]
fn bdat_chunk_with_markers_is_content() {
    let mut chunk = b"Subject: chunk\r\n\r\n".to_vec();
    for marker in MARKERS {
        chunk.extend_from_slice(marker);
    }
    chunk.extend_from_slice(
        b"\r\n.\r\nMAIL FROM:<evil@example.net>\r\nRCPT TO:<v@example.org>\r\nDATA\r\n",
    );
    let mut input =
        b"EHLO c.example\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\n".to_vec();
    input.extend_from_slice(format!("BDAT {} LAST\r\n", chunk.len()).as_bytes());
    input.extend_from_slice(&chunk);
    input.extend_from_slice(b"QUIT\r\n");
    let r = run(&input);
    assert_eq!(r.count("MAIL"), 1, "{:?}", r.events);
    assert_eq!(r.count("END"), 1, "{:?}", r.events);
    let content = r.events.iter().find(|e| e.starts_with("CONTENT ")).unwrap();
    assert_eq!(
        content.as_bytes(),
        [b"CONTENT ".as_slice(), &chunk].concat()
    );
}

/// RFC 3207 §4.2: `STARTTLS\r\nMAIL FROM:<x>\r\n` in one write: the MAIL is dropped at the
/// switch and never executed after the handshake.
#[test]
fn starttls_drops_pipelined_plaintext() {
    let r = run(
        b"EHLO c.example\r\nSTARTTLS\r\nMAIL FROM:<x@example.com>\r\nRCPT TO:<y@example.com>\r\n",
    );
    assert_eq!(
        r.events.iter().filter(|e| e.starts_with("MAIL")).count(),
        0,
        "{:?}",
        r.events
    );
    assert!(
        r.out().ends_with("220 2.0.0 Ready to start TLS\r\n"),
        "{}",
        r.out()
    );
    // Same with the bytes arriving after the 220 but before the handshake completes.
    let mut session = ServerSession::new(Arc::new(config()), Instant::now());
    session.handle_input(b"EHLO c.example\r\nSTARTTLS\r\n");
    let mut events = Vec::new();
    while let Some(e) = session.poll_event() {
        events.push(e);
    }
    assert!(matches!(events.last(), Some(Event::StartTls)));
    session.handle_input(b"MAIL FROM:<x@example.com>\r\n");
    session.handle_tls_established();
    session.handle_input(b"NOOP\r\n");
    assert!(session.poll_event().is_none());
    let out = session.poll_transmit().unwrap();
    assert!(
        out.ends_with(b"220 2.0.0 Ready to start TLS\r\n250 2.0.0 Ok\r\n"),
        "{out:?}"
    );
}

/// A 1,000,000-octet line without CRLF: one `500 5.5.2` after its LF, then NOOP works; the
/// buffer stays under a few KiB whether the line comes in small pieces or in one write.
#[test]
fn huge_line_is_refused_in_bounded_memory() {
    for piece in [1000usize, 1_000_000] {
        let mut session = ServerSession::new(Arc::new(config()), Instant::now());
        let mut r = Run::default();
        drive(&mut session, &mut r);
        let line = vec![b'a'; 1_000_000];
        let mut max_capacity = 0;
        for p in line.chunks(piece) {
            session.handle_input(p);
            drive(&mut session, &mut r);
            max_capacity = max_capacity.max(session.buffer_capacity());
        }
        assert!(
            max_capacity < 8 * 1024,
            "buffer grew to {max_capacity} octets"
        );
        session.handle_input(b"\r\nNOOP\r\n");
        drive(&mut session, &mut r);
        assert!(
            r.out()
                .ends_with("500 5.5.2 Error: line too long\r\n250 2.0.0 Ok\r\n"),
            "{}",
            r.out()
        );
        assert_eq!(r.out().matches("500 ").count(), 1);
    }
}

/// A 10 MiB message streams through in pieces; the session never holds it.
#[test]
fn big_message_streams_in_bounded_memory() {
    let mut session = ServerSession::new(Arc::new(config()), Instant::now());
    let mut r = Run::default();
    session.handle_input(
        b"EHLO c.example\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n",
    );
    drive(&mut session, &mut r);
    let line =
        b"0123456789012345678901234567890123456789012345678901234567890123456789012345678\r\n";
    let mut received = 0usize;
    let mut max_capacity = 0;
    for _ in 0..(9 * 1024 * 1024 / line.len()) {
        session.handle_input(line);
        while let Some(e) = session.poll_event() {
            if let Event::DataChunk(piece) = e {
                received += piece.len();
            }
        }
        max_capacity = max_capacity.max(session.buffer_capacity());
    }
    session.handle_input(b".\r\n");
    drive(&mut session, &mut r);
    assert_eq!(received, 9 * 1024 * 1024 / line.len() * line.len());
    assert!(max_capacity < 16 * 1024, "buffer grew to {max_capacity}");
    assert!(
        r.out().ends_with("250 2.0.0 Ok: queued as ID\r\n"),
        "{}",
        r.out()
    );
}

fn recipients(n: usize) -> Vec<u8> {
    let mut s = b"EHLO c.example\r\nMAIL FROM:<a@example.com>\r\n".to_vec();
    for i in 0..n {
        s.extend_from_slice(format!("RCPT TO:<r{i}@example.org>\r\n").as_bytes());
    }
    s
}

/// RFC 5321 §4.5.3.1.8: at least 100 recipients; the default limit is Postfix's 1000.
#[test]
fn the_101st_recipient_is_accepted() {
    let r = run(&recipients(101));
    assert_eq!(r.out().matches("250 2.1.5 Ok").count(), 101);
}

/// The recipient past the configured limit gets `452 4.5.3`.
#[test]
fn recipient_past_the_limit_gets_452() {
    let mut config = config();
    config.limits.recipients = 5;
    let r = run_with(config, &recipients(7), &[usize::MAX]);
    assert_eq!(r.out().matches("250 2.1.5 Ok").count(), 5);
    assert!(r.out().ends_with(
        "452 4.5.3 Error: too many recipients\r\n452 4.5.3 Error: too many recipients\r\n"
    ));
}

/// Postfix's `smtpd_hard_error_limit` (20): the 20th error reply is followed by 421 and the
/// session closes; later input is ignored.
#[test]
fn error_limit_closes_with_421() {
    let input = b"FROB\r\n".repeat(25);
    let r = run(&input);
    assert_eq!(r.out().matches("500 5.5.2").count(), 20);
    assert!(
        r.out()
            .ends_with("421 4.7.0 mx.example.org Error: too many errors\r\n")
    );
    assert_eq!(r.events.last().map(String::as_str), Some("Closed"));
}

/// A bare LF ends no command line: the line is refused.
#[test]
fn bare_lf_command_is_refused() {
    let r = run(b"EHLO c.example\nNOOP\r\n");
    assert!(
        r.out()
            .ends_with("500 5.5.2 Error: bare <LF> received\r\n250 2.0.0 Ok\r\n"),
        "{}",
        r.out()
    );
    assert_eq!(r.count("Hello"), 0);
}

/// While an answer is pending nothing else is parsed, and the token belongs to one session.
#[test]
fn pending_answers_block_later_commands() {
    let mut session = ServerSession::new(Arc::new(config()), Instant::now());
    session.handle_input(
        b"EHLO c.example\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n",
    );
    assert!(matches!(session.poll_event(), Some(Event::Hello { .. })));
    let Some(Event::Mail(mail)) = session.poll_event() else {
        panic!()
    };
    assert!(
        session.poll_event().is_none(),
        "RCPT parsed before MAIL was answered"
    );
    assert!(!session.wants_input());
    let mut other = ServerSession::new(Arc::new(config()), Instant::now());
    assert!(other.answer_mail(mail.token, Ok(())).is_err());
}

/// The timeout applies only while waiting for the client; after it, 421 4.4.2 and close.
#[test]
fn timeouts_follow_the_state() {
    let start = Instant::now();
    let mut session = ServerSession::new(Arc::new(config()), start);
    assert_eq!(
        session.poll_timeout(),
        Some(start + std::time::Duration::from_secs(300))
    );
    session.handle_input(b"EHLO c.example\r\nMAIL FROM:<a@example.com>\r\n");
    // Waiting for the application: no timer.
    while let Some(e) = session.poll_event() {
        if let Event::Mail(m) = e {
            assert_eq!(session.poll_timeout(), None);
            session.answer_mail(m.token, Ok(())).unwrap();
        }
    }
    let later = start + std::time::Duration::from_secs(1000);
    // The session asks for the clock, then runs the 300 s timer from there.
    assert!(session.poll_timeout().unwrap() <= later);
    session.handle_timeout(later);
    assert_eq!(
        session.poll_timeout(),
        Some(later + std::time::Duration::from_secs(300))
    );
    session.handle_timeout(later + std::time::Duration::from_secs(300));
    assert!(session.is_closed());
    let out = session.poll_transmit().unwrap();
    assert!(out.ends_with(b"421 4.4.2 mx.example.org Error: timeout exceeded\r\n"));
    let events: Vec<Event> = std::iter::from_fn(|| session.poll_event()).collect();
    assert!(
        matches!(events.as_slice(), [Event::Reset, Event::Closed]),
        "{events:?}"
    );
}

/// RFC 5321 §3.8: a server may answer 421 and close. A 421 refusal of AUTH (Postfix's AUTH
/// failure limit) or of RCPT is sent, the session closes, and what the client pipelined after
/// it is never answered.
#[test]
fn a_421_refusal_closes_the_session() {
    use mailroom_smtp_proto::{Reply, ReplyCode};
    let too_many = "4.7.0 mx.example.org Error: too many AUTH failures";
    let mut session = ServerSession::new(Arc::new(config()), Instant::now());
    session.handle_input(b"EHLO c.example\r\nAUTH PLAIN AHRpbQBwYXNz\r\nNOOP\r\n");
    let mut events = Vec::new();
    while let Some(e) = session.poll_event() {
        match e {
            Event::Auth(a) => {
                let refusal = Reply::new(ReplyCode::SERVICE_NOT_AVAILABLE, too_many);
                session.answer_auth(a.token, Err(refusal)).unwrap();
                events.push("Auth");
            }
            Event::Closed => events.push("Closed"),
            _ => events.push("other"),
        }
    }
    let mut out = Vec::new();
    while let Some(t) = session.poll_transmit() {
        out.extend_from_slice(&t);
    }
    let out = String::from_utf8(out).unwrap();
    assert!(out.ends_with(&format!("421 {too_many}\r\n")), "{out}");
    assert!(
        !out.contains("250 2.0.0 Ok"),
        "NOOP answered after 421: {out}"
    );
    assert_eq!(events.last(), Some(&"Closed"));
    assert!(session.is_closed());

    // A 421 at RCPT closes as well; a 5xx at RCPT does not.
    let mut session = ServerSession::new(Arc::new(config()), Instant::now());
    session.handle_input(
        b"EHLO c.example\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nRCPT TO:<c@example.com>\r\nNOOP\r\n",
    );
    let mut rcpts = 0;
    while let Some(e) = session.poll_event() {
        match e {
            Event::Mail(m) => session.answer_mail(m.token, Ok(())).unwrap(),
            Event::Rcpt(r) => {
                rcpts += 1;
                let answer = if rcpts == 1 {
                    Reply::new(ReplyCode::MAILBOX_UNAVAILABLE, "5.1.1 no such user")
                } else {
                    Reply::new(ReplyCode::SERVICE_NOT_AVAILABLE, "4.7.0 bye")
                };
                session.answer_rcpt(r.token, Err(answer)).unwrap();
            }
            _ => {}
        }
    }
    assert_eq!(rcpts, 2);
    assert!(session.is_closed());
}
