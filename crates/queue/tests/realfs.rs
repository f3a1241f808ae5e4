//! The queue on the real file system: a 50 MiB message streamed in and out, reopening, and the
//! lock that keeps a second process out.

// Tests unwrap: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{self, Read, Write};
use std::sync::Arc;

use common::{content, envelope};
use mailroom_queue::crc::Crc32c;
use mailroom_queue::{Config, Queue, QueueError, RealFs};

fn quiet() -> Config {
    Config {
        logger: Arc::new(|_: &str| {}),
        ..Config::default()
    }
}

/// Produces `len` bytes of a fixed pattern without holding them, and says how many bytes the
/// biggest single read asked for.
struct Pattern {
    left: u64,
    pos: u64,
    biggest_read: usize,
}

impl Read for Pattern {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.biggest_read = self.biggest_read.max(buf.len());
        let n = (buf.len() as u64).min(self.left) as usize;
        for b in &mut buf[..n] {
            *b = if self.pos % 78 == 76 {
                b'\r'
            } else if self.pos % 78 == 77 {
                b'\n'
            } else {
                b'a' + (self.pos % 26) as u8
            };
            self.pos += 1;
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// Checksums what is written, holding nothing.
struct Sum(Crc32c, u64);

impl Write for Sum {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.update(buf);
        self.1 += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn fifty_mib_message_streams_in_bounded_pieces() {
    const LEN: u64 = 50 << 20;
    let dir = tempfile::tempdir().unwrap();
    let q = Queue::open(RealFs, dir.path(), quiet()).unwrap();
    let mut src = Pattern {
        left: LEN,
        pos: 0,
        biggest_read: 0,
    };
    let id = q.enqueue(envelope(1, "example.net"), &mut src).unwrap();
    assert!(
        src.biggest_read <= 1 << 20,
        "read {} bytes at once",
        src.biggest_read
    );
    let mut want = Crc32c::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut p = Pattern {
        left: LEN,
        pos: 0,
        biggest_read: 0,
    };
    loop {
        let n = p.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        want.update(&buf[..n]);
    }
    drop(q);
    let q = Queue::open(RealFs, dir.path(), quiet()).unwrap();
    assert_eq!(q.show(id).unwrap().envelope.size, LEN);
    let mut got = Sum(Crc32c::new(), 0);
    q.export(id, &mut got).unwrap();
    assert_eq!(got.1, LEN);
    assert_eq!(got.0.finish(), want.finish());
}

#[test]
fn small_messages_survive_reopen_and_a_second_opener_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let q = Queue::open(RealFs, dir.path(), quiet()).unwrap();
    let ids: Vec<_> = (0..20)
        .map(|i| {
            q.enqueue(
                envelope(2, "example.net"),
                &content(&format!("m{i}"), 100 * i + 10)[..],
            )
            .unwrap()
        })
        .collect();
    match Queue::open(RealFs, dir.path(), quiet()) {
        Err(QueueError::Io { source, .. }) => assert_eq!(source.kind(), io::ErrorKind::WouldBlock),
        other => panic!("second open: {other:?}"),
    }
    drop(q);
    let q = Queue::open(RealFs, dir.path(), quiet()).unwrap();
    for (i, id) in ids.iter().enumerate() {
        let mut out = Vec::new();
        q.export(*id, &mut out).unwrap();
        assert_eq!(out, content(&format!("m{i}"), 100 * i + 10));
    }
    assert!(q.recovery().quarantined.is_empty());
    assert!(q.recovery().removed_incomplete.is_empty());
}
