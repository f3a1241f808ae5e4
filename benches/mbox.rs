//! mbox benches: scanning a large mbox and durable append.
//!
//! - `mbox/scan/index`: walk every message (From_ line, header section), skipping bodies, as
//!   building an index does; `mbox/scan/read_bodies`: also stream every body out, unquoted.
//!   Baselines in the same run: `mbox/scan/baseline_read` (plain `read` of the file into a
//!   buffer) and `mbox/scan/baseline_lines` (`read` plus `memchr` over every line end, the
//!   least work a line-oriented scan can do). The file is built once per run in a temporary
//!   directory: `MAILROOM_MBOX_BENCH_BYTES` bytes (default 1 GiB, the acceptance size; building
//!   it takes a few seconds). It is read from the page cache after the first pass, so the figures
//!   are CPU throughput. The peak resident memory of one scan (`VmHWM` after resetting it
//!   through `/proc/self/clear_refs`) is printed.
//! - `mbox/append/4k_fsync`: [`Mbox::append`] of a 4 KiB message (locks, write, fdatasync,
//!   unlock), beside `mbox/append/baseline_4k_write_fdatasync` (open, write 4 KiB at the end,
//!   fdatasync, close) on the same disk in the same run, and `mbox/append/4k_fsync_fcntl_only`
//!   (no dotlock: what creating and removing `MAILBOX.lock` costs).

// Bench set-up: a failed step should stop the run with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use criterion::{Criterion, Throughput};
use mailroom::mbox::{FromLine, LockMethod, LockOptions, Mbox, Reader, Variant};

struct Fixture {
    _dir: tempfile::TempDir,
    path: PathBuf,
    size: u64,
    messages: usize,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let target: u64 = std::env::var("MAILROOM_MBOX_BENCH_BYTES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1 << 30);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.mbox");
        let messages = build(&path, target);
        let size = std::fs::metadata(&path).unwrap().len();
        eprintln!(
            "mbox bench: {} with {messages} messages, {size} bytes",
            path.display()
        );
        Fixture {
            _dir: dir,
            path,
            size,
            messages,
        }
    })
}

/// Writes realistic mail until `target` bytes: mostly 1-8 KiB messages, some 100 KiB, a few
/// 10 MiB; 72-byte lines, quoted From_ lines, a few long lines.
fn build(path: &Path, target: u64) -> usize {
    let mut out = BufWriter::with_capacity(1 << 20, File::create(path).unwrap());
    let from = FromLine::parse(b"From sender@example.org Sat Jan  3 01:05:34 1996").unwrap();
    let line = [b'a'; 71];
    let mut written = 0u64;
    let mut n = 0usize;
    let mut body = Vec::new();
    while written < target {
        let size = match n % 1000 {
            999 => 10 << 20,
            k if k % 50 == 7 => 100 << 10,
            k => 1024 + (k * 37 % 8) * 1024,
        };
        body.clear();
        body.extend_from_slice(
            format!(
                "Return-Path: <sender@example.org>\nReceived: from mx.example.org by mail.example.net\n\tfor <rcpt@example.net>; Sat, 3 Jan 1996 01:05:34 +0000\nFrom: Sender <sender@example.org>\nTo: rcpt@example.net\nSubject: message {n}\nMessage-ID: <{n}@example.org>\nDate: Sat, 3 Jan 1996 01:05:34 +0000\n\n"
            )
            .as_bytes(),
        );
        let mut k = 0;
        while body.len() < size {
            match k % 40 {
                0 => body.extend_from_slice(b"From the desk of the sender\n"),
                20 => body.extend_from_slice(b">From a quoted reply\n"),
                _ => {
                    body.extend_from_slice(&line);
                    body.push(b'\n');
                }
            }
            k += 1;
        }
        let mut piece = Vec::with_capacity(body.len() + 200);
        mailroom::mbox::write_message(
            &from,
            &body[..],
            Variant::Mboxrd,
            Default::default(),
            &mut piece,
        )
        .unwrap();
        out.write_all(&piece).unwrap();
        written += piece.len() as u64;
        n += 1;
    }
    out.flush().unwrap();
    n
}

/// Peak resident memory since the last reset, in KiB.
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

fn scan_index(path: &Path) -> usize {
    let mut reader = Reader::new(File::open(path).unwrap(), Variant::Mboxrd);
    let mut n = 0;
    while let Some(entry) = reader.next_entry().unwrap() {
        entry.skip_body().unwrap();
        n += 1;
    }
    n
}

