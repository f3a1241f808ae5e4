//! Acceptance 1: crash at every operation of an enqueue and of each state change, on the
//! simulated file system, under each crash mode. Every acknowledged message is present and
//! complete afterwards, no recipient goes back from delivered, and an unacknowledged message
//! may be missing but is never partial.

// Tests unwrap: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{config, content, envelope, open, read_back, start};
use mailroom_queue::sim::{CrashMode, SimFs};
use mailroom_queue::{
    Diagnostic, ManualClock, Outcome, Queue, QueueId, QueueState, RcptStatus, Summary,
};
use mailroom_smtp_proto::EnhancedCode;

fn modes(n: u64) -> [CrashMode; 4] {
    [
        CrashMode::LoseUnsynced,
        CrashMode::KeepAll,
        CrashMode::Mixed(n * 7 + 1),
        CrashMode::Mixed(n * 13 + 5),
    ]
}

/// Three acknowledged messages (one with its content in its own file), and segments rotated.
fn setup() -> (SimFs, ManualClock, Vec<(QueueId, Vec<u8>)>) {
    let fs = SimFs::new();
    let clock = ManualClock::new(start());
    let q = open(&fs, &clock);
    let mut pre = Vec::new();
    for (i, len) in [300, 3000, 1500].into_iter().enumerate() {
        let body = content(&format!("pre{i}"), len);
        let id = q.enqueue(envelope(3, "example.net"), &body[..]).unwrap();
        pre.push((id, body));
    }
    (fs, clock, pre)
}

fn check_pre(q: &Queue<SimFs>, pre: &[(QueueId, Vec<u8>)]) {
    for (id, body) in pre {
        assert_eq!(
            &read_back(q, *id).unwrap(),
            body,
            "acknowledged message {id} damaged"
        );
    }
}

fn count_ops(fs: &SimFs, f: impl FnOnce()) -> u64 {
    let before = fs.ops();
    f();
    fs.ops() - before
}

#[test]
fn enqueue_crash_at_every_operation() {
    for size in [200usize, 5000] {
        let new_body = content("new", size);
        let (fs, clock, _) = setup();
        let total = count_ops(&fs, || {
            open(&fs, &clock)
                .enqueue(envelope(2, "example.com"), &new_body[..])
                .unwrap();
        });
        assert!(
            total >= 3,
            "an enqueue writes and flushes ({total} operations)"
        );
        for n in 0..total {
            for mode in modes(n) {
                let (fs, clock, pre) = setup();
                fs.crash_after(n);
                let acked = Queue::open(fs.clone(), "/q", config(&clock))
                    .ok()
                    .and_then(|q| q.enqueue(envelope(2, "example.com"), &new_body[..]).ok());
                assert!(fs.is_crashed(), "operation {n} of {total} did not crash");
                fs.recover(mode);
                let q = open(&fs, &clock);
                check_pre(&q, &pre);
                let new: Vec<Summary> = q
                    .list()
                    .into_iter()
                    .filter(|s| !pre.iter().any(|(id, _)| *id == s.id))
                    .collect();
                assert!(new.len() <= 1, "{new:?}");
                if let Some(id) = acked {
                    assert_eq!(
                        new.len(),
                        1,
                        "acknowledged {id} lost (size {size}, crash at {n}, {mode:?})"
                    );
                }
                for s in &new {
                    assert_eq!(
                        read_back(&q, s.id).unwrap(),
                        new_body,
                        "partial message after crash at {n}"
                    );
                    assert_eq!(s.envelope.recipients.len(), 2);
                }
                // The queue goes on working.
                let id = q
                    .enqueue(envelope(1, "example.com"), &b"x: y\r\n\r\nz"[..])
                    .unwrap();
                assert_eq!(read_back(&q, id).unwrap(), b"x: y\r\n\r\nz");
            }
        }
    }
}

fn d(code: (u8, u16, u16), text: &str) -> Diagnostic {
    Diagnostic::new(EnhancedCode::new(code.0, code.1, code.2).unwrap(), text)
}

