//! Replays `tests/transcripts/*.txt` against the sans-IO server session on a fake clock.
//!
//! Format, one item per line: `C: ` octets from the client (CRLF added); `S: ` octets the server
//! must send; `P: ` an untagged response the application pushes (and the server must send);
//! `T: n` advances the clock by n seconds; `#` starts a comment. The first `S:` line is the
//! greeting. When the session asks the application (an [`Event`] with a token), the harness
//! answers with the `S:` responses that follow, up to the tagged one: the session must then
//! write exactly those bytes, and everything it writes itself must match too.

// Test code: a failed step should stop the test with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use mailroom_imap_proto::framing::FramingLimits;
use mailroom_imap_proto::session::{Answer, Event, ServerConfig, ServerSession};
use mailroom_imap_proto::types::{Response, StatusResponse};
use mailroom_imap_proto::{Decoded, decode_response};

enum Step {
    Client(Vec<u8>),
    Push(Vec<u8>),
    Time(u64),
}

fn parse(text: &str) -> (Vec<Step>, Vec<u8>) {
    let mut steps = Vec::new();
    let mut expected = Vec::new();
    for line in text.lines() {
        let (kind, rest) = line.split_at(line.len().min(2));
        let rest = rest.strip_prefix(' ').unwrap_or(rest);
        let mut bytes = rest.as_bytes().to_vec();
        bytes.extend_from_slice(b"\r\n");
        match kind {
            "S:" => expected.extend_from_slice(&bytes),
            "C:" => steps.push(Step::Client(bytes)),
            "P:" => {
                expected.extend_from_slice(&bytes);
                steps.push(Step::Push(bytes));
            }
            "T:" => steps.push(Step::Time(rest.trim().parse().unwrap())),
            _ if line.starts_with('#') || line.is_empty() => {}
            _ => panic!("unknown transcript line {line:?}"),
        }
    }
    (steps, expected)
}

/// The application's answer: the expected responses from `at` up to the tagged one.
fn answer_from(expected: &[u8], at: usize) -> Answer {
    let mut pos = at;
    let mut untagged = Vec::new();
    loop {
        let Ok(Decoded::Done { value, consumed }) =
            decode_response(&expected[pos..], &FramingLimits::default())
        else {
            panic!(
                "no tagged answer in the transcript at {:?}",
                String::from_utf8_lossy(&expected[pos..])
            )
        };
        pos += consumed;
        match value {
            Response::Status(StatusResponse {
                tag: Some(_),
                kind,
                code,
                text,
            }) => {
                return Answer {
                    untagged,
                    kind,
                    code,
                    text,
                };
            }
            other => untagged.push(other),
        }
    }
}

fn replay(name: &str) {
    let path = format!("{}/tests/transcripts/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap();
    let (steps, expected) = parse(&text);
    let greeting_line = text
        .lines()
        .find_map(|l| l.strip_prefix("S: * OK "))
        .unwrap();
    let config = ServerConfig {
        greeting: greeting_line.to_owned(),
        greeting_capabilities: false,
        ..ServerConfig::default()
    };
    let start = Instant::now();
    let mut now = start;
    let mut session = ServerSession::new(config, now);
    let mut actual = Vec::new();
    let pump = |session: &mut ServerSession, actual: &mut Vec<u8>| loop {
        if let Some(out) = session.poll_transmit() {
            actual.extend_from_slice(&out);
        }
        match session.poll_event() {
            Some(Event::Command { token, .. } | Event::Login { token, .. }) => {
                let answer = answer_from(&expected, actual.len());
                session.respond(token, answer).unwrap();
            }
            Some(_) => {}
            None => break,
        }
    };
    pump(&mut session, &mut actual);
    for step in steps {
        match step {
            Step::Client(bytes) => session.handle_input(now, &bytes),
            Step::Push(bytes) => {
                let Ok(Decoded::Done {
                    value: Response::Data(d),
                    ..
                }) = decode_response(&bytes, &FramingLimits::default())
                else {
                    panic!("P: needs untagged data")
                };
                session.send_untagged(d);
            }
            Step::Time(secs) => {
                now += Duration::from_secs(secs);
                session.handle_timeout(now);
            }
        }
        pump(&mut session, &mut actual);
        assert!(
            expected.starts_with(&actual),
            "{name}: the session wrote\n{}\nbut the transcript says\n{}",
            String::from_utf8_lossy(&actual),
            String::from_utf8_lossy(&expected)
        );
    }
    assert_eq!(
        String::from_utf8_lossy(&actual),
        String::from_utf8_lossy(&expected),
        "{name}"
    );
}

#[test]
fn rfc9051_example_session() {
    replay("rfc9051_example.txt");
}

#[test]
fn rfc3501_example_session() {
    replay("rfc3501_example.txt");
}

#[test]
fn plain_literals_idle_autologout() {
    replay("plain_literals_idle.txt");
}

#[test]
fn imaplib_capture() {
    replay("imaplib_capture.txt");
}

#[test]
fn every_transcript_is_replayed() {
    let dir = format!("{}/tests/transcripts", env!("CARGO_MANIFEST_DIR"));
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "imaplib_capture.txt",
            "plain_literals_idle.txt",
            "rfc3501_example.txt",
            "rfc9051_example.txt"
        ]
    );
}
