//! The reference server's mailbox roles together: a message handed to its LMTP listener
//! appears to an IMAP client idling on the INBOX.
//!
//! - `postfix_lmtp_to_idling_imap_client`: a private Postfix with
//!   `virtual_transport = lmtp:inet:127.0.0.1:PORT` delivers one message to three recipients
//!   through our LMTP listener: a user (stored, and announced by `* 1 EXISTS` to the IDLE-ing
//!   client, which then fetches it), an unknown user (`550 5.1.1`) and a user over quota
//!   (`552 5.2.2`); Postfix bounces exactly those two, and its DSN comes back through our LMTP.
//! - `own_mta_lmtp_transport_to_own_listener`: our MTA's `lmtp` transport delivers to our own
//!   LMTP listener, and the IMAP client sees the message.
//! - `lmtp_over_a_unix_socket`: `lmtp_listen = "unix:/path"` with Python's `smtplib.LMTP`.
//!
//! The IMAP client is Python's imaplib (STARTTLS, then LOGIN, then IDLE by hand: imaplib has no
//! IDLE before Python 3.14).

// Integration test: a failed step should stop the test with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{ChildStdout, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{Running, example_binary, start_server};
use mailroom::maildir::{Maildir, QuotaLimit};
use mailroom_testkit::postfix::{Postfix, send_smtp};

/// Our server with LMTP and IMAP on free loopback ports and these users (all with the password
/// `secret`), their homes under the data directory.
struct Server {
    _child: Running,
    data: PathBuf,
    /// `lmtp_listen`: `127.0.0.1:PORT` or `unix:/path`.
    lmtp: String,
    imap: u16,
    smtp: Option<u16>,
    log: PathBuf,
}

impl Server {
    fn start(dir: &Path, users: &[&str], with_smtp: bool, lmtp: &str, extra: &str) -> Server {
        let data = dir.join("data");
        std::fs::create_dir_all(&data).unwrap();
        let passwd: String = users
            .iter()
            .map(|u| {
                let local = u.split('@').next().unwrap();
                format!(
                    "{u}:{{PLAIN}}secret::::{}::\n",
                    data.join("home").join(local).display()
                )
            })
            .collect();
        std::fs::write(data.join("passwd"), passwd).unwrap();
        let imap = mailroom_testkit::free_port();
        let smtp = with_smtp.then(mailroom_testkit::free_port);
        let conf = dir.join("mailroom.toml");
        let text = format!(
            "data_directory = {:?}\nmyhostname = \"mail.example.test\"\ndemo_user = \"\"\n\
             smtpd_listen = \"{}\"\nsubmission_listen = \"\"\nsubmissions_listen = \"\"\n\
             imap_listen = \"127.0.0.1:{imap}\"\nimaps_listen = \"\"\n\
             lmtp_listen = \"{lmtp}\"\n{extra}",
            data.display().to_string(),
            smtp.map_or(String::new(), |p| format!("127.0.0.1:{p}")),
        );
        std::fs::write(&conf, text).unwrap();
        let log = dir.join("server.log");
        let mut command = Command::new(example_binary());
        command
            .arg("--config")
            .arg(&conf)
            .stderr(std::fs::File::create(&log).unwrap());
        let (child, banner) = start_server(command);
        let banner = banner.join("\n");
        assert!(
            banner.contains(&format!(
                "LMTP on {}",
                if lmtp.starts_with("unix:") {
                    lmtp.to_string()
                } else {
                    format!("inet:{lmtp}")
                }
            )) && banner.contains(&format!("IMAP on 127.0.0.1:{imap}")),
            "{banner}\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        Server {
            _child: child,
            data,
            lmtp: lmtp.to_string(),
            imap,
            smtp,
            log,
        }
    }

