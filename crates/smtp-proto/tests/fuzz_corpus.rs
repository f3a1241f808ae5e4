//! Replays the committed fuzz corpora (`fuzz/corpus/<target>/`) through the fuzz targets'
//! bodies in `mailroom_smtp_proto::fuzzing`, so every `cargo test` on stable runs them.
//!
//! A new target adds one line to `TARGETS`.

// Tests unwrap: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use mailroom_smtp_proto::fuzzing;

/// A fuzz target's body.
type Body = fn(&[u8]);

/// (target name = corpus folder, its body).
const TARGETS: &[(&str, Body)] = &[
    ("data_decoder", fuzzing::data_decoder),
    ("bdat", fuzzing::bdat),
    ("command", fuzzing::command),
    ("reply", fuzzing::reply),
];

fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target)
}

#[test]
fn replay_every_corpus() {
    for &(target, body) in TARGETS {
        let dir = corpus_dir(target);
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("corpus {}: {e}", dir.display()))
            .map(|entry| entry.unwrap().path())
            .filter(|path| path.is_file())
            .collect();
        files.sort();
        assert!(!files.is_empty(), "corpus {} is empty", dir.display());
        for file in &files {
            let data = std::fs::read(file).unwrap();
            let outcome = std::panic::catch_unwind(|| body(&data));
            assert!(outcome.is_ok(), "{target}: {} fails", file.display());
        }
    }
}
