//! Queue benches: durable enqueue of 4 KiB messages with 1, 16 and 64 concurrent enqueuers
//! beside the one-fsync-per-message baseline (write, fsync, rename, fsync the directory) on the
//! same disk in the same run; take-and-complete throughput; and the memory a queued message
//! costs with 1,000,000 messages queued.
//!
//! `cargo bench --bench queue`. The queues live in temporary directories under `$TMPDIR` (the
//! disk measured) and are removed at the end. The 1,000,000-message queue is built on
//! `/dev/shm` when it exists (tmpfs: building it on a real disk would measure the disk again,
//! and the figure wanted is memory), with 64 enqueuers; `MAILROOM_BENCH_QUEUE_MESSAGES` changes
//! the count. Its figures are printed, not timed: the index's own accounting
//! (`Queue::index_memory`) and the growth of the process's resident set.

// Bench code: a failed set-up step should stop the run with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput};
use mailroom::queue::{Config, Diagnostic, Envelope, Outcome, Queue, RealFs};
use mailroom::smtp::{EnhancedCode, ForwardPath, ReversePath};

const SIZE: usize = 4096;

fn message() -> Vec<u8> {
    let mut m = b"From: a@example.test\r\nTo: b@example.test\r\nSubject: bench\r\n\r\n".to_vec();
    while m.len() < SIZE {
        m.extend_from_slice(b"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\r\n");
    }
    m.truncate(SIZE);
    m
}

fn envelope() -> Envelope {
    Envelope::new(
        ReversePath::Mailbox("a@example.test".parse().unwrap()),
        vec![ForwardPath::Mailbox("b@example.test".parse().unwrap())],
    )
}

fn quiet() -> Config {
    Config {
        logger: Arc::new(|_: &str| {}),
        ..Config::default()
    }
}

/// The physical limit of one-file-per-message: what Postfix's queue does per message.
fn baseline_one(dir: &Path, n: u64, body: &[u8]) {
    let tmp = dir.join(format!("{n}.tmp"));
    let mut f = File::create_new(&tmp).unwrap();
    f.write_all(body).unwrap();
    f.sync_all().unwrap();
    drop(f);
    std::fs::rename(&tmp, dir.join(n.to_string())).unwrap();
    File::open(dir).unwrap().sync_all().unwrap();
}

/// Enqueues `total` messages from `threads` threads at once; returns the elapsed time.
fn enqueue_parallel(q: &Queue<RealFs>, threads: u64, total: u64, body: &Arc<Vec<u8>>) -> Duration {
    let per = total.div_ceil(threads);
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..threads {
            let q = q.clone();
            let body = Arc::clone(body);
            s.spawn(move || {
                for _ in 0..per {
                    q.enqueue(envelope(), &body[..]).unwrap();
                }
            });
        }
    });
    start
        .elapsed()
        .mul_f64(total as f64 / (per * threads) as f64)
}

fn enqueue(c: &mut Criterion, root: &Path) {
    let body = Arc::new(message());
    let mut g = c.benchmark_group("queue");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .throughput(Throughput::Elements(1));

    let base = root.join("baseline");
    std::fs::create_dir_all(&base).unwrap();
    let mut n = 0u64;
    g.bench_function("baseline/4k_fsync_per_message", |b| {
        b.iter(|| {
            n += 1;
            baseline_one(&base, n, &body);
        });
    });

    for threads in [1u64, 16, 64] {
        let dir = root.join(format!("enqueue-{threads}"));
        let q = Queue::open(RealFs, &dir, quiet()).unwrap();
        g.bench_with_input(
            BenchmarkId::new("enqueue/4k", threads),
            &threads,
            |b, &t| {
                b.iter_custom(|iters| enqueue_parallel(&q, t, iters.max(t), &body));
            },
        );
    }
    g.finish();
}

fn take_complete(c: &mut Criterion, root: &Path) {
    let body = Arc::new(message());
    let mut g = c.benchmark_group("queue/take_complete");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .throughput(Throughput::Elements(1));
    for workers in [1u64, 16] {
        let dir = root.join(format!("deliver-{workers}"));
        let mut cfg = quiet();
        cfg.initial_destination_concurrency = 64;
        cfg.destination_concurrency_limit = 64;
        let q = Queue::open(RealFs, &dir, cfg).unwrap();
        g.bench_with_input(BenchmarkId::new("4k", workers), &workers, |b, &w| {
            b.iter_custom(|iters| {
                let total = iters.max(w);
                // Fill outside the timed part, with many enqueuers.
                enqueue_parallel(&q, 64, total, &body);
                let per = total.div_ceil(w);
                let start = Instant::now();
                std::thread::scope(|s| {
                    for _ in 0..w {
                        let q = q.clone();
                        s.spawn(move || {
                            for _ in 0..per {
                                let Some(lease) = q.take() else { break };
                                let results: Vec<(usize, Outcome)> = lease
                                    .recipients()
                                    .iter()
                                    .map(|&i| (i, Outcome::Delivered))
                                    .collect();
                                q.complete(lease, &results).unwrap();
                            }
                        });
                    }
                });
                start.elapsed()
            });
        });
    }
    g.finish();
}

fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

fn memory(c: &mut Criterion) {
    let count: u64 = std::env::var("MAILROOM_BENCH_QUEUE_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let shm = Path::new("/dev/shm");
    let dir = if shm.is_dir() {
        tempfile::tempdir_in(shm).unwrap()
    } else {
        tempfile::tempdir().unwrap()
    };
    let before = rss_bytes();
    let q = Queue::open(RealFs, dir.path().join("q"), quiet()).unwrap();
    let body = Arc::new(b"Subject: m\r\n\r\nx\r\n".to_vec());
    let built = enqueue_parallel(&q, 64, count, &body);
    let after = rss_bytes();
    let index = q.index_memory() as u64;
    let queued = q.list().len() as u64;
    eprintln!(
        "queue/memory: {queued} messages queued in {built:.1?}; index accounting {} bytes/message; \
         resident set grew {} bytes/message",
        index / queued.max(1),
        after.saturating_sub(before) / queued.max(1)
    );
    let mut g = c.benchmark_group("queue/memory");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    // Scheduling with the big index: take the next message and hand it back deferred (one
    // durable update record on tmpfs), so the next take finds the next message.
    let busy = Diagnostic::new(EnhancedCode::new(4, 2, 0).unwrap(), "450 4.2.0 busy");
    g.bench_function(BenchmarkId::new("take_defer_with_queued", count), |b| {
        b.iter(|| {
            // Once every message was deferred, make them all due again (postqueue -f).
            let lease = q.take().or_else(|| {
                q.flush();
                q.take()
            });
            let lease = lease.unwrap();
            let results: Vec<(usize, Outcome)> = lease
                .recipients()
                .iter()
                .map(|&i| (i, Outcome::Deferred(busy.clone())))
                .collect();
            q.complete(lease, &results).unwrap();
        });
    });
    g.finish();
}

fn main() {
    let root = tempfile::tempdir().unwrap();
    let mut c = Criterion::default().configure_from_args();
    enqueue(&mut c, root.path());
    take_complete(&mut c, root.path());
    // Building the big queue takes seconds: only when no filter excludes it.
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    if filters.is_empty()
        || filters
            .iter()
            .any(|f| "queue/memory".contains(f.as_str()) || f.contains("memory"))
    {
        memory(&mut c);
    }
    c.final_summary();
}
