//! The file-level store: append (separator repair, metadata stripping, rollback), locking
//! (stale dotlocks, timeouts, recovery after a killed appender), rewrite (flags, expunge, mode
//! and owner kept) and errors that name the file.

// Integration test: a failed set-up step should stop the test with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{self, Read};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use mailroom_mbox::lock::dotlock_path;
use mailroom_mbox::{
    Action, Error, Flags, FromLine, LockMethod, LockOptions, Mbox, ReadError, Reader, Variant,
    WriteOptions,
};

fn from() -> FromLine {
    FromLine::parse(b"From a@example.org Sat Jan  3 01:05:34 1996").unwrap()
}

fn bodies(path: &Path, variant: Variant) -> Vec<Vec<u8>> {
    let mut r = Reader::new(std::fs::File::open(path).unwrap(), variant);
    let mut out = Vec::new();
    while let Some(m) = r.next_message(1 << 24).unwrap() {
        out.push(m.body);
    }
    out
}

/// A PID that names no process: a child that has exited and been reaped.
fn dead_pid() -> u32 {
    let mut child = Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    pid
}

#[test]
fn append_repairs_separator_and_strips_metadata() {
    let dir = mailroom_testkit::temp_dir();
    let path = dir.path().join("mbox");
    // A file written by a sloppy program: no blank line at the end, not even a line end.
    std::fs::write(&path, b"From x@y Sat Jan  3 01:05:34 1996\nA: 1\n\nno end").unwrap();
    let mbox = Mbox::new(&path);
    let appended = mbox
        .append(
            &from(),
            &b"Status: RO\nX-Status: D\nX-Keywords: $Seen\nX-UID: 1\nX-IMAP: 1 2\nX-IMAPbase: 1 2\nContent-Length: 1\nSubject: s\n\nbody\n"[..],
        )
        .unwrap();
    let content = std::fs::read(&path).unwrap();
    assert_eq!(
        appended.offset as usize,
        b"From x@y Sat Jan  3 01:05:34 1996\nA: 1\n\nno end\n\n".len()
    );
    assert_eq!(
        &content[appended.offset as usize..],
        b"From a@example.org Wed Jan  3 01:05:34 1996\nSubject: s\n\nbody\n\n"
    );
    assert_eq!(appended.offset + appended.length, content.len() as u64);
    assert_eq!(
        bodies(&path, Variant::Mboxrd),
        vec![b"no end\n".to_vec(), b"body\n".to_vec()]
    );
}

struct FailingReader {
    sent: usize,
}

impl Read for FailingReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.sent > 200_000 {
            return Err(io::Error::other("the sender went away"));
        }
        let n = buf.len().min(1000);
        for (i, b) in buf[..n].iter_mut().enumerate() {
            *b = if i % 50 == 49 { b'\n' } else { b'x' };
        }
        self.sent += n;
        Ok(n)
    }
}

