//! Acceptance 2: a child process enqueuing from 16 threads is killed with SIGKILL at random
//! moments; after each kill the parent recovers the queue and checks that every message the
//! child acknowledged (printed its ID, after `enqueue` returned) is present and intact.
//!
//! The child is this test binary run again with `MAILROOM_QUEUE_KILL_CHILD=<queue dir>`.
//! `MAILROOM_QUEUE_KILL_TRIALS` sets the number of kills (default 50).

// Tests unwrap: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use common::{content, envelope};
use mailroom_queue::{Config, Queue, QueueId, RealFs};

const CHILD_ENV: &str = "MAILROOM_QUEUE_KILL_CHILD";

fn quiet() -> Config {
    Config {
        logger: Arc::new(|_: &str| {}),
        ..Config::default()
    }
}

/// The length of message `seq` of a thread: mostly small, every 101st larger than the inline
/// limit (its own content file).
fn length(seq: u64) -> usize {
    if seq % 101 == 100 {
        270_000
    } else {
        100 + (seq as usize * 53) % 5000
    }
}

/// The child: enqueue from 16 threads until killed, printing `ID KEY LEN` per acknowledgement.
#[test]
fn kill_child() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let q = Queue::open(RealFs, &dir, quiet()).unwrap();
    let out = Arc::new(Mutex::new(std::io::stdout()));
    {
        let mut out = out.lock().unwrap();
        writeln!(out, "ready").unwrap();
        out.flush().unwrap();
    }
    let pid = std::process::id();
    let threads: Vec<_> = (0..16)
        .map(|t| {
            let q = q.clone();
            let out = Arc::clone(&out);
            std::thread::spawn(move || {
                for seq in 0u64.. {
                    let key = format!("{pid}-{t}-{seq}");
                    let len = length(seq);
                    let body = content(&key, len);
                    let id = q.enqueue(envelope(1 + (seq % 3) as usize, "example.net"), &body[..]);
                    let id = id.unwrap();
                    let mut out = out.lock().unwrap();
                    writeln!(out, "{id} {key} {len}").unwrap();
                    out.flush().unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        let _ = t.join();
    }
}

fn next(seed: &mut u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed
}

#[test]
fn sigkill_loses_no_acknowledged_message() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    let trials: u64 = std::env::var("MAILROOM_QUEUE_KILL_TRIALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    let exe = std::env::current_exe().unwrap();
    let root = tempfile::tempdir().unwrap();
    let mut seed = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    println!("seed {seed}");
    let mut total_acked = 0;
    for trial in 0..trials {
        // Five kills per queue directory, so recovery also meets earlier recoveries' output.
        let dir = root.path().join(format!("q{}", trial / 5));
        let mut child = Command::new(&exe)
            .args(["--exact", "kill_child", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, &dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            let mut r = BufReader::new(stdout);
            let mut acked = Vec::new();
            let mut line = Vec::new();
            loop {
                line.clear();
                match r.read_until(b'\n', &mut line) {
                    Ok(0) | Err(_) => break,
                    // A line cut by the kill was not a full acknowledgement.
                    // libtest's "test kill_child ... " may precede it on the same line.
                    Ok(_) if line.ends_with(b"ready\n") => {
                        let _ = ready_tx.send(());
                    }
                    Ok(_) if line.last() == Some(&b'\n') => {
                        let text = String::from_utf8(line.clone()).unwrap();
                        let mut parts = text.split_whitespace();
                        let (Some(id), Some(key), Some(len)) =
                            (parts.next(), parts.next(), parts.next())
                        else {
                            continue;
                        };
                        if let Ok(id) = id.parse::<QueueId>() {
                            acked.push((id, key.to_owned(), len.parse::<usize>().unwrap()));
                        }
                    }
                    Ok(_) => break,
                }
            }
            acked
        });
        // Kill at a random moment once the child is enqueuing (or at once if it never gets
        // ready, which the final check would report).
        let _ = ready_rx.recv_timeout(Duration::from_secs(10));
        std::thread::sleep(Duration::from_millis(next(&mut seed) % 150));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let acked = reader.join().unwrap();
        total_acked += acked.len();

        let q = Queue::open(RealFs, &dir, quiet()).unwrap();
        let rec = q.recovery();
        println!(
            "trial {trial}: {} acknowledged; recovery found {} messages, removed {} incomplete writes, \
             quarantined {}",
            acked.len(),
            rec.messages,
            rec.removed_incomplete.len(),
            rec.quarantined.len()
        );
        for line in rec.removed_incomplete.iter().chain(&rec.quarantined) {
            println!("  {line}");
        }
        assert!(
            rec.quarantined.is_empty(),
            "a process kill damaged the queue"
        );
        for (id, key, len) in &acked {
            let s = q
                .show(*id)
                .unwrap_or_else(|| panic!("acknowledged message {id} ({key}) lost"));
            assert_eq!(s.envelope.size, *len as u64);
            let mut body = Vec::new();
            q.export(*id, &mut body).unwrap();
            assert!(
                body == content(key, *len),
                "acknowledged message {id} ({key}) damaged"
            );
        }
    }
    println!("{total_acked} acknowledged messages over {trials} kills, none lost");
    assert!(total_acked > 0, "the child never acknowledged anything");
}
