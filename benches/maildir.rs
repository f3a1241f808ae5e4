//! Maildir benches: durable delivery of 4 KiB messages, one at a time and in batches of 32,
//! beside the raw loop (write, fsync, rename, fsync the directory) on the same disk in the same
//! run; the same delivery with the fsyncs skipped (the cost of everything but the flushes); and
//! a scan of a 100,000-message Maildir, with its peak memory. After the criterion groups, the
//! raw loop, single and batched deliveries are timed again in interleaved rounds and the ratios
//! printed (single vs raw loop, batch vs single per message), which a disk whose speed drifts
//! between the groups cannot skew.
//!
//! A batch's files are flushed by `syncfs(2)` on ext4 (see `RealFs`), which also writes back
//! whatever else is dirty on that file system: run the bench on a quiet file system to see the
//! store's own cost.
//!
//! `cargo bench --bench maildir`. The delivery benches write into a temporary directory under
//! `$TMPDIR` (the disk measured) and remove it at the end. The scan fixture is built once in
//! `$TMPDIR/mailroom-bench-maildir-100k` and kept for later runs (creating and removing 100,000
//! files takes minutes on a disk mounted with `discard`); delete it by hand when done.

// Bench code: a failed set-up step should stop the run with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput};
use mailroom::maildir::{Batch, Fs, Maildir, Metadata, RealFs};

/// The real file system with every fsync skipped: what a delivery costs without the flushes
/// (never use this for mail).
#[derive(Debug, Clone, Copy)]
struct NoSync;

impl Fs for NoSync {
    type File = File;
    type Reader = File;
    fn create_new(&self, path: &Path) -> std::io::Result<File> {
        RealFs.create_new(path)
    }
    fn open_append(&self, path: &Path) -> std::io::Result<File> {
        RealFs.open_append(path)
    }
    fn sync_file(&self, _: &mut File) -> std::io::Result<()> {
        Ok(())
    }
    fn rename(&self, from: &Path, to: &Path) -> std::io::Result<()> {
        RealFs.rename(from, to)
    }
    fn rename_noreplace(&self, from: &Path, to: &Path) -> std::io::Result<()> {
        RealFs.rename_noreplace(from, to)
    }
    fn remove_file(&self, path: &Path) -> std::io::Result<()> {
        RealFs.remove_file(path)
    }
    fn create_dir(&self, path: &Path) -> std::io::Result<()> {
        RealFs.create_dir(path)
    }
    fn remove_dir(&self, path: &Path) -> std::io::Result<()> {
        RealFs.remove_dir(path)
    }
    fn sync_dir(&self, _: &Path) -> std::io::Result<()> {
        Ok(())
    }
    fn read_dir(&self, path: &Path) -> std::io::Result<Vec<std::ffi::OsString>> {
        RealFs.read_dir(path)
    }
    fn open(&self, path: &Path) -> std::io::Result<File> {
        RealFs.open(path)
    }
    fn metadata(&self, path: &Path) -> std::io::Result<Metadata> {
        RealFs.metadata(path)
    }
}

const SIZE: usize = 4096;
const BATCH: usize = 32;
const SCAN_MESSAGES: usize = 100_000;

fn message() -> Vec<u8> {
    let mut m = b"From: a@example.test\r\nTo: b@example.test\r\nSubject: bench\r\n\r\n".to_vec();
    while m.len() < SIZE {
        m.extend_from_slice(b"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\r\n");
    }
    m.truncate(SIZE);
    m
}

/// The physical limit: what any durable one-file-per-message store must do per message.
fn raw_delivery(dir: &Path, n: u64, body: &[u8]) {
    let tmp = dir.join("tmp").join(n.to_string());
    let mut f = File::create_new(&tmp).unwrap();
    f.write_all(body).unwrap();
    f.sync_all().unwrap();
    drop(f);
    let new = dir.join("new");
    std::fs::rename(&tmp, new.join(n.to_string())).unwrap();
    File::open(&new).unwrap().sync_all().unwrap();
}

