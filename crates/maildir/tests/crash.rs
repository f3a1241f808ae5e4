//! Crash consistency on the simulated file system (acceptance 1): a crash after each file
//! operation of a delivery and of a batch, for every position and several crash models; and an
//! error injected at each step. A batch's files are flushed by one operation
//! (`Fs::sync_batch`, `syncfs(2)` on the real disk), which the batch tests find and cross.
//!
//! After every crash each message must be absent or complete in `new/`/`cur/`, never partial,
//! never under two names, and every delivery reported done must be there.

// Integration test: failures should stop the test with their message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Read;
use std::path::Path;

use mailroom_maildir::sim::{CrashMode, SimFs};
use mailroom_maildir::{Batch, DeliverError, DeliverStep, Delivered, Fs, Maildir};

const ROOT: &str = "/mail/user";

fn body(i: usize) -> Vec<u8> {
    // Several write calls' worth would need > 64 KiB; 100 KiB bodies make each delivery do two
    // writes, so a torn write is among the crash points.
    let mut b = format!("Subject: message {i}\r\n\r\n").into_bytes();
    while b.len() < 100 * 1024 {
        b.extend_from_slice(format!("line of message {i}\r\n").as_bytes());
    }
    b
}

fn modes(n: u64) -> Vec<CrashMode> {
    vec![
        CrashMode::LoseUnsynced,
        CrashMode::KeepAll,
        CrashMode::Mixed(n),
        CrashMode::Mixed(n ^ 0xdead_beef),
        CrashMode::Mixed(n.wrapping_mul(31) + 7),
    ]
}

/// A durable Maildir holding one earlier message.
fn setup(path: &str) -> (SimFs, Maildir<SimFs>) {
    let fs = SimFs::new();
    fs.create_dir(Path::new("/mail")).unwrap();
    fs.sync_dir(Path::new("/")).unwrap();
    let md = Maildir::create_with(fs.clone(), path).unwrap();
    md.deliver(&body(1000)[..]).unwrap();
    (fs, md)
}

/// Every file in new/ and cur/ of `path`, with its contents.
fn contents(fs: &SimFs, path: &str) -> Vec<(String, Vec<u8>)> {
    let md = Maildir::open_with(fs.clone(), path).expect("maildir survives the crash");
    let scan = md.scan().unwrap();
    assert!(scan.skipped.is_empty(), "{:?}", scan.skipped);
    scan.messages
        .iter()
        .map(|m| {
            let mut data = Vec::new();
            md.open_message(m).unwrap().read_to_end(&mut data).unwrap();
            (m.file_name().to_owned(), data)
        })
        .collect()
}

/// Checks the invariants: the old message is there once; each expected body at most once and
/// whole; the ones in `must` exactly once; nothing else.
fn check(fs: &SimFs, path: &str, expected: &[Vec<u8>], must: &[bool], context: &str) {
    let files = contents(fs, path);
    let old = body(1000);
    assert_eq!(
        files.iter().filter(|(_, d)| *d == old).count(),
        1,
        "{context}: earlier message lost or doubled"
    );
    for (i, want) in expected.iter().enumerate() {
        let n = files.iter().filter(|(_, d)| d == want).count();
        assert!(n <= 1, "{context}: message {i} under {n} names");
        if must[i] {
            assert_eq!(
                n, 1,
                "{context}: message {i} reported delivered but missing"
            );
        }
    }
    for (name, data) in &files {
        assert!(
            *data == old || expected.contains(data),
            "{context}: partial or foreign file {name} ({} bytes)",
            data.len()
        );
    }
}

#[test]
fn crash_at_every_operation_of_a_delivery() {
    let (fs, md) = setup(ROOT);
    let before = fs.ops();
    md.deliver(&body(0)[..]).unwrap();
    let total = fs.ops() - before;
    assert!(
        total >= 5,
        "create, write, fsync, rename, fsync dir: {total}"
    );

    for n in 0..=total {
        for mode in modes(n) {
            let (fs, md) = setup(ROOT);
            fs.crash_after(n);
            let result = md.deliver(&body(0)[..]);
            assert_eq!(result.is_ok(), n >= total, "crash at {n}");
            fs.recover(mode);
            check(
                &fs,
                ROOT,
                &[body(0)],
                &[result.is_ok()],
                &format!("crash at operation {n}/{total} ({mode:?})"),
            );
        }
    }
}

