//! Real clients against the tokio `Server` on 127.0.0.1: Python's smtplib (EHLO, STARTTLS,
//! AUTH PLAIN, a pipelined send to three recipients, a 10 MiB message) and swaks (plain,
//! `--tls`, `--auth PLAIN` and `LOGIN`). The bytes the handler receives must equal those
//! sent. A missing peer is a skip, or a failure with `MAILROOM_REQUIRE_PEERS=1`.

// Tests may unwrap: a failed step should stop the test with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use common::server::{config, start};
use common::tls::self_signed;

/// Runs a peer program to completion (at most a minute), off the async runtime.
async fn run_peer(program: PathBuf, args: Vec<String>) -> Output {
    let run = tokio::task::spawn_blocking(move || {
        std::process::Command::new(&program)
            .args(&args)
            .output()
            .unwrap_or_else(|e| panic!("run {}: {e}", program.display()))
    });
    tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("the peer finishes within a minute")
        .unwrap()
}

fn check(output: &Output, what: &str) {
    assert!(
        output.status.success(),
        "{what} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A message with CRLF lines, lines starting with a period, and 8-bit text.
fn message(body_lines: usize) -> Vec<u8> {
    let mut m =
        b"From: Alice <alice@example.com>\r\nTo: Bob <bob@example.org>\r\nSubject: interop\r\n\r\n"
            .to_vec();
    for i in 0..body_lines {
        match i % 5 {
            0 => m.extend_from_slice(b".a line that starts with a period\r\n"),
            1 => m.extend_from_slice(b"..two periods\r\n"),
            2 => m.extend_from_slice(b".\r\n"),
            3 => m.extend_from_slice("caf\u{e9} \u{2014} 8-bit text\r\n".as_bytes()),
            _ => m.extend_from_slice(format!("line {i} {}\r\n", "x".repeat(60)).as_bytes()),
        }
    }
    m
}

fn write_temp(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path.to_string_lossy().into_owned()
}

const PY_STARTTLS_AUTH_PIPELINED: &str = r#"
import smtplib, ssl, sys
port, path = int(sys.argv[1]), sys.argv[2]
msg = open(path, 'rb').read()
s = smtplib.SMTP('127.0.0.1', port, local_hostname='client.example', timeout=30)
code, _ = s.ehlo()
assert code == 250, code
assert s.has_extn('starttls') and s.has_extn('pipelining'), s.esmtp_features
assert not s.has_extn('auth'), 'AUTH offered before TLS'
s.starttls(context=ssl._create_unverified_context())
s.ehlo()
assert s.has_extn('auth') and not s.has_extn('starttls'), s.esmtp_features
s.login('alice', 'secret')
# smtplib's sendmail waits for each reply; send MAIL and the RCPTs in one write (RFC 2920)
# and read the four replies after.
s.send(b'MAIL FROM:<alice@example.com>\r\nRCPT TO:<a@example.org>\r\n'
       b'RCPT TO:<b@example.org>\r\nRCPT TO:<c@example.org>\r\n')
replies = [s.getreply() for _ in range(4)]
assert [c for c, _ in replies] == [250] * 4, replies
code, text = s.data(msg)
assert code == 250 and text.startswith(b'2.0.0 Ok: queued as '), (code, text)
s.quit()
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_starttls_auth_and_pipelined_three_recipients() {
    let Some(python) = mailroom_testkit::peer("python3") else {
        return;
    };
    let tls = self_signed();
    let server = start(config(), Some(tls.server)).await;
    let dir = mailroom_testkit::temp_dir();
    let msg = message(200);
    let path = write_temp(dir.path(), "msg.eml", &msg);
    let out = run_peer(
        python,
        vec![
            "-c".into(),
            PY_STARTTLS_AUTH_PIPELINED.into(),
            server.addr.port().to_string(),
            path,
        ],
    )
    .await;
    check(&out, "python smtplib");
    let messages = server.handler.messages();
    assert_eq!(messages.len(), 1);
    let m = &messages[0];
    assert_eq!(m.from, "<alice@example.com>");
    assert_eq!(
        m.recipients,
        ["<a@example.org>", "<b@example.org>", "<c@example.org>"]
    );
    assert!(m.tls);
    assert_eq!(m.user.as_deref(), Some("alice"));
    assert_eq!(
        m.content, msg,
        "the handler received other bytes than were sent"
    );
    assert_eq!(m.size, msg.len() as u64);
    server.stop().await;
}

const PY_SENDMAIL: &str = r#"
import smtplib, sys
port, path = int(sys.argv[1]), sys.argv[2]
msg = open(path, 'rb').read()
with smtplib.SMTP('127.0.0.1', port, local_hostname='client.example', timeout=60) as s:
    refused = s.sendmail('alice@example.com', ['bob@example.org'], msg)
    assert refused == {}, refused
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_ten_mib_message() {
    let Some(python) = mailroom_testkit::peer("python3") else {
        return;
    };
    let mut config = config();
    config.max_message_size = Some(20 * 1024 * 1024);
    let server = start(config, None).await;
    let dir = mailroom_testkit::temp_dir();
    let mut msg = message(0);
    let filler = message(1000);
    while msg.len() < 10 * 1024 * 1024 {
        msg.extend_from_slice(&filler[filler.len() / 2..]);
    }
    let path = write_temp(dir.path(), "big.eml", &msg);
    let out = run_peer(
        python,
        vec![
            "-c".into(),
            PY_SENDMAIL.into(),
            server.addr.port().to_string(),
            path,
        ],
    )
    .await;
    check(&out, "python smtplib sendmail");
    let messages = server.handler.messages();
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].content.len(), msg.len());
    assert!(messages[0].content == msg, "10 MiB content differs");
    server.stop().await;
}