fn deliver(c: &mut Criterion, root: &Path) {
    let body = message();
    let mut g = c.benchmark_group("maildir/deliver");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));

    let raw_dir = root.join("raw");
    for sub in ["tmp", "new"] {
        std::fs::create_dir_all(raw_dir.join(sub)).unwrap();
    }
    let mut n = 0u64;
    g.throughput(Throughput::Elements(1));
    g.bench_function("4k_raw_loop", |b| {
        b.iter(|| {
            n += 1;
            raw_delivery(&raw_dir, n, &body);
        });
    });

    let md = Maildir::create(root.join("single")).unwrap();
    g.bench_function("4k_fsync", |b| {
        b.iter(|| md.deliver(&body[..]).unwrap());
    });

    let md = Maildir::create(root.join("batch")).unwrap();
    g.throughput(Throughput::Elements(BATCH as u64));
    g.bench_function(BenchmarkId::new("4k_fsync_batch", BATCH), |b| {
        b.iter(|| {
            let mut batch = Batch::new();
            for _ in 0..BATCH {
                batch.add(&md, &body[..]);
            }
            for r in batch.commit() {
                r.unwrap();
            }
        });
    });

    // Last: it leaves many files' data dirty, which a batch's syncfs would have to write.
    let md = Maildir::create_with(NoSync, root.join("nosync")).unwrap();
    g.throughput(Throughput::Elements(1));
    g.bench_function("4k_nofsync", |b| {
        b.iter(|| md.deliver(&body[..]).unwrap());
    });

    g.finish();
}

/// Rounds of the paired comparison in [`paired`].
const PAIRED_ROUNDS: usize = 21;
/// Messages delivered one at a time by each of the raw loop and `deliver` in one round.
const PAIRED_SINGLES: usize = 8;

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// The same comparison as the criterion groups, interleaved: each round times a few raw-loop
/// deliveries, a few single deliveries and one batch of 32 back to back (in a rotating order),
/// and the ratios are taken within the round. The criterion groups run one after another,
/// seconds apart, and a shared virtual disk's flush latency can change several-fold in that
/// time; within a round all three see the same disk. Prints the median per-message times and
/// the median ratios with their range.
fn paired(root: &Path) {
    const VARIANTS: usize = 3;
    let body = message();
    let raw_dir = root.join("paired-raw");
    for sub in ["tmp", "new"] {
        std::fs::create_dir_all(raw_dir.join(sub)).unwrap();
    }
    let single = Maildir::create(root.join("paired-single")).unwrap();
    let batched = Maildir::create(root.join("paired-batch")).unwrap();
    let run_batch = || {
        let mut batch = Batch::new();
        for _ in 0..BATCH {
            batch.add(&batched, &body[..]);
        }
        for r in batch.commit() {
            r.unwrap();
        }
    };
    // Untimed: its syncfs writes back what the groups before left dirty (the no-fsync group's
    // files), which would otherwise be charged to the first timed batch.
    run_batch();
    let mut n = 0u64;
    // Per-message times of each variant (raw, single, batch) in each round, in seconds.
    let mut rounds: Vec<[f64; VARIANTS]> = Vec::with_capacity(PAIRED_ROUNDS);
    for round in 0..PAIRED_ROUNDS {
        let mut times = [0.0; VARIANTS];
        for k in 0..VARIANTS {
            let variant = (round + k) % VARIANTS;
            let start = Instant::now();
            let count = match variant {
                0 => {
                    for _ in 0..PAIRED_SINGLES {
                        n += 1;
                        raw_delivery(&raw_dir, n, &body);
                    }
                    PAIRED_SINGLES
                }
                1 => {
                    for _ in 0..PAIRED_SINGLES {
                        single.deliver(&body[..]).unwrap();
                    }
                    PAIRED_SINGLES
                }
                _ => {
                    run_batch();
                    BATCH
                }
            };
            times[variant] = start.elapsed().as_secs_f64() / count as f64;
        }
        rounds.push(times);
    }
    let summary = |ratios: Vec<f64>| {
        let (low, high) = ratios
            .iter()
            .fold((f64::MAX, 0.0f64), |(l, h), &r| (l.min(r), h.max(r)));
        format!("{:.2}x (range {low:.2}x to {high:.2}x)", median(ratios))
    };
    let us = |variant: usize| median(rounds.iter().map(|t| t[variant] * 1e6).collect());
    eprintln!(
        "maildir/deliver/paired, {PAIRED_ROUNDS} interleaved rounds; median per message: raw \
         loop {:.0} us, single {:.0} us, batch of {BATCH} {:.0} us\n  \
         single delivery speed vs the raw loop (median of the rounds' ratios): {}\n  \
         batch of {BATCH} vs single delivery, per message (median of the rounds' ratios): {}",
        us(0),
        us(1),
        us(2),
        summary(rounds.iter().map(|t| t[0] / t[1]).collect()),
        summary(rounds.iter().map(|t| t[1] / t[2]).collect()),
    );
}