#[test]
fn error_at_each_step_is_reported_and_leaves_nothing_visible() {
    let (fs, md) = setup(ROOT);
    let before = fs.ops();
    md.deliver(&body(0)[..]).unwrap();
    let total = fs.ops() - before;
    let mut steps = Vec::new();
    for n in 0..total {
        let (fs, md) = setup(ROOT);
        fs.fail_after(n);
        let err = md
            .deliver(&body(0)[..])
            .expect_err("an injected failure fails the delivery");
        let text = err.to_string();
        assert!(text.contains(ROOT), "error names the path: {text}");
        assert!(text.contains("injected failure"), "{text}");
        steps.push(err.step());
        check(&fs, ROOT, &[body(0)], &[false], &format!("failure at {n}"));
        assert!(
            fs.read_dir(Path::new("/mail/user/tmp")).unwrap().is_empty(),
            "failure at {n} left a file in tmp/"
        );
    }
    steps.dedup();
    assert_eq!(
        steps,
        vec![
            DeliverStep::Create,
            DeliverStep::Write,
            DeliverStep::SyncFile,
            DeliverStep::Rename,
            DeliverStep::SyncDir
        ]
    );
}

#[test]
fn reader_failure_is_reported_and_leaves_nothing() {
    struct Broken(usize);
    impl Read for Broken {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            if self.0 == 0 {
                return Err(std::io::Error::other("connection reset"));
            }
            let n = buf.len().min(self.0);
            buf[..n].fill(b'x');
            self.0 -= n;
            Ok(n)
        }
    }
    let (fs, md) = setup(ROOT);
    let err = md.deliver(Broken(70_000)).unwrap_err();
    assert_eq!(err.step(), DeliverStep::ReadBody);
    assert!(err.to_string().contains("connection reset"));
    check(&fs, ROOT, &[], &[], "reader failure");
    assert!(fs.read_dir(Path::new("/mail/user/tmp")).unwrap().is_empty());
}

/// Runs a batch: three messages to the first Maildir, one message to both.
fn run_batch_results(
    a: &Maildir<SimFs>,
    b: &Maildir<SimFs>,
) -> Vec<Result<Delivered, DeliverError>> {
    let mut batch = Batch::new();
    for i in 0..3 {
        batch.add(a, &body(i)[..]);
    }
    batch.add_to_many(&[a, b], &body(3)[..]);
    let results = batch.commit();
    assert_eq!(results.len(), 5);
    results
}

fn run_batch(a: &Maildir<SimFs>, b: &Maildir<SimFs>) -> Vec<bool> {
    run_batch_results(a, b).iter().map(Result::is_ok).collect()
}

/// Whether every result failed at the batch's one flush (`Fs::sync_batch`, `syncfs` on the
/// real disk) with the simulated fault `what` ("injected failure of syncfs", "simulated crash
/// during syncfs").
fn all_failed_at_the_flush(results: &[Result<Delivered, DeliverError>], what: &str) -> bool {
    results.iter().all(|r| {
        matches!(r, Err(e) if e.step() == DeliverStep::SyncFile && e.to_string().contains(what))
    })
}

fn setup_two() -> (SimFs, Maildir<SimFs>, Maildir<SimFs>) {
    let (fs, a) = setup("/mail/a");
    let b = Maildir::create_with(fs.clone(), "/mail/b").unwrap();
    b.deliver(&body(1000)[..]).unwrap();
    (fs, a, b)
}

fn check_two(fs: &SimFs, ok: &[bool], context: &str) {
    let bodies: Vec<Vec<u8>> = (0..4).map(body).collect();
    // Results 0..3 are messages 0..2 and 3 in a; result 4 is message 3 in b.
    let must_a = [ok[0], ok[1], ok[2], ok[3]];
    check(
        fs,
        "/mail/a",
        &bodies,
        &must_a,
        &format!("{context}, maildir a"),
    );
    check(
        fs,
        "/mail/b",
        &bodies[3..],
        &[ok[4]],
        &format!("{context}, maildir b"),
    );
    let files_b = contents(fs, "/mail/b");
    assert!(
        files_b.iter().all(|(_, d)| !bodies[..3].contains(d)),
        "{context}: stray in b"
    );
}

#[test]
fn crash_at_every_operation_of_a_batch() {
    let (fs, a, b) = setup_two();
    let before = fs.ops();
    let ok = run_batch(&a, &b);
    assert!(ok.iter().all(|&x| x));
    let total = fs.ops() - before;

    let mut at_the_flush = Vec::new();
    for n in 0..=total {
        for mode in modes(n) {
            let (fs, a, b) = setup_two();
            fs.crash_after(n);
            let results = run_batch_results(&a, &b);
            let ok: Vec<bool> = results.iter().map(Result::is_ok).collect();
            if n >= total {
                assert!(ok.iter().all(|&x| x));
            } else {
                assert!(!ok.iter().all(|&x| x), "crash at {n} but all reported done");
            }
            if mode == CrashMode::LoseUnsynced
                && all_failed_at_the_flush(&results, "simulated crash during syncfs")
            {
                at_the_flush.push(n);
            }
            fs.recover(mode);
            check_two(&fs, &ok, &format!("crash at {n}/{total} ({mode:?})"));
        }
    }
    // The batch flushes its five files with one operation, and the crash loop went through it
    // (and through the operations just before and after it).
    assert_eq!(at_the_flush.len(), 1, "{at_the_flush:?}");
    assert!(at_the_flush[0] > 0 && at_the_flush[0] < total);
}