fn scan_bodies(path: &Path) -> (usize, u64) {
    let mut reader = Reader::new(File::open(path).unwrap(), Variant::Mboxrd);
    let mut n = 0;
    let mut bytes = 0;
    while let Some(mut entry) = reader.next_entry().unwrap() {
        bytes += std::io::copy(&mut entry, &mut std::io::sink()).unwrap();
        n += 1;
    }
    (n, bytes)
}

fn scan(c: &mut Criterion) {
    let f = fixture();
    // Peak memory of one full scan of each kind, measured once.
    for (name, run) in [
        (
            "index",
            &(|p: &Path| scan_index(p)) as &dyn Fn(&Path) -> usize,
        ),
        ("read_bodies", &|p: &Path| scan_bodies(p).0),
    ] {
        let before = peak_rss_kib();
        let reset = reset_peak_rss();
        let start = std::time::Instant::now();
        let n = run(&f.path);
        let elapsed = start.elapsed();
        assert_eq!(n, f.messages);
        eprintln!(
            "mbox bench: scan/{name}: {n} messages, {:.2} GB/s once, peak RSS {} KiB (before: {} KiB; reset {})",
            f.size as f64 / elapsed.as_secs_f64() / 1e9,
            peak_rss_kib().unwrap_or(0),
            before.unwrap_or(0),
            if reset { "ok" } else { "not supported" },
        );
    }

    let mut g = c.benchmark_group("mbox/scan");
    g.throughput(Throughput::Bytes(f.size));
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(20));
    g.bench_function("baseline_read", |b| {
        let mut buf = vec![0u8; 64 * 1024];
        b.iter(|| {
            let mut file = File::open(&f.path).unwrap();
            let mut total = 0u64;
            loop {
                let n = file.read(&mut buf).unwrap();
                if n == 0 {
                    break;
                }
                total += n as u64;
            }
            total
        })
    });
    g.bench_function("baseline_lines", |b| {
        let mut buf = vec![0u8; 64 * 1024];
        b.iter(|| {
            let mut file = File::open(&f.path).unwrap();
            let mut lines = 0usize;
            let mut from = 0usize;
            loop {
                let n = file.read(&mut buf).unwrap();
                if n == 0 {
                    break;
                }
                for i in memchr::memchr_iter(b'\n', &buf[..n]) {
                    lines += 1;
                    // Look at each line start, as a scan must.
                    from += usize::from(buf.get(i + 1) == Some(&b'F'));
                }
            }
            (lines, from)
        })
    });
    g.bench_function("index", |b| b.iter(|| scan_index(&f.path)));
    g.bench_function("read_bodies", |b| b.iter(|| scan_bodies(&f.path)));
    g.finish();
}

fn append(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let message: Vec<u8> = {
        let mut m = b"Subject: bench\nFrom: a@example.org\n\n".to_vec();
        while m.len() < 4096 {
            m.extend_from_slice(
                b"0123456789 abcdefghijklmnopqrstuvwxyz 0123456789 abcdefghijklmnopqrstuvwxy\n",
            );
        }
        m.truncate(4095);
        m.push(b'\n');
        m
    };
    let mut g = c.benchmark_group("mbox/append");
    g.throughput(Throughput::Elements(1));
    g.sample_size(30);
    g.measurement_time(Duration::from_secs(15));
    let raw = dir.path().join("raw");
    g.bench_function("baseline_4k_write_fdatasync", |b| {
        b.iter(|| {
            let mut file = File::options()
                .create(true)
                .append(true)
                .open(&raw)
                .unwrap();
            file.write_all(&message).unwrap();
            file.sync_data().unwrap();
        })
    });
    let mbox = Mbox::new(dir.path().join("mbox"));
    let from = FromLine::now(b"a@example.org").unwrap();
    g.bench_function("4k_fsync", |b| {
        b.iter(|| mbox.append(&from, &message[..]).unwrap())
    });
    // The same without the dotlock (fcntl only), to show what the dotlock costs.
    let fcntl_only = Mbox::new(dir.path().join("mbox-fcntl")).with_lock_options(LockOptions {
        methods: vec![LockMethod::Fcntl],
        ..LockOptions::default()
    });
    g.bench_function("4k_fsync_fcntl_only", |b| {
        b.iter(|| fcntl_only.append(&from, &message[..]).unwrap())
    });
    g.finish();
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    scan(&mut c);
    append(&mut c);
    c.final_summary();
}
