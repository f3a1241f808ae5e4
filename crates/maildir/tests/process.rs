//! Real processes: a child delivering in a loop is killed with SIGKILL at random moments
//! (acceptance 2), and eight processes deliver into one Maildir at once (acceptance 3).
//!
//! The children are this test binary run again with `MAILROOM_MAILDIR_CHILD` set, entering
//! through the `child_entry` test. Sizes, by environment variable:
//!
//! - `MAILROOM_MAILDIR_KILL_TRIALS`: kill trials (default 60).
//! - `MAILROOM_MAILDIR_CONCURRENT`: messages per process in the 8-process test (default 1000,
//!   the size; about 10 s in a debug build on the project's machines).

// Integration test: failures should stop the test with their message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mailroom_maildir::Maildir;

const CHILD_VAR: &str = "MAILROOM_MAILDIR_CHILD";

/// Children numbered from here write small messages (up to 8 KB; the concurrency test).
const SMALL: u32 = 1000;

/// The child that measures how long a start and a few deliveries take (large messages).
const CALIBRATION: u32 = SMALL - 1;

/// The message with number `i` of child `who`: its size varies from 100 bytes to ~300 KiB so
/// kills land in every step, including the middle of a write. Its first line names it, so a
/// file can be checked against what it should contain.
fn body(who: u32, i: u64) -> Vec<u8> {
    let max = if who >= SMALL { 8_000 } else { 300_000 };
    let mut b = format!("X-Test: {who} {i}\r\n\r\n").into_bytes();
    let target = 100 + ((i * 7919 + u64::from(who) * 104_729) % max) as usize;
    let line = format!("message {i} of {who}, filler text for the body\r\n");
    while b.len() < target {
        b.extend_from_slice(line.as_bytes());
    }
    b
}

/// Checks that `data` is exactly the message its first line claims to be.
fn check_intact(path: &Path, data: &[u8]) -> (u32, u64) {
    let first = data.split(|&b| b == b'\r').next().unwrap_or_default();
    let text = std::str::from_utf8(first).unwrap_or("");
    let mut parts = text
        .strip_prefix("X-Test: ")
        .unwrap_or_else(|| panic!("{}: not one of ours ({} bytes)", path.display(), data.len()));
    parts = parts.trim();
    let (who, i) = parts.split_once(' ').unwrap();
    let (who, i) = (who.parse().unwrap(), i.parse().unwrap());
    assert!(
        data == body(who, i),
        "{}: message {who}/{i} is partial or damaged ({} bytes)",
        path.display(),
        data.len()
    );
    (who, i)
}

/// Entry point of the child processes; does nothing in a normal test run.
#[test]
fn child_entry() {
    let Ok(mode) = std::env::var(CHILD_VAR) else {
        return;
    };
    let dir = PathBuf::from(std::env::var("MAILROOM_MAILDIR_PATH").unwrap());
    let who: u32 = std::env::var("MAILROOM_MAILDIR_WHO")
        .unwrap()
        .parse()
        .unwrap();
    let count: u64 = std::env::var("MAILROOM_MAILDIR_COUNT")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(u64::MAX);
    let md = Maildir::open(&dir).unwrap();
    let stdout = std::io::stdout();
    for i in 0..count {
        let d = md.deliver(&body(who, i)[..]).unwrap();
        if mode == "loop" {
            // One write per line, after the delivery returned: "reported done".
            let mut out = stdout.lock();
            writeln!(out, "DONE {i} {}", d.key).unwrap();
            out.flush().unwrap();
        }
    }
}

fn child(mode: &str, dir: &Path, who: u32, count: Option<u64>) -> Command {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["--exact", "child_entry", "--nocapture", "--test-threads=1"])
        .env(CHILD_VAR, mode)
        .env("MAILROOM_MAILDIR_PATH", dir)
        .env("MAILROOM_MAILDIR_WHO", who.to_string())
        .stdin(Stdio::null())
        .stderr(Stdio::null());
    if let Some(c) = count {
        cmd.env("MAILROOM_MAILDIR_COUNT", c.to_string());
    }
    cmd
}

