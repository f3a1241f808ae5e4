//! Real IMAP clients against the IMAP server (src/server/imap/): mbsync (isync) synchronising
//! 1,000 messages both ways, and neomutt driven in tmux. The server runs in-process on
//! 127.0.0.1; the clients are started by the tests.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mailroom::maildir::{Batch, Flags, Maildir};
use mailroom::server::imap::{ImapConfig, StaticUsers, serve};

/// Starts a plaintext listener (plaintext authentication allowed: loopback test) for `alice`
/// / `secret` with its Maildir at `maildir`; returns the port.
fn start(maildir: &Path) -> u16 {
    let users = Arc::new(StaticUsers::new().with_user("alice", "secret", maildir));
    let mut config = ImapConfig::new(users, None);
    config.disable_plaintext_auth = false;
    let config = Arc::new(config);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            listener.set_nonblocking(true).unwrap();
            let l = tokio::net::TcpListener::from_std(listener).unwrap();
            let _ = serve(l, config, false).await;
        });
    });
    mailroom_testkit::wait_for_port(
        std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_secs(5),
    );
    port
}

fn fill(maildir: &Path, n: usize) {
    std::fs::create_dir_all(maildir.parent().unwrap()).unwrap();
    let md = Maildir::create(maildir).unwrap();
    let bodies: Vec<Vec<u8>> = (0..n)
        .map(|i| {
            format!(
                "From: sender{i}@example.test\r\nTo: alice@example.test\r\nSubject: message {i}\r\n\
                 Message-ID: <{i}@example.test>\r\n\r\nbody of message {i}\r\n"
            )
            .into_bytes()
        })
        .collect();
    let mut batch = Batch::new();
    for b in &bodies {
        batch.add(&md, &b[..]);
    }
    for r in batch.commit() {
        r.unwrap();
    }
}

/// Messages of a Maildir: (Message-ID line, flags) sorted.
fn state(maildir: &Path) -> Vec<(String, String)> {
    let md = Maildir::open(maildir).unwrap();
    let mut out: Vec<(String, String)> = md
        .scan()
        .unwrap()
        .messages
        .iter()
        .map(|m| {
            let text = std::fs::read_to_string(md.message_path(m)).unwrap();
            let id = text
                .lines()
                .find(|l| l.to_ascii_lowercase().starts_with("message-id:"))
                .unwrap_or("")
                .trim()
                .to_owned();
            // Only the flags both sides carry (mbsync keeps S, F, R, D, T).
            let f = m.flags();
            let mut letters = String::new();
            for (bit, l) in [
                (Flags::DRAFT, 'D'),
                (Flags::FLAGGED, 'F'),
                (Flags::REPLIED, 'R'),
                (Flags::SEEN, 'S'),
                (Flags::TRASHED, 'T'),
            ] {
                if f.contains(bit) {
                    letters.push(l);
                }
            }
            (id, letters)
        })
        .collect();
    out.sort();
    out
}

fn mbsync(mbsync: &Path, config: &Path) {
    let out = Command::new(mbsync)
        .arg("-c")
        .arg(config)
        .arg("-a")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "mbsync failed\nstdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.to_ascii_lowercase().contains("error"),
        "mbsync reported: {stderr}"
    );
}