/// The first message has rcpt0 delivered, rcpt1 and rcpt2 deferred, and is due again.
fn setup_partly_delivered() -> (SimFs, ManualClock, Vec<(QueueId, Vec<u8>)>) {
    let (fs, clock, pre) = setup();
    let q = open(&fs, &clock);
    let lease = q.take().unwrap();
    assert_eq!(lease.id(), pre[0].0);
    q.complete(
        lease,
        &[
            (0, Outcome::Delivered),
            (1, Outcome::Deferred(d((4, 2, 0), "busy"))),
            (2, Outcome::Deferred(d((4, 2, 0), "busy"))),
        ],
    )
    .unwrap();
    clock.advance(Duration::from_secs(400));
    (fs, clock, pre)
}

/// Takes leases until the one on `id` (the others stay leased).
fn take(q: &Queue<SimFs>, id: QueueId) -> mailroom_queue::Lease {
    loop {
        let lease = q.take().expect("message is ready");
        if lease.id() == id {
            return lease;
        }
    }
}

fn statuses(q: &Queue<SimFs>, id: QueueId) -> Option<Vec<RcptStatus>> {
    q.show(id).map(|s| {
        s.envelope
            .recipients
            .into_iter()
            .map(|r| r.status)
            .collect()
    })
}

#[test]
fn complete_crash_at_every_operation() {
    let target = |q: &Queue<SimFs>, id: QueueId| {
        let lease = take(q, id);
        assert_eq!(lease.recipients(), &[1, 2]);
        q.complete(
            lease,
            &[
                (1, Outcome::Delivered),
                (2, Outcome::Deferred(d((4, 2, 0), "still busy"))),
            ],
        )
    };
    let (fs, clock, pre) = setup_partly_delivered();
    let q = open(&fs, &clock);
    let total = count_ops(&fs, || target(&q, pre[0].0).unwrap());
    drop(q);
    for n in 0..total {
        for mode in modes(n) {
            let (fs, clock, pre) = setup_partly_delivered();
            let q = open(&fs, &clock);
            fs.crash_after(n);
            let acked = target(&q, pre[0].0).is_ok();
            drop(q);
            fs.recover(mode);
            let q = open(&fs, &clock);
            check_pre(&q, &pre);
            let st = statuses(&q, pre[0].0).unwrap();
            assert_eq!(
                st[0],
                RcptStatus::Delivered,
                "delivered recipient went back ({n}, {mode:?})"
            );
            assert!(matches!(st[2], RcptStatus::Deferred(_)));
            if acked {
                assert_eq!(st[1], RcptStatus::Delivered);
            } else {
                // The one in flight: either recorded or retried.
                assert!(matches!(
                    st[1],
                    RcptStatus::Delivered | RcptStatus::Deferred(_)
                ));
            }
        }
    }
}

#[test]
fn final_bounce_crash_at_every_operation() {
    let target = |q: &Queue<SimFs>, id: QueueId| {
        let lease = take(q, id);
        q.complete(
            lease,
            &[
                (1, Outcome::Delivered),
                (2, Outcome::Bounced(d((5, 1, 1), "550 5.1.1 no such user"))),
            ],
        )
    };
    let (fs, clock, pre) = setup_partly_delivered();
    let q = open(&fs, &clock);
    let total = count_ops(&fs, || target(&q, pre[0].0).unwrap());
    drop(q);
    for n in 0..total {
        for mode in modes(n) {
            let (fs, clock, pre) = setup_partly_delivered();
            let q = open(&fs, &clock);
            fs.crash_after(n);
            let acked = target(&q, pre[0].0).is_ok();
            drop(q);
            fs.recover(mode);
            // Opening finishes a message whose recipients are all done (bounce, remove).
            let q = open(&fs, &clock);
            check_pre(&q, &pre[1..]);
            let dsns: Vec<Summary> = q
                .list()
                .into_iter()
                .filter(|s| s.envelope.reverse_path.is_null())
                .collect();
            match statuses(&q, pre[0].0) {
                Some(st) => {
                    assert!(!acked, "completed message still queued ({n}, {mode:?})");
                    assert_eq!(st[0], RcptStatus::Delivered);
                    assert!(matches!(st[2], RcptStatus::Deferred(_)));
                    assert!(dsns.is_empty());
                }
                None => {
                    assert!(
                        !dsns.is_empty(),
                        "message removed without its bounce ({n}, {mode:?})"
                    );
                    for s in dsns {
                        assert_eq!(
                            s.envelope.recipients[0].path.to_string(),
                            "<alice@example.org>"
                        );
                        let text = String::from_utf8(read_back(&q, s.id).unwrap()).unwrap();
                        assert!(
                            text.contains("Final-Recipient: rfc822; rcpt2@example.net"),
                            "{text}"
                        );
                        assert!(!text.contains("Final-Recipient: rfc822; rcpt1@"), "{text}");
                        assert!(text.contains("Subject: pre0"), "original header returned");
                    }
                }
            }
        }
    }
}