#[test]
fn failed_append_is_rolled_back() {
    let dir = mailroom_testkit::temp_dir();
    let path = dir.path().join("mbox");
    let mbox = Mbox::new(&path).with_write_options(WriteOptions {
        max_message_bytes: 10_000,
    });
    mbox.append(&from(), &b"Subject: 1\n\nfirst\n"[..]).unwrap();
    let before = std::fs::read(&path).unwrap();
    // Too large.
    let err = mbox
        .append(&from(), &[b'x'; 20_000][..])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("message refused: larger than 10000 bytes"),
        "{err}"
    );
    assert!(err.contains(&path.display().to_string()), "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), before);
    // The input fails half way, after many bytes reached the file.
    let mbox = Mbox::new(&path);
    let err = mbox.append(&from(), FailingReader { sent: 0 }).unwrap_err();
    assert!(err.to_string().contains("the sender went away"), "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), before);
    assert!(!dotlock_path(&path).exists());
    mbox.append(&from(), &b"Subject: 2\n\nsecond\n"[..])
        .unwrap();
    assert_eq!(mbox.index().unwrap().len(), 2);
}

#[test]
fn killed_appender_is_rolled_back_by_the_next_locker() {
    let dir = mailroom_testkit::temp_dir();
    let path = dir.path().join("mbox");
    let mbox = Mbox::new(&path);
    mbox.append(&from(), &b"Subject: 1\n\nfirst\n"[..]).unwrap();
    let good = std::fs::read(&path).unwrap();
    // What a killed appender leaves: half a message and its dotlock naming a dead process.
    let mut cut = good.clone();
    cut.extend_from_slice(b"From a@example.org Wed Jan  3 01:05:34 1996\nSubject: 2\n\nhal");
    std::fs::write(&path, &cut).unwrap();
    std::fs::write(
        dotlock_path(&path),
        format!("{}\nmailroom-append {}\n", dead_pid(), good.len()),
    )
    .unwrap();
    drop(mbox.lock().unwrap());
    assert_eq!(std::fs::read(&path).unwrap(), good);

    // When another program appended after the cut message, nothing is truncated.
    let mut cut_then_more = cut.clone();
    cut_then_more.extend_from_slice(
        b"\n\nFrom b@example.org Wed Jan  3 01:05:34 1996\nSubject: 3\n\nthird\n\n",
    );
    std::fs::write(&path, &cut_then_more).unwrap();
    std::fs::write(
        dotlock_path(&path),
        format!("{}\nmailroom-append {}\n", dead_pid(), good.len()),
    )
    .unwrap();
    drop(mbox.lock().unwrap());
    assert_eq!(std::fs::read(&path).unwrap(), cut_then_more);
}

#[test]
fn stale_and_live_dotlocks() {
    let dir = mailroom_testkit::temp_dir();
    let path = dir.path().join("mbox");
    std::fs::write(&path, b"").unwrap();
    let lock_path = dotlock_path(&path);
    let options = LockOptions {
        timeout: Duration::from_millis(300),
        stale_dotlock_after: Duration::from_secs(5),
        ..LockOptions::default()
    };
    let mbox = Mbox::new(&path).with_lock_options(options);
    // Held by a live process (us), fresh: a timeout naming the file and the method.
    std::fs::write(&lock_path, format!("{}\n", std::process::id())).unwrap();
    let err = mbox.lock().unwrap_err();
    assert!(
        matches!(
            err,
            Error::LockTimeout {
                method: "dotlock",
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains(&path.display().to_string()));
    // The same lock, older than stale_dotlock_after: removed.
    let old = std::time::SystemTime::now() - Duration::from_secs(60);
    std::fs::File::options()
        .write(true)
        .open(&lock_path)
        .unwrap()
        .set_modified(old)
        .unwrap();
    let held = mbox.lock().unwrap();
    let content = std::fs::read_to_string(&lock_path).unwrap();
    assert_eq!(content, format!("{}\n", std::process::id()));
    drop(held);
    assert!(!lock_path.exists());
    // A lock naming a dead process: removed at once. An empty one (a locker between create
    // and write) is not stale until it is old.
    std::fs::write(&lock_path, format!("{}\n", dead_pid())).unwrap();
    drop(mbox.lock().unwrap());
    std::fs::write(&lock_path, b"").unwrap();
    assert!(mbox.lock().is_err());
    std::fs::remove_file(&lock_path).unwrap();
}

#[test]
fn fcntl_timeout_then_recovery() {
    let Some(python) = mailroom_testkit::peer("python3") else {
        return;
    };
    let dir = mailroom_testkit::temp_dir();
    let path = dir.path().join("mbox");
    std::fs::write(&path, b"").unwrap();
    // Another process holds the fcntl lock for a second.
    let mut holder = Command::new(python)
        .arg("-c")
        .arg("import fcntl,sys,time\nf=open(sys.argv[1],'ab')\nfcntl.lockf(f,fcntl.LOCK_EX)\nprint('locked',flush=True)\ntime.sleep(1)\n")
        .arg(&path)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = [0u8; 7];
    holder
        .stdout
        .as_mut()
        .unwrap()
        .read_exact(&mut line)
        .unwrap();
    let options = LockOptions {
        methods: vec![LockMethod::Fcntl, LockMethod::Dotlock],
        timeout: Duration::from_millis(200),
        ..LockOptions::default()
    };
    let mbox = Mbox::new(&path).with_lock_options(options);
    let start = Instant::now();
    let err = mbox.append(&from(), &b"A: 1\n\nx\n"[..]).unwrap_err();
    assert!(
        matches!(
            err,
            Error::LockTimeout {
                method: "fcntl",
                ..
            }
        ),
        "{err}"
    );
    assert!(start.elapsed() < Duration::from_millis(900));
    // The abandoned wait keeps this process's claim until it ends; then locking works and
    // the lock really excludes (the holder is gone).
    holder.wait().unwrap();
    let mbox = Mbox::new(&path);
    mbox.append(&from(), &b"A: 1\n\nx\n"[..]).unwrap();
    assert_eq!(bodies(&path, Variant::Mboxrd), vec![b"x\n".to_vec()]);
}

#[test]
fn rewrite_flags_and_expunge_keep_mode_and_owner() {
    let dir = mailroom_testkit::temp_dir();
    let path = dir.path().join("mbox");
    let mbox = Mbox::new(&path);
    for i in 0..5 {
        mbox.append(
            &from(),
            format!("Subject: {i}\n\nFrom body {i}\n>From quoted\n").as_bytes(),
        )
        .unwrap();
    }
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
    let is_root = std::fs::metadata("/proc/self").unwrap().uid() == 0;
    if is_root {
        std::os::unix::fs::chown(&path, Some(65534), Some(65534)).unwrap();
    }
    let before = std::fs::metadata(&path).unwrap();
    let mut n = 0;
    let done = mbox
        .rewrite(|e| {
            n += 1;
            match e.line {
                1 => Action::Expunge,
                _ if n % 2 == 0 => Action::SetFlags(Flags {
                    seen: true,
                    flagged: true,
                    ..Flags::default()
                }),
                _ => Action::Keep,
            }
        })
        .unwrap();
    assert_eq!(done.expunged, 1);
    assert_eq!(done.flags_changed, 2);
    assert!(done.replaced);
    let after = std::fs::metadata(&path).unwrap();
    assert_eq!(after.mode(), before.mode());
    assert_eq!((after.uid(), after.gid()), (before.uid(), before.gid()));
    assert_ne!(
        after.ino(),
        before.ino(),
        "a new file renamed over the old one"
    );
    let index = mbox.index().unwrap();
    assert_eq!(index.len(), 4);
    let file = std::fs::File::open(&path).unwrap();
    for (i, entry) in index.entries().iter().enumerate() {
        let m = index.read_message(&file, i, 1 << 20).unwrap();
        assert_eq!(
            m.body,
            format!("From body {}\n>From quoted\n", i + 1).as_bytes(),
            "bodies untouched"
        );
        assert_eq!(entry.flags, Flags::from_headers(&m.info.headers));
    }
    // Only the changed messages changed; clearing flags works; nothing left behind.
    let flagged = index.entries().iter().filter(|e| e.flags.flagged).count();
    assert!(flagged > 0 && flagged < 4, "{flagged}");
    mbox.rewrite(|_| Action::SetFlags(Flags::default()))
        .unwrap();
    assert!(
        mbox.index()
            .unwrap()
            .entries()
            .iter()
            .all(|e| e.flags == Flags::default())
    );
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers, vec![std::ffi::OsString::from("mbox")]);
}

#[test]
fn content_length_variants_through_the_store() {
    for variant in [Variant::Mboxcl, Variant::Mboxcl2] {
        let dir = mailroom_testkit::temp_dir();
        let path = dir.path().join("mbox");
        let mbox = Mbox::new(&path).with_variant(variant);
        let body = b"From a@b Sat Jan  3 01:05:34 1996\nsmuggled?\n\n";
        let mut message = b"Content-Length: 3\nSubject: cl\n\n".to_vec();
        message.extend_from_slice(body);
        mbox.append(&from(), &message[..]).unwrap();
        mbox.append(&from(), &b"Subject: 2\n\nsecond\n"[..])
            .unwrap();
        let got = bodies(&path, variant);
        assert_eq!(got, vec![body.to_vec(), b"second\n".to_vec()], "{variant}");
        let index = mbox.index().unwrap();
        assert_eq!(index.len(), 2);
    }
}

#[test]
fn unreadable_file_errors_name_the_file_and_line() {
    let dir = mailroom_testkit::temp_dir();
    let path = dir.path().join("mbox");
    std::fs::write(
        &path,
        b"From a@b Sat Jan  3 01:05:34 1996\nA: 1\n\nok\n\n\x00garbage\n",
    )
    .unwrap();
    // Junk after a blank line is body text in mboxrd; junk at the start is not.
    assert_eq!(Mbox::new(&path).index().unwrap().len(), 1);
    std::fs::write(
        &path,
        b"junk\nFrom a@b Sat Jan  3 01:05:34 1996\nA: 1\n\nok\n",
    )
    .unwrap();
    let err = Mbox::new(&path).index().unwrap_err();
    assert!(matches!(
        err,
        Error::Read {
            source: ReadError::MissingFromLine { line: 1, offset: 0 },
            ..
        }
    ));
    assert_eq!(
        err.to_string(),
        format!(
            "{}: line 1 (byte 0): expected a From_ line (\"From sender date\")",
            path.display()
        )
    );
    // A rewrite refuses such a file rather than drop what it could not read.
    assert!(Mbox::new(&path).rewrite(|_| Action::Expunge).is_err());
    assert!(std::fs::read(&path).unwrap().starts_with(b"junk\n"));
    // Cut mid-message.
    std::fs::write(&path, b"From a@b Sat Jan  3 01:05:34 1996\nA: 1\n\nhal").unwrap();
    let err = Mbox::new(&path).index().unwrap_err().to_string();
    assert!(
        err.ends_with("line 4 (byte 43): the file ends in the middle of the message at byte 0"),
        "{err}"
    );
}
