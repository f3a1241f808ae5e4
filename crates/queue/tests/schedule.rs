//! Scheduling, retries, bounces and administration, on the simulated file system with a manual
//! clock: per-destination concurrency, the active window and back-pressure, Postfix's back-off
//! and expiry, DSNs, and hold/release/requeue/flush/delete/list/export.

// Tests unwrap: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{content, envelope, read_back, start};
use mailroom_queue::sim::SimFs;
use mailroom_queue::{
    Backoff, Config, Diagnostic, ManualClock, Outcome, Queue, QueueError, QueueState, RcptStatus,
    postqueue_listing,
};
use mailroom_smtp_proto::{EnhancedCode, Ret, ReversePath};

fn cfg(clock: &ManualClock) -> Config {
    Config {
        clock: Arc::new(clock.clone()),
        logger: Arc::new(|_: &str| {}),
        backoff: Backoff {
            jitter_per_mille: 0,
            ..Backoff::default()
        },
        ..Config::default()
    }
}

fn world(config: impl FnOnce(&mut Config)) -> (SimFs, ManualClock, Queue<SimFs>) {
    let fs = SimFs::new();
    let clock = ManualClock::new(start());
    let mut c = cfg(&clock);
    config(&mut c);
    let q = Queue::open(fs.clone(), "/q", c).unwrap();
    (fs, clock, q)
}

fn temp(text: &str) -> Diagnostic {
    Diagnostic::new(EnhancedCode::new(4, 2, 0).unwrap(), text)
}

fn perm(text: &str) -> Diagnostic {
    Diagnostic::new(EnhancedCode::new(5, 1, 1).unwrap(), text)
}

#[test]
fn destination_concurrency_starts_at_5_and_grows_to_20() {
    let (_, _, q) = world(|_| {});
    for i in 0..40 {
        q.enqueue(
            envelope(1, "example.net"),
            &content(&format!("m{i}"), 100)[..],
        )
        .unwrap();
    }
    // Another destination is not held back by the first.
    let other = q
        .enqueue(envelope(1, "other.example"), &b"a: b\r\n\r\nc"[..])
        .unwrap();
    let mut leases: Vec<_> = std::iter::from_fn(|| q.take()).collect();
    assert_eq!(
        leases.len(),
        6,
        "initial_destination_concurrency 5, plus the other destination"
    );
    assert!(leases.iter().any(|l| l.id() == other));
    leases.retain(|l| l.id() != other);
    // Each success widens the window by one, up to 20.
    let mut active = leases;
    for _ in 0..60 {
        let l = active.remove(0);
        q.complete(l, &[(0, Outcome::Delivered)]).unwrap();
        active.extend(std::iter::from_fn(|| q.take()));
        assert!(
            active.len() <= 20,
            "more than 20 deliveries to one destination"
        );
        if active.is_empty() {
            break;
        }
    }
    assert!(q.list().iter().all(|s| s.id == other));
}

#[test]
fn active_window_cap_and_back_pressure() {
    let (_, _, q) = world(|c| {
        c.active_limit = 3;
        c.in_flow_delay = Duration::from_millis(50);
    });
    for i in 0..5 {
        q.enqueue(envelope(1, &format!("d{i}.example")), &b"a: b\r\n\r\nc"[..])
            .unwrap();
    }
    let leases: Vec<_> = std::iter::from_fn(|| q.take()).collect();
    assert_eq!(leases.len(), 3, "active_limit");
    // The window is full: an enqueuer waits (in_flow_delay), then goes ahead.
    let t = Instant::now();
    q.enqueue(envelope(1, "x.example"), &b"a: b\r\n\r\nc"[..])
        .unwrap();
    assert!(t.elapsed() >= Duration::from_millis(40), "no back-pressure");
    // Room again: no wait (a completion wakes waiters).
    let mut leases = leases;
    q.complete(leases.pop().unwrap(), &[(0, Outcome::Delivered)])
        .unwrap();
    assert!(q.take().is_some());
}

