//! Acceptance 1 of the reference server, tried as a new user would: start `examples/server.rs`
//! with its embedded defaults (only the ports and data directory moved, so tests can run beside
//! each other), run the commands its banner prints, and find the messages in the demo user's
//! Maildir that the banner names.

// Test code: a failed set-up step should stop the test with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{example_binary, start_server};

#[test]
fn the_banner_instructions_deliver_a_first_message() {
    let Some(swaks) = mailroom_testkit::peer("swaks") else {
        return;
    };
    let Some(python) = mailroom_testkit::peer("python3") else {
        return;
    };
    let dir = mailroom_testkit::temp_dir();
    let port = mailroom_testkit::free_port();
    let mut command = Command::new(example_binary());
    command
        .env("MAILROOM_SMTP_LISTEN", format!("127.0.0.1:{port}"))
        .env("MAILROOM_SUBMISSION_LISTEN", "127.0.0.1:0")
        .env("MAILROOM_SUBMISSIONS_LISTEN", "127.0.0.1:0")
        .env("MAILROOM_IMAP_LISTEN", "127.0.0.1:0")
        .env("MAILROOM_IMAPS_LISTEN", "127.0.0.1:0")
        .env("MAILROOM_LMTP_LISTEN", "127.0.0.1:0")
        .env("MAILROOM_DATA", dir.path().join("data"));
    let (_server, banner) = start_server(command);
    let banner_text = banner.join("\n");
    assert!(
        banner_text.contains(&format!("127.0.0.1:{port}")),
        "{banner_text}"
    );
    let swaks_line = banner
        .iter()
        .find(|l| l.trim_start().starts_with("swaks "))
        .expect("the banner shows a swaks command");
    let python_line = banner
        .iter()
        .find(|l| l.trim_start().starts_with("python3 "))
        .expect("the banner shows a python command");

    // The banner's swaks command, as printed (without the trailing comment).
    let swaks_args: Vec<&str> = swaks_line
        .split('#')
        .next()
        .unwrap()
        .split_whitespace()
        .skip(1)
        .collect();
    let out = Command::new(&swaks).args(&swaks_args).output().unwrap();
    assert!(
        out.status.success(),
        "swaks: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    // And with STARTTLS, as the comment suggests.
    let out = Command::new(&swaks)
        .args(&swaks_args)
        .arg("--tls")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "swaks --tls: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    // The banner's Python command, run by a shell as a user would paste it.
    let out = Command::new("sh")
        .arg("-c")
        .arg(
            python_line
                .trim()
                .replacen("python3", &python.display().to_string(), 1),
        )
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "python: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Three messages in the Maildir the banner names, each whole, with the trace headers.
    let new_dir = banner
        .iter()
        .find_map(|l| l.split_once("it lands in the Maildir "))
        .map(|(_, p)| PathBuf::from(p.trim()))
        .expect("the banner names the Maildir");
    assert!(
        new_dir.starts_with(dir.path().join("data")) && new_dir.ends_with("new"),
        "{new_dir:?}"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    let files = loop {
        let files: Vec<PathBuf> = std::fs::read_dir(&new_dir)
            .map(|d| d.map(|e| e.unwrap().path()).collect())
            .unwrap_or_default();
        if files.len() >= 3 || Instant::now() > deadline {
            break files;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(files.len(), 3, "{files:?}");
    let texts: Vec<String> = files
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap())
        .collect();
    assert!(
        texts.iter().all(|t| t.starts_with(
            "Return-Path: <alice@example.com>\r\nDelivered-To: demo@localhost\r\nReceived: from "
        )),
        "{texts:?}"
    );
    assert_eq!(
        texts.iter().filter(|t| t.contains("with ESMTPS")).count(),
        1
    );
    assert!(
        texts
            .iter()
            .any(|t| t.contains("\r\nSubject: hi\r\n") && t.ends_with("\r\n\r\nHello.\r\n"))
    );
    assert_eq!(
        texts
            .iter()
            .filter(|t| t.contains("This is a test mailing"))
            .count(),
        2
    );
    // Nothing left behind in the Maildir's tmp/.
    let tmp = new_dir.parent().unwrap().join("tmp");
    assert_eq!(std::fs::read_dir(tmp).unwrap().count(), 0);

    // The banner's IMAP line: the demo user, with the printed password, reads the three
    // messages over implicit TLS (Python's imaplib; the certificate is self-signed).
    let password = banner
        .iter()
        .find_map(|l| l.split_once(" with password "))
        .map(|(_, p)| p.trim().to_string())
        .expect("the banner prints the demo user's password");
    let (imap_addr, login) = banner
        .iter()
        .find_map(|l| l.split_once("read it over IMAPS at "))
        .and_then(|(_, rest)| rest.split_once(" as "))
        .map(|(addr, rest)| {
            let addr: std::net::SocketAddr = addr.trim().parse().unwrap();
            (addr, rest.split_whitespace().next().unwrap().to_string())
        })
        .expect("the banner says where to read the mail over IMAP");
    let script = format!(
        "import imaplib, ssl\n\
         ctx = ssl.create_default_context()\n\
         ctx.check_hostname = False\n\
         ctx.verify_mode = ssl.CERT_NONE\n\
         m = imaplib.IMAP4_SSL('{}', {}, ssl_context=ctx)\n\
         m.login('{login}', '{password}')\n\
         typ, data = m.select('INBOX')\n\
         print('EXISTS', data[0].decode())\n\
         typ, data = m.fetch('1:*', '(BODY.PEEK[HEADER.FIELDS (SUBJECT)])')\n\
         print('SUBJECTS', sum(1 for d in data if isinstance(d, tuple)))\n\
         m.logout()\n",
        imap_addr.ip(),
        imap_addr.port()
    );
    let out = Command::new(&python)
        .arg("-c")
        .arg(&script)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "imaplib: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("EXISTS 3\n"), "{stdout}");
    assert!(stdout.contains("SUBJECTS 3\n"), "{stdout}");
}