    fn maildir(&self, user: &str) -> PathBuf {
        self.data.join("home").join(user).join("Maildir")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// The IMAP client: STARTTLS, LOGIN, SELECT INBOX (empty), IDLE; prints `IDLING` once the
/// server said `+`, then `GOT <line>` at the first EXISTS, ends IDLE with DONE, fetches
/// message 1 and prints it after `BODY`.
const IDLE_CLIENT: &str = r#"
import imaplib, ssl, sys
host, port, user = sys.argv[1], int(sys.argv[2]), sys.argv[3]
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
m = imaplib.IMAP4(host, port)
m.starttls(ssl_context=ctx)
m.login(user, 'secret')
typ, data = m.select('INBOX')
assert data[0] == b'0', data
m.sock.settimeout(60)
tag = m._new_tag().decode()
m.send(f'{tag} IDLE\r\n'.encode())
line = m.readline()
assert line.startswith(b'+'), line
print('IDLING', flush=True)
while True:
    line = m.readline()
    if not line:
        sys.exit('connection closed while idling')
    if line.rstrip().endswith(b'EXISTS'):
        print('GOT', line.decode().strip(), flush=True)
        break
m.send(b'DONE\r\n')
while True:
    line = m.readline()
    if line.startswith(tag.encode()):
        assert b' OK ' in line, line
        break
typ, data = m.fetch('1', '(BODY[])')
assert typ == 'OK', (typ, data)
print('BODY')
print(data[0][1].decode())
m.logout()
"#;

/// Starts the IDLE client for `user` and waits until it idles; returns its stdout lines.
fn idle_client(
    server: &Server,
    user: &str,
) -> (Running, mpsc::Receiver<String>, std::process::ChildStderr) {
    let python = mailroom_testkit::peer("python3").unwrap();
    let mut child = Command::new(python)
        .arg("-c")
        .arg(IDLE_CLIENT)
        .args(["127.0.0.1", &server.imap.to_string(), user])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout: ChildStdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let running = Running(child);
    (running, rx, stderr)
}

/// The next line of the client, or a failure with its stderr and the server's log.
fn next_line(
    rx: &mpsc::Receiver<String>,
    stderr: &mut std::process::ChildStderr,
    server: &Server,
    waiting_for: &str,
) -> String {
    match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(line) => line,
        Err(e) => {
            let mut err = String::new();
            let _ = stderr.read_to_string(&mut err);
            panic!(
                "IMAP client: no {waiting_for} ({e}); stderr:\n{err}\nserver log:\n{}",
                server.log()
            );
        }
    }
}

/// Everything after the client's `BODY` line, up to its end.
fn fetched_body(rx: &mpsc::Receiver<String>) -> String {
    let mut body = String::new();
    let mut started = false;
    while let Ok(line) = rx.recv_timeout(Duration::from_secs(30)) {
        if started {
            body.push_str(&line);
            body.push('\n');
        } else if line == "BODY" {
            started = true;
        }
    }
    body
}

fn count(maildir: &Path) -> usize {
    Maildir::open(maildir)
        .map(|m| m.scan().unwrap().messages.len())
        .unwrap_or(0)
}

fn wait_for(
    what: &str,
    timeout: Duration,
    mut done: impl FnMut() -> bool,
    log: impl Fn() -> String,
) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "{what}; log:\n{}", log());
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn postfix_lmtp_to_idling_imap_client() {
    if mailroom_testkit::peer("python3").is_none() {
        return;
    }
    let dir = mailroom_testkit::temp_dir();
    let users = [
        "alice@example.test",
        "full@example.test",
        "bounces@example.test",
    ];
    let lmtp = format!("127.0.0.1:{}", mailroom_testkit::free_port());
    let server = Server::start(dir.path(), &users, false, &lmtp, "");
    std::fs::create_dir_all(server.data.join("home/full")).unwrap();
    let full = Maildir::create(server.maildir("full")).unwrap();
    full.set_quota_limit(QuotaLimit {
        bytes: Some(100),
        messages: None,
    })
    .unwrap();

    let Some(postfix) = Postfix::builder()
        .main_cf("virtual_mailbox_domains", "example.test")
        .main_cf("virtual_mailbox_maps", "texthash:{conf}/vmailbox")
        .main_cf("virtual_transport", &format!("lmtp:inet:{}", server.lmtp))
        .table(
            "vmailbox",
            "alice@example.test x\nfull@example.test x\nghost@example.test x\n\
             bounces@example.test x\n",
        )
        .start()
    else {
        return;
    };

    let (_client, rx, mut stderr) = idle_client(&server, "alice@example.test");
    let line = next_line(&rx, &mut stderr, &server, "IDLING");
    assert_eq!(line, "IDLING");

    let sent = Instant::now();
    let message = "From: bounces@example.test\r\nTo: alice@example.test\r\n\
                   Subject: through postfix and lmtp\r\nMessage-Id: <idle-1@example.test>\r\n\r\n\
                   hello over lmtp\r\n.a line with a leading dot\r\n";
    send_smtp(
        postfix.addr(),
        "bounces@example.test",
        &[
            "alice@example.test",
            "ghost@example.test",
            "full@example.test",
        ],
        message.as_bytes(),
    )
    .unwrap();
    let line = next_line(&rx, &mut stderr, &server, "EXISTS while idling");
    let latency = sent.elapsed();
    assert_eq!(line, "GOT * 1 EXISTS");
    let body = fetched_body(&rx);
    assert!(
        body.starts_with("Return-Path: <bounces@example.test>"),
        "{body}"
    );
    assert!(
        body.contains("Subject: through postfix and lmtp")
            && body.contains("hello over lmtp\n.a line with a leading dot"),
        "{body}"
    );
    eprintln!("SMTP to Postfix, LMTP to us, EXISTS to the idling client: {latency:?}");

    // Postfix's DSN for the two refused recipients comes back through our LMTP listener.
    let bounces = server.maildir("bounces");
    wait_for(
        "the DSN reaches bounces@",
        Duration::from_secs(60),
        || count(&bounces) >= 1,
        || format!("{}\n{}", postfix.log(), server.log()),
    );
    postfix.wait_for_empty_queue(Duration::from_secs(30));
    assert_eq!(count(&server.maildir("alice")), 1);
    assert_eq!(count(&server.maildir("full")), 0, "over quota: not stored");
    let log = postfix.log();
    let status = |rcpt: &str| {
        log.lines()
            .filter(|l| l.contains(&format!("to=<{rcpt}>")) && l.contains("status="))
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    let alice = status("alice@example.test");
    assert!(
        alice.len() == 1 && alice[0].contains("status=sent"),
        "{log}"
    );
    let ghost = status("ghost@example.test");
    assert!(
        ghost.len() == 1 && ghost[0].contains("status=bounced") && ghost[0].contains("550 5.1.1"),
        "{log}"
    );
    let over = status("full@example.test");
    assert!(
        over.len() == 1 && over[0].contains("status=bounced") && over[0].contains("552 5.2.2"),
        "{log}"
    );
    let ours = server.log();
    assert!(
        ours.contains("lmtp: to=<alice@example.test>, status=sent"),
        "{ours}"
    );
}

#[test]
fn own_mta_lmtp_transport_to_own_listener() {
    let Some(python) = mailroom_testkit::peer("python3") else {
        return;
    };
    let dir = mailroom_testkit::temp_dir();
    // The transport table names our own LMTP port.
    let lmtp_port = mailroom_testkit::free_port();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(
        data.join("transport"),
        format!("example.test lmtp:inet:127.0.0.1:{lmtp_port}\n"),
    )
    .unwrap();
    let server = Server::start(
        dir.path(),
        &["alice@example.test"],
        true,
        &format!("127.0.0.1:{lmtp_port}"),
        "transport_maps = [\"hash:transport\"]\n",
    );
    let (_client, rx, mut stderr) = idle_client(&server, "alice@example.test");
    assert_eq!(next_line(&rx, &mut stderr, &server, "IDLING"), "IDLING");
    let smtp = server.smtp.unwrap();
    let out = Command::new(python)
        .arg("-c")
        .arg(format!(
            "import smtplib\ns = smtplib.SMTP('127.0.0.1', {smtp})\n\
             s.sendmail('someone@localhost', ['alice@example.test'], \
             'Subject: own lmtp\\r\\n\\r\\nthrough our own lmtp transport\\r\\n')\ns.quit()"
        ))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        next_line(&rx, &mut stderr, &server, "EXISTS while idling"),
        "GOT * 1 EXISTS"
    );
    let body = fetched_body(&rx);
    assert!(
        body.contains("Subject: own lmtp") && body.contains("through our own lmtp transport"),
        "{body}"
    );
    let log = server.log();
    assert!(
        log.contains(&format!("relay=inet:127.0.0.1:{lmtp_port}"))
            && log.contains("to=<alice@example.test>, relay=inet")
            && log.contains("status=sent"),
        "{log}"
    );
}