#[test]
fn deferral_follows_postfix_backoff_and_delivered_recipients_are_not_retried() {
    let (fs, clock, q) = world(|_| {});
    let id = q
        .enqueue(envelope(2, "example.net"), &b"a: b\r\n\r\nc"[..])
        .unwrap();
    let l = q.take().unwrap();
    assert_eq!(l.recipients(), &[0, 1]);
    q.complete(
        l,
        &[
            (0, Outcome::Delivered),
            (1, Outcome::Deferred(temp("450 4.2.0 busy"))),
        ],
    )
    .unwrap();
    let s = q.show(id).unwrap();
    assert_eq!(s.state, QueueState::Deferred);
    assert_eq!(s.envelope.attempts, 1);
    // Age 0 -> minimal_backoff_time, 300 s.
    assert_eq!(s.envelope.next_attempt, start() + Duration::from_secs(300));
    assert!(q.take().is_none(), "deferred message taken before its time");
    clock.advance(Duration::from_secs(299));
    assert!(q.take().is_none());
    clock.advance(Duration::from_secs(1));
    // After a restart too, only the deferred recipient is tried.
    drop(q);
    let q = Queue::open(fs.clone(), "/q", cfg(&clock)).unwrap();
    let l = q.take().unwrap();
    assert_eq!(l.recipients(), &[1]);
    q.complete(l, &[(1, Outcome::Deferred(temp("busy")))])
        .unwrap();
    // Age 300 s -> wait 300 s; then age 600 -> 600; ... capped at 4000 s.
    assert_eq!(
        q.show(id).unwrap().envelope.next_attempt,
        clock_now(&clock) + Duration::from_secs(300)
    );
    clock.advance(Duration::from_secs(5000));
    let l = q.take().unwrap();
    q.complete(l, &[(1, Outcome::Deferred(temp("busy")))])
        .unwrap();
    assert_eq!(
        q.show(id).unwrap().envelope.next_attempt,
        clock_now(&clock) + Duration::from_secs(4000)
    );
    let text = postqueue_listing(&q.list());
    assert!(
        text.contains("(450 4.2.0 busy)") || text.contains("(busy)"),
        "{text}"
    );
    assert!(
        !text.contains("rcpt0@"),
        "delivered recipient listed:\n{text}"
    );
}

fn clock_now(c: &ManualClock) -> std::time::SystemTime {
    mailroom_queue::Clock::now(c)
}

#[test]
fn expiry_bounces_with_a_dsn_but_never_for_a_bounce() {
    let (_, clock, q) = world(|_| {});
    let mut env = envelope(1, "example.net");
    env.ret = Some(Ret::Full);
    let id = q.enqueue(env, &content("expiring", 500)[..]).unwrap();
    let mut null = envelope(1, "example.net");
    null.reverse_path = ReversePath::Null;
    let bounce_id = q.enqueue(null, &b"a: b\r\n\r\nc"[..]).unwrap();
    let mut dsn_leases = Vec::new();
    // Defer until maximal_queue_lifetime (5 days) has passed.
    for _ in 0..200 {
        clock.advance(Duration::from_secs(4001));
        while let Some(l) = q.take() {
            if l.id() != id && l.id() != bounce_id {
                // The DSN, queued once the message expired: leave it leased.
                dsn_leases.push(l);
                continue;
            }
            let r: Vec<_> = l
                .recipients()
                .iter()
                .map(|&i| (i, Outcome::Deferred(temp("451 4.4.1 no answer"))))
                .collect();
            q.complete(l, &r).unwrap();
        }
        if q.show(id).is_none() {
            break;
        }
    }
    assert!(q.show(id).is_none(), "message never expired");
    assert!(q.show(bounce_id).is_none(), "bounce never expired");
    let list = q.list();
    assert_eq!(
        list.len(),
        1,
        "exactly one DSN (none for the null sender): {list:?}"
    );
    assert!(dsn_leases.iter().all(|l| l.id() == list[0].id));
    let dsn = &list[0];
    assert!(dsn.envelope.reverse_path.is_null());
    let text = String::from_utf8(read_back(&q, dsn.id).unwrap()).unwrap();
    assert!(text.contains("Status: 4.4.7"), "{text}");
    assert!(text.contains("Action: failed"));
    assert!(text.contains("no answer"));
    assert!(
        text.contains("Content-Type: message/rfc822"),
        "RET=FULL returns the message"
    );
    assert!(
        text.contains("expiring line 10"),
        "whole original message returned"
    );
}

