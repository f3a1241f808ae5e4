//! Acceptance 3: random sequences of enqueue, take, deliver, defer, bounce, hold, release,
//! delete, clock moves and reopen, run against the queue (on the simulated file system) and
//! against a small in-memory model of Postfix's semantics; after every step both agree.

// Tests unwrap: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use common::{content, read_back, start};
use mailroom_queue::sim::SimFs;
use mailroom_queue::{
    Backoff, Config, Diagnostic, Envelope, Lease, ManualClock, Outcome, Queue, QueueError, QueueId,
    QueueState, RcptStatus,
};
use mailroom_smtp_proto::{EnhancedCode, ForwardPath, ReversePath};
use proptest::prelude::*;

const LIFETIME: u64 = 3000;

#[derive(Debug, Clone)]
enum Op {
    Enqueue {
        rcpts: usize,
        len: usize,
        null_sender: bool,
    },
    Take,
    /// Complete the n-th outstanding lease; per recipient 0 deliver, 1 defer, 2 bounce.
    Complete {
        lease: usize,
        outcomes: Vec<u8>,
    },
    Hold(usize),
    Release(usize),
    Delete(usize),
    Advance(u64),
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (1usize..4, 0usize..2000, prop::bool::weighted(0.2))
            .prop_map(|(rcpts, len, null_sender)| Op::Enqueue { rcpts, len, null_sender }),
        3 => Just(Op::Take),
        3 => (0usize..4, prop::collection::vec(0u8..3, 3))
            .prop_map(|(lease, outcomes)| Op::Complete { lease, outcomes }),
        1 => (0usize..8).prop_map(Op::Hold),
        1 => (0usize..8).prop_map(Op::Release),
        1 => (0usize..8).prop_map(Op::Delete),
        2 => (0u64..2500).prop_map(Op::Advance),
        1 => Just(Op::Reopen),
    ]
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum St {
    Pending,
    Delivered,
    Deferred,
    Bounced,
}

fn st(s: &RcptStatus) -> St {
    match s {
        RcptStatus::Pending => St::Pending,
        RcptStatus::Delivered => St::Delivered,
        RcptStatus::Deferred(_) => St::Deferred,
        RcptStatus::Bounced(_) => St::Bounced,
    }
}

#[derive(Debug, Clone)]
struct Msg {
    body: Vec<u8>,
    null_sender: bool,
    statuses: Vec<St>,
    hold: bool,
    leased: bool,
    arrival: SystemTime,
    next: SystemTime,
    attempts: u32,
}

fn config(clock: &ManualClock) -> Config {
    Config {
        inline_limit: 1024,
        segment_size: 4096,
        initial_destination_concurrency: 1000,
        destination_concurrency_limit: 1000,
        backoff: Backoff {
            jitter_per_mille: 0,
            maximal_queue_lifetime: Duration::from_secs(LIFETIME),
            bounce_queue_lifetime: Duration::from_secs(LIFETIME),
            ..Backoff::default()
        },
        clock: Arc::new(clock.clone()),
        logger: Arc::new(|_: &str| {}),
        ..Config::default()
    }
}

struct World {
    fs: SimFs,
    clock: ManualClock,
    q: Queue<SimFs>,
    model: BTreeMap<QueueId, Msg>,
    leases: Vec<Lease>,
    n: usize,
}

impl World {
    fn new() -> Self {
        let fs = SimFs::new();
        let clock = ManualClock::new(start());
        let q = Queue::open(fs.clone(), "/q", config(&clock)).unwrap();
        Self {
            fs,
            clock,
            q,
            model: BTreeMap::new(),
            leases: Vec::new(),
            n: 0,
        }
    }

    fn pick(&self, k: usize) -> Option<QueueId> {
        let ids: Vec<QueueId> = self.model.keys().copied().collect();
        (!ids.is_empty()).then(|| ids[k % ids.len()])
    }

    fn diag(code: u8) -> Diagnostic {
        Diagnostic::new(EnhancedCode::new(code, 0, 0).unwrap(), "model says so")
    }