#[test]
fn hold_and_delete_crash_at_every_operation() {
    let (fs, clock, pre) = setup();
    let q = open(&fs, &clock);
    let hold_ops = count_ops(&fs, || q.hold(pre[1].0).unwrap());
    let delete_ops = count_ops(&fs, || q.delete(pre[1].0).unwrap());
    drop(q);
    for n in 0..hold_ops {
        for mode in modes(n) {
            let (fs, clock, pre) = setup();
            let q = open(&fs, &clock);
            fs.crash_after(n);
            let acked = q.hold(pre[1].0).is_ok();
            drop(q);
            fs.recover(mode);
            let q = open(&fs, &clock);
            check_pre(&q, &pre);
            let state = q.show(pre[1].0).unwrap().state;
            if acked {
                assert_eq!(state, QueueState::Hold);
            }
        }
    }
    for n in 0..delete_ops {
        for mode in modes(n) {
            let (fs, clock, pre) = setup();
            let q = open(&fs, &clock);
            fs.crash_after(n);
            let acked = q.delete(pre[1].0).is_ok();
            drop(q);
            fs.recover(mode);
            let q = open(&fs, &clock);
            check_pre(&q, &[pre[0].clone(), pre[2].clone()]);
            if q.show(pre[1].0).is_some() {
                assert!(!acked, "deleted message came back ({n}, {mode:?})");
                assert_eq!(read_back(&q, pre[1].0).unwrap(), pre[1].1);
            }
        }
    }
}

/// A write or fsync that fails (ENOSPC, EIO) fails the enqueue and leaves nothing deliverable,
/// now or after a restart; the queue then goes on working.
#[test]
fn failed_operation_leaves_nothing_deliverable() {
    for size in [200usize, 5000] {
        let body = content("enospc", size);
        let (fs, clock, _) = setup();
        let q = open(&fs, &clock);
        let total = count_ops(&fs, || {
            q.enqueue(envelope(1, "example.com"), &body[..]).unwrap();
        });
        drop(q);
        for n in 0..total {
            let (fs, clock, pre) = setup();
            let q = open(&fs, &clock);
            fs.fail_after(n);
            let result = q.enqueue(envelope(1, "example.com"), &body[..]);
            assert!(
                result.is_err(),
                "failure at operation {n} of {total} was acknowledged"
            );
            assert_eq!(q.list().len(), pre.len(), "failed message visible");
            assert!(
                q.take()
                    .is_some_and(|l| pre.iter().any(|(id, _)| *id == l.id()))
            );
            let again = q
                .enqueue(envelope(1, "example.com"), &b"a: b\r\n\r\nc"[..])
                .unwrap();
            drop(q);
            fs.recover(CrashMode::KeepAll);
            let q = open(&fs, &clock);
            check_pre(&q, &pre);
            let ids: Vec<QueueId> = q.list().into_iter().map(|s| s.id).collect();
            assert_eq!(
                ids.len(),
                pre.len() + 1,
                "failed message found after restart ({n})"
            );
            assert!(ids.contains(&again));
        }
    }
}

