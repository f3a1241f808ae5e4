//! Replays the committed corpus of the `server_session` fuzz target
//! (`fuzz/corpus/server_session/`) through its body, so every `cargo test` runs it on stable.

// Tests unwrap: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

#[test]
fn replay_server_session_corpus() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/server_session");
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        if path.is_file() {
            let data = std::fs::read(&path).unwrap();
            // Every byte as the chunking seed, so each seed exercises many splits.
            for seed in (0..=u8::MAX).step_by(8) {
                let mut input = vec![seed];
                input.extend_from_slice(data.get(1..).unwrap_or_default());
                mailroom_smtp_proto::fuzzing::server_session(&input);
            }
            count += 1;
        }
    }
    assert!(count >= 5, "the corpus in {} is missing", dir.display());
}
