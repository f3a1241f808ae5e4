//! Load tests of the reference server (`examples/server.rs`) on loopback:
//!
//! - acceptance 2: Postfix's `smtp-source` sends 2,000 messages over 20 sessions to local users;
//!   every one is delivered once (2,000 files in the Maildirs, 2,000 distinct queue IDs sent);
//! - acceptance 7: a Python client sends 2,000 numbered messages over 20 connections while the
//!   server is killed with SIGKILL; after a restart every message that got `250` is in the
//!   Maildir; duplicates (delivered, then the kill came before the queue recorded it) are
//!   counted and printed, none is lost.

// Test code: a failed set-up step should stop the test with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Running, example_binary, start_server};

/// Starts the server on `port` with its data in `dir/data`; returns once the banner is read.
fn start(dir: &Path, port: u16) -> Running {
    start_env(dir, port, &[])
}

/// As [`start`], with more environment variables.
fn start_env(dir: &Path, port: u16, env: &[(&str, String)]) -> Running {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("server.log"))
        .unwrap();
    let mut command = Command::new(example_binary());
    command
        .env("MAILROOM_DATA", dir.join("data"))
        .env("MAILROOM_SMTP_LISTEN", format!("127.0.0.1:{port}"))
        .env("MAILROOM_SUBMISSION_LISTEN", "")
        .env("MAILROOM_SUBMISSIONS_LISTEN", "")
        .env("MAILROOM_IMAP_LISTEN", "")
        .env("MAILROOM_IMAPS_LISTEN", "")
        .env("MAILROOM_LMTP_LISTEN", "")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stderr(log);
    start_server(command).0
}

/// Adds local users to the passwd-file the first start made.
fn add_users(dir: &Path, users: &[&str]) {
    let passwd = dir.join("data").join("passwd");
    let mut text = std::fs::read_to_string(&passwd).unwrap();
    for u in users {
        let home = dir.join("data").join("home").join(u);
        text.push_str(&format!(
            "{u}@localhost:{{PLAIN}}pw::::{}::\n",
            home.display()
        ));
    }
    std::fs::write(passwd, text).unwrap();
}

fn maildir_files(dir: &Path, user: &str) -> Vec<PathBuf> {
    let new = dir.join("data/home").join(user).join("Maildir/new");
    std::fs::read_dir(new)
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default()
}