#[test]
fn mbsync_synchronises_1000_messages_both_ways() {
    let Some(program) = mailroom_testkit::peer("mbsync") else {
        return;
    };
    let dir = mailroom_testkit::temp_dir();
    let server = dir.path().join("server").join("Maildir");
    fill(&server, 1000);
    let port = start(&server);
    let local = dir.path().join("local");
    std::fs::create_dir_all(&local).unwrap();
    let config = dir.path().join("mbsyncrc");
    std::fs::write(
        &config,
        format!(
            "IMAPAccount test\nHost 127.0.0.1\nPort {port}\nUser alice\nPass secret\n\
             SSLType None\nAuthMechs LOGIN\n\n\
             IMAPStore remote\nAccount test\n\n\
             MaildirStore near\nPath {local}/\nInbox {local}/INBOX\nSubFolders Verbatim\n\n\
             Channel test\nFar :remote:\nNear :near:\nPatterns INBOX\nCreate Both\n\
             Expunge Both\nSyncState *\nSync All\n",
            local = local.display()
        ),
    )
    .unwrap();
    let started = Instant::now();
    mbsync(&program, &config);
    eprintln!("first mbsync of 1,000 messages: {:?}", started.elapsed());
    let inbox = local.join("INBOX");
    assert_eq!(state(&inbox).len(), 1000);
    assert_eq!(state(&inbox), state(&server));

    // Local changes: a flag, a new message, a deletion.
    let near = Maildir::open(&inbox).unwrap();
    let mut messages = near.scan().unwrap().messages;
    messages.sort_by(|a, b| a.key().as_str().cmp(b.key().as_str()));
    near.add_flags(&messages[10], Flags::FLAGGED.union(Flags::SEEN))
        .unwrap();
    near.add_flags(&messages[20], Flags::TRASHED).unwrap();
    near.deliver(&b"From: alice@example.test\r\nSubject: new local\r\nMessage-ID: <local@example.test>\r\n\r\nnew\r\n"[..])
        .unwrap();
    // And a change on the server side: a flag set there.
    let far = Maildir::open(&server).unwrap();
    let mut on_server = far.scan().unwrap().messages;
    on_server.sort_by(|a, b| a.key().as_str().cmp(b.key().as_str()));
    far.add_flags(&on_server[30], Flags::REPLIED).unwrap();

    mbsync(&program, &config);
    let (near_state, far_state) = (state(&inbox), state(&server));
    assert_eq!(near_state.len(), 1000, "1,000 + 1 new - 1 deleted");
    assert_eq!(near_state, far_state);
    assert!(
        far_state
            .iter()
            .any(|(id, _)| id.contains("local@example.test"))
    );
    assert!(far_state.iter().any(|(_, f)| f == "FS"));
    assert!(near_state.iter().any(|(_, f)| f == "R"));
    assert!(!far_state.iter().any(|(_, f)| f.contains('T')));
    // A third run finds nothing to do and changes nothing.
    mbsync(&program, &config);
    assert_eq!(state(&inbox), far_state);
    assert_eq!(state(&server), far_state);
}

/// Runs tmux on a private socket.
fn tmux(tmux: &Path, socket: &str, args: &[&str]) -> String {
    let out = Command::new(tmux)
        .arg("-L")
        .arg(socket)
        .args(args)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn wait_for_screen(program: &Path, socket: &str, text: &str) -> String {
    let start = Instant::now();
    loop {
        let screen = tmux(program, socket, &["capture-pane", "-p", "-t", "mutt"]);
        if screen.contains(text) {
            return screen;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "`{text}` never appeared; the screen:\n{screen}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn neomutt_in_tmux_logs_in_lists_and_opens_a_message() {
    let Some([neomutt, tmux_path]) = mailroom_testkit::peers(&["neomutt", "tmux"])
        .map(|v| <[std::path::PathBuf; 2]>::try_from(v).unwrap())
    else {
        return;
    };
    let dir = mailroom_testkit::temp_dir();
    let server = dir.path().join("server").join("Maildir");
    fill(&server, 3);
    let port = start(&server);
    let muttrc = dir.path().join("muttrc");
    std::fs::write(
        &muttrc,
        format!(
            "set folder=\"imap://127.0.0.1:{port}/\"\nset spoolfile=\"+INBOX\"\n\
             set imap_user=alice\nset imap_pass=secret\n\
             set ssl_starttls=no\nset ssl_force_tls=no\nset imap_check_subscribed=no\n\
             set header_cache=\"\"\nset message_cachedir=\"\"\nset sort=date\n\
             set pager_index_lines=0\nset help=no\nset wait_key=no\nset move=no\nset quit=yes\n"
        ),
    )
    .unwrap();
    let socket = format!("mailroom-imap-test-{}", std::process::id());
    let command = format!(
        "HOME={home} TERM=xterm {neomutt} -n -F {muttrc}",
        home = dir.path().display(),
        neomutt = neomutt.display(),
        muttrc = muttrc.display()
    );
    tmux(
        &tmux_path,
        &socket,
        &[
            "new-session",
            "-d",
            "-s",
            "mutt",
            "-x",
            "160",
            "-y",
            "40",
            &command,
        ],
    );
    let result = std::panic::catch_unwind(|| {
        // The index lists the INBOX.
        let screen = wait_for_screen(&tmux_path, &socket, "message 2");
        assert!(
            screen.contains("message 0") && screen.contains("message 1"),
            "{screen}"
        );
        // Open the selected message.
        tmux(&tmux_path, &socket, &["send-keys", "-t", "mutt", "Enter"]);
        wait_for_screen(&tmux_path, &socket, "body of message");
        tmux(&tmux_path, &socket, &["send-keys", "-t", "mutt", "q"]);
        tmux(&tmux_path, &socket, &["send-keys", "-t", "mutt", "q"]);
        // neomutt writes the \Seen flag back when it leaves the mailbox; wait until it exits.
        let start = Instant::now();
        while tmux(&tmux_path, &socket, &["list-sessions"]).contains("mutt") {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "neomutt did not quit"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    tmux(&tmux_path, &socket, &["kill-server"]);
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
    // Opening the message set \Seen on the server.
    assert!(state(&server).iter().any(|(_, f)| f == "S"));
}
