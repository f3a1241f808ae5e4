//! The tokio `Client` against Postfix's `smtp-sink`, started by the test on a free port of
//! 127.0.0.1 and stopped by PID: messages are delivered with PIPELINING (a small one to three
//! recipients, one with lines starting with "." and bare newlines, one of 2 MiB streamed), and
//! what smtp-sink dumped (`-d`) is compared with what was sent; its fault options give the
//! 4xx/5xx replies to RCPT, MAIL and the end of data, and a 421.

// Tests may unwrap: a failed step should stop the test with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::{Child, Command, Stdio};
use std::task::{Context, Poll};
use std::time::Duration;

use mailroom_smtp_proto::client::{ClientConfig, Envelope, Stage, Status};
use mailroom_smtp_proto::tokio::{Client, ClientOptions, ConnectionError};
use mailroom_smtp_proto::{ForwardPath, Host, Mailbox, ReversePath};
use mailroom_testkit::{free_port, peer, temp_dir, wait_for_port};
use tokio::io::{AsyncRead, ReadBuf};

/// A running smtp-sink, killed (and reaped) when dropped.
struct Sink {
    child: Child,
    port: u16,
    dumps: PathBuf,
    _dir: tempfile::TempDir,
}

impl Sink {
    /// Starts `smtp-sink [flags] -d DIR/%M. 127.0.0.1:PORT 256`, or `None` (skip) when Postfix
    /// is not installed.
    fn start(flags: &[&str]) -> Option<Sink> {
        let program = peer("smtp-sink")?;
        let dir = temp_dir();
        let dumps = dir.path().join("dumps");
        std::fs::create_dir(&dumps).unwrap();
        // smtp-sink drops to `nobody` when started as root: it must be able to write here.
        std::fs::set_permissions(&dumps, std::os::unix::fs::PermissionsExt::from_mode(0o777))
            .unwrap();
        let port = free_port();
        let mut command = Command::new(program);
        if is_root() {
            command.args(["-u", "nobody"]);
        }
        command
            .args(flags)
            .arg("-d")
            .arg(format!("{}/%M.", dumps.display()))
            .arg(format!("127.0.0.1:{port}"))
            .arg("256")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        let child = command.spawn().expect("start smtp-sink");
        wait_for_port(
            format!("127.0.0.1:{port}").parse().unwrap(),
            Duration::from_secs(10),
        );
        Some(Sink {
            child,
            port,
            dumps,
            _dir: dir,
        })
    }

    fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The dumped transactions, parsed, once `count` of them are complete.
    fn dumps(&self, count: usize) -> Vec<Dump> {
        for _ in 0..200 {
            let dumps: Vec<Dump> = std::fs::read_dir(&self.dumps)
                .unwrap()
                .filter_map(|e| Dump::parse(&e.unwrap().path()))
                .collect();
            if dumps.len() >= count {
                return dumps;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("smtp-sink did not dump {count} messages");
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(2) == Some("0"))
        })
        .unwrap_or(false)
}

/// One transaction as smtp-sink wrote it: its `X-` records and the message (lines end in LF,
/// dots unstuffed), which is followed by one empty line.
#[derive(Debug)]
struct Dump {
    mail: String,
    rcpts: Vec<String>,
    content: Vec<u8>,
}

impl Dump {
    fn parse(path: &Path) -> Option<Dump> {
        let bytes = std::fs::read(path).ok()?;
        // Complete once the final empty line is there.
        if !bytes.ends_with(b"\n\n") {
            return None;
        }
        let mut mail = String::new();
        let mut rcpts = Vec::new();
        let mut pos = 0;
        let mut in_received = false;
        loop {
            let end = pos + bytes[pos..].iter().position(|&b| b == b'\n')?;
            let line = String::from_utf8_lossy(&bytes[pos..end]).into_owned();
            if in_received && !line.starts_with('\t') {
                break;
            }
            if let Some(v) = line.strip_prefix("X-Mail-Args: ") {
                mail = v.to_owned();
            } else if let Some(v) = line.strip_prefix("X-Rcpt-Args: ") {
                rcpts.push(v.to_owned());
            } else if line.starts_with("Received: ") {
                in_received = true;
            }
            pos = end + 1;
        }
        let content = bytes[pos..bytes.len() - 1].to_vec();
        Some(Dump {
            mail,
            rcpts,
            content,
        })
    }
}