#[test]
fn smtp_source_2000_messages_over_20_sessions_all_delivered_once() {
    let Some(source) = mailroom_testkit::peer("smtp-source") else {
        return;
    };
    let dir = mailroom_testkit::temp_dir();
    let port = mailroom_testkit::free_port();
    // First start makes the data directory; add users, then start for real.
    drop(start(dir.path(), port));
    add_users(dir.path(), &["alice", "bob"]);
    let _server = start(dir.path(), port);
    let mut senders = Vec::new();
    for (user, n) in [("demo", 1000), ("alice", 500), ("bob", 500)] {
        let source = source.clone();
        senders.push(std::thread::spawn(move || {
            let sessions = if user == "demo" { "10" } else { "5" };
            let out = Command::new(source)
                .args(["-s", sessions, "-m", &n.to_string(), "-l", "1024"])
                .args([
                    "-f",
                    "sender@example.com",
                    "-t",
                    &format!("{user}@localhost"),
                ])
                .arg(format!("127.0.0.1:{port}"))
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "smtp-source: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }));
    }
    for s in senders {
        s.join().unwrap();
    }
    let expected = [("demo", 1000), ("alice", 500), ("bob", 500)];
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let counts: Vec<usize> = expected
            .iter()
            .map(|(u, _)| maildir_files(dir.path(), u).len())
            .collect();
        if counts.iter().zip(&expected).all(|(c, (_, n))| c >= n) {
            break;
        }
        assert!(Instant::now() < deadline, "delivered so far: {counts:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
    // Let any duplicate show up, then count exactly.
    std::thread::sleep(Duration::from_millis(500));
    for (u, n) in expected {
        assert_eq!(maildir_files(dir.path(), u).len(), n, "{u}");
    }
    let log = std::fs::read_to_string(dir.path().join("server.log")).unwrap();
    let sent: HashSet<&str> = log
        .lines()
        .filter(|l| l.contains("status=sent"))
        .filter_map(|l| l.split_whitespace().nth(2))
        .collect();
    assert_eq!(sent.len(), 2000);
}

/// The Python client of the kill test: 20 threads send numbered messages, each printing the
/// number of every message that got 250 (flushed at once, so a kill loses no line).
const LOAD_CLIENT: &str = r#"
import smtplib, sys, threading
port, total, threads = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
lock = threading.Lock()
def run(k):
    s = None
    for n in range(k, total, threads):
        try:
            if s is None:
                s = smtplib.SMTP("127.0.0.1", port, timeout=30)
            s.sendmail("load@example.com", ["demo@localhost"],
                       "Subject: load %d\r\nX-Load-Id: %d\r\n\r\n%s\r\n" % (n, n, "x" * 2000))
            with lock:
                sys.stdout.write("%d\n" % n)
                sys.stdout.flush()
        except Exception:
            s = None
ts = [threading.Thread(target=run, args=(k,)) for k in range(threads)]
[t.start() for t in ts]
[t.join() for t in ts]
"#;

#[test]
fn sigkill_under_load_then_restart_loses_no_acknowledged_message() {
    let Some(python) = mailroom_testkit::peer("python3") else {
        return;
    };
    let dir = mailroom_testkit::temp_dir();
    let port = mailroom_testkit::free_port();
    let mut server = start(dir.path(), port);
    let acked_path = dir.path().join("acked.txt");
    let mut client = Command::new(python)
        .arg("-c")
        .arg(LOAD_CLIENT)
        .args([&port.to_string(), "2000", "20"])
        .stdout(std::fs::File::create(&acked_path).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Kill once a good part of the load is acknowledged.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let n = std::fs::read_to_string(&acked_path)
            .unwrap_or_default()
            .lines()
            .count();
        if n >= 600 {
            break;
        }
        assert!(Instant::now() < deadline, "only {n} messages acknowledged");
        std::thread::sleep(Duration::from_millis(20));
    }
    server.0.kill().unwrap(); // SIGKILL
    server.0.wait().unwrap();
    client.wait().unwrap();
    let acked: HashSet<u32> = std::fs::read_to_string(&acked_path)
        .unwrap()
        .lines()
        .map(|l| l.parse().unwrap())
        .collect();
    assert!(acked.len() >= 600 && acked.len() < 2000, "{}", acked.len());

    let _server = start(dir.path(), port);
    let deadline = Instant::now() + Duration::from_secs(120);
    let (seen, dups) = loop {
        let mut seen: HashMap<u32, usize> = HashMap::new();
        for f in maildir_files(dir.path(), "demo") {
            let text = std::fs::read_to_string(f).unwrap();
            if let Some(id) = text
                .lines()
                .find_map(|l| l.strip_prefix("X-Load-Id: "))
                .and_then(|v| v.trim().parse().ok())
            {
                *seen.entry(id).or_default() += 1;
            }
        }
        let missing = acked.iter().filter(|n| !seen.contains_key(n)).count();
        let dups: usize = seen.values().map(|c| c - 1).sum();
        if missing == 0 {
            break (seen, dups);
        }
        assert!(
            Instant::now() < deadline,
            "{missing} acknowledged messages missing after the restart"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    println!(
        "kill test: {} acknowledged, {} delivered (some unacknowledged ones were queued before the kill), {dups} duplicates",
        acked.len(),
        seen.len()
    );
}

#[test]
fn sendmail_while_stopped_then_start_delivers() {
    let dir = mailroom_testkit::temp_dir();
    let port = mailroom_testkit::free_port();
    // First start makes the data directory and the demo user; SIGTERM stops it gracefully.
    let server = start(dir.path(), port);
    let pid = server.0.id().to_string();
    let status = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(status.success());
    let mut server = server;
    let exit = server.0.wait().unwrap();
    assert!(exit.success(), "graceful stop: {exit:?}");

    let sendmail = example_binary().with_file_name("sendmail");
    let mut child = Command::new(&sendmail)
        .env("MAILROOM_DATA", dir.path().join("data"))
        .args(["-t", "-i", "-f", "root@localhost", "-F", "Charlie Root"])
        .stdin(Stdio::piped())
        .spawn()
        .expect("run the sendmail example (built by cargo test)");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"To: Demo <demo@localhost>\nBcc: postmaster@localhost\nSubject: while stopped\n\nfirst line\n.\nafter the dot\n")
        .unwrap();
    assert!(child.wait().unwrap().success());
    let dropped: Vec<_> = std::fs::read_dir(dir.path().join("data/maildrop"))
        .unwrap()
        .collect();
    assert_eq!(dropped.len(), 1);

    let _server = start(dir.path(), port);
    let deadline = Instant::now() + Duration::from_secs(20);
    let files = loop {
        let f = maildir_files(dir.path(), "demo");
        if f.len() >= 2 || Instant::now() > deadline {
            break f;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    // To: demo, and Bcc: postmaster (an alias of demo): two deliveries, neither shows Bcc.
    assert_eq!(files.len(), 2);
    let text = std::fs::read_to_string(&files[0]).unwrap();
    assert!(
        text.starts_with("Return-Path: <root@localhost>\r\n"),
        "{text}"
    );
    assert!(
        text.contains("From: \"Charlie Root\" <root@localhost>\r\n"),
        "{text}"
    );
    assert!(text.contains("Subject: while stopped\r\n"), "{text}");
    assert!(!text.contains("Bcc:"), "{text}");
    // -i: the lone dot is content, not the end.
    assert!(
        text.ends_with("\r\nfirst line\r\n.\r\nafter the dot\r\n"),
        "{text}"
    );
    assert!(!std::fs::read_to_string(&files[1]).unwrap().contains("Bcc:"));
    // The maildrop file is gone once queued.
    assert_eq!(
        std::fs::read_dir(dir.path().join("data/maildrop"))
            .unwrap()
            .filter(|e| e.as_ref().unwrap().file_type().unwrap().is_file())
            .count(),
        0
    );
}

/// `queue list|hold|delete` on the queue of a stopped server; refused while it runs.
#[test]
fn queue_administration_on_a_stopped_server() {
    let Some(python) = mailroom_testkit::peer("python3") else {
        return;
    };
    let dir = mailroom_testkit::temp_dir();
    let port = mailroom_testkit::free_port();
    let dead = mailroom_testkit::free_port();
    let admin = |args: &[&str]| {
        Command::new(example_binary())
            .env("MAILROOM_DATA", dir.path().join("data"))
            .args(args)
            .output()
            .unwrap()
    };
    // Relay to a port nobody listens on: the message stays deferred.
    let relayhost = [("MAILROOM_RELAYHOST", format!("[127.0.0.1]:{dead}"))];
    let mut server = start_env(dir.path(), port, &relayhost);
    let out = Command::new(python)
        .arg("-c")
        .arg(format!(
            "import smtplib\ns = smtplib.SMTP('127.0.0.1', {port})\ns.sendmail('demo@localhost', ['x@remote.example'], 'Subject: stuck\\r\\n\\r\\nx\\r\\n')\ns.quit()"
        ))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let busy = admin(&["queue", "list"]);
    assert!(!busy.status.success());
    assert!(
        String::from_utf8_lossy(&busy.stderr).contains("stop it first"),
        "{busy:?}"
    );
    let pid = server.0.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    assert!(server.0.wait().unwrap().success());

    let list = admin(&["queue", "list"]);
    let text = String::from_utf8_lossy(&list.stdout).to_string();
    assert!(list.status.success(), "{list:?}");
    assert!(
        text.contains("x@remote.example") && text.contains("-- 1 messages"),
        "{text}"
    );
    let id = text.split_whitespace().next().unwrap().to_string();
    assert!(admin(&["queue", "hold", &id]).status.success());
    let text = String::from_utf8_lossy(&admin(&["queue", "list"]).stdout).to_string();
    assert!(text.contains("(hold)"), "{text}");
    let show = admin(&["queue", "show", &id]);
    assert!(String::from_utf8_lossy(&show.stdout).contains("Subject: stuck"));
    assert!(admin(&["queue", "delete", &id]).status.success());
    let text = String::from_utf8_lossy(&admin(&["queue", "list"]).stdout).to_string();
    assert!(text.contains("-- 0 messages"), "{text}");
}
