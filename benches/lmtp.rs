//! LMTP delivery throughput: our LMTP MDA (`examples/lmtp_maildir.rs`, durable Maildir delivery
//! through `maildir::Batch`) beside Dovecot's LMTP into Maildir, under the same load in the same
//! run: 4 KiB messages, 1 and 10 recipients per message, 16 connections, each connection
//! reused for its share of the messages. A load program rather than a criterion bench: one
//! sample is seconds of wall time over 16 connections, and the figure that matters is the
//! ratio of the two servers' messages per second, measured in alternating rounds.
//!
//! ```text
//! cargo bench --bench lmtp
//! LMTP_BENCH_ROUNDS=7 LMTP_BENCH_MESSAGES=2000 cargo bench --bench lmtp
//! ```
//!
//! It prints messages per second for each server and round, the ratio, and the median ratio
//! per recipient count. Dovecot must be installed (it is skipped otherwise, and only our
//! figures are printed). Both servers fsync: Dovecot with its default `mail_fsync =
//! optimized`, ours with the file and `new/` fsynced before each 250.

// A load program: set-up failures should stop it with their message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../examples/lmtp_maildir.rs"]
#[allow(dead_code, unreachable_pub)]
mod lmtp_maildir;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use mailroom::lmtp::{Address, Client, ClientOptions, Listener, Outcome};
use mailroom::smtp::{ForwardPath, Mailbox, ReversePath};
use mailroom_testkit::dovecot::Dovecot;

const CONNECTIONS: usize = 16;
const USERS: usize = 10;
const MESSAGE_SIZE: usize = 4096;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn message() -> Vec<u8> {
    let mut m = b"From: load@bench.test\r\nTo: u0@bench.test\r\nSubject: load\r\n\r\n".to_vec();
    let line = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789\r\n";
    while m.len() + line.len() <= MESSAGE_SIZE {
        m.extend_from_slice(line);
    }
    m.resize(MESSAGE_SIZE - 2, b'x');
    m.extend_from_slice(b"\r\n");
    m
}

/// Sends `messages` messages of `recipients` recipients each over 16 connections; returns
/// messages per second.
async fn load(address: &Address, messages: usize, recipients: usize) -> f64 {
    let content = Arc::new(message());
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..CONNECTIONS {
        let (address, content, next) = (address.clone(), Arc::clone(&content), Arc::clone(&next));
        tasks.push(tokio::spawn(async move {
            let mut client = Client::connect(&address, ClientOptions::default())
                .await
                .unwrap();
            let from = ReversePath::from("load@bench.test".parse::<Mailbox>().unwrap());
            while next.fetch_add(1, Ordering::Relaxed) < messages {
                let to = (0..recipients).map(|r| {
                    let user = if recipients == 1 { c % USERS } else { r };
                    ForwardPath::from(format!("u{user}@bench.test").parse::<Mailbox>().unwrap())
                });
                let results = client.deliver(from.clone(), to, &content).await.unwrap();
                assert!(
                    results.iter().all(|r| r.outcome == Outcome::Delivered),
                    "{results:?}"
                );
            }
            client.quit().await.unwrap();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    messages as f64 / started.elapsed().as_secs_f64()
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let rounds = env("LMTP_BENCH_ROUNDS", 5);
    let messages = env("LMTP_BENCH_MESSAGES", 1000);

    // Our MDA on its own runtime (two workers, as many as the load client).
    let base = tempfile::tempdir().unwrap();
    for u in 0..USERS {
        std::fs::create_dir_all(base.path().join(format!("bench.test/u{u}"))).unwrap();
    }
    let mda_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let listener = mda_runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let ours = Address::Tcp(listener.local_addr().unwrap().to_string());
    mda_runtime.spawn(lmtp_maildir::serve(
        lmtp_maildir::mda(base.path(), None),
        Listener::from(listener),
        std::future::pending(),
    ));

    let mut builder = Dovecot::builder();
    for u in 0..USERS {
        builder = builder.user(&format!("u{u}"), "secret");
    }
    let dovecot = builder.with_lmtp().start();
    let theirs = dovecot
        .as_ref()
        .map(|d| Address::Tcp(d.lmtp_addr().unwrap().to_string()));

    let client_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    println!(
        "lmtp: {MESSAGE_SIZE} B messages, {CONNECTIONS} connections, {messages} messages per sample, {rounds} rounds"
    );
    for recipients in [1, 10] {
        let per_sample = if recipients == 1 {
            messages
        } else {
            (messages / 4).max(1)
        };
        // Warm-up: connections, Maildir creation, Dovecot's index files.
        client_runtime.block_on(load(&ours, 50, recipients));
        if let Some(theirs) = &theirs {
            client_runtime.block_on(load(theirs, 50, recipients));
        }
        let mut ratios = Vec::new();
        let (mut ours_all, mut theirs_all) = (Vec::new(), Vec::new());
        for round in 0..rounds {
            let a = client_runtime.block_on(load(&ours, per_sample, recipients));
            ours_all.push(a);
            match &theirs {
                Some(theirs) => {
                    let b = client_runtime.block_on(load(theirs, per_sample, recipients));
                    theirs_all.push(b);
                    ratios.push(a / b);
                    println!(
                        "lmtp/{recipients}rcpt round {round}: mailroom {a:8.0} msg/s   dovecot {b:8.0} msg/s   ratio {:.2}",
                        a / b
                    );
                }
                None => println!("lmtp/{recipients}rcpt round {round}: mailroom {a:8.0} msg/s"),
            }
        }
        if ratios.is_empty() {
            println!(
                "lmtp/{recipients}rcpt median: mailroom {:.0} msg/s",
                median(&mut ours_all)
            );
        } else {
            println!(
                "lmtp/{recipients}rcpt median: mailroom {:.0} msg/s, dovecot {:.0} msg/s, median ratio {:.2} (goal >= 1.5)",
                median(&mut ours_all),
                median(&mut theirs_all),
                median(&mut ratios)
            );
        }
    }
    drop(dovecot);
    mda_runtime.shutdown_timeout(Duration::from_secs(1));
}
