//! Postfix as the LMTP client of our Maildir MDA (`examples/lmtp_maildir.rs`): a private
//! Postfix with `virtual_transport = lmtp:inet:127.0.0.1:PORT` receives 100 messages over SMTP,
//! each to three recipients of whom one is over quota. Every Maildir must hold exactly what it
//! should, and Postfix must bounce only the over-quota recipient (its log says so, and the
//! bounces reach the sender's Maildir through the same LMTP server).

// Integration test: a failed step should stop the test with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../examples/lmtp_maildir.rs"]
#[allow(dead_code, unreachable_pub)]
mod lmtp_maildir;

use std::collections::BTreeSet;
use std::io::Read;
use std::path::Path;
use std::time::{Duration, Instant};

use mailroom::lmtp::Listener;
use mailroom::maildir::{Maildir, QuotaLimit};
use mailroom_testkit::postfix::{Postfix, send_smtp};

const MESSAGES: usize = 100;

fn contents(maildir: &Path) -> Vec<String> {
    let maildir = Maildir::open(maildir).unwrap();
    let scan = maildir.scan().unwrap();
    scan.messages
        .iter()
        .map(|m| {
            let mut s = String::new();
            maildir
                .open_message(m)
                .unwrap()
                .read_to_string(&mut s)
                .unwrap();
            s
        })
        .collect()
}

fn count(maildir: &Path) -> usize {
    Maildir::open(maildir)
        .map(|m| m.scan().unwrap().messages.len())
        .unwrap_or(0)
}

#[test]
fn postfix_delivers_through_our_lmtp_mda() {
    let base = tempfile::tempdir().unwrap();
    let domain = base.path().join("example.test");
    for user in ["alice", "bob", "full", "sender"] {
        std::fs::create_dir_all(domain.join(user)).unwrap();
    }
    let full = Maildir::create(domain.join("full/Maildir")).unwrap();
    full.set_quota_limit(QuotaLimit {
        bytes: Some(100),
        messages: None,
    })
    .unwrap();

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let port = listener.local_addr().unwrap().port();
    let mda = lmtp_maildir::mda(base.path(), None);
    runtime.spawn(lmtp_maildir::serve(
        mda,
        Listener::from(listener),
        std::future::pending(),
    ));

    let Some(postfix) = Postfix::builder()
        .main_cf("virtual_mailbox_domains", "example.test")
        .main_cf("virtual_mailbox_maps", "texthash:{conf}/vmailbox")
        .main_cf("virtual_transport", &format!("lmtp:inet:127.0.0.1:{port}"))
        .table(
            "vmailbox",
            "alice@example.test x\nbob@example.test x\nfull@example.test x\nsender@example.test x\n",
        )
        .start()
    else {
        return;
    };

    let started = Instant::now();
    std::thread::scope(|s| {
        for t in 0..4 {
            let addr = postfix.addr();
            s.spawn(move || {
                for n in (t..MESSAGES).step_by(4) {
                    let message = format!(
                        "From: sender@example.test\r\nTo: alice@example.test\r\nSubject: message {n}\r\n\
                         Message-Id: <{n}@test.example>\r\n\r\nbody of message {n}\r\n.a line with a leading dot\r\n"
                    );
                    send_smtp(
                        addr,
                        "sender@example.test",
                        &["alice@example.test", "bob@example.test", "full@example.test"],
                        message.as_bytes(),
                    )
                    .unwrap();
                }
            });
        }
    });
    // Wait for the deliveries and the bounces (which go to sender@ through our MDA too).
    let sender = domain.join("sender/Maildir");
    while count(&sender) < MESSAGES {
        assert!(
            started.elapsed() < Duration::from_secs(50),
            "bounces did not all arrive ({} of {MESSAGES}); log:\n{}",
            count(&sender),
            postfix.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    postfix.wait_for_empty_queue(Duration::from_secs(20));

    for user in ["alice", "bob"] {
        let messages = contents(&domain.join(user).join("Maildir"));
        assert_eq!(messages.len(), MESSAGES, "{user}");
        let mut seen = BTreeSet::new();
        for m in &messages {
            let n: usize = m
                .split("Subject: message ")
                .nth(1)
                .and_then(|r| r.split("\r\n").next())
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("no subject in {m}"));
            assert!(
                m.ends_with(&format!(
                    "\r\n\r\nbody of message {n}\r\n.a line with a leading dot\r\n"
                )),
                "{user}: {m}"
            );
            assert!(seen.insert(n), "{user} got message {n} twice");
        }
        assert_eq!(seen.len(), MESSAGES);
    }
    assert_eq!(
        count(&domain.join("full/Maildir")),
        0,
        "over quota: nothing delivered"
    );
    let bounces = contents(&sender);
    assert_eq!(bounces.len(), MESSAGES);
    for b in &bounces {
        assert!(b.contains("full@example.test"), "{b}");
        assert!(b.contains("5.2.2"), "{b}");
        assert!(!b.contains("Final-Recipient: rfc822; alice@"), "{b}");
    }

    let log = postfix.log();
    let status = |s: &str| log.lines().filter(|l| l.contains(s)).collect::<Vec<_>>();
    let bounced = status("status=bounced");
    assert_eq!(bounced.len(), MESSAGES, "{log}");
    assert!(
        bounced
            .iter()
            .all(|l| l.contains("to=<full@example.test>") && l.contains("552 5.2.2"))
    );
    assert!(status("status=deferred").is_empty(), "{log}");
    let sent = status("status=sent");
    for user in ["alice", "bob", "sender"] {
        let n = sent
            .iter()
            .filter(|l| l.contains(&format!("to=<{user}@example.test>")))
            .count();
        assert_eq!(n, MESSAGES, "{user}: {log}");
    }
    eprintln!(
        "100 messages x 3 recipients through Postfix and our LMTP MDA in {:?}",
        started.elapsed()
    );
}
