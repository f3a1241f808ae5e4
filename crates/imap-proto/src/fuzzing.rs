//! Fuzz target bodies, as plain functions so that the committed corpora
//! (`fuzz-corpus/<target>/`) are replayed by an ordinary `cargo test`, and the cargo-fuzz
//! package (`fuzz/fuzz_targets/imap_*.rs`) only wraps them. Each panics only on a broken
//! invariant.

// Fuzz bodies: a broken invariant must stop the fuzzer with a clear message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use crate::codec::Encode;
use crate::framing::{CommandFramer, FrameEvent, FramingLimits};
use crate::session::{Answer, Event, ServerConfig, ServerSession};
use crate::{Decoded, decode_command, decode_response};

fn small_limits() -> FramingLimits {
    FramingLimits {
        max_line: 512,
        max_literal: 1024,
        max_nonsync_literal: Some(64),
        max_frame: 4096,
    }
}

/// The command parser: whatever decodes re-encodes to something that decodes to the same value.
pub fn command_parser(data: &[u8]) {
    if let Ok(Decoded::Done { value, consumed }) = decode_command(data, &small_limits()) {
        assert!(consumed <= data.len());
        let again = value.to_bytes();
        match decode_command(&again, &FramingLimits::default()) {
            Ok(Decoded::Done { value: v2, .. }) => assert_eq!(v2, value, "re-encoded command"),
            other => panic!("re-encoded command does not decode: {other:?}"),
        }
    }
}

/// The response parser: whatever decodes re-encodes to something that decodes to the same value.
pub fn response_parser(data: &[u8]) {
    if let Ok(Decoded::Done { value, consumed }) = decode_response(data, &small_limits()) {
        assert!(consumed <= data.len());
        let again = value.to_bytes();
        match decode_response(&again, &FramingLimits::default()) {
            Ok(Decoded::Done { value: v2, .. }) => assert_eq!(v2, value, "re-encoded response"),
            other => panic!("re-encoded response does not decode: {other:?}"),
        }
    }
}

/// The framer: split at a point chosen by the first byte; accept or refuse literals by the
/// second. Frames never exceed the limits, and the same input split elsewhere frames the same.
pub fn framing(data: &[u8]) {
    let (Some(&a), Some(&b)) = (data.first(), data.get(1)) else {
        return;
    };
    let body = &data[2..];
    let run = |cut: usize| {
        let limits = small_limits();
        let mut f = CommandFramer::new(limits.clone());
        let mut events = Vec::new();
        let mut decisions = 0u32;
        for chunk in [&body[..cut], &body[cut..]] {
            f.push(chunk);
            loop {
                match f.next_event() {
                    FrameEvent::Incomplete => break,
                    FrameEvent::Command(c) => {
                        assert!(c.len() <= limits.max_frame);
                        let _ = crate::parse_command(&c);
                        events.push(FrameEvent::Command(c));
                    }
                    FrameEvent::LiteralAnnounced { size, partial } => {
                        if (b >> (decisions % 8)) & 1 == 1 && f.check_literal(size).is_ok() {
                            f.accept_literal();
                        } else {
                            f.reject_literal();
                        }
                        decisions += 1;
                        events.push(FrameEvent::LiteralAnnounced { size, partial });
                    }
                    e @ (FrameEvent::Rejected { .. } | FrameEvent::LiteralData { .. }) => {
                        events.push(e)
                    }
                }
            }
        }
        events
    };
    let cut = usize::from(a).min(body.len());
    assert_eq!(run(cut), run(body.len()), "framing depends on the split");
}

/// The server session: fed in chunks whose sizes come from the input, every event answered
/// (alternately OK and NO); everything it sends must decode as responses, and the clock may
/// run out. Never panics.
pub fn server_session(data: &[u8]) {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let start = Instant::now();
    let config = ServerConfig {
        starttls: first & 1 == 1,
        login_requires_tls: first & 2 == 2,
        stream_append_from: (first & 4 == 4).then_some(8),
        limits: small_limits(),
        ..ServerConfig::default()
    };
    let mut s = ServerSession::new(config, start);
    let mut out = Vec::new();
    let chunk = usize::from(first >> 3).max(1);
    let mut append: Option<crate::session::Token> = None;
    let mut answers = 0u32;
    for (n, piece) in rest.chunks(chunk).enumerate() {
        let now = start + Duration::from_secs(n as u64);
        s.handle_input(now, piece);
        loop {
            if let Some(o) = s.poll_transmit() {
                out.extend(o);
            }
            match s.poll_event() {
                Some(Event::AppendStart { token, .. }) => {
                    answers += 1;
                    if answers.is_multiple_of(3) {
                        // Refused early: the rest of the message is skipped.
                        s.respond(token, Answer::no("[OVERQUOTA] refused")).unwrap();
                    } else {
                        append = Some(token);
                    }
                }
                Some(Event::AppendEnd) => {
                    let token = append.take().expect("AppendEnd after AppendStart");
                    s.respond(token, Answer::ok("APPEND completed")).unwrap();
                }
                Some(Event::AppendAborted) => assert!(append.take().is_some()),
                Some(Event::Command { token, .. } | Event::Login { token, .. }) => {
                    answers += 1;
                    let answer = if answers.is_multiple_of(3) {
                        Answer::no("refused")
                    } else {
                        Answer::ok("done")
                    };
                    s.respond(token, answer).unwrap();
                }
                Some(_) => {}
                None => break,
            }
        }
    }
    s.handle_timeout(start + Duration::from_secs(3600 * 24));
    if let Some(o) = s.poll_transmit() {
        out.extend(o);
    }
    let mut pos = 0;
    while pos < out.len() {
        match decode_response(&out[pos..], &FramingLimits::default()) {
            Ok(Decoded::Done { consumed, .. }) => pos += consumed,
            other => panic!(
                "the session sent something that does not decode: {other:?} in {:?}",
                String::from_utf8_lossy(&out[pos..])
            ),
        }
    }
}
