//! The IMAP server (src/server/imap/) against Dovecot on the same Maildir of 10,000 messages,
//! timed from the same client in the same run: `FETCH 1:* (FLAGS UID RFC822.SIZE ENVELOPE)`
//! and a full-body fetch `FETCH 1:* BODY.PEEK[]`. Goal (issue 10): our time <= Dovecot's.
//!
//! `cargo bench --bench imap_server` (Dovecot must be installed; skipped otherwise).
//! `IMAP_BENCH_MESSAGES=N` changes the mailbox size. Both servers are warm (each serves the
//! mailbox once before measuring: Dovecot builds its index, we write nothing new).

// Bench code: a failed unwrap is a failed run.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::Criterion;
use mailroom::maildir::{Batch, Maildir};
use mailroom::server::imap::{ImapConfig, StaticUsers, serve};
use mailroom_testkit::dovecot::Dovecot;

/// A minimal blocking IMAP client: logged in, INBOX selected.
struct Client {
    r: BufReader<TcpStream>,
    w: TcpStream,
    n: u32,
}

impl Client {
    fn connect(addr: SocketAddr) -> Self {
        let s = TcpStream::connect(addr).unwrap();
        s.set_nodelay(true).unwrap();
        let mut c = Client {
            r: BufReader::with_capacity(1 << 20, s.try_clone().unwrap()),
            w: s,
            n: 0,
        };
        let mut greeting = String::new();
        c.r.read_line(&mut greeting).unwrap();
        c.run("LOGIN alice secret");
        c.run("SELECT INBOX");
        c
    }

    /// Sends a command and reads to its tagged response, skipping literals; returns the number
    /// of octets received.
    fn run(&mut self, command: &str) -> usize {
        self.n += 1;
        let tag = format!("b{}", self.n);
        write!(self.w, "{tag} {command}\r\n").unwrap();
        let mut total = 0;
        let mut line = Vec::new();
        let mut literal = Vec::new();
        loop {
            line.clear();
            let n = self.r.read_until(b'\n', &mut line).unwrap();
            assert!(n > 0, "connection closed");
            total += n;
            if line.starts_with(tag.as_bytes()) {
                assert!(
                    line[tag.len()..].starts_with(b" OK"),
                    "{}",
                    String::from_utf8_lossy(&line)
                );
                return total;
            }
            // A literal at the end of the line: `{n}\r\n`.
            if let Some(open) = line.iter().rposition(|b| *b == b'{')
                && line.ends_with(b"}\r\n")
            {
                let size: usize = std::str::from_utf8(&line[open + 1..line.len() - 3])
                    .unwrap()
                    .parse()
                    .unwrap();
                literal.resize(size, 0);
                self.r.read_exact(&mut literal).unwrap();
                total += size;
                // The rest of the response line follows the literal.
                line.clear();
                continue;
            }
        }
    }
}

fn fill(maildir: &std::path::Path, n: usize) {
    std::fs::create_dir_all(maildir.parent().unwrap()).unwrap();
    let md = Maildir::create(maildir).unwrap();
    let filler = "The quick brown fox jumps over the lazy dog. ".repeat(80);
    let bodies: Vec<Vec<u8>> = (0..n)
        .map(|i| {
            format!(
                "Return-Path: <sender{i}@example.test>\r\n\
                 Received: from client.example.test by mx.example.test; Mon, 2 Feb 2026 10:00:00 +0000\r\n\
                 From: \"Sender {i}\" <sender{i}@example.test>\r\nTo: Alice <alice@example.test>\r\n\
                 Cc: bob@example.test, carol@example.test\r\nSubject: benchmark message {i}\r\n\
                 Date: Mon, 2 Feb 2026 10:00:00 +0000\r\nMessage-ID: <{i}@example.test>\r\n\
                 MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n{filler}\r\n"
            )
            .into_bytes()
        })
        .collect();
    for chunk in bodies.chunks(1000) {
        let mut batch = Batch::new();
        for b in chunk {
            batch.add(&md, &b[..]);
        }
        for r in batch.commit() {
            r.unwrap();
        }
    }
}

fn start_ours(maildir: &std::path::Path) -> SocketAddr {
    let users = Arc::new(StaticUsers::new().with_user("alice", "secret", maildir));
    let mut config = ImapConfig::new(users, None);
    config.disable_plaintext_auth = false;
    let config = Arc::new(config);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
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
    mailroom_testkit::wait_for_port(addr, Duration::from_secs(5));
    addr
}

fn bench(c: &mut Criterion) {
    let n: usize = std::env::var("IMAP_BENCH_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let Some(dovecot) = Dovecot::builder()
        .user("alice", "secret")
        .with_imap()
        .start()
    else {
        return;
    };
    let maildir = dovecot.home("alice").join("Maildir");
    fill(&maildir, n);
    dovecot.chown_to_mail_user(&dovecot.home("alice"));
    let theirs = dovecot.imap_addr().unwrap();
    // Dovecot first: it writes dovecot-uidlist as the mail user; we then read it unchanged.
    let mut warm = Client::connect(theirs);
    warm.run("FETCH 1:* (FLAGS UID RFC822.SIZE ENVELOPE)");
    warm.run("FETCH 1:* BODY.PEEK[]");
    let ours = start_ours(&maildir);
    let mut warm = Client::connect(ours);
    warm.run("FETCH 1:* (FLAGS UID RFC822.SIZE ENVELOPE)");
    warm.run("FETCH 1:* BODY.PEEK[]");

    let mut group = c.benchmark_group("imap_server");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));
    for (what, command) in [
        ("envelope", "FETCH 1:* (FLAGS UID RFC822.SIZE ENVELOPE)"),
        ("full_body", "FETCH 1:* BODY.PEEK[]"),
    ] {
        for (who, addr) in [("dovecot", theirs), ("mailroom", ours)] {
            let mut client = Client::connect(addr);
            group.bench_function(format!("fetch_{what}_{n}/{who}"), |b| {
                b.iter_custom(|iters| {
                    let start = Instant::now();
                    for _ in 0..iters {
                        std::hint::black_box(client.run(command));
                    }
                    start.elapsed()
                });
            });
        }
    }
    group.finish();
    drop(dovecot);
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    bench(&mut c);
    c.final_summary();
}
