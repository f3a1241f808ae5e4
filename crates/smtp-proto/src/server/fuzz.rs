//! The body of the `server_session` fuzz target: a session fed arbitrary bytes in arbitrary
//! pieces, with an application that accepts everything, must never panic, never buffer
//! without bound, and give the same replies whatever the chunking.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::server::{Event, ServerConfig, ServerSession};

/// Runs `input` through a session that accepts everything, in pieces whose sizes are drawn
/// from the input's own first bytes, and returns everything the session transmitted.
pub fn run_session(input: &[u8], piece_sizes: &[usize]) -> Vec<u8> {
    let mut config = ServerConfig::new("mx.example.org");
    // No STARTTLS: what follows it in the same piece is dropped by design, so the replies
    // would depend on the chunking.
    config.auth_requires_tls = false;
    config.max_message_size = Some(64 * 1024);
    let start = Instant::now();
    let mut session = ServerSession::new(Arc::new(config), start);
    let mut out = Vec::new();
    let mut rest = input;
    let mut sizes = piece_sizes.iter().cycle();
    let mut queue_id = 0u64;
    while !rest.is_empty() && !session.is_closed() {
        let n = sizes
            .next()
            .copied()
            .unwrap_or(rest.len())
            .clamp(1, rest.len());
        let (piece, tail) = rest.split_at(n);
        rest = tail;
        session.handle_input(piece);
        drive(&mut session, &mut out, &mut queue_id);
        assert!(
            session.buffer_capacity() <= 256 * 1024,
            "the input buffer grew without bound"
        );
    }
    session.handle_timeout(start + Duration::from_secs(3600));
    session.handle_timeout(start + Duration::from_secs(7200));
    drive(&mut session, &mut out, &mut queue_id);
    out
}

fn drive(session: &mut ServerSession, out: &mut Vec<u8>, queue_id: &mut u64) {
    loop {
        while let Some(event) = session.poll_event() {
            let answered = match event {
                Event::Mail(m) => session.answer_mail(m.token, Ok(())),
                Event::Rcpt(r) => session.answer_rcpt(r.token, Ok(())),
                Event::MessageEnd(m) => {
                    *queue_id += 1;
                    session.answer_message(m.token, Ok(format!("Q{queue_id}")))
                }
                Event::Auth(a) => session.answer_auth(a.token, Ok(())),
                Event::StartTls => {
                    session.handle_tls_established();
                    Ok(())
                }
                _ => Ok(()),
            };
            assert!(answered.is_ok(), "a fresh token was refused");
        }
        match session.poll_transmit() {
            Some(bytes) => out.extend_from_slice(&bytes),
            None => break,
        }
    }
}

/// The fuzz target: the first byte picks a chunking, the rest is the client's input. The
/// replies must not depend on the chunking.
pub fn server_session(data: &[u8]) {
    let Some((&seed, input)) = data.split_first() else {
        return;
    };
    let whole = run_session(input, &[input.len().max(1)]);
    let pieces = [usize::from(seed % 7) + 1, usize::from(seed / 7 % 13) + 1, 1];
    let split = run_session(input, &pieces);
    assert_eq!(whole, split, "replies depend on how the input was split");
}