/// The 100,000-message fixture, built once and kept (see the module docs).
fn scan_fixture() -> PathBuf {
    let path = std::env::temp_dir().join("mailroom-bench-maildir-100k");
    let done = path.join("complete");
    if done.exists() {
        return path;
    }
    let _ = std::fs::remove_dir_all(&path);
    let md = Maildir::create(&path).unwrap();
    eprintln!(
        "building the scan fixture: {SCAN_MESSAGES} messages in {}",
        path.display()
    );
    let start = Instant::now();
    for i in 0..SCAN_MESSAGES {
        // Files as Dovecot leaves them: most in cur/ with flags, some still in new/.
        let key = format!(
            "17000{i:05}.M{i}P4242Q{i}.bench.example,S={}",
            1000 + i % 5000
        );
        let p = if i % 10 == 0 {
            md.path().join("new").join(&key)
        } else {
            md.path().join("cur").join(format!("{key}:2,S"))
        };
        std::fs::write(p, b"x").unwrap();
    }
    File::create(&done).unwrap();
    eprintln!("fixture built in {:?}", start.elapsed());
    path
}

fn vm_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Peak memory of one scan: reset the peak RSS (`clear_refs` 5), scan, read `VmHWM`.
fn scan_memory(path: &Path) {
    let md = Maildir::open(path).unwrap();
    let _ = md.scan().unwrap(); // warm the directory cache
    let before = vm_kib("VmRSS:");
    let reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
    let start = Instant::now();
    let scan = md.scan().unwrap();
    let took = start.elapsed();
    let peak = vm_kib("VmHWM:");
    assert_eq!(scan.messages.len(), SCAN_MESSAGES);
    if reset {
        eprintln!(
            "maildir/scan/100k: {} messages in {took:?}; peak RSS {} KiB above the {} KiB before \
             ({} bytes per message)",
            scan.messages.len(),
            peak.saturating_sub(before),
            before,
            peak.saturating_sub(before) * 1024 / SCAN_MESSAGES as u64
        );
    } else {
        eprintln!("maildir/scan/100k: took {took:?}; peak RSS not measurable here");
    }
}

fn scan(c: &mut Criterion, fixture: &Path) {
    let md = Maildir::open(fixture).unwrap();
    let mut g = c.benchmark_group("maildir/scan");
    g.sample_size(10).measurement_time(Duration::from_secs(5));
    g.throughput(Throughput::Elements(SCAN_MESSAGES as u64));
    g.bench_function("100k", |b| {
        b.iter(|| {
            let s = md.scan().unwrap();
            assert_eq!(s.messages.len(), SCAN_MESSAGES);
            s
        });
    });
    g.finish();
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    let fixture = scan_fixture();
    scan_memory(&fixture);
    scan(&mut c, &fixture);
    let root = tempfile::Builder::new()
        .prefix("mailroom-bench-maildir-")
        .tempdir()
        .unwrap();
    deliver(&mut c, root.path());
    paired(root.path());
    c.final_summary();
    eprintln!("removing the delivered messages (slow on a disk mounted with `discard`)");
}
