//! Replays the committed fuzz corpora (`fuzz-corpus/<target>/`) through the fuzz target bodies,
//! so that every `cargo test` exercises them on stable.

// Test code: a failed step should stop the test with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use mailroom_imap_proto::fuzzing;

fn replay(target: &str, body: fn(&[u8])) {
    let dir = format!("{}/fuzz-corpus/{target}", env!("CARGO_MANIFEST_DIR"));
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        let result = std::panic::catch_unwind(|| body(&data));
        assert!(result.is_ok(), "{target}: {} panicked", path.display());
        n += 1;
    }
    assert!(n > 0, "{dir} is empty");
}

#[test]
fn command_parser_corpus() {
    replay("command_parser", fuzzing::command_parser);
}

#[test]
fn response_parser_corpus() {
    replay("response_parser", fuzzing::response_parser);
}

#[test]
fn framing_corpus() {
    replay("framing", fuzzing::framing);
}

#[test]
fn server_session_corpus() {
    replay("server_session", fuzzing::server_session);
}
