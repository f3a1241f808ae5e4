//! Our client against Dovecot's LMTP server (started by the test, passwd-file users): known
//! and unknown recipients in one transaction get their own outcomes, several messages share a
//! connection, TCP and Unix socket, and `doveadm fetch` shows what was delivered.

// Integration test: a failed step should stop the test with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use mailroom_lmtp::{Address, Client, ClientOptions, Outcome};
use mailroom_smtp_proto::client::Stage;
use mailroom_smtp_proto::{ForwardPath, Mailbox, ReversePath};
use mailroom_testkit::dovecot::Dovecot;

fn path(s: &str) -> ForwardPath {
    ForwardPath::from(s.parse::<Mailbox>().unwrap())
}

async fn deliver_rounds(address: &Address, tag: &str) {
    let mut client = Client::connect(address, ClientOptions::default())
        .await
        .unwrap();
    let from = ReversePath::from("sender@example.org".parse::<Mailbox>().unwrap());
    for round in 0..3 {
        let message = format!(
            "From: sender@example.org\r\nSubject: {tag} {round}\r\n\r\nhello {round}\r\n.dot\r\n"
        );
        let results = client
            .deliver(
                from.clone(),
                [
                    path("alice@example.test"),
                    path("nobody@example.test"),
                    path("bob@example.test"),
                ],
                message.as_bytes(),
            )
            .await
            .unwrap();
        let got: Vec<(Outcome, u16, Stage)> = results
            .iter()
            .map(|r| (r.outcome, r.reply.code().get(), r.stage))
            .collect();
        assert_eq!(
            got,
            [
                (Outcome::Delivered, 250, Stage::Data),
                (Outcome::PermanentFailure, 550, Stage::Rcpt),
                (Outcome::Delivered, 250, Stage::Data),
            ],
            "{results:#?}"
        );
        // Dovecot's reply names the unknown user with 5.1.1.
        assert!(
            results[1].reply.to_string().contains("5.1.1"),
            "{}",
            results[1].reply
        );
    }
    client.quit().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliver_to_dovecot_over_tcp_and_unix() {
    let Some(dovecot) = Dovecot::builder()
        .user("alice", "secret")
        .user("bob", "secret")
        .with_lmtp()
        .start()
    else {
        return;
    };
    let tcp = Address::Tcp(dovecot.lmtp_addr().unwrap().to_string());
    deliver_rounds(&tcp, "tcp").await;
    let unix = Address::Unix(dovecot.dir().join("base/lmtp"));
    deliver_rounds(&unix, "unix").await;

    for user in ["alice", "bob"] {
        let out = dovecot.doveadm_ok(
            &[
                "fetch",
                "-u",
                user,
                "hdr.subject body",
                "mailbox",
                "INBOX",
                "all",
            ],
            None,
        );
        for tag in ["tcp", "unix"] {
            for round in 0..3 {
                assert!(
                    out.contains(&format!("hdr.subject: {tag} {round}")),
                    "{user}: {out}"
                );
                assert!(out.contains(&format!("hello {round}")), "{user}: {out}");
            }
        }
        // The line that starts with a dot went out stuffed and was unstuffed by Dovecot.
        assert!(out.contains("\n.dot"), "{out}");
        assert!(!out.contains("..dot"), "{out}");
        let count = dovecot.doveadm_ok(&["search", "-u", user, "mailbox", "INBOX", "all"], None);
        assert_eq!(count.lines().count(), 6, "{user}: {count}");
    }
}
