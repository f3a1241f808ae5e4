//! Acceptance 8 of the reference server: this server beside a Postfix set up the same way, end
//! to end, on loopback. Not a criterion bench and not a test: a measuring program.
//!
//! ```text
//! cargo bench --bench server_vs_postfix          # needs root (Postfix), smtp-source
//! MAILROOM_BENCH_ROUNDS=5 MAILROOM_BENCH_MESSAGES=5000 cargo bench --bench server_vs_postfix
//! ```
//!
//! Both deliver every message into one Maildir through their virtual delivery agent
//! (`virtual_mailbox_domains = bench.example`, `virtual_mailbox_maps` naming
//! `bench/Maildir/`), both fsync as they do by default. Each round sends the same
//! `smtp-source` load (4 KiB messages, 20 sessions, 5,000 messages) and measures from the first
//! connection until the last message is in the Maildir's `new/`. Prints messages per second
//! for each, per round, the medians and the ratio of the medians.

// A measuring program: a failed set-up step should stop it with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mailroom::server;
use mailroom_testkit::postfix::Postfix;

const SESSIONS: &str = "20";
const SIZE: &str = "4096";

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn count(dir: &Path) -> usize {
    std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0)
}

/// Runs smtp-source against `port` and waits until `n` messages are in `new`; messages/s.
fn drive(source: &Path, port: u16, n: usize, new: &Path) -> f64 {
    let started = Instant::now();
    let out = Command::new(source)
        .args(["-s", SESSIONS, "-m", &n.to_string(), "-l", SIZE])
        .args(["-f", "load@example.com", "-t", "bench@bench.example"])
        .arg(format!("127.0.0.1:{port}"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "smtp-source: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let deadline = Instant::now() + Duration::from_secs(600);
    while count(new) < n {
        assert!(
            Instant::now() < deadline,
            "only {} of {n} delivered",
            count(new)
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let secs = started.elapsed().as_secs_f64();
    n as f64 / secs
}

fn mailroom_round(source: &Path, n: usize) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(
        data.join("vmailbox"),
        "bench@bench.example bench/Maildir/\n",
    )
    .unwrap();
    let port = mailroom_testkit::free_port();
    let text = format!(
        "data_directory = {:?}\nsmtpd_listen = \"127.0.0.1:{port}\"\nsubmission_listen = \"\"\nsubmissions_listen = \"\"\n\
         virtual_mailbox_domains = [\"bench.example\"]\nvirtual_mailbox_maps = [\"hash:vmailbox\"]\n",
        data.display().to_string()
    );
    let config = server::Config::parse(Path::new("bench.toml"), &text).unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let handle = runtime.spawn(async move {
        server::prepare_data(&config).unwrap();
        let shared = server::open(config).unwrap();
        let running = server::start(Arc::clone(&shared)).await.unwrap();
        running
            .run(async {
                let _ = stop_rx.await;
            })
            .await;
    });
    mailroom_testkit::wait_for_port(
        format!("127.0.0.1:{port}").parse().unwrap(),
        Duration::from_secs(10),
    );
    let rate = drive(source, port, n, &data.join("vmail/bench/Maildir/new"));
    let _ = stop_tx.send(());
    runtime.block_on(handle).unwrap();
    rate
}

fn postfix_round(source: &Path, n: usize) -> Option<f64> {
    let postfix = Postfix::builder()
        .main_cf("virtual_mailbox_domains", "bench.example")
        .main_cf("virtual_mailbox_base", "{dir}/vmail")
        .main_cf("virtual_mailbox_maps", "texthash:{conf}/vmailbox")
        .main_cf("virtual_uid_maps", "static:65534")
        .main_cf("virtual_gid_maps", "static:65534")
        .table("vmailbox", "bench@bench.example bench/Maildir/\n")
        .start()?;
    let vmail = postfix.dir().join("vmail");
    std::fs::create_dir_all(&vmail).unwrap();
    Command::new("chown")
        .args(["65534:65534"])
        .arg(&vmail)
        .status()
        .unwrap();
    let new = vmail.join("bench/Maildir/new");
    let rate = drive(source, postfix.port(), n, &new);
    Some(rate)
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    // `cargo bench` passes `--bench`; nothing to parse.
    let Some(source) = mailroom_testkit::peer("smtp-source") else {
        return;
    };
    let rounds = env_usize("MAILROOM_BENCH_ROUNDS", 3);
    let n = env_usize("MAILROOM_BENCH_MESSAGES", 5000);
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for round in 1..=rounds {
        let a = mailroom_round(&source, n);
        let Some(b) = postfix_round(&source, n) else {
            println!("server_vs_postfix: Postfix could not be started (needs root); skipped");
            return;
        };
        println!(
            "round {round}: mailroom {a:.0} msg/s, postfix {b:.0} msg/s, ratio {:.2}",
            a / b
        );
        ours.push(a);
        theirs.push(b);
    }
    let (a, b) = (median(&mut ours), median(&mut theirs));
    println!(
        "server_vs_postfix/{n}x{SIZE}B/{SESSIONS} sessions: mailroom {a:.0} msg/s, postfix {b:.0} msg/s (medians of {rounds}), ratio {:.2}",
        a / b
    );
}