/// swaks needs Net::SSLeay (Debian `libnet-ssleay-perl`) for `--tls`.
fn swaks_with_tls() -> Option<PathBuf> {
    let swaks = mailroom_testkit::peer("swaks")?;
    let support = std::process::Command::new(&swaks)
        .arg("--support")
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&support.stdout).into_owned()
        + &String::from_utf8_lossy(&support.stderr);
    if text.contains("=== TLS supported") {
        return Some(swaks);
    }
    if mailroom_testkit::peers_required() {
        panic!("swaks has no TLS support: install libnet-ssleay-perl (MAILROOM_REQUIRE_PEERS=1)");
    }
    eprintln!("skipped: swaks has no TLS support (install libnet-ssleay-perl)");
    None
}

async fn swaks_case(swaks: PathBuf, extra: &[&str], tls: bool, user: Option<&str>) {
    let test_tls = self_signed();
    let mut config = config();
    config.auth_requires_tls = true;
    let server = start(config, tls.then_some(test_tls.server)).await;
    let dir = mailroom_testkit::temp_dir();
    let msg = message(50);
    // swaks ends the data with "\r\n.\r\n" after the file's last line: give it the message
    // without its last CRLF.
    let path = write_temp(dir.path(), "msg.eml", &msg[..msg.len() - 2]);
    let mut args: Vec<String> = [
        "--server",
        "127.0.0.1",
        "--port",
        &server.addr.port().to_string(),
        "--helo",
        "client.example",
        "--from",
        "alice@example.com",
        "--to",
        "bob@example.org",
        "--data",
        &path,
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    let out = run_peer(swaks, args).await;
    check(&out, "swaks");
    let messages = server.handler.messages();
    assert_eq!(
        messages.len(),
        1,
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let m = &messages[0];
    assert_eq!(m.from, "<alice@example.com>");
    assert_eq!(m.recipients, ["<bob@example.org>"]);
    assert_eq!(m.tls, tls);
    assert_eq!(m.user.as_deref(), user);
    assert!(
        m.content == msg,
        "the handler received other bytes than swaks sent: {:?}",
        String::from_utf8_lossy(&m.content)
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swaks_plain() {
    let Some(swaks) = mailroom_testkit::peer("swaks") else {
        return;
    };
    swaks_case(swaks, &[], false, None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swaks_tls() {
    let Some(swaks) = swaks_with_tls() else {
        return;
    };
    swaks_case(swaks, &["--tls"], true, None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swaks_tls_auth_plain() {
    let Some(swaks) = swaks_with_tls() else {
        return;
    };
    let auth = [
        "--tls",
        "--auth",
        "PLAIN",
        "--auth-user",
        "alice",
        "--auth-password",
        "secret",
    ];
    swaks_case(swaks, &auth, true, Some("alice")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swaks_tls_auth_login() {
    let Some(swaks) = swaks_with_tls() else {
        return;
    };
    let auth = [
        "--tls",
        "--auth",
        "LOGIN",
        "--auth-user",
        "alice",
        "--auth-password",
        "secret",
    ];
    swaks_case(swaks, &auth, true, Some("alice")).await;
}