/// The LMTP listener on a Unix socket (`lmtp_listen = "unix:/path"`), with Python's
/// `smtplib.LMTP` as the client: one reply per recipient (250 for the user, 550 5.1.1 for the
/// unknown one, as `sendmail`'s refused dict shows), and the message in the Maildir.
#[test]
fn lmtp_over_a_unix_socket() {
    let Some(python) = mailroom_testkit::peer("python3") else {
        return;
    };
    let dir = mailroom_testkit::temp_dir();
    let socket = dir.path().join("lmtp.sock");
    let server = Server::start(
        dir.path(),
        &["alice@example.test"],
        false,
        &format!("unix:{}", socket.display()),
        "",
    );
    let out = Command::new(python)
        .arg("-c")
        .arg(format!(
            "import smtplib\ns = smtplib.LMTP({:?})\n\
             refused = s.sendmail('someone@example.org', ['alice+box@example.test', 'nobody@example.test'], \
             'Subject: over a socket\\r\\n\\r\\nunix lmtp\\r\\n')\n\
             print(refused)\ns.quit()",
            socket.display().to_string()
        ))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("'nobody@example.test': (550, b'5.1.1") && !stdout.contains("alice"),
        "{stdout}"
    );
    assert_eq!(count(&server.maildir("alice")), 1, "{}", server.log());
}