#[test]
fn error_at_each_operation_of_a_batch() {
    let (fs, a, b) = setup_two();
    let before = fs.ops();
    run_batch(&a, &b);
    let total = fs.ops() - before;
    let mut steps = Vec::new();
    let mut at_the_flush = 0;
    for n in 0..total {
        let (fs, a, b) = setup_two();
        fs.fail_after(n);
        let results = run_batch_results(&a, &b);
        let ok: Vec<bool> = results.iter().map(Result::is_ok).collect();
        assert!(ok.iter().any(|&x| !x), "failure at {n} not reported");
        for e in results.iter().filter_map(|r| r.as_ref().err()) {
            let text = e.to_string();
            assert!(
                text.contains("/mail/"),
                "failure at {n}: error names no path: {text}"
            );
            if !steps.contains(&e.step()) {
                steps.push(e.step());
            }
        }
        if all_failed_at_the_flush(&results, "injected failure of syncfs") {
            // A failed flush fails every message of the batch: none may be reported done.
            at_the_flush += 1;
        }
        // No crash: what was reported done is there, what failed is not.
        let bodies: Vec<Vec<u8>> = (0..4).map(body).collect();
        let files_a = contents(&fs, "/mail/a");
        for (i, want) in bodies.iter().enumerate() {
            let n_a = files_a.iter().filter(|(_, d)| d == want).count();
            assert_eq!(n_a, usize::from(ok[i]), "failure at {n}: message {i} in a");
        }
        let files_b = contents(&fs, "/mail/b");
        let n_b = files_b.iter().filter(|(_, d)| *d == bodies[3]).count();
        assert_eq!(n_b, usize::from(ok[4]), "failure at {n}: message 3 in b");
        for dir in ["/mail/a/tmp", "/mail/b/tmp"] {
            assert!(
                fs.read_dir(Path::new(dir)).unwrap().is_empty(),
                "failure at {n}: {dir}"
            );
        }
    }
    assert_eq!(at_the_flush, 1, "one flush for the whole batch");
    for step in [
        DeliverStep::Create,
        DeliverStep::Write,
        DeliverStep::SyncFile,
        DeliverStep::Rename,
        DeliverStep::SyncDir,
    ] {
        assert!(
            steps.contains(&step),
            "no injected failure at {step:?}: {steps:?}"
        );
    }
}

#[test]
fn crash_during_flag_change_keeps_one_copy() {
    let (fs, md) = setup(ROOT);
    md.deliver(&body(0)[..]).unwrap();
    let target = |md: &Maildir<SimFs>| {
        md.scan()
            .unwrap()
            .messages
            .into_iter()
            .find(|m| {
                let mut d = Vec::new();
                md.open_message(m).unwrap().read_to_end(&mut d).unwrap();
                d == body(0)
            })
            .unwrap()
    };
    let m = target(&md);
    let before = fs.ops();
    md.add_flags(&m, mailroom_maildir::Flags::SEEN).unwrap();
    let total = fs.ops() - before;
    for n in 0..total {
        for mode in modes(n) {
            let (fs, md) = setup(ROOT);
            md.deliver(&body(0)[..]).unwrap();
            let m = target(&md);
            fs.crash_after(n);
            assert!(md.add_flags(&m, mailroom_maildir::Flags::SEEN).is_err());
            fs.recover(mode);
            check(
                &fs,
                ROOT,
                &[body(0)],
                &[true],
                &format!("flag crash at {n} ({mode:?})"),
            );
        }
    }
}

#[test]
fn crash_while_writing_the_uidlist_leaves_old_or_new() {
    let setup_uids = || {
        let (fs, md) = setup(ROOT);
        let old = md.sync_uids().unwrap();
        md.deliver(&body(1)[..]).unwrap();
        md.deliver(&body(2)[..]).unwrap();
        (fs, md, old)
    };
    let (fs, md, _) = setup_uids();
    let before = fs.ops();
    let new = md.sync_uids().unwrap();
    let total = fs.ops() - before;
    for n in 0..total {
        for mode in modes(n) {
            let (fs, md, old) = setup_uids();
            fs.crash_after(n);
            assert!(md.sync_uids().is_err());
            fs.recover(mode);
            let now = md.read_uidlist().unwrap().expect("the old list at least");
            let same = |a: &mailroom_maildir::UidList, b: &mailroom_maildir::UidList| {
                a.entries().len() == b.entries().len() && a.next_uid == b.next_uid
            };
            assert!(
                same(&now, &old) || same(&now, &new),
                "crash at {n} ({mode:?}): neither old nor new list: {now:?}"
            );
            // A lock left by the crash is stale (old mtime on the simulated clock): taken over.
            let again = md.sync_uids().unwrap();
            assert_eq!(again.entries().len(), 3, "crash at {n} ({mode:?})");
            assert_eq!(again.uid_validity, old.uid_validity);
        }
    }
}