fn env_count(var: &str, default: u64) -> u64 {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[test]
fn sigkill_at_random_moments_loses_no_reported_delivery() {
    if std::env::var(CHILD_VAR).is_ok() {
        return;
    }
    let trials = env_count("MAILROOM_MAILDIR_KILL_TRIALS", 60);
    let tmp = mailroom_testkit::temp_dir();
    let path = tmp.path().join("Maildir");
    let md = Maildir::create(&path).unwrap();
    let mut seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    let mut reported: Vec<(u32, u64, String)> = Vec::new();
    // Calibrate the kill window on this machine: a child's start plus four deliveries. Kills
    // land anywhere from before the first delivery to well into the loop, however slow the
    // disk is.
    let calibration = Instant::now();
    assert!(
        trials < u64::from(CALIBRATION),
        "at most {CALIBRATION} trials"
    );
    let status = child("quiet", &path, CALIBRATION, Some(4))
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let window = u64::try_from(calibration.elapsed().as_micros())
        .unwrap()
        .max(1000)
        * 3
        / 2;
    let start = Instant::now();
    for trial in 0..trials {
        let who = u32::try_from(trial).unwrap();
        let mut child = child("loop", &path, who, None)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
                .collect::<Vec<String>>()
        });
        // xorshift: a kill moment anywhere in the window (early kills hit a child that has not
        // delivered anything yet, or is in its first delivery).
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        std::thread::sleep(Duration::from_micros(seed % window));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        for line in reader.join().unwrap() {
            // The harness prints "test child_entry ... " before the first line: look inside.
            let Some(at) = line.find("DONE ") else {
                continue;
            };
            let mut f = line[at..].split(' ');
            if f.next() == Some("DONE") {
                let i: u64 = f.next().unwrap().parse().unwrap();
                let key = f.next().unwrap().to_owned();
                reported.push((who, i, key));
            }
        }
    }
    let scan = md.scan().unwrap();
    assert!(scan.skipped.is_empty());
    let mut present = HashSet::new();
    for m in &scan.messages {
        let p = md.message_path(m);
        let data = std::fs::read(&p).unwrap();
        let id = check_intact(&p, &data);
        assert!(present.insert(id), "message {id:?} delivered twice");
    }
    for (who, i, key) in &reported {
        assert!(
            present.contains(&(*who, *i)),
            "reported delivery {who}/{i} ({key}) is missing"
        );
        assert!(
            md.find(key).unwrap().is_some(),
            "{key} missing under its reported name"
        );
    }
    eprintln!(
        "{trials} kill trials (window {window} us) in {:?}: {} deliveries reported, {} present, {} files left in tmp/",
        start.elapsed(),
        reported.len(),
        present.len(),
        std::fs::read_dir(path.join("tmp")).unwrap().count()
    );
    assert!(
        !reported.is_empty(),
        "no child delivered anything: the test checked nothing"
    );
}

#[test]
fn eight_processes_deliver_into_one_maildir() {
    if std::env::var(CHILD_VAR).is_ok() {
        return;
    }
    let per = env_count("MAILROOM_MAILDIR_CONCURRENT", 1000);
    let tmp = mailroom_testkit::temp_dir();
    let path = tmp.path().join("Maildir");
    let md = Maildir::create(&path).unwrap();
    let start = Instant::now();
    let children: Vec<_> = (0..8)
        .map(|who| {
            child("quiet", &path, SMALL + who, Some(per))
                .stdout(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success(), "a delivering process failed");
    }
    let elapsed = start.elapsed();
    let scan = md.scan().unwrap();
    assert_eq!(scan.messages.len() as u64, 8 * per);
    let mut ids = HashSet::new();
    let mut names = HashSet::new();
    for m in &scan.messages {
        let p = md.message_path(m);
        let data = std::fs::read(&p).unwrap();
        assert_eq!(m.size(), Some(data.len() as u64));
        assert!(ids.insert(check_intact(&p, &data)));
        assert!(names.insert(m.key().clone()));
    }
    for who in SMALL..SMALL + 8 {
        for i in 0..per {
            assert!(ids.contains(&(who, i)), "message {who}/{i} missing");
        }
    }
    assert_eq!(std::fs::read_dir(path.join("tmp")).unwrap().count(), 0);
    eprintln!(
        "8 x {per} deliveries in {elapsed:?} ({:.0}/s)",
        (8 * per) as f64 / elapsed.as_secs_f64()
    );
}
