//! Property tests of the client session: any content round-trips through the client's DATA
//! encoder and the server's `DataDecoder` in any chunking; random server bytes, in any
//! chunking and at any point of the session, never make it panic, and it stays bounded.

// Tests unwrap: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod client_harness;

use std::time::Duration;

use client_harness::{App, config, envelope};
use mailroom_smtp_proto::data::{DataConfig, DataDecoder, DataEvent, DataOutcome};
use mailroom_smtp_proto::fuzzing::normalize_newlines;
use proptest::prelude::*;

/// Bytes rich in what matters to DATA: CR, LF, ".", and a few letters.
fn smtp_bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        prop_oneof![
            3 => Just(b'\r'),
            3 => Just(b'\n'),
            3 => Just(b'.'),
            2 => Just(b'a'),
            1 => any::<u8>(),
        ],
        0..max,
    )
}

fn wire_after_354(content: &[u8], chunk: usize) -> Vec<u8> {
    let mut app =
        App::new(config()).message(envelope("a@example.com", &["b@example.org"]), content);
    app.chunk = chunk;
    app.quit = false;
    app.server(b"220 mx ESMTP\r\n");
    app.server(b"250-mx\r\n250 PIPELINING\r\n");
    app.server(b"250 Ok\r\n250 Ok\r\n354 go\r\n")
}

fn decode(wire: &[u8]) -> (Vec<u8>, Option<DataOutcome>, usize) {
    let mut decoder = DataDecoder::new(DataConfig::default());
    let mut used = 0;
    let mut content = Vec::new();
    loop {
        let decoded = decoder.decode(&wire[used..]);
        used += decoded.consumed;
        match decoded.event {
            Some(DataEvent::Content(piece)) => content.extend_from_slice(piece),
            Some(DataEvent::End(outcome)) => return (content, Some(outcome), used),
            None => return (content, None, used),
        }
    }
}

/// The server flights of a pipelined session that sends one message and quits.
const FLIGHTS: [&[u8]; 5] = [
    b"220 mx ESMTP\r\n",
    b"250-mx\r\n250-PIPELINING\r\n250-STARTTLS\r\n250-CHUNKING\r\n250 SIZE 100\r\n",
    b"250 Ok\r\n250 Ok\r\n354 go\r\n",
    b"250 queued\r\n",
    b"221 Bye\r\n",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_content_round_trips(content in smtp_bytes(300), chunk in 1usize..40) {
        let wire = wire_after_354(&content, chunk);
        let (decoded, outcome, used) = decode(&wire);
        prop_assert_eq!(outcome.map(|o| o.is_accepted()), Some(true));
        prop_assert_eq!(used, wire.len(), "the data ended before the client's end");
        prop_assert_eq!(decoded, normalize_newlines(&content));
    }

    #[test]
    fn random_server_bytes_never_panic(
        flights in 0usize..5,
        noise in prop::collection::vec(any::<u8>(), 0..2000),
        cuts in prop::collection::vec(1usize..300, 1..20),
        wait in 0u64..1000,
        tls in any::<bool>(),
    ) {
        let mut app = App::new(config())
            .message(envelope("a@example.com", &["b@example.org"]), b"hi\r\n");
        let mut sent = 0;
        for flight in FLIGHTS.iter().take(flights) {
            sent += app.server(flight).len();
            if tls && app.tls.is_some() {
                sent += app.tls_done().len();
            }
        }
        let mut rest = &noise[..];
        let mut cuts = cuts.iter().cycle();
        while !rest.is_empty() {
            let n = (*cuts.next().unwrap()).min(rest.len());
            sent += app.server(&rest[..n]).len();
            rest = &rest[n..];
        }
        sent += app.advance(Duration::from_secs(wait)).len();
        app.session.handle_eof();
        sent += app.pump().len();
        // Whatever the server said, the client only ever sent commands for one message.
        prop_assert!(sent < 4096, "{sent} octets sent");
        prop_assert!(app.errors.len() <= 1);
    }

    #[test]
    fn random_replies_after_a_valid_prefix_never_panic(
        flights in 0usize..5,
        replies in prop::collection::vec(
            (200u16..600, prop::bool::ANY, "[ -~]{0,20}"), 0..20),
    ) {
        let mut app = App::new(config())
            .message(envelope("a@example.com", &["b@example.org", "c@example.org"]), b"hi\r\n");
        for flight in FLIGHTS.iter().take(flights) {
            app.server(flight);
        }
        for (code, more, text) in replies {
            let line = format!("{code}{}{text}\r\n", if more { '-' } else { ' ' });
            app.server(line.as_bytes());
        }
        app.session.handle_eof();
        app.pump();
        prop_assert!(app.session.is_closed());
    }
}