/// What smtp-sink's dump holds for content sent by the client: lines end in LF (bare CR and
/// LF were sent as CRLF), and the last line is ended.
fn as_dumped(content: &[u8]) -> Vec<u8> {
    let normalized = mailroom_smtp_proto::fuzzing::normalize_newlines(content);
    String::from_utf8_lossy(&normalized)
        .replace("\r\n", "\n")
        .into_bytes()
}

fn options() -> ClientOptions {
    // No TLS configuration: the opportunistic default becomes "never".
    ClientOptions::new(ClientConfig::new("client.example".parse::<Host>().unwrap()))
}

fn envelope(from: &str, to: &[&str]) -> Envelope {
    let from: Mailbox = from.parse().unwrap();
    Envelope::new(
        ReversePath::from(from),
        to.iter()
            .map(|t| ForwardPath::from(t.parse::<Mailbox>().unwrap())),
    )
}

const THREE: [&str; 3] = ["b@example.org", "c@example.org", "d@example.org"];

/// 2 MiB of numbered lines, produced as they are read.
struct Big {
    left: usize,
    line: u64,
}

impl Big {
    const LEN: usize = 2 * 1024 * 1024;

    fn content() -> Vec<u8> {
        let mut all = Vec::with_capacity(Self::LEN);
        let mut line = 0;
        while all.len() < Self::LEN {
            let text = Self::line(line);
            let n = text.len().min(Self::LEN - all.len());
            all.extend_from_slice(&text.as_bytes()[..n]);
            line += 1;
        }
        all
    }

    fn line(n: u64) -> String {
        // Every 100th line starts with a dot, to be stuffed.
        if n.is_multiple_of(100) {
            format!(".{n:070}\r\n")
        } else {
            format!("{n:071}\r\n")
        }
    }
}