    fn step(&mut self, op: &Op) {
        let now = self.clock.now_time();
        match op {
            Op::Enqueue {
                rcpts,
                len,
                null_sender,
            } => {
                self.n += 1;
                let domain = format!("d{}.example", self.n % 3);
                let env = Envelope::new(
                    if *null_sender {
                        ReversePath::Null
                    } else {
                        ReversePath::Mailbox("alice@example.org".parse().unwrap())
                    },
                    (0..*rcpts)
                        .map(|i| ForwardPath::Mailbox(format!("r{i}@{domain}").parse().unwrap()))
                        .collect(),
                );
                let body = content(&format!("msg{}", self.n), *len);
                let id = self.q.enqueue(env, &body[..]).unwrap();
                self.model.insert(
                    id,
                    Msg {
                        body,
                        null_sender: *null_sender,
                        statuses: vec![St::Pending; *rcpts],
                        hold: false,
                        leased: false,
                        arrival: now,
                        next: now,
                        attempts: 0,
                    },
                );
            }
            Op::Take => {
                let expect = self
                    .model
                    .iter()
                    .filter(|(_, m)| !m.leased && !m.hold && m.next <= now)
                    .min_by_key(|(id, m)| (m.next, **id))
                    .map(|(id, _)| *id);
                let lease = self.q.take();
                assert_eq!(
                    lease.as_ref().map(Lease::id),
                    expect,
                    "take chose differently"
                );
                if let Some(lease) = lease {
                    let m = self.model.get_mut(&lease.id()).unwrap();
                    let want: Vec<usize> = (0..m.statuses.len())
                        .filter(|&i| matches!(m.statuses[i], St::Pending | St::Deferred))
                        .collect();
                    assert_eq!(lease.recipients(), &want[..]);
                    m.leased = true;
                    self.leases.push(lease);
                }
            }
            Op::Complete { lease, outcomes } => {
                if self.leases.is_empty() {
                    return;
                }
                let lease = self.leases.remove(lease % self.leases.len());
                let id = lease.id();
                let results: Vec<(usize, Outcome)> = lease
                    .recipients()
                    .iter()
                    .enumerate()
                    .map(|(k, &i)| {
                        let o = match outcomes[k % outcomes.len()] {
                            0 => Outcome::Delivered,
                            1 => Outcome::Deferred(Self::diag(4)),
                            _ => Outcome::Bounced(Self::diag(5)),
                        };
                        (i, o)
                    })
                    .collect();
                let before: Vec<QueueId> = self.q.list().iter().map(|s| s.id).collect();
                let result = self.q.complete(lease, &results);
                let Some(m) = self.model.get_mut(&id) else {
                    assert!(
                        matches!(result, Err(QueueError::StaleLease(_))),
                        "{result:?}"
                    );
                    return;
                };
                result.unwrap();
                m.leased = false;
                let mut deferred = false;
                for (i, o) in &results {
                    m.statuses[*i] = match o {
                        Outcome::Delivered => St::Delivered,
                        Outcome::Deferred(_) => {
                            deferred = true;
                            St::Deferred
                        }
                        Outcome::Bounced(_) => St::Bounced,
                    };
                }
                if deferred {
                    m.attempts += 1;
                    let age = now.duration_since(m.arrival).unwrap();
                    if age >= Duration::from_secs(LIFETIME) {
                        for s in &mut m.statuses {
                            if matches!(s, St::Pending | St::Deferred) {
                                *s = St::Bounced;
                            }
                        }
                    } else {
                        let wait = age.clamp(Duration::from_secs(300), Duration::from_secs(4000));
                        m.next = now + wait;
                    }
                } else {
                    m.next = now;
                }
                let done = m
                    .statuses
                    .iter()
                    .all(|s| matches!(s, St::Delivered | St::Bounced));
                let bounce = done && !m.null_sender && m.statuses.contains(&St::Bounced);
                if done {
                    self.model.remove(&id);
                }
                let new: Vec<QueueId> = self
                    .q
                    .list()
                    .iter()
                    .map(|s| s.id)
                    .filter(|i| !before.contains(i))
                    .collect();
                assert_eq!(new.len(), usize::from(bounce), "bounces: {new:?}");
                for b in new {
                    let s = self.q.show(b).unwrap();
                    assert!(s.envelope.reverse_path.is_null());
                    assert_eq!(
                        s.envelope.recipients[0].path.to_string(),
                        "<alice@example.org>"
                    );
                    let body = read_back(&self.q, b).unwrap();
                    let text = String::from_utf8_lossy(&body);
                    assert!(text.contains("message/delivery-status"));
                    self.model.insert(
                        b,
                        Msg {
                            body,
                            null_sender: true,
                            statuses: vec![St::Pending],
                            hold: false,
                            leased: false,
                            arrival: now,
                            next: now,
                            attempts: 0,
                        },
                    );
                }
            }
            Op::Hold(k) | Op::Release(k) => {
                let Some(id) = self.pick(*k) else { return };
                let hold = matches!(op, Op::Hold(_));
                if hold {
                    self.q.hold(id).unwrap();
                } else {
                    self.q.release(id).unwrap();
                }
                self.model.get_mut(&id).unwrap().hold = hold;
            }
            Op::Delete(k) => {
                let Some(id) = self.pick(*k) else { return };
                self.q.delete(id).unwrap();
                self.model.remove(&id);
            }
            Op::Advance(secs) => self.clock.advance(Duration::from_secs(*secs)),
            Op::Reopen => {
                self.leases.clear();
                let q = Queue::open(self.fs.clone(), "/q", config(&self.clock)).unwrap();
                self.q = q;
                for m in self.model.values_mut() {
                    m.leased = false;
                }
                for (id, m) in &self.model {
                    assert_eq!(read_back(&self.q, *id).unwrap(), m.body, "content of {id}");
                }
                assert!(self.q.recovery().quarantined.is_empty());
            }
        }
        self.check();
    }

    fn check(&self) {
        let list = self.q.list();
        let ids: Vec<QueueId> = list.iter().map(|s| s.id).collect();
        let want: Vec<QueueId> = self.model.keys().copied().collect();
        assert_eq!(ids, want, "queued messages differ");
        for s in list {
            let m = &self.model[&s.id];
            let got: Vec<St> = s
                .envelope
                .recipients
                .iter()
                .map(|r| st(&r.status))
                .collect();
            assert_eq!(got, m.statuses, "statuses of {}", s.id);
            assert_eq!(s.envelope.attempts, m.attempts);
            let state = if m.leased {
                QueueState::Active
            } else if m.hold {
                QueueState::Hold
            } else if m.attempts > 0 {
                QueueState::Deferred
            } else {
                QueueState::Incoming
            };
            assert_eq!(s.state, state, "state of {}", s.id);
            if !m.leased {
                assert_eq!(s.envelope.next_attempt, m.next, "next attempt of {}", s.id);
            }
        }
    }
}

trait NowTime {
    fn now_time(&self) -> SystemTime;
}

impl NowTime for ManualClock {
    fn now_time(&self) -> SystemTime {
        mailroom_queue::Clock::now(self)
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn queue_matches_the_model(ops in prop::collection::vec(op(), 1..60)) {
        let mut w = World::new();
        for op in &ops {
            w.step(op);
        }
        // Finally a reopen must find the same queue.
        w.step(&Op::Reopen);
    }
}
