//! Acceptance 3: a child process appending in a loop is killed with SIGKILL at random moments;
//! after every kill the file parses, and every message the child reported appended is there,
//! intact.
//!
//! This test has its own `main` (`harness = false`): run with `MAILROOM_MBOX_CRASH_CHILD`
//! set, the same binary is the child. `MAILROOM_MBOX_CRASH_TRIALS` (default 60) sets the
//! number of kills; `MAILROOM_MBOX_CRASH_SEED` replays a run.

// Integration test: a failed step should stop the test with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{HashMap, HashSet};
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use mailroom_mbox::{FromLine, Mbox, ReadError, Reader, Variant};

const CHILD: &str = "MAILROOM_MBOX_CRASH_CHILD";

/// Message `id`: a few hundred bytes to 64 KiB, every fourth one about 2 MB (written in many
/// pieces, so that a kill can land between them), with lines that need quoting.
fn message(id: u64) -> Vec<u8> {
    let lines = if id % 4 == 3 {
        30_000
    } else {
        5 + (id * 7919 % 1000) as usize
    };
    let mut m = format!("Subject: crash {id}\nX-Seq: {id}\n\n").into_bytes();
    for k in 0..lines {
        match k % 9 {
            0 => m.extend_from_slice(format!("From the body {id} {k}\n").as_bytes()),
            4 => m.extend_from_slice(b"\n"),
            _ => m.extend_from_slice(
                format!("{id} line {k} of {lines} .............................\n").as_bytes(),
            ),
        }
    }
    m
}

fn child(path: &Path) {
    let first: u64 = std::env::var("MAILROOM_MBOX_CRASH_FIRST")
        .unwrap()
        .parse()
        .unwrap();
    let mbox = Mbox::new(path);
    let from = FromLine::now(b"crash@example.org").unwrap();
    let mut out = std::io::stdout().lock();
    for id in first.. {
        mbox.append(&from, &message(id)[..]).unwrap();
        // Reported only once append() returned: written, fsynced, unlocked.
        writeln!(out, "{id}").unwrap();
        out.flush().unwrap();
    }
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Reads every message; returns id -> count and whether the file ended in a cut message.
fn scan(path: &Path, strict: bool) -> (HashMap<u64, usize>, bool) {
    let mut reader = Reader::new(std::fs::File::open(path).unwrap(), Variant::Mboxrd);
    let mut seen = HashMap::new();
    let mut cut = false;
    loop {
        let entry = match reader.next_entry() {
            Ok(Some(e)) => e,
            Ok(None) => break,
            Err(ReadError::Truncated { .. }) if !strict => {
                cut = true;
                continue;
            }
            Err(e) => panic!("{}: {e}", path.display()),
        };
        let id: u64 = std::str::from_utf8(entry.info().headers.get("x-seq").unwrap())
            .unwrap()
            .parse()
            .unwrap();
        let mut entry = entry;
        let mut body = Vec::new();
        match entry.read_to_end(&mut body) {
            Ok(_) => {}
            Err(e) if !strict && e.kind() == std::io::ErrorKind::UnexpectedEof => {
                cut = true;
                continue;
            }
            Err(e) => panic!("{}: message {id}: {e}", path.display()),
        }
        let expected = message(id);
        let expected_body =
            &expected[expected.windows(2).position(|w| w == b"\n\n").unwrap() + 2..];
        if body != expected_body {
            // Only the very last message may be cut (a kill mid-write, before recovery).
            assert!(!strict, "message {id} damaged");
            cut = true;
            continue;
        }
        *seen.entry(id).or_insert(0) += 1;
    }
    (seen, cut)
}

fn main() {
    if let Ok(path) = std::env::var(CHILD) {
        child(Path::new(&path));
        return;
    }
    let trials: u64 = std::env::var("MAILROOM_MBOX_CRASH_TRIALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60);
    let seed = std::env::var("MAILROOM_MBOX_CRASH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    eprintln!("crash test: {trials} trials, MAILROOM_MBOX_CRASH_SEED={seed}");
    let mut rng = Rng(seed);
    let dir = mailroom_testkit::temp_dir();
    let path = dir.path().join("mbox");
    let exe = std::env::current_exe().unwrap();
    let mut acked_all = HashSet::new();
    let mut cuts = 0;
    let started = Instant::now();
    for trial in 0..trials {
        let mut child = Command::new(&exe)
            .env(CHILD, &path)
            .env("MAILROOM_MBOX_CRASH_FIRST", (trial * 1_000_000).to_string())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_micros(2_000 + rng.next() % 40_000));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let mut out = String::new();
        child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        // A last line without its newline was being printed at the kill: not reported.
        let complete = out.rfind('\n').map_or("", |i| &out[..=i]);
        let acked: Vec<u64> = complete.lines().map(|l| l.parse().unwrap()).collect();
        acked_all.extend(acked.iter().copied());
        if !path.exists() {
            continue;
        }
        // Straight after the kill: everything parses; only a message being written at the kill
        // may be cut, at the very end.
        let (_, cut) = scan(&path, false);
        cuts += usize::from(cut);
        // The next locker (here: us) rolls back the killed append; then the file is clean.
        drop(Mbox::new(&path).lock().unwrap());
        let (seen, cut) = scan(&path, true);
        assert!(!cut);
        for id in &acked_all {
            assert_eq!(
                seen.get(id),
                Some(&1),
                "trial {trial}: acknowledged message {id}"
            );
        }
        for (id, n) in &seen {
            assert_eq!(*n, 1, "message {id} appears {n} times");
        }
    }
    let total = Mbox::new(&path).index().unwrap().len();
    eprintln!(
        "crash test: {trials} kills in {:?}, {} acknowledged messages all present, {total} in the file, {cuts} kills left a cut message that the next lock rolled back",
        started.elapsed(),
        acked_all.len()
    );
    assert!(!acked_all.is_empty(), "the child never completed an append");
}