#[test]
fn permanent_failure_bounces_headers_only_by_default() {
    let (_, _, q) = world(|_| {});
    let id = q
        .enqueue(envelope(2, "example.net"), &content("orig", 800)[..])
        .unwrap();
    let l = q.take().unwrap();
    q.complete(
        l,
        &[
            (0, Outcome::Delivered),
            (
                1,
                Outcome::Bounced(perm(
                    "550 5.1.1 <rcpt1@example.net>: no such user\r\nInjected: 1",
                )),
            ),
        ],
    )
    .unwrap();
    assert!(q.show(id).is_none());
    let list = q.list();
    assert_eq!(list.len(), 1);
    let text = String::from_utf8(read_back(&q, list[0].id).unwrap()).unwrap();
    assert!(text.contains("Content-Type: text/rfc822-headers"));
    assert!(text.contains("Subject: orig"));
    assert!(
        !text.contains("orig line 3"),
        "body returned without RET=FULL"
    );
    assert!(text.contains("Final-Recipient: rfc822; rcpt1@example.net"));
    assert!(
        !text.contains("\r\nInjected: 1"),
        "remote text started a header"
    );
    assert!(text.contains("Diagnostic-Code: smtp; 550 5.1.1"));
}

#[test]
fn administration() {
    let (fs, clock, q) = world(|_| {});
    let a = q
        .enqueue(envelope(1, "a.example"), &content("a", 300)[..])
        .unwrap();
    let b = q
        .enqueue(envelope(1, "b.example"), &content("b", 300)[..])
        .unwrap();
    let c = q
        .enqueue(envelope(1, "c.example"), &content("c", 300)[..])
        .unwrap();
    // hold / release
    q.hold(a).unwrap();
    assert_eq!(q.show(a).unwrap().state, QueueState::Hold);
    let l = q.take().unwrap();
    assert_eq!(l.id(), b, "held message taken");
    assert_eq!(q.show(b).unwrap().state, QueueState::Active);
    let text = postqueue_listing(&q.list());
    assert!(
        text.contains(&format!("{a}!")) && text.contains(&format!("{b}*")),
        "{text}"
    );
    assert!(text.ends_with("-- 1 Kbytes in 3 Requests.\n"), "{text}");
    q.complete(l, &[(0, Outcome::Deferred(temp("busy")))])
        .unwrap();
    // flush makes deferred mail due now
    assert_eq!(q.take().map(|l| l.id()), Some(c));
    assert!(q.take().is_none());
    assert_eq!(q.flush(), 1);
    assert_eq!(q.take().map(|l| l.id()), Some(b));
    // release, requeue, export, delete
    q.release(a).unwrap();
    q.requeue(a).unwrap();
    let l = q.take().unwrap();
    assert_eq!(l.id(), a);
    let mut out = Vec::new();
    q.export(a, &mut out).unwrap();
    assert_eq!(out, content("a", 300));
    q.delete(a).unwrap();
    assert!(matches!(
        q.complete(l, &[(0, Outcome::Delivered)]),
        Err(QueueError::StaleLease(_))
    ));
    assert!(matches!(q.hold(a), Err(QueueError::NotFound(_))));
    assert!(q.show(a).is_none());
    // The changes survive a restart (hold of c included).
    q.hold(c).unwrap();
    drop(q);
    let q = Queue::open(fs, "/q", cfg(&clock)).unwrap();
    let ids: Vec<_> = q.list().iter().map(|s| (s.id, s.state)).collect();
    assert_eq!(ids, vec![(b, QueueState::Deferred), (c, QueueState::Hold)]);
    assert!(q.corrupt().unwrap().is_empty());
    assert!(matches!(
        q.enqueue(envelope(0, "x"), &b""[..]),
        Err(QueueError::NoRecipients)
    ));
}

