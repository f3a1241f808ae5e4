//! Acceptance 2: our appender and a concurrent appender in another program (Python, taking
//! `fcntl.lockf` and then a `.lock` file created with `O_EXCL`, as Debian Policy asks) each
//! append 1,000 messages to one file: 2,000 intact messages, none interleaved.

// Integration test: a failed set-up step should stop the test with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::process::{Command, Stdio};

use mailroom_mbox::{FromLine, Mbox, Reader, Variant};

const PY_APPENDER: &str = r#"
import fcntl, os, sys, time
path, n = sys.argv[1], int(sys.argv[2])
lock = path + ".lock"
for i in range(n):
    with open(path, "ab") as f:
        fcntl.lockf(f, fcntl.LOCK_EX)
        while True:
            try:
                fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
                os.write(fd, b"%d\n" % os.getpid())
                os.close(fd)
                break
            except FileExistsError:
                time.sleep(0.0005)
        body = b"".join(b"python %d line %d\n" % (i, k) for k in range(20))
        # Written in several pieces, so that an unlocked writer would interleave.
        f.write(b"From py@example.org Sat Jan  3 01:05:34 1996\n")
        f.flush()
        f.write(b"X-Seq: python-%d\n\n" % i)
        f.flush()
        f.write(body + b"\n")
        f.flush()
        os.fsync(f.fileno())
        os.unlink(lock)
        fcntl.lockf(f, fcntl.LOCK_UN)
"#;

const N: usize = 1000;

fn body(who: &str, i: usize) -> Vec<u8> {
    (0..20)
        .map(|k| format!("{who} {i} line {k}\n"))
        .collect::<String>()
        .into_bytes()
}

#[test]
fn concurrent_appenders_never_interleave() {
    let Some(python) = mailroom_testkit::peer("python3") else {
        return;
    };
    let dir = mailroom_testkit::temp_dir();
    let path = dir.path().join("mbox");
    std::fs::write(&path, b"").unwrap();
    let mut child = Command::new(python)
        .arg("-c")
        .arg(PY_APPENDER)
        .arg(&path)
        .arg(N.to_string())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mbox = Mbox::new(&path);
    let from = FromLine::parse(b"From rust@example.org Sat Jan  3 01:05:34 1996").unwrap();
    for i in 0..N {
        let mut message = format!("X-Seq: rust-{i}\n\n").into_bytes();
        message.extend_from_slice(&body("rust", i));
        mbox.append(&from, &message[..]).unwrap();
    }
    assert!(child.wait().unwrap().success());

    let mut reader = Reader::new(std::fs::File::open(&path).unwrap(), Variant::Mboxrd);
    let mut seen = HashSet::new();
    let mut last_writer = String::new();
    let mut switches = 0;
    while let Some(m) = reader.next_message(1 << 20).unwrap() {
        let seq = String::from_utf8(m.info.headers.get("x-seq").unwrap().to_vec()).unwrap();
        let (who, i) = seq.split_once('-').unwrap();
        let i: usize = i.parse().unwrap();
        assert_eq!(
            String::from_utf8_lossy(&m.body),
            String::from_utf8_lossy(&body(who, i)),
            "{seq} at byte {}",
            m.info.offset
        );
        assert!(seen.insert(seq.clone()), "{seq} twice");
        if who != last_writer {
            switches += 1;
            last_writer = who.to_string();
        }
    }
    assert_eq!(seen.len(), 2 * N);
    // The two really ran at the same time (otherwise this test would prove nothing).
    assert!(
        switches > 10,
        "only {switches} alternations between the writers"
    );
    eprintln!("{switches} alternations between the two appenders");
    assert!(!mailroom_mbox::lock::dotlock_path(&path).exists());
}

#[test]
fn threads_of_one_process_exclude_each_other_with_fcntl_only() {
    // fcntl locks do not exclude threads of one process; the process-wide table does.
    let dir = mailroom_testkit::temp_dir();
    let path = dir.path().join("mbox");
    let options = mailroom_mbox::LockOptions {
        methods: vec![mailroom_mbox::LockMethod::Fcntl],
        ..Default::default()
    };
    std::thread::scope(|s| {
        for t in 0..4 {
            let path = &path;
            let options = options.clone();
            s.spawn(move || {
                let mbox = Mbox::new(path).with_lock_options(options);
                let from = FromLine::now(b"t@example.org").unwrap();
                for i in 0..50 {
                    let mut message = format!("X-Seq: t{t}-{i}\n\n").into_bytes();
                    message.extend_from_slice(&body(&format!("t{t}"), i));
                    mbox.append(&from, &message[..]).unwrap();
                }
            });
        }
    });
    let index = Mbox::new(&path).index().unwrap();
    assert_eq!(index.len(), 200);
}