impl AsyncRead for Big {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        while self.left > 0 && buf.remaining() >= 80 {
            let text = Self::line(self.line);
            let n = text.len().min(self.left);
            buf.put_slice(&text.as_bytes()[..n]);
            self.left -= n;
            self.line += 1;
        }
        Poll::Ready(Ok(()))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivers_to_smtp_sink_with_pipelining() {
    let Some(sink) = Sink::start(&[]) else { return };
    let mut client = Client::connect(sink.addr(), options()).await.unwrap();
    assert!(
        client.extensions().pipelining,
        "smtp-sink offers PIPELINING"
    );

    let small = b"Subject: small\r\n\r\nhello\r\n".to_vec();
    let dots = b"Subject: dots\r\n\r\n.\r\n..\r\n.leading\r\nbare\nlf\rcr\n.\ntail".to_vec();
    let sent = [
        ("small@example.com", small.clone()),
        ("dots@example.com", dots.clone()),
    ];
    for (from, content) in &sent {
        let result = client
            .send_bytes(envelope(from, &THREE), content)
            .await
            .unwrap();
        assert_eq!(result.recipients.len(), 3);
        for r in &result.recipients {
            assert_eq!(
                (r.status(), r.stage),
                (Status::Accepted, Stage::Data),
                "{r:?}"
            );
        }
        assert_eq!(result.data.as_ref().unwrap().code().get(), 250);
    }
    let result = client
        .send(
            envelope("big@example.com", &THREE),
            Big {
                left: Big::LEN,
                line: 0,
            },
        )
        .await
        .unwrap();
    assert!(result.all_accepted(), "{result:?}");
    client.quit().await.unwrap();

    let dumps = sink.dumps(3);
    assert_eq!(dumps.len(), 3);
    let expected = [
        ("<small@example.com>", as_dumped(&small)),
        ("<dots@example.com>", as_dumped(&dots)),
        ("<big@example.com>", as_dumped(&Big::content())),
    ];
    for (mail, content) in expected {
        let dump = dumps
            .iter()
            .find(|d| d.mail == mail)
            .unwrap_or_else(|| panic!("no dump for {mail}: {dumps:?}"));
        assert_eq!(
            dump.rcpts,
            ["<b@example.org>", "<c@example.org>", "<d@example.org>"]
        );
        assert!(
            dump.content == content,
            "content of {mail} differs: {} octets dumped, {} expected",
            dump.content.len(),
            content.len()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_sink_soft_rejects_every_rcpt() {
    // `-r RCPT`: 450 to every RCPT (and no PIPELINING): no DATA, RSET, the connection goes on.
    let Some(sink) = Sink::start(&["-r", "RCPT"]) else {
        return;
    };
    let mut client = Client::connect(sink.addr(), options()).await.unwrap();
    assert!(!client.extensions().pipelining);
    for _ in 0..2 {
        let result = client
            .send_bytes(envelope("a@example.com", &THREE), b"x\r\n")
            .await
            .unwrap();
        for r in &result.recipients {
            assert_eq!(
                (r.status(), r.stage),
                (Status::Temporary, Stage::Rcpt),
                "{r:?}"
            );
        }
        assert!(result.data.is_none());
    }
    client.quit().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_sink_hard_rejects_the_end_of_data_and_mail() {
    let Some(sink) = Sink::start(&["-f", "."]) else {
        return;
    };
    let mut client = Client::connect(sink.addr(), options()).await.unwrap();
    let result = client
        .send_bytes(envelope("a@example.com", &THREE), b"x\r\n")
        .await
        .unwrap();
    for r in &result.recipients {
        assert_eq!(
            (r.status(), r.stage),
            (Status::Permanent, Stage::Data),
            "{r:?}"
        );
    }
    client.quit().await.unwrap();

    let Some(sink) = Sink::start(&["-f", "MAIL"]) else {
        return;
    };
    let mut client = Client::connect(sink.addr(), options()).await.unwrap();
    let result = client
        .send_bytes(envelope("a@example.com", &THREE), b"x\r\n")
        .await
        .unwrap();
    for r in &result.recipients {
        assert_eq!(
            (r.status(), r.stage),
            (Status::Permanent, Stage::Mail),
            "{r:?}"
        );
    }
    client.quit().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_sink_421_defers_the_recipients() {
    // `-Q RCPT`: 421 and disconnect at the first RCPT.
    let Some(sink) = Sink::start(&["-Q", "RCPT"]) else {
        return;
    };
    let mut client = Client::connect(sink.addr(), options()).await.unwrap();
    let result = client
        .send_bytes(envelope("a@example.com", &THREE), b"x\r\n")
        .await
        .unwrap();
    for r in &result.recipients {
        assert_eq!(r.status(), Status::Temporary, "{r:?}");
        assert_eq!(r.reply.code().get(), 421);
    }
    let again = client
        .send_bytes(envelope("a@example.com", &THREE), b"x\r\n")
        .await;
    assert!(matches!(again, Err(ConnectionError::Closed)), "{again:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lmtp_to_smtp_sink() {
    // `-L`: smtp-sink speaks LMTP and answers the end of data once per recipient.
    let Some(sink) = Sink::start(&["-L"]) else {
        return;
    };
    let mut options = options();
    options.session.lmtp = true;
    let mut client = Client::connect(sink.addr(), options).await.unwrap();
    for _ in 0..2 {
        let result = client
            .send_bytes(
                envelope("lmtp@example.com", &THREE),
                b"Subject: lmtp\r\n\r\nhi\r\n",
            )
            .await
            .unwrap();
        assert_eq!(result.recipients.len(), 3);
        assert!(result.all_accepted(), "{result:?}");
    }
    client.quit().await.unwrap();
    let dumps = sink.dumps(2);
    assert!(
        dumps
            .iter()
            .all(|d| d.rcpts.len() == 3 && d.content == b"Subject: lmtp\n\nhi\n")
    );
}