#[test]
fn garbage_collection_removes_finished_segments() {
    let (fs, clock, q) = world(|c| c.segment_size = 2048);
    // A message deferred for the whole test lives in the first segment, and one on hold.
    let pinned = q
        .enqueue(envelope(2, "slow.example"), &content("pinned", 600)[..])
        .unwrap();
    let held = q
        .enqueue(envelope(1, "held.example"), &content("held", 1500)[..])
        .unwrap();
    q.hold(held).unwrap();
    let l = q.take().unwrap();
    assert_eq!(l.id(), pinned);
    q.complete(
        l,
        &[
            (0, Outcome::Delivered),
            (1, Outcome::Deferred(temp("slow"))),
        ],
    )
    .unwrap();
    for round in 0..5 {
        for i in 0..10 {
            q.enqueue(
                envelope(1, "example.net"),
                &content(&format!("{round}-{i}"), 400)[..],
            )
            .unwrap();
        }
        while let Some(l) = q.take() {
            q.complete(l, &[(0, Outcome::Delivered)]).unwrap();
        }
    }
    let left: Vec<_> = q.list().iter().map(|s| s.id).collect();
    assert_eq!(left, vec![pinned, held]);
    let segs = mailroom_queue::Fs::read_dir(&fs, std::path::Path::new("/q/seg")).unwrap();
    assert!(segs.len() <= 3, "finished segments kept: {segs:?}");
    // The copies carry the state: after a restart the pinned message still has its first
    // recipient delivered, the held one is still held, and both contents are intact.
    drop(q);
    let q = Queue::open(fs, "/q", cfg(&clock)).unwrap();
    assert!(q.recovery().quarantined.is_empty(), "{:?}", q.recovery());
    let s = q.show(pinned).unwrap();
    assert_eq!(s.envelope.recipients[0].status, RcptStatus::Delivered);
    assert!(matches!(
        s.envelope.recipients[1].status,
        RcptStatus::Deferred(_)
    ));
    assert_eq!(q.show(held).unwrap().state, QueueState::Hold);
    assert_eq!(read_back(&q, pinned).unwrap(), content("pinned", 600));
    assert_eq!(read_back(&q, held).unwrap(), content("held", 1500));
}

#[test]
fn one_delay_warning_after_delay_warning_time() {
    let (fs, clock, q) = world(|c| c.delay_warning_time = Some(Duration::from_secs(4 * 3600)));
    let mut env = envelope(3, "example.net");
    env.recipients[2].notify = Some(mailroom_smtp_proto::Notify::NEVER);
    let id = q.enqueue(env, &content("late", 700)[..]).unwrap();
    let mut warnings = Vec::new();
    for _ in 0..12 {
        while let Some(l) = q.take() {
            if l.id() != id {
                warnings.push(l.id());
                continue;
            }
            q.complete(
                l,
                &[
                    (0, Outcome::Delivered),
                    (1, Outcome::Deferred(temp("451 4.4.1 no answer"))),
                    (2, Outcome::Deferred(temp("451 4.4.1 no answer"))),
                ],
            )
            .unwrap();
        }
        clock.advance(Duration::from_secs(4001));
    }
    assert_eq!(warnings.len(), 1, "exactly one delay warning");
    let text = String::from_utf8(read_back(&q, warnings[0]).unwrap()).unwrap();
    assert!(
        text.contains("Subject: Delayed Mail (still being retried)"),
        "{text}"
    );
    assert!(text.contains("Action: delayed"));
    assert!(text.contains("Final-Recipient: rfc822; rcpt1@example.net"));
    assert!(
        !text.contains("rcpt2@"),
        "NOTIFY=NEVER recipient warned about"
    );
    assert!(!text.contains("rcpt0@"), "delivered recipient warned about");
    assert!(text.contains("Will-Retry-Until: "));
    assert!(text.contains("Content-Type: text/rfc822-headers"));
    assert!(
        !text.contains("late line 2"),
        "delay warning returned the body"
    );
    // The flag is durable: no second warning after a restart.
    drop(q);
    let q = Queue::open(fs, "/q", {
        let mut c = cfg(&clock);
        c.delay_warning_time = Some(Duration::from_secs(4 * 3600));
        c
    })
    .unwrap();
    assert!(q.show(id).unwrap().envelope.delay_warned);
}
