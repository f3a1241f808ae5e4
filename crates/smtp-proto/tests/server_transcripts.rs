//! Replays the C:/S: transcripts of `tests/transcripts/*.txt` against the sans-IO server
//! session on a fake clock, with a tiny application that accepts everything (except the
//! recipient `unknown@...` and the password `wrong`).
//!
//! Format, one item per line:
//! - `C: text`: the client sends `text` and CRLF. Consecutive `C:` lines go in one write
//!   (pipelining); `C:` alone sends an empty line.
//! - `S: text`: the server's reply lines, expected after the preceding group of `C:` lines.
//! - `T: +N`: N seconds pass on the fake clock.
//! - `! key value`: a setting of the session (before the first `C:`).
//! - `#`: a comment; blank lines are ignored.

// Tests may unwrap: a failed step should stop the test with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mailroom_smtp_proto::server::{Event, ServerConfig, ServerSession};
use mailroom_smtp_proto::{ForwardPath, Reply, ReplyCode};

/// What the tiny application saw, for assertions beside the replies.
#[derive(Debug, Default)]
struct Seen {
    messages: Vec<Vec<u8>>,
    current: Vec<u8>,
    resets: usize,
    closed: bool,
}

fn drive(session: &mut ServerSession, seen: &mut Seen, out: &mut Vec<u8>) {
    loop {
        while let Some(event) = session.poll_event() {
            match event {
                Event::Mail(m) => session.answer_mail(m.token, Ok(())).unwrap(),
                Event::Rcpt(r) => {
                    let unknown = matches!(&r.to, ForwardPath::Mailbox(m) if ["unknown", "Green"].contains(&m.local_part().as_str()));
                    let answer = if unknown {
                        Err(Reply::new(
                            ReplyCode::MAILBOX_UNAVAILABLE,
                            &format!("5.1.1 {}: Recipient address rejected: User unknown", r.to),
                        ))
                    } else {
                        Ok(())
                    };
                    session.answer_rcpt(r.token, answer).unwrap();
                }
                Event::DataChunk(piece) => seen.current.extend_from_slice(&piece),
                Event::MessageEnd(m) => {
                    seen.messages.push(std::mem::take(&mut seen.current));
                    let id = format!("Q{}", seen.messages.len());
                    session.answer_message(m.token, Ok(id)).unwrap();
                }
                Event::Reset => {
                    seen.current.clear();
                    seen.resets += 1;
                }
                Event::Auth(a) => {
                    let answer = if a.credentials.password.expose() == "wrong" {
                        Err(Reply::new(
                            ReplyCode::AUTH_FAILED,
                            "5.7.8 Error: authentication failed",
                        ))
                    } else {
                        Ok(())
                    };
                    session.answer_auth(a.token, answer).unwrap();
                }
                Event::StartTls => session.handle_tls_established(),
                Event::Closed => seen.closed = true,
                _ => {}
            }
        }
        match session.poll_transmit() {
            Some(bytes) => out.extend_from_slice(&bytes),
            None => break,
        }
    }
}

fn config_from(settings: &[(String, String)]) -> ServerConfig {
    let mut config = ServerConfig::new("mx.example.org");
    for (key, value) in settings {
        match key.as_str() {
            "hostname" => config.hostname = value.clone(),
            "starttls" => config.starttls = value == "yes",
            "auth_requires_tls" => config.auth_requires_tls = value == "yes",
            "size" => config.max_message_size = value.parse().ok(),
            "recipients" => config.limits.recipients = value.parse().unwrap(),
            "max_errors" => config.max_errors = value.parse().unwrap(),
            "lmtp" => config.lmtp = value == "yes",
            other => panic!("unknown setting {other}"),
        }
    }
    config
}

/// Replays one transcript; returns what the application saw.
fn replay(name: &str, text: &str) -> Seen {
    let mut settings = Vec::new();
    let mut steps: Vec<(char, String)> = Vec::new();
    for line in text.lines() {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(rest) = line.strip_prefix("! ") {
            let (k, v) = rest.split_once(' ').unwrap_or((rest, ""));
            settings.push((k.to_owned(), v.to_owned()));
            continue;
        }
        let (kind, rest) = line.split_at(2);
        let rest = rest.strip_prefix(' ').unwrap_or(rest);
        match kind {
            "C:" => steps.push(('C', rest.to_owned())),
            "S:" => steps.push(('S', rest.to_owned())),
            "T:" => steps.push(('T', rest.to_owned())),
            _ => panic!("{name}: bad line {line:?}"),
        }
    }
    let start = Instant::now();
    let mut now = start;
    let mut session = ServerSession::new(Arc::new(config_from(&settings)), start);
    let mut seen = Seen::default();
    let mut out = Vec::new();
    let mut i = 0;
    while i < steps.len() {
        match steps[i].0 {
            'C' => {
                let mut input = Vec::new();
                while i < steps.len() && steps[i].0 == 'C' {
                    input.extend_from_slice(steps[i].1.as_bytes());
                    input.extend_from_slice(b"\r\n");
                    i += 1;
                }
                session.handle_input(&input);
                session.handle_timeout(now);
            }
            'T' => {
                let secs: u64 = steps[i].1.trim_start_matches('+').parse().unwrap();
                now += Duration::from_secs(secs);
                session.handle_timeout(now);
                i += 1;
            }
            _ => {
                let mut expected = String::new();
                while i < steps.len() && steps[i].0 == 'S' {
                    expected.push_str(&steps[i].1);
                    expected.push_str("\r\n");
                    i += 1;
                }
                drive(&mut session, &mut seen, &mut out);
                let got = String::from_utf8_lossy(&std::mem::take(&mut out)).into_owned();
                assert_eq!(got, expected, "{name}: replies differ at step {i}");
                continue;
            }
        }
        drive(&mut session, &mut seen, &mut out);
    }
    drive(&mut session, &mut seen, &mut out);
    assert!(
        out.is_empty(),
        "{name}: unexpected trailing replies: {:?}",
        String::from_utf8_lossy(&out)
    );
    seen
}

fn transcript(name: &str) -> Seen {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/transcripts")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    replay(name, &text)
}

#[test]
fn every_transcript_replays() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/transcripts");
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "txt") {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            transcript(&name);
            count += 1;
        }
    }
    assert!(count >= 6, "expected the transcripts in {}", dir.display());
}

#[test]
fn rfc5321_d1_delivers_one_message() {
    let seen = transcript("rfc5321_d1.txt");
    assert_eq!(seen.messages.len(), 1);
    assert!(seen.messages[0].starts_with(b"Blah blah blah...\r\n"));
    assert!(seen.closed);
}

#[test]
fn rfc3030_bdat_content_is_exact() {
    let seen = transcript("rfc3030_chunking.txt");
    assert_eq!(seen.messages.len(), 2);
    for m in &seen.messages {
        assert!(m.starts_with(b"To: "), "{:?}", String::from_utf8_lossy(m));
    }
}
