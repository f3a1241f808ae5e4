//! Helpers shared by the queue's integration tests.

#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use mailroom_queue::sim::SimFs;
use mailroom_queue::{Config, Envelope, ManualClock, Queue};
use mailroom_smtp_proto::{ForwardPath, ReversePath};

/// The start of every test clock: 2023-11-14.
pub fn start() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000)
}

/// A quiet configuration on `clock` with small limits, so tests exercise the external-content
/// path and segment rotation cheaply.
pub fn config(clock: &ManualClock) -> Config {
    Config {
        inline_limit: 1024,
        segment_size: 4096,
        clock: Arc::new(clock.clone()),
        logger: Arc::new(|_: &str| {}),
        ..Config::default()
    }
}

/// Opens the queue in `/q`.
pub fn open(fs: &SimFs, clock: &ManualClock) -> Queue<SimFs> {
    Queue::open(fs.clone(), "/q", config(clock)).unwrap()
}

/// An envelope from alice to `n` recipients at `domain`.
pub fn envelope(n: usize, domain: &str) -> Envelope {
    Envelope::new(
        ReversePath::Mailbox("alice@example.org".parse().unwrap()),
        (0..n)
            .map(|i| ForwardPath::Mailbox(format!("rcpt{i}@{domain}").parse().unwrap()))
            .collect(),
    )
}

/// A message content of `len` bytes that names `key`, so each one is recognisable.
pub fn content(key: &str, len: usize) -> Vec<u8> {
    let mut v = format!("Subject: {key}\r\nFrom: alice@example.org\r\n\r\n").into_bytes();
    let mut i = 0u32;
    while v.len() < len {
        v.extend_from_slice(format!("{key} line {i}\r\n").as_bytes());
        i += 1;
    }
    v.truncate(len.max(10));
    v
}

/// Reads message `id`'s content back.
pub fn read_back<F: mailroom_queue::Fs>(
    q: &Queue<F>,
    id: mailroom_queue::QueueId,
) -> Result<Vec<u8>, mailroom_queue::QueueError> {
    let mut out = Vec::new();
    q.export(id, &mut out)?;
    Ok(out)
}
