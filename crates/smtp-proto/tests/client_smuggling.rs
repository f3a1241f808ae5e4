//! SMTP smuggling, client side: whatever the content holds (`\n.\n`, `\n.\r\n`, `\r.\r\n`,
//! `\r\n.\r`, `\r\n.\r\r\n`, a line with a lone dot, a second transaction), the server sees ONE
//! message whose content, after normalising bare CR and LF to CRLF, is the original. The
//! client's bytes are decoded with the server's `DataDecoder`, which ends only at
//! `<CRLF>.<CRLF>` and rejects a bare CR or LF.

// Tests unwrap: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod client_harness;

use client_harness::{App, config, envelope};
use mailroom_smtp_proto::data::{DataConfig, DataDecoder, DataEvent, DataOutcome};
use mailroom_smtp_proto::fuzzing::normalize_newlines;

/// Sends `content` through a pipelined session fed in pieces of `chunk` octets; returns the
/// bytes the client wrote after the server's 354, up to the server's reply.
pub(crate) fn wire_after_354(content: &[u8], chunk: usize) -> Vec<u8> {
    let mut app =
        App::new(config()).message(envelope("a@example.com", &["b@example.org"]), content);
    app.chunk = chunk;
    app.quit = false;
    app.server(b"220 mx ESMTP\r\n");
    app.server(b"250-mx\r\n250 PIPELINING\r\n");
    let wire = app.server(b"250 Ok\r\n250 Ok\r\n354 go\r\n");
    assert!(app.errors.is_empty(), "{:?}", app.errors);
    // The session waits for the one reply after the data, and sends nothing more.
    assert!(!app.session.is_ready());
    assert!(app.server(b"250 queued\r\n").is_empty());
    assert_eq!(app.results.len(), 1);
    wire
}

/// Decodes the client's bytes as the server would: one message, ending at the very end.
pub(crate) fn server_view(wire: &[u8]) -> Vec<u8> {
    let mut decoder = DataDecoder::new(DataConfig::default());
    let mut input = wire;
    let mut content = Vec::new();
    loop {
        let decoded = decoder.decode(input);
        let event = decoded.event;
        input = &input[decoded.consumed..];
        match event {
            Some(DataEvent::Content(piece)) => content.extend_from_slice(piece),
            Some(DataEvent::End(outcome)) => {
                assert!(
                    matches!(outcome, DataOutcome::Accepted { .. }),
                    "the server would refuse it: {outcome:?}"
                );
                assert!(
                    input.is_empty(),
                    "the data ended early: {:?} left over, which the server would read as commands",
                    String::from_utf8_lossy(input)
                );
                return content;
            }
            None => panic!("the data never ended"),
        }
    }
}

const SMUGGLED: &[u8] =
    b"MAIL FROM:<admin@example.org>\r\nRCPT TO:<victim@example.org>\r\nDATA\r\nFrom: admin\r\n\r\nsmuggled\r\n";

#[test]
fn end_of_data_variants_in_content_never_end_the_data_early() {
    for variant in [
        &b"\n.\n"[..],
        b"\n.\r\n",
        b"\r.\r\n",
        b"\r\n.\r",
        b"\r\n.\r\r\n",
        b"\r\n.\r\n",
        b"\r\n..\r\n",
        b".\r\n",
        b"\r",
        b"\n",
    ] {
        let mut content = b"Subject: hi\r\n\r\nhello".to_vec();
        content.extend_from_slice(variant);
        content.extend_from_slice(SMUGGLED);
        content.extend_from_slice(b"tail");
        content.extend_from_slice(variant);
        for chunk in [1, 2, 3, 5, 7, 64, content.len()] {
            let wire = wire_after_354(&content, chunk);
            assert!(
                !wire.windows(2).enumerate().any(|(i, w)| {
                    (w[0] == b'\r' && w[1] != b'\n')
                        || (w[1] == b'\n' && w[0] != b'\r')
                        || (i == 0 && w[0] == b'\n')
                }),
                "a bare CR or LF on the wire: {:?}",
                String::from_utf8_lossy(&wire)
            );
            assert_eq!(
                server_view(&wire),
                normalize_newlines(&content),
                "variant {variant:?}, pieces of {chunk}"
            );
        }
    }
}

#[test]
fn content_starting_with_a_dot_line_is_stuffed() {
    let wire = wire_after_354(b".\r\n", 1);
    assert_eq!(wire, b"..\r\n.\r\n");
    assert_eq!(server_view(&wire), b".\r\n");
    let wire = wire_after_354(b"", 4);
    assert_eq!(wire, b".\r\n");
    assert_eq!(server_view(&wire), b"");
}