/// A pinned (deferred) message in the oldest segment, and segments full of delivered mail: the
/// completion that frees a segment copies the pinned message forward and deletes old segments.
fn setup_compaction() -> (SimFs, ManualClock, QueueId, Vec<u8>) {
    let fs = SimFs::new();
    let clock = ManualClock::new(start());
    let mut cfg = config(&clock);
    cfg.segment_size = 2048;
    let q = Queue::open(fs.clone(), "/q", cfg).unwrap();
    let body = content("pinned", 700);
    let pinned = q.enqueue(envelope(2, "slow.example"), &body[..]).unwrap();
    let l = q.take().unwrap();
    q.complete(
        l,
        &[
            (0, Outcome::Delivered),
            (1, Outcome::Deferred(d((4, 2, 0), "slow"))),
        ],
    )
    .unwrap();
    for i in 0..12 {
        q.enqueue(
            envelope(1, "example.net"),
            &content(&format!("f{i}"), 500)[..],
        )
        .unwrap();
    }
    (fs, clock, pinned, body)
}

fn deliver_all(fs: &SimFs, clock: &ManualClock) -> Result<(), mailroom_queue::QueueError> {
    let mut cfg = config(clock);
    cfg.segment_size = 2048;
    let q = Queue::open(fs.clone(), "/q", cfg)?;
    while let Some(l) = q.take() {
        q.complete(l, &[(0, Outcome::Delivered)])?;
    }
    Ok(())
}

#[test]
fn compaction_crash_at_every_operation() {
    let (fs, clock, _, _) = setup_compaction();
    let segs_before = mailroom_queue::Fs::read_dir(&fs, std::path::Path::new("/q/seg"))
        .unwrap()
        .len();
    let total = count_ops(&fs, || deliver_all(&fs, &clock).unwrap());
    let segs_after = mailroom_queue::Fs::read_dir(&fs, std::path::Path::new("/q/seg"))
        .unwrap()
        .len();
    assert!(
        segs_after < segs_before,
        "no segment collected ({segs_before} -> {segs_after})"
    );
    for n in 0..total {
        for mode in modes(n) {
            let (fs, clock, pinned, body) = setup_compaction();
            fs.crash_after(n);
            let _ = deliver_all(&fs, &clock);
            fs.recover(mode);
            let q = open(&fs, &clock);
            let s = q
                .show(pinned)
                .unwrap_or_else(|| panic!("pinned message lost ({n}, {mode:?})"));
            assert_eq!(s.envelope.recipients[0].status, RcptStatus::Delivered);
            assert!(matches!(
                s.envelope.recipients[1].status,
                RcptStatus::Deferred(_)
            ));
            assert_eq!(read_back(&q, pinned).unwrap(), body);
            assert!(q.recovery().quarantined.is_empty(), "{:?}", q.recovery());
            for s in q.list() {
                assert!(read_back(&q, s.id).is_ok());
            }
        }
    }
}

/// A state change whose flush fails is not reported done, and since memory already showed it,
/// the queue stops (every later change fails) until it is reopened from the disk.
#[test]
fn failed_state_change_poisons_until_reopened() {
    let (fs, clock, pre) = setup();
    let q = open(&fs, &clock);
    let ops = count_ops(&fs, || q.hold(pre[0].0).unwrap());
    for n in 0..ops {
        let (fs, clock, pre) = setup();
        let q = open(&fs, &clock);
        fs.fail_after(n);
        assert!(
            q.hold(pre[0].0).is_err(),
            "failure at {n} of {ops} reported as done"
        );
        assert!(matches!(
            q.release(pre[0].0),
            Err(mailroom_queue::QueueError::Poisoned(_))
        ));
        assert!(
            q.enqueue(envelope(1, "example.com"), &b"a: b\r\n\r\nc"[..])
                .is_err()
        );
        drop(q);
        let q = open(&fs, &clock);
        check_pre(&q, &pre);
        assert_eq!(
            q.show(pre[0].0).unwrap().state,
            QueueState::Incoming,
            "failed hold applied"
        );
        q.hold(pre[0].0).unwrap();
    }
}
